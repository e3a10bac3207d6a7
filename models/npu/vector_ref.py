"""Golden model of the NPU's vector-unit kicks, written from the register semantics, independently of the RTL
(``rtl/npu/vector_unit.py`` implements the same arithmetic): NPU_OP_POOL (MAX, AVERAGE, REDUCE_SUM), NPU_OP_ELEMENTWISE
(ADD, SUB, MUL, MIN, MAX, ABS; :func:`elementwise` states the arithmetic), the ACTIVATION TABLE_n lookups
(:func:`output_stage`) and the DMA into the SHRAM that loads the tables; 8- and 16-bit feature maps.

Per OFM element ``(y, x, c)`` with the kernel window at ``(y * stride_y - pad_top + ky, x * stride_x - pad_left +
kx)``; taps outside the IFM are padding and take no part (MAX ignores them, sums skip them)::

    t      = ifm - IFM_ZERO_POINT                 (each valid tap; ifm S8 or U8 per IFM_PRECISION bit 0)
    v      = max(t) | sum(t)                      (MAX | AVERAGE, REDUCE_SUM)
    AVERAGE with any IFM_PAD_* non-zero:          (the element count varies at the edges; the hardware divides)
    v      = (v * R(n) + 2**(S(n)-1)) >> S(n)     n = valid taps; (R, S) = pooling_reciprocal(n)
    p      = v * OFM_SCALE                        (32-bit unsigned scale; shift = OFM_SCALE's param[5:0])
    y      = round(p / 2**shift)                  round mode OFM_PRECISION[15:14]: 0 TFL, 1 TRUNCATE, 2 NATURAL
    y      = f(y)                                 ACTIVATION TANH / SIGMOID (int16): rtl.npu.sigmoid_tanh
    z      = clamp(y + OFM_ZERO_POINT, OFM type)  (then a table lookup, if ACTIVATION is TABLE_n)
    out    = clamp(z, lo, hi)                     lo/hi = ACTIVATION_MIN/MAX clipped to the OFM type's range

Rounding (``>>`` arithmetic): NATURAL ``(p + 2**(shift-1)) >> shift`` (round half up); TRUNCATE toward zero; TFL is
:func:`models.npu.requant.requantize_scalar`'s double rounding for ``shift > 31`` and NATURAL otherwise.

Where the registers come from: regor (Vela 5.2's default core) writes ``OFM_SCALE`` = 1, shift 0 and round mode
NATURAL for MAX_POOL_2D and for AVERAGE_POOL_2D with padding, and for AVERAGE_POOL_2D without padding
``OFM_SCALE`` = Vela's ``scaling.quantise_pooling_scale(KH*KW)`` (the 1/N is folded into the scale), so the device
divides by the valid-tap count itself only where the count varies. ``pooling_reciprocal`` is the same formula: with
round half up it equals TFLite's ``(sum +- n/2) / n`` (round half away from zero) for every ``|sum| <= 255 * n``,
``n <= 256`` (checked by ``tb/models/test_vector_ref.py``).
"""

from __future__ import annotations

import math

import numpy as np

from models.npu.sigmoid_tanh import ACT_SIGMOID, ACT_TANH, sigmoid_tanh16

__all__ = ["POOL_MAX", "POOL_AVERAGE", "POOL_REDUCE_SUM", "ROUND_TFL", "ROUND_TRUNCATE", "ROUND_NATURAL",
           "pooling_reciprocal", "round_shift", "output_stage", "pool", "read_fm", "write_fm", "run_pool_kick",
           "srdhm", "rdbpot", "elementwise", "run_elementwise_kick", "lookup_table", "run_dma", "run_kick"]

POOL_MAX, POOL_AVERAGE, POOL_REDUCE_SUM = 0, 1, 2
ROUND_TFL, ROUND_TRUNCATE, ROUND_NATURAL = 0, 1, 2


def pooling_reciprocal(n: int) -> tuple[int, int]:
    """(scale, shift) approximating 1/n: Vela's ``quantise_pooling_scale(n)`` (``ethosu/vela/scaling.py``)."""
    _, k = math.frexp(n - 1)
    return ((1 << (31 + k)) + (1 << k)) // n, 31 + k


