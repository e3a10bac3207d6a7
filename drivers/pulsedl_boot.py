"""Board adapter for ``pulsedl``: the SoC boots its firmware from memory initialisation, its UART on the serial pins.

Used automatically by ``rampart synth pulsedl`` (named by the descriptor, rtl/pulsedl/__init__.py); it lives with the
drivers because it compiles the firmware (:func:`drivers.pulsedl.build_firmware`). In simulation the
harness loads the memories; on a board nothing does, so before the SoC is elaborated this adapter compiles
:data:`BOOT_FIRMWARE` (rtl/pulsedl/firmware, picolibc, for the design's memory sizes) and puts its ELF segments into
the initial contents of the instruction and data memories (``PulseSoc.imem_init`` / ``dmem_init``). That is the
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
from amaranth.build import Platform, ResourceError
from amaranth.lib import io

from base import RampartError
from rtl.pulsedl.config import DMEM_BASE, IMEM_BASE

__all__ = ["BOOT_FIRMWARE", "boot_adapter", "boot_image"]

#: The firmware a board build boots (a C file of rtl/pulsedl/firmware).
BOOT_FIRMWARE = "hello.c"


def boot_image(config, firmware: str = BOOT_FIRMWARE) -> tuple[list[int], list[int]]:
    """(instruction memory words, data memory words) of ``firmware`` built for ``config``; trailing zeros dropped."""
    from drivers.pulsedl import build_firmware
    from models.rv32.toolchain import load_segments

    with tempfile.TemporaryDirectory() as tmp:
        elf = build_firmware(firmware, Path(tmp) / "boot.elf", config)
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
    used = np.flatnonzero(words)
    return [int(w) for w in words[:used[-1] + 1]] if used.size else []


def boot_adapter(m: Module, platform: Platform | None, design) -> list[tuple]:
    """Give ``design`` its boot image and, on a board with a ``uart``, connect its serial lines; return those paths."""
    design.imem_init, design.dmem_init = boot_image(design.config)
    if platform is None:
        return []
    try:
        uart = platform.request("uart", 0, dir="-")
    except ResourceError:
        return []
    m.submodules.uart_rx_buf = rx_buf = io.Buffer("i", uart.rx)
    m.submodules.uart_tx_buf = tx_buf = io.Buffer("o", uart.tx)
    m.d.comb += [design.uart_rx.eq(rx_buf.i), tx_buf.o.eq(design.uart_tx)]
    return [("uart_rx",), ("uart_tx",)]
