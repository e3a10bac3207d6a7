"""NPU compute unit: executes NPU_OP_CONV (CONV_2D, FULLY_CONNECTED) and NPU_OP_DEPTHWISE kicks (int8) from
external memory.

Implements ``In(ComputeSignature)`` (:mod:`rtl.npu.controller`) and owns one external-memory port
(``bus``, :data:`rtl.npu.extmem.MemPortSignature`). Nothing is computed outside the hardware: the unit reads the
scale/bias records, the compressed weight stream and the IFM from memory and writes the OFM back.

Per kick, strictly one phase after another (one memory client at a time, so no internal arbitration):

1. **CHECK** the register snapshot against what this unit supports (listed below); anything
   else answers the kick with ``error`` at once (no memory traffic).
2. **RECORDS**: stream ``OFM_DEPTH * 10`` bytes from ``SCALE_BASE`` (``SCALE_REGION``) through a byte serialiser,
   assemble each 10-byte Vela record and write it into the :class:`~rtl.npu.output_unit.OutputUnit` parameter
   memory (channel ``c`` of the op).
3. **WEIGHTS**: stream the ``WEIGHT_LENGTH`` bytes at ``WEIGHT_BASE`` (``WEIGHT_REGION``) into the
   :class:`~rtl.npu.weight_decoder.WeightDecoder`; its int8 output (``mlw_codec.decode`` order) is written, one
   weight per cycle, into a *brick* RAM: one row = one ``OUB x 8`` brick (``weight[o][i]`` of one OFM ublock and one
   IFM ublock for one kernel element), exactly what :class:`~rtl.npu.mac.MacBlock` takes per beat. The decoded
   count must equal the count the weight-order loop nest predicts (SPEC.md section 5, npu-weights.md section 3).
   Depthwise streams carry ``OUB`` weights per kernel element; each is written on the diagonal of its brick
   (``weight[o][o]``, the rest of the row zero), so the MAC block needs no depthwise mode.
4. **COMPUTE**: for every OFM block (``OFM_BLK_DEPTH``), OFM ublock in it (``OUB`` channels), and OFM micro-block
   of positions (``ublock_h x ublock_w``; block H/W only matter for timing and are ignored): for every IFM block
   (32 deep depth-first / 16 deep part-kernel-first), IFM ublock (8 channels) and kernel element, read each
   position's 8 IFM bytes (two 64-bit words, with the tap's padding flag), read the matching brick from the brick
   RAM (its index follows the loop nest, so the stream order is honoured without re-ordering the weights) and
   fire one :class:`MacBlock` beat. The accumulators then go, one position per beat, through the
   :class:`OutputUnit` (bias, scale, double rounding, zero point, clamp) and each position's ``OUB`` int8 values
   are written to the OFM with byte strobes (channels beyond the OFM depth and positions beyond the OFM masked).

Supported (anything else is refused with ``UNSUPPORTED``): S8 IFM/OFM, NHWC or NHCWB16, per-channel scale stream with
TFL rounding, ``ACTIVATION`` = 0 (clamp only), kernels up to 8x8 (no sub-kernel decomposition), any stride, no
dilation, up to :data:`MAX_CHANNELS` OFM channels, decoded weights up to :data:`WEIGHT_BUFFER_BYTES`, IFM tile 0
covering the whole IFM. Not implemented: NPU_OP_POOL / ELEMENTWISE, LUT activations, IFM tiles 1-3.

Addressing follows SPEC.md section 4 (NHWC and NHCWB16, tile 0 only; padding taps feed the IFM zero point, i.e.
contribute 0). Failures never hang: a memory response with ``err`` set, a decoder error or a decoded-length
mismatch are recorded and reported as ``error`` once the phase has drained its outstanding reads.

Error causes are held on ``error_code`` (:class:`ComputeError`) until the next kick.

Timing (simple first, not fast): per MAC beat about ``2 * positions + ext_latency + 2`` cycles (the IFM reads are not
overlapped with the beats), per weight ~1.1 cycles, per record 10 cycles.
"""
from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import enum, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.npu.config import NpuConfig
from rtl.npu.controller import CMD0, ComputeSignature, KernelOp, Registers
from rtl.npu.dma import NUM_REGIONS
from rtl.npu.extmem import ADDR_WIDTH, WORD_BITS, MemPortSignature
from rtl.npu.mac import MacBlock, MacBlockConfig
from rtl.npu.output_unit import OutputUnit, OutputUnitConfig
from rtl.npu.weight_decoder import WeightDecoder, WeightDecoderConfig

