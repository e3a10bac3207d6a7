"""PulseDL-II-like SoC: an RV32IM multi-cycle core with instruction/data memories, a Wishbone-style bus, a UART and
a timer (the 1-D CNN accelerator comes later). Memory map: rtl/pulsedl/config.py; the core: rtl/pulsedl/cpu.py."""
from rtl.designs import Design
from rtl.pulsedl.config import PRESETS, PulseDlConfig
from rtl.pulsedl.soc import BLOCK_MAP, PulseSoc

__all__ = ["DESCRIPTOR", "PRESETS", "PulseDlConfig", "PulseSoc"]

DESCRIPTOR = Design(
    name="pulsedl",
    summary="PulseDL-II-like SoC: RV32IM multi-cycle core, I/D memories, Wishbone-style bus, UART, timer",
    config_type=PulseDlConfig,
    presets=PRESETS,
    default="16k",
    make=PulseSoc,
    blocks=BLOCK_MAP,
    workloads={"rv32_program": "faultinj.workloads.pulsedl:rv32_program"},
    driver="drivers.pulsedl:run_program",
    board_adapter="drivers.pulsedl_boot:boot_adapter",
)
