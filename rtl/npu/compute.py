"""NPU compute unit: executes NPU_OP_CONV (CONV_2D, FULLY_CONNECTED), NPU_OP_DEPTHWISE and the identity
NPU_OP_POOL kicks (int8) from external memory, pipelined so that the MAC block takes one beat per cycle whenever its
operands are on chip.

Implements ``In(ComputeSignature)`` (:mod:`rtl.npu.controller`) and owns three external-memory ports
(:data:`rtl.npu.extmem.MemPortSignature`; the top arbitrates them): ``bus`` (scale/bias records and the compressed
weight stream), ``ifm_bus`` (the :class:`~rtl.npu.ifm_stager.IfmStager`) and ``ofm_bus`` (OFM writes only).
Nothing is computed outside the hardware.

Two kernel ops can be in the unit at once (``max_outstanding_kernels``): the **loader** takes a kick, checks it and
loads its records into one of two banks of the output unit's parameter memory and its weights into the brick RAM,
while the **engine** computes the previous op; the engine takes the ops in kick order and answers each with ``done``
or ``error``. So the weights of the next op decode while the current one computes. Per op:

1. **CHECK** (loader) the register snapshot against what this unit supports (listed below); an op that is not
   supported reaches the engine with that verdict and is answered with ``error`` (no memory traffic).
2. **RECORDS** (loader): stream ``OFM_DEPTH * 10`` bytes from ``SCALE_BASE`` through a byte serialiser into the
   :class:`~rtl.npu.output_unit.OutputUnit` parameter memory (one 10-byte Vela record per channel, the op's bank).
   The op is then handed to the engine, which starts as soon as the previous op is finished: its IFM stager starts
   filling the line buffer.
3. **RUN**, three overlapped activities:

   * **weights**: the ``WEIGHT_LENGTH`` bytes at ``WEIGHT_BASE`` go through the byte serialiser (a 4-word prefetch
     FIFO, so its responses never block the shared response path) into the
     :class:`~rtl.npu.weight_decoder.WeightDecoder`; its output (``mlw_codec.decode`` order) is written one weight
     per cycle into the *brick* RAM: one row = one ``OUB x 8`` brick (``weight[o][i]`` of one OFM ublock and one
     IFM ublock for one kernel element). Depthwise streams carry ``OUB`` weights per kernel element, written on the
     diagonal (``weight[o][o]``). The decoded count must equal the loop nest's (SPEC.md section 5). The brick RAM
     (``2 x`` :data:`WEIGHT_BUFFER_BYTES`) is one ring shared by the ops in flight: bricks are numbered globally in
     stream order, and the decoder is held while the brick it would write is a whole ring ahead of the first brick
     of the engine's current OFM block (every brick of an OFM block is reused by all its micro-blocks, so the block
     must be resident; an op whose largest OFM block does not fit the ring is refused). So a stream may be longer
     than the RAM, and the next op's weights load into whatever the current op no longer needs.
   * **issue**: for every OFM block, OFM ublock, OFM micro-block (``ublock_h x ublock_w`` positions), IFM block (32
     deep depth-first / 16 deep part-kernel-first), IFM ublock and kernel element, one beat: the brick (index from
     the loop nest, so the stream order is honoured) and each position's 8 IFM bytes from the stager's line buffer
     (padding taps flagged: they contribute 0) are read and registered, and fired into the
     :class:`~rtl.npu.mac.MacBlock` the next cycle. A beat waits only while its brick is not decoded yet (decoded
     bricks counter vs brick index; bricks are written in stream order), its IFM rows are not staged yet, or the
     MAC block has no room.
   * **output**: the MAC block hands a finished micro-block over (its result register) while the next one
     accumulates; its positions go one per cycle through the output unit (bias, scale, double rounding, zero point,
     clamp), and each position's ``OUB`` int8 values are written (one word, two when unaligned) with byte strobes
     (channels beyond the OFM depth and positions beyond the OFM masked). A small FIFO carries each position's
     address alongside the output unit's pipeline.

**Identity POOL.** When Vela cannot fuse an activation (RELU/RELU6) into the conv/depthwise/FC before it, it emits an
NPU_OP_POOL that only requantises and clamps (SPEC.md section 3): AVERAGE (param 1), 1x1 kernel, stride 1, no
padding, ``OFM_PRECISION[8]`` = 1 (global scale; ``generate_ofm_precision`` in Vela's
``register_command_stream_generator.py``), ``OFM_SCALE`` = 1 with shift 0 (``generate_ofm_scaling_for_pooling``,
its last branch), often in place (IFM base = OFM base) over a reshaped ``H x 1 x C`` view of the tensor. Its
result ``clamp((x - IFM_ZP) * 1 + OFM_ZP, ACT_MIN, ACT_MAX)`` is exactly a 1x1 depthwise with weight 1, bias 0,
scale 1, shift 0, and it runs as one: the loader skips both streams and writes that record into channels
``0 .. OUB-1`` of the op's bank (IDENTITY), the engine feeds the MAC block a constant diagonal brick and points every
output-unit read at that record, so its channel count is not limited by :data:`MAX_CHANNELS`. In place is safe: every
OFM byte is written only after the same IFM byte was read (and the IFM stager never re-reads it). Other pools (real
kernels, MAX, other scales) are refused.

Supported (anything else is refused with ``UNSUPPORTED``): S8 IFM/OFM, NHWC or NHCWB16, per-channel scale stream with
TFL rounding (the identity POOL: as above), ``ACTIVATION`` = 0 (clamp only), kernels up to 8x8 (no sub-kernel
decomposition), any stride, no dilation, up to :data:`MAX_CHANNELS` OFM channels, one OFM block's decoded weights
up to ``2 x`` :data:`WEIGHT_BUFFER_BYTES` (Vela makes a FULLY_CONNECTED's block its whole OFM depth, so there it is
the whole weight matrix, padded to 32 inputs), IFM tile 0 covering the whole IFM, and the IFM rows one micro-block
row needs fitting the line buffer (``shram_kib``; see :mod:`rtl.npu.ifm_stager`). Not implemented: pooling with real
kernels, ELEMENTWISE, LUT activations, IFM tiles 1-3.

Failures never hang: a memory response with ``err`` is recorded and reported once the op has finished; a decoder
error or a decoded-length mismatch stops the op at once (it could otherwise wait for bricks that never come): the
engine stops issuing, lets every outstanding IFM read come back, then reports ``error`` (the loader's reads are
always complete by then: a failed stream is still consumed to its end). The MAC block, output unit and their FIFOs
are reset when the engine starts an op. Error causes are held on ``error_code`` (:class:`ComputeError`) until the
engine starts the next op.

Timing: RECORDS ~10 cycles per OFM channel (hidden behind the previous op when there is one); then one MAC beat per
cycle unless the weight decoder (about one weight per cycle; a beat needs its brick, and the stream order puts the
last IFM block's bricks of the first OFM ublock late) or the IFM stager (one external read per cycle) falls behind;
the output of a micro-block takes ``positions`` cycles and overlaps the next micro-block's beats.
"""
from dataclasses import dataclass

