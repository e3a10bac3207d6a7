"""The NPU's TANH and SIGMOID activation functions (ACTIVATION function 3 / 4; int16 only) as logic: the 256-entry
``sigmoid(i / 24)`` table (:data:`models.npu.sigmoid_tanh.SIGMOID_TABLE_U16`, LiteRT's published values) as a
constant, one interpolation multiplier, the mirror for negative values and tanh's half-width index step. The
arithmetic it implements, and the golden model it is tested against, is :func:`models.npu.sigmoid_tanh.sigmoid_tanh16`.
"""
from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.npu.sigmoid_tanh import ACT_SIGMOID, ACT_TANH, SIGMOID_TABLE_U16

__all__ = ["ACT_TANH", "ACT_SIGMOID", "SigmoidTanhUnit"]


class SigmoidTanhUnit(wiring.Component):
    """:func:`models.npu.sigmoid_tanh.sigmoid_tanh16` as combinational logic (ROM, one interpolation multiplier).

    Members
    -------
    x : ``In(signed(width))`` the value in units of 1 / 0x3000; tanh : ``In(1)`` (else SIGMOID)
    y : ``Out(signed(17))`` the Q0.15 result
    """

    def __init__(self, width: int):
        super().__init__({"x": In(signed(width)), "tanh": In(1), "y": Out(signed(17))})

    def elaborate(self, platform):
        m = Module()
        x = self.x
        neg = x < 0
        a = Signal(unsigned(len(x)))
        m.d.comb += a.eq(Mux(neg, -x, x))
        seg = Signal(unsigned(len(x)))
        m.d.comb += seg.eq(Mux(self.tanh, a >> 8, a >> 9))
        saturated = seg >= 255
        index = Signal(8)
        m.d.comb += index.eq(seg[:8])
        frac = Signal(9)
        m.d.comb += frac.eq(Mux(self.tanh, a[:8], a[:9]))
        # a constant word-selected (a shifter), not an Array (a switch Yosys would turn into a ROM memory cell,
        # i.e. state the fault-injection netlist map does not hold)
        rom = Const(sum(v << (16 * i) for i, v in enumerate(SIGMOID_TABLE_U16)), 16 * len(SIGMOID_TABLE_U16))
        lo, hi = Signal(16), Signal(16)
        m.d.comb += [lo.eq(rom.word_select(index, 16)),
                     hi.eq(rom.word_select(Mux(saturated, index, index + 1)[:8], 16))]
        r = Signal(signed(28))
        interp = Signal(signed(28))
        m.d.comb += interp.eq(Mux(self.tanh, lo << 8, lo << 9) + frac * (hi - lo))
        m.d.comb += r.eq(Mux(saturated, Mux(self.tanh, 0xFFFF << 8, 0x7FFF << 10), interp))
        t = Signal(signed(28))
        m.d.comb += t.eq(Mux(self.tanh,
                             Mux(neg, -r + (1 << 23) + (1 << 7) - 1, r - (1 << 23) + (1 << 7)) >> 8,
                             Mux(neg, (1 << 25) - r + (1 << 9) - 1, r + (1 << 9)) >> 10))
        m.d.comb += self.y.eq(t)
        return m
