"""NPU output path behind the MAC block (see :mod:`rtl.npu.compute`).

:class:`OutputFeed`: the MAC block hands a finished micro-block over (its result register) while the next one
accumulates; the feed steps its positions one per cycle into the :class:`~rtl.npu.output_unit.OutputUnit` (bias,
scale, double rounding, zero point, clamp), and for each position computes its OFM byte address and lane mask
(channels beyond the OFM depth and positions beyond the OFM masked), which travel on ``pos`` alongside the output
unit's pipeline. Each micro-block's place arrives on ``block`` from the issue sequencer (a 4-entry FIFO).

:class:`OfmWriter`: writes each position's ``OUB`` int8 values (one word, two when unaligned), or ``OUB``
int16 / int32 values with a 16- / 32-bit OFM (up to three / five words), with byte strobes to external memory,
pairing the output unit's results with the addresses from ``pos`` (a FIFO of ``OUT_QUEUE`` entries, at least the
output unit's pipeline depth + 1).
"""
from amaranth import Array, Cat, Const, Module, Mux, ResetInserter, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.common.fifo import MemoryFIFO
from rtl.npu.controller import Registers
from rtl.npu.dma import NUM_REGIONS
from rtl.npu.extmem import ADDR_WIDTH, MemPortSignature
from rtl.npu.ifm_stager import fm_addr, fm_tile
from rtl.npu.issue import Block
from rtl.npu.kernel_op import ACC_ENTRIES, MAX_CHANNELS, acc_entries, derive_op, region_base

__all__ = ["OUT_QUEUE", "AccumulatorBuffer", "OutputFeed", "OfmWriter", "Position", "ofm_size"]

OUT_QUEUE = 8   # OFM positions between the output unit's input and the writer (>= its pipeline depth + 1)


class Position(data.Struct):
    """One OFM position on its way through the output unit."""
    addr: ADDR_WIDTH
    mask: 8


def ofm_size(regs):
    """log2 of the OFM element bytes: OFM_PRECISION bits [2:1] (0 8-bit, 1 16-bit, 2 32-bit)."""
    return regs.OFM_PRECISION[1:3]


def _ofm_addr(base, y, x, c, regs, nhcwb16):
    """Byte address of channel ``c`` of OFM pixel ``(y, x)`` (NHWC or NHCWB16, elements of any size)."""
    size = ofm_size(regs)
    nhwc = base + y * regs.OFM_STRIDE_Y + x * regs.OFM_STRIDE_X + (c << size)
    nhcwb = base + y * regs.OFM_STRIDE_Y + (x << (size + 4)) + (c >> 4) * regs.OFM_STRIDE_C + (c[:4] << size)
    return Mux(nhcwb16, nhcwb, nhwc)[:ADDR_WIDTH]


