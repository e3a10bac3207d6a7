"""models.ngpc training: the training forward is the float reference's, the gradients are the loss's, training on each
scene reduces the loss and reaches a stated quality; quantisation to the NFP formats stays close to the float
network."""
import numpy as np
import pytest

from models.ngpc.quantize import quantize_field
from models.ngpc.reference import encode_float
from models.ngpc.render import psnr
from models.ngpc.scenes import SCENES
from models.ngpc.train import _encode, _grads, fit, init_field
from rtl.designs import get_design

SMALL = {"gia": "hash2d-w16", "nsdf": "hash3d-w16", "nerf": "hash3d-w16"}


def _net(preset, outputs, seed=0):
    nfp = get_design("ngpc_nfp").config(preset)
    rng = np.random.default_rng(seed)
    net = init_field(nfp.encoder.grid_config, nfp.mlp.width, nfp.mlp.hidden_layers, outputs, rng)
    for table in net.tables:           # away from the +-1e-4 start, so the features matter
        table[:] = rng.uniform(-1, 1, table.shape)
    return nfp, net, rng


def test_training_forward_is_the_float_reference():
    _, net, rng = _net("hash3d-w16", 4)
    x = rng.random((500, 3)).astype(np.float32)
    assert np.array_equal(_encode(net, x)[0], encode_float(net.grid, net.tables, x))


def test_gradients_match_finite_differences():
    _, net, rng = _net("hash2d-w16", 3, seed=1)
    net.tables = [t.astype(np.float64) for t in net.tables]
    net.weights = [w.astype(np.float64) for w in net.weights]
    x, y = rng.random((64, 2)).astype(np.float32), rng.random((64, 3))
    cw = np.array([1.0, 2.0, 0.5])
    _, grads = _grads(net, x, y, cw)
    params = net.tables + net.weights

    def loss():
        return float(np.mean(cw * (net(x) - y) ** 2))

    checked = 0
    for which in (0, 3, len(net.tables), len(params) - 1):
        p, g = params[which], grads[which]
        for flat in np.argsort(-np.abs(g).ravel())[:3]:          # the entries with the largest gradients
            i = np.unravel_index(flat, p.shape)
            keep, h = p[i], 1e-3
            p[i] = keep + h
            up = loss()
            p[i] = keep - h
            down = loss()
            p[i] = keep
            assert (up - down) / (2 * h) == pytest.approx(g[i], rel=2e-3, abs=1e-6), (which, i)
            checked += 1
    assert checked == 12


@pytest.mark.parametrize("scene,bar", [("gia", 18.0), ("nsdf", None), ("nerf", 14.0)])
def test_training_reduces_loss_small(scene, bar):
    """Small engines (the 16-wide test presets), 150 steps of 4096 samples: loss down 10x, a floor on quality."""
    spec = SCENES[scene]
    nfp, _, _ = _net(SMALL[scene], spec.outputs)
    rng = np.random.default_rng(0)
    net = init_field(nfp.encoder.grid_config, nfp.mlp.width, nfp.mlp.hidden_layers, spec.outputs, rng)
    log = fit(net, spec.sample, 150, 4096, rng)
    assert np.mean(log.losses[-10:]) < log.losses[0] / 10
    if bar is not None:
        assert psnr(spec.render(net, 32), spec.render(spec.truth, 32)) > bar
    else:
        x, y = spec.sample(np.random.default_rng(9), 4096)
        assert np.mean(np.abs(net(x) - y)) < 0.01          # SDF in unit-cube lengths


def test_quantised_network_is_close_to_the_float_one():
    spec = SCENES["gia"]
    nfp, _, _ = _net(SMALL["gia"], 3)
    rng = np.random.default_rng(0)
    net = init_field(nfp.encoder.grid_config, nfp.mlp.width, nfp.mlp.hidden_layers, 3, rng)
    fit(net, spec.sample, 100, 4096, rng)
    fixed = quantize_field(net, nfp, spec.sample(rng, 4096)[0])
    assert all(w.shape == s for w, s in zip(fixed.weights, nfp.mlp.layer_shapes, strict=True))
    image = spec.render(net, 32)
    assert psnr(spec.render(fixed, 32), image) > 40
    # a wrong output scale is caught: the same integers read one bit off are far from the float network
    assert psnr(np.clip(spec.render(fixed, 32) * 2, 0, 1), image) < 20


@pytest.mark.slow
@pytest.mark.parametrize("scene", ["gia", "nsdf", "nerf"])
def test_default_training_quality(scene):
    """The CLI defaults (scene presets and steps): stated quality bars, float vs analytic and fixed vs float."""
    from models.ngpc.scenes import trained_field

    spec = SCENES[scene]
    nfp = get_design("ngpc_nfp").config(spec.preset)
    net, losses, _, _ = trained_field(spec, nfp)
    assert np.mean(losses[-20:]) < losses[0] / 50
    rng = np.random.default_rng(3)
    fixed = quantize_field(net, nfp, spec.sample(rng, 1 << 14)[0])
    x, y = spec.sample(rng, 1 << 14)
    if scene == "nsdf":
        assert np.mean(np.abs(net(x) - y)) < 0.003
        assert np.mean(np.abs(fixed(x) - net(x))) < 0.0005
        return
    float_image = spec.render(net, 64)
    assert psnr(float_image, spec.render(spec.truth, 64)) > {"gia": 30, "nerf": 25}[scene]
    assert psnr(spec.render(fixed, 64), float_image) > 35
