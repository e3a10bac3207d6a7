"""The SoC's instruction memory (a fetch port) and data memory (a bus slave with byte write enables).

Both read through a comb port into an explicit register (a fault site; block RAM on an FPGA): the instruction
register lives in the CPU's fetch unit, the data memory's read register here.
"""
from amaranth import Module, Signal
from amaranth.hdl import MemoryData
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.pulsedl.bus import BUS

__all__ = ["FETCH", "DataMemory", "InstructionMemory"]

#: The CPU's instruction port: a word address out, the addressed word back in the same cycle.
FETCH = wiring.Signature({"adr": Out(30), "data": In(32)})


class InstructionMemory(wiring.Component):
    """``words`` 32-bit words read combinationally at ``fetch.adr`` (modulo the depth); loaded by the harness, or
    initialised from ``init`` (a boot image for a board build)."""

    def __init__(self, words: int, init=()):
        self.storage = MemoryData(shape=32, depth=words, init=list(init))
        super().__init__({"fetch": In(FETCH)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = memory = Memory(data=self.storage)
        port = memory.read_port(domain="comb")
        m.d.comb += [port.addr.eq(self.fetch.adr), self.fetch.data.eq(port.data)]
        return m


class DataMemory(wiring.Component):
    """``words`` 32-bit words on a bus slave port: a write lands (per ``sel`` byte) and a read is registered at
    the first edge of a request; ``ack`` follows one cycle later. ``init``: initial words (a boot image's data)."""

    def __init__(self, words: int, init=()):
        self.storage = MemoryData(shape=32, depth=words, init=list(init))
        super().__init__({"bus": In(BUS)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = memory = Memory(data=self.storage)
        read = memory.read_port(domain="comb")
        write = memory.write_port(granularity=8)
        rdata = Signal(32)
        request = self.bus.cyc & self.bus.stb & ~self.bus.ack
        word = self.bus.adr[2:]
        m.d.comb += [read.addr.eq(word), write.addr.eq(word), write.data.eq(self.bus.dat_w),
                     self.bus.dat_r.eq(rdata)]
        with m.If(request & self.bus.we):
            m.d.comb += write.en.eq(self.bus.sel)
        m.d.sync += self.bus.ack.eq(request)
        with m.If(request):
            m.d.sync += rdata.eq(read.data)
        return m
