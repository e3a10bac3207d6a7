"""Board adapter for ``pulsedl``: the SoC boots the pulse firmware from memory initialisation with the pulse CNN
deployed in the accelerator, its UART on the serial pins.

Used automatically by ``rampart synth pulsedl`` (named by the descriptor, rtl/pulsedl/__init__.py); it lives with the
drivers because it compiles the firmware (:func:`drivers.pulsedl.build_firmware`). In simulation the
harness loads the memories; on a board nothing does, so before the SoC is elaborated this adapter compiles
:data:`BOOT_FIRMWARE` (rtl/pulsedl/firmware, picolibc, for the design's memory sizes) and puts its ELF segments into
the initial contents of the instruction and data memories (``PulseSoc.imem_init`` / ``dmem_init``). The boot
firmware is rtl/pulsedl/firmware/pulse.c built with ``FOREVER=1`` (arm a capture, run the network, print the
outputs, for every pulse until reset) for :data:`BOOT_MODEL` (the checked-in pulse CNN): its compiled descriptors,
quantisation table and kernel rows are the initial contents of the accelerator's tables and kernel registers
(``PulseSoc.accel_images``), as ``drivers.pulsedl.infer_pulses`` preloads them in simulation (the images, ~16 KiB,
would not fit the 16 KiB data memory beside the firmware for the CPU to copy). That is the
boot scheme: no boot ROM, no loader; the image is part of the bitstream. The data memory starts from the image at
configuration only (``.bss`` is zero because the rest of the memory is), so a reset after the program wrote memory
does not restore it, as with any RAM; reconfigure to re-boot cleanly.

Without the firmware toolchain the adapter raises (an empty instruction memory would let the synthesiser fold the
whole CPU away and report a meaningless size). The board's ``uart`` resource 0 carries ``uart_tx`` / ``uart_rx``
when present (the UART's bit time is ``uart_divisor`` board clocks).
"""
import tempfile
from pathlib import Path

import numpy as np
from amaranth import Module
from amaranth.build import Platform

from base import RampartError
from rtl.common.uart import connect_board_uart
from rtl.pulsedl.config import DMEM_BASE, IMEM_BASE

__all__ = ["BOOT_FIRMWARE", "BOOT_MODEL", "accel_images", "boot_adapter", "boot_image", "boot_network",
           "pulse_defines"]

#: The firmware a board build boots (a C file of rtl/pulsedl/firmware).
BOOT_FIRMWARE = "pulse.c"
#: The network the boot firmware runs: the checked-in pulse CNN (models/pulse).
BOOT_MODEL = Path(__file__).resolve().parents[1] / "models" / "pulse" / "data" / "pulse_cnn.tflite"


def boot_network(config, model: Path = BOOT_MODEL):
    """``model`` compiled for ``config`` (drivers/pulsedl_compile.py)."""
    from drivers.pulsedl_compile import compile_tflite

    return compile_tflite(Path(model).read_bytes(), config)


def pulse_defines(net) -> dict[str, int]:
    """The boot build's defines of pulse.c for the compiled network ``net``: CPU trigger, pulses until reset."""
    return {"NPULSES": 1, "FOREVER": 1, "WINDOW": net.input_len, "OUT_BANK": net.output_bank,
            "NOUT": net.output_count}


def accel_images(net) -> tuple:
    """(descriptor words, quantisation words, kernel rows per PE) of ``net``: ``NnAccelerator.images``."""
    return (_trim(net.descriptors), _trim(net.quant), [_trim(k) for k in net.kernels])


def boot_image(config, firmware: str = BOOT_FIRMWARE, defines: dict[str, int] | None = None
               ) -> tuple[list[int], list[int]]:
    """(instruction memory words, data memory words) of ``firmware`` built for ``config`` with ``defines``; trailing
    zeros dropped."""
    from drivers.pulsedl import build_firmware
    from models.rv32.toolchain import load_segments

    with tempfile.TemporaryDirectory() as tmp:
        elf = build_firmware(firmware, Path(tmp) / "boot.elf", config, defines)
        entry, segments = load_segments(elf)
    if entry != IMEM_BASE:
        raise RampartError(f"{firmware}: entry point {entry:#x}, the core starts at {IMEM_BASE:#x}")
    memories = {IMEM_BASE: np.zeros(config.imem_words, np.uint32), DMEM_BASE: np.zeros(config.dmem_words, np.uint32)}
    for seg in segments:
        for base, words in memories.items():
            if base <= seg.address and seg.address + len(seg.data) <= base + 4 * words.size:
                data = seg.data + bytes(-len(seg.data) % 4)
                first = (seg.address - base) // 4
                words[first:first + len(data) // 4] = np.frombuffer(data, "<u4")
                break
        else:
            raise RampartError(f"{firmware}: segment {seg.address:#x}+{len(seg.data)} is outside the memories")
    return tuple(_trim(w) for w in memories.values())


def _trim(words: np.ndarray) -> list[int]:
    words = np.asarray(words)
    used = np.flatnonzero(words)
    return [int(w) for w in words[:used[-1] + 1]] if used.size else []


def boot_adapter(m: Module, platform: Platform | None, design) -> list[tuple]:
    """Give ``design`` its boot image (the pulse firmware and the deployed pulse CNN) and, on a board with a ``uart``,
    connect its serial lines; return those paths."""
    net = boot_network(design.config)
    design.imem_init, design.dmem_init = boot_image(design.config, BOOT_FIRMWARE, pulse_defines(net))
    design.accel_images = accel_images(net)
    if connect_board_uart(m, platform, design.uart_rx, design.uart_tx):
        return [("uart_rx",), ("uart_tx",)]
    return []
