"""Golden model of the Ethos-U55 output stage (per-channel requantisation) and of Vela's scale/bias records.

What the NPU does to one accumulator of an int8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED op with the
per-channel scale stream and round mode TFL (``OFM_PRECISION[15:14] = 0``; ``SPEC.md`` §4,
``/work/shared/research/npu-weights.md`` §5)::

    v   = acc + bias                       # acc 32 (or 40) bit, bias 40 bit: exact
    p   = v * scale                        # scale unsigned 32 bit: exact (<= 74 bit)
    if shift > 31:                         # TFLite right shift: double rounding
        t = (p + 2**30) >> 31              #   SaturatingRoundingDoublingHighMul: round half up
        r = shift - 31
        y = (t + 2**(r-1) - (t < 0)) >> r  #   RoundingDivideByPOT: round half away from zero
    else:                                  # TFLite left shift (exponent >= 0): one rounding, half up
        y = (p + 2**(shift-1)) >> shift    #   (shift == 0: y = p)
    out = min(max(y + ofm_zp, lo), hi)     # lo = clip(act_min, -128, 127), hi = clip(act_max, -128, 127)

``>>`` is an arithmetic (flooring) shift throughout. The record's 6-bit shift is ``31 - e`` where TFLite's shift is
``e`` (the frexp exponent of the real multiplier), so "negative" TFLite shifts (left shifts, real scale >= 0.5)
appear as ``shift <= 31``. :func:`multiply_by_quantized_multiplier` is TFLite's own int32 code
(``tensorflow/lite/kernels/internal/common.h``, non-``TFLITE_SINGLE_ROUNDING`` build, gemmlowp
``fixedpoint.h``); :func:`requantize` equals it wherever TFLite does not overflow int32 and is exact where
TFLite would overflow (the hardware then saturates through the final clamp, see ``rtl/npu/output_unit.py``).

Vela encoding (ethos-u-vela 5.2.0 wheel, package paths):

* ``ethosu/vela/weight_compressor.py`` ``encode_bias(bias, scale, shift)``: "packed 80bit [0(2-bits),
  shift(6-bits), scale(32-bits), bias(40-bits)]", 10 little-endian bytes; bias signed 40-bit, scale unsigned
  32-bit, shift unsigned 6-bit (asserted there). ``encode_weight_and_scale_tensor`` writes one record per OFM
  channel of the op (channel order; cores interleaved only on the 2-core U65-512) and pads the stream to 16 bytes.
* ``ethosu/vela/weight_compressor.py`` ``_prepare_scale_and_bias``: the real scale is
  ``double(ifm_scale) * double(weight_scale[c]) / double(ofm_scale)`` for int8 (FC: ``double(ifm_scale *
  weight_scale)``, a float32 product), quantised by ``ethosu/vela/scaling.py`` ``quantise_scale``:
  ``frexp`` -> ``(q, e)``, ``scale = round_away_zero(q * 2**31)``, ``shift = 31 - e``, and ``(0, 16)`` when the
  shift is outside 0..63. The bias is the TFLite int32 bias, unchanged (the IFM zero point is not folded in).

A record as a little-endian 80-bit integer therefore has bias in bits [39:0], scale in [71:40], shift in [77:72];
``rtl/npu/output_unit.py`` takes exactly that integer on its parameter write port.

Known gap, FULLY_CONNECTED (``SPEC.md`` §4): LiteRT's reference FULLY_CONNECTED kernel (ai-edge-litert wheel,
``OpResolverType.BUILTIN_REF``) requantises with a *single* rounding, :func:`litert_fc_requantize_scalar`, while its
CONV_2D / DEPTHWISE_CONV_2D use the double rounding above (measured: FC matches single rounding and not double,
conv the reverse). Vela gives the NPU no way to tell: ``get_rounding_mode`` in
``ethosu/vela/high_level_command_to_npu_op.py`` returns ``NpuRoundingMode.TFL`` for every int8 conv / depthwise /
FC op, written to ``OFM_PRECISION[15:14] = 0`` (``generate_ofm_precision`` in
``register_command_stream_generator.py``; regor's U55 register header names value 0 ``ROUND_MODE_DBL``), and the FC
record differs from a conv record only in how the real scale is computed (see above), not in its format. The NPU
therefore implements the round mode the stream asks for (double rounding) for FC too, exactly as an Ethos-U55
would, and differs from LiteRT's FC by ``sign(acc + bias)`` (before the clamp) wherever
:func:`double_rounding_differs` is true: about 0.1-0.2% of FC outputs of random models.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "RECORD_BYTES", "ChannelParams", "encode_record", "decode_record", "decode_records", "record_word",
    "quantise_scale", "saturating_rounding_doubling_high_mul", "rounding_divide_by_pot",
    "multiply_by_quantized_multiplier", "requantize_scalar", "requantize", "layer_accumulators",
    "litert_fc_requantize_scalar", "litert_fc_requantize", "double_rounding_differs",
]

#: Bytes per channel record (``encode_bias``).
RECORD_BYTES = 10

_INT32_MIN, _INT32_MAX = -(1 << 31), (1 << 31) - 1


@dataclass(frozen=True)
class ChannelParams:
    """The decoded output-stage parameters of one OFM channel."""

    bias: int   #: signed 40-bit
    scale: int  #: unsigned 32-bit
    shift: int  #: unsigned 6-bit (0..63)

    def __post_init__(self) -> None:
        if not -(1 << 39) <= self.bias < (1 << 39):
            raise ValueError(f"bias must be a signed 40-bit value, not {self.bias!r}")
        if not 0 <= self.scale < (1 << 32):
            raise ValueError(f"scale must be an unsigned 32-bit value, not {self.scale!r}")
        if not 0 <= self.shift < 64:
            raise ValueError(f"shift must be in 0..63, not {self.shift!r}")


def record_word(bias: int, scale: int, shift: int) -> int:
    """The record as an 80-bit little-endian integer: bias [39:0], scale [71:40], shift [77:72]."""
    ChannelParams(int(bias), int(scale), int(shift))
    return (int(bias) & ((1 << 40) - 1)) | (int(scale) << 40) | (int(shift) << 72)


def encode_record(bias: int, scale: int, shift: int) -> bytes:
    """Vela's ``encode_bias``: 10 bytes, little-endian, top two bits zero."""
    return record_word(bias, scale, shift).to_bytes(RECORD_BYTES, "little")


