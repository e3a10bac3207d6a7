"""Multi-resolution grid encodings as tiny-cuda-nn defines them, and the fixed-point formats of the NGPC engine.

Geometry (tiny-cuda-nn ``GridEncodingTemplated``, everything per level ``l``):

* ``scale_l = exp2f(l * log2(b)) * N_min - 1`` in float32, ``res_l = ceil(scale_l) + 1``;
* ``params_l = roundup8(res_l ** D)``, then capped: at ``2 ** log2_table`` for the hash grid, at ``N_min ** D`` for
  the tiled (low-resolution dense) grid, not at all for the dense grid;
* a level is *hashed* only for the hash grid and only when ``params_l < res_l ** D``; otherwise its index is dense,
  ``sum_d p_d * res_l ** d`` (dimension 0 fastest, uint32 wrap-around), and every index is taken ``% params_l``.

Fixed-point formats (:class:`FixedFormat`), used by the golden model and the RTL:

* position: each coordinate an unsigned ``pos_bits`` integer ``u``, ``x = u / 2**pos_bits`` in ``[0, 1)``;
* scale: ``s_l = round(scale_l * 2**scale_frac)`` (from the float32 ``scale_l``), unsigned;
* grid position: ``q = u * s_l + 2**(pos_bits + scale_frac - 1)`` (the +0.5), ``p = q >> (pos_bits + scale_frac)``,
  fraction ``f = (q >> (pos_bits + scale_frac - weight_bits)) mod 2**weight_bits`` (truncated);
* weights: per dimension ``f`` or ``2**weight_bits - f``; a corner's weight is the running product over dimensions
  0..D-1, truncated back to ``weight_bits`` fraction bits after each multiply (``w = (w * w_d) >> weight_bits``);
* features: signed ``feature_bits`` two's-complement integers (table and output share the scale, e.g. Q3.12);
  output = ``(sum over corners of w * v + 2**(weight_bits - 1)) >> weight_bits`` (exact sum, round half up).
"""
import enum
import math
from dataclasses import dataclass

import numpy as np

__all__ = ["GridType", "GridConfig", "FixedFormat", "Level", "PRIMES", "levels"]

#: tiny-cuda-nn's CoherentPrime hash factors for dimensions 0, 1, 2.
PRIMES = (1, 2654435761, 805459861)


class GridType(enum.StrEnum):
    HASH = "hash"     #: multi-resolution hash grid
    DENSE = "dense"   #: multi-resolution dense grid
    TILED = "tiled"   #: low-resolution dense grid (tiny-cuda-nn's TiledGrid)


@dataclass(frozen=True)
class FixedFormat:
    pos_bits: int = 16
    scale_frac: int = 16
    weight_bits: int = 12
    feature_bits: int = 16

    def __post_init__(self):
        for name in ("pos_bits", "scale_frac", "weight_bits", "feature_bits"):
            if not 1 <= getattr(self, name) <= 24:
                raise ValueError(f"{name} must be in 1..24, not {getattr(self, name)}")
        if self.weight_bits > self.pos_bits + self.scale_frac:
            raise ValueError("weight_bits must not exceed pos_bits + scale_frac")


@dataclass(frozen=True)
class GridConfig:
    dims: int = 2
    grid: GridType = GridType.HASH
    levels: int = 16
    features: int = 2
    log2_table: int = 19
    base_resolution: int = 16
    per_level_scale: float = 2.0
    fixed: FixedFormat = FixedFormat()

    def __post_init__(self):
        object.__setattr__(self, "grid", GridType(self.grid))
        if self.dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, not {self.dims}")
        if not 1 <= self.levels <= 32:
            raise ValueError(f"levels must be in 1..32, not {self.levels}")
        if self.features not in (1, 2, 4, 8):
            raise ValueError(f"features must be 1, 2, 4 or 8, not {self.features}")
        if not 1 <= self.log2_table <= 24:
            raise ValueError(f"log2_table must be in 1..24, not {self.log2_table}")
        if self.base_resolution < 2:
            raise ValueError(f"base_resolution must be at least 2, not {self.base_resolution}")
        if not self.per_level_scale >= 1.0:
            raise ValueError(f"per_level_scale must be >= 1, not {self.per_level_scale}")


@dataclass(frozen=True)
class Level:
    index: int
    scale: float        #: float32 value, frozen
    resolution: int
    params: int         #: table entries (each holds ``features`` values)
    hashed: bool
    scale_fixed: int    #: ``round(scale * 2**scale_frac)``


def _float32_scale(level: int, per_level_scale: float, base_resolution: int) -> np.float32:
    log2_b = np.log2(np.float32(per_level_scale), dtype=np.float32)
    return np.float32(np.exp2(np.float32(level) * log2_b, dtype=np.float32) * np.float32(base_resolution)
                      - np.float32(1.0))


def levels(config: GridConfig) -> tuple[Level, ...]:
    """The per-level geometry of ``config`` (see the module docstring)."""
    out = []
    for i in range(config.levels):
        scale = _float32_scale(i, config.per_level_scale, config.base_resolution)
        resolution = int(math.ceil(float(scale))) + 1
        dense = resolution ** config.dims
        params = -(-dense // 8) * 8
        if config.grid == GridType.HASH:
            params = min(params, 1 << config.log2_table)
        elif config.grid == GridType.TILED:
            params = min(params, config.base_resolution ** config.dims)
        hashed = config.grid == GridType.HASH and params < dense
        out.append(Level(i, float(scale), resolution, params, hashed,
                         int(round(float(scale) * (1 << config.fixed.scale_frac)))))
    return tuple(out)
