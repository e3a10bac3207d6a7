"""IFM resampling (NPU_SET_IFM_UPSCALE) and IFM tiles (NPU_SET_IFM_BASE0-3 / HEIGHT0/1 / WIDTH0) end to end.

Vela-compiled RESIZE_NEAREST_NEIGHBOR (1x1 AVERAGE pools with NEAREST x2 upscaling, chained for x4; with
align_corners a depthwise conv on the upscaled IFM), RESIZE_BILINEAR x2 (a 2x2 AVERAGE pool on the NEAREST-upscaled
IFM: the vector unit's) and TRANSPOSE_CONV (a stride-1 conv on the TRANSPOSE upscaled
IFM: zeros between the pixels) run on the whole NPU under Verilator; the OFM read back from external memory must
equal LiteRT's reference kernels exactly. Each case also checks that Vela's stream really uses the mode
(``IFM_UPSCALE``), so a change in Vela cannot make the test vacuous.

**Tiles**: Vela splits an IFM into tiles where its box crosses the end of a rolling buffer, i.e. in a cascade
(a 3-conv chain on a 24x16x16 input with a 12,000-byte arena: two convs read rows from tile 0 *and* tile 2).
Vela 5.2 never emits tiles 1 / 3 (``addresses_for_rolling_buffer`` refuses vertical striping; its TILE padding for
RESIZE_BILINEAR is no longer used): those are tested in ``test_ifm_stager`` against the address formula.

A reserved ``IFM_UPSCALE`` (3) and a TRANSPOSE-upscaled pool on the vector unit (RESIZE_BILINEAR's pool patched
from NEAREST; the vector unit upscales by NEAREST only) must stop the stream with ``COMPUTE_FAULT`` / ``UNSUPPORTED``.

Fast tier: every model on u55-128, one per mode and the cascade on u55-256 (the builds ``test_vector_ops`` uses);
``slow``: every model on all four configs.
"""
import numpy as np
import pytest

from base import cache_root
from drivers import npu as npu_driver
from drivers.transport import SimDevice
from models.npu import cmdstream as cs
from models.npu import vela
from models.npu.reference import ReferenceModel
from models.npu.tflite_graph import Graph
from rtl.npu.compute import ComputeError
from rtl.npu.config import PRESETS
from rtl.npu.controller import ErrorCode
from sim.build import build
from sim.harness import NativeSim
from tb.rtl.npu.test_vector_ops import load, run_model

NEAREST, TRANSPOSE = 1, 2   # ethos_u55_regs.resampling_mode


def _graph(name, seed, shape, layer):
    g = Graph(name, seed)
    g.output(layer(g, g.input(shape)))
    return g.build()


#: name -> (model builder, the resampling mode every NPU kernel op of Vela's stream must use)
RESAMPLE_MODELS = {
    "nearest_x2_5x6x16": (lambda: _graph("nn2", 1, (5, 6, 16), lambda g, x: g.resize(x, (10, 12))), NEAREST),
    "nearest_x2_half_pixel_4x7x5": (lambda: _graph("nn2h", 2, (4, 7, 5), lambda g, x: g.resize(
        x, (8, 14), half_pixel_centers=True)), NEAREST),
    "nearest_x4_3x4x8": (lambda: _graph("nn4", 3, (3, 4, 8), lambda g, x: g.resize(x, (12, 16))), NEAREST),
    "nearest_align_corners_4x5x8": (lambda: _graph("nnac", 4, (4, 5, 8), lambda g, x: g.resize(
        x, (7, 9), align_corners=True)), NEAREST),
    "tconv3x3_s2_same_4x5x8": (lambda: _graph("tcs", 5, (4, 5, 8), lambda g, x: g.transpose_conv(
        x, 16, (3, 3), (2, 2), "SAME")), TRANSPOSE),
    "tconv3x3_s2_valid_3x4x12": (lambda: _graph("tcv", 6, (3, 4, 12), lambda g, x: g.transpose_conv(
        x, 8, (3, 3), (2, 2), "VALID")), TRANSPOSE),
    "tconv2x2_s2_same_5x3x20": (lambda: _graph("tc2", 7, (5, 3, 20), lambda g, x: g.transpose_conv(
        x, 24, (2, 2), (2, 2), "SAME")), TRANSPOSE),
    "tconv4x4_s2_same_3x3x3": (lambda: _graph("tc4", 8, (3, 3, 3), lambda g, x: g.transpose_conv(
        x, 6, (4, 4), (2, 2), "SAME")), TRANSPOSE),
    "bilinear_x2_4x5x16": (lambda: _bilinear_pool_model(), NEAREST),
}

_KERNEL_OPS = ("NPU_OP_CONV", "NPU_OP_DEPTHWISE", "NPU_OP_POOL")


def cascade_model():
    """Three 3x3 convs on 24x16x16: with a 12,000-byte arena Vela cascades them through rolling buffers."""
    g = Graph("cascade", 9)
    y = g.input((24, 16, 16))
    for filters, act in ((16, "RELU"), (16, "RELU"), (8, "NONE")):
        y = g.conv2d(y, filters, (3, 3), activation=act)
    g.output(y)
    return g.build()


CASCADE_ARGS = ("--optimise", "Performance", "--arena-cache-size", "12000")


