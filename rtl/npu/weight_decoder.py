"""Hardware decompressor for Vela's compressed weight stream ("mlw", Ethos-U55/U65 syntax).

Bitstream facts (LSB-first fields, slice headers, palette/direct mapping, the interleaved W/Z Golomb-Rice chunk loop)
are in ``/work/shared/research/npu-weights.md`` section 2; the golden decoder is ``ethosu.mlw_codec.decode``.

Structure (all in ``sync``, decoupled by small FIFOs; sub-units of ``core``, the decoder with its ``start`` reset):

* **bits** (bit reader): a bit buffer refilled from ``i_stream``; the parser consumes ``need`` bits per ``take``.
* **parser**: an FSM that consumes one *field group* per cycle: a slice header, the palette header, one palette
  entry, all unary fields of one chunk-loop pass (WUNARY0 + ZUNARY + WUNARY1 in one cycle), or up to ``rem_lanes``
  remainders. It holds the slice parameters and the palette, pushes per-chunk unary descriptors and remainder
  groups, and holds the error state.
* **wasm** / **zasm** (assemblers, one for W, one for Z): combine a chunk descriptor with the remainders into one
  symbol per cycle (``q << div | r``); the W side maps the index through the palette / direct offset to a weight,
  into the **wval** / **zval** value FIFOs.
* **output** (output stage): interleaves weights and zero runs, one weight per cycle.

The parser waits for the pipeline to drain at every slice boundary (slice parameters and the palette are shared),
which costs a few cycles per slice; Vela streams have 1-7 slices.

Integration (NPU weight path):

* Feed the ``WEIGHT_LENGTH`` bytes at ``WEIGHT_BASE`` of ``WEIGHT_REGION`` (after replaying earlier DMAs)
  unmodified, little-endian beats, ``last`` on the final beat. Nothing has to be stripped: the stream in memory
  is the bare mlw stream; the scale/bias records sit before it (``SCALE_BASE``) and are not part of it, and the
  trailing ``0xFF`` padding reads as further end-of-stream markers. ``done`` needs ``last``.
* One stream per kernel op (an OFM-depth split gives each part its own stream): pulse ``start`` (or reset)
  between streams.
* The output is the decoded stream in encoder order, i.e. ``ethosu.mlw_codec.decode`` order: the OFM-block /
  ublock loop nest of npu-weights.md section 3 with all zero padding. The consumer owns the re-ordering.
* Back-pressure propagates: if ``o_stream`` stalls, the input stalls. After ``error`` the output stops at once
  (weights still queued inside are dropped) and the rest of the input is swallowed up to ``last``.
"""
from dataclasses import dataclass

from amaranth import Array, Cat, Const, Elaboratable, Module, Mux, ResetInserter, Signal, signed
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["DecodeError", "WeightDecoderConfig", "WeightDecoder", "WeightDecoderTestbench",
           "WeightDecoderTestbenchConfig"]

_CHUNK = 12      # positions per unary chunk (W: 12, or 8 in wide uncompressed mode; Z: 12 or 8)
_QBITS = 20      # GRC quotient counter; a longer unary run is reported as OVERFLOW
_REM_MAX = 9     # widest remainder (uncompressed 9-bit index)
_RUN_BITS = _QBITS + 3


class DecodeError(enum.Enum, shape=3):
    """Why decoding stopped (``error_code``; valid while ``error`` is high)."""
    #: no error
    NONE = 0
    #: the input ended (``last`` consumed) inside a slice or before an end-of-stream marker
    TRUNCATED = 1
    #: slice header ZDIV is 4 or 5
    BAD_ZDIV = 2
    #: slice header WDIV is 6
    BAD_WDIV = 3
    #: the first slice after the start or after an end-of-stream marker has NEWPAL = 0
    NO_PALETTE = 4
    #: a weight index maps outside the 9-bit code range or outside ``weight_width``
    BAD_INDEX = 5
    #: a unary (quotient) run longer than the decoder's counter
    OVERFLOW = 6


