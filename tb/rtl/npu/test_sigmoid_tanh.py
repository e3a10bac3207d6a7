"""The NPU's int16 TANH / SIGMOID activation functions (``rtl.npu.sigmoid_tanh``).

* The arithmetic (:func:`sigmoid_tanh16` after Vela's OFM scale for the op) equals LiteRT's int16 TANH / LOGISTIC
  reference kernels on every int16 input, for power-of-two input scales (Vela's exact ``3 << shift`` case) and others.
* :class:`SigmoidTanhUnit` (the hardware) equals :func:`sigmoid_tanh16` on values across and beyond its table.
* The whole NPU (u55-128 and u55-256 builds, shared with test_vector_ops; u55-32 / u55-64 in the slow tier) runs
  Vela's int16 TANH / LOGISTIC bit-exactly vs LiteRT (the op matrix's rows), and refuses TANH / SIGMOID on an
  8-bit IFM with ``UNSUPPORTED`` (never hangs).
"""
import math

import numpy as np
import pytest
from amaranth.sim import Simulator

from drivers.npu_coverage import run_row
from drivers.transport import SimDevice
from models.npu import op_models as om
from models.npu import vela
from models.npu.graph import interpreter
from models.npu.op_matrix import rows_by_name
from models.npu.sigmoid_tanh import ACT_SIGMOID, ACT_TANH, sigmoid_tanh16
from rtl.npu.config import PRESETS
from rtl.npu.sigmoid_tanh import SigmoidTanhUnit
from sim.build import build
from sim.harness import NativeSim
from tb.models.npu.test_vector_ref import POOL_MODELS
from tb.rtl.npu.test_vector_ops import ALL_CONFIG_PARAMS, assert_stream_unsupported


def vela_scale(scale: float, tanh: bool) -> tuple[int, int]:
    """OFM_SCALE / shift as Vela 5.2 writes them for an int16 TANH / SIGMOID pool (generate_ofm_scaling_for_pooling):
    to units of 1 / 0x3000."""
    x = math.log2(scale)
    shift = round(x) + 12
    if abs(x - round(x)) < 0.001 and (shift in (0, 1) if tanh else shift == 0):
        return 3 << shift, 0
    rescale, shift = 0x3000 * scale, 0
    while rescale <= 32767 / 2 and shift <= 30:
        shift, rescale = shift + 1, rescale * 2
    return int(rescale), shift


@pytest.mark.parametrize("op", ["TANH", "LOGISTIC"])
@pytest.mark.parametrize("scale", [2 ** -12, 2 ** -11, 3.1e-4, 5.5e-4, 1.7e-3])
def test_arithmetic_matches_litert_on_every_input(monkeypatch, op, scale):
    monkeypatch.setattr(om, "_rand_quant", lambda *a, **k: om.Quant(scale, 0))
    it = interpreter(om.unary(op, (1, 64, 64, 16), int16=True, out_quant=om.Quant(1 / 32768, 0)))
    it.allocate_tensors()
    d = it.get_input_details()[0]
    x = np.arange(-32768, 32768, dtype=np.int16)
    it.set_tensor(d["index"], x.reshape(1, 64, 64, 16))
    it.invoke()
    want = it.get_tensor(it.get_output_details()[0]["index"]).reshape(-1)
    m, sh = vela_scale(float(d["quantization"][0]), op == "TANH")
    got = np.array([sigmoid_tanh16((int(v) * m + ((1 << sh) >> 1)) >> sh, op == "TANH") for v in x])
    np.testing.assert_array_equal(got, want)


def test_unit_matches_arithmetic():
    dut = SigmoidTanhUnit(24)
    rng = np.random.default_rng(5)
    values = [0, 1, -1, 255, 256, -256, 511, 512, 65279, 65280, 65281, 130559, 130560, -130560, (1 << 23) - 1,
              -(1 << 23)] + [int(v) for v in rng.integers(-140_000, 140_000, 300)]
    bad = []

    async def bench(ctx):
        for tanh in (1, 0):
            ctx.set(dut.tanh, tanh)
            for v in values:
                ctx.set(dut.x, v)
                if ctx.get(dut.y) != sigmoid_tanh16(v, bool(tanh)):
                    bad.append((tanh, v, ctx.get(dut.y), sigmoid_tanh16(v, bool(tanh))))

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, bad[:5]


@pytest.fixture(scope="module", params=ALL_CONFIG_PARAMS)
def npu(request):
    return request.param, build("npu", request.param)


@pytest.mark.parametrize("row", ["tanh_int16_4x5x6", "logistic_int16_4x5x6"])
def test_int16_tanh_logistic_bit_exact(npu, row):
    config, design = npu
    with SimDevice(NativeSim(design)) as dev:
        r = run_row(dev, config, rows_by_name()[row])
    assert r.passed, f"{r.result} {r.detail} [{r.npu_ops}]"


def _patch(w: int, function: int, ofm16: bool) -> int:
    if w & 0xFFFF == 0x0125:    # NPU_SET_ACTIVATION
        return 0x0125 | (function << 16)
    if ofm16 and w & 0xFFFF == 0x0114:   # NPU_SET_OFM_PRECISION: 16-bit OFM
        return 0x0114 | ((((w >> 16) & ~6) | 2) << 16)
    return w


@pytest.mark.parametrize("ofm16", [False, True])
@pytest.mark.parametrize("function", [ACT_TANH, ACT_SIGMOID])
def test_8bit_ifm_tanh_sigmoid_refused(npu, function, ofm16):
    """An int8 MAX_POOL with its ACTIVATION patched to TANH / SIGMOID (defined for int16 only; ``ofm16``: its OFM
    patched to 16 bit as well, so only the 8-bit IFM is wrong) stops the stream."""
    config, design = npu
    cfg = PRESETS[config]
    art = vela.compile_model(POOL_MODELS["max2x2_s2_valid_8x8x16"](0), f"ethos-u55-{cfg.macs}")
    words = [_patch(int(w), function, ofm16) for w in art.command_stream]
    assert words != [int(w) for w in art.command_stream], "no NPU_SET_ACTIVATION to patch"
    assert_stream_unsupported(design, cfg, art, words)
