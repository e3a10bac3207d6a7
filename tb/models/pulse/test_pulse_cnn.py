"""models.pulse: the numpy CNN (gradients), its TFLite export (int8 and 16x8) against LiteRT, and the checked-in
model: contract op subset, input scheme, outputs within quantisation error of the float network."""
import numpy as np
import pytest

from models.pulse.cnn import ARCHITECTURE, Network, fake_quantise
from models.pulse.export import export, load_model, run_litert
from models.pulse.frontend import ADC_BITS, WINDOW, generate
from models.pulse.resolution import FLOAT_WEIGHTS, MODEL

CONTRACT_OPS = {"CONV_2D", "MAX_POOL_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED"}


def _random_net(seed=0):
    rng = np.random.default_rng(seed)
    net = Network(ARCHITECTURE())
    for layer in net.layers:
        if layer.params:
            layer.init(rng)
            layer.b = rng.normal(0, 0.1, layer.b.shape)
    return net


def test_backward_matches_finite_differences():
    net = _random_net()
    rng = np.random.default_rng(1)
    x, g = rng.normal(size=(3, WINDOW)), rng.normal(size=(3, 2))
    net.forward(x)
    grads = net.backward(g)
    for p, grad in zip(net.params, grads, strict=True):
        for _ in range(3):
            i = tuple(rng.integers(0, s) for s in p.shape)
            old, h = p[i], 1e-6
            p[i] = old + h
            up = (net.forward(x) * g).sum()
            p[i] = old - h
            down = (net.forward(x) * g).sum()
            p[i] = old
            assert grad[i] == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-8)


def test_fake_quantise_is_tflite_per_channel_int8():
    w = np.random.default_rng(2).normal(size=(4, 5, 3))
    q = fake_quantise(w)
    scale = np.abs(w).reshape(4, -1).max(axis=1) / 127
    steps = q.reshape(4, -1) / scale[:, None]
    assert np.allclose(steps, np.rint(steps)) and np.abs(steps).max() <= 127 + 1e-9
    assert np.all(np.abs(q - w).reshape(4, -1) <= scale[:, None] / 2 + 1e-12)
    assert np.array_equal(fake_quantise(q), q)          # idempotent: exported weights are what was trained


@pytest.mark.parametrize("scheme", ["int8", "16x8"])
def test_export_runs_under_litert_close_to_float(scheme):
    """An untrained network with its weights put on their int8 grid, exported: what separates LiteRT from the float
    output is then only the activation (and input) rounding -- 8-bit for int8, 16-bit for 16x8."""
    net = _random_net(3)
    for layer in net.layers:
        if layer.params:
            layer.w = fake_quantise(layer.w)
    cal = generate(500, (30, 60), seed=6).samples
    model = export(net, cal, scheme)
    p = generate(200, 45.0, seed=7)
    ints = model.quantise(p.samples)
    assert ints.dtype == (np.int8 if scheme == "int8" else np.int16)
    got = model.dequantise(run_litert(model, ints))
    want = net.forward(p.samples)
    spread = np.abs(want).max()
    tol = (0.05 if scheme == "int8" else 0.0005) * spread
    assert np.abs(got - want).max() < tol


@pytest.fixture(scope="module")
def checked_in():
    return load_model(MODEL), Network.load(FLOAT_WEIGHTS)


def test_checked_in_model_follows_the_contract(checked_in):
    from ai_edge_litert.interpreter import Interpreter

    model, net = checked_in
    assert MODEL.stat().st_size < 64 * 1024
    it = Interpreter(model_content=model.data)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    assert tuple(inp["shape"]) == (1, 1, WINDOW, 1) and tuple(out["shape"]) == (1, 2)
    assert {op["op_name"] for op in it._get_ops_details()} <= CONTRACT_OPS
    assert model.scheme == "16x8" and np.dtype(inp["dtype"]) == np.int16
    # 16x8 input: a 14-bit ADC code c enters exactly as 2c
    assert model.input_quant == (2.0 ** -15, 0)
    codes = np.arange(0, 2 ** ADC_BITS, 97)
    assert np.array_equal(model.quantise(codes / 2.0 ** ADC_BITS), 2 * codes)
    # float weights are already on their int8 grid (quantisation-aware training)
    for layer in net.layers:
        if layer.params:
            assert np.allclose(fake_quantise(layer.w), layer.w, rtol=1e-9, atol=1e-15)


def test_checked_in_model_under_litert_matches_float(checked_in):
    """LiteRT (reference kernels) vs the float network on the same pulses: with the weights on their int8 grid and
    the input exact, what is left is int16 activation rounding; the difference stays within a few output steps and
    far below the CRLB (47.4 dB: 0.006 samples, 0.24%)."""
    model, net = checked_in
    p = generate(400, (30, 60), seed=8)
    got = model.dequantise(run_litert(model, model.quantise(p.samples)))
    want = net.forward(p.samples)
    lsb = model.output_quant[0]
    diff = np.abs(got - want)
    assert diff.max() <= 6 * lsb, diff.max() / lsb
    assert diff.mean() <= 1.5 * lsb, diff.mean() / lsb
