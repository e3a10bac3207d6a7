"""The M extension: a single-cycle multiplier and an iterative (one quotient bit per cycle) divider."""
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Divider", "Multiplier"]


class Multiplier(wiring.Component):
    """Combinational MUL / MULH / MULHSU / MULHU (``funct3`` 0-3)."""

    def __init__(self):
        super().__init__({"a": In(32), "b": In(32), "funct3": In(3), "result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        a_signed = (self.funct3 == 1) | (self.funct3 == 2)
        b_signed = self.funct3 == 1
        a = Cat(self.a, a_signed & self.a[31]).as_signed()     # 33-bit operands cover both signednesses
        b = Cat(self.b, b_signed & self.b[31]).as_signed()
        product = Signal(66)
        m.d.comb += product.eq(a * b)
        m.d.comb += self.result.eq(Mux(self.funct3[:2] == 0, product[:32], product[32:64]))
        return m


class Divider(wiring.Component):
    """DIV / DIVU / REM / REMU (``funct3`` 4-7) by restoring division of the magnitudes: 32 busy cycles.

    ``start`` (one cycle) latches the operands; ``done`` is high for one cycle when ``result`` is valid (it stays
    valid until the next ``start``). Division by zero gives all ones (DIV, DIVU) and the dividend (REM, REMU);
    the signed overflow -2^31 / -1 gives -2^31 and remainder 0, as the ISA specifies.
    """

    def __init__(self):
        super().__init__({"start": In(1), "a": In(32), "b": In(32), "funct3": In(3),
                          "busy": Out(1), "done": Out(1), "result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        signed = ~self.funct3[0]
        quotient = Signal(32)      # holds the dividend's magnitude at first, shifted out as quotient bits come in
        remainder = Signal(32)
        divisor = Signal(32)
        count = Signal(range(33))
        want_rem = Signal()
        negate_q = Signal()
        negate_r = Signal()
        by_zero = Signal()

        def magnitude(x, is_signed):
            return Mux(is_signed & x[31], -x, x)[:32]

        with m.If(self.start):
            m.d.sync += [
                quotient.eq(magnitude(self.a, signed)), remainder.eq(0), divisor.eq(magnitude(self.b, signed)),
                count.eq(32), self.busy.eq(1), want_rem.eq(self.funct3[1]), by_zero.eq(self.b == 0),
                negate_q.eq(signed & (self.a[31] ^ self.b[31])), negate_r.eq(signed & self.a[31]),
            ]
        with m.Elif(self.busy):
            shifted = Cat(quotient[31], remainder)             # 33 bits
            fits = shifted >= divisor
            m.d.sync += [
                remainder.eq(Mux(fits, shifted - divisor, shifted)[:32]),
                quotient.eq(Cat(fits, quotient[:31])),
                count.eq(count - 1),
            ]
            with m.If(count == 1):
                m.d.sync += [self.busy.eq(0), self.done.eq(1)]
        with m.If(self.done):
            m.d.sync += self.done.eq(0)

        q = Mux(by_zero, Const(0xFFFF_FFFF, 32), Mux(negate_q, -quotient, quotient)[:32])
        r = Mux(negate_r, -remainder, remainder)[:32]
        m.d.comb += self.result.eq(Mux(want_rem, r, q))
        return m
