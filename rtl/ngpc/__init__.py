"""NGPC (neural-graphics processing cluster): the multi-resolution grid-encoding engine (hash grid, dense grid,
low-resolution dense grid; 2-D and 3-D), bit-exact with :mod:`models.ngpc.golden`. The MLP engine, the fused
neural-fields processor and the cluster are later slices."""
from rtl.designs import Design
from rtl.ngpc.config import PRESETS, NgpcConfig
from rtl.ngpc.encoder import BLOCK_MAP, GridEncoder

__all__ = ["DESCRIPTOR", "GridEncoder", "NgpcConfig", "PRESETS"]

DESCRIPTOR = Design(
    name="ngpc",
    summary="NGPC grid-encoding engine: per-level index units (dense / tcnn hash), 2^D-banked tables, interpolators",
    config_type=NgpcConfig,
    presets=PRESETS,
    default="hash2d-small",
    make=GridEncoder,
    blocks=BLOCK_MAP,
    golden="models.ngpc.golden:encode_fixed",
)
