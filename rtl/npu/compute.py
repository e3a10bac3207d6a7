"""NPU compute unit: executes NPU_OP_CONV (CONV_2D, FULLY_CONNECTED), NPU_OP_DEPTHWISE and the identity
NPU_OP_POOL kicks (8-bit IFMs, CONV / DEPTHWISE also uint8 and 16-bit) from external memory, pipelined so that the MAC
block takes one beat per cycle whenever its operands are on chip; every other NPU_OP_POOL and every NPU_OP_ELEMENTWISE
goes to its :class:`~rtl.npu.vector_unit.VectorUnit` (``vector``: its own memory port ``vec_bus`` and the SHRAM
lookup-table port ``lut_raddr`` / ``lut_rdata``), one op at a time and in kick order with the MAC-datapath ops
(``_dispatch``).

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

   * **weights**: the ``WEIGHT_LENGTH`` bytes at ``WEIGHT_BASE`` go, a word at a time, through the byte serialiser (a
     prefetch FIFO of ``ext_latency + 3`` words, so its responses never block the shared response path) into the wide
     :class:`~rtl.npu.weight_decoder.WeightDecoder` (64-bit words in, up to ``OUB`` weights per cycle out); its output
     (``mlw_codec.decode`` order; 9-bit weights, :data:`~rtl.npu.kernel_op.WEIGHT_BITS`) is written one decoder beat per
     cycle into the *brick* RAM: one row = one ``OUB x 8`` brick (``weight[o][i]`` of one OFM ublock and one IFM ublock
     for one kernel element). Depthwise streams carry ``OUB`` weights per kernel element, written on the diagonal
     (``weight[o][o]``). The decoded count must equal the loop nest's (SPEC.md section 5). The brick RAM (``2 x``
     :data:`WEIGHT_BUFFER_BYTES`) is one ring shared by the ops in flight: bricks are numbered globally in stream order,
     and the decoder is held while the brick it would write is a whole ring ahead of the first brick of the engine's
     current OFM block (every brick of an OFM block is reused by all its micro-blocks, so the block must be resident; a
     conv whose largest OFM block does not fit the ring runs split, see below, and only needs its current group
     resident). So a stream may be longer than the RAM, and the next op's weights load into whatever the current op no
     longer needs.
   * **issue**: for every OFM block, OFM ublock, OFM micro-block (``ublock_h x ublock_w`` positions), IFM block (32
     deep depth-first / 16 deep part-kernel-first), IFM ublock and kernel element (kernels larger than 8x8 walked as
     8x8 sub-kernels; a split op puts the IFM-depth passes outermost), one beat: the brick (index from
     the loop nest, so the stream order is honoured) and each position's 8 IFM bytes from the stager's line buffer
     (padding taps flagged: they contribute 0) are read and registered, and fired into the
     :class:`~rtl.npu.mac.MacBlock` the next cycle. A beat waits only while its brick is not decoded yet (decoded
     bricks counter vs brick index; bricks are written in stream order), its IFM rows are not staged yet, or the
     MAC block has no room.
   * **output**: the MAC block hands a finished micro-block over (its result register) while the next one
     accumulates; its positions go one per cycle through the output unit (bias, scale, double rounding, zero point,
     an 8-bit table activation (ACTIVATION TABLE_n: ``act_table``, the output path's copy of the SHRAM's tables,
     one read port per lane), clamp), and each position's ``OUB`` int8 values are written (one word, two when
     unaligned) with byte strobes (channels beyond the OFM depth and positions beyond the OFM masked). A small
     FIFO carries each position's address alongside the output unit's pipeline.

**Identity POOL.** When Vela cannot fuse an activation (RELU/RELU6) into the conv/depthwise/FC before it, it emits an
NPU_OP_POOL that only requantises and clamps (SPEC.md section 3): AVERAGE (param 1), 1x1 kernel, stride 1, no padding,
``OFM_PRECISION[8]`` = 1 (global scale; ``generate_ofm_precision`` in Vela's ``register_command_stream_generator.py``),
``OFM_SCALE`` = 1 with shift 0 (``generate_ofm_scaling_for_pooling``, its last branch), often in place (IFM base = OFM
base) over a reshaped ``H x 1 x C`` view of the tensor. Its result ``clamp((x - IFM_ZP) * 1 + OFM_ZP, ACT_MIN,
ACT_MAX)`` is exactly a 1x1 depthwise with weight 1, bias 0, scale 1, shift 0, and it runs as one: the loader skips both
streams and writes that record into channels ``0 .. OUB-1`` of the op's bank (IDENTITY), the engine feeds the MAC block
a constant diagonal brick and points every output-unit read at that record, so its channel count is not limited by
:data:`MAX_CHANNELS`. In place is safe: every OFM byte is written only after the same IFM byte was read (and the IFM
stager never re-reads it). RESIZE_NEAREST_NEIGHBOR is the same pool on a NEAREST-upscaled IFM, with ``OFM_SCALE``
0x80000001 / shift 31 (identity for every int8 input: :func:`~rtl.npu.kernel_op.identity_scale`). Other pools (real
kernels, MAX, other scales) are the vector unit's.

Supported (anything else is refused with ``UNSUPPORTED``): S8 or U8 IFM (U8: zero-extended into the MAC array,
:class:`~rtl.npu.mac.MacArray`; S16 for a conv / depthwise: int16x8, below), S8 or U8 OFM (S16 / S32 for a conv /
depthwise), NHWC or NHCWB16, per-channel scale stream with round mode TFL or NATURAL (the identity POOL: as above),
ACC_FORMAT INT32 or INT40, ``ACTIVATION`` = 0 (clamp only) or an 8-bit table ``TABLE_0..7`` for an S8 OFM
(:class:`~rtl.npu.activation_table.ActivationTable`), kernels up to Vela's limits (height <= 64, height x width <= 4096;
walked as 8x8 sub-kernels), any stride, dilation 1 or 2 (:mod:`rtl.npu.issue`), up to :data:`MAX_CHANNELS` OFM channels,
IFM / OFM tiles 0-3 (:func:`~rtl.npu.ifm_stager.fm_tile`), IFM_UPSCALE NONE / NEAREST / TRANSPOSE (the kernel walk reads
the x2 upscaled IFM, :mod:`rtl.npu.issue`), and the IFM rows one micro-block row needs fitting the line buffer
(``shram_kib``; see :mod:`rtl.npu.ifm_stager`; a depthwise whose kernel is too tall for it runs split, below, so only
one 8x8 sub-kernel's rows are needed at once). An OFM block's decoded weights may exceed the brick ring (``2 x``
:data:`WEIGHT_BUFFER_BYTES`; Vela makes a FULLY_CONNECTED's block its whole OFM depth, so there it is the whole weight
matrix): such a conv runs *split* (:mod:`rtl.npu.issue`: IFM-depth passes, partial sums in the output path's accumulator
buffer, :func:`~rtl.npu.kernel_op.acc_entries`), which needs one group of its weights to fit the ring and its OFM
block's partial sums to fit the buffer; a depthwise whose block does not fit the ring (or whose kernel rows do not fit
the line buffer) runs split the same way in 8x8 sub-kernel passes. Pooling with real kernels and ELEMENTWISE are not
this engine's: they run on :mod:`rtl.npu.vector_unit`. A conv / depthwise may write a 16- or 32-bit OFM (ARG_MAX's and
MEAN's depthwise): the output unit clamps to the 16-bit ACTIVATION_MIN / MAX or saturates to int32
(:class:`~rtl.npu.output_unit.OutputUnit` ``ofm_size``) and the writer writes 2 or 4 bytes per element.

**16-bit IFMs** (TFLite's int16x8: int16 activations, int8 weights; Vela writes IFM_PRECISION S16, ACC_FORMAT
INT40 and round mode NATURAL): the weight stream has 16-channel IFM blocks (part-kernel-first sub-kernels padded to
2 elements, mlw_codec's reorder with ``ifm_bitdepth`` 16), so the loop nest differs only in those two numbers. A
line-buffer word holds 4 channels (the stager reads 2-byte elements), and an IFM ublock (8 channels, one brick) takes
two MAC beats, one per half of the brick's IFM channels (``IssueSequencer``'s ``hf`` counter; one beat on U55-32's
4-channel depthwise bricks): the U55 halves its MAC rate for 16-bit IFMs too (Vela's ``npu_performance``), and the
64-bit line-buffer read ports, the brick RAM and the multipliers (17 bits x 8 bits already, for the zero point) stay
as they are; 4 of a dot product's 8 multipliers take the 16-bit operands (:class:`~rtl.npu.mac.MacArray`). The
accumulators are 40 bits (the U55's); with ACC_FORMAT INT32 (every 8-bit op) the output path uses their low 32 bits,
so 8-bit ops wrap and time exactly as before. The output unit rounds once for NATURAL. A split conv keeps 32-bit
partial sums, so one with INT40 accumulators is refused.

Failures never hang: a memory response with ``err`` is recorded and reported once the op has finished; a decoder
error or a decoded-length mismatch stops the op at once (it could otherwise wait for bricks that never come): the
engine stops issuing, lets every outstanding IFM read come back, then reports ``error`` (the loader's reads are
always complete by then: a failed stream is still consumed to its end). The MAC block, output unit and their FIFOs
are reset when the engine starts an op. Error causes are held on ``error_code`` (:class:`ComputeError`) until the
engine starts the next op.

Structure (sub-units, by instance name): ``loader`` (:class:`~rtl.npu.op_loader.OpLoader`: CHECK, RECORDS,
WEIGHTS, the op hand-over and the slot status; with its ``reader``, the byte serialiser of
:class:`~rtl.npu.byte_reader.ByteReader`, and ``decoder``, the weight decoder), ``wbuf``
(:class:`~rtl.npu.weight_buffer.WeightBuffer`, the brick ring), ``stager`` (the IFM stager and its line buffer),
``issue`` (:class:`~rtl.npu.issue.IssueSequencer`, the loop nest), ``operands`` (the MAC array's operand registers),
``mac`` (:class:`~rtl.npu.mac.MacBlock`: multipliers ``array``, accumulators ``acc``), ``feed`` and ``ofm_writer``
(:mod:`rtl.npu.ofm_writer`: positions into the output unit, OFM addresses, the write path) and ``out`` (the
output unit) with ``act_table`` (:class:`~rtl.npu.activation_table.ActivationTable`). The engine FSM and the
running op's register snapshot are this unit's own.

Timing: RECORDS ~10 cycles per OFM channel (hidden behind the previous op when there is one); then one MAC beat per
cycle unless the weight decoder (2-5 weights per cycle on dense streams, up to ``OUB`` on zero runs; a beat needs
its brick, and the stream order puts the last IFM block's bricks of the first OFM ublock late) or the IFM stager
(one external read per cycle) falls behind; the output of a micro-block takes ``positions`` cycles and overlaps the
next micro-block's beats (the MAC block waits only if a block's last beat finds the previous result unread). The
PMU's MAC_STALLED_BY_WD / _IB / _ACC events count these waits (``pmu_events``). While the engine waits, the port it
waits for is flagged (``bus_urgent`` also while the engine is idle waiting for the next op's records,
``ifm_urgent``, ``ofm_urgent``; registered) and the top's arbiter serves it before the DMA and the other ports, so a
weight DMA for a later kick or the loader's read-ahead of the next op's weights only takes what the running op
leaves of the memory port.
"""
from amaranth import Module, Mux, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.npu.activation_table import ActivationTable
from rtl.npu.config import NpuConfig
from rtl.npu.controller import ComputeSignature, KernelOp, Registers
from rtl.npu.dma import NUM_REGIONS, ShramWriteSignature
from rtl.npu.extmem import ADDR_WIDTH, MemPortSignature
from rtl.npu.ifm_stager import IfmStager
from rtl.npu.issue import IssueSequencer, OperandRegister
from rtl.npu.kernel_op import (
    IUB,
    MAX_CHANNELS,
    WEIGHT_BITS,
    WEIGHT_BUFFER_BYTES,
    ComputeError,
    derive_op,
    region_base,
)
from rtl.npu.mac import MacBlock, MacBlockConfig
from rtl.npu.ofm_writer import OfmWriter, OutputFeed, ofm_size
from rtl.npu.op_loader import OpLoader
from rtl.npu.output_unit import OutputUnit, OutputUnitConfig
from rtl.npu.pmu import PmuEvents
from rtl.npu.vector_unit import VectorUnit, is_vector_op
from rtl.npu.weight_buffer import WeightBuffer