from amaranth import Array, Cat, Const, Module, Mux, ResetInserter, Signal, Value, signed
from amaranth.lib import data, enum, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.common.fifo import MemoryFIFO
from rtl.npu.config import NpuConfig
from rtl.npu.controller import CMD0, ComputeSignature, KernelOp, Registers
from rtl.npu.dma import NUM_REGIONS
from rtl.npu.extmem import ADDR_WIDTH, WORD_BITS, MemPortSignature
from rtl.npu.ifm_stager import IfmStager, fm_addr, line_buffer_geometry
from rtl.npu.mac import MacBlock, MacBlockConfig
from rtl.npu.output_unit import OutputUnit, OutputUnitConfig
from rtl.npu.weight_decoder import WeightDecoder, WeightDecoderConfig

__all__ = ["Compute", "ComputeError"]


class ComputeError(enum.Enum, shape=3):
    """Why the last op failed (``error_code``, held until the engine starts the next op)."""
    NONE = 0
    UNSUPPORTED = 1     # the register snapshot asks for something this unit does not implement
    MEMORY = 2          # a read came back with ``err``
    DECODE = 3          # the weight decoder reported a malformed stream
    WEIGHT_COUNT = 4    # the decoded stream is not as long as the op's weight-order loop nest

#: OFM channels whose records one bank of the output unit holds (an op with more channels is refused).
MAX_CHANNELS = 256
#: Half the brick RAM in bytes (the RAM is a ring of twice this; an op whose largest OFM block's decoded weights do
#: not fit it is refused).
WEIGHT_BUFFER_BYTES = 32768
IUB = 8   # IFM ublock depth (every U55 config)
_PREFETCH = 4    # weight-stream words requested ahead of the byte serialiser
_OUT_QUEUE = 8   # OFM positions between the output unit's input and the writer (>= its pipeline depth + 1)
_POOL_AVERAGE = 1    # NPU_OP_POOL param (``pooling_mode.AVERAGE`` in ethos_u55_regs.py)
#: Output-unit record of the identity POOL: bias 0, scale 1, shift 0 (little-endian 80-bit, SPEC.md section 5).
_IDENTITY_RECORD = 1 << 40


class _Block(data.Struct):
    """A micro-block on its way from the MAC block to the output unit."""
    oy: 17
    ox: 17
    ch0: 17


class _Pos(data.Struct):
    """One OFM position on its way through the output unit."""
    addr: ADDR_WIDTH
    mask: 8


@dataclass(frozen=True)
class _Op:
    """Signals derived from one register snapshot (quasi-static for the op)."""
    regs: Value
    dw: Value       # depthwise, or the identity POOL that runs like a 1x1 depthwise
    pool: Value
    pk: Value
    O: Value
    I: Value
    KH: Value
    KW: Value
    OB: Value
    OH: Value
    OW: Value
    IH: Value
    IW: Value
    sx: Value
    sy: Value
    ne: Value
    ib_step: Value
    n_oub_total: Value
    per_ou: Value
    expected: Value
    expected_bytes: Value
    ublocks: Value
    span: Value
    ifm_fmt: Value
    ofm_fmt: Value


