"""Ethos-U55-class NPU that executes the register command streams Arm's Vela compiler emits (see models/npu/SPEC.md).

:data:`DESCRIPTOR` describes it to the rest of rampart; :class:`Npu` is its top (with the external-memory model as
simulation scaffolding), :class:`NpuConfig` / :data:`PRESETS` its configurations (U55-32/64/128/256).
"""
from rtl.designs import Design, Kind
from rtl.npu.config import PRESETS, NpuConfig
from rtl.npu.mac import U55_PRESETS, MacBlock, MacBlockConfig
from rtl.npu.output_unit import OutputUnit, OutputUnitConfig
from rtl.npu.top import BLOCK_MAP, Npu
from rtl.npu.weight_decoder import (
                                    DECODER_PRESETS,
                                    WeightDecoder,
                                    WeightDecoderConfig,
                                    WeightDecoderTestbench,
                                    WeightDecoderTestbenchConfig,
)

__all__ = ["DESCRIPTOR", "Npu", "NpuConfig", "PRESETS"]

_UNITS = (
    Design(
        name="npu_mac", kind=Kind.UNIT,
        summary="NPU MAC block: one OFM micro-block of int8 dot products (IFM zero point, padding) per cycle",
        config_type=MacBlockConfig, presets=U55_PRESETS, default="u55-256", make=MacBlock),
    Design(
        name="npu_output_unit", kind=Kind.UNIT,
        summary="NPU output stage: per-channel bias/scale/shift (TFLite double rounding), OFM zero point, clamp",
        config_type=OutputUnitConfig,
        presets={"u55-128": OutputUnitConfig(lanes=8), "u55-32": OutputUnitConfig(lanes=4),
                 "u55-64": OutputUnitConfig(lanes=8), "u55-256": OutputUnitConfig(lanes=8)},
        default="u55-128", make=OutputUnit),
    Design(
        name="npu_weight_decoder", kind=Kind.UNIT,
        summary="Vela compressed weight stream (mlw) decoder: byte/word stream in, int8 weights out",
        config_type=WeightDecoderConfig, presets=DECODER_PRESETS, default="byte",
        make=lambda config: WeightDecoder(config=config)),
    Design(
        name="npu_weight_decoder_tb", kind=Kind.FIXTURE,
        summary="test wrapper: stream memory feeding npu_weight_decoder (for the native harness)",
        config_type=WeightDecoderTestbenchConfig,
        presets={name: WeightDecoderTestbenchConfig(decoder=config) for name, config in DECODER_PRESETS.items()},
        default="byte", make=lambda config: WeightDecoderTestbench(config=config)),
)

DESCRIPTOR = Design(
    name="npu",
    summary="Ethos-U55-class NPU running Vela command streams: controller, DMA, weight decoder, IFM stager, MAC "
            "block, output unit, SHRAM (external memory modelled)",
    config_type=NpuConfig,
    presets=PRESETS,
    default="u55-128",
    make=Npu,
    blocks=BLOCK_MAP,
    scaffolding=("extmem",),
    workloads={"npu_conv": "faultinj.workloads.npu:npu_conv", "npu_cnn": "faultinj.workloads.npu:npu_cnn"},
    model_workload="faultinj.workloads.npu:npu_model",
    model_config="faultinj.workloads.npu:fi_memory_config",
    golden="models.npu.reference:run_reference",
    driver="drivers.npu:run_on_npu",
    system_model="models.system.npu:NpuAccelerator",
    fixtures=_UNITS,
)
