"""NPU kernel-op loader: the front half of the compute unit (:mod:`rtl.npu.compute`, whose docstring describes the
whole flow).

It takes a kick, checks the register snapshot (CHECK), streams the op's scale/bias records into its bank of the
output unit's parameter memory (RECORDS; the identity POOL writes one fixed record instead: IDENTITY) and hands the
op to the engine (``pend`` until ``take``), then streams the compressed weights through its
:class:`~rtl.npu.byte_reader.ByteReader` into the :class:`~rtl.npu.weight_decoder.WeightDecoder` and the decoded
weights into the :class:`~rtl.npu.weight_buffer.WeightBuffer` (WEIGHTS), held while the ring has no room.

It also keeps the status of the two op *slots* (a slot holds one op, its records bank and its place in the brick
ring, from its kick until the engine releases it with ``release``): busy, weights decoded (``done``), unusable
(``bad`` with its ``code``), and whether a record/weight read failed (``memerr``); ``status_*`` show slot
``status_slot``'s.
"""
from amaranth import Array, Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.npu.byte_reader import ByteReader
from rtl.npu.controller import CMD0, KernelOp, Registers
from rtl.npu.dma import NUM_REGIONS
from rtl.npu.extmem import ADDR_WIDTH, MemPortSignature
from rtl.npu.ifm_stager import line_buffer_geometry
from rtl.npu.kernel_op import (
    MAX_CHANNELS,
    MAX_KERNEL_ELEMENTS,
    MAX_KERNEL_H,
    WEIGHT_BITS,
    ComputeError,
    acc_entries,
    derive_op,
    identity_scale,
    region_base,
    round_elements,
)
from rtl.npu.weight_decoder import WeightDecoder, WeightDecoderConfig

__all__ = ["OpLoader"]

_CH_BITS = (MAX_CHANNELS - 1).bit_length()   # channel number in one records bank
_POOL_AVERAGE = 1    # NPU_OP_POOL param (``pooling_mode.AVERAGE`` in ethos_u55_regs.py)
#: Output-unit record of the identity POOL: bias 0, scale 1, shift 0 (little-endian 80-bit, SPEC.md section 5).
_IDENTITY_RECORD = 1 << 40


def _ring_bad(m, lop, *, oub: int, ublock_h: int, ublock_w: int, ring: int):
    """The op's weights cannot be walked through the brick ring: a depthwise/POOL whose first OFM block does not fit
    it, or a split conv (IFM-depth passes) or depthwise (sub-kernel passes) whose largest group does not fit it or
    whose OFM block has more micro-blocks of partial sums than the accumulator buffer holds."""
    n_ou = Signal(8)
    m.d.comb += n_ou.eq((Mux(lop.O < lop.OB, lop.O, lop.OB) + oub - 1) >> (oub.bit_length() - 1))
    first = Signal(7)      # elements of the first (largest) sub-kernel, rounded as in the stream
    sub = Mux(lop.KH > lop.sub_h, lop.sub_h, lop.KH) * Mux(lop.KW > lop.sub_w, lop.sub_w, lop.KW)
    m.d.comb += first.eq(Mux(lop.pk | lop.dw, round_elements(sub, lop.pk & ~lop.dw & lop.wide), sub))
    group = Signal(24)
    entries = Signal(32)
    mb_rows = (lop.OH + ublock_h - 1) >> (ublock_h - 1)
    mb_cols = (lop.OW + ublock_w - 1) >> (ublock_w - 1)
    m.d.comb += [group.eq(n_ou * first * Mux(lop.dw, 1, lop.ib_step >> 3)), entries.eq(mb_rows * mb_cols * n_ou)]
    bad = Signal()
    # The accumulator buffer keeps 32-bit partial sums: 40-bit ones (ACC_FORMAT INT40) cannot be split.
    split_bad = (group > ring) | (entries > acc_entries(ublock_h * ublock_w, oub)) | (lop.regs.ACC_FORMAT != 0)
    m.d.comb += bad.eq(Mux(lop.split, split_bad, lop.block_bricks > ring))
    return bad


def _activation_ok(m, act, ofm_precision) -> Signal:
    """ACTIVATION: none, or an 8-bit table TABLE_0..7 with the OFM's clip range on an S8 OFM (the output unit's
    lookup; a U8 / 16 / 32-bit OFM has no table path)."""
    ok = Signal(name="activation_ok")
    fn = act[0:12]
    table = (fn >= 16) & (fn <= 23) & (act[12:16] == 0) & (ofm_precision[0:3] == 1)
    m.d.comb += ok.eq((fn == 0) | table)
    return ok


