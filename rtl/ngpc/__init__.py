"""NGPC (neural-graphics processing cluster): :data:`DESCRIPTOR` is the cluster of N neural-fields processors
(design ``ngpc``, :mod:`rtl.ngpc.cluster`); its fixtures are the multi-resolution grid-encoding engine (hash grid,
dense grid, low-resolution dense grid; 2-D and 3-D), bit-exact with :mod:`models.ngpc.golden` (``ngpc_encoder``),
the fully fused MLP engine, bit-exact with :mod:`models.ngpc.mlp` (``ngpc_mlp``), and one neural-fields processor,
the encoder feeding the MLP (``ngpc_nfp``)."""
from models.ngpc.mlp import MlpConfig
from rtl.designs import Design, Kind
from rtl.ngpc.cluster import CLUSTER_PRESETS, ClusterConfig, NgpcCluster, cluster_block_map
from rtl.ngpc.config import PRESETS, NgpcConfig
from rtl.ngpc.encoder import BLOCK_MAP, GridEncoder
from rtl.ngpc.mlp import MLP_BLOCK_MAP, MlpEngine
from rtl.ngpc.nfp import NFP_BLOCK_MAP, NFP_PRESETS, NeuralFieldsProcessor, NfpConfig

__all__ = ["ClusterConfig", "DESCRIPTOR", "GridEncoder", "MlpConfig", "MlpEngine", "NeuralFieldsProcessor",
           "NfpConfig", "NgpcCluster", "NgpcConfig", "PRESETS"]

#: MLP presets: ``w16`` for fast tests; ``w64`` is tiny-cuda-nn's width 64 (a GIA/NSDF-shaped 32 -> 64 -> 64 -> 16).
MLP_PRESETS = {
    "w16": MlpConfig(inputs=16, width=16, hidden_layers=1, outputs=16),
    "w64": MlpConfig(inputs=32, width=64, hidden_layers=2, outputs=16),
}

ENCODER = Design(
    name="ngpc_encoder",
    summary="NGPC grid-encoding engine: per-level index units (dense / tcnn hash), 2^D-banked tables, interpolators",
    kind=Kind.UNIT,
    config_type=NgpcConfig,
    presets=PRESETS,
    default="hash2d-small",
    make=GridEncoder,
    blocks=BLOCK_MAP,
    golden="models.ngpc.golden:encode_fixed",
)

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
    kind=Kind.UNIT,
    config_type=NfpConfig,
    presets=NFP_PRESETS,
    default="hash2d-w16",
    make=NeuralFieldsProcessor,
    blocks=NFP_BLOCK_MAP,
)

#: The rest of ``synth_ecp5`` with Yosys's classic ABC LUT mapping in place of ABC9 (which did not finish in 90
#: minutes on fpga-x1's 236k AND gates; this mapping took 197 s, see BENCHMARKS.md ngpc_synth). ECP5 only.
LEGACY_LUT_MAPPING = """techmap -map +/lattice/latches_map.v
abc -lut 4:7 -dress
clean
synth_ecp5 -top top -run map_cells:"""

DESCRIPTOR = Design(
    name="ngpc",
    summary="NGPC cluster: N neural-fields processors (hash/dense grid encoder fused with an MLP), one query per "
            "cycle per lane",
    config_type=ClusterConfig,
    presets=CLUSTER_PRESETS,
    default="hash2d-x2",
    make=NgpcCluster,
    blocks=cluster_block_map(),
    workloads={"ngpc_queries": "faultinj.workloads.ngpc:ngpc_queries"},
    driver="drivers.ngpc:ClusterHost",
    system_model="models.system.ngpc:ngpc_cluster",
    fixtures=(ENCODER, MLP, NFP),
    synth_opts="-nodsp -run begin:map_luts",     # every lane has >= 512 multipliers; the ECP5-85F has 156 DSPs
    synth_after=LEGACY_LUT_MAPPING,
)
