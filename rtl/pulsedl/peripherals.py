"""Memory-mapped peripherals on the SoC bus: the UART transmitter and the cycle timer (map in rtl/pulsedl/config)."""
from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.common.uart import UartRx, UartTx
from rtl.pulsedl.bus import BUS

__all__ = ["Timer", "UartPeripheral"]


class UartPeripheral(wiring.Component):
    """8N1 UART. Write ``+0``: send ``dat_w[0:8]`` (acknowledged once the transmitter took it, so the store waits
    while a frame is on the line). Read ``+0``: the received byte in bits 0-7 and bit 8 set when there was one
    (the read takes it). Read ``+4``: status, bit 0 transmitter busy, bit 1 a received byte is waiting."""

    def __init__(self, divisor: int):
        self._divisor = divisor
        super().__init__({"bus": In(BUS), "tx": Out(1, init=1), "rx": In(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.transmitter = tx = UartTx(divisor=self._divisor)
        m.submodules.receiver = rx = UartRx(divisor=self._divisor)
        request = self.bus.cyc & self.bus.stb & ~self.bus.ack
        read_data = request & ~self.bus.we & ~self.bus.adr[2]
        ack = Signal()
        rdata = Signal(32)
        m.d.comb += [tx.i_stream.payload.eq(self.bus.dat_w[:8]), tx.i_stream.valid.eq(request & self.bus.we),
                     rx.rx.eq(self.rx), rx.o_stream.ready.eq(read_data),
                     self.tx.eq(tx.tx), self.bus.ack.eq(ack), self.bus.dat_r.eq(rdata)]
        m.d.sync += ack.eq(request & (~self.bus.we | tx.i_stream.ready))
        with m.If(read_data):
            m.d.sync += rdata.eq(Cat(rx.o_stream.payload, rx.o_stream.valid))
        with m.Elif(request):
            m.d.sync += rdata.eq(Cat(tx.busy, rx.o_stream.valid))
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
