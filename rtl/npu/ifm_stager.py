"""NPU IFM stager: copies the IFM of a kernel op from external memory into an on-chip line buffer ahead of compute.

The buffer (``depth`` 64-bit words, the configuration's SHRAM budget) holds one word per IFM pixel and IFM ublock
(8 channels): word ``slot(row) * row_words + x * ublocks + u`` holds channels ``c0 + 8u .. c0 + 8u + 7`` of pixel
``(row, x)``, with ``row_words = width * ublocks``; with a 16-bit IFM (``wide``) a word holds 4 channels,
``c0 + 4u .. c0 + 4u + 3``. The eight bytes are read from external memory at the byte
address SPEC.md section 4 gives for that pixel and channel (NHWC or NHCWB16) in its IFM tile (:func:`fm_tile`:
``base`` is tile 0's, ``tile_base`` tiles 1-3's, ``tile_h0`` / ``tile_h1`` / ``tile_w0`` their split), one or two
word reads (unaligned), and re-aligned, so the compute unit reads a whole MAC-beat operand per position per cycle.

Rows are numbered globally: pass ``k`` (the IFM is swept once per *pass*) has rows ``k * height .. (k+1) * height
- 1``. ``rows`` counts the global rows written so far (a consumer may read a row once ``rows`` exceeds its number);
``low`` is the lowest global row the consumer still needs. Two modes:

* **resident** (``ring`` low and the whole IFM fits): one pass, ``slot(row) = row``.
* **ring**: ``passes`` passes (channel offset ``c0`` grows by ``chan_step`` per pass; with ``groups`` > 1 each
  OFM block's ublocks, channels ``c0 .. min(c0 + chan_block, chan_depth)``, are swept ``groups`` times over, as a
  split depthwise's sub-kernel passes need them), ``2**k`` row slots (the
  largest power of two that fits), ``slot(row) = row mod 2**k``; row ``g`` is only written once ``g < low +
  2**k``, so the stager never overwrites a row still needed. ``fits`` says whether ``span`` rows (what one consumer
  step needs at once) fit the ring; a consumer must not start otherwise.

Responses are always accepted (the buffer write never stalls), so the stager never blocks the shared response path;
at most ``outstanding`` reads are in flight. ``abort`` stops issuing; ``busy`` stays high until every issued read has
been answered. A response with ``err`` sets ``mem_err`` (sticky until ``start``).

Read ports (``positions`` of them, asynchronous): ``rd_row`` (global row), ``rd_x``, ``rd_u`` -> ``rd_data``.
Throughput: one read request per cycle (aligned pixels: one word per buffer word).
"""
from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.common.fifo import MemoryFIFO
from rtl.npu.extmem import ADDR_WIDTH, WORD_BITS, MemPortSignature

__all__ = ["IfmStager", "fm_addr", "fm_tile", "line_buffer_geometry"]

ROW_BITS = 32


def fm_addr(base, y, x, c, stride_y, stride_x, stride_c, nhcwb16, size=0):
    """Byte address of channel ``c`` of pixel ``(y, x)`` (SPEC.md section 4: NHWC or NHCWB16) of ``2**size``-byte
    elements."""
    nhwc = base + y * stride_y + x * stride_x + (c << size)
    nhcwb = base + y * stride_y + (x << (4 + size)) + (c >> 4) * stride_c + (c[:4] << size)
    return Mux(nhcwb16, nhcwb, nhwc)[:ADDR_WIDTH]


def fm_tile(m, y, x, bases, h0, h1, w0, prefix: str = ""):
    """The tile holding pixel ``(y, x)`` of a feature map in up to four tiles (NPU_SET_*_BASE0-3, HEIGHT0/1,
    WIDTH0): (its base address, the pixel's row and column in it). Columns ``< w0`` are in tiles 0 / 2 (split at row
    ``h0``), the others in tiles 1 / 3 (split at ``h1``). One tile whose sizes cover the map is the plain layout."""
    right = Signal(name=f"{prefix}tile_right")
    bottom = Signal(name=f"{prefix}tile_bottom")
    m.d.comb += [right.eq(x >= w0), bottom.eq(y >= Mux(right, h1, h0))]
    base = Signal(ADDR_WIDTH, name=f"{prefix}tile_base")
    m.d.comb += base.eq(Mux(bottom, Mux(right, bases[3], bases[2]), Mux(right, bases[1], bases[0])))
    ty = Signal(17, name=f"{prefix}tile_row")
    tx = Signal(17, name=f"{prefix}tile_col")
    m.d.comb += [ty.eq(y - Mux(bottom, Mux(right, h1, h0), 0)), tx.eq(x - Mux(right, w0, 0))]
    return base, ty, tx


