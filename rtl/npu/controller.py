"""Command-stream controller: fetches an Ethos-U55 register command stream from external memory and executes it.

Opcode and field numbers: Vela 5.2.0 ``ethosu/vela/ethos_u55_regs/ethos_u55_regs.py`` (``class cmd0``, ``class
cmd1``, ``npu_op_*_t`` / ``npu_set_*_t``); word format ``CmdMode`` in ``register_command_stream_generator.py``;
semantics in ``models/npu/SPEC.md`` sections 2, 3 and 7. ``tb/rtl/npu/test_controller.py`` checks every number
below against Vela's enums.

Word 0: ``[9:0]`` opcode, ``[13:10]`` must be zero, ``[15:14]`` mode (0 = cmd0, 1 = cmd1 with one 32-bit payload
word, 2/3 = error), ``[31:16]`` param. The host gives ``cmd_base`` (= QBASE, the byte address of the first command,
i.e. the driver payload + 32) and ``cmd_len`` (bytes) and pulses ``start``.

Execution (in stream order; a wait blocks parsing):

* register writes (``NPU_SET_*``) update the configuration registers (:class:`RegisterFile`, :data:`Registers`);
  known registers the datapath does not use (IFM2 tiles 1..3 and sizes, PARALLEL_MODE, DMA0_SIZE*/SKIP*,
  WEIGHT1/SCALE1) are accepted and dropped;
* ``NPU_OP_CONV`` / ``DEPTHWISE`` / ``POOL`` / ``ELEMENTWISE``: wait until fewer than ``max_kernels`` kernel ops are
  outstanding, then offer a :class:`KernelOp` (opcode, param, register snapshot) on ``compute.kick``; a kernel op is
  outstanding from its kick until the compute unit pulses ``compute.done`` (in kick order);
* ``NPU_OP_DMA_START``: hand the DMA0_* registers to the DMA (waits while the single channel is busy;
  ``max_outstanding_dma = 1``); a descriptor the DMA rejects stops the stream with ``DMA_DESCRIPTOR``;
* ``NPU_OP_DMA_WAIT k`` / ``NPU_OP_KERNEL_WAIT n``: wait until <= k DMAs / <= n kernel ops are outstanding;
* ``NPU_OP_STOP``: wait until the DMA and all kernel ops are finished, then ``done`` with ``error`` = 0;
* ``NPU_OP_PMU_MASK``: its enable bit (param bit 0) goes to ``pmu_mask`` (the PMU counts by it when PMCR.mask_en);
* ``NPU_OP_IRQ``: no effect.

Errors (:class:`ErrorCode`) end the run at once with ``done`` = ``error`` = 1, ``error_code`` and ``error_offset``
(byte offset of the offending command from ``cmd_base``; ``cmd_len`` for ``NO_STOP``). The decode errors are checked
in the same order as :func:`models.npu.cmdstream.decode_stream`, so the two agree on every stream (``words after
STOP`` aside: the hardware ignores them, like ``allow_trailing=True``). Every wait ends: fetches are bounded by
``cmd_len`` and the memory latency, a DMA by its (checked) length, and a kernel op by the compute unit's contract
(it must pulse ``done`` or ``error`` for every kick). A new ``start`` is held until all of those have drained.
"""
import enum
from types import SimpleNamespace

from amaranth import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.common.fifo import MemoryFIFO
from rtl.npu.dma import DmaDesc
from rtl.npu.extmem import ADDR_WIDTH, WORD_BITS, MemPortSignature

__all__ = ["CMD0", "CMD1", "ErrorCode", "Registers", "KernelOp", "ComputeSignature", "DmaControlSignature",
           "Controller", "RegisterFile"]


