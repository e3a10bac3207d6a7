"""models.ngpc.mlp: the fixed-point MLP golden model on a case worked by hand and against float."""
import numpy as np
import pytest

from models.ngpc.mlp import MlpConfig, mlp_fixed, mlp_float, random_weights


def test_shapes_and_macs_follow_fully_fused_mlp():
    config = MlpConfig(inputs=32, width=64, hidden_layers=2, outputs=16)
    assert config.layer_shapes == [(64, 32), (64, 64), (16, 64)]
    assert config.macs == 64 * 32 + 64 * 64 + 16 * 64
    for bad in (dict(width=48), dict(inputs=20), dict(hidden_layers=0), dict(weight_frac=8)):
        with pytest.raises(ValueError):
            MlpConfig(**bad)


def test_worked_by_hand():
    # weight_frac 6: weight 64 is 1.0, 32 is 0.5, -64 is -1. Input a = (100, -50, 0...).
    config = MlpConfig(inputs=16, width=16, hidden_layers=1, outputs=16, act_bits=10)
    w0 = np.zeros((16, 16), int)
    w0[0, :2] = [64, 32]        # 100 - 25 = 75
    w0[1, :2] = [-64, 0]        # -100 -> ReLU 0
    w0[2, :2] = [127, 127]      # (127*100 - 127*50) / 64 = 99.2 -> 99
    w0[3, 0] = 127              # 12700 / 64 = 198.4 -> 198
    w1 = np.zeros((16, 16), int)
    w1[0, 0], w1[0, 1] = 64, 64         # 75 + 0
    w1[1, 2] = -32                      # -49.5 -> (-3168 + 32) >> 6 = -49 (round half up)
    w1[2, 2:4] = [127, 127]             # 127 * (99 + 198) / 64 = 589.4 -> saturates at 511 (act_bits 10)
    x = np.zeros((1, 16), int)
    x[0, :2] = [100, -50]
    out = mlp_fixed(config, [w0, w1], x)[0]
    assert out[:4].tolist() == [75, -49, 511, 0]


def test_fixed_tracks_float_without_saturation():
    config = MlpConfig(inputs=16, width=64, hidden_layers=2, outputs=16)
    rng = np.random.default_rng(0)
    weights = [w // 8 for w in random_weights(config, rng)]          # small weights: no saturation
    x = rng.integers(-2000, 2000, (500, 16))
    got = mlp_fixed(config, weights, x)
    ref = mlp_float([w / 64 for w in weights], x)
    assert np.abs(got).max() < 2 ** 15 - 1
    # each layer rounds by <= 1/2 LSB; an error e grows to at most e * max row sum of |w|/64 through a later layer
    bound = 0.0
    for w in weights:
        bound = bound * np.abs(w / 64).sum(axis=1).max() + 0.5
    assert np.abs(got - ref).max() <= bound
