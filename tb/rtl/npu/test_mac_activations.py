"""Table-lookup activations fused into the MAC ops: Vela turns an int8 HARD_SWISH, TANH or LOGISTIC after a
CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED into an 8-bit table (ACTIVATION TABLE_n, the table DMA'd into the
SHRAM) on the MAC op itself; the output unit looks every requantised value up
(``rtl.npu.output_unit``, ``rtl.npu.activation_table``). Each model runs on the whole NPU (u55-128 and u55-256, the
builds the other fast-tier NPU tests use; u55-32 and u55-64 in the slow tier) and must equal LiteRT's reference
kernels exactly; the MAC op must carry the table (else the test would not be testing the lookup). The stream
patched to put the table in slot 1 (TABLE_1) gives the same result, and so does the vector unit's lookup (an int8
TANH: an identity POOL with TABLE_0) with its table moved to slot 3; a table with a clip range other than the OFM's
is refused (``COMPUTE_FAULT`` / ``UNSUPPORTED``)."""
import numpy as np
import pytest

from drivers import npu as npu_driver
from drivers.npu import read_bytes, run_on_npu
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
from tb.models.npu.test_vector_ref import LUT_MODELS
from tb.rtl.npu.test_vector_ops import ALL_CONFIG_PARAMS, load

LAYERS = ("conv", "dw", "fc")
ACTIVATIONS = ("hard_swish", "tanh", "logistic")


def activation_model(layer: str, activation: str, seed: int = 3):
    """One MAC layer followed by ``activation`` (a Graph method name); wide enough input ranges that the table is
    indexed over most of its 256 entries."""
    g = Graph(f"act-{layer}-{activation}", seed)
    x = g.input((40,) if layer == "fc" else (8, 8, 12), lo=-2.0, hi=2.0)
    if layer == "conv":
        y = g.conv2d(x, 16, (3, 3), (1, 1), "SAME")
    elif layer == "dw":
        y = g.depthwise(x, (3, 3), (2, 2), "SAME")
    else:
        y = g.fully_connected(x, 24)
    g.output(getattr(g, activation)(y))
    return g.build()


@pytest.fixture(params=ALL_CONFIG_PARAMS)
def config(request):
    return request.param


def _mac_kicks(data, config):
    art = vela.compile_cached(data, config)
    return [k for k in cs.kicks(art.commands()) if k.name in ("NPU_OP_CONV", "NPU_OP_DEPTHWISE")]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("layer", LAYERS)
def test_fused_table_activation_is_bit_exact(config, layer, activation):
    model = activation_model(layer, activation)
    (kick,) = _mac_kicks(model.data, config)
    assert kick.reg("ACTIVATION") & 0xFFF == 16, "Vela did not fuse the activation into the MAC op as TABLE_0"
    want_ops = {"conv": "NPU_OP_CONV", "dw": "NPU_OP_DEPTHWISE", "fc": "NPU_OP_CONV"}
    assert kick.name == want_ops[layer]
    ref = ReferenceModel(model.data)
    for seed in (0, 1):
        run = run_on_npu(model.data, config, seed=seed)
        (want,) = ref.run_all(*run.inputs)
        (got,) = run.outputs
        np.testing.assert_array_equal(got, want)
        # the outputs span many table entries (a lookup one entry off changes some of them)
        assert len(np.unique(got)) >= 12


def _run_patched(config, art, words, x):
    """Load ``art`` with input ``x``, run the stream ``words`` instead of its own; (status, OFM)."""
    cfg = PRESETS[config]
    with SimDevice(NativeSim(build("npu", config))) as sim:
        lay = load(sim, cfg, art, [x])
        npu_driver.load_bytes(sim, lay.cmd_base, np.asarray(words, "<u4").tobytes())
        npu_driver.start(sim, lay.cmd_base, 4 * len(words), lay.basep)
        assert npu_driver.wait_done(sim, 200_000, chunk=64) is not None, "NPU did not finish"
        status = (sim.peek("error"), sim.peek("error_code"), sim.peek("compute_error"))
        (out,) = art.outputs
        return status, np.frombuffer(read_bytes(sim, lay.address(out), out.nbytes), np.int8)


def _patch(config, art, *, slot: int = 0, clip: int = 0):
    """The stream with its table DMA'd into ``slot`` (DMA0_DST + 256 * slot) and ACTIVATION = TABLE_slot with clip
    range ``clip``."""
    words = [int(w) for w in art.command_stream]
    lut_base = PRESETS[config].shram_bytes - 2048
    found = {"dst": 0, "act": 0}
    for c in cs.decode_stream(words):
        i = c.offset // 4
        if c.name == "NPU_SET_DMA0_DST" and c.value == lut_base:
            words[i + 1] = lut_base + 256 * slot
            found["dst"] += 1
        elif c.name == "NPU_SET_ACTIVATION" and c.param & 0xFFF == 16:
            words[i] = (words[i] & 0xFFFF) | ((16 + slot) << 16) | (clip << 28)
            found["act"] += 1
    assert found == {"dst": 1, "act": 1}, found
    return words


def test_table_slot_1(config):
    model = activation_model("conv", "tanh")
    art = vela.compile_model(model.data, f"ethos-u55-{PRESETS[config].macs}")
    ref = ReferenceModel(model.data)
    x = ref.random_input(np.random.default_rng(4), 0)
    (want,) = ref.run_all(x)
    status, got = _run_patched(config, art, _patch(config, art, slot=1), x.reshape(-1))
    assert status == (0, ErrorCode.OK, 0)
    np.testing.assert_array_equal(got, want.reshape(-1))


def test_vector_unit_table_slot_3(config):
    """Vela puts every vector-unit table of a small model in slot 0; the vector unit reads the SHRAM table of any slot
    (TABLE_0..7), which only a whole network's stream shows otherwise (MobileNetV2 on u55-128)."""
    model = LUT_MODELS["tanh_4x5x12"](0)
    art = vela.compile_cached(model, config)
    assert [k.name for k in cs.kicks(art.commands())] == ["NPU_OP_DMA_START", "NPU_OP_POOL"]
    ref = ReferenceModel(model)
    x = ref.random_input(np.random.default_rng(6), 0)
    (want,) = ref.run_all(x)
    status, got = _run_patched(config, art, _patch(config, art, slot=3), x.reshape(-1))
    assert status == (0, ErrorCode.OK, 0)
    np.testing.assert_array_equal(got, want.reshape(-1))


def test_table_with_another_clip_range_is_refused(config):
    model = activation_model("conv", "tanh")
    art = vela.compile_model(model.data, f"ethos-u55-{PRESETS[config].macs}")
    x = np.zeros(art.inputs[0].nbytes, np.int8)
    status, _ = _run_patched(config, art, _patch(config, art, clip=2), x)    # uint8 clip range on an int8 OFM
    assert status == (1, ErrorCode.COMPUTE_FAULT, ComputeError.UNSUPPORTED.value)