__all__ = ["Compute", "ComputeError"]


class ComputeError(enum.Enum, shape=3):
    """Why the last kick failed (``error_code``, held until the next kick)."""
    NONE = 0
    UNSUPPORTED = 1     # the register snapshot asks for something this unit does not implement
    MEMORY = 2          # a read came back with ``err``
    DECODE = 3          # the weight decoder reported a malformed stream
    WEIGHT_COUNT = 4    # the decoded stream is not as long as the op's weight-order loop nest

#: OFM channels whose records the output unit holds (an op with more channels is refused).
MAX_CHANNELS = 256
#: Brick RAM size in bytes (an op whose decoded weight stream is longer is refused).
WEIGHT_BUFFER_BYTES = 16384
IUB = 8   # IFM ublock depth (every U55 config)


class Compute(wiring.Component):
    """The compute unit (see the module docstring).

    Members
    -------
    port : ``In(ComputeSignature)``
    bus : ``Out(MemPortSignature)``  (reads and writes
    ``id`` is left 0, the top routes responses)
    last_kick : ``Out(KernelOp)``   the most recently accepted kick (debug)
    """

    def __init__(self, config: NpuConfig):
        self.config = config
        self.uh, self.uw, self.oub = config.ublock_h, config.ublock_w, config.ublock_d
        self.positions = self.uh * self.uw
        self.brick_bytes = self.oub * IUB
        self.wb_depth = WEIGHT_BUFFER_BYTES // self.brick_bytes
        super().__init__({"port": In(ComputeSignature), "bus": Out(MemPortSignature),
                          "basep": In(ADDR_WIDTH).array(NUM_REGIONS), "last_kick": Out(KernelOp),
                          "error_code": Out(ComputeError)})

    def elaborate(self, platform):
        m = Module()
        P, UH, UW, OUB, BB = self.positions, self.uh, self.uw, self.oub, self.brick_bytes
        m.submodules.mac = mac = MacBlock(MacBlockConfig(UH, UW, OUB, IUB, 32))
        m.submodules.out = ou = OutputUnit(OutputUnitConfig(lanes=OUB, channels=MAX_CHANNELS, acc_width=32))
        m.submodules.dec = dec = WeightDecoder(config=WeightDecoderConfig(in_width=8))
        m.submodules.wbuf = wmem = Memory(shape=8 * BB, depth=self.wb_depth, init=[])
        w_wr = wmem.write_port(granularity=8)
        w_rd = wmem.read_port(domain="comb")
        brick_q = Signal(8 * BB)      # registered brick (the address is stable for >= 2 cycles before a beat)
        m.d.sync += brick_q.eq(w_rd.data)

        kick, bus = self.port.kick, self.bus
        regs = Signal(Registers)
        opcode = Signal(10)
        m.d.comb += self.last_kick.regs.eq(regs)
        m.d.comb += self.last_kick.opcode.eq(opcode)

        # ---- derived op parameters (quasi-static for the op) ----------------------------------------------------
        O = Signal(17)
        I = Signal(17)
        KH = Signal(17)
        KW = Signal(17)
        OB = Signal(17)
        OH = Signal(17)
        OW = Signal(17)
        IH = Signal(17)
        IW = Signal(17)
        sx = Signal(3)
        sy = Signal(3)
        pk = Signal()
        dw = Signal()
        m.d.comb += dw.eq(opcode == CMD0.NPU_OP_DEPTHWISE)
        ks = regs.KERNEL_STRIDE
        m.d.comb += [
            O.eq(regs.OFM_DEPTH_M1 + 1), I.eq(regs.IFM_DEPTH_M1 + 1),
            KH.eq(regs.KERNEL_HEIGHT_M1 + 1), KW.eq(regs.KERNEL_WIDTH_M1 + 1), OB.eq(regs.OFM_BLK_DEPTH_M1 + 1),
            OH.eq(regs.OFM_HEIGHT_M1 + 1), OW.eq(regs.OFM_WIDTH_M1 + 1),
            IH.eq(regs.IFM_HEIGHT0_M1 + 1), IW.eq(regs.IFM_WIDTH0_M1 + 1),
            sx.eq(1 + Cat(ks[0], ks[6])), sy.eq(1 + Cat(ks[1], ks[9])), pk.eq(ks[2] & ~dw),
        ]
        kk = Signal(8)     # kernel elements KH*KW (<= 64)
        ne = Signal(8)     # elements per sub-kernel in the stream (PK: rounded up to 4)
        m.d.comb += [kk.eq(KH[:4] * KW[:4]), ne.eq(Mux(pk | dw, (kk + 3) & ~3, kk))]
        ib_step = Signal(6)
        m.d.comb += ib_step.eq(Mux(pk, 16, 32))
        n_iu_total = Signal(16)   # bricks per (OFM ublock, kernel element) over the whole IFM depth
        m.d.comb += n_iu_total.eq(Mux(dw, 1, Mux(pk, (I + 7) >> 3, ((I + 31) >> 5) << 2)))
        n_oub_total = Signal(16)
        m.d.comb += n_oub_total.eq((O + OUB - 1) >> (OUB.bit_length() - 1))
        per_ou = Signal(24)       # bricks per OFM ublock
        m.d.comb += per_ou.eq(ne * n_iu_total)
        expected = Signal(32)     # bricks in the decoded stream
        m.d.comb += expected.eq(n_oub_total * per_ou)
        expected_bytes = Signal(32)   # weights in the decoded stream (depthwise: OUB per brick, the diagonal)
        m.d.comb += expected_bytes.eq(Mux(dw, expected * OUB, expected * BB))

        # IFM extent the op reads (SPEC.md section 4); tile 0 must cover it (a smaller HEIGHT0/WIDTH0 means tiles
        # 1-3 are in use, which this unit does not implement).
        need_h = Signal(signed(20))
        need_w = Signal(signed(20))
        m.d.comb += [need_h.eq((OH - 1) * sy + KH - regs.IFM_PAD_TOP - regs.IFM_PAD_BOTTOM),
                     need_w.eq((OW - 1) * sx + KW - regs.IFM_PAD_LEFT - regs.IFM_PAD_RIGHT)]
        ifm_fmt = regs.IFM_PRECISION[6:8]
        ofm_fmt = regs.OFM_PRECISION[6:8]
        unsupported = Signal()
        m.d.comb += unsupported.eq(
            ((opcode != CMD0.NPU_OP_CONV) & ~dw)
            | (regs.IFM_PRECISION[0:4] != 1) | (ifm_fmt > 1) | (regs.IFM_PRECISION[8:10] != 0)
            | (regs.OFM_PRECISION[0:3] != 1) | (ofm_fmt > 1) | regs.OFM_PRECISION[8] | (regs.OFM_PRECISION[14:16] != 0)
            | (regs.IFM_UPSCALE != 0) | (regs.ACC_FORMAT != 0) | (regs.ACTIVATION[0:12] != 0)
            | (KH > 8) | (KW > 8) | ks[3] | ks[4] | ks[5]
            | (O > MAX_CHANNELS) | (expected > self.wb_depth) | (regs.WEIGHT_LENGTH == 0)
            | (regs.SCALE_LENGTH < O * 10) | (IH < need_h) | (IW < need_w) | (OB[:3 if OUB == 8 else 2] != 0)
        )

        # ---- byte serialiser over external memory (RECORDS and WEIGHTS) ------------------------------------------
        bs_start = Signal(ADDR_WIDTH)      # byte address of the first byte
        bs_raddr = Signal(ADDR_WIDTH)      # next word to request
        bs_words = Signal(ADDR_WIDTH)      # words still to request
        bs_left = Signal(ADDR_WIDTH)       # bytes still to emit
        bs_buf = Signal(WORD_BITS)
        bs_idx = Signal(3)
        bs_have = Signal()
        bs_first = Signal()
        bs_byte = Signal(8)
        bs_valid = Signal()
        bs_take = Signal()
        bs_last = Signal()
        m.d.comb += [bs_byte.eq(bs_buf.word_select(bs_idx, 8)), bs_valid.eq(bs_have), bs_last.eq(bs_left == 1)]

        mem_err = Signal()    # a read came back with err (sticky for the op)
        fail = Signal()       # the op failed (reported when its phase has drained)

        # ---- weight path ------------------------------------------------------------------------------------------
        w_cnt = Signal(32)      # decoded weights so far
        w8 = dec.o_stream.payload[:8]
        diag = Cat(*[w8 if b // IUB == b % IUB else Const(0, 8) for b in range(BB)])
        oz = w_cnt[:OUB.bit_length() - 1]
        m.d.comb += [
            w_wr.addr.eq(Mux(dw, w_cnt >> (OUB.bit_length() - 1), w_cnt >> (BB.bit_length() - 1))),
            w_wr.data.eq(Mux(dw, diag, Cat(*[w8] * BB))),
        ]
        w_en = Mux(dw, Const(0xFF, BB) << (oz * IUB), Const(1, BB) << w_cnt[:BB.bit_length() - 1])

        # ---- compute-phase counters -------------------------------------------------------------------------------
        blk_ob = Signal(17)       # first channel of the OFM block
        blk_base = Signal(24)     # first brick of the OFM block
        ou_idx = Signal(8)        # OFM ublock in the block
        oy_b = Signal(17)
        ox_b = Signal(17)
        ib = Signal(17)
        iu = Signal(3)
        ky = Signal(4)
        kx = Signal(4)
        grp_base = Signal(24)     # first brick of the current IFM-block group (relative to blk_base)
        cob = Signal(17)
        n_ou = Signal(8)
        ci_left = Signal(17)
        n_iu_g = Signal(4)
        grp_size = Signal(24)
        m.d.comb += [
            cob.eq(Mux(O - blk_ob < OB, O - blk_ob, OB)), n_ou.eq((cob + OUB - 1) >> (OUB.bit_length() - 1)),
            ci_left.eq(I - ib), n_iu_g.eq(Mux(dw, 1, Mux(ci_left < ib_step, (ci_left + 7) >> 3, ib_step >> 3))),
            grp_size.eq(n_ou * ne * Mux(pk, n_iu_g, 4)),
        ]
        e = Signal(8)
        m.d.comb += e.eq(ky * KW[:4] + kx)
        brick = Signal(24)
        m.d.comb += brick.eq(blk_base + grp_base + Mux(pk | dw, iu * (n_ou * ne) + ou_idx * ne + e,
                                                      ou_idx * ne * 4 + e * 4 + iu))
        last_beat = Signal()
        m.d.comb += last_beat.eq((kx == KW - 1) & (ky == KH - 1) & (iu == n_iu_g - 1) & (dw | (ib + ib_step >= I)))
        last_pos_x = Signal()
        last_pos_y = Signal()
        last_ou = Signal()
        last_blk = Signal()
        m.d.comb += [last_pos_x.eq(ox_b + UW >= OW), last_pos_y.eq(oy_b + UH >= OH), last_ou.eq(ou_idx == n_ou - 1),
                     last_blk.eq(blk_ob + OB >= O)]

        def fm_addr(base, y, x, c, stride_y, stride_x, stride_c, fmt):
            nhwc = base + y * stride_y + x * stride_x + c
            nhcwb = base + y * stride_y + (x << 4) + (c >> 4) * stride_c + c[:4]
            return Mux(fmt == 1, nhcwb, nhwc)[:ADDR_WIDTH]

        ifm_base = Signal(ADDR_WIDTH)
        ofm_base = Signal(ADDR_WIDTH)
        m.d.comb += [ifm_base.eq(self._basep_sel(regs.IFM_REGION) + regs.IFM_BASE0),
                     ofm_base.eq(self._basep_sel(regs.OFM_REGION) + regs.OFM_BASE0)]

        cin = Signal(17)
        m.d.comb += cin.eq(Mux(dw, blk_ob + ou_idx * OUB, ib + (iu << 3)))
        pos_addr = [Signal(ADDR_WIDTH, name=f"ifm_addr_{p}") for p in range(P)]
        pos_pad = [Signal(name=f"ifm_pad_{p}") for p in range(P)]
        for p in range(P):
            ph, pw = divmod(p, UW)
            oy = oy_b + ph
            ox = ox_b + pw
            iy = Signal(signed(20), name=f"iy_{p}")
            ix = Signal(signed(20), name=f"ix_{p}")
            m.d.comb += [iy.eq(oy * sy + ky - regs.IFM_PAD_TOP), ix.eq(ox * sx + kx - regs.IFM_PAD_LEFT)]
            pad = (oy >= OH) | (ox >= OW) | (iy < 0) | (iy >= IH) | (ix < 0) | (ix >= IW)
            m.d.comb += [
                pos_pad[p].eq(pad),
                pos_addr[p].eq(Mux(pad, ifm_base, fm_addr(ifm_base, iy[:17], ix[:17], cin, regs.IFM_STRIDE_Y,
                                                         regs.IFM_STRIDE_X, regs.IFM_STRIDE_C, ifm_fmt))),
            ]
        act_words = Array(Signal(WORD_BITS, name=f"act_word_{r}") for r in range(2 * P))
        rd_i = Signal(range(2 * P + 1))
        rcv_i = Signal(range(2 * P + 1))

        # MAC inputs.
        for p in range(P):
            wide = Cat(act_words[2 * p], act_words[2 * p + 1]) >> (pos_addr[p][:3] * 8)
            m.d.comb += mac.act_stream.payload.data[p].eq(wide[:64])
        m.d.comb += [
            mac.act_stream.payload.pad.eq(Cat(*pos_pad)), mac.act_stream.payload.last.eq(last_beat),
            mac.weight_stream.payload.eq(brick_q), w_rd.addr.eq(brick),
            mac.ifm_zero_point.eq(regs.IFM_ZERO_POINT.as_signed()),
            ou.ofm_zero_point.eq(regs.OFM_ZERO_POINT.as_signed()),
            ou.act_min.eq(regs.ACTIVATION_MIN.as_signed()), ou.act_max.eq(regs.ACTIVATION_MAX.as_signed()),
        ]

        # Output-unit feed and OFM writer.
        feed_p = Signal(range(P + 1))
        wp = Signal(range(P + 1))
        ch0 = Signal(17)
        m.d.comb += ch0.eq(blk_ob + ou_idx * OUB)
        m.d.comb += [ou.i_stream.payload.channel.eq(ch0),
                     ou.i_stream.payload.acc.eq(Array(mac.acc_stream.payload.as_value()[p * OUB * 32:(p + 1) * OUB * 32]
                                                      for p in range(P))[feed_p])]
        wr_have = Signal()
        wr_data = Signal(8 * OUB)
        wr_phase = Signal()
        wr_addr = Signal(ADDR_WIDTH)
        wr_mask = Signal(OUB)
        w_oy = Signal(17)
        w_ox = Signal(17)
        m.d.comb += [w_oy.eq(oy_b + Array(Const(p // UW, 2) for p in range(P))[wp]),
                     w_ox.eq(ox_b + Array(Const(p % UW, 2) for p in range(P))[wp])]
        w_valid_pos = (w_oy < OH) & (w_ox < OW)
        lane_mask = Cat(*[(ch0 + lane < O) for lane in range(OUB)])
        wide_data = Signal(128)
        wide_strb = Signal(16)
        m.d.comb += [wide_data.eq(wr_data << (wr_addr[:3] * 8)), wide_strb.eq(wr_mask << wr_addr[:3])]

        # ---- control FSM -----------------------------------------------------------------------------------------
        m.d.comb += [dec.i_stream.payload.data.eq(bs_byte), dec.i_stream.payload.last.eq(bs_last)]
        rec = Signal(80)
        rec_n = Signal(4)
        rec_ch = Signal(17)

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += kick.ready.eq(1)
                with m.If(kick.valid):
                    m.d.sync += [regs.eq(kick.payload.regs), opcode.eq(kick.payload.opcode), fail.eq(0),
                                 mem_err.eq(0), self.error_code.eq(ComputeError.NONE)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                m.d.comb += dec.start.eq(1)
                m.d.sync += [
                    bs_start.eq(self._basep_sel(regs.SCALE_REGION) + regs.SCALE_BASE),
                    bs_raddr.eq((self._basep_sel(regs.SCALE_REGION) + regs.SCALE_BASE) & ~7),
                    bs_words.eq((((self._basep_sel(regs.SCALE_REGION) + regs.SCALE_BASE) & 7) + O * 10 + 7) >> 3),
                    bs_left.eq(O * 10), bs_have.eq(0), bs_first.eq(1), rec_n.eq(0), rec_ch.eq(0), w_cnt.eq(0),
                ]
                with m.If(unsupported):
                    m.d.sync += self.error_code.eq(ComputeError.UNSUPPORTED)
                    m.next = "ERROR"
                with m.Else():
                    m.next = "RECORDS"
            with m.State("RECORDS"):
                m.d.comb += bs_take.eq(bs_valid)
                with m.If(bs_take):
                    m.d.sync += rec.eq(Cat(rec[8:], bs_byte))
                    m.d.sync += rec_n.eq(Mux(rec_n == 9, 0, rec_n + 1))
                    with m.If(rec_n == 9):
                        m.d.comb += [ou.param_we.eq(1), ou.param_channel.eq(rec_ch),
                                     ou.param_record.eq(Cat(rec[8:], bs_byte))]
                        m.d.sync += rec_ch.eq(rec_ch + 1)
                with m.If((bs_left == 0) & (bs_words == 0)):
                    base = self._basep_sel(regs.WEIGHT_REGION) + regs.WEIGHT_BASE
                    m.d.sync += [
                        bs_start.eq(base), bs_raddr.eq(base & ~7),
                        bs_words.eq(((base & 7) + regs.WEIGHT_LENGTH + 7) >> 3),
                        bs_left.eq(regs.WEIGHT_LENGTH), bs_have.eq(0), bs_first.eq(1),
                    ]
                    m.next = "WEIGHTS"
            with m.State("WEIGHTS"):
                m.d.comb += [dec.i_stream.valid.eq(bs_valid), bs_take.eq(bs_valid & dec.i_stream.ready),
                             dec.o_stream.ready.eq(1)]
                with m.If(dec.o_stream.valid):
                    with m.If(w_cnt < expected_bytes):
                        m.d.comb += w_wr.en.eq(w_en)
                    with m.Else():
                        m.d.sync += fail.eq(1)
                    m.d.sync += w_cnt.eq(w_cnt + 1)
                with m.If((bs_left == 0) & (bs_words == 0) & (dec.done | dec.error)):
                    with m.If(dec.error | (w_cnt != expected_bytes) | fail | mem_err):
                        m.d.sync += self.error_code.eq(Mux(mem_err, ComputeError.MEMORY, Mux(
                            dec.error, ComputeError.DECODE, ComputeError.WEIGHT_COUNT)))
                        m.next = "ERROR"
                    with m.Else():
                        m.d.sync += [blk_ob.eq(0), blk_base.eq(0), ou_idx.eq(0), oy_b.eq(0), ox_b.eq(0),
                                     ib.eq(0), iu.eq(0), ky.eq(0), kx.eq(0), grp_base.eq(0), rd_i.eq(0), rcv_i.eq(0)]
                        m.next = "ISSUE"
            with m.State("ISSUE"):
                # Request both words of every position, collect the responses.
                r_addr = Array(pos_addr)[rd_i >> 1] & ~7
                m.d.comb += [bus.req.valid.eq(rd_i != 2 * P),
                             bus.req.payload.addr.eq(r_addr + Mux(rd_i[0], 8, 0)),
                             bus.resp.ready.eq(1)]
                with m.If(bus.req.valid & bus.req.ready):
                    m.d.sync += rd_i.eq(rd_i + 1)
                with m.If(bus.resp.valid):
                    m.d.sync += [act_words[rcv_i].eq(bus.resp.payload.rdata), rcv_i.eq(rcv_i + 1)]
                    with m.If(bus.resp.payload.err):
                        m.d.sync += mem_err.eq(1)
                with m.If(rcv_i == 2 * P):
                    m.next = "FIRE"
            with m.State("FIRE"):
                m.d.comb += [mac.act_stream.valid.eq(1), mac.weight_stream.valid.eq(1)]
                with m.If(mac.act_stream.ready):
                    m.d.sync += [rd_i.eq(0), rcv_i.eq(0)]
                    with m.If(last_beat):
                        m.d.sync += [feed_p.eq(0), wp.eq(0), wr_have.eq(0)]
                        m.next = "OUTPUT"
                    with m.Else():
                        m.next = "ISSUE"
                        with m.If(kx != KW - 1):
                            m.d.sync += kx.eq(kx + 1)
                        with m.Else():
                            m.d.sync += kx.eq(0)
                            with m.If(ky != KH - 1):
                                m.d.sync += ky.eq(ky + 1)
                            with m.Else():
                                m.d.sync += ky.eq(0)
                                with m.If(iu != n_iu_g - 1):
                                    m.d.sync += iu.eq(iu + 1)
                                with m.Else():
                                    m.d.sync += [iu.eq(0), ib.eq(ib + ib_step), grp_base.eq(grp_base + grp_size)]
            with m.State("OUTPUT"):
                # Feed the P positions of the accumulator block to the output unit.
                m.d.comb += ou.i_stream.valid.eq(mac.acc_stream.valid & (feed_p != P))
                with m.If(ou.i_stream.valid & ou.i_stream.ready):
                    m.d.sync += feed_p.eq(feed_p + 1)
                    with m.If(feed_p == P - 1):
                        m.d.comb += mac.acc_stream.ready.eq(1)
                # Write each requantised position (up to two strobed words).
                m.d.comb += ou.o_stream.ready.eq(~wr_have)
                with m.If(ou.o_stream.valid & ~wr_have):
                    m.d.sync += [
                        wr_have.eq(1), wr_phase.eq(0), wr_data.eq(ou.o_stream.payload.data),
                        wr_mask.eq(Mux(w_valid_pos, lane_mask, 0)),
                        wr_addr.eq(fm_addr(ofm_base, w_oy, w_ox, ch0, regs.OFM_STRIDE_Y, regs.OFM_STRIDE_X,
                                           regs.OFM_STRIDE_C, ofm_fmt)),
                    ]
                with m.If(wr_have):
                    strb = Mux(wr_phase, wide_strb[8:], wide_strb[:8])
                    m.d.comb += [
                        bus.req.valid.eq(strb != 0), bus.req.payload.write.eq(1),
                        bus.req.payload.addr.eq((wr_addr & ~7) + Mux(wr_phase, 8, 0)),
                        bus.req.payload.wdata.eq(Mux(wr_phase, wide_data[64:], wide_data[:64])),
                        bus.req.payload.wstrb.eq(strb),
                    ]
                    with m.If((strb == 0) | bus.req.ready):
                        m.d.sync += wr_phase.eq(1)
                        with m.If(wr_phase):
                            m.d.sync += [wr_have.eq(0), wp.eq(wp + 1)]
                with m.If(wp == P):
                    # Next OFM ublock.
                    m.d.sync += [ib.eq(0), iu.eq(0), ky.eq(0), kx.eq(0), grp_base.eq(0)]
                    m.next = "ISSUE"
                    with m.If(~last_pos_x):
                        m.d.sync += ox_b.eq(ox_b + UW)
                    with m.Else():
                        m.d.sync += ox_b.eq(0)
                        with m.If(~last_pos_y):
                            m.d.sync += oy_b.eq(oy_b + UH)
                        with m.Else():
                            m.d.sync += oy_b.eq(0)
                            with m.If(~last_ou):
                                m.d.sync += ou_idx.eq(ou_idx + 1)
                            with m.Else():
                                m.d.sync += [ou_idx.eq(0), blk_base.eq(blk_base + n_ou * per_ou),
                                             blk_ob.eq(blk_ob + OB)]
                                with m.If(last_blk):
                                    m.next = "FINISH"
            with m.State("FINISH"):
                with m.If(mem_err):
                    m.d.sync += self.error_code.eq(ComputeError.MEMORY)
                    m.next = "ERROR"
                with m.Else():
                    m.d.comb += self.port.done.eq(1)
                    m.next = "IDLE"
            with m.State("ERROR"):
                m.d.comb += self.port.error.eq(1)
                m.next = "IDLE"

        # Byte serialiser (active in RECORDS / WEIGHTS: bs_words/bs_left are 0 otherwise).
        with m.If(bs_words != 0):
            m.d.comb += [bus.req.valid.eq(1), bus.req.payload.addr.eq(bs_raddr)]
            with m.If(bus.req.ready):
                m.d.sync += [bs_raddr.eq(bs_raddr + 8), bs_words.eq(bs_words - 1)]
        with m.If(~bs_have & (bs_left != 0)):
            m.d.comb += bus.resp.ready.eq(1)
            with m.If(bus.resp.valid):
                m.d.sync += [bs_buf.eq(bus.resp.payload.rdata), bs_have.eq(1), bs_first.eq(0),
                             bs_idx.eq(Mux(bs_first, bs_start[:3], 0))]
                with m.If(bus.resp.payload.err):
                    m.d.sync += mem_err.eq(1)
        with m.If(bs_take):
            m.d.sync += [bs_left.eq(bs_left - 1), bs_idx.eq(bs_idx + 1)]
            with m.If((bs_idx == 7) | bs_last):
                m.d.sync += bs_have.eq(0)
        return m

    # BASEP selection: the compute unit gets the region base pointers from the top.
    def _basep_sel(self, region):
        return Array(self.basep)[region[:3]]
