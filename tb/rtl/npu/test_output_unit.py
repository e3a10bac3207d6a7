# amaranth: UnusedElaboratable=no
"""OutputUnit vs the golden output stage (models/npu/requant.py): Verilator for volume, pysim for the handshake."""
import numpy as np
import pytest

from models.npu import cmdstream as cs
from models.npu import requant
from models.npu.reference import run_reference
from models.npu.tflite_builder import Conv2D, DepthwiseConv2D, FullyConnected, single_layer
from models.npu.vela import compile_model
from rtl.common.stream import simulate, stream_get, stream_put
from rtl.npu.output_unit import OutputUnit, OutputUnitConfig
from sim.build import build
from sim.harness import NativeSim

PRESET = "u55-128"


def _words(values: list[int], width: int) -> np.ndarray:
    """Unsigned ints of ``width`` bits -> (n, words) uint32."""
    n = (width + 31) // 32
    out = np.zeros((len(values), n), dtype=np.uint32)
    for i, v in enumerate(values):
        v &= (1 << width) - 1
        for w in range(n):
            out[i, w] = (v >> (32 * w)) & 0xFFFFFFFF
    return out


def _ints(words: np.ndarray) -> list[int]:
    return [sum(int(w) << (32 * i) for i, w in enumerate(row)) for row in words]


def _pack(fields, widths) -> int:
    value, pos = 0, 0
    for f, w in zip(fields, widths, strict=True):
        value |= (int(f) & ((1 << w) - 1)) << pos
        pos += w
    return value


def _signed(v: int, w: int) -> int:
    return v - (1 << w) if v >> (w - 1) & 1 else v


def _draw_acc(rng, width: int) -> int:
    mode = rng.integers(0, 6)
    if mode == 0:
        return int(rng.integers(-(1 << (width - 1)), 1 << (width - 1)))
    if mode == 1:
        return int(rng.choice([-(1 << (width - 1)), (1 << (width - 1)) - 1, 0, 1, -1]))
    if mode == 2:  # odd multiples of a power of two: rounding ties for the matching shifts
        return int(rng.integers(-200, 200) * 2 + 1) << int(rng.integers(0, 10))
    return int(rng.integers(-(1 << 20), 1 << 20))


def _draw_record(rng) -> tuple[int, int, int]:
    mode = rng.integers(0, 6)
    if mode == 0:  # anything the record can hold
        return (int(rng.integers(-(1 << 39), 1 << 39)), int(rng.integers(0, 1 << 32)), int(rng.integers(0, 64)))
    if mode == 1:  # extremes
        return (int(rng.choice([-(1 << 39), (1 << 39) - 1, 0, -1])), int(rng.choice([0, 1, (1 << 32) - 1, 1 << 31])),
                int(rng.choice([0, 1, 31, 32, 63])))
    if mode == 2:  # exact powers of two: ties in both rounding steps
        return (int(rng.integers(-4, 5)), int(rng.choice([1 << 31, 1 << 30, 1])), int(rng.integers(0, 43)))
    if mode == 3:  # TFLite left-shift range (real scale >= 0.5)
        return (int(rng.integers(-(1 << 20), 1 << 20)), int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(20, 32)))
    # what Vela emits for int8 layers: Q31 multiplier, shift 32..47, int32 bias
    return (int(rng.integers(-(1 << 31), 1 << 31)), int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(32, 48)))


def _draw_activation(rng) -> tuple[int, int, int]:
    mode = rng.integers(0, 4)
    if mode == 0:
        return int(rng.integers(-128, 128)), -128, 127
    if mode == 1:  # 16-bit register extremes: zero point saturation, bounds outside int8, inverted bounds
        return (int(rng.choice([-32768, 32767, -129, 128])), int(rng.integers(-32768, 32768)),
                int(rng.integers(-32768, 32768)))
    lo = int(rng.integers(-128, 128))
    return int(rng.integers(-128, 128)), lo, int(rng.integers(lo, 128))


# ---------------------------------------------------------------------------------------------------------------
# Verilator: >= 10k random cases with random valid / backpressure


def test_config_validation():
    with pytest.raises(ValueError, match="lanes must be one of"):
        OutputUnitConfig(lanes=3)
    with pytest.raises(ValueError, match="channels must be a multiple of lanes"):
        OutputUnitConfig(lanes=8, channels=12)
    with pytest.raises(ValueError, match="acc_width must be 32 or 40"):
        OutputUnitConfig(acc_width=48)
    with pytest.raises(TypeError, match="config must be an OutputUnitConfig"):
        OutputUnit({"lanes": 8})


