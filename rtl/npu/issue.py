"""NPU beat issue: walks a kernel op's loop nest and issues one MAC beat per cycle (see :mod:`rtl.npu.compute`).

:class:`IssueSequencer`: for every OFM block, OFM ublock, OFM micro-block (``ublock_h x ublock_w`` positions) and
*group* (an IFM block, 32 deep depth-first / 16 deep part-kernel-first, and an 8x8 sub-kernel of it: kernels larger
than 8x8 are walked as sub-kernels, row-major, as Vela orders their weights), then IFM ublock and kernel element, one
beat: the brick index (from the loop nest, so the stream order is honoured) goes to the weight buffer and each
position's IFM tap to the IFM stager's line buffer (padding taps flagged: they contribute 0); the brick and the taps'
bytes leave on ``beat``. A beat waits only while its brick is not decoded yet (``bricks``: bricks decoded so far, in
stream order, unless ``bricks_all``), its IFM rows are not staged yet, or the next stage has no room. The last beat of a
micro-block also pushes the micro-block's place on ``block`` (for the output path); ``next_block`` pulses when the walk
no longer needs the bricks before ``block_offset`` (relative to the op's first brick): at the next OFM block.

**Dilation** (KERNEL_STRIDE bits 3 / 4: dilation 2, which Vela writes for dilation 2 and, with a kernel padded with
zeros, for every even one): along a dilated axis kernel element ``k`` reads IFM pixel ``o * stride + 2 * k - pad``, and
a sub-kernel is 4 taps long (8 IFM pixels: the U55's 8x8 decomposition), as Vela's weight encoder orders them.

**Split ops** (``split``: a conv whose OFM block's bricks do not fit the brick ring; a depthwise whose block does not
fit it or whose kernel rows do not fit the line buffer, :func:`~rtl.npu.kernel_op.derive_op`): the group loop moves
outside the OFM ublock and micro-block loops, so the stream is consumed group by group and only one group must be
resident (``next_block`` then pulses after every group). Each (group, OFM ublock, micro-block) *piece* ends a MAC block;
its result is a partial sum that the output path keeps in its accumulator buffer (``part``) and adds to the next group's
(``resume``), and only the last group's sums reach the output unit: IFM-depth-outer passes with block-sized
accumulators, as a U55 keeps an OFM block's accumulators in SHRAM while it streams the block's weights. The weights are
read once; the IFM is swept once per group and OFM ublock (free while it is resident in the line buffer; a split
depthwise's pass reads only its sub-kernel's rows: ``low`` includes the sub-kernel's first row, and the stager skips the
rows below it).

:class:`OperandRegister`: the MAC array's operand registers; a beat is registered and fired into the
:class:`~rtl.npu.mac.MacBlock` the next cycle.
"""
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.npu.controller import Registers
from rtl.npu.extmem import WORD_BITS
from rtl.npu.ifm_stager import ROW_BITS
from rtl.npu.kernel_op import ACC_ENTRIES, IUB, WEIGHT_BITS, derive_op, round_elements
from rtl.npu.mac import MacBlock

__all__ = ["Block", "IssueSequencer", "OperandRegister", "beat_layout"]


class Block(data.Struct):
    """A micro-block on its way from the MAC block to the output unit: its first OFM row, column and channel; for a
    split op also whether this result is only a partial sum (``part``: kept in the accumulator buffer), whether the
    buffer's entry is added to it (``resume``) and that entry."""
    oy: 17
    ox: 17
    ch0: 17
    part: 1
    resume: 1
    entry: range(ACC_ENTRIES)


def beat_layout(positions: int, brick_bytes: int) -> data.StructLayout:
    """One MAC beat: each position's 8 IFM bytes, its padding flag, the last-beat-of-the-micro-block flag, the
    brick as read from the brick RAM, whether the identity brick replaces it (the identity POOL), and for a 16-bit
    IFM (``wide``: the 8 bytes are 4 channels) which half of the brick's IFM channels they meet (``half``)."""
    return data.StructLayout({"act": WORD_BITS * positions, "pad": positions, "last": 1,
                              "brick": WEIGHT_BITS * brick_bytes, "pool": 1, "wide": 1, "half": 1})


