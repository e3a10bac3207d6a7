"""Float reference of tiny-cuda-nn's grid encoding (forward pass), following its rules step by step.

Per level: ``pos = fmaf(scale, x, 0.5)``, ``p = floor(pos)``, ``f = pos - p`` (float32); the 2**D corners are visited
as ``idx = 0 .. 2**D - 1``, bit ``d`` of ``idx`` selecting ``(p_d + 1, f_d)`` or ``(p_d, 1 - f_d)``; the corner weight
is the float32 product over dimensions in order 0..D-1; the table index is :func:`grid_index`. The output is
level-major with each level's ``F`` features contiguous (``out[:, l * F + k]``).

Accumulation (``accumulate``): ``"float32"`` (a float32 sum in corner order), ``"half-2022"`` (tiny-cuda-nn
Dec-2022: ``acc += (half)(w * v)``) or ``"half-head"`` (later versions: ``acc = fma((half)w, v, acc)`` in half).
"""
import numpy as np

from models.ngpc.params import PRIMES, GridConfig, Level, levels

__all__ = ["grid_index", "encode_float", "level_corners", "random_tables"]

_MASK32 = np.uint64(0xFFFFFFFF)


def grid_index(level: Level, corner: np.ndarray) -> np.ndarray:
    """Table entry of integer grid coordinates ``corner`` (shape (N, D)) on ``level``: hash or dense, ``% params``."""
    corner = corner.astype(np.uint64)
    index = np.zeros(corner.shape[0], dtype=np.uint64)
    if level.hashed:
        for d in range(corner.shape[1]):
            index ^= (corner[:, d] * np.uint64(PRIMES[d])) & _MASK32
    else:
        stride = 1
        for d in range(corner.shape[1]):
            index = (index + corner[:, d] * np.uint64(stride)) & _MASK32
            stride = (stride * level.resolution) & 0xFFFFFFFF
    return index % np.uint64(level.params)


def _fmaf(a: np.float32, b: np.ndarray, c: float) -> np.ndarray:
    # a float32 product is exact in float64, so one rounding to float32 afterwards is fmaf's single rounding
    return (np.float64(a) * b.astype(np.float64) + c).astype(np.float32)


def level_corners(level: Level, x: np.ndarray):
    """The 2**D corners of float32 positions ``x`` (N, D) on ``level`` in tiny-cuda-nn's order: yields ``(index,
    weight)`` per corner, table entries (N,) and float32 weights (N,), as :func:`encode_float` uses them."""
    pos = _fmaf(np.float32(level.scale), x, 0.5)
    grid = np.floor(pos)
    frac = (pos - grid).astype(np.float32)
    grid = grid.astype(np.int64)
    n, dims = x.shape
    for idx in range(1 << dims):
        weight = np.ones(n, dtype=np.float32)
        corner = grid.copy()
        for d in range(dims):
            if idx >> d & 1:
                weight = weight * frac[:, d]
                corner[:, d] += 1
            else:
                weight = weight * (np.float32(1) - frac[:, d])
        yield grid_index(level, corner), weight


def encode_float(config: GridConfig, tables: list[np.ndarray], x: np.ndarray, accumulate: str = "float32"):
    """Encode positions ``x`` (shape (N, D), in [0, 1]) with per-level ``tables`` (shape (params_l, F))."""
    if accumulate not in ("float32", "half-2022", "half-head"):
        raise ValueError(f"unknown accumulate mode {accumulate!r}")
    x = np.asarray(x, dtype=np.float32)
    n = x.shape[0]
    out = np.zeros((n, config.levels * config.features), dtype=np.float32)
    for level, table in zip(levels(config), tables, strict=True):
        acc_dtype = np.float32 if accumulate == "float32" else np.float16
        acc = np.zeros((n, config.features), dtype=acc_dtype)
        for index, weight in level_corners(level, x):
            value = np.asarray(table)[index]
            if accumulate == "float32":
                acc = acc + weight[:, None] * value.astype(np.float32)
            elif accumulate == "half-2022":
                acc = acc + (weight[:, None] * value.astype(np.float32)).astype(np.float16)
            else:
                acc = (weight.astype(np.float16)[:, None].astype(np.float32) * value.astype(np.float32)
                       + acc.astype(np.float32)).astype(np.float16)
        out[:, level.index * config.features:(level.index + 1) * config.features] = acc
    return out


def random_tables(config: GridConfig, rng: np.random.Generator, amplitude: float = 1.0) -> list[np.ndarray]:
    """Uniform random float16 tables in [-amplitude, amplitude], one (params_l, F) array per level."""
    return [rng.uniform(-amplitude, amplitude, (level.params, config.features)).astype(np.float16)
            for level in levels(config)]
