"""Elaboration-time configuration of the PulseDL-II SoC (:class:`rtl.pulsedl.soc.PulseSoc`) and its memory map.

The map is fixed; only the sizes of the memories (and the UART's bit time) are configuration. The text is linked at
:data:`IMEM_BASE` (qemu-user's usual first page for a static RISC-V Linux binary, so one ELF runs on both), data
at :data:`DMEM_BASE`, the peripherals at :data:`MMIO_BASE`:

==============  =====================================================================
address         meaning
==============  =====================================================================
``0x0001_0000`` instruction memory (fetch only; the reset vector is its first word)
``0x0002_0000`` data memory (byte, half-word and word loads and stores)
``0x0003_0000`` UART: ``+0`` write: send a byte; read: received byte, bit 8 set if any; ``+4`` status
``0x0003_1000`` timer: ``+0`` / ``+4`` low / high word of the 64-bit cycle counter (read only)
==============  =====================================================================

An access outside these regions completes with read data 0 (writes are dropped).
"""
from dataclasses import dataclass

__all__ = ["DMEM_BASE", "IMEM_BASE", "MMIO_BASE", "PRESETS", "PulseDlConfig", "TIMER_BASE", "UART_BASE"]

IMEM_BASE = 0x0001_0000
DMEM_BASE = 0x0002_0000
MMIO_BASE = 0x0003_0000
UART_BASE = MMIO_BASE
TIMER_BASE = MMIO_BASE + 0x1000
REGION_BYTES = 0x1_0000  #: each region decodes address bits 16 and up, so a memory holds at most 64 KiB


def _check_memory(name: str, size: int):
    if not isinstance(size, int) or size < 64 or size > REGION_BYTES or size & (size - 1):
        raise ValueError(f"{name} must be a power of two between 64 and {REGION_BYTES} bytes, not {size!r}")


@dataclass(frozen=True)
class PulseDlConfig:
    """Sizes of the instruction and data memories (bytes) and the UART's clock cycles per bit."""

    imem_bytes: int = 16384
    dmem_bytes: int = 16384
    uart_divisor: int = 4

    def __post_init__(self):
        _check_memory("imem_bytes", self.imem_bytes)
        _check_memory("dmem_bytes", self.dmem_bytes)
        if not isinstance(self.uart_divisor, int) or self.uart_divisor < 2:
            raise ValueError(f"uart_divisor must be an integer >= 2, not {self.uart_divisor!r}")

    @property
    def imem_words(self) -> int:
        return self.imem_bytes // 4

    @property
    def dmem_words(self) -> int:
        return self.dmem_bytes // 4


PRESETS = {
    "16k": PulseDlConfig(),
    "4k": PulseDlConfig(imem_bytes=4096, dmem_bytes=4096),
    "64k": PulseDlConfig(imem_bytes=65536, dmem_bytes=65536),
}
