"""NPU output stage: per-channel bias, scale and rounding shift, OFM zero point and activation clamp to int8.

Bit-exact implementation of :mod:`models.npu.requant` (round mode TFL, the per-channel scale stream)::

    v = acc + bias;  p = v * scale
    shift > 31:  t = (p + 2**30) >> 31;  y = (t + 2**(r-1) - (t < 0)) >> r   with r = shift - 31
    shift <= 31: y = (p + 2**(shift-1)) >> shift                          (shift 0: y = p)
    out = min(max(y + ofm_zero_point, lo), hi)    lo/hi = act_min/act_max clipped to -128..127 (0..255 with
                                                  ofm_unsigned: a U8 OFM)

With ``natural`` (round mode NATURAL, which Vela writes for every conv / depthwise / FC on a 16-bit IFM, whose
LiteRT kernels round once: ``MultiplyByQuantizedMultiplier(int64_t, ...)``) one rounding for every shift:
``y = (p + 2**(shift-1)) >> shift``. For ``shift > 31`` that is ``t = p >> 31`` (no rounding), then
``y = (t + 2**(r-1)) >> r``: exact, since ``2**(shift-1)`` is a multiple of ``2**31``.

With ``lut`` set (ACTIVATION TABLE_n, an 8-bit table) the clamp to ``lo``/``hi`` is applied to a table entry instead:
``z = min(max(y + ofm_zero_point, -128), 127)``, ``out = min(max(table[z + 128], lo), hi)`` (the vector unit's
8-bit lookup, ``rtl.npu.vector_unit.VectorOutputStage``). The table is outside the unit: ``lut_index`` carries each
lane's ``z + 128`` and ``lut_entry`` must answer in the same cycle (:class:`~rtl.npu.activation_table.ActivationTable`).

Both branches share one variable shifter: ``q = t or p``, ``s = shift - 31 or shift``, ``y = (q + half(s) -
(double & q < 0)) >> s``. ``y`` is saturated to 33 bits before the zero point is added; since the zero point is a
16-bit value and the clamp bounds lie in -128..127 (or the int16 / int32 range, see ``ofm_size``), that cannot
change the result.

``ofm_size`` (log2 of the OFM element bytes): 0 int8 as above; 1 int16, clamped to ACTIVATION_MIN / MAX as they are
(ARG_MAX's depthwise); 2 int32 (MEAN's depthwise sum): ``y + ofm_zero_point`` saturated to int32, ACTIVATION_MIN / MAX
ignored (as the vector unit's 32-bit OFM). The results are on ``wide`` (32 bits a lane, valid with ``o_stream``);
``o_stream.data`` carries their low bytes. No value of the datapath is
wider than 64 bits (the 73-bit product is kept as two words; see the comment at ``_V_WIDTH`` for the ranges).

Channel parameters live in a memory written through ``param_*`` (one record per cycle, while the unit is idle):
``param_record`` is the Vela record read as a little-endian 80-bit integer (bias [39:0], scale [71:40],
shift [77:72]; ``models.npu.requant.record_word``). The memory is split into ``lanes`` banks: channel ``c`` lives in
bank ``c % lanes``, so one input beat ``(acc[0..lanes-1], channel)`` reads channels ``channel + 0 .. lanes-1``
in a single cycle; ``channel`` must be a multiple of ``lanes`` (its low bits are ignored).

Pipeline (all stages stall together when the output is not taken): memory read | bias add | multiply | rounding
shift | zero point and clamp (the output register). Throughput one beat (``lanes`` values) per cycle;
:attr:`OutputUnit.latency` = 5 cycles from the edge that accepts a beat to the edge after which it is on
``o_stream`` (in a :meth:`sim.harness.NativeSim.run_stimulus` trace: input at cycle n, output valid at n + 5).
``ofm_zero_point``/``act_min``/``act_max`` are quasi-static: change them only while no beat is in flight.
"""
from dataclasses import dataclass

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["OutputUnitConfig", "OutputUnit", "RECORD_WIDTH"]

#: Width of a channel record as written on ``param_record`` (10 bytes).
RECORD_WIDTH = 80
_Y_WIDTH = 33  # saturated width of the rescaled value (the int32 range plus a bit; see module docstring)
_V_WIDTH = 41  # v = acc + bias: a 32- or 40-bit accumulator plus the 40-bit bias

