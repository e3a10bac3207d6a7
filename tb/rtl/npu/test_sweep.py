"""Random-shape sweep of every NPU op on every U55 config (issue 4): CONV_2D (kernels 1x1..7x7, strides 1-2,
SAME/VALID, NONE/RELU/RELU6), DEPTHWISE_CONV_2D (likewise) and FULLY_CONNECTED, each a single-layer int8 model drawn
from a seed, compiled by Vela for the config, run on the Verilated NPU and compared with LiteRT's reference kernels.

CONV / DEPTHWISE must be bit-exact. FULLY_CONNECTED has the documented double-rounding gap (SPEC.md section 4): the
NPU must equal an independent numpy chain with the double rounding the stream asks for, LiteRT must equal the same
chain with a single rounding, and every output where the two differ must be one that
:func:`models.npu.requant.double_rounding_differs` predicts.

Fast tier: :data:`FAST_CASES` models per op per config (the first conv case is 7x7 with RELU6, the first depthwise
case RELU6; 30% of the cases take any output zero point), plus, on every config, the identity-POOL models
(activations Vela does not fuse) and weight streams longer than the brick RAM. ``slow``: :data:`SLOW_CASES` per op
per config, and the long streams and POOL models on a starved memory system. Vela compiles are cached
(``vela.compile_cached``), NPU builds by the build cache.
"""
import math
from dataclasses import dataclass

import numpy as np
import pytest

from drivers.npu import load_network, read_bytes, start, wait_done
from drivers.transport import SimDevice
from models.npu import cmdstream as cs
from models.npu import requant, vela
from models.npu import tflite_builder as tb
from models.npu.reference import ReferenceModel
from rtl.npu.compute import WEIGHT_BUFFER_BYTES
from rtl.npu.config import PRESETS, NpuConfig

CONFIGS = ("u55-32", "u55-64", "u55-128", "u55-256")
OPS = ("conv", "dw", "fc")
FAST_CASES = 2
SLOW_CASES = 20
TRIALS = 2          # random inputs per model
MAX_HW = 9
MAX_CHANNELS = 20
MAX_FC_IN = 80
ACTIVATIONS = ("NONE", "RELU", "RELU6")


@dataclass(frozen=True)
class Case:
    """One drawn model: a single layer on ``input_shape`` with the model seed and input zero point."""
    layer: tb.LayerSpec
    input_shape: tuple[int, ...]
    seed: int
    input_zero_point: int

    def model(self) -> tb.TfliteModel:
        return tb.single_layer(self.layer, self.input_shape, seed=self.seed, input_zero_point=self.input_zero_point)


def draw_case(rng: np.random.Generator, op: str, *, kernel: tuple[int, int] | None = None,
              activation: str | None = None) -> Case:
    """A random small single-layer model of kind ``op``; ``kernel``/``activation`` force those fields."""
    act = activation or ACTIVATIONS[int(rng.integers(0, len(ACTIVATIONS)))]
    seed, izp = int(rng.integers(0, 2**31)), int(rng.integers(-128, 128))
    # Sometimes any output zero point (the builder's default for RELU/RELU6 is <= -60), e.g. RELU clamping at +40.
    ozp = int(rng.integers(-128, 128)) if rng.random() < 0.3 else None
    if op == "fc":
        return Case(tb.FullyConnected(int(rng.integers(1, MAX_CHANNELS + 1)), act, ozp),
                    (int(rng.integers(1, MAX_FC_IN + 1)),), seed, izp)
    kh = kernel[0] if kernel else int(rng.integers(1, 8))
    kw = kernel[1] if kernel else int(rng.integers(1, 8))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = "SAME" if rng.random() < 0.5 else "VALID"
    h, w = int(rng.integers(1, MAX_HW + 1)), int(rng.integers(1, MAX_HW + 1))
    if padding == "VALID":      # the kernel must fit
        h, w = max(h, kh), max(w, kw)
    c = int(rng.integers(1, MAX_CHANNELS + 1))
    if op == "dw":
        layer = tb.DepthwiseConv2D((kh, kw), stride, padding, act, ozp)
    else:
        layer = tb.Conv2D(int(rng.integers(1, MAX_CHANNELS + 1)), (kh, kw), stride, padding, act, ozp)
    return Case(layer, (h, w, c), seed, izp)


