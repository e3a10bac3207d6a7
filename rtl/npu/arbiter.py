"""NPU external-memory arbiter: several requesters share the one port of :class:`~rtl.npu.extmem.ExtMem`.

Fixed priority: requester 0 first (the top orders them DMA > compute OFM writes > records/weights > IFM stager >
command fetch), except that a requester whose ``urgent`` bit is set goes before every requester whose bit is clear
(among urgent ones, the same order): a need-based boost, so a requester the datapath is waiting on is not starved by
one that is only reading ahead. The memory answers reads in order, so the owner of every accepted read is queued in
the arbiter's ``owners`` FIFO (the 1-bit ``id`` is not enough for several requesters) and the head of that queue
routes each response. A read is only accepted while the queue has room (``queue_depth`` entries: one more than the
memory's own queue).
"""
from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from rtl.npu.extmem import MemPortSignature

__all__ = ["Arbiter"]


class Arbiter(wiring.Component):
    """See the module docstring.

    Members
    -------
    req_0 .. req_{n-1} : ``In(MemPortSignature)``   the requesters, highest priority first
    urgent : ``In(n)``   bit ``i``: requester ``i`` goes before the non-urgent ones
    mem : ``Out(MemPortSignature)``   to the memory (``id`` 0)
    """

    def __init__(self, *, requesters: int, queue_depth: int):
        self.n, self.queue_depth = requesters, queue_depth
        super().__init__({**{f"req_{n}": In(MemPortSignature) for n in range(requesters)},
                          "urgent": In(requesters), "mem": Out(MemPortSignature)})

    def elaborate(self, platform):
        m = Module()
        ext = self.mem
        requesters = [getattr(self, f"req_{n}") for n in range(self.n)]
        owner_bits = (len(requesters) - 1).bit_length()
        m.submodules.owners = owners = SyncFIFO(width=owner_bits, depth=self.queue_depth)
        grant = [Signal(name=f"grant_{n}") for n in range(len(requesters))]
        want_urgent = [bus.req.valid & self.urgent[n] for n, bus in enumerate(requesters)]
        any_urgent = Signal()
        m.d.comb += any_urgent.eq(Cat(*want_urgent).any())
        taken = taken_urgent = 0
        for n, bus in enumerate(requesters):
            m.d.comb += grant[n].eq(Mux(any_urgent, want_urgent[n] & ~taken_urgent, bus.req.valid & ~taken))
            taken = taken | bus.req.valid
            taken_urgent = taken_urgent | want_urgent[n]
        sel_payload = requesters[-1].req.payload.as_value()
        for n in reversed(range(len(requesters) - 1)):
            sel_payload = Mux(grant[n], requesters[n].req.payload.as_value(), sel_payload)
        sel_write = Signal()
        m.d.comb += sel_write.eq(ext.req.payload.write)
        can_go = ext.req.ready & (sel_write | owners.w_rdy)
        m.d.comb += [
            ext.req.valid.eq(taken & (sel_write | owners.w_rdy)),
            ext.req.payload.eq(sel_payload),
            ext.req.payload.id.eq(0),
            owners.w_en.eq(ext.req.valid & ext.req.ready & ~sel_write),
            owners.w_data.eq(sum(n * grant[n] for n in range(len(requesters)))),
        ]
        head_ready = Array(bus.resp.ready for bus in requesters)[owners.r_data]
        for n, bus in enumerate(requesters):
            m.d.comb += [
                bus.req.ready.eq(can_go & grant[n]),
                bus.resp.payload.eq(ext.resp.payload),
                bus.resp.valid.eq(ext.resp.valid & owners.r_rdy & (owners.r_data == n)),
            ]
        m.d.comb += [
            ext.resp.ready.eq(owners.r_rdy & head_ready),
            owners.r_en.eq(ext.resp.valid & ext.resp.ready),
        ]
        return m
