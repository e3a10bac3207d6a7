"""The golden model of the vector-unit kicks (``models.npu.vector_ref``) against LiteRT's reference kernels:
Vela-compiled single-operator models (pooling, elementwise, table lookups, int16), the stream's POOL / ELEMENTWISE /
DMA kicks executed by the golden model on the raw tensors, compared exactly with LiteRT (no RTL involved).

The model tables here are also what ``tb/rtl/npu/test_vector_ops.py`` runs on the RTL, where every model is checked
against the golden model too (u55-128 and u55-256, default tier); so the golden-only sweeps below (more seeds and
inputs, u55-64 and u55-256) are ``slow``."""
import math

import numpy as np
import pytest

from models.npu import cmdstream as cs
from models.npu import op_models as om
from models.npu import vector_ref as vr
from models.npu import vela
from models.npu.reference import ReferenceModel

#: name -> model builder; kernels, strides and paddings as Vela accepts them for the U55.
POOL_MODELS = {
    "max3x3_s2_same_7x9x20": lambda s: om.pool("MAX", (7, 9, 20), (3, 3), (2, 2), "SAME", seed=s),
    "max2x2_s2_valid_8x8x16": lambda s: om.pool("MAX", (8, 8, 16), (2, 2), (2, 2), "VALID", seed=s),
    "max3x2_s1x2_same_5x7x3_relu": lambda s: om.pool("MAX", (5, 7, 3), (3, 2), (1, 2), "SAME", "RELU", seed=s),
    "avg3x3_s1_same_6x6x8": lambda s: om.pool("AVERAGE", (6, 6, 8), (3, 3), (1, 1), "SAME", seed=s),
    "avg3x3_s2_same_7x9x20": lambda s: om.pool("AVERAGE", (7, 9, 20), (3, 3), (2, 2), "SAME", seed=s),
    "avg2x2_s2_valid_8x6x12": lambda s: om.pool("AVERAGE", (8, 6, 12), (2, 2), (2, 2), "VALID", seed=s),
    "avg5x5_valid_5x5x24": lambda s: om.pool("AVERAGE", (5, 5, 24), (5, 5), (1, 1), "VALID", seed=s),  # global
    "avg3x3_s1_same_5x5x4_relu6": lambda s: om.pool("AVERAGE", (5, 5, 4), (3, 3), (1, 1), "SAME", "RELU6", seed=s),
}


#: Elementwise models: name -> builder (tensor, broadcast and scalar second operands).
EW_MODELS = {
    "add_5x6x20": lambda s: om.binary("ADD", (1, 5, 6, 20), (1, 5, 6, 20), seed=s),
    "add_same_quant_4x4x8_relu": lambda s: om.binary("ADD", (1, 4, 4, 8), (1, 4, 4, 8), "RELU", seed=s,
                                                     same_quant=True),
    "add_bcast_c_5x6x20": lambda s: om.binary("ADD", (1, 5, 6, 20), (1, 1, 1, 20), seed=s),
    "add_scalar_3x4x5": lambda s: om.binary("ADD", (1, 3, 4, 5), (1, 1, 1, 1), seed=s, constant2=True),
    "sub_5x6x20": lambda s: om.binary("SUB", (1, 5, 6, 20), (1, 5, 6, 20), seed=s),
    "sub_bcast_hw_4x5x6": lambda s: om.binary("SUB", (1, 4, 5, 6), (1, 4, 5, 1), seed=s),
    "sub_bcast_first_4x5x6": lambda s: om.binary("SUB", (1, 1, 1, 6), (1, 4, 5, 6), seed=s),   # operand order
    "mul_5x6x20": lambda s: om.binary("MUL", (1, 5, 6, 20), (1, 5, 6, 20), seed=s),
    "mul_bcast_c_4x4x16_relu6": lambda s: om.binary("MUL", (1, 4, 4, 16), (1, 1, 1, 16), "RELU6", seed=s),
    "mul_scalar_3x3x7": lambda s: om.binary("MUL", (1, 3, 3, 7), (1, 1, 1, 1), seed=s, constant2=True),
    "minimum_4x5x12": lambda s: om.binary("MINIMUM", (1, 4, 5, 12), (1, 4, 5, 12), seed=s),
    "maximum_bcast_4x5x12": lambda s: om.binary("MAXIMUM", (1, 4, 5, 12), (1, 1, 5, 12), seed=s),
    "abs_4x5x12": lambda s: om.unary("ABS", (1, 4, 5, 12), seed=s),
}


