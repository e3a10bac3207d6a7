"""NPU shared buffer (SHRAM): ``depth`` 64-bit words with the DMA's write port and a debug read port.

The memory is ``storage`` (load or inspect it as ``top.shram.storage``). ``write`` takes the DMA's byte-strobed
writes (always accepted); ``raddr`` -> ``rdata`` reads one word with one cycle of latency; ``lut_raddr`` ->
``lut_rdata`` is the activation lookup tables' read port (asynchronous: the compute unit's vector output stage looks
a value up in the cycle it computes it).
"""
from amaranth import Module
from amaranth.hdl import MemoryData
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.npu.dma import ShramWriteSignature
from rtl.npu.extmem import WORD_BITS

__all__ = ["Shram"]


class Shram(wiring.Component):
    """See the module docstring.

    Members
    -------
    write : ``In(ShramWriteSignature(depth))``; raddr : ``In(range(depth))``; rdata : ``Out(64)``
    lut_raddr : ``In(range(depth))``; lut_rdata : ``Out(64)``
    data : :class:`~amaranth.hdl.MemoryData`   the storage (for simulator access)
    """

    def __init__(self, *, depth: int):
        self.depth = depth
        self.data = MemoryData(shape=WORD_BITS, depth=depth, init=[])
        super().__init__({"write": In(ShramWriteSignature(depth)), "raddr": In(range(depth)),
                          "rdata": Out(WORD_BITS), "lut_raddr": In(range(depth)), "lut_rdata": Out(WORD_BITS)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = mem = Memory(data=self.data)
        wr = mem.write_port(granularity=8)
        rd = mem.read_port(domain="comb")
        m.d.comb += [wr.addr.eq(self.write.addr), wr.data.eq(self.write.data), wr.en.eq(self.write.en),
                     rd.addr.eq(self.raddr)]
        m.d.sync += self.rdata.eq(rd.data)
        lut = mem.read_port(domain="comb")
        m.d.comb += [lut.addr.eq(self.lut_raddr), self.lut_rdata.eq(lut.data)]
        return m