# Arithmetic widths. Every value of the datapath stays within 64 bits: Verilator evaluates wider ones with
# out-of-line helpers (VL_ADD_W, VL_EXTENDS_WW, ...) that once took ~45% of a whole NPU's simulation time.
# * v = acc + bias: |v| <= 2**40, 41-bit signed (_V_WIDTH). scale < 2**32 (unsigned), so |p| = |v * scale| < 2**72.
# * p is kept as p = hi * 2**32 + lo with lo = p mod 2**32 (32 bits) and hi = floor(p / 2**32), |hi| <= 2**40
#   (41-bit signed), from two partial products that fit: v's low 32 bits (unsigned) * scale < 2**64, and v's top
#   9 bits (signed) * scale, 42 bits (:func:`_split_product`).
# * Double rounding (shift > 31): t = (p + 2**30) >> 31 = 2 * hi + ((lo + 2**30) >> 31), |t| < 2**42.
# * Single rounding (shift <= 31): p is used as it is when -2**61 <= p < 2**61 (hi within 30-bit signed). Otherwise
#   |p / 2**shift| >= 2**30 and y saturates to the _Y_WIDTH bound of p's sign: exact for an int8 / int16 OFM; an int32
#   OFM then saturates to int32 even where the exact y lies in 2**30..2**31-1 (MEAN's unit scale never gets there).
# * The rounding shift of q (t or p, 62-bit signed) by s <= 32 (shift - 31 or shift) is
#   (q + 2**(s-1) - away) >> s = (((q - away) >> (s - 1)) + 1) >> 1 for s >= 1, and q for s == 0 (away is only
#   set with double rounding, where s >= 1): 64 bits at most, without forming 2**s.
_Q_WIDTH = 62


@dataclass(frozen=True)
class OutputUnitConfig:
    """``lanes`` output channels per beat (the OFM micro-block depth: 4 on U55-32, 8 otherwise), ``channels``
    records in the parameter memory, ``acc_width`` bits per input accumulator (32, or 40 for Vela's INT40)."""

    lanes: int = 8
    channels: int = 128
    acc_width: int = 32

    def __post_init__(self):
        if not isinstance(self.lanes, int) or self.lanes not in (1, 2, 4, 8, 16):
            raise ValueError(f"lanes must be one of 1, 2, 4, 8, 16, not {self.lanes!r}")
        if (not isinstance(self.channels, int) or not self.lanes <= self.channels <= 65536
                or self.channels % self.lanes):
            raise ValueError(f"channels must be a multiple of lanes in {self.lanes}..65536, not {self.channels!r}")
        if not isinstance(self.acc_width, int) or self.acc_width not in (32, 40):
            raise ValueError(f"acc_width must be 32 or 40, not {self.acc_width!r}")

    @property
    def channel_bits(self) -> int:
        return max(1, (self.channels - 1).bit_length())


class ChannelRecord(data.Struct):
    """One channel's parameters, laid out exactly as Vela's 10-byte record (little-endian)."""

    bias: signed(40)
    scale: unsigned(32)
    shift: unsigned(6)


