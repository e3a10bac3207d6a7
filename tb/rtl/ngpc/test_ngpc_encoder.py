"""rtl.ngpc encoding engine in the native harness: bit-exact with models.ngpc.golden on random tables and queries
for the three encodings in 2-D and 3-D, one query per cycle at steady state, correct under back-pressure."""
import numpy as np
import pytest

from drivers.ngpc import EncoderHost, pack_fields, unpack_fields
from models.ngpc.golden import encode_fixed
from rtl.ngpc import PRESETS
from rtl.ngpc.encoder import LATENCY
from sim.build import build
from sim.harness import NativeSim

ENCODINGS = ["hash2d-small", "hash3d-small", "dense2d-small", "dense3d-small", "lowres2d-small", "lowres3d-small"]


def random_tables(config, rng):
    fb = config.feature_bits
    return [rng.integers(-(1 << (fb - 1)), 1 << (fb - 1), (level.params, config.features))
            for level in config.level_geometry]


def edge_positions(config):
    top = (1 << config.pos_bits) - 1
    corners = np.array([[(i >> d & 1) * top for d in range(config.dims)] for i in range(1 << config.dims)])
    return np.concatenate([corners, np.full((1, config.dims), 1 << (config.pos_bits - 1))])


def run(preset, n, seed, ready=None):
    config = PRESETS[preset]
    rng = np.random.default_rng(seed)
    tables = random_tables(config, rng)
    u = np.concatenate([edge_positions(config), rng.integers(0, 1 << config.pos_bits, (n, config.dims))])
    with NativeSim(build("ngpc_encoder", preset)) as sim:
        host = EncoderHost(sim, config)
        host.load_tables(tables)
        result = host.encode(u, ready=None if ready is None else ready(len(u), rng))
    return config, tables, u, result


def test_pack_unpack_round_trip():
    rng = np.random.default_rng(0)
    for bits in (12, 16, 31):
        v = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), (50, 5))
        assert np.array_equal(unpack_fields(pack_fields(v, bits), bits, 5), v)


@pytest.mark.parametrize("preset", ENCODINGS)
def test_bit_exact_and_one_query_per_cycle(preset):
    config, tables, u, result = run(preset, 3000, seed=ENCODINGS.index(preset))
    assert len(result.accepted) == len(u)                                   # never stalled
    assert result.first_output - result.first_accept == LATENCY
    assert result.queries_per_cycle == 1.0
    expected = encode_fixed(config.grid_config, tables, u)
    assert np.array_equal(result.features, expected)


@pytest.mark.parametrize("preset", ["hash3d-small", "dense2d-small"])
def test_bit_exact_under_back_pressure(preset):
    config, tables, u, result = run(preset, 1500, seed=7, ready=lambda n, rng: rng.integers(0, 2, n))
    assert 0 < len(result.accepted) < len(u)
    assert np.array_equal(result.features, encode_fixed(config.grid_config, tables, u[result.accepted]))


@pytest.mark.slow
@pytest.mark.parametrize("preset", ENCODINGS)
def test_bit_exact_1e5_queries(preset):
    config, tables, u, result = run(preset, 100_000, seed=100 + ENCODINGS.index(preset))
    assert np.array_equal(result.features, encode_fixed(config.grid_config, tables, u))


def test_state_maps_to_functional_blocks():
    result = build("ngpc_encoder", "hash3d-small")
    assert set(result.blocks()) == {"control", "position_scalers", "index_units", "weight_units", "table_srams",
                                    "interpolators"}
    memories = [e for e in result.state if e.kind == "mem"]
    assert len(memories) == PRESETS["hash3d-small"].levels * 8                       # 2**D banks per level
    assert {e.block for e in memories} == {"table_srams"}
