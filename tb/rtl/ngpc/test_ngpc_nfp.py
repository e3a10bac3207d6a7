"""rtl.ngpc neural-fields processor (fixture ngpc_nfp): encoder feeding the MLP, bit-exact with the two golden
models chained, one query per cycle."""
import numpy as np
import pytest

from drivers.ngpc import NfpHost
from models.ngpc.golden import encode_fixed
from models.ngpc.mlp import mlp_fixed, random_weights
from rtl.designs import get_design
from sim.build import build
from sim.harness import NativeSim


@pytest.mark.parametrize("preset", ["hash2d-w16", pytest.param("hash3d-w16", marks=pytest.mark.slow)])
def test_bit_exact_one_query_per_cycle(preset):
    config = get_design("ngpc_nfp").config(preset)
    enc, mlp = config.encoder, config.mlp
    rng = np.random.default_rng(5)
    tables = [rng.integers(-4096, 4096, (lv.params, enc.features)) for lv in enc.level_geometry]
    weights = random_weights(mlp, rng)
    u = rng.integers(0, 1 << enc.pos_bits, (3000, enc.dims))
    with NativeSim(build("ngpc_nfp", preset)) as sim:
        host = NfpHost(sim, config)
        host.load(tables, weights)
        result = host.run(u, ready=np.r_[np.ones(1000, np.uint32), rng.integers(0, 2, 1000)])
    features = encode_fixed(enc.grid_config, tables, u[result.accepted])
    padded = np.pad(features, ((0, 0), (0, mlp.inputs - features.shape[1])))
    assert np.array_equal(result.features, mlp_fixed(mlp, weights, padded))
    assert result.first_output - result.first_accept == config.latency
    assert result.accepted[:1000].tolist() == list(range(1000))       # no stall while the output is always taken
