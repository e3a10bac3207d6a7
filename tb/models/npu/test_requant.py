"""Output-stage golden model: TFLite integer semantics, Vela record encoding, and bit-exact LiteRT agreement."""

from __future__ import annotations

import numpy as np
import pytest
from ethosu.vela import scaling
from ethosu.vela.weight_compressor import encode_bias

from models.npu import cmdstream as cs
from models.npu import requant
from models.npu.reference import run_reference
from models.npu.tflite_builder import Conv2D, DepthwiseConv2D, FullyConnected, single_layer
from models.npu.vela import compile_model

MODELS = {
    "conv": lambda: single_layer(Conv2D(16, (3, 3), (1, 1), "SAME", "RELU"), (8, 8, 3), seed=1, input_zero_point=-3),
    "conv_s2_valid": lambda: single_layer(Conv2D(7, (5, 5), (2, 2), "VALID", "RELU6"), (11, 13, 5), seed=3,
                                          input_zero_point=9),
    "fully_connected": lambda: single_layer(FullyConnected(10), (64,), seed=8, input_zero_point=5),
    "depthwise": lambda: single_layer(DepthwiseConv2D((3, 3), (1, 1), "SAME"), (10, 10, 12), seed=6,
                                      input_zero_point=-1),
    "fully_connected_relu": lambda: single_layer(FullyConnected(24, "RELU"), (40,), seed=21, input_zero_point=-11),
}


@pytest.fixture(scope="module")
def vela_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("vela_cache")


# ---------------------------------------------------------------------------------------------------------------
# Records


def test_record_matches_vela_encode_bias():
    rng = np.random.default_rng(0)
    cases = [(-(1 << 39), 0, 0), ((1 << 39) - 1, (1 << 32) - 1, 63), (-1, 1 << 31, 31), (0, 0, 16)]
    cases += [(int(rng.integers(-(1 << 39), 1 << 39)), int(rng.integers(0, 1 << 32)), int(rng.integers(0, 64)))
              for _ in range(200)]
    for bias, scale, shift in cases:
        rec = requant.encode_record(bias, scale, shift)
        assert rec == bytes(encode_bias(np.int64(bias), scale, shift))
        assert requant.decode_record(rec) == requant.ChannelParams(bias, scale, shift)
        assert requant.record_word(bias, scale, shift) == int.from_bytes(rec, "little")
    b, s, sh = requant.decode_records(b"".join(requant.encode_record(*c) for c in cases) + bytes(6), len(cases))
    assert b.tolist() == [c[0] for c in cases] and s.tolist() == [c[1] for c in cases]
    assert sh.tolist() == [c[2] for c in cases]


def test_record_rejects_out_of_range_fields():
    with pytest.raises(ValueError, match="signed 40-bit"):
        requant.encode_record(1 << 39, 0, 0)
    with pytest.raises(ValueError, match="unsigned 32-bit"):
        requant.encode_record(0, -1, 0)
    with pytest.raises(ValueError, match="shift must be in 0..63"):
        requant.encode_record(0, 0, 64)
    with pytest.raises(ValueError, match="a record is 10 bytes"):
        requant.decode_record(bytes(9))


def test_quantise_scale_matches_vela():
    rng = np.random.default_rng(1)
    for real in [*rng.uniform(1e-6, 4.0, 500), 0.5, 1.0, 2.0**-33, 1e-30, 3e9]:
        assert requant.quantise_scale(float(real)) == scaling.quantise_scale(float(real))


# ---------------------------------------------------------------------------------------------------------------
# Arithmetic


def test_npu_form_equals_tflite_multiply_by_quantized_multiplier():
    """The shift > 31 / shift <= 31 formulas equal TFLite's int32 code wherever TFLite does not overflow."""
    rng = np.random.default_rng(2)
    n = 0
    for _ in range(20000):
        shift = int(rng.integers(0, 64))
        scale = int(rng.integers(1 << 30, 1 << 31))  # TFLite multipliers are Q31 in [0.5, 1)
        e = 31 - shift
        bits = int(rng.integers(1, 32))
        acc = int(rng.integers(-(1 << bits), 1 << bits))
        if e > 0 and not -(1 << 31) <= acc * (1 << e) < (1 << 31):
            continue  # TFLite's left shift would overflow int32
        want = requant.multiply_by_quantized_multiplier(acc, scale, e)
        got = requant.requantize_scalar(acc, 0, scale, shift, 0, -(1 << 40), 1 << 40)
        assert min(max(want, -128), 127) == got, (acc, scale, shift)
        n += 1
    assert n > 10000


