"""Memory-mapped peripherals on the SoC bus: the UART transmitter and the cycle timer (map in rtl/pulsedl/config)."""
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.common.uart import UartTx
from rtl.pulsedl.bus import BUS

__all__ = ["Timer", "UartPeripheral"]


class UartPeripheral(wiring.Component):
    """8N1 transmitter: a write sends ``dat_w[0:8]`` (acknowledged once the transmitter took it, so the store
    waits while a frame is on the line); a read returns 1 while a frame is being sent."""

    def __init__(self, divisor: int):
        self._divisor = divisor
        super().__init__({"bus": In(BUS), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.transmitter = tx = UartTx(divisor=self._divisor)
        request = self.bus.cyc & self.bus.stb & ~self.bus.ack
        ack = Signal()
        status = Signal(32)
        m.d.comb += [tx.i_stream.payload.eq(self.bus.dat_w[:8]), tx.i_stream.valid.eq(request & self.bus.we),
                     self.tx.eq(tx.tx), self.bus.ack.eq(ack), self.bus.dat_r.eq(status)]
        m.d.sync += ack.eq(request & (~self.bus.we | tx.i_stream.ready))
        m.d.sync += status.eq(tx.busy)
        return m


class Timer(wiring.Component):
    """A free-running 64-bit cycle counter; ``+0`` reads its low word, ``+4`` its high word."""

    def __init__(self):
        super().__init__({"bus": In(BUS)})

    def elaborate(self, platform):
        m = Module()
        count = Signal(64)
        rdata = Signal(32)
        ack = Signal()
        request = self.bus.cyc & self.bus.stb & ~ack
        m.d.sync += [count.eq(count + 1), ack.eq(request)]
        with m.If(request):
            m.d.sync += rdata.eq(count.word_select(self.bus.adr[2], 32))
        m.d.comb += [self.bus.ack.eq(ack), self.bus.dat_r.eq(rdata)]
        return m
