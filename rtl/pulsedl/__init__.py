"""PulseDL-II-like SoC: an RV32IM multi-cycle core with instruction/data memories, a Wishbone-style bus, a UART,
a timer and the 1-D CNN accelerator (AU -> PE -> network; rtl/pulsedl/accel.py) with its ADC stream input.
Memory map: rtl/pulsedl/config.py; the core: rtl/pulsedl/cpu.py. Fixture ``pulsedl_nn``: the accelerator alone."""
from rtl.designs import Design, Kind
from rtl.pulsedl.accel import ACCEL_BLOCKS, NnAccelerator
from rtl.pulsedl.config import PRESETS, PulseDlConfig
from rtl.pulsedl.soc import BLOCK_MAP, PulseSoc

__all__ = ["DESCRIPTOR", "NnAccelerator", "PRESETS", "PulseDlConfig", "PulseSoc"]

NN = Design(
    name="pulsedl_nn",
    summary="PulseDL-II CNN accelerator alone (bus slave + ADC stream): AUs, PEs, layer sequencer, buffers",
    kind=Kind.UNIT,
    config_type=PulseDlConfig,
    presets=PRESETS,
    default="16k",
    make=NnAccelerator,
    blocks={k: v for k, v in ACCEL_BLOCKS.items() if k},
    driver="drivers.pulsedl:NnRunner",
)

DESCRIPTOR = Design(
    name="pulsedl",
    summary="PulseDL-II-like SoC: RV32IM multi-cycle core, I/D memories, Wishbone-style bus, UART, timer, 1-D CNN "
            "accelerator",
    config_type=PulseDlConfig,
    presets=PRESETS,
    default="16k",
    make=PulseSoc,
    blocks=BLOCK_MAP,
    workloads={"rv32_program": "faultinj.workloads.pulsedl:rv32_program",
               "pulse_batch": "faultinj.workloads.pulsedl:pulse_batch"},
    driver="drivers.pulsedl:run_program",
    fixtures=(NN,),
    board_adapter="drivers.pulsedl_boot:boot_adapter",
)
