"""The PulseDL-II SoC top: the RV32IM core, its instruction and data memories, the bus, the UART, the timer and the
1-D CNN accelerator (rtl/pulsedl/accel.py) with its ADC stream input (``adc_valid``/``adc_data``).

The memories are loaded by the harness (``top.imem.storage``, ``top.dmem.storage``; see drivers/pulsedl.py), or, on
a board, start from a boot image set before elaboration (``imem_init`` / ``dmem_init``, and the deployed network's
images in the accelerator's tables and kernel registers, ``accel_images``; drivers/pulsedl_boot.py);
``halted``/``trap`` say the core has stopped, ``instret`` counts retired instructions, ``uart_tx``/``uart_rx``
are the serial lines.
"""
from amaranth import Module, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.pulsedl.accel import ACCEL_BLOCKS, NnAccelerator
from rtl.pulsedl.bus import BusDecoder
from rtl.pulsedl.config import ACCEL_BASE, DMEM_BASE, MMIO_BASE, PulseDlConfig
from rtl.pulsedl.cpu import Cpu
from rtl.pulsedl.memories import DataMemory, InstructionMemory
from rtl.pulsedl.peripherals import Timer, UartPeripheral

__all__ = ["BLOCK_MAP", "PulseSoc"]

#: Functional blocks for fault injection and FMEDA (dotted instance path -> block).
BLOCK_MAP = {
    "cpu": "cpu_control",               # FSM state, halted/trap, instret
    "cpu.fetch": "cpu_fetch",           # pc and instruction register
    "cpu.regfile": "cpu_regfile",
    "cpu.divider": "cpu_muldiv",
    "imem": "imem",
    "dmem": "dmem",
    "bus": "bus",
    "periph_bus": "bus",
    "uart": "uart",
    "timer": "timer",
    **{f"accel.{path}" if path else "accel": block for path, block in ACCEL_BLOCKS.items()},
}


class PulseSoc(wiring.Component):
    def __init__(self, config: PulseDlConfig):
        self.config = config
        self.imem_init: list[int] = []      # boot image (board builds); empty: the harness loads the memories
        self.dmem_init: list[int] = []
        self.accel_images = None            # deployed network (board builds; NnAccelerator.images)
        super().__init__({"halted": Out(1), "trap": Out(1), "instret": Out(32), "uart_tx": Out(1, init=1),
                          "uart_rx": In(1, init=1),
                          "adc_valid": In(1), "adc_data": In(signed(16)), "accel_busy": Out(1),
                          "adc_level": Out(range(config.adc_fifo_depth + 1))})

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        m.submodules.cpu = cpu = Cpu()
        m.submodules.imem = imem = InstructionMemory(cfg.imem_words, self.imem_init)
        m.submodules.dmem = dmem = DataMemory(cfg.dmem_words, self.dmem_init)
        m.submodules.bus = bus = BusDecoder({"dmem": DMEM_BASE >> 16, "mmio": MMIO_BASE >> 16,
                                             "accel": ACCEL_BASE >> 16}, shift=16)
        m.submodules.periph_bus = periph = BusDecoder({"uart": 0, "timer": 1}, shift=12, stop=16)
        m.submodules.uart = uart = UartPeripheral(cfg.uart_divisor)
        m.submodules.timer = timer = Timer()
        m.submodules.accel = accel = NnAccelerator(cfg)
        accel.images = self.accel_images
        wiring.connect(m, bus.accel, accel.bus)
        wiring.connect(m, cpu.imem, imem.fetch)
        wiring.connect(m, cpu.dbus, bus.bus)
        wiring.connect(m, bus.dmem, dmem.bus)
        wiring.connect(m, bus.mmio, periph.bus)
        wiring.connect(m, periph.uart, uart.bus)
        wiring.connect(m, periph.timer, timer.bus)
        m.d.comb += [self.halted.eq(cpu.halted), self.trap.eq(cpu.trap), self.instret.eq(cpu.instret),
                     self.uart_tx.eq(uart.tx), uart.rx.eq(self.uart_rx),
                     accel.adc_valid.eq(self.adc_valid), accel.adc_data.eq(self.adc_data),
                     self.accel_busy.eq(accel.busy), self.adc_level.eq(accel.adc_level)]
        return m