#: Table-lookup activations (Vela: an identity AVERAGE POOL with an ACTIVATION TABLE_0 loaded into the SHRAM by DMA).
LUT_MODELS = {
    "leaky_relu_5x6x20": lambda s: om.unary("LEAKY_RELU", (1, 5, 6, 20), seed=s, alpha=0.2),
    "tanh_4x5x12": lambda s: om.unary("TANH", (1, 4, 5, 12), seed=s, out_quant=om.Quant(1 / 128, 0)),
    "logistic_4x5x12": lambda s: om.unary("LOGISTIC", (1, 4, 5, 12), seed=s, out_quant=om.Quant(1 / 256, -128)),
    "hard_swish_5x6x20": lambda s: om.unary("HARD_SWISH", (1, 5, 6, 20), seed=s),
}


#: int16 activations (symmetric quantisation, zero points 0).
I16_MODELS = {
    "i16_max3x3_s2_same_7x9x20": lambda s: om.pool("MAX", (7, 9, 20), (3, 3), (2, 2), "SAME", seed=s, int16=True),
    "i16_avg3x3_s1_same_6x6x8": lambda s: om.pool("AVERAGE", (6, 6, 8), (3, 3), (1, 1), "SAME", seed=s, int16=True),
    "i16_avg2x2_s2_valid_8x6x12": lambda s: om.pool("AVERAGE", (8, 6, 12), (2, 2), (2, 2), "VALID", seed=s,
                                                    int16=True),
    "i16_add_4x5x12": lambda s: om.binary("ADD", (1, 4, 5, 12), (1, 4, 5, 12), seed=s, int16=True),
    "i16_sub_bcast_4x5x12": lambda s: om.binary("SUB", (1, 4, 5, 12), (1, 1, 1, 12), seed=s, int16=True),
    "i16_mul_4x5x12": lambda s: om.binary("MUL", (1, 4, 5, 12), (1, 4, 5, 12), seed=s, int16=True),
    "i16_maximum_4x5x12": lambda s: om.binary("MAXIMUM", (1, 4, 5, 12), (1, 4, 5, 12), seed=s, int16=True),
    "i16_leaky_relu_4x5x12": lambda s: om.unary("LEAKY_RELU", (1, 4, 5, 12), seed=s, alpha=0.2, int16=True),
    "i16_abs_4x5x12": lambda s: om.unary("ABS", (1, 4, 5, 12), seed=s, int16=True),
}

#: uint8 activations (asymmetric, zero points around 128).
U8_MODELS = {
    "u8_avg3x3_s2_same_7x9x20": lambda s: om.pool("AVERAGE", (7, 9, 20), (3, 3), (2, 2), "SAME", seed=s, uint8=True),
    "u8_max2x2_s2_valid_8x8x16": lambda s: om.pool("MAX", (8, 8, 16), (2, 2), (2, 2), "VALID", seed=s, uint8=True),
    "u8_add_bcast_5x6x20": lambda s: om.binary("ADD", (1, 5, 6, 20), (1, 1, 1, 20), seed=s, uint8=True),
    "u8_sub_4x5x12_relu": lambda s: om.binary("SUB", (1, 4, 5, 12), (1, 4, 5, 12), "RELU", seed=s, uint8=True),
    "u8_mul_4x5x12": lambda s: om.binary("MUL", (1, 4, 5, 12), (1, 4, 5, 12), seed=s, uint8=True),
}

#: SOFTMAX (Vela: ~24 POOL / ELEMENTWISE kicks on 32-bit intermediates: MAX, SUB with a 32-bit exp table, SHR,
#: REDUCE_SUM across depth, CLZ, SUB, SHL, Newton-Raphson MUL / ADD / SUB, SHR to int8).
SOFTMAX_MODELS = {
    "softmax_10": lambda s: om.softmax((1, 10), seed=s),
    "softmax_2x3x12_beta0.5": lambda s: om.softmax((1, 2, 3, 12), seed=s, beta=0.5),
    "i16_softmax_10": lambda s: om.softmax((1, 10), seed=s, int16=True),   # 16-bit interpolated tables
}


