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

**Wide decoder** (``out_lanes`` > 1, e.g. the ``wide`` preset: 64-bit input, 8 lanes): the parser reads one whole
chunk-loop pass per cycle (the unary fields and all remainders of the previous pass's chunks), the assemblers
(:class:`_WideAssembler`) form up to ``out_lanes`` symbols per cycle into multi-lane value FIFOs (:class:`_LaneFIFO`),
and the output stage (:class:`_WideOutputStage`) fills one stream-aligned beat of ``out_lanes`` weights per cycle
(``output_layout``), a zero run covering whole beats at once. Measured 2.3-4.7 weights per cycle on dense streams
and about 7.4 on long zero runs (tb/rtl/npu/test_weight_decoder.py).

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
    out_lanes: int = 1

    def __post_init__(self):
        for name in ("in_width", "weight_width", "rem_lanes", "fifo_depth", "out_lanes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"{name} must be an integer, not {value!r}")
        if self.in_width not in (8, 16, 32, 64):
            raise ValueError(f"in_width must be 8, 16, 32 or 64, not {self.in_width!r}")
        if self.weight_width not in (8, 9):
            raise ValueError(f"weight_width must be 8 or 9, not {self.weight_width!r}")
        if not 1 <= self.rem_lanes <= 4:
            raise ValueError(f"rem_lanes must be 1..4, not {self.rem_lanes!r}")
        if self.fifo_depth < 24:
            raise ValueError(f"fifo_depth must be at least 24, not {self.fifo_depth!r}")
        if self.out_lanes not in (1, 2, 4, 8):
            raise ValueError(f"out_lanes must be 1, 2, 4 or 8, not {self.out_lanes!r}")
        if self.wide and self.fifo_depth & (self.fifo_depth - 1):
            raise ValueError(f"fifo_depth of the wide decoder must be a power of two, not {self.fifo_depth!r}")

    @property
    def wide(self) -> bool:
        """The multi-lane decoder: one whole chunk-loop pass (unary fields and the previous chunk's remainders) per
        parser cycle, ``out_lanes`` symbols per assembler cycle, ``out_lanes`` weights or zeros per output beat
        (``rem_lanes`` is then unused)."""
        return self.out_lanes > 1

    @property
    def max_need(self) -> int:
        """Widest field group the parser consumes in one cycle (a slice header is 23 bits)."""
        if self.wide:   # the unary fields, up to 8 nine-bit / 12 five-bit W remainders, 12 three-bit Z remainders
            return 3 * _CHUNK + 8 * _REM_MAX + _CHUNK * 3
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


def output_layout(config: WeightDecoderConfig):
    """``o_stream`` payload: one weight, or (wide decoder) one beat of ``out_lanes`` weights.

    A wide beat is aligned to the stream: its lanes are stream positions ``k*out_lanes .. k*out_lanes+out_lanes-1``
    for some ``k``; lanes ``first .. first+count-1`` are valid (``count >= 1``), the others are 0."""
    if not config.wide:
        return signed(config.weight_width)
    lanes = config.out_lanes
    return data.StructLayout({"data": data.ArrayLayout(signed(config.weight_width), lanes),
                              "first": range(lanes), "count": range(lanes + 1)})


class _LaneFIFO(Elaboratable):
    """A register FIFO that takes up to ``w_lanes`` entries (``w_n``, from ``w_data[0]``; only while ``w_rdy``) and
    shows its first ``r_lanes`` entries (``r_data``, ``level`` of them valid), ``r_n`` of which leave per cycle."""

    def __init__(self, *, width: int, depth: int, w_lanes: int, r_lanes: int):
        assert depth & (depth - 1) == 0 and depth >= w_lanes
        self.depth = depth
        self.w_data = [Signal(width, name=f"w_data{i}") for i in range(w_lanes)]
        self.w_n = Signal(range(w_lanes + 1))
        self.w_rdy = Signal()
        self.r_data = [Signal(width, name=f"r_data{i}") for i in range(r_lanes)]
        self.r_n = Signal(range(r_lanes + 1))
        self.level = Signal(range(depth + 1))

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        bits = depth.bit_length() - 1
        mem = Array(Signal.like(self.w_data[0], name=f"entry{i}") for i in range(depth))
        rp = Signal(bits)
        wp = Signal(bits)
        m.d.comb += self.w_rdy.eq(self.level <= depth - len(self.w_data))
        for i, d in enumerate(self.r_data):
            m.d.comb += d.eq(mem[(rp + i)[:bits]])
        for i, d in enumerate(self.w_data):
            with m.If(i < self.w_n):
                m.d.sync += mem[(wp + i)[:bits]].eq(d)
        m.d.sync += [wp.eq(wp + self.w_n), rp.eq(rp + self.r_n), self.level.eq(self.level + self.w_n - self.r_n)]
        return m


class _WideAssembler(Elaboratable):
    """:class:`_Assembler` for the wide decoder: up to ``lanes`` symbols per cycle (``sym_n`` of ``sym``, written
    only while ``sym_ready``). A remainder group holds all remainders of one chunk (12 lanes + a 4-bit count)."""

    def __init__(self, *, cont_weight: int, lanes: int, div_bits: int):
        self.cont_weight = cont_weight
        self.lanes = lanes
        self.desc = SyncFIFO(width=_DESC.size, depth=4)
        self.rem = SyncFIFO(width=_CHUNK * _REM_MAX + 4, depth=4)
        self.div = Signal(div_bits)
        self.has_rem = Signal()
        self.n_sym = Signal(17)
        self.slice_start = Signal()
        self.halt = Signal()
        self.sym = [Signal(_QBITS + _REM_MAX, name=f"sym{j}") for j in range(lanes)]
        self.sym_avail = Signal(range(lanes + 1))   # symbols offered this cycle (taken when ``sym_ready``)
        self.sym_n = Signal(range(lanes + 1))       # symbols taken this cycle
        self.sym_ready = Signal()
        self.overflow = Signal()
        self.idle = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.desc = self.desc
        m.submodules.rem = self.rem
        head = _DESC(self.desc.r_data)
        cw = self.cont_weight
        done_mask = Signal(_CHUNK)
        carry = Signal(_QBITS + 1)
        sym_idx = Signal(17)
        grp_idx = Signal(4)
        grp_n = self.rem.r_data[-4:]
        rem_ok = ~self.has_rem | self.rem.r_rdy
        m.d.comb += self.idle.eq(~self.desc.r_rdy & ~self.rem.r_rdy)
        mask = done_mask
        ok = Const(1)
        oks = []
        overflow = []
        for j in range(self.lanes):
            ends = Signal(_CHUNK, name=f"ends{j}")
            m.d.comb += ends.eq(head.ends & ~mask)
            low = ends & (~ends + 1)
            lowmask = Signal(_CHUNK, name=f"lowmask{j}")
            m.d.comb += lowmask.eq(ends ^ (ends - 1))
            q = Signal(_QBITS + 2, name=f"q{j}")
            m.d.comb += q.eq((carry if j == 0 else 0) + cw * _popcount(head.conts & ~mask & lowmask, _CHUNK)
                             + (head.ones & low).any())
            lane_ok = Signal(name=f"lane_ok{j}")
            m.d.comb += lane_ok.eq(ok & (ends != 0) & (sym_idx + j < self.n_sym)
                                   & (~self.has_rem | (grp_idx + j < grp_n)))
            r = Mux(self.has_rem, self.rem.r_data.word_select((grp_idx + j)[:4], _REM_MAX), 0)
            m.d.comb += self.sym[j].eq((q << self.div) | r)
            oks.append(lane_ok)
            overflow.append(lane_ok & q[_QBITS:].any())
            mask = mask | Mux(lane_ok, lowmask, 0)
            ok = lane_ok
        n = Signal(range(self.lanes + 1))
        m.d.comb += n.eq(sum(oks))
        mask_after = Signal(_CHUNK)
        m.d.comb += mask_after.eq(mask)
        active = self.desc.r_rdy & ~self.halt

        def finish():
            m.d.comb += self.desc.r_en.eq(1)
            m.d.sync += done_mask.eq(0)

        with m.If(self.slice_start):
            m.d.sync += [carry.eq(0), sym_idx.eq(0), done_mask.eq(0), grp_idx.eq(0)]
        with m.Elif(active):
            ends_left = head.ends & ~done_mask
            with m.If(sym_idx >= self.n_sym):
                finish()
            with m.Elif(ends_left == 0):
                new_carry = carry + cw * _popcount(head.conts & ~done_mask, _CHUNK)
                m.d.sync += carry.eq(new_carry)
                with m.If(new_carry[_QBITS:].any()):
                    m.d.comb += self.overflow.eq(1)
                finish()
            with m.Elif(rem_ok):
                m.d.comb += [self.sym_avail.eq(n), self.overflow.eq(Cat(*overflow).any())]
                with m.If(self.sym_ready):
                    m.d.comb += self.sym_n.eq(n)
                    m.d.sync += sym_idx.eq(sym_idx + n)
                    with m.If(self.has_rem):
                        with m.If(grp_idx + n == grp_n):
                            m.d.comb += self.rem.r_en.eq(1)
                            m.d.sync += grp_idx.eq(0)
                        with m.Else():
                            m.d.sync += grp_idx.eq(grp_idx + n)
                    with m.If((head.ends & ~mask_after) == 0):
                        m.d.sync += carry.eq(cw * _popcount(head.conts & ~mask_after, _CHUNK))
                        finish()
                    with m.Else():
                        m.d.sync += [carry.eq(0), done_mask.eq(mask_after)]
        return m


class _WideOutputStage(Elaboratable):
    """:class:`_OutputStage` for the wide decoder: fills the lanes of one stream-aligned beat per cycle with weights
    (``wval``) and the zero runs that follow them (``zval``); a zero run longer than the beat fills whole beats."""

    def __init__(self, params: _SliceParams, wval: _LaneFIFO, zval: _LaneFIFO, o_stream, lanes: int):
        self.params, self.wval, self.zval, self.o_stream, self.lanes = params, wval, zval, o_stream, lanes
        self.err = Signal()
        self.slice_start = Signal()
        self.idle = Signal()

    def elaborate(self, platform):
        m = Module()
        L = self.lanes
        lb = L.bit_length() - 1
        wval, zval, o = self.wval, self.zval, self.o_stream
        zrun = self.params.zrun
        pw = _RUN_BITS + 4
        zeros_left = Signal(_RUN_BITS)
        owe_z = Signal()          # the next zero-run value belongs before the next weight
        first = Signal(lb)        # stream position mod L
        m.d.comb += self.idle.eq(zeros_left == 0)
        zoff = owe_z.as_unsigned()
        stalled = owe_z & (zval.level == 0)
        pend = Signal(pw)
        m.d.comb += pend.eq(zeros_left + Mux(owe_z, zval.r_data[0], 0))
        room = L - first
        # weight k lands at lane pos[k]; its zero run follows it
        pos = Signal(pw, name="pos0")
        m.d.comb += pos.eq(first + pend)
        ok = ~stalled & (pend < room)
        lanes = [Const(0, signed(len(wval.r_data[0])))] * L
        n_w = Const(0, range(L + 1))
        n_z = zoff
        end = pos        # one past the last lane this beat covers (before clipping to L)
        owe_after = Const(0)
        for k in range(L):
            w_ok = Signal(name=f"w_ok{k}")
            m.d.comb += w_ok.eq(ok & (wval.level > k) & (pos < L))
            z_have = Signal(name=f"z_have{k}")
            m.d.comb += z_have.eq(~zrun | (zval.level > zoff + k))
            z = Mux(zrun, Array(zval.r_data)[zoff + k], 0)
            lanes = [Mux(w_ok & (pos == lane), wval.r_data[k], lanes[lane]) for lane in range(L)]
            n_w = Mux(w_ok, k + 1, n_w)
            n_z = Mux(w_ok & z_have & zrun, zoff + k + 1, n_z)
            nxt = Signal(pw, name=f"pos{k + 1}")
            m.d.comb += nxt.eq(pos + 1 + Mux(z_have, z, 0))
            end = Mux(w_ok, nxt, end)
            owe_after = Mux(w_ok, zrun & ~z_have, owe_after)
            ok = w_ok & z_have
            pos = nxt
        end_s = Signal(pw)
        m.d.comb += end_s.eq(Mux(pend >= room, first + pend, end))
        last_lane = Signal(lb + 1)
        m.d.comb += last_lane.eq(Mux(end_s >= L, L, end_s))
        count = Signal(lb + 1)
        m.d.comb += count.eq(Mux(stalled, 0, last_lane - first))
        for lane in range(L):
            m.d.comb += o.payload.data[lane].eq(lanes[lane])
        m.d.comb += [o.payload.first.eq(first), o.payload.count.eq(count), o.valid.eq((count != 0) & ~self.err)]
        with m.If(self.err):
            pass
        with m.Elif(self.slice_start):
            m.d.sync += owe_z.eq(self.params.newpal & zrun)
        with m.Elif(~stalled & ((count == 0) | o.ready)):
            m.d.sync += [first.eq(first + count), zeros_left.eq(end_s - last_lane)]
            with m.If(pend >= room):
                m.d.comb += zval.r_n.eq(zoff)
                m.d.sync += owe_z.eq(0)
            with m.Else():
                m.d.comb += [wval.r_n.eq(n_w), zval.r_n.eq(n_z)]
                m.d.sync += owe_z.eq(Mux(n_w == 0, 0, owe_after))
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
                if self.config.wide:
                    self._pass(m)
                else:
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

    def _chunk_fields(self, m):
        """The unary fields of one chunk-loop pass at the head of the bit buffer: which streams take part, their
        chunk descriptors (also driven onto the assemblers' descriptor FIFOs) and the number of bits they use."""
        bits, p, c, wasm, zasm = self.bits, self.params, self._counters, self.wasm, self.zasm
        buf = bits.buf
        wpos, zpos = c["wpos"], c["zpos"]
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
        unary_bits = Signal(6)
        m.d.comb += unary_bits.eq(Mux(wu, _CHUNK + ones_u0, 0) + Mux(z_en, p.zlen, 0))
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
        return w_en, z_en, wu, wdesc, zdesc, unary_bits

    def _unary(self, m):
        """UNARY: all unary fields of one chunk-loop pass (WUNARY0 + ZUNARY + WUNARY1) in one cycle."""
        bits, p, c, wasm, zasm = self.bits, self.params, self._counters, self.wasm, self.zasm
        have = bits.have
        wpos, zpos, w_asg, z_asg = c["wpos"], c["zpos"], c["w_asg"], c["z_asg"]
        wrem_nxt, zrem_nxt = c["wrem_nxt"], c["zrem_nxt"]
        w_en, z_en, _, wdesc, zdesc, unary_bits = self._chunk_fields(m)
        m.d.comb += bits.need.eq(unary_bits)
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

    def _pass(self, m):
        """UNARY of the wide decoder: one whole chunk-loop pass per cycle, i.e. the unary fields (WUNARY0 + ZUNARY +
        WUNARY1) and then the remainders of the previous pass's chunks (all of them: at most 12 each)."""
        bits, p, c, wasm, zasm = self.bits, self.params, self._counters, self.wasm, self.zasm
        buf, have = bits.buf, bits.have
        wpos, zpos, w_asg, z_asg = c["wpos"], c["zpos"], c["w_asg"], c["z_asg"]
        wrem_nxt, zrem_nxt = c["wrem_nxt"], c["zrem_nxt"]
        w_en, z_en, wu, wdesc, zdesc, unary_bits = self._chunk_fields(m)
        wrw = Signal(4)
        zrw = Signal(2)
        m.d.comb += [wrw.eq(p.wrw), zrw.eq(Mux(p.zrun, p.zdiv[:2], 0))]
        w_off = Signal(6)
        z_off = Signal(8)
        m.d.comb += [w_off.eq(unary_bits), z_off.eq(unary_bits + wrem_nxt * wrw)]
        wmask = Signal(_REM_MAX)
        zmask = Signal(3)
        m.d.comb += [wmask.eq((1 << wrw) - 1), zmask.eq((1 << zrw) - 1)]
        wrems = [buf.bit_select(w_off + i * wrw, _REM_MAX) & wmask for i in range(_CHUNK)]
        zrems = [Cat(buf.bit_select(z_off + i * zrw, 3) & zmask, Const(0, _REM_MAX - 3)) for i in range(_CHUNK)]
        m.d.comb += [bits.need.eq(z_off + zrem_nxt * zrw),
                     wasm.rem.w_data.eq(Cat(*wrems, wrem_nxt)), zasm.rem.w_data.eq(Cat(*zrems, zrem_nxt))]
        wpos_new = wpos + _popcount(wdesc.ends, _CHUNK)
        zpos_new = zpos + _popcount(zdesc.ends, _CHUNK)
        w_asg_new = Mux(wpos_new < p.nw, wpos_new, p.nw)
        z_asg_new = Mux(zpos_new < p.nz, zpos_new, p.nz)
        space = ((~w_en | wasm.desc.w_rdy) & (~z_en | zasm.desc.w_rdy)
                 & ((wrem_nxt == 0) | wasm.rem.w_rdy) & ((zrem_nxt == 0) | zasm.rem.w_rdy))
        with m.If(self.err):
            m.next = "ERROR"
        with m.Elif(~w_en & ~z_en & (wrem_nxt == 0) & (zrem_nxt == 0)):
            m.next = "HDR"
        with m.Elif(have & space):
            m.d.comb += [bits.take.eq(1), wasm.desc.w_en.eq(w_en), zasm.desc.w_en.eq(z_en),
                         wasm.rem.w_en.eq(wrem_nxt != 0), zasm.rem.w_en.eq(zrem_nxt != 0)]
            m.d.sync += [wrem_nxt.eq(0), zrem_nxt.eq(0)]
            with m.If(w_en):
                m.d.sync += [wpos.eq(wpos_new), w_asg.eq(w_asg_new),
                             wrem_nxt.eq(Mux(p.wrw != 0, w_asg_new - w_asg, 0))]
            with m.If(z_en):
                m.d.sync += [zpos.eq(zpos_new), z_asg.eq(z_asg_new),
                             zrem_nxt.eq(Mux(p.zdiv != 0, z_asg_new - z_asg, 0))]
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
        self.o_stream = stream.Signature(output_layout(cfg)).create()
        self.done = Signal()
        self.error = Signal()
        self.error_code = Signal(DecodeError)

    def elaborate(self, platform):
        if self.config.wide:
            return self._elaborate_wide()
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

    def _elaborate_wide(self):
        cfg = self.config
        m = Module()
        L = cfg.out_lanes
        params = _SliceParams()
        params.derive(m)
        m.submodules.bits = bits = _BitReader(cfg, self.i_stream)
        m.submodules.wasm = wasm = _WideAssembler(cont_weight=2, lanes=L, div_bits=3)
        m.submodules.zasm = zasm = _WideAssembler(cont_weight=1, lanes=L, div_bits=3)
        m.submodules.wval = wval = _LaneFIFO(width=cfg.weight_width, depth=cfg.fifo_depth, w_lanes=L, r_lanes=L)
        m.submodules.zval = zval = _LaneFIFO(width=_RUN_BITS, depth=cfg.fifo_depth, w_lanes=L, r_lanes=L + 1)
        m.submodules.parser = parser = _Parser(cfg, bits, params, wasm, zasm)
        m.submodules.output = out = _WideOutputStage(params, wval, zval, self.o_stream, L)
        err = parser.err
        m.d.comb += [
            wasm.div.eq(Mux(params.unc, 0, params.wdiv)), wasm.has_rem.eq(params.wrw != 0), wasm.n_sym.eq(params.nw),
            zasm.div.eq(params.zdiv), zasm.has_rem.eq(params.zrun & (params.zdiv != 0)), zasm.n_sym.eq(params.nz),
            wasm.slice_start.eq(parser.slice_start), zasm.slice_start.eq(parser.slice_start),
            wasm.halt.eq(err), zasm.halt.eq(err), out.err.eq(err), out.slice_start.eq(parser.slice_start),
        ]
        # W index -> 9-bit code u -> weight, per lane
        limit = (1 << (cfg.weight_width - 1))
        bad = []
        for j, v in enumerate(wasm.sym):
            u = Signal(_QBITS + _REM_MAX + 1, name=f"u{j}")
            m.d.comb += u.eq(Mux(v < params.palsize, params.pal[v[:5]], v - params.palsize + params.dirofs))
            mag, neg = u[1:], u[0]
            bad.append((j < wasm.sym_avail) & ((u >= 512) | Mux(neg, mag > limit, mag > limit - 1)))
            m.d.comb += wval.w_data[j].eq(Mux(neg, -mag, mag)[:cfg.weight_width])
        bad_index = Signal()
        m.d.comb += [bad_index.eq(Cat(*bad).any()), wasm.sym_ready.eq(wval.w_rdy & ~bad_index & ~err),
                     wval.w_n.eq(wasm.sym_n)]
        run_overflow = Signal()
        m.d.comb += [zasm.sym_ready.eq(zval.w_rdy & ~err), zval.w_n.eq(zasm.sym_n),
                     run_overflow.eq(Cat(*[(j < zasm.sym_avail) & sym[_RUN_BITS:].any()
                                           for j, sym in enumerate(zasm.sym)]).any())]
        m.d.comb += [zval.w_data[j].eq(sym) for j, sym in enumerate(zasm.sym)]
        m.d.comb += [
            parser.drained.eq(wasm.idle & zasm.idle & (wval.level == 0) & (zval.level == 0) & out.idle),
            parser.overflow.eq(run_overflow | (wasm.overflow & ~err) | zasm.overflow),
            parser.bad_index.eq(bad_index & ~err),
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
    o_stream : ``Out(stream.Signature(output_layout(config)))``
        Decoded weights in stream order (what ``ethosu.mlw_codec.decode`` returns); one per beat, or (wide decoder)
        up to ``out_lanes`` per beat in lanes aligned to their stream position.
    done : ``Out(1)``
        High (until ``start``) once an end-of-stream marker was followed by the end of the input and every weight
        has been delivered.
    error, error_code : ``Out(1)``, ``Out(DecodeError)``
        High (until ``start``) once the stream is found malformed; no weight is produced after it.
    start : ``In(1)``
        Synchronous clear: forget the current stream and accept a new one from the next cycle.

    After ``done`` or ``error`` the rest of the input is accepted and dropped up to ``last``, so a producer never
    hangs.

    Timing (``out_lanes`` = 1; the wide decoder: see the module docstring): at most one weight per cycle; measured
    0.98-1.00 weights/cycle on real conv/FC layers and dense
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
            "o_stream": Out(stream.Signature(output_layout(config))),
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
            "o_stream": Out(stream.Signature(output_layout(dec))),
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
    "wide": WeightDecoderConfig(in_width=64, out_lanes=8),
}
