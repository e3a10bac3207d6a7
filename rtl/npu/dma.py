"""DMA engine: executes one Ethos-U55 ``NPU_OP_DMA_START`` descriptor (1-D copy) at a time.

Descriptor (:class:`DmaDesc`) = the DMA0_* registers at the kick (SPEC.md section 7; opcodes in Vela's
``ethosu/vela/ethos_u55_regs/ethos_u55_regs.py``): ``DMA0_SRC_REGION`` / ``DMA0_DST_REGION`` param
(``npu_set_dma0_src_region_t``: ``region`` [7:0], ``internal`` [8], ``stride_mode`` [10:9]), ``DMA0_SRC``,
``DMA0_DST`` (byte offsets in the region) and ``DMA0_LEN`` (bytes). Byte address = ``BASEP[region] + offset``
for an external region; with ``internal`` set (Vela's ``BASE_PTR_INDEX_MEM2MEM = (1 << 8) | 3`` in
``register_command_stream_util.py``) the destination is the shared buffer (SHRAM) at byte ``offset`` and the region
index is ignored.

Checks, made combinationally on the offered descriptor (``desc_error``, :class:`DmaError`, first match wins):
length 0; source internal or source region > 7; destination region > 7 (external); stride mode != 0 (only 1-D
copies are implemented); source range beyond external memory; destination range beyond external memory / SHRAM.
Overlapping source and destination ranges are not checked and give undefined data (reads run ahead of writes);
Vela never emits them.
A descriptor with an error is never started; the controller reports it. So a started copy never touches an
address outside its memories and always ends.

Datapath: 64-bit reads of every source word are issued back to back (up to ``queue_depth`` unanswered) into a
read queue; an aligner (a 16-byte shift buffer) realigns source bytes to destination words; each destination word
is written once, with byte enables, to external memory (same port as the reads; writes win) or to SHRAM (one write
per cycle, never stalls). Throughput: one 8-byte word per cycle when the memory allows it. Measured (pysim,
``tb/rtl/npu/test_dma.py``), 256 bytes at 8 B/cycle: into SHRAM ``latency + 34`` cycles (``latency + n/8 + 2``);
external to external ``64`` (latency 2) / ``68`` (latency 10) cycles, because every word needs a read and a write
on the memory's single port (2 requests per word); at 2 B/cycle the memory's bandwidth sets the pace.
"""
import enum

from amaranth import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.common.fifo import MemoryFIFO
from rtl.npu.config import EXT_WORD_BYTES
from rtl.npu.extmem import ADDR_WIDTH, WORD_BITS, MemPortSignature

__all__ = ["DmaDesc", "DmaError", "ShramWriteSignature", "Dma", "NUM_REGIONS"]

#: Base pointers BASEP0..7 (``*_REGION`` fields are 3 bits wide on U55).
NUM_REGIONS = 8


class DmaDesc(data.Struct):
    src_region: 16   # DMA0_SRC_REGION param
    src: 32          # DMA0_SRC
    dst_region: 16   # DMA0_DST_REGION param
    dst: 32          # DMA0_DST
    length: 32       # DMA0_LEN


class DmaError(enum.IntEnum):
    """``desc_error`` codes (0 = the descriptor is executable)."""

    OK = 0
    LENGTH_ZERO = 1
    SRC_REGION = 2
    DST_REGION = 3
    STRIDE_MODE = 4
    SRC_RANGE = 5
    DST_RANGE = 6


def ShramWriteSignature(depth: int) -> wiring.Signature:
    """Write-only port into the shared buffer (driven by the writer; always accepted)."""
    return wiring.Signature({"addr": Out(range(depth)), "data": Out(WORD_BITS), "en": Out(EXT_WORD_BYTES)})