__all__ = ["Compute", "ComputeError", "MAX_CHANNELS", "WEIGHT_BUFFER_BYTES"]

ACC_WIDTH = 40   # the U55's accumulators (Vela's Acc40); ACC_FORMAT INT32 uses their low 32 bits (rtl.npu.ofm_writer)


class Compute(wiring.Component):
    """The compute unit (see the module docstring).

    Members
    -------
    port : ``In(ComputeSignature)``
    bus, ifm_bus, ofm_bus, vec_bus : ``Out(MemPortSignature)``  (``id`` is left 0, the top routes responses)
    basep : ``In(32).array(8)``   region base pointers
    lut_raddr : ``Out(range(shram words))``; lut_rdata : ``In(64)``   the SHRAM's lookup-table read port
    lut_write : ``In(ShramWriteSignature(shram words))``   the SHRAM's write port, observed (the output path's copy
        of the tables, ``act_table``)
    last_kick : ``Out(KernelOp)``   the most recently accepted kick (debug)
    error_code : ``Out(ComputeError)``
    pmu_events : ``Out(PmuEvents)``   this unit's PMU events (MAC, output unit, weight decoder; the rest stay 0)
    bus_urgent, ifm_urgent, ofm_urgent : ``Out(1)``   the engine waits for that port (its next op's records or a
        brick's weights / IFM rows / room in the output path): the top's arbiter serves the port before the others
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
                          "vec_bus": Out(MemPortSignature), "basep": In(ADDR_WIDTH).array(NUM_REGIONS),
                          "last_kick": Out(KernelOp), "lut_raddr": Out(range(self.line_buffer_words)),
                          "lut_rdata": In(64), "lut_write": In(ShramWriteSignature(self.line_buffer_words)),
                          "error_code": Out(ComputeError), "pmu_events": Out(PmuEvents),
                          "bus_urgent": Out(1), "ifm_urgent": Out(1),
                          "ofm_urgent": Out(1)})

    def elaborate(self, platform):
        m = Module()
        UH, UW, OUB = self.uh, self.uw, self.oub
        ring = 2 * self.wb_depth   # brick RAM rows: one ring shared by the ops in flight
        clear = Signal()   # pulsed when the engine starts an op: its blocks start clean even after an abort
        # The loader's reader keeps enough words in flight to stream one word per cycle (the decoder's input rate).
        m.submodules.loader = ld = OpLoader(oub=OUB, ublock_h=UH, ublock_w=UW, ring=ring,
                                            line_buffer_words=self.line_buffer_words,
                                            prefetch=self.config.ext_latency + 3)
        m.submodules.wbuf = wb = WeightBuffer(rows=ring, oub=OUB)
        m.submodules.stager = stg = IfmStager(depth=self.line_buffer_words, positions=self.positions)
        m.submodules.issue = iss = IssueSequencer(ublock_h=UH, ublock_w=UW, oub=OUB,
                                                  line_buffer_words=self.line_buffer_words)
        mac = MacBlock(MacBlockConfig(UH, UW, OUB, IUB, ACC_WIDTH, wide_ifm=True, weight_width=WEIGHT_BITS))
        m.submodules.operands = opr = OperandRegister(mac, brick_bytes=self.brick_bytes)
        m.submodules.mac = ResetInserter(clear)(mac)
        ou = OutputUnit(OutputUnitConfig(lanes=OUB, channels=2 * MAX_CHANNELS, acc_width=ACC_WIDTH))
        m.submodules.out = ResetInserter(clear)(ou)
        m.submodules.act_table = table = ActivationTable(shram_depth=self.line_buffer_words, lanes=OUB)
        m.d.comb += [getattr(table.write, f).eq(getattr(self.lut_write, f)) for f in ("addr", "data", "en")]
        for lane in range(OUB):
            m.d.comb += [table.index[lane].eq(ou.lut_index[lane]), ou.lut_entry[lane].eq(table.entry[lane])]
        m.submodules.feed = feed = OutputFeed(ublock_h=UH, ublock_w=UW, oub=OUB, acc_layout=mac.acc_layout,
                                              ou_layout=ou.in_layout)
        m.submodules.ofm_writer = wr = OfmWriter(oub=OUB)

        engine_done, engine_error = Signal(), Signal()
        engine_code = Signal(ComputeError)
        self._dispatch(m, ld, engine_done, engine_error, engine_code)

        # Loader -> weight buffer (write side), output-unit records; the engine's op comes from the loader.
        wiring.connect(m, wiring.flipped(self.bus), ld.bus)
        m.d.comb += self.last_kick.eq(ld.last_kick)
        m.d.comb += [wb.open.eq(ld.wb_open), wb.open_slot.eq(ld.wb_open_slot), wb.wr_en.eq(ld.wb_en),
                     wb.wr_slot.eq(ld.bank), wb.wr_dw.eq(ld.wb_dw), wb.wr_count.eq(ld.wb_count),
                     wb.wr_data.eq(ld.wb_data), wb.wr_first.eq(ld.wb_first), wb.wr_n.eq(ld.wb_n),
                     ld.wb_room.eq(wb.wr_room), wb.close.eq(ld.wb_close),
                     wb.close_bricks.eq(ld.wb_close_bricks),
                     ou.param_we.eq(ld.param_we), ou.param_channel.eq(ld.param_channel),
                     ou.param_record.eq(ld.param_record)]
        regs = Signal(Registers)
        opcode = Signal(10)
        ebank = Signal()
        for i in range(NUM_REGIONS):
            m.d.comb += [ld.basep[i].eq(self.basep[i]), feed.basep[i].eq(self.basep[i])]

        # Engine: issue -> operand registers -> MAC block -> feed -> output unit -> OFM writer.
        running = Signal()
        restart = Signal()
        wiring.connect(m, wiring.flipped(self.ifm_bus), stg.bus)
        self._connect_stager(m, stg, iss, derive_op(m, regs, opcode, OUB, UH,
                                                    line_buffer_words=self.line_buffer_words), regs)
        m.d.comb += [
            iss.regs.eq(regs), iss.opcode.eq(opcode), iss.running.eq(running), iss.restart.eq(restart),
            wb.rd_slot.eq(ebank), wb.rd_brick.eq(iss.brick), iss.brick_data.eq(wb.rd_data),
            iss.bricks.eq(wb.wr_bricks), iss.bricks_all.eq(ld.status_done), ld.status_slot.eq(ebank),
            opr.restart.eq(restart), mac.ifm_zero_point.eq(regs.IFM_ZERO_POINT.as_signed()),
            mac.ifm_unsigned.eq(~regs.IFM_PRECISION[0]), ou.ofm_unsigned.eq(~regs.OFM_PRECISION[0]),   # U8
            feed.regs.eq(regs), feed.opcode.eq(opcode), feed.bank.eq(ebank), feed.clear.eq(clear),
            feed.restart.eq(restart),
            ou.ofm_zero_point.eq(regs.OFM_ZERO_POINT.as_signed()),
            ou.act_min.eq(regs.ACTIVATION_MIN.as_signed()), ou.act_max.eq(regs.ACTIVATION_MAX.as_signed()),
            ou.lut.eq(regs.ACTIVATION[4]), table.slot.eq(regs.ACTIVATION[:3]),   # CHECK: TABLE_n or none
            ou.ofm_size.eq(ofm_size(regs)), wr.ofm_size.eq(ofm_size(regs)),
            ou.natural.eq(regs.OFM_PRECISION[15]),   # CHECK: round mode TFL (0) or NATURAL (2)
            wr.data.valid.eq(ou.o_stream.valid), wr.data.payload.eq(ou.wide),
            ou.o_stream.ready.eq(wr.data.ready),
            wr.running.eq(running), wr.restart.eq(restart), wr.clear.eq(clear),
        ]
        wiring.connect(m, iss.beat, opr.beat)
        wiring.connect(m, iss.block, feed.block)
        wiring.connect(m, opr.act, mac.act_stream)
        wiring.connect(m, opr.weight, mac.weight_stream)
        wiring.connect(m, mac.acc_stream, feed.acc)
        wiring.connect(m, feed.ou, ou.i_stream)
        wiring.connect(m, feed.pos, wr.pos)
        wiring.connect(m, wiring.flipped(self.ofm_bus), wr.bus)

        ev = self.pmu_events
        m.d.comb += [ev.mac_active.eq(opr.act.valid & opr.act.ready), ev.mac_stall_wd.eq(iss.wait_weights),
                     ev.mac_stall_ib.eq(iss.wait_ifm), ev.mac_stall_acc.eq(iss.wait_out),
                     ev.ao_active.eq(ou.o_stream.valid & ou.o_stream.ready), ev.wd_active.eq(ld.wb_en)]
        engine_idle = Signal()
        # Registered: the waits depend on the ports' ready, which depends on these. While the op's own weights are
        # still streaming, a wait for IFM rows makes both ports urgent (the weights stay first: the first beats need
        # both); once they are decoded the loader only reads ahead for the next op, and the IFM goes before it.
        own_weights = iss.wait_ifm & ~ld.status_done
        m.d.sync += [self.bus_urgent.eq(iss.wait_weights | engine_idle | own_weights),
                     self.ifm_urgent.eq(iss.wait_ifm), self.ofm_urgent.eq(iss.wait_out)]

        drained = Signal()
        m.d.comb += drained.eq(iss.all_issued & ~opr.act.valid & ~mac.acc_stream.valid & ~feed.busy & ~wr.busy
                               & ld.status_done & ~stg.busy)
        # The brick ring's low mark: the op's first brick when the engine takes it, then each OFM block's first.
        takes = Signal()
        m.d.comb += [wb.low_set.eq(takes | iss.next_block), wb.low_slot.eq(Mux(takes, ld.bank, ebank)),
                     wb.low_offset.eq(Mux(takes, 0, iss.block_offset)), ld.take.eq(takes)]
        with m.FSM(name="engine"):
            with m.State("IDLE"):
                m.d.comb += engine_idle.eq(1)
                with m.If(ld.pend):
                    m.d.comb += [takes.eq(1), clear.eq(1)]
                    m.d.sync += [regs.eq(ld.regs), opcode.eq(ld.opcode), ebank.eq(ld.bank),
                                 engine_code.eq(ld.code)]
                    with m.If(ld.code != ComputeError.NONE):
                        m.next = "ERROR"
                    with m.Else():
                        m.next = "START"
            with m.State("START"):
                m.d.comb += [stg.start.eq(1), restart.eq(1)]
                m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += running.eq(1)
                with m.If(ld.status_bad):
                    m.d.sync += engine_code.eq(ld.status_code)
                    m.next = "DRAIN"
                with m.Elif(drained):
                    m.next = "FINISH"
            with m.State("DRAIN"):
                # Stop issuing; let every outstanding IFM read come back before reporting.
                m.d.comb += stg.abort.eq(1)
                with m.If(~stg.busy):
                    m.next = "ERROR"
            with m.State("FINISH"):
                with m.If(ld.status_memerr | stg.mem_err):
                    m.d.sync += engine_code.eq(ComputeError.MEMORY)
                    m.next = "ERROR"
                with m.Else():
                    m.d.comb += [engine_done.eq(1), ld.release.eq(1)]
                    m.next = "IDLE"
            with m.State("ERROR"):
                m.d.comb += [engine_error.eq(1), ld.release.eq(1)]
                m.next = "IDLE"
        return m

    def _dispatch(self, m, ld, engine_done, engine_error, engine_code):
        """Kicks for the MAC datapath go to the loader, the others (:func:`~rtl.npu.vector_unit.is_vector_op`) to the
        vector unit. Ops finish in kick order: a vector op is taken only when no MAC-datapath op is outstanding, and
        no kick is taken while it runs. ``error_code`` shows the cause of whichever unit finished last."""
        m.submodules.vector = vec = VectorUnit(shram_bytes=self.config.shram_bytes)
        wiring.connect(m, wiring.flipped(self.vec_bus), vec.bus)
        m.d.comb += [self.lut_raddr.eq(vec.lut_raddr), vec.lut_rdata.eq(self.lut_rdata)]
        for i in range(NUM_REGIONS):
            m.d.comb += vec.basep[i].eq(self.basep[i])
        kick = self.port.kick
        to_vec = is_vector_op(m, kick.payload)
        outstanding = Signal(2)   # MAC-datapath ops kicked and not yet answered
        answered = engine_done | engine_error
        m.d.comb += [
            ld.kick.payload.eq(kick.payload), vec.kick.payload.eq(kick.payload),
            ld.kick.valid.eq(kick.valid & ~to_vec & ~vec.busy),
            vec.kick.valid.eq(kick.valid & to_vec & (outstanding == 0)),
            kick.ready.eq(Mux(to_vec, vec.kick.ready & (outstanding == 0), ld.kick.ready & ~vec.busy)),
            self.port.done.eq(engine_done | vec.done), self.port.error.eq(engine_error | vec.error),
        ]
        m.d.sync += outstanding.eq(outstanding + (ld.kick.valid & ld.kick.ready) - answered)
        vec_last = Signal()   # the vector unit answered last
        with m.If(vec.done | vec.error):
            m.d.sync += vec_last.eq(1)
        with m.Elif(answered):
            m.d.sync += vec_last.eq(0)
        m.d.comb += self.error_code.eq(Mux(vec_last, vec.error_code, engine_code))

    def _connect_stager(self, m, stg, iss, op, regs):
        """The IFM stager sweeps the engine's op's IFM; the issue sequencer reads its line buffer."""
        m.d.comb += [
            stg.base.eq(region_base(self.basep, regs.IFM_REGION) + regs.IFM_BASE0),
            stg.tile_base[0].eq(region_base(self.basep, regs.IFM_REGION) + regs.IFM_BASE1),
            stg.tile_base[1].eq(region_base(self.basep, regs.IFM_REGION) + regs.IFM_BASE2),
            stg.tile_base[2].eq(region_base(self.basep, regs.IFM_REGION) + regs.IFM_BASE3),
            stg.tile_h0.eq(regs.IFM_HEIGHT0_M1 + 1), stg.tile_h1.eq(regs.IFM_HEIGHT1_M1 + 1),
            stg.tile_w0.eq(regs.IFM_WIDTH0_M1 + 1),
            stg.height.eq(op.IH), stg.width.eq(op.IW), stg.ublocks.eq(op.ublocks),
            stg.stride_y.eq(regs.IFM_STRIDE_Y), stg.stride_x.eq(regs.IFM_STRIDE_X), stg.stride_c.eq(regs.IFM_STRIDE_C),
            stg.nhcwb16.eq(op.ifm_fmt == 1), stg.ring.eq(op.dw), stg.wide.eq(op.wide),
            stg.passes.eq(Mux(op.split, op.n_groups * op.n_oub_total, op.n_oub_total)),
            stg.chan_step.eq(Mux(op.dw, self.oub, 0)), stg.span.eq(op.span),
            stg.groups.eq(Mux(op.split & op.dw, op.n_groups, 1)), stg.chan_block.eq(op.OB), stg.chan_depth.eq(op.O),
            stg.low.eq(iss.low), iss.rows.eq(stg.rows), iss.resident.eq(stg.resident),
        ]
        for p in range(self.positions):
            m.d.comb += [stg.rd_row[p].eq(iss.rd_row[p]), stg.rd_x[p].eq(iss.rd_x[p]), stg.rd_u[p].eq(iss.rd_u[p]),
                         iss.rd_data[p].eq(stg.rd_data[p])]
