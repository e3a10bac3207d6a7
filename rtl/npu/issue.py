"""NPU beat issue: walks a kernel op's loop nest and issues one MAC beat per cycle (see :mod:`rtl.npu.compute`).

:class:`IssueSequencer`: for every OFM block, OFM ublock, OFM micro-block (``ublock_h x ublock_w`` positions), IFM
block (32 deep depth-first / 16 deep part-kernel-first), IFM ublock and kernel element, one beat: the brick index
(from the loop nest, so the stream order is honoured) goes to the weight buffer and each position's IFM tap to the
IFM stager's line buffer (padding taps flagged: they contribute 0); the brick and the taps' bytes leave on ``beat``.
A beat waits only while its brick is not decoded yet (``bricks``: bricks decoded so far, in stream order, unless
``bricks_all``), its IFM rows are not staged yet, or the next stage has no room. The last beat of a micro-block
also pushes the micro-block's place on ``block`` (for the output path); ``next_block`` pulses when the walk enters
the next OFM block, whose first brick is ``block_offset`` (relative to the op's first brick).

:class:`OperandRegister`: the MAC array's operand registers; a beat is registered and fired into the
:class:`~rtl.npu.mac.MacBlock` the next cycle.
"""
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.npu.controller import Registers
from rtl.npu.extmem import WORD_BITS
from rtl.npu.ifm_stager import ROW_BITS
from rtl.npu.kernel_op import IUB, derive_op
from rtl.npu.mac import MacBlock

__all__ = ["Block", "IssueSequencer", "OperandRegister", "beat_layout"]


class Block(data.Struct):
    """A micro-block on its way from the MAC block to the output unit: its first OFM row, column and channel."""
    oy: 17
    ox: 17
    ch0: 17


def beat_layout(positions: int, brick_bytes: int) -> data.StructLayout:
    """One MAC beat: each position's 8 IFM bytes, its padding flag, the last-beat-of-the-micro-block flag, the
    brick as read from the brick RAM, and whether the identity brick replaces it (the identity POOL)."""
    return data.StructLayout({"act": WORD_BITS * positions, "pad": positions, "last": 1, "brick": 8 * brick_bytes,
                              "pool": 1})


