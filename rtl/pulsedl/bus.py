"""A small Wishbone-classic-style data bus: the signature, and the address decoder that fans it out to slaves.

A master raises ``cyc`` and ``stb`` with ``adr`` (a byte address; bits 0-1 are ignored, ``sel`` picks the bytes of
the 32-bit word), ``we`` and ``dat_w``, and holds them until the slave answers with ``ack`` for one cycle (with
``dat_r`` on a read). A slave must not answer the same request twice: it acknowledges only when ``ack`` was low in
the previous cycle, or uses a longer handshake of its own.
"""
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BUS", "BusDecoder"]

BUS = wiring.Signature({
    "cyc": Out(1), "stb": Out(1), "we": Out(1), "adr": Out(32), "sel": Out(4), "dat_w": Out(32),
    "dat_r": In(32), "ack": In(1),
})


class BusDecoder(wiring.Component):
    """One master, slaves selected by the address field ``adr[shift:stop]`` (``regions``: name -> its value; ``stop``
    defaults to 32, the whole upper address).

    Members: ``bus`` (``In(BUS)``, from the master), one ``Out(BUS)`` per region named after it. A request to no
    region is acknowledged by the decoder itself with read data 0.
    """

    def __init__(self, regions: dict[str, int], shift: int, stop: int = 32):
        self._regions = dict(regions)
        self._shift = shift
        self._stop = stop
        super().__init__({"bus": In(BUS), **{name: Out(BUS) for name in regions}})

    def elaborate(self, platform):
        m = Module()
        page = self.bus.adr[self._shift:self._stop]
        hit_any = Signal()
        for name, value in self._regions.items():
            slave = getattr(self, name)
            hit = page == value
            m.d.comb += [
                slave.cyc.eq(self.bus.cyc & hit), slave.stb.eq(self.bus.stb & hit), slave.we.eq(self.bus.we),
                slave.adr.eq(self.bus.adr), slave.sel.eq(self.bus.sel), slave.dat_w.eq(self.bus.dat_w),
            ]
            with m.If(hit):
                m.d.comb += [hit_any.eq(1), self.bus.dat_r.eq(slave.dat_r), self.bus.ack.eq(slave.ack)]
        unmapped_ack = Signal()
        m.d.sync += unmapped_ack.eq(self.bus.cyc & self.bus.stb & ~hit_any & ~unmapped_ack)
        with m.If(~hit_any):
            m.d.comb += self.bus.ack.eq(unmapped_ack)
        return m