@pytest.mark.parametrize("preset", [PRESET])
def test_native_random_vs_golden(preset):
    result = build("npu_output_unit", preset)
    cfg = result.config
    lanes, ch_bits, aw = cfg.lanes, cfg.channel_bits, cfg.acc_width
    rng = np.random.default_rng(2026)
    cols = {k: [] for k in ("i_valid", "i_payload", "o_ready", "we", "wch", "wrec", "zp", "amin", "amax")}
    phases = []  # per phase: (first cycle, last cycle, records, zp, amin, amax)

    def cycle(i_valid=0, i_payload=0, o_ready=1, we=0, wch=0, wrec=0, act=(0, -128, 127)):
        for k, v in zip(cols, (i_valid, i_payload, o_ready, we, wch, wrec, *act), strict=True):
            cols[k].append(v)

    for phase in range(16):
        act = _draw_activation(rng)
        records = [_draw_record(rng) for _ in range(cfg.channels)]
        for c, rec in enumerate(records):
            cycle(we=1, wch=c, wrec=requant.record_word(*rec), act=act)
        start = len(cols["i_valid"])
        dense = phase == 0  # full rate, never stalled: checks the latency
        for _ in range(128):
            base = int(rng.integers(0, cfg.channels // lanes)) * lanes
            accs = [_draw_acc(rng, aw) for _ in range(lanes)]
            cycle(i_valid=int(dense or rng.random() < 0.8), i_payload=_pack([*accs, base], [aw] * lanes + [ch_bits]),
                  o_ready=int(dense or rng.random() < 0.75), act=act)
        for _ in range(OutputUnit.latency + 2):  # drain before the next phase rewrites the parameters
            cycle(act=act)
        phases.append((start, len(cols["i_valid"]), records, act))

    n = len(cols["i_valid"])
    stimulus = {
        "i_stream__valid": np.array(cols["i_valid"], dtype=np.uint32),
        "i_stream__payload": _words(cols["i_payload"], aw * lanes + ch_bits),
        "o_stream__ready": np.array(cols["o_ready"], dtype=np.uint32),
        "param_we": np.array(cols["we"], dtype=np.uint32),
        "param_channel": np.array(cols["wch"], dtype=np.uint32),
        "param_record": _words(cols["wrec"], 80),
        "ofm_zero_point": np.array(cols["zp"], dtype=np.int64) & 0xFFFF,
        "act_min": np.array(cols["amin"], dtype=np.int64) & 0xFFFF,
        "act_max": np.array(cols["amax"], dtype=np.int64) & 0xFFFF,
    }
    with NativeSim(result) as sim:
        sim.reset()
        trace = sim.run_stimulus(stimulus, ["i_stream__ready", "o_stream__valid", "o_stream__payload"])
    i_fire = np.array(cols["i_valid"]) & trace["i_stream__ready"][:, 0].astype(int)
    o_fire = np.array(cols["o_ready"]) & trace["o_stream__valid"][:, 0].astype(int)
    outs = _ints(trace["o_stream__payload"])
    assert not o_fire[:phases[0][0]].any() and len(outs) == n

    cases = 0
    for index, (start, end, records, (zp, amin, amax)) in enumerate(phases):
        fired_in = [cycle_ for cycle_ in range(start, end) if i_fire[cycle_]]
        fired_out = [cycle_ for cycle_ in range(start, end) if o_fire[cycle_]]
        assert len(fired_in) == len(fired_out), f"phase {index}: {len(fired_in)} beats in, {len(fired_out)} out"
        if index == 0:
            assert fired_out == [c + OutputUnit.latency for c in fired_in]
        for ci, co in zip(fired_in, fired_out, strict=True):
            payload = cols["i_payload"][ci]
            accs = [_signed((payload >> (aw * lane)) & ((1 << aw) - 1), aw) for lane in range(lanes)]
            base = payload >> (aw * lanes)
            want = [requant.requantize_scalar(a, *records[base + lane], zp, amin, amax) for lane, a in enumerate(accs)]
            got = [_signed((outs[co] >> (8 * lane)) & 0xFF, 8) for lane in range(lanes)]
            assert got == want, f"cycle {co}: acc {accs}, channels {base}.., zp/min/max {zp}/{amin}/{amax}"
            assert outs[co] >> (8 * lanes) == base
            cases += lanes
    assert cases >= 10000


# ---------------------------------------------------------------------------------------------------------------
# Verilator: the edges of the narrowed (<= 64-bit) datapath, one beat per phase, every shift 0..63

_V_MIN, _V_MAX = -(1 << 40), (1 << 40) - 2     # acc + bias with a 40-bit accumulator and the 40-bit bias


def _acc_and_bias(v: int) -> tuple[int, int]:
    """A 40-bit accumulator and a 40-bit bias that sum to ``v``."""
    bias = max(min(v // 2, (1 << 39) - 1), -(1 << 39))
    return v - bias, bias


def _edge_groups():
    """(v per lane, scale, shift, zero point): 8 related values per beat, the zero point bringing ~v * scale /
    2**shift into the int8 window (it is only stimulus; the expected outputs come from the golden model)."""
    groups = []

    def add(vs, scale, shift):
        vs = [min(max(v, _V_MIN), _V_MAX) for v in vs]
        zp = max(min(-((vs[0] * scale) >> shift), 32767), -32768)
        groups.append((vs, scale, shift, zp))

    spread = range(-4, 4)
    for shift in range(64):
        for scale in ((1 << 32) - 1, 1 << 31, (1 << 32) - (1 << 30) - 1, 1):
            add([_V_MIN + d + 4 for d in spread], scale, shift)       # the most negative products
            add([_V_MAX - d - 4 for d in spread], scale, shift)       # the most positive ones
        # |p| around 2**61: where single rounding switches from the 62-bit path to plain saturation
        for scale in (1 << 31, (1 << 32) - 1):
            for sign in (1, -1):
                add([sign * ((1 << 61) // scale) + d for d in spread], scale, shift)
        # p = v * (2**32 - 1) = (v - 1) * 2**32 + (2**32 - v mod 2**32): low words next to the first rounding's carries
        for low in (1, (1 << 30) - 1, 1 << 30, (1 << 31) - 1, 1 << 31, 3 << 30, (3 << 30) - 1, (1 << 32) - 1):
            for high in (-200, -1, 0, 3, 150):
                add([high * (1 << 32) + (1 << 32) - low + d for d in spread], (1 << 32) - 1, shift)
    for r in range(1, 33):  # double rounding: p = (2m - 1) * 2**30 is a tie of the first rounding, t = m
        for k in (-3, -1, 0, 2):
            m = (2 * k + 1) << (r - 1)                              # and t = m a tie of the second
            add([2 * (m + d) - 1 for d in spread], 1 << 30, 31 + r)
    for shift in range(1, 32):  # single rounding ties: p = (2k + 1) * 2**(shift - 1)
        add([(2 * d + 1) << (shift - 1) for d in spread], 1, shift)
    return groups


def test_native_datapath_edges_vs_golden():
    cfg = OutputUnitConfig(lanes=8, channels=8, acc_width=40)
    result = build("npu_output_unit", cfg)
    lanes, aw, ch_bits = cfg.lanes, cfg.acc_width, cfg.channel_bits
    groups = _edge_groups()
    cols = {k: [] for k in ("we", "wch", "wrec", "i_valid", "i_payload", "zp")}
    beats, want = [], []
    for vs, scale, shift, zp in groups:
        pairs = [_acc_and_bias(v) for v in vs]
        for c, (_, bias) in enumerate(pairs):
            for k, v in zip(cols, (1, c, requant.record_word(bias, scale, shift), 0, 0, zp), strict=True):
                cols[k].append(v)
        beats.append(len(cols["we"]))
        for k, v in zip(cols, (0, 0, 0, 1, _pack([a for a, _ in pairs] + [0], [aw] * lanes + [ch_bits]), zp),
                        strict=True):
            cols[k].append(v)
        for _ in range(OutputUnit.latency + 1):
            for k, v in zip(cols, (0, 0, 0, 0, 0, zp), strict=True):
                cols[k].append(v)
        want.append([requant.requantize_scalar(a, b, scale, shift, zp, -128, 127) for a, b in pairs])
    n = len(cols["we"])
    stimulus = {
        "param_we": np.array(cols["we"], dtype=np.uint32), "param_channel": np.array(cols["wch"], dtype=np.uint32),
        "param_record": _words(cols["wrec"], 80), "i_stream__valid": np.array(cols["i_valid"], dtype=np.uint32),
        "i_stream__payload": _words(cols["i_payload"], aw * lanes + ch_bits),
        "o_stream__ready": np.ones(n, dtype=np.uint32),
        "ofm_zero_point": np.array(cols["zp"], dtype=np.int64) & 0xFFFF,
        "act_min": np.full(n, 0xFF80, dtype=np.uint32), "act_max": np.full(n, 127, dtype=np.uint32),
    }
    with NativeSim(result) as sim:
        sim.reset()
        trace = sim.run_stimulus(stimulus, ["o_stream__valid", "o_stream__payload"])
    outs = _ints(trace["o_stream__payload"])
    assert np.flatnonzero(trace["o_stream__valid"][:, 0]).tolist() == [b + OutputUnit.latency for b in beats]
    in_window = 0
    for beat, expected, (vs, scale, shift, zp) in zip(beats, want, groups, strict=True):
        got = [_signed((outs[beat + OutputUnit.latency] >> (8 * lane)) & 0xFF, 8) for lane in range(lanes)]
        assert got == expected, f"v {vs}, scale {scale:#x}, shift {shift}, zero point {zp}"
        in_window += sum(-128 < e < 127 for e in expected)
    assert len(groups) > 3000 and 5 * in_window > len(groups) * lanes   # a fifth or more inside the clamp bounds


def _wide_expected(v: int, scale: int, shift: int, zp: int, size: int, act_min: int, act_max: int) -> int:
    """The 16- / 32-bit OFM value (module docstring): the rounding shift of v * scale, plus the zero point, then
    clamped to ACTIVATION_MIN / MAX (int16) or saturated to int32."""
    p = v * scale
    if shift > 31:
        t = (p + (1 << 30)) >> 31
        y = (t + (1 << (shift - 32)) - (1 if t < 0 else 0)) >> (shift - 31)
    else:
        y = (p + (1 << (shift - 1))) >> shift if shift else p
    z = y + zp
    return min(max(z, act_min), act_max) if size == 1 else min(max(z, -(1 << 31)), (1 << 31) - 1)


def test_native_wide_ofm_sizes():
    """``ofm_size`` 1 (int16, clamped to the 16-bit ACTIVATION_MIN / MAX) and 2 (int32, saturated, no clamp) on
    ``wide``: MEAN's unit scale (2**30, shift 30) with sums beyond the int8 datapath's old 20-bit bound and beyond
    int32, and a double-rounding scale."""
    cfg = OutputUnitConfig(lanes=8, channels=8, acc_width=40)
    result = build("npu_output_unit", cfg)
    lanes, aw, ch_bits = cfg.lanes, cfg.acc_width, cfg.channel_bits
    vs = [1_044_480, -1_044_480, (1 << 31) - 7, -(1 << 31) + 3, (1 << 33) + 5, -(1 << 35), 123_456_789, -1]
    cases = [(size, scale, shift, zp, amin, amax)
             for size, amin, amax in ((1, -32768, 32767), (1, -1000, 20000), (2, -128, 127))
             for scale, shift, zp in (((1 << 30), 30, 0), ((1 << 30), 30, -9), (3 << 28, 33, 17))]
    cols = {k: [] for k in ("we", "wch", "wrec", "i_valid", "i_payload", "zp", "size", "amin", "amax")}
    beats, want = [], []
    for size, scale, shift, zp, amin, amax in cases:
        pairs = [_acc_and_bias(v) for v in vs]
        fixed = (zp, size, amin & 0xFFFF, amax & 0xFFFF)
        for c, (_, bias) in enumerate(pairs):
            for k, v in zip(cols, (1, c, requant.record_word(bias, scale, shift), 0, 0, *fixed), strict=True):
                cols[k].append(v)
        beats.append(len(cols["we"]))
        for k, v in zip(cols, (0, 0, 0, 1, _pack([a for a, _ in pairs] + [0], [aw] * lanes + [ch_bits]), *fixed),
                        strict=True):
            cols[k].append(v)
        for _ in range(OutputUnit.latency + 1):
            for k, v in zip(cols, (0, 0, 0, 0, 0, *fixed), strict=True):
                cols[k].append(v)
        want.append([_wide_expected(v, scale, shift, zp, size, amin, amax) for v in vs])
    n = len(cols["we"])
    stimulus = {
        "param_we": np.array(cols["we"], dtype=np.uint32), "param_channel": np.array(cols["wch"], dtype=np.uint32),
        "param_record": _words(cols["wrec"], 80), "i_stream__valid": np.array(cols["i_valid"], dtype=np.uint32),
        "i_stream__payload": _words(cols["i_payload"], aw * lanes + ch_bits),
        "o_stream__ready": np.ones(n, dtype=np.uint32),
        "ofm_zero_point": np.array(cols["zp"], dtype=np.int64) & 0xFFFF,
        "ofm_size": np.array(cols["size"], dtype=np.uint32),
        "act_min": np.array(cols["amin"], dtype=np.uint32), "act_max": np.array(cols["amax"], dtype=np.uint32),
    }
    with NativeSim(result) as sim:
        sim.reset()
        trace = sim.run_stimulus(stimulus, ["o_stream__valid", "wide"])
    outs = _ints(trace["wide"])
    assert np.flatnonzero(trace["o_stream__valid"][:, 0]).tolist() == [b + OutputUnit.latency for b in beats]
    for beat, expected, case in zip(beats, want, cases, strict=True):
        got = [_signed((outs[beat + OutputUnit.latency] >> (32 * lane)) & 0xFFFFFFFF, 32) for lane in range(lanes)]
        assert got == expected, f"case {case}"
    assert any(abs(e) > (1 << 19) and abs(e) < (1 << 31) - 1 for row in want for e in row)   # beyond 20 bits


# ---------------------------------------------------------------------------------------------------------------
# Verilator, end to end: Vela's records on the parameter port, numpy accumulators in, LiteRT's output out

LAYERS = {
    "conv": lambda: single_layer(Conv2D(16, (3, 3), (1, 1), "SAME", "RELU"), (8, 8, 3), seed=1, input_zero_point=-3),
    "depthwise": lambda: single_layer(DepthwiseConv2D((3, 3), (1, 1), "SAME"), (10, 10, 12), seed=6,
                                      input_zero_point=-1),
    "fully_connected": lambda: single_layer(FullyConnected(10), (64,), seed=8, input_zero_point=5),
}


def _vela_records(model, accelerator, cache_dir):
    """(the CONV/DEPTHWISE kick, its scale/bias stream) after replaying the DMAs in front of it."""
    art = compile_model(model, accelerator, cache_dir=cache_dir)
    mem = {art.weight_region: bytearray(art.weight_data), art.scratch_region: bytearray(art.scratch_size)}
    for k in cs.kicks(art.commands()):
        if k.name == "NPU_OP_DMA_START":
            src, dst, n = k.reg("DMA0_SRC"), k.reg("DMA0_DST"), k.reg("DMA0_LEN")
            mem[k.reg("DMA0_DST_REGION") & 7][dst:dst + n] = mem[k.reg("DMA0_SRC_REGION") & 7][src:src + n]
        elif k.name in ("NPU_OP_CONV", "NPU_OP_DEPTHWISE"):
            base, length = k.reg("SCALE_BASE"), k.reg("SCALE_LENGTH")
            return k, bytes(mem[k.reg("SCALE_REGION")][base:base + length])
    raise AssertionError("no kernel kick")


def test_native_vela_records_vs_litert(tmp_path):
    result = build("npu_output_unit", PRESET)
    cfg = result.config
    lanes, aw, ch_bits = cfg.lanes, cfg.acc_width, cfg.channel_bits
    rng = np.random.default_rng(4)
    checked = 0
    with NativeSim(result) as sim:
        sim.reset()
        for name, make in LAYERS.items():
            model = make()
            layer = model.layers[0]
            kick, stream = _vela_records(model, "ethos-u55-128", tmp_path)
            channels = layer.output_shape[-1]
            groups = -(-channels // lanes)
            x = rng.integers(-128, 128, size=model.input_shape, dtype=np.int8)
            acc = requant.layer_accumulators(layer, x).reshape(-1, channels)
            acc = np.pad(acc, ((0, 0), (0, groups * lanes - channels)))  # lanes past the OFM depth: ignored
            beats = [_pack([*acc[pos, g * lanes:(g + 1) * lanes], g * lanes], [aw] * lanes + [ch_bits])
                     for pos in range(len(acc)) for g in range(groups)]
            n_rec = groups * lanes
            n = n_rec + len(beats) + OutputUnit.latency + 1
            zeros = np.zeros(n, dtype=np.uint32)
            records = [int.from_bytes(stream[10 * c:10 * c + 10].ljust(10, b"\0"), "little") for c in range(n_rec)]
            stimulus = {
                "param_we": np.r_[np.ones(n_rec), np.zeros(n - n_rec)].astype(np.uint32),
                "param_channel": np.r_[np.arange(n_rec), np.zeros(n - n_rec)].astype(np.uint32),
                "param_record": _words(records + [0] * (n - n_rec), 80),
                "i_stream__valid": np.r_[np.zeros(n_rec), np.ones(len(beats)), np.zeros(n - n_rec - len(beats))
                                         ].astype(np.uint32),
                "i_stream__payload": _words([0] * n_rec + beats + [0] * (n - n_rec - len(beats)), aw * lanes + ch_bits),
                "o_stream__ready": zeros + 1,
                "ofm_zero_point": zeros + (cs.signed16(kick.reg("OFM_ZERO_POINT")) & 0xFFFF),
                "act_min": zeros + kick.reg("ACTIVATION_MIN"),
                "act_max": zeros + kick.reg("ACTIVATION_MAX"),
            }
            trace = sim.run_stimulus(stimulus, ["o_stream__valid", "o_stream__payload"])
            outs = [v for v, ok in zip(_ints(trace["o_stream__payload"]), trace["o_stream__valid"][:, 0], strict=True)
                    if ok]
            assert len(outs) == len(beats)
            got = np.array([[_signed((v >> (8 * lane)) & 0xFF, 8) for lane in range(lanes)] for v in outs])
            got = got.reshape(len(acc), groups * lanes)[:, :channels]
            want = run_reference(model, x).reshape(len(acc), channels)
            assert np.array_equal(got, want), f"{name}: {np.count_nonzero(got != want)} elements differ"
            checked += want.size
    assert checked > 2000


# ---------------------------------------------------------------------------------------------------------------
# pysim: a small configuration through the async stream helpers, with backpressure


def test_pysim_small():
    cfg = OutputUnitConfig(lanes=2, channels=8, acc_width=40)
    dut = OutputUnit(cfg)
    rng = np.random.default_rng(7)
    records = [_draw_record(rng) for _ in range(cfg.channels)]
    records[0] = (0, 1 << 31, 33)   # v / 4, ties away from zero
    records[1] = (5, 1, 1)          # (v + 5) / 2, ties up
    zp, amin, amax = 3, -100, 90
    beats = [([6, -6], 0), ([-6, 0], 0), ([(1 << 39) - 1, -(1 << 39)], 2)]
    beats += [([_draw_acc(rng, 40) for _ in range(2)], int(rng.integers(0, 4)) * 2) for _ in range(40)]
    expected = [[requant.requantize_scalar(a, *records[ch + lane], zp, amin, amax) for lane, a in enumerate(accs)]
                for accs, ch in beats]
    # 1.5 -> 2, -0.5 -> 0 (half up); -1.5 -> -2 (half away from zero), 2.5 -> 3
    assert expected[0] == [2 + zp, 0 + zp] and expected[1] == [-2 + zp, 3 + zp]

    async def producer(ctx):
        ctx.set(dut.ofm_zero_point, zp)
        ctx.set(dut.act_min, amin)
        ctx.set(dut.act_max, amax)
        for c, rec in enumerate(records):
            ctx.set(dut.param_we, 1)
            ctx.set(dut.param_channel, c)
            ctx.set(dut.param_record, requant.record_word(*rec))
            await ctx.tick()
        ctx.set(dut.param_we, 0)
        for accs, ch in beats:
            await stream_put(ctx, dut.i_stream, {"acc": accs, "channel": ch})
            if rng.random() < 0.3:
                await ctx.tick()

    async def consumer(ctx):
        await ctx.tick().repeat(cfg.channels)
        for want, (_, ch) in zip(expected, beats, strict=True):
            for _ in range(int(rng.integers(0, 3))):
                await ctx.tick()
            got = await stream_get(ctx, dut.o_stream)
            assert [int(x) for x in got.data] == want and int(got.channel) == ch

    simulate(dut, producer, consumer, max_cycles=2000)