def _unsupported(m, lop, lregs, lopcode, lparam, *, ring_bad, fits, weight_addr, oub: int):
    """CHECK: the register snapshot asks for something the compute unit does not implement."""
    ks = lregs.KERNEL_STRIDE
    # Kernel ops with a weight stream and per-channel records (OFM_PRECISION[8] = 0: scale stream).
    weighted_bad = Signal()
    m.d.comb += weighted_bad.eq(
        lregs.OFM_PRECISION[8] | (lop.O > MAX_CHANNELS) | ring_bad
        | (lregs.WEIGHT_LENGTH == 0) | (lregs.SCALE_LENGTH < lop.O * 10)
        | (weight_addr[:3] != 0) | (lregs.WEIGHT_LENGTH[:3] != 0))   # read in 8-byte words (Vela aligns to 16)
    # The identity POOL (compute module docstring): AVERAGE, 1x1, stride 1, no padding, a unit global scale.
    pool_bad = Signal()
    m.d.comb += pool_bad.eq(
        (lparam != _POOL_AVERAGE) | (lop.KH != 1) | (lop.KW != 1) | ks[0] | ks[1] | ks[6] | ks[9]
        | (lregs.IFM_PAD_TOP != 0) | (lregs.IFM_PAD_LEFT != 0) | (lregs.IFM_PAD_BOTTOM != 0)
        | (lregs.IFM_PAD_RIGHT != 0) | ~lregs.OFM_PRECISION[8] | ~identity_scale(m, lregs, "l_")
        | ~lregs.IFM_PRECISION[0] | ~lregs.OFM_PRECISION[0])
    unsupported = Signal()
    m.d.comb += unsupported.eq(
        ((lopcode != CMD0.NPU_OP_CONV) & ~lop.dw)
        | Mux(lop.pool, pool_bad, weighted_bad)
        # S8 / U8 / S16 IFM; S8 / U8 / S16 / S32 OFM (unsigned only 8-bit)
        | lregs.IFM_PRECISION[1] | (lregs.IFM_PRECISION[2:4] > 1) | (lop.pool & lop.wide)
        | (~lregs.IFM_PRECISION[0] & lop.wide)
        | (lop.ifm_fmt > 1) | (lregs.IFM_PRECISION[8:10] != 0)
        | (~lregs.OFM_PRECISION[0] & (lregs.OFM_PRECISION[1:3] != 0)) | (lregs.OFM_PRECISION[1:3] == 3)
        | (lop.pool & (lregs.OFM_PRECISION[1:3] != 0)) | (lop.ofm_fmt > 1)
        | (lregs.OFM_PRECISION[14] != 0)                                    # round mode TFL or NATURAL
        | (lregs.IFM_UPSCALE[0:2] == 3) | (lregs.ACC_FORMAT > 1)           # INT32 or INT40 accumulators
        | ~_activation_ok(m, lregs.ACTIVATION, lregs.OFM_PRECISION)
        | (lop.EH > MAX_KERNEL_H) | (lop.kk > MAX_KERNEL_ELEMENTS) | ks[5]
        | (lop.dy & lregs.KERNEL_HEIGHT_M1[0]) | (lop.dx & lregs.KERNEL_WIDTH_M1[0])   # a dilated extent is odd
        | (lop.need_h < 1) | (lop.need_w < 1)
        | (lop.OB[:3 if oub == 8 else 2] != 0) | ~fits
    )
    return unsupported