def line_buffer_geometry(m, depth: int, width, ublocks, height, ring, span, prefix: str = ""):
    """(row_words, slots, resident, fits) of an IFM in a ``depth``-word line buffer (see the module docstring);
    also used by the compute unit to refuse an op before it starts."""
    row_words = Signal(31, name=f"{prefix}row_words")
    m.d.comb += row_words.eq(width * ublocks)
    kmax = depth.bit_length() - 1
    k = Signal(range(kmax + 1), name=f"{prefix}slots_log2")   # the largest k with row_words << k <= depth
    for j in range(kmax + 1):
        with m.If((row_words << j) <= depth):
            m.d.comb += k.eq(j)
    slots = Signal(range(depth + 2), name=f"{prefix}slots")
    resident = Signal(name=f"{prefix}resident")
    fits = Signal(name=f"{prefix}fits")
    m.d.comb += [
        slots.eq(1 << k),
        resident.eq(~ring & (height * row_words <= depth)),
        fits.eq((row_words != 0) & (row_words <= depth) & (resident | (span <= slots))),
    ]
    return row_words, slots, resident, fits


class _Pending(data.Struct):
    waddr: 16
    shift: 3
    two: 1       # the entry needs two words
    second: 1    # this read is the entry's second word
    row_end: 1   # the entry completes a row


