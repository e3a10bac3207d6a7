"""Functional units of the PulseDL-II 1-D CNN accelerator (:mod:`rtl.pulsedl.accel`): the arithmetic unit (a MAC),
the processing element (a convolution lane of MACs with its kernel registers), the requantiser (TFLite's integer
rescaling) and the small divider of average pooling.

Operand widths cover both of TFLite's schemes: an activation operand is 17 bits signed (an int8 value minus its zero
point needs 9 bits, a symmetric int16 value 16), a weight 8 bits signed, so one AU serves int8 x int8 and int16 x int8.
"""
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.hdl import MemoryData
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["ACC_BITS", "ACT_BITS", "ArithmeticUnit", "ConvLane", "PoolDivider", "Requantizer", "SUM_BITS"]

ACT_BITS = 17     #: activation operand (value + input offset), signed
ACC_BITS = 40     #: one AU's accumulator: 512 taps x 2^16 x 2^7 needs 33 bits
SUM_BITS = 48     #: the PE's sum of its AUs plus the bias (TFLite's 16x8 bias is int64; the compiler bounds it to 48)


class ArithmeticUnit(wiring.Component):
    """Multiply-accumulate: on ``en``, ``acc`` becomes ``a * b`` (``first``) or ``acc + a * b``."""

    def __init__(self):
        super().__init__({"a": In(signed(ACT_BITS)), "b": In(signed(8)), "en": In(1), "first": In(1),
                          "acc": Out(signed(ACC_BITS))})

    def elaborate(self, platform):
        m = Module()
        product = Signal(signed(ACT_BITS + 8))
        m.d.comb += product.eq(self.a * self.b)
        with m.If(self.en):
            m.d.sync += self.acc.eq(Mux(self.first, product, self.acc + product))
        return m


