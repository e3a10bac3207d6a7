"""rtl.ngpc cluster (design ngpc): N lanes bit-exact with the chained golden models, one batch of N queries per
cycle, lanes in lock step under back-pressure."""
import numpy as np
import pytest

from drivers.ngpc import ClusterHost
from models.ngpc.golden import encode_fixed
from models.ngpc.mlp import mlp_fixed, random_weights
from rtl.designs import get_design
from sim.build import build
from sim.harness import NativeSim


def golden_results(config, tables, weights, u):
    enc, mlp = config.nfp.encoder, config.nfp.mlp
    features = encode_fixed(enc.grid_config, tables, u)
    return mlp_fixed(mlp, weights, np.pad(features, ((0, 0), (0, mlp.inputs - features.shape[1]))))


@pytest.mark.parametrize("preset", ["hash2d-x2", pytest.param("hash2d-x4", marks=pytest.mark.slow)])
def test_bit_exact_one_query_per_cycle_per_lane(preset):
    config = get_design("ngpc").config(preset)
    enc, n = config.nfp.encoder, config.lanes
    rng = np.random.default_rng(11)
    tables = [rng.integers(-4096, 4096, (lv.params, enc.features)) for lv in enc.level_geometry]
    weights = random_weights(config.nfp.mlp, rng)
    batches = 1500
    u = rng.integers(0, 1 << enc.pos_bits, (batches * n - 1, enc.dims))      # the last batch is padded
    with NativeSim(build("ngpc", preset)) as sim:
        host = ClusterHost(sim, config)
        host.load(tables, weights)
        result = host.run(u, ready=np.r_[np.ones(1000, np.uint32), rng.integers(0, 2, 500)])
    taken = (result.accepted[:, None] * n + np.arange(n)).reshape(-1)
    padded = np.concatenate([u, u[:1]])
    assert np.array_equal(result.features, golden_results(config, tables, weights, padded[taken]))
    assert result.first_output - result.first_accept == config.latency
    assert result.accepted[:1000].tolist() == list(range(1000))      # one batch (N queries) per cycle
    assert 0 < len(result.accepted) < batches                        # back-pressure refused some batches
    assert len(result.features) == len(result.accepted) * n


def test_mac_count_and_blocks():
    config = get_design("ngpc").config("hash2d-x2")
    assert config.macs_per_lane == 16 * 16 + 16 * 16
    design = get_design("ngpc")
    assert design.block_of("lane_1.mlp.layer_0.w_3") == "mlp_weights"
    assert design.block_of("lane_1.mlp.layer_0.y__3") == "mlp_array"
    assert design.block_of("lane_0.encoder.level_2.table.bank_1") == "table_srams"
    assert design.block_of("dispatcher.buffer.x") == "query_buffer"


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["fpga-x1", "fpga-w2-x1"])
def test_fpga_presets_bit_exact(preset):
    """The FPGA-sized presets (8-bit features and activations, 4- or 2-bit weights) against the golden models."""
    config = get_design("ngpc").config(preset)
    enc = config.nfp.encoder
    rng = np.random.default_rng(5)
    half = 1 << (enc.feature_bits - 1)
    tables = [rng.integers(-half, half, (lv.params, enc.features)) for lv in enc.level_geometry]
    weights = random_weights(config.nfp.mlp, rng)
    u = rng.integers(0, 1 << enc.pos_bits, (400, enc.dims))
    with NativeSim(build("ngpc", preset)) as sim:
        host = ClusterHost(sim, config)
        host.load(tables, weights)
        result = host.run(u)
    want = golden_results(config, tables, weights, u)
    assert np.array_equal(result.features[:len(u)], want)
    assert np.count_nonzero(want) > len(u)          # the check is not vacuous: outputs are mostly non-zero