class OutputUnit(wiring.Component):
    """Requantise ``lanes`` accumulators per cycle to int8 (see the module docstring).

    Members
    -------
    i_stream : ``In(stream.Signature({acc: lanes x signed(acc_width), channel}))``
        ``channel`` is that of lane 0, a multiple of ``lanes``.
    o_stream : ``Out(stream.Signature({data: lanes x signed(8), channel}))``
    wide : ``Out(lanes x signed(32))``  the output register in full (32-bit lanes), valid with ``o_stream``
    param_we, param_channel, param_record : ``In``
        Write ``param_record`` (80-bit Vela record) for channel ``param_channel`` when ``param_we``.
    ofm_zero_point, act_min, act_max : ``In(signed(16))``
        OFM_ZERO_POINT, ACTIVATION_MIN, ACTIVATION_MAX register values.
    lut : ``In(1)``; lut_index : ``Out(8).array(lanes)``; lut_entry : ``In(8).array(lanes)``
        table activation (quasi-static, like the zero point): each lane's table index and its entry.
    ofm_size : ``In(2)``
        log2 of the OFM element bytes (quasi-static like the zero point; see the module docstring).
    ofm_unsigned : ``In(1)``
        an 8-bit OFM is uint8: clamp to 0..255 (quasi-static; no table activation then).
    natural : ``In(1)``
        round mode NATURAL instead of TFL (quasi-static; see the module docstring).
    """

    latency = 5

    def __init__(self, config: OutputUnitConfig):
        if not isinstance(config, OutputUnitConfig):
            self._MustUse__silence = True  # a block that failed to construct is not an unused elaboratable
            raise TypeError(f"config must be an OutputUnitConfig, not {config!r}")
        self.config = config
        cb = config.channel_bits
        self.in_layout = data.StructLayout({
            "acc": data.ArrayLayout(signed(config.acc_width), config.lanes), "channel": unsigned(cb)})
        self.out_layout = data.StructLayout({
            "data": data.ArrayLayout(signed(8), config.lanes), "channel": unsigned(cb)})
        super().__init__({
            "i_stream": In(stream.Signature(self.in_layout)),
            "o_stream": Out(stream.Signature(self.out_layout)),
            "param_we": In(1),
            "param_channel": In(unsigned(cb)),
            "param_record": In(RECORD_WIDTH),
            "ofm_zero_point": In(signed(16)),
            "act_min": In(signed(16)),
            "act_max": In(signed(16)),
            "lut": In(1),
            "lut_index": Out(8).array(config.lanes),
            "lut_entry": In(8).array(config.lanes),
            "ofm_size": In(2), "ofm_unsigned": In(1),
            "natural": In(1),
            "wide": Out(data.ArrayLayout(signed(32), config.lanes)),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        lane_bits = (cfg.lanes - 1).bit_length()
        depth = cfg.channels // cfg.lanes

        adv = Signal()   # every stage moves on (the output register is empty or being read)
        m.d.comb += [adv.eq(~self.o_stream.valid | self.o_stream.ready), self.i_stream.ready.eq(adv)]
        valid = [Signal(name=f"valid_{n}") for n in range(5)]
        with m.If(adv):
            m.d.sync += valid[0].eq(self.i_stream.valid)
            m.d.sync += [valid[n].eq(valid[n - 1]) for n in range(1, 5)]
        m.d.comb += self.o_stream.valid.eq(valid[4])

        channel = [Signal(unsigned(cfg.channel_bits), name=f"channel_{n}") for n in range(5)]
        with m.If(adv):
            m.d.sync += channel[0].eq(self.i_stream.payload.channel)
            m.d.sync += [channel[n].eq(channel[n - 1]) for n in range(1, 5)]
        m.d.comb += self.o_stream.payload.channel.eq(channel[4])

        # Clamp bounds: the 16-bit registers, clipped to the int8 (uint8) range for an 8-bit OFM.
        lo, hi = Signal(signed(16)), Signal(signed(16))
        low8, high8 = Mux(self.ofm_unsigned, 0, -128), Mux(self.ofm_unsigned, 255, 127)
        for bound, reg in ((lo, self.act_min), (hi, self.act_max)):
            m.d.comb += bound.eq(Mux(self.ofm_size != 0, reg, Mux(reg < low8, low8, Mux(reg > high8, high8, reg))))

        record_bits = ChannelRecord.as_shape().size  # 78: the two top bits of a record are reserved
        write_lane = self.param_channel[:lane_bits] if lane_bits else Const(0)
        for lane in range(cfg.lanes):
            m.submodules[f"params_{lane}"] = mem = Memory(shape=ChannelRecord, depth=depth, init=[])
            wr = mem.write_port()
            m.d.comb += [wr.addr.eq(self.param_channel[lane_bits:]), wr.data.eq(self.param_record[:record_bits]),
                         wr.en.eq(self.param_we & (write_lane == lane))]
            # Asynchronous read plus an explicit register, so the record register is a fault site (sim/netlist.py).
            rd = mem.read_port(domain="comb")
            m.d.comb += rd.addr.eq(self.i_stream.payload.channel[lane_bits:])
            record = Signal(ChannelRecord, name=f"record0_{lane}")

            # stage 0: accumulator and record registered
            acc0 = Signal(signed(cfg.acc_width), name=f"acc0_{lane}")
            # stage 1: v = acc + bias
            v1 = Signal(signed(_V_WIDTH), name=f"v1_{lane}")
            scale1 = Signal(unsigned(32), name=f"scale1_{lane}")
            shift1 = Signal(unsigned(6), name=f"shift1_{lane}")
            # stage 2: p = v * scale = p2_hi * 2**32 + p2_lo
            p2_hi = Signal(signed(_V_WIDTH), name=f"p2_hi_{lane}")
            p2_lo = Signal(unsigned(32), name=f"p2_lo_{lane}")
            shift2 = Signal(unsigned(6), name=f"shift2_{lane}")
            # stage 3: rounding shift, saturated
            y3 = Signal(signed(_Y_WIDTH), name=f"y3_{lane}")
            # stage 4: zero point and clamp (the output register; 32 bits for an int32 OFM)
            out4 = Signal(signed(32), name=f"out4_{lane}")

            product_hi, product_lo = _split_product(m, v1, scale1, lane)
            z = Signal(signed(_Y_WIDTH + 1), name=f"z_{lane}")
            m.d.comb += z.eq(y3 + self.ofm_zero_point)
            m.d.comb += self.lut_index[lane].eq(Mux(z < -128, 0, Mux(z > 127, 255, z + 128)))
            activated = Mux(self.lut, self.lut_entry[lane].as_signed(), z)
            clamped = Mux(activated < lo, lo, activated)
            clamped = Mux(clamped > hi, hi, clamped)
            i32_min, i32_max = -(1 << 31), (1 << 31) - 1
            saturated = Mux(z < i32_min, i32_min, Mux(z > i32_max, i32_max, z))

            with m.If(adv):
                m.d.sync += [
                    acc0.eq(self.i_stream.payload.acc[lane]), record.eq(rd.data),
                    v1.eq(acc0 + record.bias), scale1.eq(record.scale), shift1.eq(record.shift),
                    p2_hi.eq(product_hi), p2_lo.eq(product_lo), shift2.eq(shift1),
                    y3.eq(_rounding_shift(m, p2_hi, p2_lo, shift2, lane, self.natural)),
                    out4.eq(Mux(self.ofm_size == 2, saturated, clamped)),
                ]
            m.d.comb += [self.o_stream.payload.data[lane].eq(out4[:8]), self.wide[lane].eq(out4)]
        return m


def _split_product(m: Module, v, scale, lane: int) -> tuple[Value, Value]:
    """(hi, lo) with v * scale = hi * 2**32 + lo, 0 <= lo < 2**32, from partial products of at most 64 bits."""
    low = Signal(unsigned(64), name=f"p_low_{lane}")
    high = Signal(signed(_V_WIDTH + 1), name=f"p_high_{lane}")
    m.d.comb += [low.eq(v[:32] * scale), high.eq(v[32:].as_signed() * scale)]
    return high + low[32:], low[:32]


def _rounding_shift(m: Module, hi, lo, shift, lane: int, natural) -> Value:
    """The requantisation's rounding right shift of p = hi * 2**32 + lo by ``shift``, saturated to _Y_WIDTH bits:
    TFL's double rounding, or one rounding (``natural``)."""
    double = shift > 31
    t = Signal(signed(_V_WIDTH + 2), name=f"t_{lane}")
    m.d.comb += t.eq(hi * 2 + Mux(natural, lo[31], (lo + (1 << 30)) >> 31))
    small = (hi >= -(1 << (_Q_WIDTH - 33))) & (hi < (1 << (_Q_WIDTH - 33)))   # |p| < 2**61
    q = Signal(signed(_Q_WIDTH), name=f"q_{lane}")
    m.d.comb += q.eq(Mux(double, t, Cat(lo, hi[:_Q_WIDTH - 32]).as_signed()))
    s = Signal(unsigned(6), name=f"s_{lane}")
    m.d.comb += s.eq(Mux(double, shift - 31, shift))
    away = double & q[-1] & ~natural             # round half away from zero (RoundingDivideByPOT)
    below = Signal(unsigned(6), name=f"s_minus_1_{lane}")
    m.d.comb += below.eq(s - 1)
    shifted = Signal(signed(_Q_WIDTH + 2), name=f"shifted_{lane}")
    m.d.comb += shifted.eq(Mux(s == 0, q, (((q - away) >> below) + 1) >> 1))
    y_max, y_min = (1 << (_Y_WIDTH - 1)) - 1, -(1 << (_Y_WIDTH - 1))
    saturated = Mux(shifted > y_max, y_max, Mux(shifted < y_min, y_min, shifted))
    return Mux(double | small, saturated, Mux(hi[-1], y_min, y_max))