def _derive(m, regs, opcode, oub: int, prefix: str) -> _Op:
    """The op parameters of a register snapshot (SPEC.md sections 4-5)."""
    def sig(name, shape=17):
        return Signal(shape, name=f"{prefix}{name}")
    v = {name: sig(name) for name in ("O", "I", "KH", "KW", "OB", "OH", "OW", "IH", "IW")}
    sx, sy, pk, dw, pool = sig("sx", 3), sig("sy", 3), sig("pk", 1), sig("dw", 1), sig("pool", 1)
    ks = regs.KERNEL_STRIDE
    m.d.comb += [
        pool.eq(opcode == CMD0.NPU_OP_POOL),
        dw.eq((opcode == CMD0.NPU_OP_DEPTHWISE) | pool),
        v["O"].eq(regs.OFM_DEPTH_M1 + 1), v["I"].eq(regs.IFM_DEPTH_M1 + 1),
        v["KH"].eq(regs.KERNEL_HEIGHT_M1 + 1), v["KW"].eq(regs.KERNEL_WIDTH_M1 + 1),
        v["OB"].eq(regs.OFM_BLK_DEPTH_M1 + 1), v["OH"].eq(regs.OFM_HEIGHT_M1 + 1), v["OW"].eq(regs.OFM_WIDTH_M1 + 1),
        v["IH"].eq(regs.IFM_HEIGHT0_M1 + 1), v["IW"].eq(regs.IFM_WIDTH0_M1 + 1),
        sx.eq(1 + Cat(ks[0], ks[6])), sy.eq(1 + Cat(ks[1], ks[9])), pk.eq(ks[2] & ~dw),
    ]
    kk = sig("kk", 8)     # kernel elements KH*KW (<= 64)
    ne = sig("ne", 8)     # elements per sub-kernel in the stream (PK: rounded up to 4)
    m.d.comb += [kk.eq(v["KH"][:4] * v["KW"][:4]), ne.eq(Mux(pk | dw, (kk + 3) & ~3, kk))]
    ib_step = sig("ib_step", 6)
    m.d.comb += ib_step.eq(Mux(pk, 16, 32))
    I, O = v["I"], v["O"]
    n_iu_total = sig("n_iu_total", 16)   # bricks per (OFM ublock, kernel element) over the whole IFM depth
    m.d.comb += n_iu_total.eq(Mux(dw, 1, Mux(pk, (I + 7) >> 3, ((I + 31) >> 5) << 2)))
    n_oub_total = sig("n_oub_total", 16)
    m.d.comb += n_oub_total.eq((O + oub - 1) >> (oub.bit_length() - 1))
    per_ou = sig("per_ou", 24)       # bricks per OFM ublock
    m.d.comb += per_ou.eq(ne * n_iu_total)
    expected = sig("expected", 32)   # bricks in the decoded stream
    m.d.comb += expected.eq(n_oub_total * per_ou)
    expected_bytes = sig("expected_bytes", 32)   # weights in the decoded stream (depthwise: OUB per brick)
    m.d.comb += expected_bytes.eq(Mux(dw, expected * oub, expected * oub * IUB))
    ublocks = sig("ublocks", 14)     # line-buffer words per IFM pixel
    m.d.comb += ublocks.eq(Mux(dw, 1, (I + 7) >> 3))
    span = sig("span")               # IFM rows one micro-block row reads
    return _Op(regs=regs, dw=dw, pool=pool, pk=pk, sx=sx, sy=sy, ne=ne, ib_step=ib_step, n_oub_total=n_oub_total,
               per_ou=per_ou, expected=expected, expected_bytes=expected_bytes, ublocks=ublocks, span=span,
               ifm_fmt=regs.IFM_PRECISION[6:8], ofm_fmt=regs.OFM_PRECISION[6:8], **v)


