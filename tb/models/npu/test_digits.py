"""The 8x8-digits CNN: numpy training (gradients, determinism, cache), post-training int8 quantisation (float vs
int8 held-out accuracy within 1 point), Vela mapping (nothing on the CPU) and the CNN on every NPU config, bit-exact
against LiteRT's reference kernels.

The trained model comes from the on-disk cache (``<rampart cache>/models``; ~6 s to train when this file's model code
changed). The NPU tests share the cached ``npu`` builds (one per config: minutes each when rtl/ changed)."""
import numpy as np
import pytest

from models.npu import digits as dg
from models.npu import tflite_builder as tb
from models.npu import vela
from models.npu.reference import ReferenceModel

CONFIGS = ("u55-32", "u55-64", "u55-128", "u55-256")


@pytest.fixture(scope="module")
def model():
    return dg.digits_model()


@pytest.fixture(scope="module")
def reference(model):
    return ReferenceModel(model.data)


# --- data ----------------------------------------------------------------------------------------------------------

def test_split_is_fixed_disjoint_and_complete():
    a, b = dg.load_split(0), dg.load_split(0)
    assert np.array_equal(a.y_test, b.y_test) and np.array_equal(a.x_train, b.x_train)
    assert len(a.y_test) == round(0.3 * 1797) and len(a.y_train) + len(a.y_test) == 1797
    assert not np.array_equal(dg.load_split(1).y_test, a.y_test)
    # every image once: compare the multisets of flattened images
    from sklearn.datasets import load_digits

    everything = np.concatenate([a.x_train, a.x_test]).reshape(1797, 64) * 16
    want = load_digits().images.reshape(1797, 64)
    assert np.array_equal(np.sort(everything, axis=0), np.sort(want, axis=0))


def test_input_quantisation_is_exact():
    x = dg.load_split(0).x_test
    q = dg.quantize_input(x)
    assert q.dtype == np.int8 and q.min() >= -128 and q.max() <= -128 + 16
    assert np.array_equal(dg.dequantize_input(q), x)


# --- float model ---------------------------------------------------------------------------------------------------