def test_rounding_ties():
    # shift 33: t = (p + 2**30) >> 31 rounds half up; then / 4 rounds half away from zero.
    s = 1 << 31  # exactly 1.0 in the first step: t = v
    assert requant.requantize_scalar(6, 0, s, 33, 0, -128, 127) == 2      # 1.5 -> 2
    assert requant.requantize_scalar(-6, 0, s, 33, 0, -128, 127) == -2    # -1.5 -> -2 (away from zero)
    assert requant.requantize_scalar(-5, 0, s, 33, 0, -128, 127) == -1    # -1.25 -> -1
    # first rounding: p = -1.5 * 2**31 -> -1 (half up, gemmlowp's nudge), then shift 32 exact halves: -1/2 -> -1
    assert requant.requantize_scalar(-3, 0, 1 << 30, 32, 0, -128, 127) == -1
    # shift <= 31: single rounding, half up (-2.5 -> -2)
    assert requant.requantize_scalar(-5, 0, 1, 1, 0, -128, 127) == -2
    assert requant.requantize_scalar(5, 0, 1, 1, 0, -128, 127) == 3
    assert requant.requantize_scalar(7, 0, 3, 0, 0, -128, 127) == 21


def test_clamp_zero_point_and_saturation():
    big = (1 << 39) - 1
    assert requant.requantize_scalar(big, big, (1 << 32) - 1, 0, 0, -128, 127) == 127
    assert requant.requantize_scalar(-big, -big, (1 << 32) - 1, 0, 0, -128, 127) == -128
    assert requant.requantize_scalar(0, 0, 0, 40, -30000, -128, 127) == -128
    assert requant.requantize_scalar(0, 0, 0, 40, 5, -3, 4) == 4
    assert requant.requantize_scalar(0, 0, 0, 40, -9, -3, 4) == -3
    assert requant.requantize_scalar(0, 0, 0, 40, 0, 10, 5) == 5       # max first, then min (TFLite order)
    assert requant.requantize_scalar(0, 0, 0, 40, 0, 32767, -32768) == -128  # bounds clipped to int8 first
    out = requant.requantize([0, 1000, -1000], 0, 1 << 31, 31, 0)
    assert out.dtype == np.int8 and out.tolist() == [0, 127, -128]


# ---------------------------------------------------------------------------------------------------------------
# Against LiteRT, with the parameters taken from Vela's records


def _kick_records(art):
    """(the compute kick, its scale/bias stream bytes after replaying earlier DMAs, the identity POOLs after it)."""
    mem = {art.weight_region: bytearray(art.weight_data), art.scratch_region: bytearray(art.scratch_size)}
    conv, stream, pools = None, b"", []
    for k in cs.kicks(art.commands()):
        if k.name == "NPU_OP_DMA_START":
            src_r, dst_r = k.reg("DMA0_SRC_REGION") & 7, k.reg("DMA0_DST_REGION") & 7
            src, dst, n = k.reg("DMA0_SRC"), k.reg("DMA0_DST"), k.reg("DMA0_LEN")
            mem[dst_r][dst:dst + n] = mem[src_r][src:src + n]
        elif k.name in ("NPU_OP_CONV", "NPU_OP_DEPTHWISE"):
            assert conv is None, "single-layer models compile to one CONV / DEPTHWISE"
            base, length = k.reg("SCALE_BASE"), k.reg("SCALE_LENGTH")
            conv, stream = k, bytes(mem[k.reg("SCALE_REGION")][base:base + length])
        elif k.name == "NPU_OP_POOL":  # an activation Vela did not fuse (SPEC.md §3): global scale, in place
            assert conv is not None and k.reg("OFM_PRECISION") & 0x100
            pools.append(k)
    assert conv is not None, "no NPU_OP_CONV / NPU_OP_DEPTHWISE in the stream"
    return conv, stream, pools


def _apply_identity_pool(k, x: np.ndarray) -> np.ndarray:
    """The in-place 1x1 identity POOL through the same output stage with the global OFM_SCALE."""
    ifm_zp, ofm_zp = cs.signed16(k.reg("IFM_ZERO_POINT")), cs.signed16(k.reg("OFM_ZERO_POINT"))
    assert (k.reg("OFM_SCALE"), k.params["OFM_SCALE"] & 0x3F) == (1, 0) and ifm_zp == ofm_zp
    return requant.requantize(x.astype(np.int64) - ifm_zp, 0, k.reg("OFM_SCALE"), k.params["OFM_SCALE"] & 0x3F,
                              ofm_zp, cs.signed16(k.reg("ACTIVATION_MIN")), cs.signed16(k.reg("ACTIVATION_MAX")))


