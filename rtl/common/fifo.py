"""Synchronous first-in first-out queue whose entries live in a :class:`~amaranth.lib.memory.Memory`.

Unlike :class:`amaranth.lib.fifo.SyncFIFO`, every stored bit is in one memory (exposed as :attr:`MemoryFIFO.storage`
for fault injection) and the read side uses a synchronous read port, so the design maps onto block RAM.
"""
from amaranth import Module, Mux, Signal
from amaranth.hdl import MemoryData
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.common.stream import _check_positive_int, transfer

__all__ = ["MemoryFIFO"]


class MemoryFIFO(wiring.Component):
    """First-word-fall-through FIFO of ``depth`` entries of ``width`` bits.

    Timing: a payload written into an empty FIFO is valid on ``r_stream`` :attr:`latency` (1) cycle later. When
    full, ``w_stream.ready`` is low even if a read happens in the same cycle (so ``w_stream.ready`` never depends on
    ``r_stream.ready``); hence both sides sustain one transfer per cycle for ``depth >= 2``, and a ``depth == 1``
    FIFO moves one payload every two cycles.

    The head is read combinationally from the storage at ``rd_ptr`` (an asynchronous read port), so every
    flip-flop of the FIFO is a named register and a flip in the head entry shows on ``r_stream.payload`` at once.

    Parameters
    ----------
    width : int
        Payload width in bits (>= 1).
    depth : int
        Number of entries (>= 1, need not be a power of two).

    Members
    -------
    w_stream : ``In(stream.Signature(width))``
    r_stream : ``Out(stream.Signature(width))``
    level : ``Out(range(depth + 1))``
        Number of entries held (registered).

    Attributes
    ----------
    storage : :class:`~amaranth.hdl.MemoryData`
        The entries; ``storage[i]`` is slot ``i`` (pysim: ``ctx.get``/``ctx.set`` it to inspect or flip bits).
    """

    latency = 1

    def __init__(self, *, width: int, depth: int):
        self._width = _check_positive_int("width", width)
        self._depth = _check_positive_int("depth", depth)
        self.storage = MemoryData(shape=self._width, depth=self._depth, init=[])
        super().__init__({
            "w_stream": In(stream.Signature(self._width)),
            "r_stream": Out(stream.Signature(self._width)),
            "level": Out(range(self._depth + 1)),
        })

    @property
    def width(self) -> int:
        return self._width

    @property
    def depth(self) -> int:
        return self._depth

    def elaborate(self, platform):
        m = Module()
        depth = self._depth
        m.submodules.storage = memory = Memory(data=self.storage)
        w_port = memory.write_port()
        r_port = memory.read_port(domain="comb")

        wr_ptr = Signal(range(depth), name="wr_ptr")
        rd_ptr = Signal(range(depth), name="rd_ptr")
        count = Signal(range(depth + 1), name="count")

        do_write = transfer(self.w_stream)
        do_read = transfer(self.r_stream)
        m.d.comb += [
            self.w_stream.ready.eq(count != depth),
            self.r_stream.valid.eq(count != 0),
            self.r_stream.payload.eq(r_port.data),
            self.level.eq(count),
            w_port.en.eq(do_write),
            w_port.addr.eq(wr_ptr),
            w_port.data.eq(self.w_stream.payload),
            r_port.addr.eq(rd_ptr),
        ]
        with m.If(do_read):
            m.d.sync += rd_ptr.eq(_wrap_incr(rd_ptr, depth))
        with m.If(do_write):
            m.d.sync += wr_ptr.eq(_wrap_incr(wr_ptr, depth))
        with m.If(do_write & ~do_read):
            m.d.sync += count.eq(count + 1)
        with m.Elif(do_read & ~do_write):
            m.d.sync += count.eq(count - 1)
        return m


def _wrap_incr(ptr: Signal, depth: int):
    """``(ptr + 1) % depth`` for a pointer that is always below ``depth``."""
    if depth & (depth - 1) == 0:  # power of two (including 1, where the pointer is zero bits wide)
        return (ptr + 1)[:len(ptr)]
    return Mux(ptr == depth - 1, 0, ptr + 1)