class OutputFeed(wiring.Component):
    """See the module docstring.

    Members
    -------
    regs : ``In(Registers)``; opcode : ``In(10)``; basep : ``In(32).array(8)``; bank : ``In(1)`` (records bank)
    clear : ``In(1)``    empty the block FIFO (synchronous reset);  restart : ``In(1)``  start at position 0
    block : ``In(stream.Signature(Block))``; acc : ``In(stream)`` (the MAC block's ``acc_stream``)
    ou : ``Out(stream)`` (the output unit's ``i_stream``); pos : ``Out(stream.Signature(Position))``
    busy : ``Out(1)``    a micro-block is queued
    """

    def __init__(self, *, ublock_h: int, ublock_w: int, oub: int, acc_layout, ou_layout):
        self.uh, self.uw, self.oub = ublock_h, ublock_w, oub
        super().__init__({
            "regs": In(Registers), "opcode": In(10), "basep": In(ADDR_WIDTH).array(NUM_REGIONS), "bank": In(1),
            "clear": In(1), "restart": In(1),
            "block": In(stream.Signature(Block)), "acc": In(stream.Signature(acc_layout)),
            "ou": Out(stream.Signature(ou_layout)), "pos": Out(stream.Signature(Position)), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        UW, OUB = self.uw, self.oub
        P = self.uh * UW
        regs = self.regs
        op = derive_op(m, regs, self.opcode, OUB, self.uh)
        m.submodules.blocks = blocks = ResetInserter(self.clear)(MemoryFIFO(width=Block.as_shape().size, depth=4))
        m.d.comb += [blocks.w_stream.valid.eq(self.block.valid), blocks.w_stream.payload.eq(self.block.payload),
                     self.block.ready.eq(blocks.w_stream.ready), self.busy.eq(blocks.r_stream.valid)]
        region = region_base(self.basep, regs.OFM_REGION)
        ofm_bases = [region + getattr(regs, f"OFM_BASE{t}") for t in range(4)]

        blk = Signal(Block)
        m.d.comb += blk.eq(blocks.r_stream.payload)
        feed_p = Signal(range(P))
        f_oy = Signal(17)
        f_ox = Signal(17)
        m.d.comb += [f_oy.eq(blk.oy + Array(Const(p // UW, 2) for p in range(P))[feed_p]),
                     f_ox.eq(blk.ox + Array(Const(p % UW, 2) for p in range(P))[feed_p])]
        lane_mask = Cat(*[(blk.ch0 + lane < op.O) for lane in range(OUB)])
        m.submodules.acc_buffer = accb = AccumulatorBuffer(lanes=P * OUB, entries=acc_entries(P, OUB))
        # The MAC result plus the buffered partial sum (split ops). ACC_FORMAT INT32 (every 8-bit IFM) keeps the
        # accumulators' low 32 bits, so they wrap as 32-bit ones do; INT40 (16-bit IFMs) passes them whole (a split
        # op, whose partial sums are 32-bit, is refused with INT40: rtl.npu.op_loader).
        total = Signal.like(self.acc.payload)
        acc = self.acc.payload
        acc_bits = len(acc[0])
        m.d.comb += [accb.entry.eq(blk.entry), accb.resume.eq(blk.resume)]
        for k in range(P * OUB):
            m.d.comb += [accb.acc[k].eq(acc[k][:32]),
                         total[k].eq(Mux(regs.ACC_FORMAT == 0, accb.total[k], acc[k]))]
        with m.If(blk.part):
            # A partial sum: into the buffer, nothing to the output unit.
            m.d.comb += [accb.we.eq(self.acc.valid & blocks.r_stream.valid),
                         self.acc.ready.eq(accb.we), blocks.r_stream.ready.eq(accb.we)]
        ou, pos = self.ou, self.pos
        # OFM tiles: Vela writes across the end of a rolling buffer (a cascade) through tile 2.
        t_base, t_oy, t_ox = fm_tile(m, f_oy, f_ox, ofm_bases, regs.OFM_HEIGHT0_M1 + 1, regs.OFM_HEIGHT1_M1 + 1,
                                     regs.OFM_WIDTH0_M1 + 1, "ofm_")
        m.d.comb += [
            pos.payload.addr.eq(Mux(ofm_size(regs) != 0,
                                    _ofm_addr(t_base, t_oy, t_ox, blk.ch0, regs, op.ofm_fmt == 1),
                                    fm_addr(t_base, t_oy, t_ox, blk.ch0, regs.OFM_STRIDE_Y, regs.OFM_STRIDE_X,
                                            regs.OFM_STRIDE_C, op.ofm_fmt == 1))),
            pos.payload.mask.eq(Mux((f_oy < op.OH) & (f_ox < op.OW), lane_mask, 0)),
            # POOL: one global record
            ou.payload.channel.eq(Cat(Mux(op.pool, 0, blk.ch0[:(MAX_CHANNELS - 1).bit_length()]), self.bank)),
            ou.payload.acc.eq(Array(total.as_value()[p * OUB * acc_bits:(p + 1) * OUB * acc_bits]
                                    for p in range(P))[feed_p]),
            ou.valid.eq(self.acc.valid & blocks.r_stream.valid & ~blk.part & pos.ready),
            pos.valid.eq(ou.valid & ou.ready),
        ]
        with m.If(ou.valid & ou.ready):
            m.d.sync += feed_p.eq(Mux(feed_p == P - 1, 0, feed_p + 1))
            with m.If(feed_p == P - 1):
                m.d.comb += [self.acc.ready.eq(1), blocks.r_stream.ready.eq(1)]
        with m.If(self.restart):
            m.d.sync += feed_p.eq(0)
        return m


class AccumulatorBuffer(wiring.Component):
    """Partial sums of a split op (the SHRAM accumulator area of a real U55): ``entries`` micro-blocks of ``lanes``
    32-bit accumulators (:func:`~rtl.npu.kernel_op.acc_entries`). ``total`` = ``acc`` plus entry ``entry`` when
    ``resume`` (else ``acc``); ``we`` stores ``total`` into the entry. Sums wrap modulo ``2**32`` like the MAC
    block's accumulators, so summing the IFM-depth passes gives exactly the one-pass result.

    Members
    -------
    entry : ``In(range(ACC_ENTRIES))``; resume, we : ``In(1)``; acc : ``In(lanes x signed(32))``;
    total : ``Out(lanes x signed(32))``
    """

    def __init__(self, *, lanes: int, entries: int):
        self.lanes, self.entries = lanes, entries
        acc = data.ArrayLayout(signed(32), lanes)
        super().__init__({"entry": In(range(ACC_ENTRIES)), "resume": In(1), "we": In(1), "acc": In(acc),
                          "total": Out(acc)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.sums = mem = Memory(shape=32 * self.lanes, depth=self.entries, init=[])
        rd = mem.read_port(domain="comb")
        wr = mem.write_port()
        m.d.comb += [rd.addr.eq(self.entry[:len(rd.addr)]), wr.addr.eq(self.entry[:len(wr.addr)]),
                     wr.data.eq(self.total), wr.en.eq(self.we)]
        for k in range(self.lanes):
            m.d.comb += self.total[k].eq(self.acc[k] + Mux(self.resume, rd.data.word_select(k, 32).as_signed(), 0))
        return m


class OfmWriter(wiring.Component):
    """See the module docstring.

    Members
    -------
    pos : ``In(stream.Signature(Position))``; data : ``In(stream.Signature(32 * oub))`` (the output unit's results,
    32 bits per lane); ofm_size : ``In(2)``  log2 of the OFM element bytes (each lane's low 1, 2 or 4 bytes);
    running : ``In(1)``   writes allowed;  restart : ``In(1)``  drop the position being written;
    clear : ``In(1)``   empty the position FIFO (synchronous reset)
    bus : ``Out(MemPortSignature)`` (writes only);  busy : ``Out(1)``  a position is queued or being written
    """

    def __init__(self, *, oub: int):
        self.oub = oub
        super().__init__({
            "pos": In(stream.Signature(Position)), "data": In(stream.Signature(32 * oub)), "ofm_size": In(2),
            "running": In(1), "restart": In(1), "clear": In(1),
            "bus": Out(MemPortSignature), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        OUB = self.oub
        n_words = 4 * OUB // 8 + 1    # words a wide position touches at most (unaligned)
        m.submodules.outq = outq = ResetInserter(self.clear)(MemoryFIFO(width=Position.as_shape().size,
                                                                        depth=OUT_QUEUE))
        m.d.comb += [outq.w_stream.valid.eq(self.pos.valid), outq.w_stream.payload.eq(self.pos.payload),
                     self.pos.ready.eq(outq.w_stream.ready)]
        lanes = [self.data.payload[32 * i:32 * (i + 1)] for i in range(OUB)]
        packed = Mux(self.ofm_size == 2, self.data.payload,
                     Mux(self.ofm_size == 1, Cat(*[lane[:16] for lane in lanes]), Cat(*[lane[:8] for lane in lanes])))
        wr_have = Signal()
        wr_phase = Signal(range(n_words))
        wr_data = Signal(32 * OUB)
        wr_pos = Signal(Position)
        byte_mask = Mux(self.ofm_size == 2, Cat(*[wr_pos.mask[i].replicate(4) for i in range(OUB)]),
                        Mux(self.ofm_size == 1, Cat(*[wr_pos.mask[i].replicate(2) for i in range(OUB)]),
                            wr_pos.mask[:OUB]))
        wide_data = Signal(64 * n_words)
        wide_strb = Signal(8 * n_words)
        m.d.comb += [wide_data.eq(wr_data << (wr_pos.addr[:3] * 8)),
                     wide_strb.eq(byte_mask << wr_pos.addr[:3])]
        strb = wide_strb.word_select(wr_phase, 8)
        later = Signal()    # a word after this phase's has strobes
        m.d.comb += later.eq((wide_strb >> ((wr_phase + 1) * 8)) != 0)
        ofm = self.bus
        m.d.comb += [
            ofm.req.valid.eq(wr_have & (strb != 0) & self.running),
            ofm.req.payload.write.eq(1),
            ofm.req.payload.addr.eq((wr_pos.addr & ~7) + wr_phase * 8),
            ofm.req.payload.wdata.eq(wide_data.word_select(wr_phase, 64)),
            ofm.req.payload.wstrb.eq(strb),
            ofm.resp.ready.eq(1),
            self.busy.eq(outq.r_stream.valid | wr_have),
        ]
        step = Signal()
        complete = Signal()
        load = Signal()
        m.d.comb += [step.eq(wr_have & self.running & ((strb == 0) | ofm.req.ready)),
                     complete.eq(step & ~later),
                     load.eq((~wr_have | complete) & self.data.valid & outq.r_stream.valid),
                     self.data.ready.eq(load), outq.r_stream.ready.eq(load)]
        with m.If(load):
            m.d.sync += [wr_have.eq(1), wr_phase.eq(0), wr_data.eq(packed),
                         wr_pos.eq(outq.r_stream.payload)]
        with m.Elif(complete):
            m.d.sync += wr_have.eq(0)
        with m.Elif(step):
            m.d.sync += wr_phase.eq(wr_phase + 1)
        with m.If(self.restart):
            m.d.sync += wr_have.eq(0)
        return m
