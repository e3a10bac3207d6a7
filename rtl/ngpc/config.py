"""Elaboration-time configuration of the NGPC encoding engine (:class:`NgpcConfig`) and its presets.

The fields mirror :class:`models.ngpc.params.GridConfig` (which validates them and defines the fixed-point formats),
so a configuration accepted here is one the golden model accepts too. Levels run in parallel: one per-level engine
per level, all fed the same query on the same cycle.
"""
from dataclasses import dataclass

from models.ngpc.params import FixedFormat, GridConfig, GridType, levels

__all__ = ["NgpcConfig", "PRESETS"]


@dataclass(frozen=True)
class NgpcConfig:
    dims: int = 2
    grid: str = "hash"
    levels: int = 4
    features: int = 2
    log2_table: int = 8
    base_resolution: int = 4
    per_level_scale: float = 1.5
    pos_bits: int = 16
    scale_frac: int = 16
    weight_bits: int = 12
    feature_bits: int = 16
    max_table_words: int = 1 << 16    #: guard on the per-level table depth (on-chip SRAM, replicated 2**D times)

    def __post_init__(self):
        grid = self.grid_config          # validates the shared fields
        object.__setattr__(self, "grid", str(grid.grid))
        for level in levels(grid):
            if level.params > self.max_table_words:
                raise ValueError(f"level {level.index} needs {level.params} table words (> {self.max_table_words})")
            if level.hashed and level.params & (level.params - 1):
                raise ValueError(f"hashed level {level.index} has a table of {level.params} entries, not a power of 2")

    @property
    def grid_config(self) -> GridConfig:
        return GridConfig(dims=self.dims, grid=GridType(self.grid), levels=self.levels, features=self.features,
                          log2_table=self.log2_table, base_resolution=self.base_resolution,
                          per_level_scale=self.per_level_scale,
                          fixed=FixedFormat(self.pos_bits, self.scale_frac, self.weight_bits, self.feature_bits))

    @property
    def level_geometry(self):
        return levels(self.grid_config)

    @property
    def out_width(self) -> int:
        return self.levels * self.features * self.feature_bits


#: Small presets for tests (hash: dense coarse levels, hashed fine ones) and the three encodings in 2-D and 3-D.
PRESETS: dict[str, NgpcConfig] = {
    "hash2d-small": NgpcConfig(dims=2, grid="hash", levels=4, features=2, log2_table=8, base_resolution=4,
                               per_level_scale=2.0),
    "hash3d-small": NgpcConfig(dims=3, grid="hash", levels=4, features=2, log2_table=9, base_resolution=4,
                               per_level_scale=1.6),
    "dense2d-small": NgpcConfig(dims=2, grid="dense", levels=4, features=2, base_resolution=4, per_level_scale=1.405),
    "dense3d-small": NgpcConfig(dims=3, grid="dense", levels=3, features=2, base_resolution=4, per_level_scale=1.405),
    "lowres2d-small": NgpcConfig(dims=2, grid="tiled", levels=2, features=8, base_resolution=16, per_level_scale=1.0),
    "lowres3d-small": NgpcConfig(dims=3, grid="tiled", levels=2, features=8, base_resolution=6, per_level_scale=1.0),
    "hash3d-16l": NgpcConfig(dims=3, grid="hash", levels=16, features=2, log2_table=12, base_resolution=16,
                             per_level_scale=1.3819),
    # the rendered scenes (`rampart ngpc render`): 5 dense + 3 hashed levels in 2-D, 3 dense + 5 hashed in 3-D
    "gia2d": NgpcConfig(dims=2, grid="hash", levels=8, features=2, log2_table=14, base_resolution=16,
                        per_level_scale=1.5),
    "scene3d": NgpcConfig(dims=3, grid="hash", levels=8, features=2, log2_table=14, base_resolution=8,
                          per_level_scale=1.45),
}
