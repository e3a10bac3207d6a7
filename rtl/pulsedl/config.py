"""Elaboration-time configuration of the PulseDL-II SoC (:class:`rtl.pulsedl.soc.PulseSoc`) and its memory map.

The map is fixed; the sizes of the memories, the UART's bit time and the accelerator's parallelism (PEs, AUs per PE,
kernel-register rows per PE) are configuration. The text is linked at
:data:`IMEM_BASE` (qemu-user's usual first page for a static RISC-V Linux binary, so one ELF runs on both), data
at :data:`DMEM_BASE`, the peripherals at :data:`MMIO_BASE`:

==============  =====================================================================
address         meaning
==============  =====================================================================
``0x0001_0000`` instruction memory (fetch only; the reset vector is its first word)
``0x0002_0000`` data memory (byte, half-word and word loads and stores)
``0x0003_0000`` UART: ``+0`` write: send a byte; read: received byte, bit 8 set if any; ``+4`` status
``0x0003_1000`` timer: ``+0`` / ``+4`` low / high word of the 64-bit cycle counter (read only)
``0x0004_0000`` CNN accelerator CSRs (word index: 0 CTRL, 1 STATUS, 2 CYCLES, 3 THRESHOLD, 4 CAPTURE_LEN,
                5 FIFO_LEVEL, 6 HWCONFIG, 7 CAPTURE_WAIT; see below)
``0x0004_1000`` layer descriptors, 8 words each, :data:`MAX_LAYERS` of them (write only)
``0x0004_2000`` quantisation table: channel ``c`` at ``+16c``: bias low word, bias high (bits 0-15), multiplier,
                shift (write only)
``0x0004_4000`` activation bank 0 (:data:`ACT_WORDS` entries, one per word, sign-extended; the network's input)
``0x0004_5000`` activation bank 1
``0x0004_8000`` kernel registers: word ``(pe << log2(accel_kernel_rows)) + row`` holds the row's ``accel_aus``
                weights in its low bytes (write only)
==============  =====================================================================

Accelerator CSRs. CTRL (write): bit 0 START the network at descriptor 0; bit 1 ARM a capture of CAPTURE_LEN
ADC samples into bank 0; bit 2 with ARM: start the network when the capture completes; bit 3 with ARM: threshold
trigger (drop samples below THRESHOLD, signed 16 bits; else the capture takes the next samples in the FIFO);
bit 4 CLEAR the sticky done and overflow bits. START and ARM are ignored while the network or a capture runs.
STATUS (read): bit 0 network busy, 1 capturing, 2 done (since the last start or arm), 3 error, 4 ADC FIFO overflow,
bits 8-15 error code (rtl/pulsedl/nn_sequencer.py ``ERRORS``), bits 16-23 the failing layer. CYCLES: cycles the
network has been busy (cumulative); CAPTURE_WAIT: cycles captures waited for samples (cumulative); HWCONFIG: PEs
(bits 0-7), AUs per PE (8-15), kernel rows per PE (16-31).

Descriptor words: 0 op (bits 0-3: 0 END, 1 CONV/FC, 2 MAXPOOL, 3 AVGPOOL), bit 4 16x8 requantisation, bit 5 source
bank, bit 6 destination bank; 1 in_w | in_c << 16; 2 out_w | out_c << 16; 3 k | stride << 8 | pad << 16 (left
padding); 4 first kernel row | first quantisation channel << 16; 5 input offset (minus the int8 zero point, signed);
6 act_min | act_max << 16 (signed 16 each); 7 output zero point (signed).

An access outside these regions completes with read data 0 (writes are dropped).
"""
from dataclasses import dataclass

__all__ = ["ACCEL_BASE", "ACT_WORDS", "DMEM_BASE", "IMEM_BASE", "MAX_LAYERS", "MMIO_BASE", "PRESETS", "PulseDlConfig",
           "TIMER_BASE", "UART_BASE"]

IMEM_BASE = 0x0001_0000
DMEM_BASE = 0x0002_0000
MMIO_BASE = 0x0003_0000
UART_BASE = MMIO_BASE
TIMER_BASE = MMIO_BASE + 0x1000
ACCEL_BASE = 0x0004_0000
ACT_WORDS = 1024           #: entries per activation bank (64 samples x 16 channels)
LINE_BUFFER_DEPTH = 512    #: the largest convolution window k * in_c (and FC input count)
MAX_LAYERS = 16
QUANT_CHANNELS = 256       #: output channels over all layers
ADC_FIFO_DEPTH = 128
WEIGHT_WINDOW_WORDS = 8192
REGION_BYTES = 0x1_0000  #: each region decodes address bits 16 and up, so a memory holds at most 64 KiB


def _check_memory(name: str, size: int):
    if not isinstance(size, int) or size < 64 or size > REGION_BYTES or size & (size - 1):
        raise ValueError(f"{name} must be a power of two between 64 and {REGION_BYTES} bytes, not {size!r}")


@dataclass(frozen=True)
class PulseDlConfig:
    """Sizes of the instruction and data memories (bytes), the UART's clock cycles per bit, and the accelerator's
    processing elements, arithmetic units per PE (1, 2 or 4) and kernel-register rows per PE (a power of two; one
    row holds ``accel_aus`` weights)."""

    imem_bytes: int = 16384
    dmem_bytes: int = 16384
    uart_divisor: int = 4
    accel_pes: int = 2
    accel_aus: int = 4
    accel_kernel_rows: int = 4096

    act_words = ACT_WORDS
    line_buffer_depth = LINE_BUFFER_DEPTH
    max_layers = MAX_LAYERS
    quant_channels = QUANT_CHANNELS
    adc_fifo_depth = ADC_FIFO_DEPTH

    def __post_init__(self):
        _check_memory("imem_bytes", self.imem_bytes)
        _check_memory("dmem_bytes", self.dmem_bytes)
        if not isinstance(self.uart_divisor, int) or self.uart_divisor < 2:
            raise ValueError(f"uart_divisor must be an integer >= 2, not {self.uart_divisor!r}")
        if not isinstance(self.accel_pes, int) or not 1 <= self.accel_pes <= 8:
            raise ValueError(f"accel_pes must be an integer 1..8, not {self.accel_pes!r}")
        if self.accel_aus not in (1, 2, 4):
            raise ValueError(f"accel_aus must be 1, 2 or 4, not {self.accel_aus!r}")
        rows = self.accel_kernel_rows
        if not isinstance(rows, int) or rows < 16 or rows & (rows - 1) or self.accel_pes * rows > WEIGHT_WINDOW_WORDS:
            raise ValueError(f"accel_kernel_rows must be a power of two >= 16 with accel_pes * rows <= "
                             f"{WEIGHT_WINDOW_WORDS}, not {rows!r}")

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
