"""Simulation model of the system memory behind the NPU: byte-addressed, 64-bit words, fixed latency, throttled.

This is a simulation-top block (it stands in for the SoC's AXI memory), not part of the NPU proper. It is loaded and
read by the native harness through its state element ``storage`` (``NativeSim.load_memory`` /
``read_memory``), so no Python runs per cycle.

Request/response protocol (:data:`MemPortSignature`, AXI-like but not AXI): one request per transfer on ``req``
(``addr`` is a byte address; bits [2:0] are ignored, every request moves one aligned 64-bit word), reads answered in
order on ``resp``. ``id`` is carried from a read request to its response so an arbiter can route responses. The
memory evaluates ``req`` afresh every cycle, so a requester may change ``payload`` while waiting (``valid`` must
still not depend on ``ready``).

Timing (:class:`ExtMem`):

* A read request accepted in cycle ``t`` has its response valid in cycle ``t + latency`` (when the response queue
  is empty and ``resp.ready`` is high); responses queue in a ``latency + 1`` entry FIFO, and ``req.ready`` is low
  for reads while ``latency + 1`` reads are unanswered, so ``resp.ready`` may be dropped at any time.
* Bandwidth: every accepted request (read or write) costs 8 bytes of credit; the credit grows by ``bandwidth``
  bytes per cycle up to ``7 + bandwidth``, and a request needs 8, so the sustained rate is exactly ``bandwidth``
  bytes/cycle (after an idle spell at most one extra word may go early).
* A request outside ``size`` bytes is accepted and does nothing; a read gets ``err`` = 1 and data 0; ``fault``
  (sticky until reset) records either.

With ``host_storage`` the words live outside the netlist, in the native harness (``sim.harness.HOST_MEMORY_PORTS``):
the ``host`` port carries the word address, the write strobes and data out and the read data in, in place of the
Memory's comb read port and sync write port; everything else (timing, range check, fault) is the same logic. That is
how the model holds many MiB without a large Amaranth Memory (whose elaboration and build cost grow with its depth).

On an FPGA (``rampart synth npu``) the model is built as it is, as on-chip memory: the read data is registered
straight after the memory (the out-of-range zero becomes a synchronous reset of that register), so Yosys maps
``storage`` to block RAM; on the ECP5 each DP16KD holds 2 KiB of it (the ``u55-32`` preset's 256 KiB: 128 of the
LFE5U-85F's 208 blocks; tb/sim/test_synth_npu.py checks the mapping). Changing that read path to use the data
combinationally would put the memory in flip-flops and the NPU would no longer fit.
"""
from amaranth import Module, Mux, Signal
from amaranth.hdl import MemoryData
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.common.fifo import MemoryFIFO
from rtl.npu.config import EXT_WORD_BYTES

__all__ = ["MemRequest", "MemResponse", "MemPortSignature", "HostStorageSignature", "ExtMem"]

ADDR_WIDTH = 32
WORD_BITS = 8 * EXT_WORD_BYTES


class MemRequest(data.Struct):
    addr: ADDR_WIDTH        # byte address; [2:0] ignored
    write: 1                # 1 = write ``wdata`` under ``wstrb``, 0 = read
    wdata: WORD_BITS
    wstrb: EXT_WORD_BYTES   # byte enables of a write
    id: 1                   # returned with the read response


class MemResponse(data.Struct):
    rdata: WORD_BITS
    err: 1                  # the address was outside the memory
    id: 1


#: A requester's view of a memory port (the memory itself has ``In(MemPortSignature)``).
MemPortSignature = wiring.Signature({
    "req": Out(stream.Signature(MemRequest)),
    "resp": In(stream.Signature(MemResponse)),
})


def HostStorageSignature(depth: int) -> wiring.Signature:
    """The port to storage kept by the harness (``depth`` words, a power of two): seen from the memory model."""
    return wiring.Signature({
        "addr": Out(max(1, (depth - 1).bit_length())),   # word address
        "wen": Out(EXT_WORD_BYTES),                       # byte write strobes (0: no write)
        "wdata": Out(WORD_BITS),
        "rdata": In(WORD_BITS),                           # the word at ``addr`` (before this cycle's write)
    })