@dataclass(frozen=True)
class WeightDecoderConfig:
    """Parameters of :class:`WeightDecoder`.

    in_width : bits per input beat (8 = byte stream, 16, 32); bits are taken LSB first, byte 0 in bits [7:0].
    weight_width : output weight width, 8 (int8; larger values are BAD_INDEX) or 9 (the full -255..255 range).
    rem_lanes : remainders the parser reads per cycle (1..4).
    fifo_depth : depth of the W/Z value FIFOs; must cover the W/Z skew of the format (>= 24).
    """
    in_width: int = 8
    weight_width: int = 8
    rem_lanes: int = 2
    fifo_depth: int = 32

    def __post_init__(self):
        for name in ("in_width", "weight_width", "rem_lanes", "fifo_depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
        if self.in_width not in (8, 16, 32):
            raise ValueError(f"in_width must be 8, 16 or 32, not {self.in_width!r}")
        if self.weight_width not in (8, 9):
            raise ValueError(f"weight_width must be 8 or 9, not {self.weight_width!r}")
        if not 1 <= self.rem_lanes <= 4:
            raise ValueError(f"rem_lanes must be 1..4, not {self.rem_lanes!r}")
        if self.fifo_depth < 24:
            raise ValueError(f"fifo_depth must be at least 24, not {self.fifo_depth!r}")

    @property
    def max_need(self) -> int:
        """Widest field group the parser consumes in one cycle (a slice header is 23 bits)."""
        return max(23, 2 * _CHUNK + _CHUNK, self.rem_lanes * _REM_MAX)

    @property
    def buffer_bits(self) -> int:
        """Bit buffer size: the widest field group plus one input beat, so a refill is always possible."""
        return self.max_need + self.in_width


def input_layout(in_width: int) -> data.StructLayout:
    return data.StructLayout({"data": in_width, "last": 1})


def _popcount(value, width: int):
    return sum((value[i] for i in range(width)), Const(0, 5))


_DESC = data.StructLayout({"ends": _CHUNK, "conts": _CHUNK, "ones": _CHUNK})


class _Assembler(Elaboratable):
    """Turns unary chunk descriptors plus remainder groups into symbols ``(q << div) | r``, one per cycle.

    ``cont_weight`` is what a continuation position adds to the quotient (2 for W codes, 1 for Z unary bits).
    Symbols past ``n_sym`` (encoder filler) are dropped with the rest of their descriptor.
    """

    def __init__(self, *, cont_weight: int, lanes: int, div_bits: int):
        self.cont_weight = cont_weight
        self.lanes = lanes
        self.desc = SyncFIFO(width=_DESC.size, depth=4)
        self.rem = SyncFIFO(width=lanes * _REM_MAX + 3, depth=16)
        self.div = Signal(div_bits)      # shift of the quotient (0 in uncompressed mode)
        self.has_rem = Signal()          # remainders are present (width > 0)
        self.n_sym = Signal(16)
        self.slice_start = Signal()
        self.halt = Signal()
        # symbol out (a value FIFO write port is connected by the parent)
        self.sym = Signal(_QBITS + _REM_MAX)
        self.sym_valid = Signal()
        self.sym_ready = Signal()
        self.overflow = Signal()
        self.idle = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.desc = self.desc
        m.submodules.rem = self.rem
        head = _DESC(self.desc.r_data)
        done_mask = Signal(_CHUNK)
        carry = Signal(_QBITS + 1)
        sym_idx = Signal(16)
        grp_idx = Signal(2)
        ends = Signal(_CHUNK)
        conts = Signal(_CHUNK)
        m.d.comb += [ends.eq(head.ends & ~done_mask), conts.eq(head.conts & ~done_mask)]
        low = Signal(_CHUNK)
        lowmask = Signal(_CHUNK)
        m.d.comb += [low.eq(ends & (~ends + 1)), lowmask.eq(ends ^ (ends - 1))]
        cw = self.cont_weight
        q = Signal(_QBITS + 2)
        m.d.comb += q.eq(carry + cw * _popcount(conts & lowmask, _CHUNK) + (head.ones & low).any())
        grp_n = self.rem.r_data[-3:]
        r = Signal(_REM_MAX)
        m.d.comb += r.eq(Mux(self.has_rem, self.rem.r_data.word_select(grp_idx, _REM_MAX), 0))
        m.d.comb += self.sym.eq((q << self.div) | r)
        rem_ok = ~self.has_rem | self.rem.r_rdy
        active = self.desc.r_rdy & ~self.halt
        m.d.comb += self.idle.eq(~self.desc.r_rdy & ~self.rem.r_rdy)

        def finish():
            m.d.comb += self.desc.r_en.eq(1)
            m.d.sync += done_mask.eq(0)

        with m.If(self.slice_start):
            m.d.sync += [carry.eq(0), sym_idx.eq(0), done_mask.eq(0), grp_idx.eq(0)]
        with m.Elif(active):
            with m.If(sym_idx >= self.n_sym):
                finish()
            with m.Elif(ends == 0):
                new_carry = carry + cw * _popcount(conts, _CHUNK)
                m.d.sync += carry.eq(new_carry)
                with m.If(new_carry[_QBITS:].any()):
                    m.d.comb += self.overflow.eq(1)
                finish()
            with m.Else():
                with m.If(q[_QBITS:].any()):
                    m.d.comb += self.overflow.eq(1)
                m.d.comb += self.sym_valid.eq(rem_ok)
                with m.If(rem_ok & self.sym_ready):
                    m.d.sync += sym_idx.eq(sym_idx + 1)
                    with m.If(self.has_rem):
                        with m.If(grp_idx + 1 == grp_n):
                            m.d.comb += self.rem.r_en.eq(1)
                            m.d.sync += grp_idx.eq(0)
                        with m.Else():
                            m.d.sync += grp_idx.eq(grp_idx + 1)
                    with m.If((ends & ~lowmask) == 0):
                        m.d.sync += carry.eq(cw * _popcount(conts & ~lowmask, _CHUNK))
                        finish()
                    with m.Else():
                        m.d.sync += [carry.eq(0), done_mask.eq(done_mask | lowmask)]
        return m


class _BitReader(Elaboratable):
    """The bit buffer: refilled from ``i_stream`` one beat at a time, ``need`` bits consumed when ``take``.

    ``have``: at least ``need`` bits are buffered. ``bitpos``: stream bit position mod 8 (for the byte alignment of
    an end-of-stream marker). ``drain``: swallow the input up to ``last`` (after ``done`` or ``error``).
    """

    def __init__(self, config: WeightDecoderConfig, i_stream):
        self.config = config
        self.i_stream = i_stream
        self.buf = Signal(config.buffer_bits)
        self.cnt = Signal(range(config.buffer_bits + 1))
        self.bitpos = Signal(3)
        self.got_last = Signal()
        self.need = Signal(range(config.max_need + 1))
        self.take = Signal()
        self.have = Signal()
        self.drain = Signal()

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        buf_bits = cfg.buffer_bits
        buf, cnt, got_last, drain = self.buf, self.cnt, self.got_last, self.drain
        m.d.comb += self.have.eq(cnt >= self.need)
        n = Signal.like(self.need)
        m.d.comb += n.eq(Mux(self.take, self.need, 0))
        accept = Signal()
        m.d.comb += [
            self.i_stream.ready.eq(((cnt <= buf_bits - cfg.in_width) & ~got_last) | (drain & ~got_last)),
            accept.eq(self.i_stream.valid & self.i_stream.ready & ~drain),
        ]
        shifted = buf >> n
        fill_at = Signal.like(cnt)
        m.d.comb += fill_at.eq(cnt - n)
        with m.If(accept):
            m.d.sync += [buf.eq(shifted | (self.i_stream.payload.data << fill_at)[:buf_bits]),
                         cnt.eq(cnt - n + cfg.in_width)]
        with m.Else():
            m.d.sync += [buf.eq(shifted), cnt.eq(cnt - n)]
        with m.If(self.i_stream.valid & self.i_stream.ready & self.i_stream.payload.last):
            m.d.sync += got_last.eq(1)
        m.d.sync += self.bitpos.eq(self.bitpos + n)
        return m


class _SliceParams:
    """The current slice's parameters and palette (registers written by the parser) and what follows from them."""

    def __init__(self):
        self.zdiv = Signal(3)
        self.nw = Signal(16)
        self.wdiv = Signal(3)
        self.trunc = Signal()
        self.newpal = Signal()
        self.dirofs = Signal(5)
        self.palsize = Signal(6)
        self.palbits = Signal(4)
        self.pal = Array(Signal(9, name=f"pal{i}") for i in range(32))
        self.pal_idx = Signal(5)
        self.zrun = Signal()           # the slice has zero runs
        self.unc = Signal()            # uncompressed weights
        self.uw = Signal(4)            # palette index width
        self.wlen_valid = Signal(_CHUNK)
        self.zlen = Signal(4)
        self.zlen_valid = Signal(_CHUNK)
        self.nz = Signal(17)           # zero runs in the slice
        self.wrw = Signal(4)           # W remainder width

    def derive(self, m):
        m.d.comb += [self.zrun.eq(self.zdiv != 6), self.unc.eq(self.wdiv == 7)]
        with m.If(self.palsize == 0):
            m.d.comb += self.uw.eq(self.palbits)
        with m.Else():
            for size in range(2, 33):
                with m.If(self.palsize == size):
                    m.d.comb += self.uw.eq((size - 1).bit_length())
        m.d.comb += [
            self.wlen_valid.eq(Mux(self.unc & (self.uw > 5), 0xFF, 0xFFF)),
            self.zlen.eq(Mux(self.zdiv < 3, 12, 8)),
            self.zlen_valid.eq(Mux(self.zdiv < 3, 0xFFF, 0xFF)),
            self.nz.eq(Mux(self.zrun, self.nw + self.newpal, 0)),
            self.wrw.eq(Mux(self.unc, self.uw, self.wdiv)),
        ]


class _OutputStage(Elaboratable):
    """Interleaves weights (``wval``) and zero runs (``zval``) into ``o_stream``, one weight per cycle."""

    def __init__(self, params: _SliceParams, wval, zval, o_stream):
        self.params, self.wval, self.zval, self.o_stream = params, wval, zval, o_stream
        self.err = Signal()
        self.slice_start = Signal()
        self.idle = Signal()          # no zero run in progress

    def elaborate(self, platform):
        m = Module()
        wval, zval, o = self.wval, self.zval, self.o_stream
        zrun = self.params.zrun
        zeros_left = Signal(_RUN_BITS)
        phase_z = Signal()
        zv = zval.r_data
        m.d.comb += self.idle.eq(zeros_left == 0)
        with m.If(self.err):
            pass
        with m.Elif(self.slice_start):
            m.d.sync += phase_z.eq(self.params.newpal & zrun)
        with m.Elif(zeros_left != 0):
            m.d.comb += [o.valid.eq(1), o.payload.eq(0)]
            with m.If(o.ready):
                m.d.sync += zeros_left.eq(zeros_left - 1)
        with m.Elif(~phase_z):
            m.d.comb += [o.valid.eq(wval.r_rdy), o.payload.eq(wval.r_data)]
            with m.If(o.valid & o.ready):
                m.d.comb += wval.r_en.eq(1)
                m.d.sync += phase_z.eq(zrun)
        with m.Elif(zval.r_rdy):
            m.d.comb += zval.r_en.eq(1)
            m.d.sync += phase_z.eq(0)
            with m.If(zv != 0):
                m.d.comb += [o.valid.eq(1), o.payload.eq(0)]
                m.d.sync += zeros_left.eq(zv - o.ready)
            with m.Else():
                m.d.comb += [o.valid.eq(wval.r_rdy), o.payload.eq(wval.r_data)]
                with m.If(o.valid & o.ready):
                    m.d.comb += wval.r_en.eq(1)
                    m.d.sync += phase_z.eq(1)
        return m


class _Parser(Elaboratable):
    """The parser FSM: consumes one field group per cycle from the bit reader (slice header, palette header, one
    palette entry, the unary fields of one chunk-loop pass, or up to ``rem_lanes`` remainders), sets the slice
    parameters and pushes chunk descriptors and remainder groups to the assemblers. Holds the error state:
    ``overflow`` and ``bad_index`` (from the assemblers' side) and its own checks set ``err`` / ``err_code``."""

    def __init__(self, config: WeightDecoderConfig, bits: _BitReader, params: _SliceParams, wasm, zasm):
        self.config, self.bits, self.params, self.wasm, self.zasm = config, bits, params, wasm, zasm
        self.drained = Signal()       # the previous slice has left the pipeline
        self.overflow = Signal()
        self.bad_index = Signal()
        self.slice_start = Signal()
        self.err = Signal()
        self.err_code = Signal(DecodeError)
        self.done = Signal()

    def elaborate(self, platform):
        m = Module()
        bits = self.bits
        c = self._counters = {
            "wpos": Signal(17), "zpos": Signal(17),
            "w_asg": Signal(16),      # W symbols that have been given a remainder slot (min(wpos, nw))
            "z_asg": Signal(17),
            "wrem_cur": Signal(4),    # remainders to read in this pass
            "zrem_cur": Signal(4),
            "wrem_nxt": Signal(4),    # remainders of the chunk just read, read in the next pass
            "zrem_nxt": Signal(4),
        }
        self._need_newpal = Signal(init=1)
        self._eos_seen = Signal()

        with m.If(self.overflow):
            self._fail(m, DecodeError.OVERFLOW)
        with m.Elif(self.bad_index):
            self._fail(m, DecodeError.BAD_INDEX)

        m.d.comb += bits.drain.eq(0)
        with m.FSM(name="parser"):
            with m.State("HDR"):
                self._header(m)
            self._palette(m)
            with m.State("START"):
                m.d.comb += self.slice_start.eq(1)
                m.d.sync += [c[name].eq(0) for name in ("wpos", "zpos", "w_asg", "z_asg", "wrem_nxt", "zrem_nxt")]
                m.next = "UNARY"
            with m.State("UNARY"):
                self._unary(m)
            p = self.params
            for name, rem_cur, asm, width, after in (("WREM", c["wrem_cur"], self.wasm, p.wrw, "ZREM"),
                                                     ("ZREM", c["zrem_cur"], self.zasm, p.zdiv, "UNARY")):
                with m.State(name):
                    self._remainders(m, name, rem_cur, asm, width, after)
            with m.State("DONE"):
                m.d.comb += [self.done.eq(1), bits.drain.eq(1)]
            with m.State("ERROR"):
                m.d.comb += bits.drain.eq(1)
        return m

    def _fail(self, m, code):
        m.d.sync += [self.err.eq(1), self.err_code.eq(code)]

    def _truncated(self, m):
        self._fail(m, DecodeError.TRUNCATED)
        m.next = "ERROR"

    def _header(self, m):
        """HDR: wait for the previous slice to leave the pipeline (shared parameters and palette), then read an
        end-of-stream marker or a slice header."""
        bits, p = self.bits, self.params
        buf, cnt, have, got_last = bits.buf, bits.cnt, bits.have, bits.got_last
        need_newpal, eos_seen = self._need_newpal, self._eos_seen
        is_eos = Signal()
        align = Signal(3)
        m.d.comb += [is_eos.eq(buf[:3] == 7), align.eq(-(bits.bitpos + 3))]
        with m.If(self.err):
            m.next = "ERROR"
        with m.Elif(self.drained):
            with m.If(cnt == 0):
                with m.If(got_last):
                    with m.If(eos_seen):
                        m.next = "DONE"
                    with m.Else():
                        self._truncated(m)
            with m.Elif(cnt < 3):
                with m.If(got_last):
                    self._truncated(m)
            with m.Elif(is_eos):
                m.d.comb += bits.need.eq(3 + align)
                with m.If(have):
                    m.d.comb += bits.take.eq(1)
                    m.d.sync += [eos_seen.eq(1), need_newpal.eq(1)]
                with m.Elif(got_last):
                    self._truncated(m)
            with m.Else():
                m.d.comb += bits.need.eq(23)
                h_zdiv, h_len, h_wdiv, h_trunc, h_newpal = buf[0:3], buf[3:18], buf[18:21], buf[21], buf[22]
                with m.If(have):
                    with m.If((h_zdiv == 4) | (h_zdiv == 5)):
                        self._fail(m, DecodeError.BAD_ZDIV)
                        m.next = "ERROR"
                    with m.Elif(h_wdiv == 6):
                        self._fail(m, DecodeError.BAD_WDIV)
                        m.next = "ERROR"
                    with m.Elif(need_newpal & ~h_newpal):
                        self._fail(m, DecodeError.NO_PALETTE)
                        m.next = "ERROR"
                    with m.Else():
                        m.d.comb += bits.take.eq(1)
                        m.d.sync += [p.zdiv.eq(h_zdiv), p.nw.eq(h_len + 1), p.wdiv.eq(h_wdiv), p.trunc.eq(h_trunc),
                                     p.newpal.eq(h_newpal), need_newpal.eq(0), eos_seen.eq(0)]
                        m.next = "PALHDR"
                with m.Elif(got_last):
                    self._truncated(m)

    def _palette(self, m):
        """PALHDR, PALHDR_NEXT, PAL: the palette header and entries of a slice with NEWPAL."""
        bits, p = self.bits, self.params
        buf, have, got_last = bits.buf, bits.have, bits.got_last
        with m.State("PALHDR"):
            with m.If(p.newpal):
                m.d.comb += bits.need.eq(13)
                with m.If(have):
                    m.d.comb += bits.take.eq(1)
                    size = buf[5:10]
                    m.d.sync += [p.dirofs.eq(buf[0:5]), p.palsize.eq(Mux(size == 0, 0, size + 1)),
                                 p.palbits.eq(buf[10:13] + 2), p.pal_idx.eq(0)]
                    m.next = "PALHDR_NEXT"
                with m.Elif(got_last):
                    self._truncated(m)
            with m.Else():
                m.next = "START"
        with m.State("PALHDR_NEXT"):
            with m.If(p.palsize == 0):
                m.next = "START"
            with m.Else():
                m.next = "PAL"
        with m.State("PAL"):
            m.d.comb += bits.need.eq(p.palbits)
            with m.If(have):
                m.d.comb += bits.take.eq(1)
                m.d.sync += [p.pal[p.pal_idx].eq(buf[:9] & ((1 << p.palbits) - 1)), p.pal_idx.eq(p.pal_idx + 1)]
                with m.If(p.pal_idx + 1 == p.palsize):
                    m.next = "START"
            with m.Elif(got_last):
                self._truncated(m)

    def _unary(self, m):
        """UNARY: all unary fields of one chunk-loop pass (WUNARY0 + ZUNARY + WUNARY1) in one cycle."""
        bits, p, c, wasm, zasm = self.bits, self.params, self._counters, self.wasm, self.zasm
        buf, have = bits.buf, bits.have
        wpos, zpos, w_asg, z_asg = c["wpos"], c["zpos"], c["w_asg"], c["z_asg"]
        wrem_nxt, zrem_nxt = c["wrem_nxt"], c["zrem_nxt"]
        bal = Signal(range(-(1 << 17), 1 << 17))
        w_en = Signal()
        z_en = Signal()
        wu = Signal()
        m.d.comb += [
            bal.eq(wpos - zpos),
            w_en.eq(((bal < 8) | ~p.zrun) & (wpos < p.nw)),
            z_en.eq(p.zrun & (bal >= 0) & (zpos < p.nz)),
            wu.eq(w_en & ~p.unc),
        ]
        u0 = buf[:_CHUNK]
        zu = Mux(wu, buf[_CHUNK:2 * _CHUNK], buf[:_CHUNK])
        u1_off = Mux(wu, _CHUNK, 0) + Mux(z_en, p.zlen, 0)
        u1 = buf.bit_select(u1_off, _CHUNK)
        ones_u0 = _popcount(u0, _CHUNK)
        m.d.comb += bits.need.eq(Mux(wu, _CHUNK + ones_u0, 0) + Mux(z_en, p.zlen, 0))
        # W codes per position: 0 (u0=0), 1 (u0=1, u1 bit=0), 2 (u0=1, u1 bit=1); u1 bit index = the number
        # of 1s of u0 below the position
        two = Signal(_CHUNK)
        one = Signal(_CHUNK)
        for j in range(_CHUNK):
            k = _popcount(u0, j) if j else Const(0, 1)
            m.d.comb += [two[j].eq(u0[j] & u1.bit_select(k, 1)), one[j].eq(u0[j] & ~u1.bit_select(k, 1))]
        wdesc = Signal(_DESC)
        zdesc = Signal(_DESC)
        with m.If(p.unc):
            m.d.comb += [wdesc.ends.eq(p.wlen_valid), wdesc.conts.eq(0), wdesc.ones.eq(0)]
        with m.Elif(p.trunc):
            m.d.comb += [wdesc.ends.eq(0xFFF), wdesc.conts.eq(two), wdesc.ones.eq(one)]
        with m.Else():
            m.d.comb += [wdesc.ends.eq(~two), wdesc.conts.eq(two), wdesc.ones.eq(one)]
        m.d.comb += [zdesc.ends.eq(~zu & p.zlen_valid), zdesc.conts.eq(zu & p.zlen_valid), zdesc.ones.eq(0),
                     wasm.desc.w_data.eq(wdesc), zasm.desc.w_data.eq(zdesc)]
        wpos_new = wpos + _popcount(wdesc.ends, _CHUNK)
        zpos_new = zpos + _popcount(zdesc.ends, _CHUNK)
        w_asg_new = Mux(wpos_new < p.nw, wpos_new, p.nw)
        z_asg_new = Mux(zpos_new < p.nz, zpos_new, p.nz)
        space = (~w_en | wasm.desc.w_rdy) & (~z_en | zasm.desc.w_rdy)
        with m.If(self.err):
            m.next = "ERROR"
        with m.Elif(~w_en & ~z_en & (wrem_nxt == 0) & (zrem_nxt == 0)):
            m.next = "HDR"
        with m.Elif(have & space):
            m.d.comb += [bits.take.eq(1), wasm.desc.w_en.eq(w_en), zasm.desc.w_en.eq(z_en)]
            m.d.sync += [c["wrem_cur"].eq(wrem_nxt), c["zrem_cur"].eq(zrem_nxt), wrem_nxt.eq(0), zrem_nxt.eq(0)]
            with m.If(w_en):
                m.d.sync += [wpos.eq(wpos_new), w_asg.eq(w_asg_new),
                             wrem_nxt.eq(Mux(p.wrw != 0, w_asg_new - w_asg, 0))]
            with m.If(z_en):
                m.d.sync += [zpos.eq(zpos_new), z_asg.eq(z_asg_new),
                             zrem_nxt.eq(Mux(p.zdiv != 0, z_asg_new - z_asg, 0))]
            with m.If(wrem_nxt != 0):
                m.next = "WREM"
            with m.Elif(zrem_nxt != 0):
                m.next = "ZREM"
        with m.Elif(~have & bits.got_last):
            self._truncated(m)

    def _remainders(self, m, name, rem_cur, asm, width, after):
        """WREM / ZREM: up to ``rem_lanes`` remainders of ``width`` bits per cycle into ``asm``."""
        bits, lanes = self.bits, self.config.rem_lanes
        g = Signal(3, name=f"{name.lower()}_g")
        m.d.comb += g.eq(Mux(rem_cur < lanes, rem_cur, lanes))
        m.d.comb += bits.need.eq(g * width)
        mask = Signal(_REM_MAX, name=f"{name.lower()}_mask")
        m.d.comb += mask.eq((1 << width) - 1)
        rems = [bits.buf.bit_select(i * width, _REM_MAX) & mask for i in range(lanes)]
        m.d.comb += asm.rem.w_data.eq(Cat(*rems, g))
        with m.If(self.err):
            m.next = "ERROR"
        with m.Elif(rem_cur == 0):
            m.next = after
        with m.Elif(bits.have & asm.rem.w_rdy):
            m.d.comb += [bits.take.eq(1), asm.rem.w_en.eq(1)]
            m.d.sync += rem_cur.eq(rem_cur - g)
            with m.If(rem_cur == g):
                m.next = after
        with m.Elif(~bits.have & bits.got_last):
            self._truncated(m)


class _Core(Elaboratable):
    """Bit reader -> parser -> W/Z assemblers -> value FIFOs -> output stage (see the module docstring)."""

    def __init__(self, config: WeightDecoderConfig):
        self.config = config
        cfg = config
        self.i_stream = stream.Signature(input_layout(cfg.in_width)).flip().create()
        self.o_stream = stream.Signature(signed(cfg.weight_width)).create()
        self.done = Signal()
        self.error = Signal()
        self.error_code = Signal(DecodeError)

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        lanes = cfg.rem_lanes
        params = _SliceParams()
        params.derive(m)
        m.submodules.bits = bits = _BitReader(cfg, self.i_stream)
        m.submodules.wasm = wasm = _Assembler(cont_weight=2, lanes=lanes, div_bits=3)
        m.submodules.zasm = zasm = _Assembler(cont_weight=1, lanes=lanes, div_bits=3)
        m.submodules.wval = wval = SyncFIFO(width=cfg.weight_width, depth=cfg.fifo_depth)
        m.submodules.zval = zval = SyncFIFO(width=_RUN_BITS, depth=cfg.fifo_depth)
        m.submodules.parser = parser = _Parser(cfg, bits, params, wasm, zasm)
        m.submodules.output = out = _OutputStage(params, wval, zval, self.o_stream)
        err = parser.err
        m.d.comb += [
            wasm.div.eq(Mux(params.unc, 0, params.wdiv)), wasm.has_rem.eq(params.wrw != 0), wasm.n_sym.eq(params.nw),
            zasm.div.eq(params.zdiv), zasm.has_rem.eq(params.zrun & (params.zdiv != 0)), zasm.n_sym.eq(params.nz),
            wasm.slice_start.eq(parser.slice_start), zasm.slice_start.eq(parser.slice_start),
            wasm.halt.eq(err), zasm.halt.eq(err), out.err.eq(err), out.slice_start.eq(parser.slice_start),
        ]
        # W index -> 9-bit code u -> weight
        v = wasm.sym
        u = Signal(_QBITS + _REM_MAX + 1)
        with m.If(v < params.palsize):
            m.d.comb += u.eq(params.pal[v[:5]])
        with m.Else():
            m.d.comb += u.eq(v - params.palsize + params.dirofs)
        mag = u[1:]
        neg = u[0]
        limit = (1 << (cfg.weight_width - 1))
        bad_index = Signal()
        m.d.comb += bad_index.eq((u >= 512) | Mux(neg, mag > limit, mag > limit - 1))
        weight = Mux(neg, -mag, mag)[:cfg.weight_width]
        m.d.comb += [wval.w_data.eq(weight), wval.w_en.eq(wasm.sym_valid & ~bad_index & ~err),
                     wasm.sym_ready.eq(wval.w_rdy & ~bad_index & ~err)]
        run_overflow = Signal()
        m.d.comb += [zval.w_data.eq(zasm.sym), zval.w_en.eq(zasm.sym_valid & ~err),
                     zasm.sym_ready.eq(zval.w_rdy & ~err),
                     run_overflow.eq(zasm.sym_valid & zasm.sym[_RUN_BITS:].any())]
        m.d.comb += [
            parser.drained.eq(wasm.idle & zasm.idle & ~wval.r_rdy & ~zval.r_rdy & out.idle),
            parser.overflow.eq(run_overflow | (wasm.overflow & ~err) | zasm.overflow),
            parser.bad_index.eq(wasm.sym_valid & bad_index & ~err),
            self.done.eq(parser.done), self.error.eq(err), self.error_code.eq(parser.err_code),
        ]
        return m


class WeightDecoder(wiring.Component):
    """Decompresses one Vela weight stream per ``start`` into int8 (or 9-bit) weights.

    Members
    -------
    i_stream : ``In(stream.Signature(StructLayout({"data": in_width, "last": 1})))``
        The compressed stream exactly as Vela lays it out in memory (WEIGHT_BASE, WEIGHT_LENGTH bytes including the
        0xFF padding), little-endian beats; ``last`` marks the final beat.
    o_stream : ``Out(stream.Signature(signed(weight_width)))``
        Decoded weights in stream order (what ``ethosu.mlw_codec.decode`` returns); at most one per cycle.
    done : ``Out(1)``
        High (until ``start``) once an end-of-stream marker was followed by the end of the input and every weight
        has been delivered.
    error, error_code : ``Out(1)``, ``Out(DecodeError)``
        High (until ``start``) once the stream is found malformed; no weight is produced after it.
    start : ``In(1)``
        Synchronous clear: forget the current stream and accept a new one from the next cycle.

    After ``done`` or ``error`` the rest of the input is accepted and dropped up to ``last``, so a producer never
    hangs.

    Timing: at most one weight per cycle; measured 0.98-1.00 weights/cycle on real conv/FC layers and dense
    random data (byte and word input), 0.7-0.8 on tiny depthwise streams where the per-slice overhead shows.
    The first weight appears :meth:`first_weight_latency` cycles after the first beat is offered (9-12 cycles
    plus one per palette entry). Each slice boundary drains the
    pipeline (about 6 cycles).
    """

    def __init__(self, *, config: WeightDecoderConfig = WeightDecoderConfig()):
        if not isinstance(config, WeightDecoderConfig):
            raise TypeError(f"config must be a WeightDecoderConfig, not {config!r}")
        self._config = config
        super().__init__({
            "i_stream": In(stream.Signature(input_layout(config.in_width))),
            "o_stream": Out(stream.Signature(signed(config.weight_width))),
            "start": In(1),
            "done": Out(1),
            "error": Out(1),
            "error_code": Out(DecodeError),
        })

    @property
    def config(self) -> WeightDecoderConfig:
        return self._config

    def first_weight_latency(self, palette_size: int = 0) -> int:
        """Cycles from the first offered beat to the first valid weight of a stream whose first slice has a
        ``palette_size``-entry palette (0: direct mode), when the producer offers a beat every cycle."""
        return {8: 12, 16: 10, 32: 9}[self._config.in_width] + palette_size

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = ResetInserter(self.start)(_Core(self._config))
        m.d.comb += [
            core.i_stream.valid.eq(self.i_stream.valid), core.i_stream.payload.eq(self.i_stream.payload),
            self.i_stream.ready.eq(core.i_stream.ready & ~self.start),
            self.o_stream.valid.eq(core.o_stream.valid & ~self.start), self.o_stream.payload.eq(core.o_stream.payload),
            core.o_stream.ready.eq(self.o_stream.ready),
            self.done.eq(core.done), self.error.eq(core.error), self.error_code.eq(core.error_code),
        ]
        return m


@dataclass(frozen=True)
class WeightDecoderTestbenchConfig:
    """:class:`WeightDecoderTestbench`: a decoder plus a ``depth``-beat stream memory."""
    decoder: WeightDecoderConfig = WeightDecoderConfig()
    depth: int = 4096

    def __post_init__(self):
        if not isinstance(self.decoder, WeightDecoderConfig):
            raise TypeError(f"decoder must be a WeightDecoderConfig, not {self.decoder!r}")
        if not isinstance(self.depth, int) or isinstance(self.depth, bool) or self.depth < 1:
            raise ValueError(f"depth must be a positive integer, not {self.depth!r}")


class WeightDecoderTestbench(wiring.Component):
    """Test wrapper: ``stream`` memory (load it from the harness) -> :class:`WeightDecoder` -> ``o_stream`` ports.

    After reset, the beats ``0 .. length-1`` are fed back to back (``last`` on the final one); ``o_stream.ready``
    comes from outside so tests can apply back-pressure. ``fed`` counts accepted input beats.
    """

    def __init__(self, *, config: WeightDecoderTestbenchConfig = WeightDecoderTestbenchConfig()):
        self._config = config
        dec = config.decoder
        super().__init__({
            "length": In(range(config.depth + 1)),
            "o_stream": Out(stream.Signature(signed(dec.weight_width))),
            "done": Out(1),
            "error": Out(1),
            "error_code": Out(DecodeError),
            "fed": Out(range(config.depth + 1)),
        })

    @property
    def config(self) -> WeightDecoderTestbenchConfig:
        return self._config

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        m.submodules.stream = mem = Memory(shape=cfg.decoder.in_width, depth=cfg.depth, init=[])
        m.submodules.decoder = dec = WeightDecoder(config=cfg.decoder)
        rd = mem.read_port(domain="comb")
        addr = Signal(range(cfg.depth + 1))
        m.d.comb += [
            rd.addr.eq(addr),
            dec.i_stream.valid.eq(addr < self.length),
            dec.i_stream.payload.data.eq(rd.data),
            dec.i_stream.payload.last.eq(addr + 1 == self.length),
            self.fed.eq(addr),
        ]
        with m.If(dec.i_stream.valid & dec.i_stream.ready):
            m.d.sync += addr.eq(addr + 1)
        wiring.connect(m, dec.o_stream, wiring.flipped(self.o_stream))
        m.d.comb += [self.done.eq(dec.done), self.error.eq(dec.error), self.error_code.eq(dec.error_code)]
        return m


DECODER_PRESETS = {
    "byte": WeightDecoderConfig(in_width=8, rem_lanes=2),
    "word": WeightDecoderConfig(in_width=32, rem_lanes=4),
    "word9": WeightDecoderConfig(in_width=32, weight_width=9, rem_lanes=4),
}