class IfmStager(wiring.Component):
    """See the module docstring.

    Parameters
    ----------
    depth : int
        Buffer words (64 bits each).
    positions : int
        Read ports.
    outstanding : int
        Reads in flight at most.
    """

    def __init__(self, *, depth: int, positions: int, outstanding: int = 16):
        if not isinstance(depth, int) or not 16 <= depth <= 1 << 16:
            raise ValueError(f"depth must be an integer in 16..65536, not {depth!r}")
        if not isinstance(positions, int) or not 1 <= positions <= 4:
            raise ValueError(f"positions must be an integer in 1..4, not {positions!r}")
        self.depth, self.positions, self.outstanding = depth, positions, outstanding
        super().__init__({
            "bus": Out(MemPortSignature),
            "start": In(1), "abort": In(1),
            "base": In(ADDR_WIDTH), "height": In(17), "width": In(17), "ublocks": In(14),
            "tile_base": In(ADDR_WIDTH).array(3), "tile_h0": In(17), "tile_h1": In(17), "tile_w0": In(17),
            "stride_y": In(ADDR_WIDTH), "stride_x": In(ADDR_WIDTH), "stride_c": In(ADDR_WIDTH), "nhcwb16": In(1),
            "ring": In(1), "passes": In(16), "chan_step": In(5), "wide": In(1),
            "groups": In(16), "chan_block": In(17), "chan_depth": In(17),
            "span": In(17), "fits": Out(1), "resident": Out(1),
            "low": In(ROW_BITS), "rows": Out(ROW_BITS),
            "rd_row": In(ROW_BITS).array(positions), "rd_x": In(17).array(positions), "rd_u": In(14).array(positions),
            "rd_data": Out(WORD_BITS).array(positions),
            "busy": Out(1), "mem_err": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        D = self.depth
        m.submodules.buf = buf = Memory(shape=WORD_BITS, depth=D, init=[])
        wr = buf.write_port()
        m.submodules.pending = pend = MemoryFIFO(width=_Pending.as_shape().size, depth=self.outstanding)

        row_words, slots, resident, fits = line_buffer_geometry(m, D, self.width, self.ublocks, self.height,
                                                                self.ring, self.span)
        m.d.comb += [self.resident.eq(resident), self.fits.eq(fits)]

        def word_addr(row, x, u):
            slot = Mux(self.resident, row, row & (slots - 1))[:16]
            return (slot * row_words + x * self.ublocks + u)[:16]

        for p in range(self.positions):
            rd = buf.read_port(domain="comb")
            m.d.comb += [rd.addr.eq(word_addr(self.rd_row[p], self.rd_x[p], self.rd_u[p])),
                         self.rd_data[p].eq(rd.data)]

        # ---- issue side: passes x rows x pixels x ublocks -----------------------------------------------------
        active = Signal()
        pass_i = Signal(16)
        gbase = Signal(ROW_BITS)
        c0 = Signal(17)
        c0_block = Signal(17)    # first channel of the OFM block (groups > 1)
        group = Signal(16)
        r = Signal(17)
        x = Signal(17)
        u = Signal(14)
        second = Signal()
        inflight = Signal(range(self.outstanding + 1))
        addr = Signal(ADDR_WIDTH)
        tile_base, ty, tx = fm_tile(m, r, x, [self.base, *self.tile_base], self.tile_h0, self.tile_h1, self.tile_w0)
        chan = c0 + Mux(self.wide, u << 2, u << 3)   # a word's first channel: 8 a word, 4 with 16-bit elements
        m.d.comb += addr.eq(fm_addr(tile_base, ty, tx, chan, self.stride_y, self.stride_x, self.stride_c,
                                    self.nhcwb16, self.wide))
        two = addr[:3] != 0
        grow = gbase + r
        room = self.resident | (grow < self.low + slots)
        last_pass = pass_i + 1 >= Mux(self.resident, 1, self.passes)
        entry_done = ~two | second
        row_end = (x == self.width - 1) & (u == self.ublocks - 1)

        # A split depthwise's pass needs only its sub-kernel's rows: a row below ``low`` is skipped (one cycle, once the
        # reads before it are answered, so ``rows`` still counts rows in order).
        skippable = Signal()
        skip = Signal()
        m.d.comb += [skippable.eq((self.groups > 1) & (grow < self.low) & (x == 0) & (u == 0) & ~second),
                     skip.eq(active & ~self.abort & skippable & (inflight == 0))]
        issue = Signal()
        m.d.comb += [
            issue.eq(active & ~self.abort & ~skippable & room & (inflight != self.outstanding) & pend.w_stream.ready),
            self.bus.req.valid.eq(issue),
            self.bus.req.payload.addr.eq((addr & ~7) + Mux(second, 8, 0)),
            pend.w_stream.valid.eq(self.bus.req.valid & self.bus.req.ready),
        ]
        entry = Signal(_Pending)
        m.d.comb += [entry.waddr.eq(word_addr(grow, x, u)), entry.shift.eq(addr[:3]), entry.two.eq(two),
                     entry.second.eq(second), entry.row_end.eq(row_end), pend.w_stream.payload.eq(entry)]

        def next_row():
            with m.If(r != self.height - 1):
                m.d.sync += r.eq(r + 1)
            with m.Else():
                m.d.sync += [r.eq(0), pass_i.eq(pass_i + 1), gbase.eq(gbase + self.height)]
                self._next_channels(m, c0, c0_block, group)
                with m.If(last_pass):
                    m.d.sync += active.eq(0)

        with m.If(skip):
            m.d.sync += self.rows.eq(self.rows + 1)
            next_row()
        with m.If(self.bus.req.valid & self.bus.req.ready):
            m.d.sync += second.eq(~entry_done)
            with m.If(entry_done):
                with m.If(u != self.ublocks - 1):
                    m.d.sync += u.eq(u + 1)
                with m.Else():
                    m.d.sync += u.eq(0)
                    with m.If(x != self.width - 1):
                        m.d.sync += x.eq(x + 1)
                    with m.Else():
                        m.d.sync += x.eq(0)
                        next_row()

        # ---- response side -------------------------------------------------------------------------------------
        head = Signal(_Pending)
        lo_word = Signal(WORD_BITS)
        m.d.comb += [head.eq(pend.r_stream.payload), self.bus.resp.ready.eq(1),
                     pend.r_stream.ready.eq(self.bus.resp.valid)]
        rdata = self.bus.resp.payload.rdata
        wide = Cat(lo_word, rdata) >> (head.shift * 8)
        m.d.comb += [wr.addr.eq(head.waddr), wr.data.eq(Mux(head.two, wide[:WORD_BITS], rdata))]
        with m.If(self.bus.resp.valid):
            with m.If(self.bus.resp.payload.err):
                m.d.sync += self.mem_err.eq(1)
            with m.If(head.two & ~head.second):
                m.d.sync += lo_word.eq(rdata)
            with m.Else():
                m.d.comb += wr.en.eq(1)
                with m.If(head.row_end):
                    m.d.sync += self.rows.eq(self.rows + 1)

        req_go = self.bus.req.valid & self.bus.req.ready
        with m.If(req_go & ~self.bus.resp.valid):
            m.d.sync += inflight.eq(inflight + 1)
        with m.Elif(~req_go & self.bus.resp.valid):
            m.d.sync += inflight.eq(inflight - 1)
        m.d.comb += self.busy.eq(active | (inflight != 0))

        with m.If(self.start):
            m.d.sync += [active.eq(1), pass_i.eq(0), gbase.eq(0), c0.eq(0), c0_block.eq(0), group.eq(0), r.eq(0),
                         x.eq(0), u.eq(0), second.eq(0), self.rows.eq(0), self.mem_err.eq(0)]
        with m.Elif(self.abort):
            m.d.sync += active.eq(0)
        return m

    def _next_channels(self, m, c0, c0_block, group):
        """The next pass's channel offset: the next OFM ublock, or (``groups`` > 1) after a block's last ublock the
        block's first again until its ``groups`` sweeps are done."""
        nxt = c0 + self.chan_step
        block_end = (nxt >= c0_block + self.chan_block) | (nxt >= self.chan_depth)
        with m.If((self.groups > 1) & block_end & (group + 1 < self.groups)):
            m.d.sync += [c0.eq(c0_block), group.eq(group + 1)]
        with m.Else():
            m.d.sync += c0.eq(nxt)
            with m.If(block_end):
                m.d.sync += [c0_block.eq(nxt), group.eq(0)]