class OpLoader(wiring.Component):
    """See the module docstring.

    Members
    -------
    kick : ``In(stream.Signature(KernelOp))``; basep : ``In(32).array(8)``; bus : ``Out(MemPortSignature)``
    last_kick : ``Out(KernelOp)``    the most recently accepted kick
    pend : ``Out(1)``; take : ``In(1)``    an op waits for the engine: ``regs``, ``opcode``, ``bank`` and ``code``
        (the CHECK verdict)
    status_slot, release : ``In(1)``; status_done, status_bad, status_memerr : ``Out(1)``;
    status_code : ``Out(ComputeError)``
    param_we : ``Out(1)``, param_channel : ``Out(1 + bits(MAX_CHANNELS - 1))``, param_record : ``Out(80)``
        output-unit record writes (bank, channel)
    wb_* : the weight buffer's write side (:class:`~rtl.npu.weight_buffer.WeightBuffer` ``open``, ``wr_*``, ``close``):
    one decoder beat of up to ``oub`` weights of ``WEIGHT_BITS`` per cycle (``wb_data`` lanes
    ``wb_first .. wb_first+wb_n-1``)
    """

    def __init__(self, *, oub: int, ublock_h: int, ublock_w: int, ring: int, line_buffer_words: int,
                 prefetch: int = 4):
        self.oub, self.ublock_h, self.ublock_w, self.ring = oub, ublock_h, ublock_w, ring
        self.line_buffer_words = line_buffer_words
        self.prefetch = prefetch   # the byte reader's words in flight
        super().__init__({
            "kick": In(stream.Signature(KernelOp)),
            "basep": In(ADDR_WIDTH).array(NUM_REGIONS), "bus": Out(MemPortSignature), "last_kick": Out(KernelOp),
            "pend": Out(1), "take": In(1), "regs": Out(Registers), "opcode": Out(10), "bank": Out(1),
            "code": Out(ComputeError),
            "status_slot": In(1), "release": In(1), "status_done": Out(1), "status_bad": Out(1),
            "status_memerr": Out(1), "status_code": Out(ComputeError),
            "param_we": Out(1), "param_channel": Out(_CH_BITS + 1), "param_record": Out(80),
            "wb_open": Out(1), "wb_open_slot": Out(1), "wb_en": Out(1), "wb_dw": Out(1), "wb_count": Out(32),
            "wb_data": Out(WEIGHT_BITS * oub), "wb_first": Out(range(oub)), "wb_n": Out(range(oub + 1)),
            "wb_room": In(1), "wb_close": Out(1), "wb_close_bricks": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        OUB = self.oub
        m.submodules.reader = rd = ByteReader(prefetch=self.prefetch)
        m.submodules.decoder = dec = WeightDecoder(config=WeightDecoderConfig(in_width=64, weight_width=WEIGHT_BITS,
                                                                               out_lanes=OUB))
        wiring.connect(m, wiring.flipped(self.bus), rd.bus)
        kick = self.kick
        bank_busy = Array(Signal(name=f"bank_busy_{b}") for b in range(2))
        w_done = Array(Signal(name=f"w_done_{b}") for b in range(2))      # its weight stream is decoded
        w_bad = Array(Signal(name=f"w_bad_{b}") for b in range(2))        # ... and unusable (abort the op)
        w_code = Array(Signal(ComputeError, name=f"w_code_{b}") for b in range(2))
        w_memerr = Array(Signal(name=f"w_memerr_{b}") for b in range(2))  # a record/weight read answered err
        s = self.status_slot
        m.d.comb += [self.status_done.eq(w_done[s]), self.status_bad.eq(w_bad[s]), self.status_code.eq(w_code[s]),
                     self.status_memerr.eq(w_memerr[s])]

        lregs, lopcode, lbank, lcode, pend = self.regs, self.opcode, self.bank, self.code, self.pend
        lparam = Signal(16)
        lbank_next = Signal()
        m.d.comb += [self.last_kick.regs.eq(lregs), self.last_kick.opcode.eq(lopcode)]
        lop = derive_op(m, lregs, lopcode, OUB, self.ublock_h, "l_", line_buffer_words=self.line_buffer_words)
        _, _, _, l_fits = line_buffer_geometry(m, self.line_buffer_words, lop.IW, lop.ublocks, lop.IH, lop.dw,
                                               lop.span, "l_")
        weight_addr = Signal(ADDR_WIDTH)
        m.d.comb += weight_addr.eq(region_base(self.basep, lregs.WEIGHT_REGION) + lregs.WEIGHT_BASE)
        ring_bad = _ring_bad(m, lop, oub=OUB, ublock_h=self.ublock_h, ublock_w=self.ublock_w, ring=self.ring)
        unsupported = _unsupported(m, lop, lregs, lopcode, lparam, ring_bad=ring_bad, fits=l_fits,
                                   weight_addr=weight_addr, oub=OUB)

        fail = Signal()       # more weights decoded than the loop nest has
        w_cnt = Signal(32)    # decoded weights so far
        beat = dec.o_stream.payload
        m.d.comb += [self.wb_dw.eq(lop.dw), self.wb_count.eq(w_cnt), self.wb_data.eq(beat.data),
                     self.wb_first.eq(beat.first), self.wb_n.eq(beat.count),
                     self.wb_open_slot.eq(lbank_next), self.wb_close_bricks.eq(lop.expected),
                     dec.i_stream.payload.data.eq(rd.word_data), dec.i_stream.payload.last.eq(rd.last)]
        rec = Signal(80)
        rec_n = Signal(4)
        rec_ch = Signal(17)
        with m.If(self.take):
            m.d.sync += pend.eq(0)

        with m.FSM(name="loader"):
            with m.State("IDLE"):
                m.d.comb += kick.ready.eq(~pend & ~bank_busy[lbank_next])
                with m.If(kick.valid & kick.ready):
                    m.d.comb += [self.wb_open.eq(1), rd.clear_err.eq(1)]
                    m.d.sync += [lregs.eq(kick.payload.regs), lopcode.eq(kick.payload.opcode),
                                 lparam.eq(kick.payload.param), fail.eq(0),
                                 lbank.eq(lbank_next), lbank_next.eq(~lbank_next),
                                 bank_busy[lbank_next].eq(1), w_done[lbank_next].eq(0), w_bad[lbank_next].eq(0),
                                 w_memerr[lbank_next].eq(0)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                scale = region_base(self.basep, lregs.SCALE_REGION) + lregs.SCALE_BASE
                m.d.comb += [dec.start.eq(1), rd.start.eq(1), rd.addr.eq(scale), rd.length.eq(lop.O * 10)]
                m.d.sync += [rec_n.eq(0), rec_ch.eq(0), w_cnt.eq(0)]
                with m.If(unsupported):
                    m.d.comb += rd.cancel.eq(1)
                    m.d.sync += [lcode.eq(ComputeError.UNSUPPORTED), pend.eq(1), w_done[lbank].eq(1)]
                    m.next = "IDLE"
                with m.Elif(lop.pool):
                    m.d.comb += rd.cancel.eq(1)
                    m.d.sync += lcode.eq(ComputeError.NONE)
                    m.next = "IDENTITY"
                with m.Else():
                    m.d.sync += lcode.eq(ComputeError.NONE)
                    m.next = "RECORDS"
            with m.State("IDENTITY"):
                # POOL: no streams; channels 0..OUB-1 of the bank get the record {bias 0, scale 1, shift 0}.
                m.d.comb += [self.param_we.eq(1), self.param_channel.eq(Cat(rec_ch[:_CH_BITS], lbank)),
                             self.param_record.eq(_IDENTITY_RECORD)]
                m.d.sync += rec_ch.eq(rec_ch + 1)
                with m.If(rec_ch == OUB - 1):
                    m.d.sync += [pend.eq(1), w_done[lbank].eq(1)]
                    m.next = "IDLE"
            with m.State("RECORDS"):
                m.d.comb += rd.take.eq(rd.valid)
                with m.If(rd.take):
                    m.d.sync += rec.eq(Cat(rec[8:], rd.data))
                    m.d.sync += rec_n.eq(Mux(rec_n == 9, 0, rec_n + 1))
                    with m.If(rec_n == 9):
                        m.d.comb += [self.param_we.eq(1), self.param_channel.eq(Cat(rec_ch[:_CH_BITS], lbank)),
                                     self.param_record.eq(Cat(rec[8:], rd.data))]
                        m.d.sync += rec_ch.eq(rec_ch + 1)
                with m.If(rd.idle):
                    m.d.comb += [rd.start.eq(1), rd.word.eq(1), rd.addr.eq(weight_addr),
                                 rd.length.eq(lregs.WEIGHT_LENGTH)]
                    m.d.sync += pend.eq(1)
                    m.next = "WEIGHTS"
            with m.State("WEIGHTS"):
                m.d.comb += [dec.i_stream.valid.eq(rd.valid), rd.take.eq(rd.valid & dec.i_stream.ready),
                             dec.o_stream.ready.eq(self.wb_room | (w_cnt >= lop.expected_bytes))]
                with m.If(dec.o_stream.valid & dec.o_stream.ready):
                    with m.If(w_cnt + beat.count <= lop.expected_bytes):
                        m.d.comb += self.wb_en.eq(1)
                    with m.Else():
                        m.d.sync += fail.eq(1)
                    m.d.sync += w_cnt.eq(w_cnt + beat.count)
                with m.If(rd.idle & (dec.done | dec.error)):
                    bad = dec.error | (w_cnt != lop.expected_bytes) | fail
                    m.d.comb += self.wb_close.eq(1)
                    m.d.sync += [w_done[lbank].eq(1), w_bad[lbank].eq(bad), w_memerr[lbank].eq(rd.err),
                                 w_code[lbank].eq(Mux(rd.err, ComputeError.MEMORY, Mux(
                                     dec.error, ComputeError.DECODE, ComputeError.WEIGHT_COUNT)))]
                    m.next = "IDLE"
        with m.If(self.release):
            m.d.sync += bank_busy[self.status_slot].eq(0)
        return m