def draw_cases(config: str, op: str, n: int, salt: int) -> list[Case]:
    """``n`` cases of ``op`` for ``config`` from a seed of (config, op, salt); the fast tier forces 7x7 + RELU6 into
    the first conv case and RELU6 into the first depthwise case."""
    rng = np.random.default_rng([salt, CONFIGS.index(config), OPS.index(op)])
    cases = []
    for i in range(n):
        forced = {}
        if i == 0 and op == "conv":
            forced = {"kernel": (7, 7), "activation": "RELU6"}
        elif i == 0 and op == "dw":
            forced = {"activation": "RELU6"}
        cases.append(draw_case(rng, op, **forced))
    return cases


# --- FULLY_CONNECTED golden (independent of the RTL; SPEC.md section 4) ---------------------------------------------

def _tflite_activation_range(act: str, scale: float, zp: int) -> tuple[int, int]:
    """TFLite's CalculateActivationRangeQuantized: RELU6's top is zp + round(6 / scale) in float32."""
    if act == "NONE":
        return -128, 127
    hi = 127 if act == "RELU" else min(127, zp + math.floor(float(np.float32(6.0) / np.float32(scale)) + 0.5))
    return max(-128, zp), hi


def fc_expectations(model: tb.TfliteModel, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(double-rounded, single-rounded, predicted-differs mask) of a single FULLY_CONNECTED layer on ``x``, with
    Vela's FC scale double(float32(s_in * s_w)) / s_out (SPEC.md section 5)."""
    (layer,) = model.layers
    scale, shift = (np.array(v) for v in zip(*(requant.quantise_scale(
        float(np.float64(np.float32(layer.input_scale) * ws) / np.float64(layer.output_scale)))
        for ws in layer.weight_scales), strict=True))
    lo, hi = _tflite_activation_range(layer.spec.activation, layer.output_scale, layer.output_zero_point)
    acc = requant.layer_accumulators(layer, x)
    args = (acc, layer.bias, scale, shift, layer.output_zero_point, lo, hi)
    v = (acc + layer.bias.astype(np.int64)).reshape(-1)
    differs = np.array([requant.double_rounding_differs(int(v[i]), int(scale[i % len(scale)]),
                                                        int(shift[i % len(shift)])) for i in range(v.size)])
    return requant.requantize(*args).reshape(-1), requant.litert_fc_requantize(*args).reshape(-1), differs


# --- running ------------------------------------------------------------------------------------------------------

def run_case(sim, config: str, case: Case, rng: np.random.Generator, cfg: NpuConfig | None = None) -> list[str]:
    """Compile ``case`` for ``config``, run :data:`TRIALS` random inputs on ``sim`` (built from ``cfg``, default
    the preset) and check them; returns the kernel op names of the stream."""
    cfg = cfg or PRESETS[config]
    model = case.model()
    art = vela.compile_cached(model, config)
    ops = [k.name.removeprefix("NPU_OP_") for k in cs.kicks(art.commands()) if k.name in cs.KERNEL_OPS]
    ref = ReferenceModel(model)
    for trial in range(TRIALS):
        x = ref.random_input(rng)
        want = ref.run(x).reshape(-1)
        lay = load_network(sim, art, x, cfg.ext_mem_bytes)
        start(sim, lay.cmd_addr + art.header.stream_offset, 4 * len(art.command_stream), lay.basep)
        assert wait_done(sim, 400_000, chunk=64) is not None, f"{case} did not finish"
        status = (sim.peek("error"), sim.peek("error_code"), sim.peek("ext_fault"), sim.peek("compute_error"))
        assert status == (0, 0, 0, 0), (config, case, ops, status)
        (out,) = art.outputs
        got = np.frombuffer(read_bytes(sim, lay.basep[out.region] + out.offset, out.nbytes), dtype=np.int8)
        what = f"{config} {model.spec.name} {ops} trial {trial}"
        if isinstance(case.layer, tb.FullyConnected):
            double, single, differs = fc_expectations(model, x)
            np.testing.assert_array_equal(single, want, err_msg=f"single-rounding chain vs LiteRT: {what}")
            np.testing.assert_array_equal(got, double, err_msg=f"NPU vs double-rounding chain: {what}")
            assert not np.any((got != want) & ~differs), what
        else:
            np.testing.assert_array_equal(got, want, err_msg=what)
    return ops


def sweep(config: str, n: int, salt: int) -> None:
    rng = np.random.default_rng([salt, CONFIGS.index(config)])
    with SimDevice.open("npu", config) as sim:
        for op in OPS:
            for case in draw_cases(config, op, n, salt):
                ops = run_case(sim, config, case, rng)
                print(f"{config} {case.model().spec.name}: {ops} ok")


@pytest.mark.parametrize("config", CONFIGS)
def test_sweep_fast(config):
    sweep(config, FAST_CASES, salt=0)


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
def test_sweep_slow(config):
    sweep(config, SLOW_CASES, salt=1)


#: Models whose activation Vela cannot fuse: their streams end in an identity NPU_OP_POOL (SPEC.md section 3), in
#: place or into a new buffer.
POOL_CASES = (
    Case(tb.Conv2D(1, (2, 3), padding="VALID", activation="RELU"), (10, 8, 12), 3, 5),
    Case(tb.DepthwiseConv2D((5, 5), activation="RELU6"), (10, 3, 6), 1, 0),
)


@pytest.mark.parametrize("config", CONFIGS)
def test_identity_pool_activation(config):
    """Regression: the compute unit used to refuse every POOL with UNSUPPORTED, so these models failed."""
    rng = np.random.default_rng(11)
    with SimDevice.open("npu", config) as sim:
        for case in POOL_CASES:
            ops = run_case(sim, config, case, rng)
            assert ops[-1] == "POOL", ops



#: Decoded weight streams longer than one 32 KiB brick-RAM bank; the conv's is longer than the whole brick RAM (a
#: ring of 2 x WEIGHT_BUFFER_BYTES), so it wraps: the loader must wait for the engine to finish an OFM block before
#: overwriting its bricks.
LONG_STREAMS = (
    Case(tb.FullyConnected(60, activation="RELU6"), (1000,), 4, -9),
    Case(tb.Conv2D(50, kernel=(3, 5)), (8, 8, 55), 2, 7),
    Case(tb.Conv2D(96, kernel=(3, 3)), (5, 5, 120), 4, 3),
)


@pytest.mark.parametrize("config", CONFIGS)
def test_weight_stream_longer_than_buffer(config):
    """Regression: such ops used to be refused with UNSUPPORTED (the whole stream had to fit one bank). On u55-256
    Vela makes the 96-channel conv one 110 KB block, larger than the ring: it runs in IFM-depth passes (split; more
    such ops in test_big_ops.py)."""
    rng = np.random.default_rng(9)
    with SimDevice.open("npu", config) as sim:
        for case in LONG_STREAMS:
            assert case.model().layers[0].weights.size > WEIGHT_BUFFER_BYTES
            run_case(sim, config, case, rng)


#: u55-128 with a starved memory system (latency 40, 1 byte/cycle) and a 4 KiB IFM line buffer: the decoder waits for
#: ring room, beats wait for bricks and IFM rows, the POOL's in-place writes are back-pressured.
STARVED = NpuConfig(**{**PRESETS["u55-128"].__dict__, "shram_kib": 4, "ext_latency": 40, "ext_bandwidth": 1})


@pytest.mark.slow
def test_starved_memory_long_streams_and_pool():
    rng = np.random.default_rng(2)
    with SimDevice.open("npu", STARVED) as sim:
        for case in (*LONG_STREAMS, *POOL_CASES):
            run_case(sim, "u55-128", case, rng, STARVED)
