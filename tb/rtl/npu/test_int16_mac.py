"""16-bit activations with 8-bit weights (TFLite's int16x8) on the NPU's MAC path: CONV_2D, DEPTHWISE_CONV_2D and
FULLY_CONNECTED models (``models.npu.int16x8``), Vela-compiled, run on the Verilated NPU and compared with LiteRT's
reference kernels element for element (``drivers.npu_coverage.run_row``: two random inputs and one at int16 max).

What Vela's stream asks for with a 16-bit IFM (and the NPU does, ``rtl.npu.mac`` / ``issue`` / ``output_unit``):
IFM_PRECISION S16, IFM blocks of 16 channels (part-kernel-first sub-kernels padded to 2 elements), ACC_FORMAT INT40,
round mode NATURAL (one rounding) with the 16-bit "reduced" per-channel scale.

Default tier: every case on u55-32 (4-deep OFM ublocks: a 16-bit depthwise brick is one beat) and u55-256 (2x2
positions); the FC whose stream and LiteRT differ (see :func:`test_fc_follows_the_stream`); streams that ask for
what the MAC path does not do, or whose weights do not match the IFM precision, stop with an error. Slow tier: every
case on all four configs.
"""
import dataclasses

import numpy as np
import pytest
from ethosu.vela.scaling import quantise_scale, reduced_quantise_scale
from ethosu.vela.tflite.Model import Model

from drivers.npu_coverage import run_artifact, run_row
from drivers.transport import SimDevice
from models.npu import cmdstream as cs
from models.npu import int16x8, vela
from models.npu import tflite_builder as tb
from models.npu.op_matrix import Row
from models.npu.reference import ReferenceModel
from rtl.npu.controller import ErrorCode

CONFIGS = ("u55-32", "u55-64", "u55-128", "u55-256")
FAST_CONFIGS = ("u55-32", "u55-256")


def _row(op: str, variant: str, make) -> Row:
    return Row(op, "int16", variant, make)


CASES = [
    _row("CONV_2D", "3x3_same_df", lambda s: int16x8.conv2d((5, 6, 12), 8, (3, 3), (1, 1), "SAME", seed=s)),
    _row("CONV_2D", "3x3_relu_pk", lambda s: int16x8.conv2d((6, 7, 5), 9, (3, 3), (1, 1), "SAME", "RELU", seed=s)),
    _row("CONV_2D", "5x3_s2_valid", lambda s: int16x8.conv2d((9, 8, 20), 12, (5, 3), (2, 2), "VALID", seed=s)),
    _row("CONV_2D", "1x1_40ch", lambda s: int16x8.conv2d((4, 4, 40), 16, (1, 1), (1, 1), "SAME", seed=s)),
    # a 9x3 kernel: two sub-kernels, the 1x3 one padded to 4 elements (2 would do with part-kernel-first)
    _row("CONV_2D", "9x3_pk_subkernels", lambda s: int16x8.conv2d((10, 6, 3), 8, (9, 3), (1, 1), "SAME", seed=s)),
    _row("DEPTHWISE_CONV_2D", "3x3_s2", lambda s: int16x8.depthwise_conv2d((6, 7, 12), (3, 3), (2, 2), seed=s)),
    _row("DEPTHWISE_CONV_2D", "5x5_valid_relu6",
         lambda s: int16x8.depthwise_conv2d((8, 9, 20), (5, 5), (1, 1), "VALID", "RELU6", seed=s)),
    _row("FULLY_CONNECTED", "40x12_exact_scales",
         lambda s: int16x8.fully_connected(40, 12, "RELU", seed=s, exact_scales=True)),
    # 16-bit NHCWB16 intermediates in Vela's arena, DMA'd weights
    _row("STACK", "conv_dw_conv", lambda s: int16x8.stack((7, 8, 12), (
        tb.Conv2D(20, activation="RELU"), tb.DepthwiseConv2D(), tb.Conv2D(24, (1, 1))), seed=s)),
]