class CMD0(enum.IntEnum):
    """cmd0 opcodes (``class cmd0`` in ``ethos_u55_regs.py``)."""

    NPU_OP_STOP = 0x000
    NPU_OP_IRQ = 0x001
    NPU_OP_CONV = 0x002
    NPU_OP_DEPTHWISE = 0x003
    NPU_OP_POOL = 0x005
    NPU_OP_ELEMENTWISE = 0x006
    NPU_OP_DMA_START = 0x010
    NPU_OP_DMA_WAIT = 0x011
    NPU_OP_KERNEL_WAIT = 0x012
    NPU_OP_PMU_MASK = 0x013
    NPU_SET_IFM_PAD_TOP = 0x100
    NPU_SET_IFM_PAD_LEFT = 0x101
    NPU_SET_IFM_PAD_RIGHT = 0x102
    NPU_SET_IFM_PAD_BOTTOM = 0x103
    NPU_SET_IFM_DEPTH_M1 = 0x104
    NPU_SET_IFM_PRECISION = 0x105
    NPU_SET_IFM_UPSCALE = 0x107
    NPU_SET_IFM_ZERO_POINT = 0x109
    NPU_SET_IFM_WIDTH0_M1 = 0x10A
    NPU_SET_IFM_HEIGHT0_M1 = 0x10B
    NPU_SET_IFM_HEIGHT1_M1 = 0x10C
    NPU_SET_IFM_IB_END = 0x10D
    NPU_SET_IFM_REGION = 0x10F
    NPU_SET_OFM_WIDTH_M1 = 0x111
    NPU_SET_OFM_HEIGHT_M1 = 0x112
    NPU_SET_OFM_DEPTH_M1 = 0x113
    NPU_SET_OFM_PRECISION = 0x114
    NPU_SET_OFM_BLK_WIDTH_M1 = 0x115
    NPU_SET_OFM_BLK_HEIGHT_M1 = 0x116
    NPU_SET_OFM_BLK_DEPTH_M1 = 0x117
    NPU_SET_OFM_ZERO_POINT = 0x118
    NPU_SET_OFM_WIDTH0_M1 = 0x11A
    NPU_SET_OFM_HEIGHT0_M1 = 0x11B
    NPU_SET_OFM_HEIGHT1_M1 = 0x11C
    NPU_SET_OFM_REGION = 0x11F
    NPU_SET_KERNEL_WIDTH_M1 = 0x120
    NPU_SET_KERNEL_HEIGHT_M1 = 0x121
    NPU_SET_KERNEL_STRIDE = 0x122
    NPU_SET_PARALLEL_MODE = 0x123
    NPU_SET_ACC_FORMAT = 0x124
    NPU_SET_ACTIVATION = 0x125
    NPU_SET_ACTIVATION_MIN = 0x126
    NPU_SET_ACTIVATION_MAX = 0x127
    NPU_SET_WEIGHT_REGION = 0x128
    NPU_SET_SCALE_REGION = 0x129
    NPU_SET_AB_START = 0x12D
    NPU_SET_BLOCKDEP = 0x12F
    NPU_SET_DMA0_SRC_REGION = 0x130
    NPU_SET_DMA0_DST_REGION = 0x131
    NPU_SET_DMA0_SIZE0 = 0x132
    NPU_SET_DMA0_SIZE1 = 0x133
    NPU_SET_IFM2_BROADCAST = 0x180
    NPU_SET_IFM2_SCALAR = 0x181
    NPU_SET_IFM2_PRECISION = 0x185
    NPU_SET_IFM2_ZERO_POINT = 0x189
    NPU_SET_IFM2_WIDTH0_M1 = 0x18A
    NPU_SET_IFM2_HEIGHT0_M1 = 0x18B
    NPU_SET_IFM2_HEIGHT1_M1 = 0x18C
    NPU_SET_IFM2_IB_START = 0x18D
    NPU_SET_IFM2_REGION = 0x18F


