"""The load/store unit: byte lanes and sign extension between the core and the 32-bit data bus (combinational)."""
from amaranth import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.pulsedl.bus import BUS

__all__ = ["LoadStoreUnit"]


class LoadStoreUnit(wiring.Component):
    """While ``req``, drives a bus access of ``funct3``'s size (LB/LH/LW/LBU/LHU, SB/SH/SW) at ``addr``;
    ``done`` is the bus's ``ack`` and ``load_data`` the loaded value, extended. ``misaligned``: the address is not
    a multiple of the access size (the core traps instead of issuing it)."""

    def __init__(self):
        super().__init__({
            "req": In(1), "write": In(1), "funct3": In(3), "addr": In(32), "store_data": In(32),
            "done": Out(1), "load_data": Out(32), "misaligned": Out(1),
            "bus": Out(BUS),
        })

    def elaborate(self, platform):
        m = Module()
        size, offset = self.funct3[:2], self.addr[:2]
        m.d.comb += self.misaligned.eq(((size == 1) & offset[0]) | ((size == 2) & (offset != 0)))
        sel = Signal(4)
        wdata = Signal(32)
        with m.Switch(size):
            with m.Case(0):
                m.d.comb += [sel.eq(Const(1, 4) << offset), wdata.eq(self.store_data[:8].replicate(4))]
            with m.Case(1):
                m.d.comb += [sel.eq(Mux(offset[1], 0b1100, 0b0011)), wdata.eq(self.store_data[:16].replicate(2))]
            with m.Default():
                m.d.comb += [sel.eq(0b1111), wdata.eq(self.store_data)]
        m.d.comb += [
            self.bus.cyc.eq(self.req), self.bus.stb.eq(self.req), self.bus.we.eq(self.write),
            self.bus.adr.eq(self.addr), self.bus.sel.eq(sel), self.bus.dat_w.eq(wdata), self.done.eq(self.bus.ack),
        ]
        word = self.bus.dat_r >> (offset * 8)
        unsigned = self.funct3[2]
        with m.Switch(size):
            with m.Case(0):
                m.d.comb += self.load_data.eq(Mux(unsigned, word[:8], word[:8].as_signed()))
            with m.Case(1):
                m.d.comb += self.load_data.eq(Mux(unsigned, word[:16], word[:16].as_signed()))
            with m.Default():
                m.d.comb += self.load_data.eq(word)
        return m
