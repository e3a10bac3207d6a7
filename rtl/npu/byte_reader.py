"""NPU byte reader: streams ``length`` bytes from any byte address of external memory, one byte per cycle.

The compute unit's loader reads the scale/bias records and the compressed weight stream through it. Words are
requested ahead into a ``prefetch``-word FIFO (default :data:`PREFETCH`), and only while that FIFO has room for every
answer, so responses are always taken at once (the reader never blocks the shared response path). The next word
loads in the cycle the last byte of the current one is taken (no bubble).

``start`` (with ``addr``, ``length``) begins a stream; ``cancel`` in the same cycle makes it empty (``idle`` at
once). ``valid``/``data``/``last`` present the next byte; ``take`` consumes it. With ``word`` high at ``start``
(``addr`` and ``length`` multiples of 8) the stream is presented a whole word at a time instead: ``word_data`` is
the next 8 bytes and ``take`` consumes all of them. ``idle``: every word requested and every byte taken. ``err``:
a response came back with ``err`` (sticky until ``clear_err``).
"""
from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.common.fifo import MemoryFIFO
from rtl.npu.extmem import ADDR_WIDTH, WORD_BITS, MemPortSignature

__all__ = ["ByteReader", "PREFETCH"]

PREFETCH = 4    # words requested ahead of the output (default; a word per cycle needs memory latency + 2)


class ByteReader(wiring.Component):
    """See the module docstring.

    Members
    -------
    bus : ``Out(MemPortSignature)``   (reads only)
    start, cancel, word : ``In(1)``; addr, length : ``In(32)``
    valid, last : ``Out(1)``; data : ``Out(8)``; word_data : ``Out(64)``; take : ``In(1)``
    idle : ``Out(1)``; err : ``Out(1)``; clear_err : ``In(1)``
    """

    def __init__(self, *, prefetch: int = PREFETCH):
        self.prefetch = prefetch
        super().__init__({
            "bus": Out(MemPortSignature),
            "start": In(1), "cancel": In(1), "word": In(1), "addr": In(ADDR_WIDTH), "length": In(ADDR_WIDTH),
            "valid": Out(1), "data": Out(8), "word_data": Out(WORD_BITS), "last": Out(1), "take": In(1),
            "idle": Out(1), "err": Out(1), "clear_err": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        m.submodules.prefetch = wfifo = MemoryFIFO(width=WORD_BITS, depth=self.prefetch)
        first_addr = Signal(ADDR_WIDTH)  # byte address of the first byte
        raddr = Signal(ADDR_WIDTH)       # next word to request
        words = Signal(ADDR_WIDTH)       # words still to request
        left = Signal(ADDR_WIDTH)        # bytes still to emit
        inflight = Signal(range(self.prefetch + 1))
        buf = Signal(WORD_BITS)
        idx = Signal(3)
        have = Signal()
        first = Signal()
        last = Signal()
        word = Signal()                  # word mode (``word`` at ``start``)
        take = self.take
        m.d.comb += [self.data.eq(buf.word_select(idx, 8)), self.word_data.eq(buf),
                     last.eq(Mux(word, left == 8, left == 1)), self.last.eq(last),
                     self.valid.eq(have), self.idle.eq((left == 0) & (words == 0))]

        with m.If(self.start):
            addr = self.addr
            m.d.sync += [first_addr.eq(addr), raddr.eq(addr & ~7), words.eq(((addr & 7) + self.length + 7) >> 3),
                         left.eq(self.length), have.eq(0), first.eq(1), word.eq(self.word)]
        with m.If(self.cancel):
            m.d.sync += [words.eq(0), left.eq(0)]
        with m.If(self.clear_err):
            m.d.sync += self.err.eq(0)

        req_go = Signal()
        with m.If((words != 0) & (inflight + wfifo.level < self.prefetch)):
            m.d.comb += [bus.req.valid.eq(1), bus.req.payload.addr.eq(raddr)]
            with m.If(bus.req.ready):
                m.d.comb += req_go.eq(1)
                m.d.sync += [raddr.eq(raddr + 8), words.eq(words - 1)]
        m.d.comb += [bus.resp.ready.eq(1), wfifo.w_stream.payload.eq(bus.resp.payload.rdata),
                     wfifo.w_stream.valid.eq(bus.resp.valid)]
        with m.If(bus.resp.valid & bus.resp.payload.err):
            m.d.sync += self.err.eq(1)
        with m.If(req_go & ~bus.resp.valid):
            m.d.sync += inflight.eq(inflight + 1)
        with m.Elif(~req_go & bus.resp.valid):
            m.d.sync += inflight.eq(inflight - 1)
        word_end = Signal()              # this take consumes the rest of the word
        m.d.comb += word_end.eq(word | (idx == 7))
        with m.If(take):
            m.d.sync += [left.eq(left - Mux(word, 8, 1)), idx.eq(idx + 1)]
            with m.If(word_end | last):
                m.d.sync += have.eq(0)
        with m.If((~have & (left != 0)) | (take & word_end & ~last)):
            m.d.comb += wfifo.r_stream.ready.eq(1)
            with m.If(wfifo.r_stream.valid):
                m.d.sync += [buf.eq(wfifo.r_stream.payload), have.eq(1), first.eq(0),
                             idx.eq(Mux(first, first_addr[:3], 0))]
        return m