class CMD1(enum.IntEnum):
    """cmd1 opcodes (``class cmd1`` in ``ethos_u55_regs.py``)."""

    NPU_SET_IFM_BASE0 = 0x000
    NPU_SET_IFM_BASE1 = 0x001
    NPU_SET_IFM_BASE2 = 0x002
    NPU_SET_IFM_BASE3 = 0x003
    NPU_SET_IFM_STRIDE_X = 0x004
    NPU_SET_IFM_STRIDE_Y = 0x005
    NPU_SET_IFM_STRIDE_C = 0x006
    NPU_SET_OFM_BASE0 = 0x010
    NPU_SET_OFM_BASE1 = 0x011
    NPU_SET_OFM_BASE2 = 0x012
    NPU_SET_OFM_BASE3 = 0x013
    NPU_SET_OFM_STRIDE_X = 0x014
    NPU_SET_OFM_STRIDE_Y = 0x015
    NPU_SET_OFM_STRIDE_C = 0x016
    NPU_SET_WEIGHT_BASE = 0x020
    NPU_SET_WEIGHT_LENGTH = 0x021
    NPU_SET_SCALE_BASE = 0x022
    NPU_SET_SCALE_LENGTH = 0x023
    NPU_SET_OFM_SCALE = 0x024
    NPU_SET_OPA_SCALE = 0x025
    NPU_SET_OPB_SCALE = 0x026
    NPU_SET_DMA0_SRC = 0x030
    NPU_SET_DMA0_DST = 0x031
    NPU_SET_DMA0_LEN = 0x032
    NPU_SET_DMA0_SKIP0 = 0x033
    NPU_SET_DMA0_SKIP1 = 0x034
    NPU_SET_IFM2_BASE0 = 0x080
    NPU_SET_IFM2_BASE1 = 0x081
    NPU_SET_IFM2_BASE2 = 0x082
    NPU_SET_IFM2_BASE3 = 0x083
    NPU_SET_IFM2_STRIDE_X = 0x084
    NPU_SET_IFM2_STRIDE_Y = 0x085
    NPU_SET_IFM2_STRIDE_C = 0x086
    NPU_SET_WEIGHT1_BASE = 0x090
    NPU_SET_WEIGHT1_LENGTH = 0x091
    NPU_SET_SCALE1_BASE = 0x092
    NPU_SET_SCALE1_LENGTH = 0x093


KERNEL_OPS = (CMD0.NPU_OP_CONV, CMD0.NPU_OP_DEPTHWISE, CMD0.NPU_OP_POOL, CMD0.NPU_OP_ELEMENTWISE)
NOP_OPS = (CMD0.NPU_OP_IRQ, CMD0.NPU_OP_PMU_MASK)

#: cmd0 registers stored (16 bits each, the param), in the order of the SPEC.md section 3 table.
STORED_CMD0 = (
    "IFM_REGION", "IFM_HEIGHT0_M1", "IFM_HEIGHT1_M1", "IFM_WIDTH0_M1", "IFM_DEPTH_M1", "IFM_ZERO_POINT",
    "IFM_PRECISION", "IFM_UPSCALE", "IFM_PAD_TOP", "IFM_PAD_LEFT", "IFM_PAD_BOTTOM", "IFM_PAD_RIGHT",
    "OFM_REGION", "OFM_HEIGHT_M1", "OFM_WIDTH_M1", "OFM_DEPTH_M1", "OFM_HEIGHT0_M1", "OFM_HEIGHT1_M1",
    "OFM_WIDTH0_M1", "OFM_ZERO_POINT", "OFM_PRECISION", "KERNEL_HEIGHT_M1", "KERNEL_WIDTH_M1", "KERNEL_STRIDE",
    "WEIGHT_REGION", "SCALE_REGION", "ACTIVATION", "ACTIVATION_MIN", "ACTIVATION_MAX", "OFM_BLK_HEIGHT_M1",
    "OFM_BLK_WIDTH_M1", "OFM_BLK_DEPTH_M1", "IFM_IB_END", "AB_START", "ACC_FORMAT", "BLOCKDEP",
    "DMA0_SRC_REGION", "DMA0_DST_REGION",
    "IFM2_BROADCAST", "IFM2_SCALAR", "IFM2_PRECISION", "IFM2_ZERO_POINT", "IFM2_REGION",
)
#: cmd1 registers stored (32 bits each, the data word). OFM_SCALE's / OPA_SCALE's param[5:0] goes to
#: ``OFM_SCALE_SHIFT`` / ``OPA_SCALE_SHIFT``.
STORED_CMD1 = (
    "IFM_BASE0", "IFM_BASE1", "IFM_BASE2", "IFM_BASE3", "IFM_STRIDE_X", "IFM_STRIDE_Y", "IFM_STRIDE_C",
    "OFM_BASE0", "OFM_BASE1", "OFM_BASE2", "OFM_BASE3", "OFM_STRIDE_X", "OFM_STRIDE_Y", "OFM_STRIDE_C",
    "WEIGHT_BASE", "WEIGHT_LENGTH", "SCALE_BASE", "SCALE_LENGTH", "OFM_SCALE", "DMA0_SRC", "DMA0_DST", "DMA0_LEN",
    "IFM2_BASE0", "IFM2_STRIDE_X", "IFM2_STRIDE_Y", "IFM2_STRIDE_C", "OPA_SCALE", "OPB_SCALE",
)