class ConvLane(wiring.Component):
    """One processing element: ``aus`` arithmetic units fed by ``aus`` activations (from the line buffer, the same for
    every PE, already registered there) and one row of its kernel registers (``aus`` int8 weights per row, ``rows``
    rows). ``row``, ``en`` and ``first`` issue a row; the row is read into a register (block RAM's read register on
    an FPGA) and the AUs accumulate it one cycle later.

    ``sum`` is the sum of the AUs' accumulators. The kernel registers are written from the bus (``w_row``,
    ``w_data`` with weight ``i`` in bits ``8i..8i+7``, ``w_en``).
    """

    def __init__(self, aus: int, rows: int):
        self.aus, self.rows = aus, rows
        self.kernels = MemoryData(shape=8 * aus, depth=rows, init=[])
        super().__init__({
            "acts": In(signed(ACT_BITS)).array(aus), "row": In(range(rows)), "en": In(1), "first": In(1),
            "sum": Out(signed(SUM_BITS)),
            "w_row": In(range(rows)), "w_data": In(8 * aus), "w_en": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.kernels = kernels = Memory(data=self.kernels)
        read = kernels.read_port(domain="comb")
        write = kernels.write_port()
        weights, en, first = Signal(8 * self.aus), Signal(), Signal()
        m.d.sync += [weights.eq(read.data), en.eq(self.en), first.eq(self.first)]
        m.d.comb += [read.addr.eq(self.row), write.addr.eq(self.w_row), write.data.eq(self.w_data),
                     write.en.eq(self.w_en)]
        total = Const(0, signed(SUM_BITS))
        for i in range(self.aus):
            au = ArithmeticUnit()
            m.submodules[f"au{i}"] = au
            m.d.comb += [au.a.eq(self.acts[i]), au.b.eq(weights[8 * i:8 * i + 8].as_signed()),
                         au.en.eq(en), au.first.eq(first)]
            total = total + au.acc
        m.d.comb += self.sum.eq(total)
        return m


class Requantizer(wiring.Component):
    """``acc + bias`` rescaled to the output tensor, TFLite's reference-kernel integer arithmetic (combinational).

    ``wide`` = 0 (int8 activations, int32 accumulator): MultiplyByQuantizedMultiplier(int32): a left shift by
    ``max(shift, 0)``, SaturatingRoundingDoublingHighMul with ``mult``, RoundingDivideByPOT by ``max(-shift, 0)``.
    ``wide`` = 1, a single rounding in int64: ``(x * mult + 2^(shift-1)) >> shift`` (``shift`` 1..63). The compiler
    uses it for 16x8 CONV_2D (MultiplyByQuantizedMultiplier(int64): the 16-bit reduced multiplier, ``shift`` = 15 -
    TFLite's shift) and for FULLY_CONNECTED, whose LiteRT reference kernels round once with the 31-bit multiplier
    (``shift`` = 31 - TFLite's shift).
    Then ``+ out_zp`` and the clamp to ``[act_min, act_max]`` (the fused ReLU/ReLU6 and the type's range).
    """

    def __init__(self):
        super().__init__({
            "acc": In(signed(SUM_BITS)), "bias": In(signed(SUM_BITS)), "mult": In(signed(32)),
            "shift": In(signed(8)), "wide": In(1), "out_zp": In(signed(16)),
            "act_min": In(signed(16)), "act_max": In(signed(16)), "out": Out(signed(16)),
        })

    def elaborate(self, platform):
        m = Module()
        total = Signal(signed(SUM_BITS))
        m.d.comb += total.eq(self.acc + self.bias)
        narrow = Signal(signed(32))
        m.d.comb += narrow.eq(self._int32_path(m, total[:32].as_signed()))
        wide = Signal(signed(64))
        m.d.comb += wide.eq(self._int64_path(m, total))
        scaled = Signal(signed(34))
        m.d.comb += scaled.eq(Mux(self.wide, wide[:32].as_signed(), narrow) + self.out_zp)
        with m.If(scaled < self.act_min):
            m.d.comb += self.out.eq(self.act_min)
        with m.Elif(scaled > self.act_max):
            m.d.comb += self.out.eq(self.act_max)
        with m.Else():
            m.d.comb += self.out.eq(scaled)
        return m

    def _int64_path(self, m, x):
        """``(x * mult + 2^(shift-1)) >> shift`` in int64 arithmetic (wrapping, as C does where it does not
        overflow), built from 64-bit pieces: ``mult`` (31 bits) in 15-bit slices, so no product is wider than 64."""
        mult = self.mult[:31]
        low, mid = Signal(signed(64)), Signal(signed(64))
        m.d.comb += [low.eq(x * mult[:15]), mid.eq(x * mult[15:30])]
        top = Signal(signed(64))
        m.d.comb += top.eq(Mux(mult[30], x, 0))
        product = Signal(signed(64))
        m.d.comb += product.eq(low + Cat(Const(0, 15), mid[:49]).as_signed() + Cat(Const(0, 30), top[:34]).as_signed())
        rounded = Signal(signed(64))
        m.d.comb += rounded.eq(product + (Const(1 << 63, 64) >> (64 - self.shift[:6])[:7]))   # + 2^(shift-1)
        return rounded >> self.shift[:6]

    def _int32_path(self, m, x):
        left = Signal(3)
        right = Signal(5)
        with m.If(self.shift > 0):
            m.d.comb += left.eq(self.shift)
        with m.Else():
            m.d.comb += right.eq(-self.shift)
        shifted = Signal(signed(32))
        m.d.comb += shifted.eq(x << left)                      # wraps to 32 bits as int32 arithmetic does
        product = Signal(signed(64))
        m.d.comb += product.eq(shifted * self.mult)
        nudged = Signal(signed(64))                            # |product| < 2^62: no overflow
        m.d.comb += nudged.eq(product + Mux(product >= 0, 1 << 30, 1 - (1 << 30)))
        high = Signal(signed(32))                         # nudged / 2^31, truncated toward zero
        magnitude = Signal(64)
        m.d.comb += magnitude.eq(Mux(nudged < 0, -nudged, nudged))
        m.d.comb += high.eq(Mux(nudged < 0, -(magnitude >> 31), magnitude >> 31))
        mask = Signal(32)
        m.d.comb += mask.eq((Const(1, 33) << right) - 1)
        remainder = Signal(32)
        threshold = Signal(33)
        m.d.comb += [remainder.eq(high & mask), threshold.eq((mask >> 1) + (high < 0))]
        return (high >> right) + (remainder > threshold)


class PoolDivider(wiring.Component):
    """``quotient = dividend // divisor`` for unsigned ``dividend`` (20 bits) and ``divisor`` (4 bits), by restoring
    division, one bit per cycle: ``start`` latches the operands, ``done`` pulses after 20 cycles."""

    BITS = 20

    def __init__(self):
        super().__init__({"start": In(1), "dividend": In(self.BITS), "divisor": In(4), "done": Out(1),
                          "quotient": Out(self.BITS)})

    def elaborate(self, platform):
        m = Module()
        remainder = Signal(self.BITS + 1)
        divisor = Signal(4)
        count = Signal(range(self.BITS + 1))
        m.d.sync += self.done.eq(0)
        with m.If(self.start):
            m.d.sync += [self.quotient.eq(self.dividend), remainder.eq(0), divisor.eq(self.divisor),
                         count.eq(self.BITS)]
        with m.Elif(count != 0):
            trial = Signal(self.BITS + 1)
            m.d.comb += trial.eq((remainder << 1) | self.quotient[-1])
            fits = trial >= divisor
            m.d.sync += [remainder.eq(Mux(fits, trial - divisor, trial)),
                         self.quotient.eq((self.quotient << 1) | fits), count.eq(count - 1),
                         self.done.eq(count == 1)]
        return m
