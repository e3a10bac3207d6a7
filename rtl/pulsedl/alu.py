"""The integer ALU and the branch comparator of the RV32I base ISA (both combinational)."""
from amaranth import Module, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.pulsedl.decoder import AluFn

__all__ = ["Alu", "BranchCompare"]


class Alu(wiring.Component):
    def __init__(self):
        super().__init__({"a": In(32), "b": In(32), "fn": In(AluFn), "result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        a, b, shamt = self.a, self.b, self.b[:5]
        with m.Switch(self.fn):
            with m.Case(AluFn.ADD):
                m.d.comb += self.result.eq(a + b)
            with m.Case(AluFn.SUB):
                m.d.comb += self.result.eq(a - b)
            with m.Case(AluFn.SLL):
                m.d.comb += self.result.eq(a << shamt)
            with m.Case(AluFn.SLT):
                m.d.comb += self.result.eq(a.as_signed() < b.as_signed())
            with m.Case(AluFn.SLTU):
                m.d.comb += self.result.eq(a < b)
            with m.Case(AluFn.XOR):
                m.d.comb += self.result.eq(a ^ b)
            with m.Case(AluFn.SRL):
                m.d.comb += self.result.eq(a >> shamt)
            with m.Case(AluFn.SRA):
                m.d.comb += self.result.eq(a.as_signed() >> shamt)
            with m.Case(AluFn.OR):
                m.d.comb += self.result.eq(a | b)
            with m.Case(AluFn.AND):
                m.d.comb += self.result.eq(a & b)
        return m


class BranchCompare(wiring.Component):
    """``taken`` for a branch with ``funct3`` (BEQ, BNE, -, -, BLT, BGE, BLTU, BGEU) on operands ``a``, ``b``."""

    def __init__(self):
        super().__init__({"a": In(32), "b": In(32), "funct3": In(3), "taken": Out(1)})

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b
        less = Mux(self.funct3[1], a < b, a.as_signed() < b.as_signed())
        # funct3[2] picks "less than" over "equal", funct3[0] negates the condition
        m.d.comb += self.taken.eq(Mux(self.funct3[2], less, a == b) ^ self.funct3[0])
        return m
