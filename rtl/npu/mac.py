"""NPU MAC block: one OFM micro-block of int8 dot products with IFM zero point, accumulated over a stream of beats.

The Ethos-U55 computes one OFM *micro-block* (``ublock_h`` x ``ublock_w`` positions x ``ublock_d`` output channels;
``accelerator_configs`` in ``ethosu/vela/architecture_features.py``: 1x1x4 on U55-32, 1x1x8 on U55-64, 1x2x8 on
U55-128, 2x2x8 on U55-256) per cycle, each accumulator taking ``ifm_depth`` = 8 input channels (the IFM ublock
depth): 32/64/128/256 MACs per cycle. One beat here is one such cycle::

    acc[p][o] += sum_i (pad[p] ? 0 : act[p][i] - ifm_zero_point) * weight[o][i]

for positions ``p`` (row-major: ``p = y * ublock_w + x``), output channels ``o`` and input channels ``i``. A padded
position contributes exactly 0 (the NPU feeds padding taps the IFM zero point; SPEC.md §4). ``ifm_zero_point`` is the
signed 16-bit IFM_ZERO_POINT register (quasi-static). With ``ifm_unsigned`` (quasi-static: a U8 IFM, Vela's uint8 conv /
depthwise / FC) the 8-bit activations are zero-extended instead of sign-extended, so ``act - zp`` of a uint8 activation
and zero point lies in -255..255 as an int8 one's does and the same multipliers take it. Accumulators are ``acc_width``
bits (32: Vela's ACC_FORMAT INT_32BIT, used for every int8 layer; 40: INT_40BIT, chosen by
``architecture_allocator._acc_type`` only for 16-bit IFMs) and wrap modulo ``2**acc_width`` (TFLite's int32 overflow is
undefined; valid models never reach it). Depthwise convolution is the same block fed diagonal weights (``weight[o][i] =
0`` for ``i != o``).

**16-bit IFMs** (``wide_ifm``: the act stream has ``wide`` and ``half`` flags): a wide beat's 8 bytes per position
are 4 int16 activations (little-endian), and they meet the brick's IFM channels ``4 * half .. 4 * half + 3``::

    acc[p][o] += sum_{i < 4} (pad[p] ? 0 : act16[p][i] - ifm_zero_point) * weight[o][4 * half + i]

so an IFM ublock (8 channels, one brick) takes two beats, as on the U55, whose MAC rate halves for 16-bit IFMs
(Vela's ``npu_performance``). The multipliers are the same ones: 4 of the 8 per dot product take the 16-bit
operands (their activation input is 17 bits wide anyway: ``act - ifm_zero_point`` of a 16-bit zero point), the
other 4 are given 0; what is added is the choice of operands (two muxes per lane) in front of them.

Streams: a beat is taken when ``act_stream`` and ``weight_stream`` are both valid (they are joined: each ``ready``
is the other's ``valid`` and the block's readiness) and, if it is a block's last beat, ``acc_stream`` holds no
unread result (or it is read in that cycle): the next block accumulates while the result waits. The beat with
``act_stream.payload.last`` set ends the block: the next cycle ``acc_stream`` presents ``positions * ublock_d``
accumulators (index ``p * ublock_d + o``) and the accumulators restart from zero. Throughput one beat per cycle;
:attr:`MacBlock.latency` = 1 cycle from the last beat's accepting edge to ``acc_stream.valid``.

Structure: ``array`` (:class:`MacArray`, the multipliers: combinational dot products of one beat) and ``acc``
(:class:`Accumulators`: the accumulators, the result register and the stream handshake).
"""
from dataclasses import dataclass

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MacBlockConfig", "MacBlock", "MacArray", "Accumulators", "U55_PRESETS"]