@pytest.mark.parametrize("accelerator", ["ethos-u55-32", "ethos-u55-256"])
@pytest.mark.parametrize("name", list(MODELS))
def test_golden_output_stage_is_bit_exact_vs_litert(vela_cache, name, accelerator):
    m = MODELS[name]()
    layer = m.layers[0]
    art = compile_model(m, accelerator, cache_dir=vela_cache)
    kick, stream, pools = _kick_records(art)
    channels = layer.output_shape[-1]
    assert kick.reg("OFM_DEPTH_M1") + 1 == channels
    assert kick.reg("OFM_PRECISION") & 0xC100 == 0, "per-channel scale stream, round mode TFL"
    bias, scale, shift = requant.decode_records(stream, channels)
    assert bias.tolist() == layer.bias.tolist()
    ofm_zp = cs.signed16(kick.reg("OFM_ZERO_POINT"))
    act_min, act_max = cs.signed16(kick.reg("ACTIVATION_MIN")), cs.signed16(kick.reg("ACTIVATION_MAX"))
    assert cs.signed16(kick.reg("IFM_ZERO_POINT")) == layer.input_zero_point
    rng = np.random.default_rng(5)
    doubles = 0
    for _ in range(4):
        x = rng.integers(-128, 128, size=m.input_shape, dtype=np.int8)
        acc = requant.layer_accumulators(layer, x)
        got = requant.requantize(acc, bias, scale, shift, ofm_zp, act_min, act_max)
        for pool in pools:
            got = _apply_identity_pool(pool, got)
        want = run_reference(m, x).reshape(got.shape)
        assert np.array_equal(got, want), f"{np.count_nonzero(got != want)} of {got.size} elements differ"
        if name.startswith("fully_connected"):  # these seeds/inputs do not hit the FC single-rounding gap
            assert np.array_equal(requant.litert_fc_requantize(acc, bias, scale, shift, ofm_zp, act_min, act_max),
                                  want)
        doubles += int(np.all(shift > 31))
    assert doubles == 4, "every channel of these layers takes the double-rounding path"
    assert bool(pools) == (name == "conv_s2_valid")


# ---------------------------------------------------------------------------------------------------------------
# Known gap: LiteRT's FULLY_CONNECTED rounds once; the NPU (round mode TFL, as Vela emits for FC) rounds twice


def test_double_vs_single_rounding_difference_pattern():
    """``requantize_scalar`` - ``litert_fc_requantize_scalar`` is ``sign(v)`` exactly where
    ``double_rounding_differs`` says so, else 0 (unclamped range; random and near-tie values)."""
    rng = np.random.default_rng(11)
    cases = []
    for _ in range(4000):
        shift, scale = int(rng.integers(20, 48)), int(rng.integers(1 << 30, 1 << 31))
        cases.append((int(rng.integers(-(1 << 20), 1 << 20)), scale, shift))
        tie = (2 * int(rng.integers(-200, 200)) + 1) << (shift - 1)  # a half-integer output value
        cases += [(tie // scale + d, scale, shift) for d in range(-2, 3)]
    cases += [(v, s, sh) for sh in (32, 33, 35) for s in (1 << 31, 1 << 30, 3 << 29) for v in (-6, -5, -3, 3, 5, 6)]
    hits = {1: 0, -1: 0}
    for v, scale, shift in cases:
        if abs(v * scale) >> shift > 120:
            continue  # keep clear of the int8 clamp
        npu = requant.requantize_scalar(v, 0, scale, shift, 0, -128, 127)
        fc = requant.litert_fc_requantize_scalar(v, 0, scale, shift, 0, -128, 127)
        if requant.double_rounding_differs(v, scale, shift):
            assert npu - fc == (1 if v > 0 else -1), (v, scale, shift)
            hits[npu - fc] += 1
        else:
            assert npu == fc, (v, scale, shift)
    assert min(hits.values()) > 100


def test_fully_connected_known_difference_vs_litert(vela_cache):
    """FC 40->24 (ReLU), seed 0: Vela emits the same OFM_PRECISION round mode (TFL = double rounding) as for conv;
    LiteRT's FC equals the single rounding of the same records on every input, and the golden model (= the NPU)
    differs from it by sign(acc + bias) on exactly the predicted elements (input 3 of ``default_rng(5)``: one)."""
    m = single_layer(FullyConnected(24, "RELU"), (40,), seed=0, input_zero_point=-11)
    layer = m.layers[0]
    art = compile_model(m, "ethos-u55-256", cache_dir=vela_cache)
    kick, stream, pools = _kick_records(art)
    assert not pools and (kick.reg("OFM_PRECISION") >> 14) & 3 == 0, "round mode TFL, as for CONV_2D"
    bias, scale, shift = requant.decode_records(stream, layer.output_shape[-1])
    assert bool(np.all(shift > 31))
    ofm_zp = cs.signed16(kick.reg("OFM_ZERO_POINT"))
    act = cs.signed16(kick.reg("ACTIVATION_MIN")), cs.signed16(kick.reg("ACTIVATION_MAX"))
    rng = np.random.default_rng(5)
    diffs = []
    for trial in range(4):
        x = rng.integers(-128, 128, size=m.input_shape, dtype=np.int8)
        acc = requant.layer_accumulators(layer, x)
        want = run_reference(m, x).reshape(acc.shape)
        assert np.array_equal(requant.litert_fc_requantize(acc, bias, scale, shift, ofm_zp, *act), want)
        got = requant.requantize(acc, bias, scale, shift, ofm_zp, *act)
        v = (acc + bias).reshape(-1)
        for i in np.flatnonzero(got.reshape(-1) != want.reshape(-1)):
            assert requant.double_rounding_differs(int(v[i]), int(scale[i]), int(shift[i]))
            assert int(got.reshape(-1)[i]) - int(want.reshape(-1)[i]) == np.sign(v[i])
            diffs.append((trial, int(i), int(got.reshape(-1)[i]), int(want.reshape(-1)[i])))
    assert diffs == [(3, 15, -63, -64)]