def _tiled(kick) -> bool:
    """The op reads IFM rows below tile 0 (from tile 2)."""
    r = kick.reg
    need = ((r("OFM_HEIGHT_M1")) * (1 + (r("KERNEL_STRIDE") >> 1 & 1)) + r("KERNEL_HEIGHT_M1") + 1
            - r("IFM_PAD_TOP") - r("IFM_PAD_BOTTOM"))
    return need > r("IFM_HEIGHT0_M1") + 1 and r("IFM_BASE2") != r("IFM_BASE0")


def _compile(model, cfg, extra_args=()):
    return vela.compile_model(model, f"ethos-u55-{cfg.macs}", cache_dir=cache_root() / "vela", extra_args=extra_args)


def run_checked(sim, config, name, model, art):
    cfg = PRESETS[config]
    rng = np.random.default_rng(13)
    ref = ReferenceModel(model)
    xs = [ref.random_input(rng, i) for i in range(len(ref.inputs))]
    want = ref.run_all(*xs)[0].reshape(-1)
    status, got, n = run_model(sim, cfg, art, xs)
    assert status == (0, ErrorCode.OK, 0, 0), (name, status)
    np.testing.assert_array_equal(got, want, err_msg=f"{config} {name}")
    print(f"{config} {name}: bit-exact, {n} NPU cycles (Vela estimate {art.perf.npu_cycles})")
    return n, art.perf.npu_cycles


def check_resample(config: str, design, names=tuple(RESAMPLE_MODELS)) -> dict[str, tuple[int, int]]:
    """Run the named models and the tiled cascade; return name -> (NPU cycles, Vela's estimate)."""
    cfg = PRESETS[config]
    cycles = {}
    with SimDevice(NativeSim(design)) as sim:
        for name in names:
            make, mode = RESAMPLE_MODELS[name]
            model = make()
            art = _compile(model, cfg)
            modes = {k.reg("IFM_UPSCALE") for k in cs.kicks(art.commands()) if k.name in _KERNEL_OPS}
            assert modes == {mode}, (name, modes)
            cycles[name] = run_checked(sim, config, name, model, art)
        model = cascade_model()
        art = _compile(model, cfg, CASCADE_ARGS)
        assert sum(_tiled(k) for k in cs.kicks(art.commands()) if k.name == "NPU_OP_CONV") >= 1
        cycles["cascade_tiles_24x16x16"] = run_checked(sim, config, "cascade_tiles_24x16x16", model, art)
    return cycles


#: The second fast-tier config runs one model per mode (and the cascade); the slow tier runs them all.
SECOND_CONFIG_MODELS = ("nearest_x4_3x4x8", "nearest_align_corners_4x5x8", "tconv3x3_s2_valid_3x4x12")


def test_resample_bit_exact():
    check_resample("u55-128", build("npu", "u55-128"))


def test_resample_bit_exact_second_config():
    check_resample("u55-256", build("npu", "u55-256"), SECOND_CONFIG_MODELS)


@pytest.mark.slow
@pytest.mark.parametrize("config", ("u55-32", "u55-64", "u55-256"))
def test_resample_bit_exact_other_configs(config):
    check_resample(config, build("npu", config))


def _bilinear_pool_model():
    return _graph("bil", 10, (4, 5, 16), lambda g, x: g.resize(x, (8, 10), bilinear=True))


@pytest.mark.parametrize("what", ["reserved_upscale", "transpose_vector_pool"])
def test_unsupported_resampling_halts(what):
    config = "u55-128"
    cfg = PRESETS[config]
    if what == "reserved_upscale":
        art = vela.compile_model(RESAMPLE_MODELS["tconv3x3_s2_same_4x5x8"][0](), f"ethos-u55-{cfg.macs}")
        words = [w | (3 << 16) if w & 0xFFFF == 0x0107 else w for w in (int(w) for w in art.command_stream)]
        assert words != [int(w) for w in art.command_stream]
    else:   # Vela: a 2x2 AVERAGE pool with NEAREST upscaling (the vector unit's op), patched to TRANSPOSE
        art = vela.compile_model(_bilinear_pool_model(), f"ethos-u55-{cfg.macs}")
        (kick,) = cs.kicks(art.commands())
        assert (kick.name, kick.reg("IFM_UPSCALE"), kick.reg("KERNEL_HEIGHT_M1")) == ("NPU_OP_POOL", NEAREST, 1)
        words = [(w & 0xFFFF) | (TRANSPOSE << 16) if w & 0xFFFF == 0x0107 else w
                 for w in (int(w) for w in art.command_stream)]
        assert words != [int(w) for w in art.command_stream]
    xs = [np.zeros(t.nbytes, np.int8) for t in art.inputs]
    with SimDevice(NativeSim(build("npu", config))) as sim:
        lay = load(sim, cfg, art, xs)
        addr = lay.cmd_addr + art.header.stream_offset
        npu_driver.load_bytes(sim, addr, np.asarray(words, "<u4").tobytes())
        npu_driver.start(sim, addr, 4 * len(words), lay.basep)
        assert npu_driver.wait_done(sim, 20_000, chunk=16) is not None, "NPU hung"
        assert (sim.peek("error"), sim.peek("error_code"), sim.peek("compute_error")) == (
            1, ErrorCode.COMPUTE_FAULT, ComputeError.UNSUPPORTED.value)
