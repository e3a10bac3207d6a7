"""The 32 x 32-bit integer register file: two combinational read ports, one write port; x0 reads 0."""
from amaranth import Module, Mux
from amaranth.hdl import MemoryData
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["RegisterFile"]


class RegisterFile(wiring.Component):
    """Reads of ``rs1``/``rs2`` settle in the same cycle; a write of ``wdata`` to ``rd`` lands at the edge when
    ``we`` (a write to x0 is dropped, and x0 reads 0 whatever its storage word holds)."""

    def __init__(self):
        self.storage = MemoryData(shape=32, depth=32, init=[])
        super().__init__({"rs1": In(5), "rs2": In(5), "rd": In(5), "we": In(1), "wdata": In(32),
                          "rdata1": Out(32), "rdata2": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = memory = Memory(data=self.storage)
        r1 = memory.read_port(domain="comb")
        r2 = memory.read_port(domain="comb")
        w = memory.write_port()
        m.d.comb += [
            r1.addr.eq(self.rs1), r2.addr.eq(self.rs2),
            self.rdata1.eq(Mux(self.rs1 == 0, 0, r1.data)), self.rdata2.eq(Mux(self.rs2 == 0, 0, r2.data)),
            w.addr.eq(self.rd), w.data.eq(self.wdata), w.en.eq(self.we & (self.rd != 0)),
        ]
        return m
