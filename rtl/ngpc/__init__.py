"""NGPC (neural-graphics processing cluster): the multi-resolution grid-encoding engine (hash grid, dense grid,
low-resolution dense grid; 2-D and 3-D), bit-exact with :mod:`models.ngpc.golden` (:data:`DESCRIPTOR`), and the
fully fused MLP engine, bit-exact with :mod:`models.ngpc.mlp` (fixture ``ngpc_mlp``), and the neural-fields
processor, the encoder feeding the MLP (fixture ``ngpc_nfp``). The cluster of N NFPs is a later slice."""
from models.ngpc.mlp import MlpConfig
from rtl.designs import Design, Kind
from rtl.ngpc.config import PRESETS, NgpcConfig
from rtl.ngpc.encoder import BLOCK_MAP, GridEncoder
from rtl.ngpc.mlp import MLP_BLOCK_MAP, MlpEngine
from rtl.ngpc.nfp import NFP_BLOCK_MAP, NFP_PRESETS, NeuralFieldsProcessor, NfpConfig

__all__ = ["DESCRIPTOR", "GridEncoder", "MlpConfig", "MlpEngine", "NeuralFieldsProcessor", "NfpConfig",
           "NgpcConfig", "PRESETS"]

#: MLP presets: ``w16`` for fast tests; ``w64`` is tiny-cuda-nn's width 64 (a GIA/NSDF-shaped 32 -> 64 -> 64 -> 16).
MLP_PRESETS = {
    "w16": MlpConfig(inputs=16, width=16, hidden_layers=1, outputs=16),
    "w64": MlpConfig(inputs=32, width=64, hidden_layers=2, outputs=16),
}

MLP = Design(
    name="ngpc_mlp",
    summary="NGPC fully fused MLP engine alone: no biases, ReLU, weights in registers, one query per cycle",
    kind=Kind.UNIT,
    config_type=MlpConfig,
    presets=MLP_PRESETS,
    default="w16",
    make=MlpEngine,
    blocks=MLP_BLOCK_MAP,
    golden="models.ngpc.mlp:mlp_fixed",
)

NFP = Design(
    name="ngpc_nfp",
    summary="NGPC neural-fields processor: the grid-encoding engine feeding the fused MLP engine directly",
    kind=Kind.ACCELERATOR,
    config_type=NfpConfig,
    presets=NFP_PRESETS,
    default="hash2d-w16",
    make=NeuralFieldsProcessor,
    blocks=NFP_BLOCK_MAP,
)

DESCRIPTOR = Design(
    name="ngpc",
    summary="NGPC grid-encoding engine: per-level index units (dense / tcnn hash), 2^D-banked tables, interpolators",
    config_type=NgpcConfig,
    presets=PRESETS,
    default="hash2d-small",
    make=GridEncoder,
    blocks=BLOCK_MAP,
    golden="models.ngpc.golden:encode_fixed",
    fixtures=(MLP, NFP),
)
