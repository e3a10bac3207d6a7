"""The neural-fields processor (NFP): the grid-encoding engine feeding the MLP engine directly, stream to stream.

The encoder's ``L*F`` features are the MLP's first inputs; the rest of its ``inputs`` (a multiple of 16, as in
tiny-cuda-nn) are zero. Back-pressure from the MLP stalls the encoder. Latency: the encoder's plus one per layer;
throughput one query per cycle.
"""
from dataclasses import dataclass, field

from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from models.ngpc.mlp import MlpConfig
from rtl.ngpc.config import PRESETS as ENCODER_PRESETS
from rtl.ngpc.config import NgpcConfig
from rtl.ngpc.encoder import BLOCK_MAP, LATENCY, GridEncoder, TableWriteSignature
from rtl.ngpc.mlp import MLP_BLOCK_MAP, MlpEngine, WeightWriteSignature

__all__ = ["NFP_BLOCK_MAP", "NFP_PRESETS", "NeuralFieldsProcessor", "NfpConfig"]

NFP_BLOCK_MAP = {f"encoder.{k}": v for k, v in BLOCK_MAP.items()} | {f"mlp.{k}": v for k, v in MLP_BLOCK_MAP.items()}
NFP_BLOCK_MAP |= {"encoder.control": "encoder_control", "mlp.control": "mlp_control"}


@dataclass(frozen=True)
class NfpConfig:
    encoder: NgpcConfig = field(default_factory=NgpcConfig)
    mlp: MlpConfig = field(default_factory=MlpConfig)

    def __post_init__(self):
        # a TOML config gives the two parts as tables: each a complete NgpcConfig / MlpConfig (unset fields default)
        for name, kind in (("encoder", NgpcConfig), ("mlp", MlpConfig)):
            value = getattr(self, name)
            if isinstance(value, dict):
                object.__setattr__(self, name, kind(**value))
            elif not isinstance(value, kind):
                raise TypeError(f"{name} must be a table of {kind.__name__} fields, not {value!r}")
        enc, mlp = self.encoder, self.mlp
        if enc.levels * enc.features > mlp.inputs:
            raise ValueError(f"the MLP takes {mlp.inputs} inputs, the encoder makes {enc.levels * enc.features}")
        if enc.feature_bits != mlp.act_bits:
            raise ValueError("the encoder's feature_bits must equal the MLP's act_bits")

    @property
    def latency(self) -> int:
        return LATENCY + len(self.mlp.layer_shapes)


NFP_PRESETS = {
    "hash2d-w16": NfpConfig(ENCODER_PRESETS["hash2d-small"], MlpConfig(inputs=16, width=16, outputs=16)),
    "hash3d-w16": NfpConfig(ENCODER_PRESETS["hash3d-small"], MlpConfig(inputs=16, width=16, outputs=16)),
    # the rendered scenes: GIA (RGB of 16 outputs), NSDF (1) and NeRF-lite (density + RGB) share the 3-D one
    "gia2d-w64": NfpConfig(ENCODER_PRESETS["gia2d"], MlpConfig(inputs=16, width=64, hidden_layers=2, outputs=16,
                                                               weight_bits=12, weight_frac=10)),
    "scene3d-w32": NfpConfig(ENCODER_PRESETS["scene3d"], MlpConfig(inputs=16, width=32, hidden_layers=2, outputs=16,
                                                                   weight_bits=12, weight_frac=10)),
}


class NeuralFieldsProcessor(wiring.Component):
    """``query`` stream in (as :class:`GridEncoder`), ``outputs`` stream out (as :class:`MlpEngine`); ``table`` and
    ``weights`` write ports."""

    def __init__(self, config: NfpConfig):
        self.config = config
        super().__init__({
            "query": In(stream.Signature(config.encoder.dims * config.encoder.pos_bits)),
            "outputs": Out(stream.Signature(config.mlp.outputs * config.mlp.act_bits)),
            "table": In(TableWriteSignature(config.encoder)),
            "weights": In(WeightWriteSignature(config.mlp)),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.encoder = encoder = GridEncoder(self.config.encoder)
        m.submodules.mlp = mlp = MlpEngine(self.config.mlp)
        wiring.connect(m, wiring.flipped(self.query), encoder.query)
        wiring.connect(m, wiring.flipped(self.table), encoder.table)
        wiring.connect(m, wiring.flipped(self.weights), mlp.weights)
        wiring.connect(m, mlp.outputs, wiring.flipped(self.outputs))
        m.d.comb += [mlp.inputs.valid.eq(encoder.features.valid), encoder.features.ready.eq(mlp.inputs.ready),
                     mlp.inputs.payload.eq(encoder.features.payload)]       # zero-extended: unused inputs are 0
        return m