def _check(config: str, cases) -> None:
    with SimDevice.open("npu", config) as dev:
        results = [run_row(dev, config, row) for row in cases]
    bad = [f"{r.row.name}: {r.result} {r.detail} [{r.npu_ops}]" for r in results if not r.passed]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("config", FAST_CONFIGS)
def test_int16x8_bit_exact(config):
    _check(config, CASES)


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
def test_int16x8_bit_exact_all_configs(config):
    _check(config, CASES + [_row("FULLY_CONNECTED", "64x20", lambda s: int16x8.fully_connected(
        64, 20, seed=s, exact_scales=True)), _row("CONV_2D", "3x3_s2_48ch", lambda s: int16x8.conv2d(
            (7, 7, 48), 24, (3, 3), (2, 2), "SAME", "RELU6", seed=s))])


def test_int16_stream_is_what_the_mac_path_implements():
    """The register values the MAC path's 16-bit handling rests on (a Vela upgrade that changed them would show
    here first): S16 IFM, ACC_FORMAT INT40, round mode NATURAL, per-channel scales."""
    art = vela.compile_cached(CASES[0].builder(0), "u55-128")
    (kick,) = [k for k in cs.kicks(art.commands()) if k.name == "NPU_OP_CONV"]
    assert kick.reg("IFM_PRECISION") & 0xF == 0x5
    assert kick.reg("ACC_FORMAT") == 1
    assert kick.reg("OFM_PRECISION") >> 14 == 2 and kick.reg("OFM_PRECISION") & 0x100 == 0


def _fc_parameters(model: bytes):
    """(weights OI, int64 bias, input scale, weight scales, output scale) of a one-FC model, from its flatbuffer."""
    mod = Model.GetRootAsModel(model, 0)
    sg = mod.Subgraphs(0)
    tensors = {sg.Tensors(i).Name().decode(): sg.Tensors(i) for i in range(sg.TensorsLength())}

    def data(name, dtype):
        return np.frombuffer(mod.Buffers(tensors[name].Buffer()).DataAsNumpy().tobytes(), dtype)

    w = tensors["weights"]
    weights = data("weights", np.int8).reshape(w.ShapeAsNumpy()).astype(np.int64)
    scales = [np.float32(tensors[n].Quantization().Scale(0)) for n in ("input", "output")]
    return (weights, data("bias", "<i8").astype(np.int64), scales[0],
            w.Quantization().ScaleAsNumpy().astype(np.float32), scales[1])


def _requantise(v: np.ndarray, multipliers) -> np.ndarray:
    """Round half up of ``v * m / 2**shift`` per channel (NATURAL), clamped to int16."""
    out = [(int(x) * m + (1 << (sh - 1))) >> sh for x, (m, sh) in zip(v, multipliers, strict=True)]
    return np.clip(out, -32768, 32767)


def test_fc_follows_the_stream():
    """An int16 FC with random scales: the NPU equals the stream's arithmetic (Vela's 16-bit reduced scale, one
    rounding), LiteRT the same with the 32-bit multiplier; so they differ exactly where the two multipliers round
    differently, by one (here: 5 of 48 outputs). ``exact_scales`` models avoid this (bit-exact above)."""
    model = int16x8.fully_connected(40, 12, seed=0)
    weights, bias, s_in, s_w, s_out = _fc_parameters(model)
    real = [np.double(s_in * w) / np.double(s_out) for w in s_w]   # Vela's FC scale (float32 product)
    reduced, full = [reduced_quantise_scale(r) for r in real], [quantise_scale(r) for r in real]
    ref = ReferenceModel(model)
    art = vela.compile_cached(model, "u55-256")
    rng = np.random.default_rng(5)
    differ = 0
    with SimDevice.open("npu", "u55-256") as dev:
        for _ in range(4):
            x = ref.random_input(rng, 0)
            want = ref.run_all(x)[0].reshape(-1)
            status, (got,) = run_artifact(dev, "u55-256", art, [x], [np.int16])
            assert status == ""
            v = weights @ x.reshape(-1).astype(np.int64) + bias
            np.testing.assert_array_equal(got, _requantise(v, reduced))
            np.testing.assert_array_equal(want, _requantise(v, full))
            differ += int(np.count_nonzero(got != want))
            assert np.abs(got.astype(int) - want).max() <= 1
    assert differ == 5