def _naive_conv(x, w, b, stride, padding):
    """Direct loops over a TFLite-padded input (independent of the im2col code)."""
    n, h, wd, c = x.shape
    o, kh, kw, _ = w.shape
    if padding == "SAME":
        oh, ow = -(-h // stride), -(-wd // stride)
        th, tw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - wd, 0)
        x = np.pad(x, ((0, 0), (th // 2, th - th // 2), (tw // 2, tw - tw // 2), (0, 0)))
    else:
        oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    y = np.zeros((n, oh, ow, o))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            y[:, i, j, :] = np.einsum("nhwc,ohwc->no", patch, w) + b
    return y


def test_float_model_matches_direct_convolution():
    rng = np.random.default_rng(4)
    params = dg._init(rng)
    for p in params:
        p.bias[:] = rng.normal(0.0, 0.1, p.bias.shape)
    x = rng.random((3, 8, 8, 1))
    h = x
    for layer, p in zip(dg.SPEC.layers, params, strict=True):
        h = _naive_conv(h, p.weights, p.bias, layer.stride[0], layer.padding)
        if layer.activation == "RELU":
            h = np.maximum(h, 0)
    np.testing.assert_allclose(dg.float_logits(params, x), h.reshape(3, -1), rtol=1e-10, atol=1e-12)


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(3)
    params = dg._init(rng)
    for p in params:
        p.bias[:] = rng.normal(0.0, 0.1, p.bias.shape)
    x, y = rng.random((4, 8, 8, 1)), rng.integers(0, 10, 4)
    _, grads = dg._gradients(params, x, y)
    eps = 1e-6
    for li, p in enumerate(params):
        for which, arr in enumerate((p.weights, p.bias)):
            for _ in range(3):
                idx = tuple(int(rng.integers(0, s)) for s in arr.shape)
                old = arr[idx]
                arr[idx] = old + eps
                up = dg._gradients(params, x, y)[0]
                arr[idx] = old - eps
                down = dg._gradients(params, x, y)[0]
                arr[idx] = old
                assert grads[li][which][idx] == pytest.approx((up - down) / (2 * eps), rel=1e-4, abs=1e-7)


def test_training_is_deterministic_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("RAMPART_CACHE", str(tmp_path))
    cfg = dg.TrainConfig(seed=5, epochs=1)
    first = dg.trained_params(cfg)
    assert len(list((tmp_path / "models").glob("digits-*.npz"))) == 1
    again = dg.train(cfg)
    cached = dg.trained_params(cfg)
    for a, b, c in zip(first, again, cached, strict=True):
        assert np.array_equal(a.weights, b.weights) and np.array_equal(a.bias, b.bias)
        assert np.array_equal(a.weights, c.weights) and np.array_equal(a.bias, c.bias)
    other = dg.train(dg.TrainConfig(seed=6, epochs=1))
    assert not np.array_equal(other[0].weights, first[0].weights)


def test_bad_train_config():
    with pytest.raises(ValueError, match="held_out"):
        dg.TrainConfig(held_out=1.5)


# --- quantisation --------------------------------------------------------------------------------------------------

def test_quantize_parameters_follows_the_tflite_scheme(model):
    in_scale = dg.INPUT_SCALE
    for p, fl, (lo, hi) in zip(model.tflite.layers, model.params, model.output_ranges, strict=True):
        w = fl.weights.reshape(fl.weights.shape[0], -1)
        qw = p.weights.reshape(len(w), -1)
        assert p.weights.dtype == np.int8 and np.all(np.abs(qw).max(axis=1) == 127)  # symmetric, full range
        deq = qw * p.weight_scales[:, None].astype(np.float64)
        assert np.all(np.abs(deq - w) <= p.weight_scales[:, None] * 0.5 + 1e-12)
        bias_scale = in_scale * p.weight_scales.astype(np.float64)
        assert np.all(np.abs(p.bias * bias_scale - fl.bias) <= bias_scale * 0.5 + 1e-12)
        # the calibrated range maps onto -128..127 with 0 exact
        assert -128 <= p.output_zero_point <= 127
        assert (-128 - p.output_zero_point) * p.output_scale == pytest.approx(min(lo, 0.0), abs=p.output_scale)
        assert (127 - p.output_zero_point) * p.output_scale == pytest.approx(hi, abs=p.output_scale)
        in_scale = p.output_scale
    relu = [p.output_zero_point for p in model.tflite.layers[:-1]]
    assert relu == [-128] * len(relu)  # ReLU outputs start at 0


def test_quantize_parameters_rejects_wrong_shapes():
    spec = tb.ModelSpec((4, 4, 2), (tb.Conv2D(3, (3, 3)),))
    good = tb.FloatLayer(np.ones((3, 3, 3, 2)), np.zeros(3))
    assert tb.quantize_parameters(spec, [good], [(0.0, 1.0)])[0].weights.shape == (3, 3, 3, 2)
    with pytest.raises(tb.SpecError, match="do not fit"):
        tb.quantize_parameters(spec, [tb.FloatLayer(np.ones((3, 3, 3, 1)), np.zeros(3))], [(0.0, 1.0)])
    with pytest.raises(tb.SpecError, match="range"):
        tb.quantize_parameters(spec, [good], [(1.0, float("nan"))])
    with pytest.raises(tb.SpecError, match="params do not belong"):
        tb.build_model(spec, tb.draw_parameters(tb.ModelSpec((4, 4, 2), (tb.Conv2D(4, (3, 3)),))))


def test_depthwise_and_fc_quantisation_run_in_litert():
    """quantize_parameters on the other layer kinds: the int8 model tracks the float computation."""
    rng = np.random.default_rng(2)
    spec = tb.ModelSpec((5, 5, 3), (tb.DepthwiseConv2D((3, 3), activation="RELU"), tb.FullyConnected(4)),
                        input_scale=1 / 64, input_zero_point=0)
    dw = tb.FloatLayer(rng.normal(0, 0.5, (1, 3, 3, 3)), rng.normal(0, 0.1, 3))
    fc = tb.FloatLayer(rng.normal(0, 0.3, (4, 75)), rng.normal(0, 0.1, 4))
    x = rng.integers(-64, 64, (1, 5, 5, 3))
    xr = np.pad(x / 64.0, ((0, 0), (1, 1), (1, 1), (0, 0)))
    h = np.zeros((5, 5, 3))
    for i in range(5):
        for j in range(5):
            h[i, j] = (xr[0, i:i + 3, j:j + 3, :] * dw.weights[0]).sum(axis=(0, 1)) + dw.bias
    h = np.maximum(h, 0)
    y = fc.weights @ h.reshape(-1) + fc.bias
    ranges = [(0.0, float(h.max()) * 1.1), (float(y.min()) * 1.1, float(y.max()) * 1.1)]
    m = tb.build_model(spec, tb.quantize_parameters(spec, [dw, fc], ranges))
    out = ReferenceModel(m).run(x.astype(np.int8))
    p = m.layers[-1]
    np.testing.assert_allclose((out.astype(np.float64) - p.output_zero_point) * p.output_scale, y[None],
                               atol=6 * p.output_scale)


def test_float_vs_int8_held_out_accuracy(model):
    n = len(model.split.y_test)
    f, q = model.float_accuracy(), model.int8_accuracy()
    print(f"\ndigits CNN held-out ({n}): float {f:.2%}, int8 (LiteRT) {q:.2%}")
    assert f > 0.93
    assert abs(f - q) <= 0.01
    # the int8 graph computes the float graph's function: classes agree on almost every held-out image
    agree = (model.float_predictions() == model.int8_predictions()).mean()
    assert agree >= 0.98


# --- Vela and the NPU ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS)
def test_every_layer_maps_to_the_npu(model, config):
    assert vela.cpu_operators(model.data, f"ethos-{config}") == ()


@pytest.mark.parametrize("config", CONFIGS)
def test_digits_on_npu_bit_exact(model, reference, config):
    from drivers.npu import run_on_npu

    x, label = model.held_out_input(1)
    result = run_on_npu(model.data, config, x)
    want = reference.run(x)
    assert result.ok and np.array_equal(result.output, want)
    assert len(result.layers) == len(dg.SPEC.layers) and all(la.vela_cycles for la in result.layers)
    print(f"\ndigits on {config}: {result.cycles} cycles (Vela {result.vela.total_cycles}), class "
          f"{int(np.argmax(result.output))}, label {label}")


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
def test_digits_on_npu_many_images(model, reference, config):
    from drivers.npu import run_on_npu

    classes = []
    for i in range(24):
        x, _ = model.held_out_input(i)
        out = run_on_npu(model.data, config, x).output
        assert np.array_equal(out, reference.run(x)), f"held-out image {i}"
        classes.append(int(np.argmax(out)))
    assert np.mean(np.asarray(classes) == model.split.y_test[:24]) >= 0.85