def identity_brick(brick_bytes: int) -> Const:
    """The brick of the identity POOL: ``weight[o][o] = 1``."""
    return Const(sum(1 << (WEIGHT_BITS * b) for b in range(brick_bytes) if b // IUB == b % IUB),
                 WEIGHT_BITS * brick_bytes)


class IssueSequencer(wiring.Component):
    """See the module docstring.

    Members
    -------
    regs : ``In(Registers)``; opcode : ``In(10)``   the op being run (quasi-static)
    running, restart : ``In(1)``   issue allowed / start the walk over (pulse)
    resident : ``In(1)``; rows : ``In(32)``; low : ``Out(32)``; rd_row, rd_x, rd_u : ``Out`` x positions;
    rd_data : ``In(64)`` x positions   the IFM stager's side (:class:`~rtl.npu.ifm_stager.IfmStager`)
    brick : ``Out(24)``; brick_data : ``In``; bricks : ``In(32)``; bricks_all : ``In(1)``   the weight side
    beat : ``Out(stream.Signature(beat_layout))``; block : ``Out(stream.Signature(Block))``
    all_issued, next_block : ``Out(1)``; block_offset : ``Out(32)``
    wait_weights, wait_ifm, wait_out : ``Out(1)``   (PMU) running, and the next beat waits for its brick / its IFM
    rows / room downstream
    """

    def __init__(self, *, ublock_h: int, ublock_w: int, oub: int, line_buffer_words: int | None = None):
        self.uh, self.uw, self.oub = ublock_h, ublock_w, oub
        self.line_buffer_words = line_buffer_words
        P = ublock_h * ublock_w
        self.positions, self.brick_bytes = P, oub * IUB
        super().__init__({
            "regs": In(Registers), "opcode": In(10), "running": In(1), "restart": In(1),
            "resident": In(1), "rows": In(ROW_BITS), "low": Out(ROW_BITS),
            "rd_row": Out(ROW_BITS).array(P), "rd_x": Out(17).array(P), "rd_u": Out(14).array(P),
            "rd_data": In(WORD_BITS).array(P),
            "brick": Out(24), "brick_data": In(WEIGHT_BITS * self.brick_bytes), "bricks": In(32),
            "bricks_all": In(1),
            "beat": Out(stream.Signature(beat_layout(P, self.brick_bytes))), "block": Out(stream.Signature(Block)),
            "all_issued": Out(1), "next_block": Out(1), "block_offset": Out(32),
            "wait_weights": Out(1), "wait_ifm": Out(1), "wait_out": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        UH, UW, OUB = self.uh, self.uw, self.oub
        regs = self.regs
        op = derive_op(m, regs, self.opcode, OUB, UH, line_buffer_words=self.line_buffer_words)
        O, I, KH, KW, OB, OH, OW = op.O, op.I, op.KH, op.KW, op.OB, op.OH, op.OW
        dw, pk, ib_step = op.dw, op.pk, op.ib_step

        # Loop-nest counters.
        c = self._counters = {
            "blk_ob": Signal(17),     # first channel of the OFM block
            "blk_base": Signal(24),   # first brick of the OFM block
            "ou_idx": Signal(8),      # OFM ublock in the block
            "oy_b": Signal(17), "ox_b": Signal(17), "ib": Signal(17), "iu": Signal(6),
            "sk_y": Signal(7), "sk_x": Signal(13),   # the sub-kernel's first kernel row / column
            "ky": Signal(3), "kx": Signal(3),        # kernel element in the sub-kernel
            "hf": Signal(1),          # 16-bit IFM: which half of the IFM ublock (4 channels) the beat takes
            "grp_base": Signal(24),   # first brick of the current group (IFM block, sub-kernel) relative to blk_base
            "cbase": Signal(32),      # the stager's global row number of IFM row 0 in this pass
            "entry": Signal(range(ACC_ENTRIES)),   # split: the micro-block's partial-sum entry in the group
        }
        blk_ob, blk_base, ou_idx, oy_b, ox_b = c["blk_ob"], c["blk_base"], c["ou_idx"], c["oy_b"], c["ox_b"]
        iu, ky, kx, grp_base = c["iu"], c["ky"], c["kx"], c["grp_base"]
        all_issued = self.all_issued
        n_ou = Signal(8)
        ci_left = Signal(17)
        n_iu_g = Signal(6)
        grp_size = Signal(24)
        cob = Signal(17)
        sh = Signal(4)      # sub-kernel rows / columns
        sw = Signal(4)
        ne = Signal(7)      # elements of the sub-kernel in the stream (part-kernel-first, depthwise: rounded up)
        df_iu = Signal(3)   # depth-first: bricks per kernel element (IFM ublocks in an IFM block)
        m.d.comb += [
            cob.eq(Mux(O - blk_ob < OB, O - blk_ob, OB)), n_ou.eq((cob + OUB - 1) >> (OUB.bit_length() - 1)),
            ci_left.eq(I - c["ib"]),
            n_iu_g.eq(Mux(dw, 1, Mux(ci_left < ib_step, (ci_left + 7) >> 3, ib_step >> 3))),
            sh.eq(Mux(KH - c["sk_y"] < op.sub_h, KH - c["sk_y"], op.sub_h)),
            sw.eq(Mux(KW - c["sk_x"] < op.sub_w, KW - c["sk_x"], op.sub_w)),
            ne.eq(Mux(pk | dw, round_elements(sh * sw, pk & ~dw & op.wide), sh * sw)),
            df_iu.eq(ib_step >> 3),
            grp_size.eq(n_ou * ne * Mux(dw, 1, Mux(pk, n_iu_g, df_iu))),
        ]
        e = Signal(6)
        m.d.comb += e.eq(ky * sw + kx)
        brick = self.brick
        m.d.comb += brick.eq(blk_base + grp_base + Mux(pk | dw, iu * (n_ou * ne) + ou_idx * ne + e,
                                                      (ou_idx * ne + e) * df_iu + iu))
        # piece: the beats of one micro-block and one group; group: (IFM block, sub-kernel), in stream order.
        last = {"x": Signal(name="last_pos_x"), "y": Signal(name="last_pos_y"), "ou": Signal(name="last_ou"),
                "blk": Signal(name="last_blk"), "piece": Signal(name="last_piece_beat"),
                "sub": Signal(name="last_sub"), "grp": Signal(name="last_grp"), "hf": Signal(name="last_half")}
        m.d.comb += [last["x"].eq(ox_b + UW >= OW), last["y"].eq(oy_b + UH >= OH), last["ou"].eq(ou_idx == n_ou - 1),
                     last["blk"].eq(blk_ob + OB >= O),
                     last["hf"].eq(c["hf"] == op.halves - 1),
                     last["piece"].eq(last["hf"] & (kx == sw - 1) & (ky == sh - 1) & (iu == n_iu_g - 1)),
                     last["sub"].eq((c["sk_y"] + op.sub_h >= KH) & (c["sk_x"] + op.sub_w >= KW)),
                     last["grp"].eq(last["sub"] & (dw | (c["ib"] + ib_step >= I)))]
        last_beat = Signal()   # the MAC block's last beat of a micro-block (split: of a piece)
        m.d.comb += last_beat.eq(last["piece"] & (op.split | last["grp"]))

        pos_pad, rows_ok = self._taps(m, op)
        brick_ok = Signal()
        m.d.comb += brick_ok.eq(self.bricks_all | (brick < self.bricks))

        beat, block = self.beat, self.block
        issue = Signal()
        m.d.comb += [
            beat.valid.eq(self.running & ~all_issued & brick_ok & rows_ok & (~last_beat | block.ready)),
            issue.eq(beat.valid & beat.ready),
            beat.payload.act.eq(Cat(*self.rd_data)), beat.payload.pad.eq(Cat(*pos_pad)),
            beat.payload.last.eq(last_beat), beat.payload.brick.eq(self.brick_data),
            beat.payload.pool.eq(op.pool), beat.payload.wide.eq(op.wide), beat.payload.half.eq(c["hf"]),
            block.payload.oy.eq(oy_b), block.payload.ox.eq(ox_b), block.payload.ch0.eq(blk_ob + ou_idx * OUB),
            block.payload.part.eq(op.split & ~last["grp"]), block.payload.resume.eq(op.split & (grp_base != 0)),
            block.payload.entry.eq(c["entry"]),
            block.valid.eq(issue & last_beat),
        ]
        pending = self.running & ~all_issued
        m.d.comb += [self.wait_weights.eq(pending & ~brick_ok), self.wait_ifm.eq(pending & brick_ok & ~rows_ok),
                     self.wait_out.eq(pending & brick_ok & rows_ok & ~issue)]
        with m.If(issue):
            m.d.sync += c["hf"].eq(Mux(last["hf"], 0, c["hf"] + 1))
            with m.If(last["hf"]):   # (a 16-bit IFM's first half: the same brick and taps again for the other half)
                self._advance(m, op, last, n_iu_g, n_ou, grp_size, sh, sw)
        with m.If(self.restart):
            m.d.sync += [sig.eq(0) for sig in c.values()]
            m.d.sync += all_issued.eq(0)
        return m

    def _taps(self, m, op):
        """Each position's IFM tap (line-buffer read address, padding flag) and whether the beat's rows are
        staged."""
        P, UH, UW = self.positions, self.uh, self.uw
        c, regs = self._counters, self.regs
        oy_b, ox_b, cbase = c["oy_b"], c["ox_b"], c["cbase"]
        ky = Signal(8)    # the tap's row / column offset in the (dilated) kernel window
        kx = Signal(14)
        m.d.comb += [ky.eq((c["sk_y"] + c["ky"]) << op.dy), kx.eq((c["sk_x"] + c["kx"]) << op.dx)]
        pos_pad = [Signal(name=f"ifm_pad_{p}") for p in range(P)]
        for p in range(P):
            ph, pw = divmod(p, UW)
            oy = oy_b + ph
            ox = ox_b + pw
            iy = Signal(signed(20), name=f"iy_{p}")   # in the (upscaled) IFM the kernel walks
            ix = Signal(signed(20), name=f"ix_{p}")
            m.d.comb += [iy.eq(oy * op.sy + ky - regs.IFM_PAD_TOP), ix.eq(ox * op.sx + kx - regs.IFM_PAD_LEFT)]
            # Upscaled x2: NEAREST repeats each pixel 2x2, TRANSPOSE puts it at the even row / column and zeros
            # (padding taps) between.
            pad = ((oy >= op.OH) | (ox >= op.OW) | (iy < 0) | (iy >= op.IH << op.up) | (ix < 0)
                   | (ix >= op.IW << op.up) | (op.transpose & (iy[0] | ix[0])))
            m.d.comb += [
                pos_pad[p].eq(pad),
                self.rd_row[p].eq(cbase + Mux(pad, 0, (iy >> op.up)[:17])),
                self.rd_x[p].eq(Mux(pad, 0, (ix >> op.up)[:17])),
                self.rd_u[p].eq(Mux(op.dw, 0, ((c["ib"] >> 3) + c["iu"]) << op.wide) + c["hf"]),
            ]
        lo_row = Signal(signed(20))     # lowest IFM row this micro-block row reads (a split depthwise: in this pass)
        hi_row = Signal(signed(20))     # highest IFM row this beat reads
        sub_top = Mux(op.split & op.dw, c["sk_y"] << op.dy, 0)
        m.d.comb += [lo_row.eq((oy_b * op.sy + sub_top - regs.IFM_PAD_TOP) >> op.up),
                     hi_row.eq(((oy_b + UH - 1) * op.sy + ky - regs.IFM_PAD_TOP) >> op.up),
                     self.low.eq(cbase + Mux(lo_row < 0, 0, lo_row[:17]))]
        rows_ok = Signal()
        m.d.comb += rows_ok.eq((hi_row < 0) | (self.rows > cbase + Mux(hi_row >= op.IH, op.IH - 1, hi_row[:17])))
        return pos_pad, rows_ok

    def _advance(self, m, op, last, n_iu_g, n_ou, grp_size, sh, sw):
        """The loop nest's next beat. Per OFM block: normal order: OFM ublock, micro-block, then the groups (IFM
        block, sub-kernel) and their beats (IFM ublock, kernel element); split order: group, OFM ublock, micro-block,
        then the piece's beats (IFM ublock, kernel element), so the stream is consumed group by group."""
        c = self._counters
        kx, ky, iu = c["kx"], c["ky"], c["iu"]
        with m.If(~last["piece"]):
            with m.If(kx != sw - 1):
                m.d.sync += kx.eq(kx + 1)
            with m.Else():
                m.d.sync += kx.eq(0)
                with m.If(ky != sh - 1):
                    m.d.sync += ky.eq(ky + 1)
                with m.Else():
                    m.d.sync += [ky.eq(0), iu.eq(iu + 1)]
        with m.Elif(~op.split & ~last["grp"]):
            m.d.sync += [kx.eq(0), ky.eq(0), iu.eq(0)]
            self._next_group(m, op, grp_size)
        with m.Else():
            m.d.sync += [kx.eq(0), ky.eq(0), iu.eq(0)]
            with m.If(~op.split):
                m.d.sync += [c["ib"].eq(0), c["sk_y"].eq(0), c["sk_x"].eq(0), c["grp_base"].eq(0)]
            self._next_micro_block(m, op, last, n_ou, grp_size)

    def _next_group(self, m, op, grp_size):
        """The next (IFM block, sub-kernel) group: sub-kernels row-major inside an IFM block."""
        c = self._counters
        with m.If(c["sk_x"] + op.sub_w < op.KW):
            m.d.sync += c["sk_x"].eq(c["sk_x"] + op.sub_w)
        with m.Else():
            m.d.sync += c["sk_x"].eq(0)
            with m.If(c["sk_y"] + op.sub_h < op.KH):
                m.d.sync += c["sk_y"].eq(c["sk_y"] + op.sub_h)
            with m.Else():
                m.d.sync += [c["sk_y"].eq(0), c["ib"].eq(c["ib"] + op.ib_step)]
        m.d.sync += c["grp_base"].eq(c["grp_base"] + grp_size)

    def _next_micro_block(self, m, op, last, n_ou, grp_size):
        """After a micro-block (split: a piece): the next micro-block, pass (OFM ublock), split group, OFM block."""
        UH, UW = self.uh, self.uw
        c = self._counters
        m.d.sync += c["entry"].eq(c["entry"] + 1)
        with m.If(~last["x"]):
            m.d.sync += c["ox_b"].eq(c["ox_b"] + UW)
        with m.Else():
            m.d.sync += c["ox_b"].eq(0)
            with m.If(~last["y"]):
                m.d.sync += c["oy_b"].eq(c["oy_b"] + UH)
            with m.Else():
                # Next pass over the IFM (the stager re-stages it unless it is resident).
                m.d.sync += c["oy_b"].eq(0)
                with m.If(~self.resident):
                    m.d.sync += c["cbase"].eq(c["cbase"] + op.IH)
                with m.If(~last["ou"]):
                    m.d.sync += c["ou_idx"].eq(c["ou_idx"] + 1)
                with m.Elif(op.split & ~last["grp"]):
                    # Split: the group is done for every OFM ublock; its bricks may be overwritten.
                    m.d.comb += [self.next_block.eq(1),
                                 self.block_offset.eq(c["blk_base"] + c["grp_base"] + grp_size)]
                    m.d.sync += [c["ou_idx"].eq(0), c["entry"].eq(0)]
                    self._next_group(m, op, grp_size)
                with m.Else():
                    m.d.comb += [self.next_block.eq(1), self.block_offset.eq(c["blk_base"] + n_ou * op.per_ou)]
                    m.d.sync += [c["ou_idx"].eq(0), c["entry"].eq(0), c["grp_base"].eq(0), c["ib"].eq(0),
                                 c["sk_y"].eq(0), c["sk_x"].eq(0),
                                 c["blk_base"].eq(c["blk_base"] + n_ou * op.per_ou),
                                 c["blk_ob"].eq(c["blk_ob"] + op.OB)]
                    with m.If(last["blk"]):
                        m.d.sync += self.all_issued.eq(1)


class OperandRegister(wiring.Component):
    """The MAC array's operand registers: one beat, registered, offered to the :class:`~rtl.npu.mac.MacBlock`.

    Members
    -------
    beat : ``In(stream.Signature(beat_layout))``; restart : ``In(1)`` (drop the held beat)
    act, weight : ``Out`` streams shaped like the MAC block's ``act_stream`` / ``weight_stream`` (both valid
    together; a beat is fired when ``act.ready``)
    """

    def __init__(self, mac: MacBlock, *, brick_bytes: int):
        self.positions = mac.config.positions
        self.brick_bytes = brick_bytes
        super().__init__({
            "beat": In(stream.Signature(beat_layout(self.positions, brick_bytes))), "restart": In(1),
            "act": Out(stream.Signature(mac.act_layout)), "weight": Out(stream.Signature(mac.weight_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        P = self.positions
        valid = Signal()
        beat = self.beat.payload
        fields = ("act", "pad", "last", "pool", "wide", "half")
        held = Signal(data.StructLayout({name: beat.shape()[name].shape for name in fields}))
        # The brick has a register of its own, a plain copy of the brick RAM's read data, and the identity brick is
        # chosen after it: that is what lets Yosys map the brick RAM to FPGA block RAM.
        brick = Signal(WEIGHT_BITS * self.brick_bytes)
        fired = Signal()
        for p in range(P):
            m.d.comb += self.act.payload.data[p].eq(held.act.word_select(p, WORD_BITS))
        m.d.comb += [
            self.act.payload.pad.eq(held.pad), self.act.payload.last.eq(held.last),
            self.act.payload.wide.eq(held.wide), self.act.payload.half.eq(held.half),
            self.weight.payload.eq(Mux(held.pool, identity_brick(self.brick_bytes), brick)),
            self.act.valid.eq(valid), self.weight.valid.eq(valid),
            fired.eq(valid & self.act.ready), self.beat.ready.eq(~valid | fired),
        ]
        with m.If(self.beat.valid & self.beat.ready):
            m.d.sync += [valid.eq(1), brick.eq(beat.brick)]
            m.d.sync += [getattr(held, name).eq(getattr(beat, name)) for name in fields]
        with m.Elif(fired):
            m.d.sync += valid.eq(0)
        with m.If(self.restart):
            m.d.sync += valid.eq(0)
        return m