@dataclass(frozen=True)
class MacBlockConfig:
    """OFM micro-block ``ublock_h`` x ``ublock_w`` x ``ublock_d``, ``ifm_depth`` input channels per beat."""

    ublock_h: int = 2
    ublock_w: int = 2
    ublock_d: int = 8
    ifm_depth: int = 8
    acc_width: int = 32
    wide_ifm: bool = False    # the act stream carries ``wide`` / ``half`` (16-bit IFMs; see the module docstring)
    #: bits of a weight: 8, or 9 for Vela's full ``weight - zero point`` range (the NPU's, ``kernel_op.WEIGHT_BITS``)
    weight_width: int = 8

    def __post_init__(self):
        for name in ("ublock_h", "ublock_w"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 4:
                raise ValueError(f"{name} must be an integer in 1..4, not {value!r}")
        for name in ("ublock_d", "ifm_depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 16:
                raise ValueError(f"{name} must be an integer in 1..16, not {value!r}")
        if not isinstance(self.acc_width, int) or self.acc_width not in (32, 40):
            raise ValueError(f"acc_width must be 32 or 40, not {self.acc_width!r}")
        if not isinstance(self.wide_ifm, bool) or (self.wide_ifm and self.ifm_depth != 8):
            raise ValueError(f"wide_ifm must be a bool (True only with ifm_depth 8), not {self.wide_ifm!r}")
        if not isinstance(self.weight_width, int) or self.weight_width not in (8, 9):
            raise ValueError(f"weight_width must be 8 or 9, not {self.weight_width!r}")

    @property
    def positions(self) -> int:
        return self.ublock_h * self.ublock_w

    @property
    def act_layout(self) -> data.StructLayout:
        vec = data.ArrayLayout(signed(8), self.ifm_depth)
        fields = {"data": data.ArrayLayout(vec, self.positions), "pad": unsigned(self.positions), "last": 1}
        if self.wide_ifm:
            fields |= {"wide": 1, "half": 1}
        return data.StructLayout(fields)

    @property
    def accumulators(self) -> int:
        return self.positions * self.ublock_d

    @property
    def macs_per_cycle(self) -> int:
        return self.accumulators * self.ifm_depth


#: Vela's U55 configurations (``architecture_features.accelerator_configs``: ofm_ublock Block(w, h, d)).
U55_PRESETS = {
    "u55-32": MacBlockConfig(1, 1, 4),
    "u55-64": MacBlockConfig(1, 1, 8),
    "u55-128": MacBlockConfig(1, 2, 8),
    "u55-256": MacBlockConfig(2, 2, 8),
}


class MacBlock(wiring.Component):
    """One OFM micro-block of accumulators (see the module docstring).

    Members
    -------
    act_stream : ``In(stream.Signature({data: positions x ifm_depth x signed(8), pad: positions, last: 1}))``
        (and ``wide: 1, half: 1`` with ``wide_ifm``)
    weight_stream : ``In(stream.Signature(ublock_d x ifm_depth x signed(weight_width)))``
        ``weight[o][i]`` for output channel ``o``, input channel ``i``.
    acc_stream : ``Out(stream.Signature(positions * ublock_d x signed(acc_width)))``
    ifm_zero_point : ``In(signed(16))``; ifm_unsigned : ``In(1)``   (8-bit activations are uint8)
    """

    latency = 1

    def __init__(self, config: MacBlockConfig):
        if not isinstance(config, MacBlockConfig):
            self._MustUse__silence = True  # a block that failed to construct is not an unused elaboratable
            raise TypeError(f"config must be a MacBlockConfig, not {config!r}")
        self.config = config
        self.act_layout = config.act_layout
        self.weight_layout = _weight_layout(config)
        self.acc_layout = data.ArrayLayout(signed(config.acc_width), config.accumulators)
        super().__init__({
            "act_stream": In(stream.Signature(self.act_layout)),
            "weight_stream": In(stream.Signature(self.weight_layout)),
            "acc_stream": Out(stream.Signature(self.acc_layout)),
            "ifm_zero_point": In(signed(16)), "ifm_unsigned": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        act, weight = self.act_stream, self.weight_stream
        m.submodules.array = array = MacArray(self.config)
        m.submodules.acc = acc = Accumulators(self.config)
        wiring.connect(m, acc.acc_stream, wiring.flipped(self.acc_stream))
        m.d.comb += [
            array.act.eq(act.payload), array.weights.eq(weight.payload), array.ifm_zero_point.eq(self.ifm_zero_point),
            array.ifm_unsigned.eq(self.ifm_unsigned),
            acc.dots.eq(array.dots), acc.last.eq(act.payload.last),
            act.ready.eq(weight.valid & acc.room),
            weight.ready.eq(act.valid & acc.room),
            acc.fire.eq(act.valid & weight.valid & acc.room),
        ]
        return m


def _dot_shape(config: MacBlockConfig):
    return signed(17 + config.weight_width + config.ifm_depth.bit_length())


def _weight_layout(config: MacBlockConfig):
    return data.ArrayLayout(data.ArrayLayout(signed(config.weight_width), config.ifm_depth), config.ublock_d)


class MacArray(wiring.Component):
    """The multipliers: ``positions x ublock_d`` dot products of one beat (combinational).

    Members
    -------
    act : ``In(act_layout)``; weights : ``In(weight_layout)``; ifm_zero_point : ``In(signed(16))``;
    ifm_unsigned : ``In(1)``
    dots : ``Out(ArrayLayout(signed(17 + weight_width + bits(ifm_depth)), positions * ublock_d))``
        index ``p * ublock_d + o``
    """

    def __init__(self, config: MacBlockConfig):
        self.config = config
        super().__init__({
            "act": In(config.act_layout),
            "weights": In(_weight_layout(config)),
            "ifm_zero_point": In(signed(16)), "ifm_unsigned": In(1),
            "dots": Out(data.ArrayLayout(_dot_shape(config), config.accumulators)),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        # (act - zp), or 0 on a padded position: 17-bit signed (an int16 activation minus a 16-bit zero point fits).
        centred = [[Signal(signed(17), name=f"x_{p}_{i}") for i in range(cfg.ifm_depth)] for p in range(cfg.positions)]
        for p in range(cfg.positions):
            for i in range(cfg.ifm_depth):
                x, idle = self.act.data[p][i], self.act.pad[p]
                x = Mux(self.ifm_unsigned, x.as_unsigned(), x)
                if cfg.wide_ifm and i < 4:    # lanes 0-3 take the 4 int16 activations of a wide beat
                    x = Mux(self.act.wide, Cat(self.act.data[p][2 * i], self.act.data[p][2 * i + 1]).as_signed(), x)
                elif cfg.wide_ifm:            # lanes 4-7 are idle on a wide beat
                    idle = idle | self.act.wide
                m.d.comb += centred[p][i].eq(Mux(idle, 0, x - self.ifm_zero_point))
        weights = self.weights
        if cfg.wide_ifm:   # a wide beat meets brick columns 4 * half .. 4 * half + 3
            weights = [[Mux(self.act.wide & self.act.half, self.weights[o][i + 4], self.weights[o][i]) if i < 4
                        else self.weights[o][i] for i in range(cfg.ifm_depth)] for o in range(cfg.ublock_d)]
        for p in range(cfg.positions):
            for o in range(cfg.ublock_d):
                k = p * cfg.ublock_d + o
                dot = Signal(_dot_shape(cfg), name=f"dot_{k}")
                m.d.comb += [dot.eq(sum(centred[p][i] * weights[o][i] for i in range(cfg.ifm_depth))),
                             self.dots[k].eq(dot)]
        return m


class Accumulators(wiring.Component):
    """The accumulators ``acc_K`` and the result register (see the module docstring for the protocol).

    Members
    -------
    dots : ``In(...)`` (:class:`MacArray` ``dots``); fire, last : ``In(1)``   add ``dots`` (and end the block)
    room : ``Out(1)``   a beat may fire (any but a last beat; a last one: the result register is empty or being
    read)
    acc_stream : ``Out(stream.Signature(positions * ublock_d x signed(acc_width)))``
    """

    def __init__(self, config: MacBlockConfig):
        self.config = config
        self.acc_layout = data.ArrayLayout(signed(config.acc_width), config.accumulators)
        super().__init__({
            "dots": In(data.ArrayLayout(_dot_shape(config), config.accumulators)),
            "fire": In(1), "last": In(1), "room": Out(1),
            "acc_stream": Out(stream.Signature(self.acc_layout)),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        out = self.acc_stream
        out_valid = Signal()
        result = Signal(self.acc_layout)
        m.d.comb += [out.valid.eq(out_valid), out.payload.eq(result), self.room.eq(~out_valid | out.ready | ~self.last)]
        with m.If(out.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(self.fire & self.last):
            m.d.sync += out_valid.eq(1)
        for k in range(cfg.accumulators):
            acc = Signal(signed(cfg.acc_width), name=f"acc_{k}")
            with m.If(self.fire):
                with m.If(self.last):
                    m.d.sync += [result[k].eq(acc + self.dots[k]), acc.eq(0)]
                with m.Else():
                    m.d.sync += acc.eq(acc + self.dots[k])
        return m