#: The register file: one field per stored register, named as in Vela without ``NPU_SET_``.
Registers = data.StructLayout({
    **{name: 16 for name in STORED_CMD0},
    **{name: 32 for name in STORED_CMD1},
    "OFM_SCALE_SHIFT": 6,
    "OPA_SCALE_SHIFT": 6,
})


class KernelOp(data.Struct):
    """What the controller hands the compute unit per kernel op (the kick payload)."""

    opcode: 10               # CMD0.NPU_OP_CONV / DEPTHWISE / POOL / ELEMENTWISE
    param: 16                # word-0 param (POOL: pooling mode; CONV/DEPTHWISE: 0)
    regs: Registers          # every stored register as of the kick (sticky values)


class ErrorCode(enum.IntEnum):
    """``error_code`` values. Decode errors are listed in :func:`models.npu.cmdstream.decode_stream`'s order."""

    OK = 0
    RESERVED_BITS = 1        # word 0 bits [13:10] non-zero
    UNKNOWN_CMD0 = 2         # mode 0, opcode not in CMD0
    UNKNOWN_CMD1 = 3         # mode 1, opcode not in CMD1
    TRUNCATED = 4            # cmd1 is the last word of the stream (no payload word)
    BAD_MODE = 5             # mode 2 or 3
    NO_STOP = 6              # the stream ended without NPU_OP_STOP
    BAD_STREAM = 7           # cmd_base not 4-aligned, cmd_len 0 or not a multiple of 4, or beyond external memory
    FETCH_FAULT = 8          # external memory answered a fetch with an error (defensive; cannot happen)
    DMA_FAULT = 9            # the DMA saw a memory error (defensive; cannot happen)
    COMPUTE_FAULT = 10       # the compute unit reported an error
    DMA_DESCRIPTOR = 0x10    # DMA descriptor rejected; low 4 bits = rtl.npu.dma.DmaError


#: The controller's view of the compute unit (the unit itself has ``In(ComputeSignature)``).
ComputeSignature = wiring.Signature({
    "kick": Out(stream.Signature(KernelOp)),
    "done": In(1),    # pulse: the oldest outstanding kernel op finished
    "error": In(1),   # pulse: the oldest outstanding kernel op failed (also counts as finished)
})

#: The controller's view of the DMA engine.
DmaControlSignature = wiring.Signature({
    "desc": Out(stream.Signature(DmaDesc)),
    "desc_error": In(4),
    "busy": In(1),
    "fault": In(1),
})


class RegisterFile(wiring.Component):
    """The configuration registers (:data:`Registers`), written by the controller's decoder.

    Members
    -------
    cmd0_we, cmd0_opcode, cmd0_param : ``In``   a cmd0 register write (``NPU_SET_*`` of :data:`STORED_CMD0`;
        the register takes the param)
    cmd1_we, cmd1_opcode, cmd1_param, cmd1_data : ``In``   a cmd1 register write (:data:`STORED_CMD1`; the
        register takes the payload word, and OFM_SCALE's / OPA_SCALE's param[5:0] goes to ``*_SHIFT``)
    regs : ``Out(Registers)``
    """

    def __init__(self):
        super().__init__({
            "cmd0_we": In(1), "cmd0_opcode": In(10), "cmd0_param": In(16),
            "cmd1_we": In(1), "cmd1_opcode": In(10), "cmd1_param": In(16), "cmd1_data": In(32),
            "regs": Out(Registers),
        })

    def elaborate(self, platform):
        m = Module()
        regs = self.regs
        with m.If(self.cmd0_we):
            with m.Switch(self.cmd0_opcode):
                for name in STORED_CMD0:
                    with m.Case(CMD0[f"NPU_SET_{name}"]):
                        m.d.sync += getattr(regs, name).eq(self.cmd0_param)
        with m.If(self.cmd1_we):
            with m.Switch(self.cmd1_opcode):
                for name in STORED_CMD1:
                    with m.Case(CMD1[f"NPU_SET_{name}"]):
                        m.d.sync += getattr(regs, name).eq(self.cmd1_data)
                        if name in ("OFM_SCALE", "OPA_SCALE"):
                            m.d.sync += getattr(regs, f"{name}_SHIFT").eq(self.cmd1_param[:6])
        return m


