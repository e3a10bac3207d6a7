"""What the compute unit's sub-units share about a kernel op: error causes, limits, and the op parameters derived
from a register snapshot (SPEC.md sections 4-5). See :mod:`rtl.npu.compute` for the unit they make up."""
from dataclasses import dataclass

from amaranth import Array, Cat, Const, Mux, Signal, Value, signed
from amaranth.lib import enum

from rtl.npu.controller import CMD0
from rtl.npu.ifm_stager import line_buffer_geometry

__all__ = ["ACC_BUFFER_ACCUMULATORS", "ACC_ENTRIES", "ComputeError", "IUB", "MAX_CHANNELS", "MAX_KERNEL_ELEMENTS",
           "MAX_KERNEL_H", "OpParams", "SUB_KERNEL", "WEIGHT_BITS", "WEIGHT_BUFFER_BYTES", "acc_entries", "derive_op",
           "identity_scale", "region_base", "ring_rows", "round_elements"]


class ComputeError(enum.Enum, shape=3):
    """Why the last op failed (``error_code``, held until the engine starts the next op)."""
    NONE = 0
    UNSUPPORTED = 1     # the register snapshot asks for something this unit does not implement
    MEMORY = 2          # a read came back with ``err``
    DECODE = 3          # the weight decoder reported a malformed stream
    WEIGHT_COUNT = 4    # the decoded stream is not as long as the op's weight-order loop nest


#: OFM channels whose records one bank of the output unit holds (an op with more channels is refused; 1024: e.g. the
#: autoencoder's 640-channel output layer, MobileNetV1's 1024).
MAX_CHANNELS = 1024
#: Half the brick RAM in bytes (the RAM is a ring of twice this). An op whose largest OFM block's decoded weights do
#: not fit the ring runs in IFM-depth passes (``split``, :mod:`rtl.npu.issue`).
WEIGHT_BUFFER_BYTES = 32768
IUB = 8   # IFM ublock depth (every U55 config)
#: Bits of one decoded weight, in the decoder's output, the brick RAM and the MAC array: Vela codes ``weight - weight
#: zero point`` (``weight_compressor``), -255..255, e.g. ARG_MAX's depthwise multiplies by 128.
WEIGHT_BITS = 9
#: 32-bit partial sums the accumulator buffer holds (:class:`~rtl.npu.ofm_writer.AccumulatorBuffer`, 16 KiB, the
#: size of a U55-256's SHRAM accumulator area): a split op's OFM block (all its OFM positions, rounded up to
#: micro-blocks, x block depth) must fit.
ACC_BUFFER_ACCUMULATORS = 4096
#: Entries (micro-blocks) of the accumulator buffer at most (u55-32: 1 x 1 x 4 accumulators each).
ACC_ENTRIES = 1024
#: Kernel limits (Vela's ``tflite_supported_operators``: dilated kernel height 1..64, W x H 1..64 x 64); larger
#: kernels are walked as sub-kernels of at most ``SUB_KERNEL x SUB_KERNEL`` (``ArchitectureFeatures.SubKernelMax``).
MAX_KERNEL_H = 64
MAX_KERNEL_ELEMENTS = 64 * 64
SUB_KERNEL = 8


@dataclass(frozen=True)
class OpParams:
    """Signals derived from one register snapshot (quasi-static for the op)."""
    regs: Value
    dw: Value       # depthwise, or the identity POOL that runs like a 1x1 depthwise
    pool: Value
    pk: Value
    O: Value
    I: Value
    KH: Value           # kernel taps (rows / columns of weights)
    KW: Value
    EH: Value           # the kernel's extent in IFM pixels (KERNEL_HEIGHT_M1 + 1): (KH - 1) * dilation + 1
    EW: Value
    dy: Value           # KERNEL_STRIDE dilation bits: 1 = dilation 2 (taps every other row / column)
    dx: Value
    sub_h: Value        # taps of a full sub-kernel: 8, or 4 along a dilated axis (the U55's 8x8 in IFM pixels)
    sub_w: Value
    OB: Value
    OH: Value
    OW: Value
    IH: Value           # IFM height / width over all tiles (before upscaling)
    IW: Value
    up: Value           # IFM_UPSCALE NEAREST or TRANSPOSE: the kernel walks a 2x upscaled IFM
    transpose: Value    # TRANSPOSE: the upscaled IFM has zeros between the pixels (only even rows / columns)
    need_h: Value       # upscaled IFM rows / columns the op reads (without padding)
    need_w: Value
    sx: Value
    sy: Value
    ne: Value
    ib_step: Value
    n_oub_total: Value
    per_ou: Value
    expected: Value
    expected_bytes: Value
    ublocks: Value
    span: Value
    ifm_fmt: Value
    ofm_fmt: Value
    kk: Value           # kernel elements KH * KW (full width, for the limit check)
    n_sub: Value        # sub-kernels
    n_groups: Value     # IFM-block x sub-kernel groups per OFM block
    block_bricks: Value  # bricks of the first (largest) OFM block
    split: Value        # partial sums in passes: a conv whose block does not fit the brick ring (IFM-depth passes),
    #                     a depthwise that does not fit the brick ring or the line buffer (sub-kernel passes)
    wide: Value         # 16-bit IFM: a line-buffer word holds 4 channels, a MAC beat takes half an IFM ublock
    halves: Value       # MAC beats per brick and kernel element: 2 for a 16-bit IFM (1 on a depthwise with OUB 4)


