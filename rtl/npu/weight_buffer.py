"""NPU weight buffer: the *brick* RAM of the compute unit, one ring shared by the two kernel ops in flight.

One row is one ``OUB x 8`` brick (``weight[o][i]`` of one OFM ublock and one IFM ublock for one kernel element), one
``WEIGHT_BITS``-bit lane per weight.
The loader writes the decoded stream into it one decoder beat per cycle (``wr_*``: up to ``OUB`` consecutive weights of
one stream-aligned group of ``OUB``, which lies in one brick; a depthwise stream carries ``OUB`` weights per brick,
written on the diagonal ``weight[o][o]``), the engine reads one brick per cycle (``rd_*``, asynchronous).

Bricks are numbered globally (32-bit, in write order). Each of the two op *slots* has ``start[slot]``, the number
of its first brick (set to ``end`` when the slot is opened by a kick); ``end`` is one past the last brick loaded so
far (set when the slot's stream is closed); ``low`` is the engine's oldest brick still needed (the first of its
current OFM block, set by ``low_set`` to ``start[low_slot] + low_offset``). Brick ``n`` may be written only while
``n < low + rows`` (``wr_room``), so the loader never overwrites a brick the engine still needs.
"""
from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.npu.kernel_op import IUB, WEIGHT_BITS

__all__ = ["WeightBuffer"]


class WeightBuffer(wiring.Component):
    """The brick ring (see the module docstring).

    Members
    -------
    open, open_slot : ``In(1)``           ``start[open_slot] <= end``
    wr_en, wr_slot, wr_dw : ``In(1)``     write weights ``wr_count ..`` of slot ``wr_slot``'s stream
    wr_count : ``In(32)``; wr_data : ``In(WEIGHT_BITS * oub)``; wr_first : ``In(range(oub))``;
    wr_n : ``In(range(oub + 1))``
                                          lanes ``wr_first .. wr_first+wr_n-1`` of the group are weights
                                          ``wr_count ..`` (``wr_count % oub == wr_first``)
    wr_room : ``Out(1)``                  that group's brick may be written now
    wr_bricks : ``Out(32)``               bricks of slot ``wr_slot`` complete before weight ``wr_count``
    close : ``In(1)``; close_bricks : ``In(32)``   ``end <= start[wr_slot] + close_bricks``
    low_set, low_slot : ``In(1)``; low_offset : ``In(32)``
    rd_slot : ``In(1)``; rd_brick : ``In(24)``; rd_data : ``Out(WEIGHT_BITS * brick_bytes)``
                                          brick ``start[rd_slot] + rd_brick``
    """

    def __init__(self, *, rows: int, oub: int):
        self.rows, self.oub, self.brick_bytes = rows, oub, oub * IUB
        super().__init__({
            "open": In(1), "open_slot": In(1),
            "wr_en": In(1), "wr_slot": In(1), "wr_dw": In(1), "wr_count": In(32), "wr_data": In(WEIGHT_BITS * oub),
            "wr_first": In(range(oub)), "wr_n": In(range(oub + 1)),
            "wr_room": Out(1), "wr_bricks": Out(32),
            "close": In(1), "close_bricks": In(32),
            "low_set": In(1), "low_slot": In(1), "low_offset": In(32),
            "rd_slot": In(1), "rd_brick": In(24), "rd_data": Out(WEIGHT_BITS * self.brick_bytes),
        })

    def elaborate(self, platform):
        m = Module()
        OUB, BB, ring = self.oub, self.brick_bytes, self.rows
        W = WEIGHT_BITS
        m.submodules.bricks = mem = Memory(shape=W * BB, depth=ring, init=[])
        wr = mem.write_port(granularity=W)
        rd = mem.read_port(domain="comb")
        ring_bits = (ring - 1).bit_length()
        start = Array(Signal(32, name=f"start_{b}") for b in range(2))
        end = Signal(32)
        low = Signal(32)

        with m.If(self.open):
            m.d.sync += start[self.open_slot].eq(end)
        with m.If(self.close):
            m.d.sync += end.eq(start[self.wr_slot] + self.close_bricks)
        with m.If(self.low_set):
            m.d.sync += low.eq(start[self.low_slot] + self.low_offset)

        # Write side: the group of weights ``wr_count ..`` goes to weight lanes of brick ``row`` of the slot.
        lanes_w = self.wr_data
        cnt = self.wr_count
        diag = Cat(*[lanes_w.word_select(b // IUB, W) if b // IUB == b % IUB else Const(0, W) for b in range(BB)])
        grp = cnt[OUB.bit_length() - 1:BB.bit_length() - 1]    # the group's place in a (non-depthwise) brick
        row = Mux(self.wr_dw, cnt >> (OUB.bit_length() - 1), cnt >> (BB.bit_length() - 1))
        w_abs = Signal(32)      # global number of the brick being written
        w_ahead = Signal(signed(34))
        m.d.comb += [w_abs.eq(start[self.wr_slot] + row), w_ahead.eq(w_abs - low), self.wr_room.eq(w_ahead < ring),
                     wr.addr.eq(w_abs[:ring_bits]), wr.data.eq(Mux(self.wr_dw, diag, Cat(*[lanes_w] * IUB))),
                     self.wr_bricks.eq(row)]
        valid = Signal(OUB)    # the group's lanes being written
        m.d.comb += valid.eq((((1 << self.wr_n) - 1) << self.wr_first)[:OUB])
        lanes = Mux(self.wr_dw, Cat(*[Mux(valid[o], Const(0xFF, IUB), 0) for o in range(OUB)]),
                    valid << (grp * OUB))
        with m.If(self.wr_en):
            m.d.comb += wr.en.eq(lanes)

        m.d.comb += [rd.addr.eq((start[self.rd_slot] + self.rd_brick)[:ring_bits]), self.rd_data.eq(rd.data)]
        return m