def round_shift(p: int, shift: int, mode: int) -> int:
    """``p / 2**shift`` rounded as the OFM round mode says."""
    if shift == 0:
        return p
    if mode == ROUND_TRUNCATE:
        return p >> shift if p >= 0 else -((-p) >> shift)
    if mode == ROUND_TFL and shift > 31:
        t = (p + (1 << 30)) >> 31
        r = shift - 31
        return (t + (1 << (r - 1)) - (t < 0)) >> r
    return (p + (1 << (shift - 1))) >> shift


def type_range(signed: bool, bits: int = 8) -> tuple[int, int]:
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def output_stage(v: int, scale: int, shift: int, mode: int, ofm_zp: int, act_min: int, act_max: int,
                 ofm_signed: bool = True, lut: bytes | None = None, ofm_bits: int = 8,
                 clip: tuple[bool, int] | None = None, function: int = 0) -> int:
    """One OFM value from the accumulated ``v`` (see the module docstring). ``function``: the ACTIVATION function (TANH
    3 / SIGMOID 4: :func:`rtl.npu.sigmoid_tanh.sigmoid_tanh16` of the scaled value; else none). ``lut``: the table of an
    ACTIVATION TABLE_n, indexed by the value clamped to the clip range's type minus its minimum; its entry (signed for a
    signed OFM; 4-byte entries for a 32-bit OFM) is then clamped to ACTIVATION_MIN/MAX. ``clip``: the ACTIVATION clip
    range's type as (signed, bits) (None: the OFM's). A 32-bit OFM is only saturated to int32: ACTIVATION_MIN/MAX
    (16-bit registers) do not apply to it."""
    lo_t, hi_t = type_range(ofm_signed, ofm_bits)
    y = round_shift(v * scale, shift, mode)
    if function in (ACT_TANH, ACT_SIGMOID):
        y = sigmoid_tanh16(y, function == ACT_TANH)
    if ofm_bits == 32 and lut is None:
        return min(max(y + ofm_zp, lo_t), hi_t)
    lo_c, hi_c = type_range(*clip) if clip else (lo_t, hi_t)
    lo, hi = min(max(act_min, lo_c), hi_c), min(max(act_max, lo_c), hi_c)
    z = min(max(y + ofm_zp, lo_c), hi_c)
    if lut is not None and ofm_bits == 16:
        return min(max(interpolate16(lut, z - lo_c), lo), hi)
    if lut is not None:
        size = 4 if ofm_bits == 32 else 1
        i = (z - lo_c) * size
        z = int.from_bytes(lut[i:i + size], "little", signed=ofm_signed)
        return z if ofm_bits == 32 else min(max(z, lo), hi)
    return min(max(z, lo), hi)


def interpolate16(lut: bytes, u: int) -> int:
    """A 16-bit table lookup: 512 32-bit entries (base in bits [15:0], slope in [31:16], both signed) over the
    unsigned index ``u`` (0..65535, the value minus the type's minimum); entry ``u >> 7``, then ``base + ((slope *
    (u & 127) + 64) >> 7)`` (TFLite's ``lut_lookup_with_interpolation`` for int16, with slope = next - base)."""
    i = 4 * (u >> 7)
    base = int.from_bytes(lut[i:i + 2], "little", signed=True)
    slope = int.from_bytes(lut[i + 2:i + 4], "little", signed=True)
    return base + ((slope * (u & 127) + 64) >> 7)


