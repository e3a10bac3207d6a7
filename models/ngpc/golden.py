"""Fixed-point golden model of the NGPC encoding engine (bit-exact with rtl/ngpc); formats in models.ngpc.params.

Integers throughout: positions ``u`` (unsigned ``pos_bits``), tables of signed ``feature_bits`` integers, outputs of
signed ``feature_bits`` integers, level-major with each level's features contiguous, as in :mod:`.reference`.
"""
import numpy as np

from models.ngpc.params import GridConfig, Level, levels
from models.ngpc.reference import grid_index

__all__ = ["grid_position", "corner_weights", "encode_fixed", "quantize_positions", "quantize_tables"]


def grid_position(config: GridConfig, level: Level, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(integer grid coordinates p, ``weight_bits`` fractions f), both of shape (N, D)."""
    fx = config.fixed
    frac_bits = fx.pos_bits + fx.scale_frac
    q = u.astype(np.int64) * level.scale_fixed + (1 << (frac_bits - 1))
    return q >> frac_bits, (q >> (frac_bits - fx.weight_bits)) & ((1 << fx.weight_bits) - 1)


def corner_weights(config: GridConfig, frac: np.ndarray) -> np.ndarray:
    """Weights of the 2**D corners (shape (N, 2**D)), corner ``idx`` bit ``d`` selecting ``f_d`` over ``1 - f_d``."""
    wb = config.fixed.weight_bits
    n, dims = frac.shape
    out = np.empty((n, 1 << dims), dtype=np.int64)
    for idx in range(1 << dims):
        w = None
        for d in range(dims):
            w_d = frac[:, d] if idx >> d & 1 else (1 << wb) - frac[:, d]
            w = w_d if w is None else (w * w_d) >> wb
        out[:, idx] = w
    return out


def encode_fixed(config: GridConfig, tables: list[np.ndarray], u: np.ndarray) -> np.ndarray:
    """Encode integer positions ``u`` (N, D) with integer ``tables`` ((params_l, F) each) -> (N, L*F) int64."""
    u = np.asarray(u, dtype=np.int64)
    wb = config.fixed.weight_bits
    n, dims = u.shape
    out = np.zeros((n, config.levels * config.features), dtype=np.int64)
    for level, table in zip(levels(config), tables, strict=True):
        grid, frac = grid_position(config, level, u)
        weights = corner_weights(config, frac)
        acc = np.zeros((n, config.features), dtype=np.int64)
        for idx in range(1 << dims):
            corner = grid + np.array([idx >> d & 1 for d in range(dims)], dtype=np.int64)
            acc += weights[:, idx, None] * np.asarray(table, dtype=np.int64)[grid_index(level, corner)]
        out[:, level.index * config.features:(level.index + 1) * config.features] = (acc + (1 << (wb - 1))) >> wb
    return out


def quantize_positions(config: GridConfig, x: np.ndarray) -> np.ndarray:
    """Float positions in [0, 1) -> unsigned ``pos_bits`` integers (truncated, clamped below 1)."""
    top = (1 << config.fixed.pos_bits) - 1
    return np.clip(np.floor(np.asarray(x, dtype=np.float64) * (1 << config.fixed.pos_bits)), 0, top).astype(np.int64)


def quantize_tables(config: GridConfig, tables: list[np.ndarray], frac_bits: int) -> list[np.ndarray]:
    """Float tables -> signed ``feature_bits`` integers with ``frac_bits`` fraction bits (rounded, saturated)."""
    lo, hi = -(1 << (config.fixed.feature_bits - 1)), (1 << (config.fixed.feature_bits - 1)) - 1
    return [np.clip(np.round(np.asarray(t, dtype=np.float64) * (1 << frac_bits)), lo, hi).astype(np.int64)
            for t in tables]
