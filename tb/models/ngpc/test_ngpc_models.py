"""models.ngpc: the float reference against tiny-cuda-nn's published rules worked by hand, and the fixed-point golden
model against the float reference."""
import math

import numpy as np
import pytest

from models.ngpc.golden import encode_fixed, quantize_tables
from models.ngpc.params import GridConfig, levels
from models.ngpc.reference import encode_float, grid_index, random_tables

NERF = GridConfig(dims=3, grid="hash", levels=16, features=2, log2_table=19, base_resolution=16,
                  per_level_scale=math.exp(math.log(2048 / 16) / 15))


def test_nerf_levels_dense_then_hashed():
    # resolutions 16, 23, 31, 43, 59 are dense (59**3 = 205379 <= 2**19); level 5 (res 81, 81**3 > 2**19) is hashed
    geo = levels(NERF)
    assert [lv.resolution for lv in geo[:5]] == [16, 23, 31, 43, 59]
    assert [lv.hashed for lv in geo] == [False] * 5 + [True] * 11
    assert geo[0].params == 4096 and geo[5].params == 1 << 19
    assert geo[1].params == 12168          # 23**3 = 12167, rounded up to a multiple of 8


def test_default_hash_grid_2d_resolutions_are_powers_of_two():
    # b = 2, N_min = 16: scale_l = 16 * 2**l - 1 exactly, res_l = 16 * 2**l; 512**2 = 2**18 fits, 1024**2 does not
    geo = levels(GridConfig(dims=2, levels=8))
    assert [lv.resolution for lv in geo] == [16 << i for i in range(8)]
    assert [lv.hashed for lv in geo] == [False] * 6 + [True] * 2
    assert geo[0].scale == 15.0


def test_dense_and_tiled_grids_are_never_hashed_and_capped_differently():
    dense = levels(GridConfig(dims=3, grid="dense", levels=8, log2_table=10, base_resolution=16, per_level_scale=1.405))
    assert not any(lv.hashed for lv in dense)
    assert dense[1].resolution == 23                  # 16 * 1.405 - 1 = 21.48 -> ceil 22, + 1
    assert all(lv.params >= lv.resolution ** 3 for lv in dense)     # no cap at 2**10
    tiled = levels(GridConfig(dims=3, grid="tiled", levels=2, features=8, base_resolution=128, per_level_scale=1.0))
    assert [(lv.resolution, lv.params, lv.hashed) for lv in tiled] == [(128, 128 ** 3, False)] * 2


def test_hash_uses_the_coherent_prime_xor_in_uint32():
    level = levels(NERF)[8]
    corner = np.array([[3, 5, 7], [1000, 70000, 123456]])
    for row, got in zip(corner.tolist(), grid_index(level, corner), strict=True):
        h = (row[0] * 1) ^ ((row[1] * 2654435761) % 2 ** 32) ^ ((row[2] * 805459861) % 2 ** 32)
        assert int(got) == h % 2 ** 19


def test_dense_index_dimension_zero_fastest_and_wraps_modulo_params():
    level = levels(GridConfig(dims=2, levels=1, base_resolution=16))[0]      # res 16, params 256, dense
    corner = np.array([[3, 2], [16, 3], [16, 15]])
    assert grid_index(level, corner).tolist() == [3 + 2 * 16, (16 + 48) % 256, (16 + 240) % 256]


def test_bilinear_worked_by_hand():
    # N_min = 5, b = 1: scale 4, res 5, params 32, dense. x = (0.3, 0.6): pos = (1.7, 2.9), p = (1, 2), f = (.7, .9);
    # entries 11 (1,2), 12 (2,2), 16 (1,3), 17 (2,3): .3*.1*11 + .7*.1*12 + .3*.9*16 + .7*.9*17 = 16.2
    config = GridConfig(dims=2, levels=1, features=2, base_resolution=5, per_level_scale=1.0)
    table = np.stack([np.arange(32.0), np.full(32, 2.0)], axis=1).astype(np.float32)
    out = encode_float(config, [table], np.array([[0.3, 0.6]]))
    assert out[0] == pytest.approx([16.2, 2.0], abs=1e-5)


def test_trilinear_reproduces_a_linear_function_of_the_grid_coordinates():
    config = GridConfig(dims=3, grid="dense", levels=1, features=1, base_resolution=9, per_level_scale=1.0)
    level = levels(config)[0]
    r = level.resolution
    i = np.arange(level.params)
    coords = np.stack([i % r, i // r % r, i // (r * r)], axis=1).astype(np.float64)
    table = (coords @ np.array([0.5, -0.25, 0.125]))[:, None].astype(np.float32)
    x = np.random.default_rng(1).uniform(0, (r - 1.5) / level.scale, (200, 3)).astype(np.float32)   # no top wrap
    pos = x.astype(np.float64) * level.scale + 0.5
    assert np.allclose(encode_float(config, [table], x)[:, 0], pos @ np.array([0.5, -0.25, 0.125]), atol=1e-4)


def test_half_accumulation_modes_stay_close_to_float32():
    config = GridConfig(dims=3, levels=3, log2_table=8, base_resolution=4, per_level_scale=2.0)
    tables = random_tables(config, np.random.default_rng(2))
    x = np.random.default_rng(3).uniform(0, 1, (300, 3))
    ref = encode_float(config, tables, x)
    for mode in ("half-2022", "half-head"):
        assert np.abs(encode_float(config, tables, x, mode) - ref).max() < 8e-3       # a few fp16 ulps of ~1
    with pytest.raises(ValueError):
        encode_float(config, tables, x, "bf16")


@pytest.mark.parametrize("grid,dims", [("hash", 2), ("hash", 3), ("dense", 2), ("dense", 3), ("tiled", 2)])
def test_fixed_golden_tracks_the_float_reference(grid, dims):
    config = GridConfig(dims=dims, grid=grid, levels=4 if grid != "tiled" else 2, features=2, log2_table=8,
                        base_resolution=4 if grid != "tiled" else 8, per_level_scale=1.5 if grid != "tiled" else 1.0)
    rng = np.random.default_rng(4)
    tables = random_tables(config, rng)
    u = rng.integers(0, 1 << 16, (2000, dims))
    frac_bits = 12
    got = encode_fixed(config, quantize_tables(config, tables, frac_bits), u) / (1 << frac_bits)
    ref = encode_float(config, tables, u / (1 << 16))
    # weight truncation (<= D steps of 2**-12 per corner, 2**D corners) plus table and output rounding
    assert np.abs(got - ref).max() <= (2 ** dims * dims + 2) * 2 ** -12