def pool(ifm: np.ndarray, mode: int, kernel: tuple[int, int], stride: tuple[int, int], pad: tuple[int, int, int, int],
         out_hw: tuple[int, int], *, ifm_zp: int, ofm_zp: int, scale: int, shift: int, round_mode: int,
         act_min: int, act_max: int, ofm_signed: bool = True, lut: bytes | None = None,
         ofm_bits: int = 8, clip: tuple[bool, int] | None = None, out_depth: int | None = None,
         function: int = 0) -> np.ndarray:
    """A pooling kick on an ``(H, W, C)`` integer IFM; ``pad`` = (top, left, bottom, right). Returns ``(OH, OW, C)``
    int64 values (already clamped to the OFM type). REDUCE_SUM with ``out_depth`` 1 and a deeper IFM sums the window
    over every IFM channel (Vela's ReduceSum: the channel axis; OFM depth 1); with ``out_depth`` = C it sums each
    channel's window."""
    h, w, c = ifm.shape
    depth_sum = mode == POOL_REDUCE_SUM and out_depth == 1 and c > 1
    kh, kw = kernel
    oh, ow = out_hw
    t = ifm.astype(np.int64) - ifm_zp
    padded = any(pad)
    out = np.zeros((oh, ow, 1 if depth_sum else c), np.int64)
    for y in range(oh):
        for x in range(ow):
            y0, x0 = y * stride[0] - pad[0], x * stride[1] - pad[1]
            win = t[max(y0, 0):min(y0 + kh, h), max(x0, 0):min(x0 + kw, w)].reshape(-1, c)
            n = win.shape[0]
            if depth_sum:
                out[y, x, 0] = output_stage(int(win.sum()), scale, shift, round_mode, ofm_zp, act_min, act_max,
                                            ofm_signed, lut, ofm_bits, clip, function)
                continue
            for ch in range(c):
                if mode == POOL_MAX:
                    v = int(win[:, ch].max())
                else:
                    v = int(win[:, ch].sum())
                    if mode == POOL_AVERAGE and padded:
                        r, s = pooling_reciprocal(n)
                        v = (v * r + (1 << (s - 1))) >> s
                out[y, x, ch] = output_stage(v, scale, shift, round_mode, ofm_zp, act_min, act_max, ofm_signed, lut,
                                             ofm_bits, clip, function)
    return out


def _addr(base: int, y: int, x: int, c: int, sy: int, sx: int, sc: int, nhcwb16: bool, size: int = 1) -> int:
    """Byte address of element ``(y, x, c)``: NHWC ``base + y*sy + x*sx + c*size``; NHCWB16 (16-channel bricks)
    ``base + y*sy + x*16*size + (c // 16)*sc + (c % 16)*size``."""
    if nhcwb16:
        return base + y * sy + x * 16 * size + (c >> 4) * sc + (c & 15) * size
    return base + y * sy + x * sx + c * size


def tile_of(tiles, base: int, y: int, x: int) -> tuple[int, int, int]:
    """(base, row, column) of pixel ``(y, x)`` in a feature map split into tiles: ``tiles`` = (BASE1, BASE2, BASE3,
    HEIGHT0, HEIGHT1, WIDTH0); columns ``< WIDTH0`` are in tiles 0 / 2 (split at row HEIGHT0), the others in tiles
    1 / 3 (split at HEIGHT1). ``tiles`` None: one tile at ``base``."""
    if tiles is None:
        return base, y, x
    b1, b2, b3, h0, h1, w0 = tiles
    right = x >= w0
    split = h1 if right else h0
    bottom = y >= split
    return ((b3 if right else b2) if bottom else (b1 if right else base), y - split if bottom else y,
            x - w0 if right else x)


def fm_tiles(kick, fm: str) -> tuple[int, int, int, int, int, int]:
    """The tiles argument of :func:`read_fm` / :func:`write_fm` from a kick's ``fm`` (IFM / OFM) registers."""
    r = kick.reg
    return (r(f"{fm}_BASE1", 0), r(f"{fm}_BASE2", 0), r(f"{fm}_BASE3", 0), r(f"{fm}_HEIGHT0_M1") + 1,
            r(f"{fm}_HEIGHT1_M1", 0) + 1, r(f"{fm}_WIDTH0_M1") + 1)


def read_fm(mem: bytes, base: int, shape: tuple[int, int, int], strides: tuple[int, int, int], nhcwb16: bool,
            signed: bool, size: int = 1, tiles=None) -> np.ndarray:
    """An ``(H, W, C)`` feature map of ``size``-byte little-endian elements at ``base`` of ``mem`` (strides y, x, c
    in bytes; SPEC.md section 4), in the tiles ``tiles`` (:func:`tile_of`) if given."""
    h, w, c = shape
    out = np.zeros(shape, np.int64)
    for y in range(h):
        for x in range(w):
            tb, ty, tx = tile_of(tiles, base, y, x)
            for ch in range(c):
                a = _addr(tb, ty, tx, ch, strides[0], strides[1], strides[2], nhcwb16, size)
                out[y, x, ch] = int.from_bytes(mem[a:a + size], "little", signed=signed)
    return out