def identity_brick(brick_bytes: int) -> Const:
    """The brick of the identity POOL: ``weight[o][o] = 1``."""
    return Const(sum(1 << (8 * b) for b in range(brick_bytes) if b // IUB == b % IUB), 8 * brick_bytes)


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

    def __init__(self, *, ublock_h: int, ublock_w: int, oub: int):
        self.uh, self.uw, self.oub = ublock_h, ublock_w, oub
        P = ublock_h * ublock_w
        self.positions, self.brick_bytes = P, oub * IUB
        super().__init__({
            "regs": In(Registers), "opcode": In(10), "running": In(1), "restart": In(1),
            "resident": In(1), "rows": In(ROW_BITS), "low": Out(ROW_BITS),
            "rd_row": Out(ROW_BITS).array(P), "rd_x": Out(17).array(P), "rd_u": Out(14).array(P),
            "rd_data": In(WORD_BITS).array(P),
            "brick": Out(24), "brick_data": In(8 * self.brick_bytes), "bricks": In(32), "bricks_all": In(1),
            "beat": Out(stream.Signature(beat_layout(P, self.brick_bytes))), "block": Out(stream.Signature(Block)),
            "all_issued": Out(1), "next_block": Out(1), "block_offset": Out(32),
            "wait_weights": Out(1), "wait_ifm": Out(1), "wait_out": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        UH, UW, OUB = self.uh, self.uw, self.oub
        regs = self.regs
        op = derive_op(m, regs, self.opcode, OUB, UH)
        O, I, KH, KW, OB, OH, OW = op.O, op.I, op.KH, op.KW, op.OB, op.OH, op.OW
        dw, pk, ne, ib_step = op.dw, op.pk, op.ne, op.ib_step

        # Loop-nest counters.
        c = self._counters = {
            "blk_ob": Signal(17),     # first channel of the OFM block
            "blk_base": Signal(24),   # first brick of the OFM block
            "ou_idx": Signal(8),      # OFM ublock in the block
            "oy_b": Signal(17), "ox_b": Signal(17), "ib": Signal(17), "iu": Signal(6), "ky": Signal(4),
            "kx": Signal(4),
            "grp_base": Signal(24),   # first brick of the current IFM-block group (relative to blk_base)
            "cbase": Signal(32),      # the stager's global row number of IFM row 0 in this pass
        }
        blk_ob, blk_base, ou_idx, oy_b, ox_b = c["blk_ob"], c["blk_base"], c["ou_idx"], c["oy_b"], c["ox_b"]
        ib, iu, ky, kx, grp_base = c["ib"], c["iu"], c["ky"], c["kx"], c["grp_base"]
        all_issued = self.all_issued
        n_ou = Signal(8)
        ci_left = Signal(17)
        n_iu_g = Signal(6)
        grp_size = Signal(24)
        cob = Signal(17)
        m.d.comb += [
            cob.eq(Mux(O - blk_ob < OB, O - blk_ob, OB)), n_ou.eq((cob + OUB - 1) >> (OUB.bit_length() - 1)),
            ci_left.eq(I - ib), n_iu_g.eq(Mux(dw, 1, Mux(ci_left < ib_step, (ci_left + 7) >> 3, ib_step >> 3))),
            grp_size.eq(n_ou * ne * Mux(pk, n_iu_g, 4)),
        ]
        e = Signal(8)
        m.d.comb += e.eq(ky * KW[:4] + kx)
        brick = self.brick
        m.d.comb += brick.eq(blk_base + grp_base + Mux(pk | dw, iu * (n_ou * ne) + ou_idx * ne + e,
                                                      ou_idx * ne * 4 + e * 4 + iu))
        last_beat = Signal()
        m.d.comb += last_beat.eq((kx == KW - 1) & (ky == KH - 1) & (iu == n_iu_g - 1) & (dw | (ib + ib_step >= I)))
        last = {"x": Signal(name="last_pos_x"), "y": Signal(name="last_pos_y"), "ou": Signal(name="last_ou"),
                "blk": Signal(name="last_blk")}
        m.d.comb += [last["x"].eq(ox_b + UW >= OW), last["y"].eq(oy_b + UH >= OH), last["ou"].eq(ou_idx == n_ou - 1),
                     last["blk"].eq(blk_ob + OB >= O), self.block_offset.eq(blk_base + n_ou * op.per_ou)]

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
            beat.payload.pool.eq(op.pool),
            block.payload.oy.eq(oy_b), block.payload.ox.eq(ox_b), block.payload.ch0.eq(blk_ob + ou_idx * OUB),
            block.valid.eq(issue & last_beat),
        ]
        pending = self.running & ~all_issued
        m.d.comb += [self.wait_weights.eq(pending & ~brick_ok), self.wait_ifm.eq(pending & brick_ok & ~rows_ok),
                     self.wait_out.eq(pending & brick_ok & rows_ok & ~issue)]
        with m.If(issue):
            self._advance(m, op, last_beat, last, n_iu_g, n_ou, grp_size)
        with m.If(self.restart):
            m.d.sync += [sig.eq(0) for sig in c.values()]
            m.d.sync += all_issued.eq(0)
        return m

    def _taps(self, m, op):
        """Each position's IFM tap (line-buffer read address, padding flag) and whether the beat's rows are
        staged."""
        P, UH, UW = self.positions, self.uh, self.uw
        c, regs = self._counters, self.regs
        oy_b, ox_b, ky, kx, cbase = c["oy_b"], c["ox_b"], c["ky"], c["kx"], c["cbase"]
        pos_pad = [Signal(name=f"ifm_pad_{p}") for p in range(P)]
        for p in range(P):
            ph, pw = divmod(p, UW)
            oy = oy_b + ph
            ox = ox_b + pw
            iy = Signal(signed(20), name=f"iy_{p}")
            ix = Signal(signed(20), name=f"ix_{p}")
            m.d.comb += [iy.eq(oy * op.sy + ky - regs.IFM_PAD_TOP), ix.eq(ox * op.sx + kx - regs.IFM_PAD_LEFT)]
            pad = (oy >= op.OH) | (ox >= op.OW) | (iy < 0) | (iy >= op.IH) | (ix < 0) | (ix >= op.IW)
            m.d.comb += [
                pos_pad[p].eq(pad),
                self.rd_row[p].eq(cbase + Mux(pad, 0, iy[:17])), self.rd_x[p].eq(Mux(pad, 0, ix[:17])),
                self.rd_u[p].eq(Mux(op.dw, 0, (c["ib"] >> 3) + c["iu"])),
            ]
        lo_row = Signal(signed(20))     # lowest IFM row this micro-block row reads
        hi_row = Signal(signed(20))     # highest IFM row this beat reads
        m.d.comb += [lo_row.eq(oy_b * op.sy - regs.IFM_PAD_TOP),
                     hi_row.eq((oy_b + UH - 1) * op.sy + ky - regs.IFM_PAD_TOP),
                     self.low.eq(cbase + Mux(lo_row < 0, 0, lo_row[:17]))]
        rows_ok = Signal()
        m.d.comb += rows_ok.eq((hi_row < 0) | (self.rows > cbase + Mux(hi_row >= op.IH, op.IH - 1, hi_row[:17])))
        return pos_pad, rows_ok

    def _advance(self, m, op, last_beat, last, n_iu_g, n_ou, grp_size):
        """The loop nest's next beat (kernel element, IFM ublock, IFM block; then micro-block, pass, OFM ublock and
        OFM block)."""
        UH, UW = self.uh, self.uw
        c = self._counters
        kx, ky, iu, ib, grp_base = c["kx"], c["ky"], c["iu"], c["ib"], c["grp_base"]
        with m.If(~last_beat):
            with m.If(kx != op.KW - 1):
                m.d.sync += kx.eq(kx + 1)
            with m.Else():
                m.d.sync += kx.eq(0)
                with m.If(ky != op.KH - 1):
                    m.d.sync += ky.eq(ky + 1)
                with m.Else():
                    m.d.sync += ky.eq(0)
                    with m.If(iu != n_iu_g - 1):
                        m.d.sync += iu.eq(iu + 1)
                    with m.Else():
                        m.d.sync += [iu.eq(0), ib.eq(ib + op.ib_step), grp_base.eq(grp_base + grp_size)]
        with m.Else():
            # Next micro-block.
            m.d.sync += [ib.eq(0), iu.eq(0), ky.eq(0), kx.eq(0), grp_base.eq(0)]
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
                    with m.Else():
                        m.d.comb += self.next_block.eq(1)
                        m.d.sync += [c["ou_idx"].eq(0), c["blk_base"].eq(c["blk_base"] + n_ou * op.per_ou),
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
        held = Signal(data.StructLayout({name: beat.shape()[name].shape for name in ("act", "pad", "last", "pool")}))
        # The brick has a register of its own, a plain copy of the brick RAM's read data, and the identity brick is
        # chosen after it: that is what lets Yosys map the brick RAM to FPGA block RAM.
        brick = Signal(8 * self.brick_bytes)
        fired = Signal()
        for p in range(P):
            m.d.comb += self.act.payload.data[p].eq(held.act.word_select(p, WORD_BITS))
        m.d.comb += [
            self.act.payload.pad.eq(held.pad), self.act.payload.last.eq(held.last),
            self.weight.payload.eq(Mux(held.pool, identity_brick(self.brick_bytes), brick)),
            self.act.valid.eq(valid), self.weight.valid.eq(valid),
            fired.eq(valid & self.act.ready), self.beat.ready.eq(~valid | fired),
        ]
        with m.If(self.beat.valid & self.beat.ready):
            m.d.sync += [valid.eq(1), brick.eq(beat.brick)]
            m.d.sync += [getattr(held, name).eq(getattr(beat, name)) for name in ("act", "pad", "last", "pool")]
        with m.Elif(fired):
            m.d.sync += valid.eq(0)
        with m.If(self.restart):
            m.d.sync += valid.eq(0)
        return m