class Dma(wiring.Component):
    """One-channel DMA (see the module docstring).

    Parameters
    ----------
    ext_size, shram_size : int
        Bytes of external memory and of SHRAM (multiples of 8).
    queue_depth : int
        Read queue entries (``ext latency + 3`` sustains one word per cycle).

    Members
    -------
    desc : ``In(stream.Signature(DmaDesc))``
        Accepted (``ready``) only when idle and the descriptor has no error.
    desc_error : ``Out(DmaError)``
        Check result for the descriptor currently on ``desc.payload`` (combinational).
    basep : ``In(32).array(8)``
    bus : ``Out(MemPortSignature)``
    shram : ``Out(ShramWriteSignature)``
    busy : ``Out(1)``
        A copy is in progress (from the cycle after acceptance until its last write is done).
    fault : ``Out(1)``
        Pulse: a read returned ``err`` (cannot happen for checked descriptors; kept as a defence).
    """

    def __init__(self, *, ext_size: int, shram_size: int, queue_depth: int):
        self.ext_size, self.shram_size, self.queue_depth = ext_size, shram_size, queue_depth
        self.shram_depth = shram_size // EXT_WORD_BYTES
        super().__init__({
            "desc": In(stream.Signature(DmaDesc)),
            "desc_error": Out(4),
            "basep": In(ADDR_WIDTH).array(NUM_REGIONS),
            "bus": Out(MemPortSignature),
            "shram": Out(ShramWriteSignature(self.shram_depth)),
            "busy": Out(1),
            "fault": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        d = self.desc.payload
        W = EXT_WORD_BYTES

        error, src_abs, dst_abs, dst_internal = self._check(m, d)

        busy = Signal()
        m.d.comb += [self.busy.eq(busy), self.desc.ready.eq(~busy & (error == 0))]
        start = self.desc.valid & self.desc.ready

        # --- reader ---------------------------------------------------------------------------------------------
        m.submodules.rdq = rdq = MemoryFIFO(width=WORD_BITS, depth=self.queue_depth)
        rd_word = Signal(ADDR_WIDTH - 3)                 # next source word to request
        rd_left = Signal(ADDR_WIDTH - 2)                 # source words still to request
        inflight = Signal(range(self.queue_depth + 1))   # requested and not yet taken from the queue
        rd_valid = (rd_left != 0) & (inflight != self.queue_depth)

        # --- aligner --------------------------------------------------------------------------------------------
        buf = Signal(2 * WORD_BITS)
        cnt = Signal(range(2 * W + 1))                   # valid bytes in buf, from byte 0
        skip = Signal(3)                                 # bytes to drop from the next source word
        in_left = Signal(ADDR_WIDTH + 1)                 # bytes still to take from the queue
        out_left = Signal(ADDR_WIDTH + 1)                # bytes still to write
        dst_word = Signal(ADDR_WIDTH - 3)
        dst_off = Signal(3)
        internal = Signal()

        room = W - dst_off
        n_out = Signal(4)
        m.d.comb += n_out.eq(Mux(out_left < room, out_left, room))
        can_emit = (out_left != 0) & (cnt >= n_out)
        strobe = Signal(W)
        m.d.comb += strobe.eq((Const((1 << W) - 1, W) >> (W - n_out).as_unsigned()) << dst_off)
        wdata = Signal(WORD_BITS)
        lane_mask = Signal(WORD_BITS)
        m.d.comb += lane_mask.eq(Cat(*(strobe[i].replicate(8) for i in range(W))))
        m.d.comb += wdata.eq((buf[:WORD_BITS] << (dst_off * 8))[:WORD_BITS] & lane_mask)

        # --- port arbitration: a pending write beats a read ----------------------------------------------------
        wr_ext_valid = busy & can_emit & ~internal
        m.d.comb += [
            self.bus.req.valid.eq(wr_ext_valid | (busy & rd_valid)),
            self.bus.req.payload.write.eq(wr_ext_valid),
            self.bus.req.payload.addr.eq(Mux(wr_ext_valid, dst_word, rd_word) << 3),
            self.bus.req.payload.wdata.eq(wdata),
            self.bus.req.payload.wstrb.eq(strobe),
        ]
        rd_issue = busy & rd_valid & ~wr_ext_valid & self.bus.req.ready
        emit = Signal()
        m.d.comb += emit.eq(busy & can_emit & (internal | self.bus.req.ready))
        m.d.comb += [
            self.shram.addr.eq(dst_word),
            self.shram.data.eq(wdata),
            self.shram.en.eq(Mux(emit & internal, strobe, 0)),
        ]

        # Responses always fit: inflight never exceeds the queue depth.
        m.d.comb += [
            self.bus.resp.ready.eq(1),
            rdq.w_stream.valid.eq(self.bus.resp.valid),
            rdq.w_stream.payload.eq(self.bus.resp.payload.rdata),
            self.fault.eq(self.bus.resp.valid & self.bus.resp.payload.err),
        ]

        # Take a source word when the buffer has room for it (cnt <= 8 before this cycle's emit).
        take = Signal(4)
        m.d.comb += take.eq(Mux(in_left < W - skip, in_left, W - skip))
        push = busy & rdq.r_stream.valid & (cnt <= W) & (in_left != 0)
        m.d.comb += rdq.r_stream.ready.eq(push | ~busy)   # drain leftovers when idle (none in normal operation)

        n_emit = Mux(emit, n_out, 0)
        cnt1 = Signal.like(cnt)
        buf1 = Signal.like(buf)
        m.d.comb += [cnt1.eq(cnt - n_emit), buf1.eq(buf >> (n_emit * 8))]
        src_bytes = Signal(WORD_BITS)
        m.d.comb += src_bytes.eq((rdq.r_stream.payload >> (skip * 8)) &
                                 (Const((1 << WORD_BITS) - 1, WORD_BITS) >> ((W - take).as_unsigned() * 8)))
        incoming = Signal(2 * WORD_BITS)
        m.d.comb += incoming.eq(src_bytes << (cnt1 * 8))

        m.d.sync += inflight.eq(inflight + rd_issue - (rdq.r_stream.valid & rdq.r_stream.ready))
        with m.If(rd_issue):
            m.d.sync += [rd_word.eq(rd_word + 1), rd_left.eq(rd_left - 1)]
        with m.If(busy):
            m.d.sync += [buf.eq(Mux(push, buf1 | incoming, buf1)), cnt.eq(Mux(push, cnt1 + take, cnt1))]
            with m.If(push):
                m.d.sync += [in_left.eq(in_left - take), skip.eq(0)]
            with m.If(emit):
                m.d.sync += [out_left.eq(out_left - n_out), dst_off.eq(0), dst_word.eq(dst_word + 1)]
            with m.If((out_left == n_emit) & (rd_left == 0) & (inflight == 0)):
                m.d.sync += busy.eq(0)
        with m.If(start):
            last = src_abs + d.length - 1
            m.d.sync += [
                busy.eq(1),
                rd_word.eq(src_abs[3:]),
                rd_left.eq(last[3:] - src_abs[3:] + 1),
                skip.eq(src_abs[:3]),
                in_left.eq(d.length),
                out_left.eq(d.length),
                dst_word.eq(dst_abs[3:]),
                dst_off.eq(dst_abs[:3]),
                internal.eq(dst_internal),
                buf.eq(0),
                cnt.eq(0),
            ]
        return m

    def _check(self, m, d):
        """The descriptor check (combinational): (error, source and destination byte addresses, to SHRAM)."""
        src_idx, dst_idx = d.src_region[:8], d.dst_region[:8]
        src_internal, dst_internal = d.src_region[8], d.dst_region[8]
        stride_mode = d.src_region[9:11] | d.dst_region[9:11]
        src_base = Signal(ADDR_WIDTH)
        dst_base = Signal(ADDR_WIDTH)
        basep = Array(self.basep)
        m.d.comb += [src_base.eq(basep[src_idx[:3]]), dst_base.eq(basep[dst_idx[:3]])]
        src_abs = Signal(ADDR_WIDTH + 2)
        dst_abs = Signal(ADDR_WIDTH + 2)
        m.d.comb += [src_abs.eq(src_base + d.src),
                     dst_abs.eq(Mux(dst_internal, d.dst, dst_base + d.dst))]
        error = Signal(4)
        with m.If(d.length == 0):
            m.d.comb += error.eq(DmaError.LENGTH_ZERO)
        with m.Elif(src_internal | (src_idx >= NUM_REGIONS)):
            m.d.comb += error.eq(DmaError.SRC_REGION)
        with m.Elif(~dst_internal & (dst_idx >= NUM_REGIONS)):
            m.d.comb += error.eq(DmaError.DST_REGION)
        with m.Elif(stride_mode != 0):
            m.d.comb += error.eq(DmaError.STRIDE_MODE)
        with m.Elif(src_abs + d.length > self.ext_size):
            m.d.comb += error.eq(DmaError.SRC_RANGE)
        with m.Elif(dst_abs + d.length > Mux(dst_internal, self.shram_size, self.ext_size)):
            m.d.comb += error.eq(DmaError.DST_RANGE)
        m.d.comb += self.desc_error.eq(error)
        return error, src_abs, dst_abs, dst_internal