def run_golden(art, inputs, shram_bytes: int = 0, commands=None) -> np.ndarray:
    """Execute the stream's POOL / ELEMENTWISE / DMA kicks (``commands``: a patched stream's instead) with the
    golden model; returns the output tensor (int8 or int16, flat)."""
    regions = {art.weight_region: bytearray(art.weight_data), art.scratch_region: bytearray(art.scratch_size)}
    for t, x in zip(art.inputs, inputs, strict=True):
        regions[t.region][t.offset:t.offset + t.nbytes] = np.ascontiguousarray(x).tobytes()
    shram = bytearray(shram_bytes or art.header.shram_kib * 1024)
    for k in cs.kicks(art.commands() if commands is None else commands):
        vr.run_kick(k, regions, shram)
    (out,) = art.outputs
    dtype = np.asarray(inputs[0]).dtype if out.elem_size == np.asarray(inputs[0]).dtype.itemsize else {
        1: np.int8, 2: np.int16}[out.elem_size]
    return np.frombuffer(bytes(regions[out.region][out.offset:out.offset + out.nbytes]), dtype)


def test_pooling_reciprocal_is_tflite_rounding():
    for n in range(1, 257):
        r, s = vr.pooling_reciprocal(n)
        sums = np.arange(-255 * n, 255 * n + 1, dtype=np.int64)
        want = np.where(sums >= 0, (sums + n // 2) // n, -((-sums + n // 2) // n))
        got = np.array([(int(v) * r + (1 << (s - 1))) >> s for v in sums[:: max(1, n // 4)]])
        assert np.array_equal(got, want[:: max(1, n // 4)]), n
    assert vr.pooling_reciprocal(4) == ((1 << 31) + 1, 33) and math.frexp(3)[1] == 2


@pytest.mark.slow
@pytest.mark.parametrize("name", list(POOL_MODELS))
@pytest.mark.parametrize("accel", ["ethos-u55-64", "ethos-u55-256"])
def test_pool_golden_vs_litert(name, accel, tmp_path):
    rng = np.random.default_rng(7)
    for seed in (0, 1):
        model = POOL_MODELS[name](seed)
        art = vela.compile_model(model, accel)
        ref = ReferenceModel(model)
        for _ in range(2):
            x = ref.random_input(rng)
            np.testing.assert_array_equal(run_golden(art, [x]), ref.run(x).reshape(-1), err_msg=f"{name} {seed}")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EW_MODELS))
@pytest.mark.parametrize("accel", ["ethos-u55-64", "ethos-u55-256"])
def test_elementwise_golden_vs_litert(name, accel):
    rng = np.random.default_rng(8)
    for seed in (0, 1, 2):
        model = EW_MODELS[name](seed)
        art = vela.compile_model(model, accel)
        ref = ReferenceModel(model)
        for _ in range(2):
            xs = [ref.random_input(rng, i) for i in range(len(ref.inputs))]
            want = ref.run_all(*xs)[0].reshape(-1)
            np.testing.assert_array_equal(run_golden(art, xs), want, err_msg=f"{name} {seed}")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(LUT_MODELS))
@pytest.mark.parametrize("accel", ["ethos-u55-64", "ethos-u55-256"])
def test_lut_golden_vs_litert(name, accel):
    rng = np.random.default_rng(9)
    for seed in (0, 1):
        model = LUT_MODELS[name](seed)
        art = vela.compile_model(model, accel)
        ref = ReferenceModel(model)
        x = np.arange(-128, 128, dtype=np.int8)
        x = np.resize(np.concatenate([x, ref.random_input(rng).reshape(-1)]), ref.input_shapes[0])
        np.testing.assert_array_equal(run_golden(art, [x]), ref.run(x).reshape(-1), err_msg=f"{name} {seed}")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(I16_MODELS))
@pytest.mark.parametrize("accel", ["ethos-u55-64", "ethos-u55-256"])
def test_int16_golden_vs_litert(name, accel):
    rng = np.random.default_rng(10)
    for seed in (0, 1):
        model = I16_MODELS[name](seed)
        art = vela.compile_model(model, accel)
        ref = ReferenceModel(model)
        for _ in range(2):
            xs = [ref.random_input(rng, i) for i in range(len(ref.inputs))]
            want = ref.run_all(*xs)[0].reshape(-1)
            np.testing.assert_array_equal(run_golden(art, xs), want, err_msg=f"{name} {seed}")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(U8_MODELS))
@pytest.mark.parametrize("accel", ["ethos-u55-64", "ethos-u55-256"])
def test_uint8_golden_vs_litert(name, accel):
    rng = np.random.default_rng(11)
    for seed in (0, 1):
        model = U8_MODELS[name](seed)
        art = vela.compile_model(model, accel)
        ref = ReferenceModel(model)
        for _ in range(2):
            xs = [ref.random_input(rng, i) for i in range(len(ref.inputs))]
            want = ref.run_all(*xs)[0].reshape(-1)
            np.testing.assert_array_equal(run_golden(art, xs), want, err_msg=f"{name} {seed}")


def test_softmax_golden_vs_litert():
    """The 32-bit elementwise / pooling semantics and the 16-bit interpolated tables (``vector_ref``) run Vela's int8
    and int16 SOFTMAX decompositions bit-exactly vs LiteRT (one config in the default tier, more below)."""
    rng = np.random.default_rng(12)
    for name, make in SOFTMAX_MODELS.items():
        model = make(0)
        art = vela.compile_model(model, "ethos-u55-128")
        ref = ReferenceModel(model)
        for _ in range(3):
            x = ref.random_input(rng)
            np.testing.assert_array_equal(run_golden(art, [x]), ref.run(x).reshape(-1), err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("shape", [(1, 3), (1, 37), (1, 300), (2, 4, 5, 16)])
@pytest.mark.parametrize("accel", ["ethos-u55-64", "ethos-u55-256"])
@pytest.mark.parametrize("int16", [False, True])
def test_softmax_shapes_golden_vs_litert(shape, accel, int16):
    rng = np.random.default_rng(13)
    for seed, beta in ((0, 1.0), (1, 0.3), (2, 2.0)):
        model = om.softmax(shape, seed=seed, beta=beta, int16=int16)
        art = vela.compile_model(model, accel)
        ref = ReferenceModel(model)
        for _ in range(4):
            x = ref.random_input(rng)
            np.testing.assert_array_equal(run_golden(art, [x]), ref.run(x).reshape(-1), err_msg=f"{shape} {seed}")


def test_shift_and_clz_semantics():
    """CLZ / SHL / SHR / 32-bit output on hand-worked values (the Ethos-U55 register semantics as stated in
    ``vector_ref``; SOFTMAX exercises only non-negative operands and NATURAL rounding)."""
    ew = vr.elementwise
    kw = dict(scale_mode=0, opa_scale=1, opa_shift=0)
    assert [ew(vr.EW_CLZ, v, 0, **kw) for v in (0, 1, -1, 0x7FFFFFFF, 1 << 20)] == [32, 31, 0, 1, 11]
    assert ew(vr.EW_SHL, 3, 4, **kw) == 48 and ew(vr.EW_SHL, 5, -2, **kw) == 5 and ew(vr.EW_SHL, 1, 40, **kw) == 1 << 32
    for mode, want in ((vr.ROUND_NATURAL, [-2, -1, 3]), (vr.ROUND_TRUNCATE, [-1, -1, 2]), (vr.ROUND_TFL, [-2, -1, 3])):
        # -7 / 4 = -1.75, -6 / 4 = -1.5, 10 / 4 = 2.5 (TRUNCATE: toward zero; NATURAL, TFL below 32: half up)
        assert [ew(vr.EW_SHR, a, 2, round_mode=mode, **kw) for a in (-7, -6, 10)] == want, mode
    assert ew(vr.EW_SHR, -5, 63, round_mode=vr.ROUND_NATURAL, **kw) == 0
    assert ew(vr.EW_SUB, 7, 9, **kw) == -2
    with pytest.raises(ValueError):
        ew(vr.EW_ADD, 1, 1, scale_mode=0, opa_scale=3, opa_shift=0)
    # a 32-bit OFM saturates to int32 and ignores ACTIVATION_MIN/MAX; a 32-bit table entry is the result
    assert vr.output_stage(1 << 40, 1, 0, vr.ROUND_TFL, 0, -128, 127, ofm_bits=32) == (1 << 31) - 1
    assert vr.output_stage(1000, 1, 0, vr.ROUND_TFL, 0, -128, 127, ofm_bits=32) == 1000
    lut = b"".join(int(i * 1000).to_bytes(4, "little", signed=True) for i in range(256))
    assert vr.output_stage(-3, 1, 0, vr.ROUND_TFL, 127, -128, 127, lut=lut, ofm_bits=32, clip=(True, 8)) == 252_000