def derive_op(m, regs, opcode, oub: int, ublock_h: int, prefix: str = "", *,
              line_buffer_words: int | None = None) -> OpParams:
    """The op parameters of a register snapshot (SPEC.md sections 4-5), as combinational signals of ``m``.
    ``line_buffer_words``: the IFM stager's buffer, which decides whether a depthwise with a tall kernel runs split
    (``split``, ``span``); without it a depthwise is never split."""
    def sig(name, shape=17):
        return Signal(shape, name=f"{prefix}{name}")
    v = {name: sig(name) for name in ("O", "I", "KH", "KW", "EH", "EW", "OB", "OH", "OW", "IH", "IW")}
    dy, dx, sub_h, sub_w = sig("dy", 1), sig("dx", 1), sig("sub_h", 4), sig("sub_w", 4)
    sx, sy, pk, dw, pool = sig("sx", 3), sig("sy", 3), sig("pk", 1), sig("dw", 1), sig("pool", 1)
    wide, halves = sig("wide", 1), sig("halves", 2)
    ks = regs.KERNEL_STRIDE
    m.d.comb += [
        wide.eq(regs.IFM_PRECISION[2:4] == 1),
        # A 16-bit beat takes 4 channels: two beats per brick, or one on U55-32's 4-channel depthwise bricks.
        halves.eq(Mux(wide & ~dw, 2, 1) if oub == 4 else Mux(wide, 2, 1)),
        pool.eq(opcode == CMD0.NPU_OP_POOL),
        dw.eq((opcode == CMD0.NPU_OP_DEPTHWISE) | pool),
        v["O"].eq(regs.OFM_DEPTH_M1 + 1), v["I"].eq(regs.IFM_DEPTH_M1 + 1),
        # Dilation 2 (Vela's KERNEL_STRIDE bits 3 / 4): KERNEL_*_M1 is the dilated extent - 1, and Vela's weight
        # encoder decomposes into sub-kernels of 8 // dilation taps (weight_compressor.encode_weights).
        dy.eq(ks[4]), dx.eq(ks[3]), sub_h.eq(Mux(dy, SUB_KERNEL // 2, SUB_KERNEL)),
        sub_w.eq(Mux(dx, SUB_KERNEL // 2, SUB_KERNEL)),
        v["EH"].eq(regs.KERNEL_HEIGHT_M1 + 1), v["EW"].eq(regs.KERNEL_WIDTH_M1 + 1),
        v["KH"].eq((regs.KERNEL_HEIGHT_M1 >> dy) + 1), v["KW"].eq((regs.KERNEL_WIDTH_M1 >> dx) + 1),
        v["OB"].eq(regs.OFM_BLK_DEPTH_M1 + 1), v["OH"].eq(regs.OFM_HEIGHT_M1 + 1), v["OW"].eq(regs.OFM_WIDTH_M1 + 1),
        sx.eq(1 + Cat(ks[0], ks[6])), sy.eq(1 + Cat(ks[1], ks[9])), pk.eq(ks[2] & ~dw),
    ]
    up, transpose, need_h, need_w = _ifm_extent(m, regs, v, sx, sy, prefix)
    kk = sig("kk", 34)    # kernel elements KH*KW
    m.d.comb += kk.eq(v["KH"] * v["KW"])
    # Elements per OFM ublock and IFM ublock over all sub-kernels: each sub-kernel's count is rounded up to 4 for
    # part-kernel-first and depthwise (to 2 for part-kernel-first on a 16-bit IFM: mlw_codec's reorder); only the
    # corner sub-kernel (KH % sub_h x KW % sub_w) can need it.
    rr = sig("kk_corner", 6)
    ne = sig("ne", 13)
    m.d.comb += [rr.eq(Mux(dy, v["KH"][:2], v["KH"][:3]) * Mux(dx, v["KW"][:2], v["KW"][:3])),
                 ne.eq(Mux(pk | dw, kk[:13] - rr + round_elements(rr, pk & ~dw & wide), kk[:13]))]
    ib_step = sig("ib_step", 6)   # IFM block depth: 16 part-kernel-first or with a 16-bit IFM, else 32
    m.d.comb += ib_step.eq(Mux(pk | wide, 16, 32))
    I, O = v["I"], v["O"]
    n_iu_total = sig("n_iu_total", 16)   # bricks per (OFM ublock, kernel element) over the whole IFM depth
    m.d.comb += n_iu_total.eq(Mux(dw, 1, Mux(pk, (I + 7) >> 3,
                                             Mux(wide, ((I + 15) >> 4) << 1, ((I + 31) >> 5) << 2))))
    n_oub_total = sig("n_oub_total", 16)
    m.d.comb += n_oub_total.eq((O + oub - 1) >> (oub.bit_length() - 1))
    per_ou = sig("per_ou", 24)       # bricks per OFM ublock
    m.d.comb += per_ou.eq(ne * n_iu_total)
    expected = sig("expected", 32)   # bricks in the decoded stream
    m.d.comb += expected.eq(n_oub_total * per_ou)
    expected_bytes = sig("expected_bytes", 32)   # weights in the decoded stream (depthwise: OUB per brick)
    m.d.comb += expected_bytes.eq(Mux(dw, expected * oub, expected * oub * IUB))
    ublocks = sig("ublocks", 14)     # line-buffer words per IFM pixel
    m.d.comb += ublocks.eq(Mux(dw, Mux(wide, halves, 1), Mux(wide, ((I + 7) >> 3) << 1, (I + 7) >> 3)))
    span_kernel = sig("span_kernel")   # IFM rows one micro-block row reads over the whole kernel
    m.d.comb += span_kernel.eq((ublock_h - 1) * sy + v["EH"])
    n_sub = sig("n_sub", 16)
    n_groups = sig("n_groups", 16)
    m.d.comb += [n_sub.eq(Mux(dy, (v["KH"] + 3) >> 2, (v["KH"] + 7) >> 3)
                          * Mux(dx, (v["KW"] + 3) >> 2, (v["KW"] + 7) >> 3)),
                 n_groups.eq(n_sub * Mux(dw, 1, Mux(pk | wide, (I + 15) >> 4, (I + 31) >> 5)))]
    block_bricks = sig("block_bricks", 32)
    cob = Mux(O < v["OB"], O, v["OB"])
    m.d.comb += block_bricks.eq(((cob + oub - 1) >> (oub.bit_length() - 1)) * per_ou)
    split, span = _split(m, v, dw, pool, sy, span_kernel, block_bricks, oub, ublock_h, line_buffer_words, prefix)
    return OpParams(regs=regs, dw=dw, pool=pool, pk=pk, sx=sx, sy=sy, ne=ne, ib_step=ib_step,
                    n_oub_total=n_oub_total, per_ou=per_ou, expected=expected, expected_bytes=expected_bytes,
                    ublocks=ublocks, span=span, ifm_fmt=regs.IFM_PRECISION[6:8], ofm_fmt=regs.OFM_PRECISION[6:8],
                    kk=kk, n_sub=n_sub, n_groups=n_groups, block_bricks=block_bricks, split=split, up=up,
                    transpose=transpose, need_h=need_h, need_w=need_w, wide=wide, halves=halves, dy=dy, dx=dx,
                    sub_h=sub_h, sub_w=sub_w, **v)


def round_elements(n, by_two) -> Value:
    """A sub-kernel's element count ``n`` as the weight stream pads it: up to a multiple of 4, or of 2 (``by_two``:
    part-kernel-first on a 16-bit IFM)."""
    return Mux(by_two, (n + 1) & ~1, (n + 3) & ~3)


def _split(m, v, dw, pool, sy, span_kernel, block_bricks, oub: int, ublock_h: int, line_buffer_words, prefix: str):
    """(split, span): whether the op runs in passes with partial sums, and the IFM rows one micro-block row needs at
    once. A conv splits when its OFM block's bricks do not fit the brick ring (IFM-depth passes). A depthwise splits
    when its block's bricks do not fit the ring or ``span_kernel`` rows do not fit the line buffer's ring of rows:
    it then walks its 8x8 sub-kernels as passes (a MEAN's 64x64 kernel), so only a sub-kernel's rows must be staged,
    as a U55 walks an IFM block per sub-kernel through SHRAM (a sub-kernel spans at most 8 rows, dilated or not)."""
    split = Signal(name=f"{prefix}split")
    span = Signal(17, name=f"{prefix}span")
    rows_fit = Const(1)
    if line_buffer_words is not None:
        _, _, _, rows_fit = line_buffer_geometry(m, line_buffer_words, v["IW"], 1, v["IH"], 1, span_kernel,
                                                 f"{prefix}kernel_")
    too_big = block_bricks > ring_rows(oub)
    m.d.comb += split.eq(Mux(dw, ~pool & (too_big | ~rows_fit), too_big))
    sub_h = Mux(v["EH"] > SUB_KERNEL, SUB_KERNEL, v["EH"])
    m.d.comb += span.eq(Mux(split & dw, (ublock_h - 1) * sy + sub_h, span_kernel))
    return split, span


def _ifm_extent(m, regs, v, sx, sy, prefix: str):
    """The IFM's extent (``v["IH"]``, ``v["IW"]``) and resampling. The U55 has no register for the whole IFM: it
    reads what the OFM, kernel, stride and padding need; ``IFM_HEIGHT0`` / ``WIDTH0`` only bound tile 0, and rows
    below it come from tiles 2 / 3, columns right of it from tiles 1 / 3 (:mod:`rtl.npu.ifm_stager`). So the IFM is
    the larger of tile 0 and what the op reads; ops within tile 0 (every untiled op) keep ``HEIGHT0 x WIDTH0``.
    With upscaling (NEAREST / TRANSPOSE, always x2) padding and kernel are in upscaled coordinates."""
    up, transpose = Signal(name=f"{prefix}upscale"), Signal(name=f"{prefix}transpose")
    need_h, need_w = Signal(signed(20), name=f"{prefix}need_h"), Signal(signed(20), name=f"{prefix}need_w")
    src_h, src_w = Signal(signed(20), name=f"{prefix}src_need_h"), Signal(signed(20), name=f"{prefix}src_need_w")
    h0, w0 = regs.IFM_HEIGHT0_M1 + 1, regs.IFM_WIDTH0_M1 + 1
    m.d.comb += [
        up.eq(regs.IFM_UPSCALE[0:2] != 0), transpose.eq(regs.IFM_UPSCALE[0:2] == 2),
        need_h.eq((v["OH"] - 1) * sy + v["EH"] - regs.IFM_PAD_TOP - regs.IFM_PAD_BOTTOM),
        need_w.eq((v["OW"] - 1) * sx + v["EW"] - regs.IFM_PAD_LEFT - regs.IFM_PAD_RIGHT),
        src_h.eq((need_h + up) >> up), src_w.eq((need_w + up) >> up),
        v["IH"].eq(Mux(src_h > h0, src_h, h0)), v["IW"].eq(Mux(src_w > w0, src_w, w0)),
    ]
    return up, transpose, need_h, need_w


def identity_scale(m, regs, prefix: str = "") -> Value:
    """A POOL's global OFM_SCALE / SHIFT leaves every int8 difference ``x - zp`` (|.| <= 255) as it is, so the op is
    the identity the MAC datapath runs: scale 1, shift 0 (Vela's fused-activation pool) or, for an upscaled IFM,
    ``2**shift`` (+ 1) with ``shift`` 10..31 (Vela's ``quantise_pooling_scale(1, 0)`` gives RESIZE's 1x1 pools
    0x80000001 / 31; 255 x 1 < 2**9, so the rounding never moves the result). Pools without upscaling keep the
    narrow form, so what the vector unit runs does not change."""
    one = Signal(33, name=f"{prefix}scale_one")
    ok = Signal(name=f"{prefix}identity_scale")
    shift, scale = regs.OFM_SCALE_SHIFT, regs.OFM_SCALE
    m.d.comb += [one.eq(Const(1, 33) << shift),
                 ok.eq(((scale == 1) & (shift == 0))
                       | ((regs.IFM_UPSCALE[0:2] != 0) & (shift >= 10) & (shift <= 31)
                          & ((scale == one) | (scale == one + 1))))]
    return ok


def acc_entries(positions: int, oub: int) -> int:
    """Micro-blocks the accumulator buffer holds on a config with ``positions`` x ``oub`` accumulators."""
    return ACC_BUFFER_ACCUMULATORS // (positions * oub)


def ring_rows(oub: int) -> int:
    """Bricks in the brick ring (``2 x`` :data:`WEIGHT_BUFFER_BYTES` of ``oub x IUB``-byte bricks)."""
    return 2 * WEIGHT_BUFFER_BYTES // (oub * IUB)


def region_base(basep, region):
    """BASEP selection: the byte address of ``region`` (the compute unit gets the base pointers from the top)."""
    return Array(basep)[region[:3]]