class Compute(wiring.Component):
    """The compute unit (see the module docstring).

    Members
    -------
    port : ``In(ComputeSignature)``
    bus, ifm_bus, ofm_bus : ``Out(MemPortSignature)``  (``id`` is left 0, the top routes responses)
    basep : ``In(32).array(8)``   region base pointers
    last_kick : ``Out(KernelOp)``   the most recently accepted kick (debug)
    error_code : ``Out(ComputeError)``
    """

    def __init__(self, config: NpuConfig):
        self.config = config
        self.uh, self.uw, self.oub = config.ublock_h, config.ublock_w, config.ublock_d
        self.positions = self.uh * self.uw
        self.brick_bytes = self.oub * IUB
        self.wb_depth = WEIGHT_BUFFER_BYTES // self.brick_bytes
        self.line_buffer_words = config.shram_bytes // 8
        super().__init__({"port": In(ComputeSignature), "bus": Out(MemPortSignature),
                          "ifm_bus": Out(MemPortSignature), "ofm_bus": Out(MemPortSignature),
                          "basep": In(ADDR_WIDTH).array(NUM_REGIONS), "last_kick": Out(KernelOp),
                          "error_code": Out(ComputeError)})

    def elaborate(self, platform):
        m = Module()
        P, UH, UW, OUB, BB = self.positions, self.uh, self.uw, self.oub, self.brick_bytes
        clear = Signal()   # pulsed when the engine starts an op: its blocks start clean even after an abort
        mac = MacBlock(MacBlockConfig(UH, UW, OUB, IUB, 32))
        ou = OutputUnit(OutputUnitConfig(lanes=OUB, channels=2 * MAX_CHANNELS, acc_width=32))
        blocks = MemoryFIFO(width=_Block.as_shape().size, depth=4)
        outq = MemoryFIFO(width=_Pos.as_shape().size, depth=_OUT_QUEUE)
        m.submodules.mac = ResetInserter(clear)(mac)
        m.submodules.out = ResetInserter(clear)(ou)
        m.submodules.blocks = ResetInserter(clear)(blocks)
        m.submodules.outq = ResetInserter(clear)(outq)
        m.submodules.wfifo = wfifo = MemoryFIFO(width=WORD_BITS, depth=_PREFETCH)
        m.submodules.dec = dec = WeightDecoder(config=WeightDecoderConfig(in_width=8))
        m.submodules.stager = stg = IfmStager(depth=self.line_buffer_words, positions=P)
        wiring.connect(m, wiring.flipped(self.ifm_bus), stg.bus)
        ring = 2 * self.wb_depth   # brick RAM rows: one ring shared by the ops in flight
        m.submodules.wbuf = wmem = Memory(shape=8 * BB, depth=ring, init=[])
        w_wr = wmem.write_port(granularity=8)
        w_rd = wmem.read_port(domain="comb")
        ring_bits = (ring - 1).bit_length()
        # Bricks are numbered globally (32-bit, in write order). ``w_start[b]``: number of the first brick of the op
        # in slot b; ``w_end``: one past the last brick loaded so far; ``w_low``: the engine's oldest brick still
        # needed (the first of its current OFM block). The loader writes brick n only while n < w_low + ring.
        w_start = Array(Signal(32, name=f"w_start_{b}") for b in range(2))
        w_end = Signal(32)
        w_low = Signal(32)

        kick, bus = self.port.kick, self.bus

        # ---- per-slot status: slot b holds one op (its records bank, its place in the brick ring) from its kick
        # until the engine ends it ----
        bank_busy = Array(Signal(name=f"bank_busy_{b}") for b in range(2))
        w_done = Array(Signal(name=f"w_done_{b}") for b in range(2))      # its weight stream is decoded
        w_bad = Array(Signal(name=f"w_bad_{b}") for b in range(2))        # ... and unusable (abort the op)
        w_code = Array(Signal(ComputeError, name=f"w_code_{b}") for b in range(2))
        w_memerr = Array(Signal(name=f"w_memerr_{b}") for b in range(2))  # a record/weight read answered err

        # ================================ loader: CHECK, RECORDS, WEIGHTS ========================================
        lregs = Signal(Registers)
        lopcode = Signal(10)
        lparam = Signal(16)
        lbank = Signal()         # bank of the op being loaded
        lbank_next = Signal()
        lcode = Signal(ComputeError)   # verdict of CHECK, handed to the engine
        pend = Signal()          # an op is waiting for the engine (lregs/lopcode/lbank/lcode)
        m.d.comb += [self.last_kick.regs.eq(lregs), self.last_kick.opcode.eq(lopcode)]
        lop = _derive(m, lregs, lopcode, OUB, "l_")
        m.d.comb += lop.span.eq((UH - 1) * lop.sy + lop.KH)
        _, _, _, l_fits = line_buffer_geometry(m, self.line_buffer_words, lop.IW, lop.ublocks, lop.IH, lop.dw,
                                               lop.span, "l_")
        need_h = Signal(signed(20))
        need_w = Signal(signed(20))
        m.d.comb += [need_h.eq((lop.OH - 1) * lop.sy + lop.KH - lregs.IFM_PAD_TOP - lregs.IFM_PAD_BOTTOM),
                     need_w.eq((lop.OW - 1) * lop.sx + lop.KW - lregs.IFM_PAD_LEFT - lregs.IFM_PAD_RIGHT)]
        ks = lregs.KERNEL_STRIDE
        # Bricks of the first (largest) OFM block: all of them must fit the ring at once.
        l_block_bricks = Signal(32)
        l_cob = Mux(lop.O < lop.OB, lop.O, lop.OB)
        m.d.comb += l_block_bricks.eq(((l_cob + OUB - 1) >> (OUB.bit_length() - 1)) * lop.per_ou)
        # Kernel ops with a weight stream and per-channel records (OFM_PRECISION[8] = 0: scale stream).
        weighted_bad = Signal()
        m.d.comb += weighted_bad.eq(
            lregs.OFM_PRECISION[8] | (lop.O > MAX_CHANNELS) | (l_block_bricks > ring)
            | (lregs.WEIGHT_LENGTH == 0) | (lregs.SCALE_LENGTH < lop.O * 10))
        # The identity POOL (module docstring): AVERAGE, 1x1, stride 1, no padding, global scale 1 / shift 0.
        pool_bad = Signal()
        m.d.comb += pool_bad.eq(
            (lparam != _POOL_AVERAGE) | (lop.KH != 1) | (lop.KW != 1) | ks[0] | ks[1] | ks[6] | ks[9]
            | (lregs.IFM_PAD_TOP != 0) | (lregs.IFM_PAD_LEFT != 0) | (lregs.IFM_PAD_BOTTOM != 0)
            | (lregs.IFM_PAD_RIGHT != 0) | ~lregs.OFM_PRECISION[8] | (lregs.OFM_SCALE != 1)
            | (lregs.OFM_SCALE_SHIFT != 0))
        unsupported = Signal()
        m.d.comb += unsupported.eq(
            ((lopcode != CMD0.NPU_OP_CONV) & ~lop.dw)
            | Mux(lop.pool, pool_bad, weighted_bad)
            | (lregs.IFM_PRECISION[0:4] != 1) | (lop.ifm_fmt > 1) | (lregs.IFM_PRECISION[8:10] != 0)
            | (lregs.OFM_PRECISION[0:3] != 1) | (lop.ofm_fmt > 1)
            | (lregs.OFM_PRECISION[14:16] != 0)
            | (lregs.IFM_UPSCALE != 0) | (lregs.ACC_FORMAT != 0) | (lregs.ACTIVATION[0:12] != 0)
            | (lop.KH > 8) | (lop.KW > 8) | ks[3] | ks[4] | ks[5]
            | (lop.IH < need_h) | (lop.IW < need_w)
            | (lop.OB[:3 if OUB == 8 else 2] != 0) | ~l_fits
        )

        # Byte serialiser over ``bus`` (RECORDS and WEIGHTS), through a prefetch FIFO.
        bs_start = Signal(ADDR_WIDTH)      # byte address of the first byte
        bs_raddr = Signal(ADDR_WIDTH)      # next word to request
        bs_words = Signal(ADDR_WIDTH)      # words still to request
        bs_left = Signal(ADDR_WIDTH)       # bytes still to emit
        bs_inflight = Signal(range(_PREFETCH + 1))
        bs_buf = Signal(WORD_BITS)
        bs_idx = Signal(3)
        bs_have = Signal()
        bs_first = Signal()
        bs_byte = Signal(8)
        bs_take = Signal()
        bs_last = Signal()
        m.d.comb += [bs_byte.eq(bs_buf.word_select(bs_idx, 8)), bs_last.eq(bs_left == 1)]
        lmem_err = Signal()   # a record/weight read came back with err (sticky for the op)
        fail = Signal()       # more weights decoded than the loop nest has

        # Weight path: decoder output -> brick ring.
        w_cnt = Signal(32)      # decoded weights so far
        w8 = dec.o_stream.payload[:8]
        diag = Cat(*[w8 if b // IUB == b % IUB else Const(0, 8) for b in range(BB)])
        oz = w_cnt[:OUB.bit_length() - 1]
        row = Mux(lop.dw, w_cnt >> (OUB.bit_length() - 1), w_cnt >> (BB.bit_length() - 1))
        w_abs = Signal(32)      # global number of the brick being written
        w_room = Signal()
        w_ahead = Signal(signed(34))
        m.d.comb += [w_abs.eq(w_start[lbank] + row), w_ahead.eq(w_abs - w_low), w_room.eq(w_ahead < ring),
                     w_wr.addr.eq(w_abs[:ring_bits]), w_wr.data.eq(Mux(lop.dw, diag, Cat(*[w8] * BB)))]
        w_en = Mux(lop.dw, Const(0xFF, BB) << (oz * IUB), Const(1, BB) << w_cnt[:BB.bit_length() - 1])
        bricks_done = Signal(32)
        m.d.comb += bricks_done.eq(row)

        m.d.comb += [dec.i_stream.payload.data.eq(bs_byte), dec.i_stream.payload.last.eq(bs_last)]
        rec = Signal(80)
        rec_n = Signal(4)
        rec_ch = Signal(17)
        engine_takes = Signal()
        with m.If(engine_takes):
            m.d.sync += pend.eq(0)

        with m.FSM(name="loader"):
            with m.State("IDLE"):
                m.d.comb += kick.ready.eq(~pend & ~bank_busy[lbank_next])
                with m.If(kick.valid & kick.ready):
                    m.d.sync += [lregs.eq(kick.payload.regs), lopcode.eq(kick.payload.opcode),
                                 lparam.eq(kick.payload.param), fail.eq(0),
                                 lmem_err.eq(0), lbank.eq(lbank_next), lbank_next.eq(~lbank_next),
                                 bank_busy[lbank_next].eq(1), w_done[lbank_next].eq(0), w_bad[lbank_next].eq(0),
                                 w_start[lbank_next].eq(w_end),
                                 w_memerr[lbank_next].eq(0)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += dec.start.eq(1)
                scale = self._basep_sel(lregs.SCALE_REGION) + lregs.SCALE_BASE
                m.d.sync += [
                    bs_start.eq(scale), bs_raddr.eq(scale & ~7), bs_words.eq(((scale & 7) + lop.O * 10 + 7) >> 3),
                    bs_left.eq(lop.O * 10), bs_have.eq(0), bs_first.eq(1), rec_n.eq(0), rec_ch.eq(0), w_cnt.eq(0),
                ]
                with m.If(unsupported):
                    m.d.sync += [lcode.eq(ComputeError.UNSUPPORTED), pend.eq(1), bs_words.eq(0), bs_left.eq(0),
                                 w_done[lbank].eq(1)]
                    m.next = "IDLE"
                with m.Elif(lop.pool):
                    m.d.sync += [lcode.eq(ComputeError.NONE), bs_words.eq(0), bs_left.eq(0)]
                    m.next = "IDENTITY"
                with m.Else():
                    m.d.sync += lcode.eq(ComputeError.NONE)
                    m.next = "RECORDS"
            with m.State("IDENTITY"):
                # POOL: no streams; channels 0..OUB-1 of the bank get the record {bias 0, scale 1, shift 0}.
                m.d.comb += [ou.param_we.eq(1), ou.param_channel.eq(Cat(rec_ch[:8], lbank)),
                             ou.param_record.eq(_IDENTITY_RECORD)]
                m.d.sync += rec_ch.eq(rec_ch + 1)
                with m.If(rec_ch == OUB - 1):
                    m.d.sync += [pend.eq(1), w_done[lbank].eq(1)]
                    m.next = "IDLE"
            with m.State("RECORDS"):
                m.d.comb += bs_take.eq(bs_have)
                with m.If(bs_take):
                    m.d.sync += rec.eq(Cat(rec[8:], bs_byte))
                    m.d.sync += rec_n.eq(Mux(rec_n == 9, 0, rec_n + 1))
                    with m.If(rec_n == 9):
                        m.d.comb += [ou.param_we.eq(1), ou.param_channel.eq(Cat(rec_ch[:8], lbank)),
                                     ou.param_record.eq(Cat(rec[8:], bs_byte))]
                        m.d.sync += rec_ch.eq(rec_ch + 1)
                with m.If((bs_left == 0) & (bs_words == 0)):
                    base = self._basep_sel(lregs.WEIGHT_REGION) + lregs.WEIGHT_BASE
                    m.d.sync += [
                        bs_start.eq(base), bs_raddr.eq(base & ~7),
                        bs_words.eq(((base & 7) + lregs.WEIGHT_LENGTH + 7) >> 3),
                        bs_left.eq(lregs.WEIGHT_LENGTH), bs_have.eq(0), bs_first.eq(1), pend.eq(1),
                    ]
                    m.next = "WEIGHTS"
            with m.State("WEIGHTS"):
                m.d.comb += [dec.i_stream.valid.eq(bs_have), bs_take.eq(bs_have & dec.i_stream.ready),
                             dec.o_stream.ready.eq(w_room | (w_cnt >= lop.expected_bytes))]
                with m.If(dec.o_stream.valid & dec.o_stream.ready):
                    with m.If(w_cnt < lop.expected_bytes):
                        m.d.comb += w_wr.en.eq(w_en)
                    with m.Else():
                        m.d.sync += fail.eq(1)
                    m.d.sync += w_cnt.eq(w_cnt + 1)
                with m.If((bs_left == 0) & (bs_words == 0) & (dec.done | dec.error)):
                    bad = dec.error | (w_cnt != lop.expected_bytes) | fail
                    m.d.sync += w_end.eq(w_start[lbank] + lop.expected)
                    m.d.sync += [w_done[lbank].eq(1), w_bad[lbank].eq(bad), w_memerr[lbank].eq(lmem_err),
                                 w_code[lbank].eq(Mux(lmem_err, ComputeError.MEMORY, Mux(
                                     dec.error, ComputeError.DECODE, ComputeError.WEIGHT_COUNT)))]
                    m.next = "IDLE"

        # Requests only while the prefetch FIFO has room for the answer, so responses are always taken at once
        # (bs_words/bs_left are 0 outside RECORDS / WEIGHTS).
        req_go = Signal()
        with m.If((bs_words != 0) & (bs_inflight + wfifo.level < _PREFETCH)):
            m.d.comb += [bus.req.valid.eq(1), bus.req.payload.addr.eq(bs_raddr)]
            with m.If(bus.req.ready):
                m.d.comb += req_go.eq(1)
                m.d.sync += [bs_raddr.eq(bs_raddr + 8), bs_words.eq(bs_words - 1)]
        m.d.comb += [bus.resp.ready.eq(1), wfifo.w_stream.payload.eq(bus.resp.payload.rdata),
                     wfifo.w_stream.valid.eq(bus.resp.valid)]
        with m.If(bus.resp.valid & bus.resp.payload.err):
            m.d.sync += lmem_err.eq(1)
        with m.If(req_go & ~bus.resp.valid):
            m.d.sync += bs_inflight.eq(bs_inflight + 1)
        with m.Elif(~req_go & bus.resp.valid):
            m.d.sync += bs_inflight.eq(bs_inflight - 1)
        with m.If(bs_take):
            m.d.sync += [bs_left.eq(bs_left - 1), bs_idx.eq(bs_idx + 1)]
            with m.If((bs_idx == 7) | bs_last):
                m.d.sync += bs_have.eq(0)
        # The next word loads in the cycle the last byte of the current one is taken (no bubble).
        with m.If((~bs_have & (bs_left != 0)) | (bs_take & (bs_idx == 7) & ~bs_last)):
            m.d.comb += wfifo.r_stream.ready.eq(1)
            with m.If(wfifo.r_stream.valid):
                m.d.sync += [bs_buf.eq(wfifo.r_stream.payload), bs_have.eq(1), bs_first.eq(0),
                             bs_idx.eq(Mux(bs_first, bs_start[:3], 0))]

        # ================================ engine: issue, MAC, output ============================================
        regs = Signal(Registers)
        opcode = Signal(10)
        ebank = Signal()
        op = _derive(m, regs, opcode, OUB, "")
        m.d.comb += op.span.eq((UH - 1) * op.sy + op.KH)
        O, I, KH, KW, OB, OH, OW, IH, IW = op.O, op.I, op.KH, op.KW, op.OB, op.OH, op.OW, op.IH, op.IW
        dw, pk, sx, sy, ne, ib_step = op.dw, op.pk, op.sx, op.sy, op.ne, op.ib_step

        ifm_base = Signal(ADDR_WIDTH)
        ofm_base = Signal(ADDR_WIDTH)
        m.d.comb += [ifm_base.eq(self._basep_sel(regs.IFM_REGION) + regs.IFM_BASE0),
                     ofm_base.eq(self._basep_sel(regs.OFM_REGION) + regs.OFM_BASE0)]
        m.d.comb += [
            stg.base.eq(ifm_base), stg.height.eq(IH), stg.width.eq(IW), stg.ublocks.eq(op.ublocks),
            stg.stride_y.eq(regs.IFM_STRIDE_Y), stg.stride_x.eq(regs.IFM_STRIDE_X), stg.stride_c.eq(regs.IFM_STRIDE_C),
            stg.nhcwb16.eq(op.ifm_fmt == 1), stg.ring.eq(dw), stg.passes.eq(op.n_oub_total),
            stg.chan_step.eq(Mux(dw, OUB, 0)), stg.span.eq(op.span),
        ]

        # Issue counters (the loop nest).
        blk_ob = Signal(17)       # first channel of the OFM block
        blk_base = Signal(24)     # first brick of the OFM block
        ou_idx = Signal(8)        # OFM ublock in the block
        oy_b = Signal(17)
        ox_b = Signal(17)
        ib = Signal(17)
        iu = Signal(6)
        ky = Signal(4)
        kx = Signal(4)
        grp_base = Signal(24)     # first brick of the current IFM-block group (relative to blk_base)
        cbase = Signal(32)        # the stager's global row number of IFM row 0 in this pass
        all_issued = Signal()
        cob = Signal(17)
        n_ou = Signal(8)
        ci_left = Signal(17)
        n_iu_g = Signal(6)
        grp_size = Signal(24)
        m.d.comb += [
            cob.eq(Mux(O - blk_ob < OB, O - blk_ob, OB)), n_ou.eq((cob + OUB - 1) >> (OUB.bit_length() - 1)),
            ci_left.eq(I - ib), n_iu_g.eq(Mux(dw, 1, Mux(ci_left < ib_step, (ci_left + 7) >> 3, ib_step >> 3))),
            grp_size.eq(n_ou * ne * Mux(pk, n_iu_g, 4)),
        ]
        e = Signal(8)
        m.d.comb += e.eq(ky * KW[:4] + kx)
        brick = Signal(24)
        m.d.comb += brick.eq(blk_base + grp_base + Mux(pk | dw, iu * (n_ou * ne) + ou_idx * ne + e,
                                                      ou_idx * ne * 4 + e * 4 + iu))
        last_beat = Signal()
        m.d.comb += last_beat.eq((kx == KW - 1) & (ky == KH - 1) & (iu == n_iu_g - 1) & (dw | (ib + ib_step >= I)))
        last_pos_x = Signal()
        last_pos_y = Signal()
        last_ou = Signal()
        last_blk = Signal()
        m.d.comb += [last_pos_x.eq(ox_b + UW >= OW), last_pos_y.eq(oy_b + UH >= OH), last_ou.eq(ou_idx == n_ou - 1),
                     last_blk.eq(blk_ob + OB >= O)]
        ch0 = Signal(17)
        m.d.comb += ch0.eq(blk_ob + ou_idx * OUB)

        # IFM taps of the beat, read from the stager's line buffer.
        pos_pad = [Signal(name=f"ifm_pad_{p}") for p in range(P)]
        for p in range(P):
            ph, pw = divmod(p, UW)
            oy = oy_b + ph
            ox = ox_b + pw
            iy = Signal(signed(20), name=f"iy_{p}")
            ix = Signal(signed(20), name=f"ix_{p}")
            m.d.comb += [iy.eq(oy * sy + ky - regs.IFM_PAD_TOP), ix.eq(ox * sx + kx - regs.IFM_PAD_LEFT)]
            pad = (oy >= OH) | (ox >= OW) | (iy < 0) | (iy >= IH) | (ix < 0) | (ix >= IW)
            m.d.comb += [
                pos_pad[p].eq(pad),
                stg.rd_row[p].eq(cbase + Mux(pad, 0, iy[:17])), stg.rd_x[p].eq(Mux(pad, 0, ix[:17])),
                stg.rd_u[p].eq(Mux(dw, 0, (ib >> 3) + iu)),
            ]
        lo_row = Signal(signed(20))     # lowest IFM row this micro-block row reads
        hi_row = Signal(signed(20))     # highest IFM row this beat reads
        m.d.comb += [lo_row.eq(oy_b * sy - regs.IFM_PAD_TOP), hi_row.eq((oy_b + UH - 1) * sy + ky - regs.IFM_PAD_TOP),
                     stg.low.eq(cbase + Mux(lo_row < 0, 0, lo_row[:17]))]
        rows_ok = Signal()
        m.d.comb += rows_ok.eq((hi_row < 0) | (stg.rows > cbase + Mux(hi_row >= IH, IH - 1, hi_row[:17])))
        # The brick is there once the loader has decoded past it (the loader is decoding this op unless done).
        brick_ok = Signal()
        m.d.comb += brick_ok.eq(w_done[ebank] | (brick < bricks_done))
        identity = Const(sum(1 << (8 * b) for b in range(BB) if b // IUB == b % IUB), 8 * BB)   # weight[o][o] = 1

        # The registered beat (MAC input).
        s1_valid = Signal()
        s1_act = Signal(WORD_BITS * P)
        s1_pad = Signal(P)
        s1_last = Signal()
        s1_brick = Signal(8 * BB)
        m.d.comb += w_rd.addr.eq((w_start[ebank] + brick)[:ring_bits])
        for p in range(P):
            m.d.comb += mac.act_stream.payload.data[p].eq(s1_act.word_select(p, WORD_BITS))
        m.d.comb += [
            mac.act_stream.payload.pad.eq(s1_pad), mac.act_stream.payload.last.eq(s1_last),
            mac.weight_stream.payload.eq(s1_brick),
            mac.act_stream.valid.eq(s1_valid), mac.weight_stream.valid.eq(s1_valid),
            mac.ifm_zero_point.eq(regs.IFM_ZERO_POINT.as_signed()),
            ou.ofm_zero_point.eq(regs.OFM_ZERO_POINT.as_signed()),
            ou.act_min.eq(regs.ACTIVATION_MIN.as_signed()), ou.act_max.eq(regs.ACTIVATION_MAX.as_signed()),
        ]
        fired = Signal()
        m.d.comb += fired.eq(s1_valid & mac.act_stream.ready)
        running = Signal()
        issue = Signal()
        m.d.comb += issue.eq(running & ~all_issued & brick_ok & rows_ok & (~s1_valid | fired)
                             & (~last_beat | blocks.w_stream.ready))
        new_block = Signal(_Block)
        m.d.comb += [new_block.oy.eq(oy_b), new_block.ox.eq(ox_b), new_block.ch0.eq(ch0),
                     blocks.w_stream.payload.eq(new_block), blocks.w_stream.valid.eq(issue & last_beat)]
        with m.If(issue):
            m.d.sync += [s1_valid.eq(1), s1_act.eq(Cat(*stg.rd_data)), s1_pad.eq(Cat(*pos_pad)),
                         s1_last.eq(last_beat),
                         s1_brick.eq(Mux(op.pool, identity, w_rd.data))]
            with m.If(~last_beat):
                with m.If(kx != KW - 1):
                    m.d.sync += kx.eq(kx + 1)
                with m.Else():
                    m.d.sync += kx.eq(0)
                    with m.If(ky != KH - 1):
                        m.d.sync += ky.eq(ky + 1)
                    with m.Else():
                        m.d.sync += ky.eq(0)
                        with m.If(iu != n_iu_g - 1):
                            m.d.sync += iu.eq(iu + 1)
                        with m.Else():
                            m.d.sync += [iu.eq(0), ib.eq(ib + ib_step), grp_base.eq(grp_base + grp_size)]
            with m.Else():
                # Next micro-block.
                m.d.sync += [ib.eq(0), iu.eq(0), ky.eq(0), kx.eq(0), grp_base.eq(0)]
                with m.If(~last_pos_x):
                    m.d.sync += ox_b.eq(ox_b + UW)
                with m.Else():
                    m.d.sync += ox_b.eq(0)
                    with m.If(~last_pos_y):
                        m.d.sync += oy_b.eq(oy_b + UH)
                    with m.Else():
                        # Next pass over the IFM (the stager re-stages it unless it is resident).
                        m.d.sync += oy_b.eq(0)
                        with m.If(~stg.resident):
                            m.d.sync += cbase.eq(cbase + IH)
                        with m.If(~last_ou):
                            m.d.sync += ou_idx.eq(ou_idx + 1)
                        with m.Else():
                            m.d.sync += [ou_idx.eq(0), blk_base.eq(blk_base + n_ou * op.per_ou),
                                         w_low.eq(w_start[ebank] + blk_base + n_ou * op.per_ou),
                                         blk_ob.eq(blk_ob + OB)]
                            with m.If(last_blk):
                                m.d.sync += all_issued.eq(1)
        with m.Elif(fired):
            m.d.sync += s1_valid.eq(0)

        # Output: MAC result -> output unit -> OFM writer.
        blk = Signal(_Block)
        m.d.comb += blk.eq(blocks.r_stream.payload)
        feed_p = Signal(range(P))
        f_oy = Signal(17)
        f_ox = Signal(17)
        m.d.comb += [f_oy.eq(blk.oy + Array(Const(p // UW, 2) for p in range(P))[feed_p]),
                     f_ox.eq(blk.ox + Array(Const(p % UW, 2) for p in range(P))[feed_p])]
        lane_mask = Cat(*[(blk.ch0 + lane < O) for lane in range(OUB)])
        pos = Signal(_Pos)
        m.d.comb += [
            pos.addr.eq(fm_addr(ofm_base, f_oy, f_ox, blk.ch0, regs.OFM_STRIDE_Y, regs.OFM_STRIDE_X,
                                regs.OFM_STRIDE_C, op.ofm_fmt == 1)),
            pos.mask.eq(Mux((f_oy < OH) & (f_ox < OW), lane_mask, 0)),
            ou.i_stream.payload.channel.eq(Cat(Mux(op.pool, 0, blk.ch0[:8]), ebank)),   # POOL: one global record
            ou.i_stream.payload.acc.eq(Array(mac.acc_stream.payload.as_value()[p * OUB * 32:(p + 1) * OUB * 32]
                                             for p in range(P))[feed_p]),
            ou.i_stream.valid.eq(mac.acc_stream.valid & blocks.r_stream.valid & outq.w_stream.ready),
            outq.w_stream.payload.eq(pos),
            outq.w_stream.valid.eq(ou.i_stream.valid & ou.i_stream.ready),
        ]
        with m.If(ou.i_stream.valid & ou.i_stream.ready):
            m.d.sync += feed_p.eq(Mux(feed_p == P - 1, 0, feed_p + 1))
            with m.If(feed_p == P - 1):
                m.d.comb += [mac.acc_stream.ready.eq(1), blocks.r_stream.ready.eq(1)]

        wr_have = Signal()
        wr_phase = Signal()
        wr_data = Signal(8 * OUB)
        wr_pos = Signal(_Pos)
        wide_data = Signal(128)
        wide_strb = Signal(16)
        m.d.comb += [wide_data.eq(wr_data << (wr_pos.addr[:3] * 8)),
                     wide_strb.eq(wr_pos.mask[:OUB] << wr_pos.addr[:3])]
        strb = Mux(wr_phase, wide_strb[8:], wide_strb[:8])
        ofm = self.ofm_bus
        m.d.comb += [
            ofm.req.valid.eq(wr_have & (strb != 0) & running),
            ofm.req.payload.write.eq(1),
            ofm.req.payload.addr.eq((wr_pos.addr & ~7) + Mux(wr_phase, 8, 0)),
            ofm.req.payload.wdata.eq(Mux(wr_phase, wide_data[64:], wide_data[:64])),
            ofm.req.payload.wstrb.eq(strb),
            ofm.resp.ready.eq(1),
        ]
        step = Signal()
        complete = Signal()
        load = Signal()
        m.d.comb += [step.eq(wr_have & running & ((strb == 0) | ofm.req.ready)),
                     complete.eq(step & (wr_phase | (wide_strb[8:] == 0))),
                     load.eq((~wr_have | complete) & ou.o_stream.valid & outq.r_stream.valid),
                     ou.o_stream.ready.eq(load), outq.r_stream.ready.eq(load)]
        with m.If(load):
            m.d.sync += [wr_have.eq(1), wr_phase.eq(0), wr_data.eq(ou.o_stream.payload.data),
                         wr_pos.eq(outq.r_stream.payload)]
        with m.Elif(complete):
            m.d.sync += wr_have.eq(0)
        with m.Elif(step):
            m.d.sync += wr_phase.eq(1)

        drained = Signal()
        m.d.comb += drained.eq(all_issued & ~s1_valid & ~mac.acc_stream.valid & ~blocks.r_stream.valid
                               & ~outq.r_stream.valid & ~wr_have & w_done[ebank] & ~stg.busy)

        with m.FSM(name="engine"):
            with m.State("IDLE"):
                with m.If(pend):
                    m.d.comb += [engine_takes.eq(1), clear.eq(1)]
                    m.d.sync += [regs.eq(lregs), opcode.eq(lopcode), ebank.eq(lbank), self.error_code.eq(lcode),
                                 w_low.eq(w_start[lbank])]
                    with m.If(lcode != ComputeError.NONE):
                        m.next = "ERROR"
                    with m.Else():
                        m.next = "START"
            with m.State("START"):
                m.d.comb += stg.start.eq(1)
                m.d.sync += [blk_ob.eq(0), blk_base.eq(0), ou_idx.eq(0), oy_b.eq(0), ox_b.eq(0), ib.eq(0), iu.eq(0),
                             ky.eq(0), kx.eq(0), grp_base.eq(0), cbase.eq(0), all_issued.eq(0), feed_p.eq(0),
                             s1_valid.eq(0), wr_have.eq(0)]
                m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += running.eq(1)
                with m.If(w_bad[ebank]):
                    m.d.sync += self.error_code.eq(w_code[ebank])
                    m.next = "DRAIN"
                with m.Elif(drained):
                    m.next = "FINISH"
            with m.State("DRAIN"):
                # Stop issuing; let every outstanding IFM read come back before reporting.
                m.d.comb += stg.abort.eq(1)
                with m.If(~stg.busy):
                    m.next = "ERROR"
            with m.State("FINISH"):
                with m.If(w_memerr[ebank] | stg.mem_err):
                    m.d.sync += self.error_code.eq(ComputeError.MEMORY)
                    m.next = "ERROR"
                with m.Else():
                    m.d.comb += self.port.done.eq(1)
                    m.d.sync += bank_busy[ebank].eq(0)
                    m.next = "IDLE"
            with m.State("ERROR"):
                m.d.comb += self.port.error.eq(1)
                m.d.sync += bank_busy[ebank].eq(0)
                m.next = "IDLE"
        return m

    # BASEP selection: the compute unit gets the region base pointers from the top.
    def _basep_sel(self, region):
        return Array(self.basep)[region[:3]]