class ExtMem(wiring.Component):
    """External memory model (see the module docstring for the protocol and timing).

    Parameters
    ----------
    size : int
        Bytes (a multiple of 8).
    latency : int
        Read latency in cycles (>= 2).
    bandwidth : int
        Sustained bytes per cycle (1..8).
    host_storage : bool
        Keep the words in the harness (``host`` port) instead of ``storage``; ``size // 8`` must be a power of two.

    Members
    -------
    bus : ``In(MemPortSignature)``
    fault : ``Out(1)``
        Sticky: a request addressed beyond ``size``.
    host : ``Out(HostStorageSignature(size // 8))``
        Only with ``host_storage``.

    Attributes
    ----------
    storage : MemoryData or None
        ``size // 8`` words of 64 bits; byte ``a`` is bits ``[8*(a%8), 8*(a%8)+8)`` of word ``a // 8`` (None with
        ``host_storage``; the harness keeps the same layout).
    """

    def __init__(self, *, size: int, latency: int, bandwidth: int, host_storage: bool = False):
        if size <= 0 or size % EXT_WORD_BYTES:
            raise ValueError(f"size must be a positive multiple of {EXT_WORD_BYTES}, not {size!r}")
        if latency < 2:
            raise ValueError(f"latency must be at least 2, not {latency!r}")
        if not 1 <= bandwidth <= EXT_WORD_BYTES:
            raise ValueError(f"bandwidth must be in 1..{EXT_WORD_BYTES}, not {bandwidth!r}")
        self.size, self.latency, self.bandwidth = size, latency, bandwidth
        self.depth = size // EXT_WORD_BYTES
        self.host_storage = host_storage
        members = {"bus": In(MemPortSignature), "fault": Out(1)}
        if host_storage:
            if self.depth & (self.depth - 1):
                raise ValueError(f"host storage needs a power-of-two number of words, not {self.depth}")
            self.storage = None
            members["host"] = Out(HostStorageSignature(self.depth))
        else:
            self.storage = MemoryData(shape=WORD_BITS, depth=self.depth, init=[])
        super().__init__(members)

    @property
    def queue_depth(self) -> int:
        """Reads that may be unanswered at once (enough for one read per cycle at full bandwidth)."""
        return self.latency + 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.queue = queue = MemoryFIFO(width=len(self.bus.resp.payload.as_value()), depth=self.queue_depth)

        req = self.bus.req.payload
        word = req.addr[3:]
        in_range = word < self.depth

        cap = EXT_WORD_BYTES + self.bandwidth - 1   # no credit is lost at the cap: exact sustained bandwidth
        credit = Signal(range(cap + 1), init=EXT_WORD_BYTES)
        unanswered = Signal(range(self.queue_depth + 1))
        has_credit = credit >= EXT_WORD_BYTES
        m.d.comb += self.bus.req.ready.eq(has_credit & (req.write | (unanswered != self.queue_depth)))
        accept = self.bus.req.valid & self.bus.req.ready
        accept_read = accept & ~req.write

        # Bandwidth: credit refills by ``bandwidth`` per cycle (up to ``cap``); a request spends a whole word.
        spent = Signal.like(credit)
        m.d.comb += spent.eq(credit - EXT_WORD_BYTES * accept)
        refilled = spent + self.bandwidth
        m.d.sync += credit.eq(Mux(refilled > cap, cap, refilled))

        with m.If(accept & ~in_range):
            m.d.sync += self.fault.eq(1)

        write_en = Mux(accept & req.write & in_range, req.wstrb, 0)
        if self.host_storage:
            rdata = self.host.rdata
            m.d.comb += [self.host.addr.eq(word), self.host.wdata.eq(req.wdata), self.host.wen.eq(write_en)]
        else:
            m.submodules.storage = memory = Memory(data=self.storage)
            r_port = memory.read_port(domain="comb")  # registered below (a fault site; block RAM on an FPGA)
            w_port = memory.write_port(granularity=8)
            rdata = r_port.data
            m.d.comb += [w_port.addr.eq(word), w_port.data.eq(req.wdata), w_port.en.eq(write_en),
                         r_port.addr.eq(word)]

        # Read pipeline: stage 0 registers the read port (data valid one cycle after acceptance), then latency-2
        # registers, then the response queue (one more cycle).
        valid0 = Signal()
        resp0 = Signal(MemResponse)
        m.d.sync += [valid0.eq(accept_read), resp0.err.eq(~in_range), resp0.id.eq(req.id),
                     resp0.rdata.eq(Mux(in_range, rdata, 0))]
        valid, resp = valid0, resp0
        for stage in range(self.latency - 2):
            v_next, r_next = Signal(name=f"delay{stage}_valid"), Signal(MemResponse, name=f"delay{stage}")
            m.d.sync += [v_next.eq(valid), r_next.eq(resp)]
            valid, resp = v_next, r_next
        m.d.comb += [
            queue.w_stream.valid.eq(valid),
            queue.w_stream.payload.eq(resp),
            self.bus.resp.valid.eq(queue.r_stream.valid),
            self.bus.resp.payload.eq(queue.r_stream.payload),
            queue.r_stream.ready.eq(self.bus.resp.ready),
        ]
        popped = queue.r_stream.valid & queue.r_stream.ready
        m.d.sync += unanswered.eq(unanswered + accept_read - popped)
        return m