def write_fm(mem: bytearray, base: int, values: np.ndarray, strides: tuple[int, int, int], nhcwb16: bool,
             size: int = 1, tiles=None) -> None:
    h, w, c = values.shape
    for y in range(h):
        for x in range(w):
            tb, ty, tx = tile_of(tiles, base, y, x)
            for ch in range(c):
                a = _addr(tb, ty, tx, ch, strides[0], strides[1], strides[2], nhcwb16, size)
                mem[a:a + size] = (int(values[y, x, ch]) & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def _s16(v: int) -> int:
    return v - (1 << 16) if v & 0x8000 else v


def _ifm_size(prec: int) -> int:
    """Element bytes of an IFM / IFM2 precision register (bits [3:2]: 8, 16, 32 bit)."""
    return 1 << ((prec >> 2) & 3)


def _ofm_size(prec: int) -> int:
    """Element bytes of an OFM precision register (bits [2:1])."""
    return 1 << ((prec >> 1) & 3)


def _bound(v: int, signed: bool) -> int:
    """ACTIVATION_MIN / MAX as the OFM type reads them (signed 16 bit for a signed OFM)."""
    return _s16(v) if signed else v


#: The SHRAM's last 2 KiB hold the lookup tables, 256 bytes per TABLE_n slot (Vela ``shram_lut_address``).
LUT_BYTES, LUT_SLOT_BYTES = 2048, 256


#: ACTIVATION[15:12] (act_clip_range) -> the type the value is clamped to before a table lookup (None: the OFM's).
CLIP_RANGES = {0: None, 2: (False, 8), 3: (True, 8), 5: (True, 16)}


def activation_clip(kick) -> tuple[bool, int] | None:
    code = (kick.reg("ACTIVATION", 0) >> 12) & 15
    if code not in CLIP_RANGES:
        raise ValueError(f"activation clip range {code} is not defined")
    return CLIP_RANGES[code]


def lookup_table(kick, shram: bytes | None, ofm_bytes: int = 1) -> bytes | None:
    """The table an ACTIVATION TABLE_n of ``kick`` reads from ``shram`` (None without a table), from slot ``n``
    (256-byte slots): 256 bytes for an 8-bit OFM (``ofm_bytes``), 256 4-byte entries for a 32-bit OFM, 512 4-byte
    entries (:func:`interpolate16`) for a 16-bit OFM."""
    act = kick.reg("ACTIVATION", 0) & 0xFFF
    if act == 0:
        return None
    if not 16 <= act <= 23 or shram is None:
        raise ValueError(f"activation {act} is not implemented")
    base = len(shram) - LUT_BYTES + LUT_SLOT_BYTES * (act - 16)
    return bytes(shram[base:base + {1: 256, 2: 2048, 4: 1024}[ofm_bytes]])


def run_pool_kick(kick, regions: dict[int, bytearray], shram: bytes | None = None) -> None:
    """Execute one NPU_OP_POOL kick (``models.npu.cmdstream.Kick``) on ``regions`` (region number -> its bytes);
    ``shram``: the shared buffer (for a table lookup)."""
    r = kick.reg
    ks = r("KERNEL_STRIDE")
    stride = (1 + ((ks >> 1) & 1) + 2 * ((ks >> 9) & 1), 1 + (ks & 1) + 2 * ((ks >> 6) & 1))
    kernel = (r("KERNEL_HEIGHT_M1") + 1, r("KERNEL_WIDTH_M1") + 1)
    ifm_prec, ofm_prec = r("IFM_PRECISION"), r("OFM_PRECISION")
    pad = (r("IFM_PAD_TOP"), r("IFM_PAD_LEFT"), r("IFM_PAD_BOTTOM"), r("IFM_PAD_RIGHT"))
    oh, ow = r("OFM_HEIGHT_M1") + 1, r("OFM_WIDTH_M1") + 1
    # The IFM is what the windows read (no register holds its size), at least tile 0; past tile 0: tiles 1-3. With
    # IFM_UPSCALE NEAREST the windows walk the IFM upscaled x2 (each pixel repeated 2x2); padding is in those units.
    up = r("IFM_UPSCALE") & 3
    if up not in (0, 1):
        raise ValueError(f"POOL with IFM_UPSCALE mode {up} (only NEAREST is defined for POOL)")
    ih = max(-(-((oh - 1) * stride[0] + kernel[0] - pad[0] - pad[2]) >> up), r("IFM_HEIGHT0_M1") + 1)
    iw = max(-(-((ow - 1) * stride[1] + kernel[1] - pad[1] - pad[3]) >> up), r("IFM_WIDTH0_M1") + 1)
    ifm = read_fm(regions[r("IFM_REGION") & 7], r("IFM_BASE0"), (ih, iw, r("IFM_DEPTH_M1") + 1),
                  (r("IFM_STRIDE_Y"), r("IFM_STRIDE_X"), r("IFM_STRIDE_C")), (ifm_prec >> 6) & 3 == 1,
                  bool(ifm_prec & 1), _ifm_size(ifm_prec), fm_tiles(kick, "IFM"))
    if up:
        ifm = ifm.repeat(2, axis=0).repeat(2, axis=1)
    global_scale = bool(ofm_prec >> 8 & 1)
    scale, shift = (r("OFM_SCALE"), kick.params.get("OFM_SCALE", 0) & 63) if global_scale else (1, 0)
    out = pool(ifm, kick.command.param & 7, kernel, stride, pad, (oh, ow),
               ifm_zp=_s16(r("IFM_ZERO_POINT")) if ifm_prec & 1 else r("IFM_ZERO_POINT"),
               ofm_zp=_s16(r("OFM_ZERO_POINT")) if ofm_prec & 1 else r("OFM_ZERO_POINT"),
               scale=scale, shift=shift, round_mode=(ofm_prec >> 14) & 3,
               act_min=_bound(r("ACTIVATION_MIN"), bool(ofm_prec & 1)),
               act_max=_bound(r("ACTIVATION_MAX"), bool(ofm_prec & 1)), ofm_signed=bool(ofm_prec & 1),
               lut=lookup_table(kick, shram, _ofm_size(ofm_prec)), ofm_bits=8 * _ofm_size(ofm_prec),
               clip=activation_clip(kick), out_depth=r("OFM_DEPTH_M1") + 1,
               function=r("ACTIVATION", 0) & 0xFFF)
    write_fm(regions[r("OFM_REGION") & 7], r("OFM_BASE0"), out,
             (r("OFM_STRIDE_Y"), r("OFM_STRIDE_X"), r("OFM_STRIDE_C")), (ofm_prec >> 6) & 3 == 1, _ofm_size(ofm_prec),
             fm_tiles(kick, "OFM"))


# ---------------------------------------------------------------------------------------------------------------
# NPU_OP_ELEMENTWISE

EW_MUL, EW_ADD, EW_SUB, EW_MIN, EW_MAX, EW_LRELU, EW_ABS, EW_CLZ, EW_SHR, EW_SHL = range(10)
#: ADD/SUB with 8-bit operands: the operands' implied left shift (TFLite's ``left_shift`` = 20 for int8 ADD/SUB).
ADD_SUB_SHIFT_8BIT = 20
ADD_SUB_SHIFT_16BIT = 15   # int16 ADD/SUB (TFLite's left_shift 15; Vela's advanced scaling, bitdepth 16)


def srdhm(x: int, m: int) -> int:
    """SaturatingRoundingDoublingHighMul's rounding (round half up in floor form; no saturation needed here)."""
    return (x * m + (1 << 30)) >> 31


def rdbpot(x: int, exponent: int) -> int:
    """RoundingDivideByPOT: round half away from zero."""
    if exponent <= 0:
        return x << -exponent
    return (x + (1 << (exponent - 1)) - (x < 0)) >> exponent


def clz32(x: int) -> int:
    """Leading zeros of ``x`` as a 32-bit two's complement word (32 for 0)."""
    return 32 - (x & 0xFFFFFFFF).bit_length()


#: SHL / SHR shift amounts: IFM2 clamped to [0, SHL_MAX] / [0, SHR_MAX] (a 32-bit value shifted left by 32 or more
#: always saturates; right by 63 always rounds to 0 or -1).
SHL_MAX, SHR_MAX = 32, 63


def elementwise(mode: int, a: int, b: int, *, scale_mode: int, opa_scale: int, opa_shift: int,
                input_shift: int = ADD_SUB_SHIFT_8BIT, opb_scale: int = 1, round_mode: int = ROUND_TFL) -> int:
    """The value an ELEMENTWISE kick hands its output stage for operands ``a`` (IFM - zp) and ``b`` (IFM2 - zp),
    8-bit operands (16-bit: ``input_shift`` 15 instead of 20, so ``x << 15``, ``opa_shift - 16`` and ``y << 14``).

    ADD / SUB (``scale_mode`` 1: operand A is the scaled one, 2: B): the scaled operand ``x`` becomes
    ``rdbpot(srdhm(x << 20, OPA_SCALE), OPA_SHIFT - 11)`` (i.e. TFL double rounding of ``(x << 20) * OPA_SCALE``
    by ``OPA_SHIFT + 20``), the other ``y << 19``; the result is their sum / difference. This is TFLite's int8
    ADD / SUB arithmetic exactly, given Vela's ``advanced_elementwise_add_sub_scale`` (``ethosu/vela/scaling.py``):
    the operand with the larger scale has TFLite multiplier 0.5, which ``srdhm`` applies exactly as ``<< 19``.
    MUL: ``a * b``; MIN / MAX: ``min`` / ``max``; ABS: ``|a|``; LRELU: ``a`` (the output stage scales it by OFM_SCALE
    only where it is negative: OFM_SCALE holds alpha, see :func:`run_elementwise_kick`).

    ADD / SUB in scale mode 0 (SCALE_16BIT; Vela's SOFTMAX writes OPA_SCALE 1, shift 0, OPB_SCALE 1): ``a + b`` /
    ``a - b`` (other operand scales in this mode: not implemented). CLZ: leading zeros of ``a`` as a 32-bit word.
    SHL: ``a << b``, SHR: ``round_shift(a, b)`` with the OFM round mode (``b`` clamped to [0, SHL_MAX] /
    [0, SHR_MAX]; Vela's SOFTMAX uses SHR with NATURAL, i.e. TFLite's rounding of non-negative values)."""
    if mode in (EW_ADD, EW_SUB) and scale_mode == 0:
        if (opa_scale, opa_shift, opb_scale & 0xFFFF) != (1, 0, 1):
            raise ValueError("ADD/SUB scale mode 0 is implemented with unit operand scales only")
        return a + b if mode == EW_ADD else a - b
    if mode in (EW_ADD, EW_SUB):
        if scale_mode not in (1, 2):
            raise ValueError(f"ADD/SUB scale mode {scale_mode} is not implemented")
        def scaled(x):
            return rdbpot(srdhm(x << input_shift, opa_scale), opa_shift + input_shift - 31)
        if scale_mode == 1:
            a, b = scaled(a), b << (input_shift - 1)
        else:
            a, b = a << (input_shift - 1), scaled(b)
        return a + b if mode == EW_ADD else a - b
    if mode == EW_MUL:
        return a * b
    if mode == EW_MIN:
        return min(a, b)
    if mode == EW_MAX:
        return max(a, b)
    if mode == EW_ABS:
        return abs(a)
    if mode == EW_LRELU:
        return a
    if mode == EW_CLZ:
        return clz32(a)
    if mode == EW_SHL:
        return a << min(max(b, 0), SHL_MAX)
    if mode == EW_SHR:
        return round_shift(a, min(max(b, 0), SHR_MAX), round_mode)
    raise ValueError(f"elementwise mode {mode} is not implemented")


def run_elementwise_kick(kick, regions: dict[int, bytearray], shram: bytes | None = None) -> None:
    """Execute one NPU_OP_ELEMENTWISE kick on ``regions`` (8-bit feature maps; IFM2 as a tensor with H/W/C
    broadcast, or the IFM2_SCALAR; operand order swap)."""
    r = kick.reg
    mode = kick.command.param & 63
    ifm_prec, ofm_prec = r("IFM_PRECISION"), r("OFM_PRECISION")
    oh, ow, oc = r("OFM_HEIGHT_M1") + 1, r("OFM_WIDTH_M1") + 1, r("OFM_DEPTH_M1") + 1

    def fm(prefix, prec, shape, tiles=None):
        return read_fm(regions[r(f"{prefix}_REGION") & 7], r(f"{prefix}_BASE0"), shape,
                       (r(f"{prefix}_STRIDE_Y"), r(f"{prefix}_STRIDE_X"), r(f"{prefix}_STRIDE_C")),
                       (prec >> 6) & 3 == 1, bool(prec & 1), _ifm_size(prec), tiles)

    def zp(name, prec):
        return _s16(r(name)) if prec & 1 else r(name)

    a = fm("IFM", ifm_prec, (oh, ow, oc), fm_tiles(kick, "IFM")) - zp("IFM_ZERO_POINT", ifm_prec)
    bcast = r("IFM2_BROADCAST", 0)
    if mode in (EW_ABS, EW_CLZ, EW_LRELU):
        b = np.zeros_like(a)
    else:
        prec2 = r("IFM2_PRECISION")
        if bcast & 0x80:
            scalar = r("IFM2_SCALAR")
            if _ifm_size(prec2) == 4:
                raw = scalar - (1 << 32) if prec2 & 1 and scalar >> 31 else scalar
            else:
                raw = _s16(scalar) if prec2 & 1 else scalar
            b = np.full((oh, ow, oc), raw, np.int64)
        else:
            shape2 = (1 if bcast & 1 else oh, 1 if bcast & 2 else ow, 1 if bcast & 4 else oc)
            b = np.broadcast_to(fm("IFM2", prec2, shape2), (oh, ow, oc))
        b = b - zp("IFM2_ZERO_POINT", prec2)
    if bcast & 0x40:
        a, b = b, a
    global_scale = bool(ofm_prec >> 8 & 1)
    scale, shift = (r("OFM_SCALE"), kick.params.get("OFM_SCALE", 0) & 63) if global_scale else (1, 0)
    scale_mode = (ifm_prec >> 8) & 3
    opa_scale, opa_shift = r("OPA_SCALE", 0), kick.params.get("OPA_SCALE", 0) & 63
    opb_scale = r("OPB_SCALE", 1)
    out = np.zeros((oh, ow, oc), np.int64)
    lut = lookup_table(kick, shram, _ofm_size(ofm_prec))
    sgn = bool(ofm_prec & 1)
    round_mode = (ofm_prec >> 14) & 3
    input_shift = ADD_SUB_SHIFT_16BIT if _ifm_size(ifm_prec) == 2 else ADD_SUB_SHIFT_8BIT
    if mode == EW_MUL and _ifm_size(ifm_prec) == 4:
        scale = 1   # 32-bit MUL: the 64-bit product is only shifted (OFM_SCALE's multiplier is not applied)
    for idx in np.ndindex(oh, ow, oc):
        v = elementwise(mode, int(a[idx]), int(b[idx]), scale_mode=scale_mode, opa_scale=opa_scale,
                        opa_shift=opa_shift, input_shift=input_shift, opb_scale=opb_scale, round_mode=round_mode)
        positive_lrelu = mode == EW_LRELU and v >= 0   # LRELU: OFM_SCALE (alpha) scales negative values only
        s, sh = (1, 0) if positive_lrelu else (scale, shift)
        out[idx] = output_stage(v, s, sh, round_mode, zp("OFM_ZERO_POINT", ofm_prec),
                                _bound(r("ACTIVATION_MIN"), sgn), _bound(r("ACTIVATION_MAX"), sgn), sgn, lut,
                                8 * _ofm_size(ofm_prec), activation_clip(kick), r("ACTIVATION", 0) & 0xFFF)
    write_fm(regions[r("OFM_REGION") & 7], r("OFM_BASE0"), out,
             (r("OFM_STRIDE_Y"), r("OFM_STRIDE_X"), r("OFM_STRIDE_C")), (ofm_prec >> 6) & 3 == 1, _ofm_size(ofm_prec),
             fm_tiles(kick, "OFM"))


def run_dma(kick, regions: dict[int, bytearray], shram: bytearray) -> None:
    """An NPU_OP_DMA_START: DMA0_LEN bytes from region DMA0_SRC_REGION to a region or (DST_REGION bit 8) the
    SHRAM."""
    r = kick.reg
    src = regions[r("DMA0_SRC_REGION") & 7]
    n, s, d = r("DMA0_LEN"), r("DMA0_SRC"), r("DMA0_DST")
    dst = shram if r("DMA0_DST_REGION") >> 8 & 1 else regions[r("DMA0_DST_REGION") & 7]
    dst[d:d + n] = src[s:s + n]


def run_kick(kick, regions: dict[int, bytearray], shram: bytearray | None = None) -> None:
    """Execute a POOL, ELEMENTWISE or DMA kick (anything else: ValueError)."""
    if kick.name == "NPU_OP_POOL":
        run_pool_kick(kick, regions, shram)
    elif kick.name == "NPU_OP_ELEMENTWISE":
        run_elementwise_kick(kick, regions, shram)
    elif kick.name == "NPU_OP_DMA_START":
        run_dma(kick, regions, shram)
    else:
        raise ValueError(f"{kick.name} is not a vector-unit kick")
