"""The MAC output path's lookup tables: a copy of the SHRAM's table area with one read port per output lane.

Vela DMAs an activation table (ACTIVATION TABLE_0..7) into the SHRAM's last :data:`LUT_BYTES` (256-byte slots,
``rtl.npu.vector_unit``); a conv / depthwise / fully-connected op with a table activation looks up every one of its
``lanes`` output values per cycle. The SHRAM has one table read port (the vector unit's), so this unit keeps its own
copy of the table area: every SHRAM write (the DMA's ``write`` port, byte-strobed) that lands in the area is
written here too, in the same cycle, so the copy always equals the SHRAM's table area. Reads are asynchronous, as
the SHRAM's table port is (the output unit looks a value up in the cycle it computes it).

8-bit tables only: lane ``n`` reads byte ``index[n]`` (0..255) of slot ``slot`` onto ``entry[n]``.
"""
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.npu.config import EXT_WORD_BYTES
from rtl.npu.dma import ShramWriteSignature
from rtl.npu.extmem import WORD_BITS

__all__ = ["LUT_BYTES", "ActivationTable"]

LUT_BYTES = 2048    # the SHRAM's last 2 KiB hold the lookup tables (Vela: shram_lut_address, 256-byte slots)
_SLOT_WORDS = 256 // EXT_WORD_BYTES


class ActivationTable(wiring.Component):
    """See the module docstring.

    Members
    -------
    write : ``In(ShramWriteSignature(shram_depth))``   the SHRAM's write port, observed
    slot : ``In(3)``   the table (ACTIVATION TABLE_n)
    index : ``In(8).array(lanes)``; entry : ``Out(8).array(lanes)``
    """

    def __init__(self, *, shram_depth: int, lanes: int):
        self.shram_depth, self.lanes = shram_depth, lanes
        self.words = LUT_BYTES // EXT_WORD_BYTES
        super().__init__({"write": In(ShramWriteSignature(shram_depth)), "slot": In(3),
                          "index": In(8).array(lanes), "entry": Out(8).array(lanes)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = mem = Memory(shape=WORD_BITS, depth=self.words, init=[])
        first = self.shram_depth - self.words
        wr = mem.write_port(granularity=8)
        in_area = self.write.addr >= first
        m.d.comb += [wr.addr.eq(self.write.addr - first), wr.data.eq(self.write.data),
                     wr.en.eq(self.write.en & in_area.replicate(EXT_WORD_BYTES))]
        for lane in range(self.lanes):
            rd = mem.read_port(domain="comb")
            index = self.index[lane]
            m.d.comb += [rd.addr.eq(self.slot * _SLOT_WORDS + index[3:]),
                         self.entry[lane].eq(rd.data.word_select(index[:3], 8))]
        return m