def _patch(art: vela.VelaArtifact, reg: str, value: int) -> vela.VelaArtifact:
    """``art`` with register ``reg``'s (every) write in the command stream given ``value`` instead."""
    words = np.array(art.command_stream, dtype=np.uint32)
    for c in art.commands():
        if c.name == f"NPU_SET_{reg}":
            words[c.offset // 4] = (value << 16) | (int(words[c.offset // 4]) & 0xFFFF)
    data = bytearray(art.cmd_data)
    start = art.header.stream_offset
    data[start:start + 4 * len(words)] = words.astype("<u4").tobytes()
    return dataclasses.replace(art, command_stream=words, cmd_data=bytes(data))


def test_malformed_16bit_ops_stop_with_an_error():
    """Streams that do not fit the MAC path stop with COMPUTE_FAULT (never a hang), and a good run after each is
    still bit-exact: a 16-bit conv's stream with its IFM called 8-bit (the weights are ordered for 16-bit IFM
    blocks, so their count is not the 8-bit loop nest's: WEIGHT_COUNT), and the other way round; an unsigned
    16-bit IFM, a 32-bit IFM, round mode TRUNCATE and ACC_FORMAT FP_S5_10 (UNSUPPORTED)."""
    config = "u55-256"
    model16 = CASES[0].builder(0)
    art16 = vela.compile_cached(model16, config)
    model8 = tb.single_layer(tb.Conv2D(8), (5, 6, 12), seed=0).data
    art8 = vela.compile_cached(model8, config)
    prec16 = next(k for k in cs.kicks(art16.commands()) if k.name == "NPU_OP_CONV").reg("IFM_PRECISION")
    prec8 = next(k for k in cs.kicks(art8.commands()) if k.name == "NPU_OP_CONV").reg("IFM_PRECISION")
    ofm16 = next(k for k in cs.kicks(art16.commands()) if k.name == "NPU_OP_CONV").reg("OFM_PRECISION")
    cases = {
        "16-bit weights, IFM called S8": (art16, _patch(art16, "IFM_PRECISION", prec16 & ~0xC), "WEIGHT_COUNT"),
        "8-bit weights, IFM called S16": (art8, _patch(art8, "IFM_PRECISION", prec8 | 0x4), "WEIGHT_COUNT"),
        "U16 IFM": (art16, _patch(art16, "IFM_PRECISION", prec16 & ~1), "UNSUPPORTED"),
        "S32 IFM": (art16, _patch(art16, "IFM_PRECISION", prec16 & ~0xC | 0x8), "UNSUPPORTED"),
        "round TRUNCATE": (art16, _patch(art16, "OFM_PRECISION", ofm16 & 0x3FFF | 1 << 14), "UNSUPPORTED"),
        "ACC_FORMAT FP_S5_10": (art16, _patch(art16, "ACC_FORMAT", 2), "UNSUPPORTED"),
    }
    refs = {id(art16): ReferenceModel(model16), id(art8): ReferenceModel(model8)}
    rng = np.random.default_rng(9)
    with SimDevice.open("npu", config) as dev:
        for name, (good, bad, cause) in cases.items():
            ref = refs[id(good)]
            x = ref.random_input(rng, 0)
            want = ref.run_all(x)[0]
            status, _ = run_artifact(dev, config, bad, [x], [want.dtype], max_cycles=100_000)
            assert status == f"{ErrorCode.COMPUTE_FAULT.name} ({cause})", name
            status, (got,) = run_artifact(dev, config, good, [x], [want.dtype])
            assert status == "", name
            np.testing.assert_array_equal(got, want.reshape(-1), err_msg=name)
