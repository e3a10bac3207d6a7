"""rtl.ngpc MLP engine (fixture ngpc_mlp) in the native harness: bit-exact with models.ngpc.mlp, one query per cycle."""
import numpy as np
import pytest

from drivers.ngpc import MlpHost
from models.ngpc.mlp import mlp_fixed, random_weights
from rtl.designs import get_design
from sim.build import build
from sim.harness import NativeSim


def run(preset, n, seed, ready=None):
    config = get_design("ngpc_mlp").config(preset)
    rng = np.random.default_rng(seed)
    weights = random_weights(config, rng)
    half = 1 << (config.act_bits - 1)
    # full-range inputs saturate often; quarter-range ones mostly do not: both paths are exercised
    x = np.concatenate([rng.integers(-half, half, (n // 2, config.inputs)),
                        rng.integers(-half // 64, half // 64, (n - n // 2, config.inputs))])
    with NativeSim(build("ngpc_mlp", preset)) as sim:
        host = MlpHost(sim, config)
        host.load_weights(weights)
        result = host.run(x, ready=None if ready is None else ready(n, rng))
    return config, weights, x, result


def test_w16_bit_exact_one_query_per_cycle():
    config, weights, x, result = run("w16", 4000, seed=1)
    expected = mlp_fixed(config, weights, x)
    assert np.array_equal(result.features, expected)
    sat = (1 << (config.act_bits - 1)) - 1
    assert (np.abs(expected) >= sat).any() and (np.abs(expected) < sat).mean() > 0.3    # both regimes seen
    assert result.first_output - result.first_accept == len(config.layer_shapes)
    assert result.queries_per_cycle == 1.0 and config.macs == 512


def test_w16_bit_exact_under_back_pressure():
    config, weights, x, result = run("w16", 1500, seed=2, ready=lambda n, rng: rng.integers(0, 2, n))
    assert 0 < len(result.accepted) < len(x)
    assert np.array_equal(result.features, mlp_fixed(config, weights, x[result.accepted]))


@pytest.mark.slow
def test_w64_bit_exact():
    config, weights, x, result = run("w64", 20_000, seed=3)
    assert np.array_equal(result.features, mlp_fixed(config, weights, x))
    assert result.queries_per_cycle == 1.0