class Controller(wiring.Component):
    """See the module docstring.

    Parameters
    ----------
    mem_size : int
        External memory bytes (for the ``cmd_base``/``cmd_len`` check).
    queue_depth : int
        Fetch queue entries of 8 bytes (``ext latency + 3`` fetches one word per cycle).
    max_kernels : int
        Kernel ops that may be outstanding (Vela's ``max_outstanding_kernels``, 2).

    Members
    -------
    cmd_base, cmd_len : ``In(32)``
        Sampled when ``start`` is accepted.
    start : ``In(1)``
        Rising edge requests a run (remembered until all previous work has drained).
    busy, done, error : ``Out(1)``
        ``busy``: a run is pending or in progress. ``done`` rises at the end of a run and stays high until the
        cycle after the next ``start`` pulse.
    error_code : ``Out(8)`` (:class:`ErrorCode`); ``error_offset`` : ``Out(32)``
    kernel_count, dma_count : ``Out(16)``
        Kernel kicks / DMA descriptors issued in this run.
    pmu_mask : ``Out(1)``
        Bit 0 of the last ``NPU_OP_PMU_MASK`` (0 after reset).
    bus : ``Out(MemPortSignature)`` (reads only); ``dma`` : ``Out(DmaControlSignature)``;
    compute : ``Out(ComputeSignature)``
    """

    def __init__(self, *, mem_size: int, queue_depth: int, max_kernels: int = 2):
        self.mem_size, self.queue_depth, self.max_kernels = mem_size, queue_depth, max_kernels
        super().__init__({
            "cmd_base": In(ADDR_WIDTH), "cmd_len": In(ADDR_WIDTH), "start": In(1),
            "busy": Out(1), "done": Out(1), "error": Out(1), "error_code": Out(8), "error_offset": Out(ADDR_WIDTH),
            "kernel_count": Out(16), "dma_count": Out(16), "pmu_mask": Out(1),
            "bus": Out(MemPortSignature), "dma": Out(DmaControlSignature), "compute": Out(ComputeSignature),
        })

    def elaborate(self, platform):
        m = Module()

        # --- bookkeeping that runs in every state ---------------------------------------------------------------
        kick = self.compute.kick
        kernels = Signal(range(self.max_kernels + 2))    # outstanding kernel ops
        finished = self.compute.done | self.compute.error
        m.d.sync += kernels.eq(kernels + (kick.valid & kick.ready) - (finished & (kernels != 0)))

        running = Signal()
        f = self._fetcher(m, running)
        fetch_word, fetch_left, inflight, half = f.fetch_word, f.fetch_left, f.inflight, f.half
        words_left, offset, have, word, consume = f.words_left, f.offset, f.have, f.word, f.consume
        fetch_fault = self.bus.resp.valid & self.bus.resp.payload.err

        # --- register file and decode ---------------------------------------------------------------------------
        m.submodules.registers = rf = RegisterFile()
        regs = rf.regs
        opcode, reserved, mode, param = word[0:10], word[10:14], word[14:16], word[16:32]
        cur_opcode = Signal(10)
        cur_param = Signal(16)
        cmd_offset = Signal(ADDR_WIDTH)
        wait_limit = Signal(16)
        m.d.comb += [
            rf.cmd0_opcode.eq(opcode), rf.cmd0_param.eq(param),
            rf.cmd1_opcode.eq(cur_opcode), rf.cmd1_param.eq(cur_param), rf.cmd1_data.eq(word),
            kick.payload.opcode.eq(cur_opcode),
            kick.payload.param.eq(cur_param),
            kick.payload.regs.eq(regs),
            self.dma.desc.payload.src_region.eq(regs.DMA0_SRC_REGION),
            self.dma.desc.payload.dst_region.eq(regs.DMA0_DST_REGION),
            self.dma.desc.payload.src.eq(regs.DMA0_SRC),
            self.dma.desc.payload.dst.eq(regs.DMA0_DST),
            self.dma.desc.payload.length.eq(regs.DMA0_LEN),
        ]

        start_req = Signal()
        code = Signal(8)
        quiet = (inflight == 0) & ~self.dma.busy & (kernels == 0)
        m.d.comb += [self.busy.eq(running | start_req), self.error_code.eq(code), self.error.eq(code != 0),
                     self.error_offset.eq(cmd_offset)]

        # Faults reported by the memory, the DMA or the compute unit end a run from any state but IDLE.
        fault = Signal(8)
        with m.If(fetch_fault):
            m.d.comb += fault.eq(ErrorCode.FETCH_FAULT)
        with m.Elif(self.dma.fault):
            m.d.comb += fault.eq(ErrorCode.DMA_FAULT)
        with m.Elif(self.compute.error):
            m.d.comb += fault.eq(ErrorCode.COMPUTE_FAULT)

        def fail(error):
            m.d.sync += [code.eq(error), running.eq(0), self.done.eq(1), fetch_left.eq(0)]
            m.next = "IDLE"

        with m.FSM(name="ctrl"):
            with m.State("IDLE"):
                with m.If(start_req & quiet):
                    base, length = self.cmd_base, self.cmd_len
                    first, last = base[3:], (base + length - 1)[3:]
                    m.d.sync += [
                        start_req.eq(0), self.done.eq(0), code.eq(0), cmd_offset.eq(0), offset.eq(0),
                        self.kernel_count.eq(0), self.dma_count.eq(0),
                        fetch_word.eq(first), half.eq(base[2]), words_left.eq(length[2:]),
                    ]
                    with m.If((base[:2] != 0) | (length[:2] != 0) | (length == 0) |
                              (base + length > self.mem_size)):
                        fail(ErrorCode.BAD_STREAM)
                    with m.Else():
                        m.d.sync += [running.eq(1), fetch_left.eq(last - first + 1)]
                        m.next = "DECODE"
            with m.State("DECODE"):
                with m.If(fault != 0):
                    fail(fault)
                with m.Else():
                    with m.If(words_left == 0):
                        fail(ErrorCode.NO_STOP)
                        m.d.sync += cmd_offset.eq(offset)   # = cmd_len: where STOP was expected
                    with m.Elif(have):
                        m.d.comb += consume.eq(1)
                        m.d.sync += [cmd_offset.eq(offset), cur_opcode.eq(opcode), cur_param.eq(param),
                                     wait_limit.eq(param)]
                        with m.If(reserved != 0):
                            fail(ErrorCode.RESERVED_BITS)
                        with m.Elif(mode == 0):
                            self._decode_cmd0(m, opcode, rf, fail)
                        with m.Elif(mode == 1):
                            with m.Switch(opcode):
                                with m.Case(*CMD1):
                                    m.next = "PAYLOAD"
                                with m.Default():
                                    fail(ErrorCode.UNKNOWN_CMD1)
                        with m.Else():
                            fail(ErrorCode.BAD_MODE)
            with m.State("PAYLOAD"):
                with m.If(fault != 0):
                    fail(fault)
                with m.Else():
                    with m.If(words_left == 0):
                        fail(ErrorCode.TRUNCATED)
                    with m.Elif(have):
                        m.d.comb += [consume.eq(1), rf.cmd1_we.eq(1)]
                        m.next = "DECODE"
            self._wait_states(m, fault, fail, kernels, wait_limit, running, fetch_left)

        # A start request (rising edge of ``start``) clears ``done`` at once (it wins over a run ending in the same
        # cycle) and is remembered until everything from the previous run has drained.
        start_prev = Signal()
        m.d.sync += start_prev.eq(self.start)
        with m.If(self.start & ~start_prev):
            m.d.sync += [start_req.eq(1), self.done.eq(0)]

        return m

    def _fetcher(self, m, running):
        """The command fetcher (8-byte words into a queue while ``running``) and a 32-bit word view of its head."""
        # --- fetcher: 8-byte words into a queue -----------------------------------------------------------------
        m.submodules.fetchq = fetchq = MemoryFIFO(width=WORD_BITS, depth=self.queue_depth)
        fetch_word = Signal(ADDR_WIDTH - 3)
        fetch_left = Signal(ADDR_WIDTH - 2)
        inflight = Signal(range(self.queue_depth + 1))   # requested and not yet popped
        m.d.comb += [
            self.bus.req.valid.eq(running & (fetch_left != 0) & (inflight != self.queue_depth)),
            self.bus.req.payload.addr.eq(fetch_word << 3),
            self.bus.req.payload.write.eq(0),
            self.bus.resp.ready.eq(1),                    # always room: inflight <= queue depth
            fetchq.w_stream.valid.eq(self.bus.resp.valid),
            fetchq.w_stream.payload.eq(self.bus.resp.payload.rdata),
        ]
        issued = self.bus.req.valid & self.bus.req.ready
        with m.If(issued):
            m.d.sync += [fetch_word.eq(fetch_word + 1), fetch_left.eq(fetch_left - 1)]

        # --- 32-bit word view of the queue head -----------------------------------------------------------------
        half = Signal()                                   # which half of the head word is next
        words_left = Signal(ADDR_WIDTH - 2)               # command words not yet consumed
        offset = Signal(ADDR_WIDTH)                       # byte offset of the next command word
        have = fetchq.r_stream.valid
        word = Signal(32)
        m.d.comb += word.eq(fetchq.r_stream.payload.word_select(half, 32))
        consume = Signal()
        m.d.comb += fetchq.r_stream.ready.eq((consume & half) | ~running)   # drain when not running
        popped = fetchq.r_stream.valid & fetchq.r_stream.ready
        m.d.sync += inflight.eq(inflight + issued - popped)
        with m.If(consume):
            m.d.sync += [half.eq(~half), words_left.eq(words_left - 1), offset.eq(offset + 4)]
        return SimpleNamespace(fetch_word=fetch_word, fetch_left=fetch_left, inflight=inflight, half=half,
                               words_left=words_left, offset=offset, have=have, word=word, consume=consume)

    def _wait_states(self, m, fault, fail, kernels, wait_limit, running, fetch_left):
        """KICK, DMA_START, DMA_WAIT, KERNEL_WAIT, STOP: the commands that wait for the DMA or the compute unit."""
        kick = self.compute.kick
        with m.State("KICK"):
            with m.If(fault != 0):
                fail(fault)
            with m.Else():
                m.d.comb += kick.valid.eq(kernels < self.max_kernels)
                with m.If(kick.valid & kick.ready):
                    m.d.sync += self.kernel_count.eq(self.kernel_count + 1)
                    m.next = "DECODE"
        with m.State("DMA_START"):
            with m.If(fault != 0):
                fail(fault)
            with m.Else():
                with m.If(self.dma.desc_error != 0):
                    fail(ErrorCode.DMA_DESCRIPTOR | self.dma.desc_error)
                with m.Else():
                    m.d.comb += self.dma.desc.valid.eq(1)
                    with m.If(self.dma.desc.ready):
                        m.d.sync += self.dma_count.eq(self.dma_count + 1)
                        m.next = "DECODE"
        with m.State("DMA_WAIT"):
            with m.If(fault != 0):
                fail(fault)
            with m.Else():
                with m.If(~self.dma.busy | (wait_limit != 0)):
                    m.next = "DECODE"
        with m.State("KERNEL_WAIT"):
            with m.If(fault != 0):
                fail(fault)
            with m.Else():
                with m.If(kernels <= wait_limit):
                    m.next = "DECODE"
        with m.State("STOP"):
            with m.If(fault != 0):
                fail(fault)
            with m.Else():
                with m.If(~self.dma.busy & (kernels == 0)):
                    m.d.sync += [running.eq(0), self.done.eq(1), fetch_left.eq(0)]
                    m.next = "IDLE"

    def _decode_cmd0(self, m, opcode, rf, fail):
        with m.Switch(opcode):
            with m.Case(CMD0.NPU_OP_STOP):
                m.next = "STOP"
            with m.Case(*KERNEL_OPS):
                m.next = "KICK"
            with m.Case(CMD0.NPU_OP_DMA_START):
                m.next = "DMA_START"
            with m.Case(CMD0.NPU_OP_DMA_WAIT):
                m.next = "DMA_WAIT"
            with m.Case(CMD0.NPU_OP_KERNEL_WAIT):
                m.next = "KERNEL_WAIT"
            with m.Case(*(CMD0[f"NPU_SET_{name}"] for name in STORED_CMD0)):
                m.d.comb += rf.cmd0_we.eq(1)
            with m.Case(CMD0.NPU_OP_PMU_MASK):
                m.d.sync += self.pmu_mask.eq(rf.cmd0_param[0])
            with m.Case(*(op for op in CMD0 if op not in KERNEL_OPS and op.name.removeprefix("NPU_SET_")
                          not in STORED_CMD0 and op not in (CMD0.NPU_OP_STOP, CMD0.NPU_OP_DMA_START,
                                                            CMD0.NPU_OP_DMA_WAIT, CMD0.NPU_OP_KERNEL_WAIT,
                                                            CMD0.NPU_OP_PMU_MASK))):
                pass   # IRQ and the registers the datapath does not use
            with m.Default():
                fail(ErrorCode.UNKNOWN_CMD0)