def decode_record(record: bytes) -> ChannelParams:
    """Inverse of :func:`encode_record`. The two top bits are reserved and ignored."""
    if len(record) != RECORD_BYTES:
        raise ValueError(f"a record is {RECORD_BYTES} bytes, not {len(record)}")
    word = int.from_bytes(record, "little")
    bias = word & ((1 << 40) - 1)
    bias -= (bias >> 39) << 40
    return ChannelParams(bias, (word >> 40) & 0xFFFF_FFFF, (word >> 72) & 0x3F)


def decode_records(data: bytes, channels: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode a scale/bias stream into (bias, scale, shift) int64 arrays.

    ``channels`` defaults to ``len(data) // 10``; the stream is zero-padded to 16 bytes, so pass the OFM depth
    when it is known (a zero record decodes to a harmless bias 0 / scale 0).
    """
    if channels is None:
        channels = len(data) // RECORD_BYTES
    if len(data) < RECORD_BYTES * channels:
        raise ValueError(f"{len(data)} bytes hold fewer than {channels} records")
    recs = [decode_record(bytes(data[RECORD_BYTES * c:RECORD_BYTES * (c + 1)])) for c in range(channels)]
    return (np.array([r.bias for r in recs], dtype=np.int64), np.array([r.scale for r in recs], dtype=np.int64),
            np.array([r.shift for r in recs], dtype=np.int64))


def quantise_scale(real_scale: float) -> tuple[int, int]:
    """Vela's ``scaling.quantise_scale``: real multiplier -> (32-bit scale, 6-bit shift)."""
    q, e = math.frexp(real_scale)
    r = q * (1 << 31)
    scale = int(math.trunc(r + (-0.5 if r < 0 else 0.5)))  # numeric_util.round_away_zero
    shift = 31 - e
    if not 0 <= shift < 64:
        return 0, 16
    return scale, shift


# ---------------------------------------------------------------------------------------------------------------
# TFLite's integer code, literally (int32 in, int32 out)


def _wrap32(x: int) -> int:
    return ((x + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 ``a``, ``b``."""
    if a == b == _INT32_MIN:
        return _INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _trunc_div(ab + nudge, 1 << 31)


def _trunc_div(a: int, b: int) -> int:
    """C integer division (rounds toward zero)."""
    q = abs(a) // b
    return q if a >= 0 else -q


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp ``RoundingDivideByPOT``: round half away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLite ``MultiplyByQuantizedMultiplier`` (double rounding); ``shift`` is TFLite's (``31 - record shift``).

    ``x * 2**left_shift`` wraps like the int32 arithmetic it mirrors (undefined in C++; never hit by valid models).
    """
    left_shift = shift if shift > 0 else 0
    right_shift = -shift if shift < 0 else 0
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(_wrap32(x * (1 << left_shift)), multiplier), right_shift)


# ---------------------------------------------------------------------------------------------------------------
# The NPU's output stage


def requantize_scalar(acc: int, bias: int, scale: int, shift: int, ofm_zp: int, act_min: int, act_max: int) -> int:
    """One output value (see the module docstring); all arguments are Python ints."""
    p = (acc + bias) * scale
    if shift > 31:
        t = (p + (1 << 30)) >> 31
        r = shift - 31
        y = (t + (1 << (r - 1)) - (1 if t < 0 else 0)) >> r
    elif shift > 0:
        y = (p + (1 << (shift - 1))) >> shift
    else:
        y = p
    return _zero_point_and_clamp(y, ofm_zp, act_min, act_max)


def _zero_point_and_clamp(y: int, ofm_zp: int, act_min: int, act_max: int) -> int:
    lo = min(max(act_min, -128), 127)
    hi = min(max(act_max, -128), 127)
    return min(max(y + ofm_zp, lo), hi)


def _vectorised(scalar):
    """numpy-broadcasting, exact (Python-int) version of a 7-argument scalar output stage -> int8 array."""
    ufunc = np.frompyfunc(scalar, 7, 1)

    def vectorised(acc, bias, scale, shift, ofm_zp=0, act_min=-128, act_max=127) -> np.ndarray:
        args = [np.asarray(a, dtype=np.int64).astype(object)
                for a in (acc, bias, scale, shift, ofm_zp, act_min, act_max)]
        return np.asarray(ufunc(*args), dtype=np.int64).astype(np.int8)

    vectorised.__doc__ = f"Vectorised :func:`{scalar.__name__}` (numpy broadcasting; exact, via Python ints)."
    return vectorised


requantize = _vectorised(requantize_scalar)


# ---------------------------------------------------------------------------------------------------------------
# LiteRT's FULLY_CONNECTED (not what the NPU does; see the module docstring)


def litert_fc_requantize_scalar(acc: int, bias: int, scale: int, shift: int, ofm_zp: int, act_min: int,
                                act_max: int) -> int:
    """LiteRT's reference int8 FULLY_CONNECTED output stage: one rounding, half up (any ``shift``)."""
    p = (acc + bias) * scale
    y = (p + (1 << (shift - 1))) >> shift if shift > 0 else p
    return _zero_point_and_clamp(y, ofm_zp, act_min, act_max)


litert_fc_requantize = _vectorised(litert_fc_requantize_scalar)


def double_rounding_differs(v: int, scale: int, shift: int) -> bool:
    """Whether the NPU's (double-rounded) ``y`` for ``v = acc + bias`` differs from the single-rounded one.

    Only for ``shift > 31``, and then by exactly ``sign(v)`` (before the clamp), iff ``|p| = |v * scale|`` lies
    within ``2**30`` (half an LSB of the first rounding) below a half-integer multiple ``h`` of ``2**shift``: the first
    rounding lands exactly on ``h`` and the second rounds it away from zero. Positive ``v``: ``h - 2**30 <= |p| < h``
    (an exact tie rounds up in both); negative ``v``: ``h - 2**30 < |p| <= h`` (an exact tie rounds toward +inf in
    the single rounding, away from zero in the double).
    """
    if shift <= 31 or v == 0:
        return False
    a = abs(v * scale)
    h = ((a >> (shift - 1)) | 1) << (shift - 1)  # the smallest odd multiple of 2**(shift-1) that is >= a
    if v > 0:
        return a < h and h - a <= 1 << 30
    return a <= h and h - a < 1 << 30


# ---------------------------------------------------------------------------------------------------------------
# What feeds the output stage


def _same_pad_before(size: int, k: int, s: int) -> int:
    out = -(-size // s)
    return max((out - 1) * s + k - size, 0) // 2


def layer_accumulators(layer, x: np.ndarray) -> np.ndarray:
    """int64 accumulators of one ``tflite_builder.LayerParams`` layer for int8 input ``x`` (NHWC or [1, N]).

    ``acc[..., o] = sum (x - input_zero_point) * w`` over the kernel window (padding taps contribute 0: the NPU
    feeds them the zero point, TFLite skips them), channels last; shape = ``layer.output_shape``. No bias.
    """
    xz = np.asarray(x).astype(np.int64) - layer.input_zero_point
    w = layer.weights.astype(np.int64)
    spec = layer.spec
    if hasattr(spec, "units"):  # FullyConnected: weights OI
        return (xz.reshape(1, -1) @ w.T).reshape(layer.output_shape)
    _, oh, ow, _ = layer.output_shape
    _, ih, iw, ic = layer.input_shape
    (kh, kw), (sh, sw) = spec.kernel, spec.stride
    pt = pl = 0
    if spec.padding == "SAME":
        pt, pl = _same_pad_before(ih, kh, sh), _same_pad_before(iw, kw, sw)
    padded = np.zeros((ih + kh + oh * sh, iw + kw + ow * sw, ic), dtype=np.int64)
    padded[pt:pt + ih, pl:pl + iw] = xz.reshape(ih, iw, ic)
    depthwise = not hasattr(spec, "out_channels")  # weights 1HWC, else OHWI
    acc = np.zeros((oh, ow, ic if depthwise else w.shape[0]), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            win = padded[ky:ky + oh * sh:sh, kx:kx + ow * sw:sw][:oh, :ow]
            acc += win * w[0, ky, kx, :] if depthwise else win @ w[:, ky, kx, :].T
    return acc.reshape(layer.output_shape)
