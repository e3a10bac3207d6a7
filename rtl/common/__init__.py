"""Shared building blocks (SRAM with parity/SECDED, FIFOs, streams, UART) and the simulation layer's reference
design, the MAC array (:data:`DESCRIPTOR`, with the SRAM as a unit fixture)."""
from rtl.common.mac_array import MacArray, MacArrayConfig, make_mac_array
from rtl.common.sram import Protection, Sram, SramConfig
from rtl.designs import Design, Kind

__all__ = ["DESCRIPTOR", "MacArray", "MacArrayConfig", "Protection", "Sram", "SramConfig", "make_mac_array"]

SRAM = Design(
    name="sram",
    summary="single-port SRAM with optional parity or SECDED (rtl/common building block)",
    kind=Kind.UNIT,
    config_type=SramConfig,
    presets={"256x16-secded": SramConfig(256, 16, Protection.SECDED), "256x16": SramConfig(256, 16),
             "256x16-parity": SramConfig(256, 16, Protection.PARITY)},
    default="256x16-secded",
    make=lambda config: Sram(depth=config.depth, width=config.width, protection=config.protection),
)

DESCRIPTOR = Design(
    name="mac_array",
    summary="int8 output-stationary systolic MAC array (simulation-layer reference design)",
    kind=Kind.REFERENCE,
    config_type=MacArrayConfig,
    presets={"8x8": MacArrayConfig(8, 8), "4x4": MacArrayConfig(4, 4)},
    default="8x8",
    make=make_mac_array,
    workloads={"mac_array_matmul": "faultinj.workloads.mac_array:mac_array_matmul"},
    verilator_opt="Os",       # the 8x8 array steps 4-7% slower at -O3 (BENCHMARKS.md)
    fixtures=(SRAM,),
)
