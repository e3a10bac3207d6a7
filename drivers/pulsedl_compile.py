"""The PulseDL-II accelerator's "compiler": a pulse-CNN .tflite -> layer descriptors, quantisation table and kernel
register images (formats in :mod:`rtl.pulsedl.config`).

Accepted graphs are the PulseDL contract's subset (``/work/notes`` pulsedl_contract): input ``[1, 1, W, 1]``;
CONV_2D with a 1 x K kernel, stride 1-255 along W, VALID or SAME padding, fused NONE / RELU / RELU6, per-channel
symmetric int8 weights; MAX_POOL_2D / AVERAGE_POOL_2D with a 1 x k window (k <= 8); RESHAPE (free: activations are
stored ``[w][c]``); FULLY_CONNECTED (fused NONE / RELU / RELU6). Activations int8 (TFLite's int8 scheme) or int16
with int8 weights (TFLite's 16x8 scheme). Anything else raises :class:`CompileError` naming the construct.

Requantisation parameters follow what LiteRT's reference kernels (``OpResolverType.BUILTIN_REF``) compute, so the
accelerator is bit-exact with them: int8 CONV_2D uses TFLite's double rounding (SaturatingRoundingDoublingHighMul +
RoundingDivideByPOT, descriptor mode 0); int8 FULLY_CONNECTED a single rounding with the full 31-bit multiplier
(measured in models/npu/requant.py); the 16x8 kernels MultiplyByQuantizedMultiplier(int64): a single rounding with
the multiplier reduced to 16 bits for CONV_2D, the full one for FULLY_CONNECTED (mode 1 for all three; measured
against LiteRT layer by layer).

:func:`execute` runs the compiled images the way the sequencer does (numpy): a check of the compiler alone.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from base import RampartError
from rtl.pulsedl.config import ACT_WORDS, LINE_BUFFER_DEPTH, MAX_LAYERS, QUANT_CHANNELS, PulseDlConfig

__all__ = ["CompileError", "CompiledNet", "compile_tflite", "execute", "quantize_multiplier"]

OP_END, OP_CONV, OP_MAXPOOL, OP_AVGPOOL = 0, 1, 2, 3


class CompileError(RampartError):
    """The model is outside the accelerator's op subset or does not fit its buffers."""


@dataclass
class Layer:
    op: int
    single_rounding: bool
    src: int
    dst: int
    in_w: int
    in_c: int
    out_w: int
    out_c: int
    k: int = 1
    stride: int = 1
    pad: int = 0
    row_base: int = 0
    quant_base: int = 0
    in_offset: int = 0
    act_min: int = -128
    act_max: int = 127
    out_zp: int = 0
    weights: np.ndarray | None = None     # (out_c, k * in_c) int8
    bias: np.ndarray | None = None        # (out_c,) int64
    mult: np.ndarray | None = None        # (out_c,)
    shift: np.ndarray | None = None       # (out_c,) mode 0: TFLite's shift; mode 1: right shift

    def words(self) -> list[int]:
        w0 = self.op | self.single_rounding << 4 | self.src << 5 | self.dst << 6
        return [w0, self.in_w | self.in_c << 16, self.out_w | self.out_c << 16,
                self.k | self.stride << 8 | self.pad << 16, self.row_base | self.quant_base << 16,
                self.in_offset & 0xFFFF_FFFF, (self.act_min & 0xFFFF) | (self.act_max & 0xFFFF) << 16,
                self.out_zp & 0xFFFF_FFFF]


@dataclass
class CompiledNet:
    """Images for the accelerator of ``config`` plus the model's input / output description."""

    config: PulseDlConfig
    layers: list[Layer]
    descriptors: np.ndarray               # uint32, 8 words per layer, END included
    quant: np.ndarray                     # uint32, 4 words per channel
    kernels: list[np.ndarray]             # per PE: uint64 rows (accel_aus bytes each)
    input_len: int
    input_dtype: np.dtype
    input_quant: tuple[float, int]
    output_bank: int
    output_count: int
    output_dtype: np.dtype
    output_quant: tuple[float, int]
    op_names: list[str] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(lay.out_w * lay.out_c * lay.k * lay.in_c for lay in self.layers if lay.op == OP_CONV)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: (q in [2^30, 2^31), e) with real ~= q * 2^(e - 31)."""
    if real == 0.0:
        return 0, 0
    frac, e = math.frexp(real)
    q = round(frac * (1 << 31))     # TfLiteRound: half away from zero (frac > 0)
    if q == 1 << 31:
        q //= 2
        e += 1
    if e < -31:
        return 0, 0
    return q, e


def _round_away(x: float) -> int:
    return int(math.floor(abs(x) + 0.5)) * (1 if x >= 0 else -1)


def _activation_range(code: int, scale: float, zp: int, dtype) -> tuple[int, int]:
    info = np.iinfo(dtype)
    lo, hi = int(info.min), int(info.max)

    def quant(f: float) -> int:
        return zp + _round_away(float(np.float32(f) / np.float32(scale)))

    if code == 1:                     # RELU
        return max(lo, quant(0.0)), hi
    if code == 3:                     # RELU6
        return max(lo, quant(0.0)), min(hi, quant(6.0))
    if code != 0:
        raise CompileError(f"fused activation code {code} is not supported (NONE, RELU, RELU6)")
    return lo, hi


class _Graph:
    """The pieces of the flatbuffer the compiler reads."""

    def __init__(self, data: bytes):
        from ethosu.vela.tflite.BuiltinOperator import BuiltinOperator
        from ethosu.vela.tflite.Model import Model

        try:
            self.model = Model.GetRootAsModel(data, 0)
            if self.model.SubgraphsLength() != 1:
                raise CompileError(f"the model has {self.model.SubgraphsLength()} subgraphs; one is supported")
            self.sg = self.model.Subgraphs(0)
        except CompileError:
            raise
        except Exception as e:     # a flatbuffer that does not parse fails in many ways
            raise CompileError(f"not a readable .tflite flatbuffer ({type(e).__name__})") from None
        self.names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}

    def tensor(self, i: int):
        return self.sg.Tensors(i)

    def shape(self, i: int) -> tuple[int, ...]:
        return tuple(int(x) for x in self.tensor(i).ShapeAsNumpy())

    def dtype(self, i: int):
        from ethosu.vela.tflite.TensorType import TensorType
        types = {TensorType.INT8: np.int8, TensorType.INT16: np.int16, TensorType.INT32: np.int32,
                 TensorType.INT64: np.int64}
        t = self.tensor(i).Type()
        if t not in types:
            raise CompileError(f"tensor '{self.tensor(i).Name().decode()}' has an unsupported type ({t})")
        return np.dtype(types[t])

    def quant(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        q = self.tensor(i).Quantization()
        if q is None or q.ScaleLength() == 0:
            raise CompileError(f"tensor '{self.tensor(i).Name().decode()}' is not quantised")
        return q.ScaleAsNumpy().astype(np.float32), q.ZeroPointAsNumpy().astype(np.int64)

    def data(self, i: int) -> np.ndarray:
        buf = self.model.Buffers(self.tensor(i).Buffer())
        raw = buf.DataAsNumpy() if buf.DataLength() else np.zeros(0, np.uint8)
        return np.frombuffer(bytes(raw), dtype=self.dtype(i)).reshape(self.shape(i))

    def ops(self):
        for i in range(self.sg.OperatorsLength()):
            op = self.sg.Operators(i)
            code = self.model.OperatorCodes(op.OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            yield self.names.get(builtin, str(builtin)), op


def _options(op, cls):
    table = op.BuiltinOptions()
    if table is None:
        raise CompileError("operator without its options table")
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _padding(in_w: int, k: int, s: int, same: bool) -> tuple[int, int]:
    if same:
        out = -(-in_w // s)
        return out, max((out - 1) * s + k - in_w, 0) // 2
    return (in_w - k + s) // s, 0


def compile_tflite(data: bytes, config: PulseDlConfig | None = None) -> CompiledNet:
    """Compile ``data`` (a .tflite flatbuffer) for the accelerator of ``config`` (default preset)."""
    from ethosu.vela.tflite.Conv2DOptions import Conv2DOptions
    from ethosu.vela.tflite.FullyConnectedOptions import FullyConnectedOptions
    from ethosu.vela.tflite.Padding import Padding
    from ethosu.vela.tflite.Pool2DOptions import Pool2DOptions

    cfg = config or PulseDlConfig()
    g = _Graph(data)
    if g.sg.InputsLength() != 1 or g.sg.OutputsLength() != 1:
        raise CompileError("the model must have one input and one output")
    x_t = g.sg.Inputs(0)
    in_shape = g.shape(x_t)
    if len(in_shape) != 4 or in_shape[0] != 1 or in_shape[1] != 1 or in_shape[3] != 1:
        raise CompileError(f"input shape must be [1, 1, W, 1], not {list(in_shape)}")
    dtype = g.dtype(x_t)
    if dtype not in (np.int8, np.int16):
        raise CompileError(f"input type {dtype} is not supported (int8 or int16 activations)")
    wide = dtype == np.int16
    in_scale, in_zp = g.quant(x_t)
    w_now, c_now, cur, bank = in_shape[2], 1, x_t, 0
    layers: list[Layer] = []
    op_names: list[str] = []
    row_next, quant_next = 0, 0
    for name, op in g.ops():
        ins = [op.Inputs(i) for i in range(op.InputsLength())]
        out = op.Outputs(0)
        if ins[0] != cur:
            raise CompileError(f"{name}: the graph must be a chain (each op reading the previous op's output)")
        if g.dtype(out) != dtype:
            raise CompileError(f"{name}: output type {g.dtype(out)} differs from the input's {dtype}")
        op_names.append(name)
        if name == "RESHAPE":
            shape = g.shape(out)
            if int(np.prod(shape)) != w_now * c_now:
                raise CompileError(f"RESHAPE to {list(shape)} changes the element count")
            w_now, c_now, cur = 1, w_now * c_now, out
            continue
        s_in, zp_in = g.quant(cur)
        s_out, zp_out = g.quant(out)
        base = dict(src=bank, dst=1 - bank, in_w=w_now, in_c=c_now, single_rounding=bool(wide),
                    in_offset=0 if wide else -int(zp_in[0]), out_zp=int(zp_out[0]))
        if name in ("CONV_2D", "FULLY_CONNECTED"):
            weights_t = ins[1]
            wq = g.data(weights_t)
            if g.dtype(weights_t) != np.int8:
                raise CompileError(f"{name}: weights must be int8")
            ws, wzp = g.quant(weights_t)
            if np.any(wzp != 0):
                raise CompileError(f"{name}: weights must be symmetric (zero point 0)")
            if name == "CONV_2D":
                o = _options(op, Conv2DOptions)
                if wq.shape[1] != 1 or wq.shape[3] != c_now:
                    raise CompileError(f"CONV_2D weights {list(wq.shape)} are not 1 x K over {c_now} channels")
                if o.StrideH() not in (0, 1) or o.DilationWFactor() not in (0, 1) or o.DilationHFactor() not in (0, 1):
                    raise CompileError("CONV_2D: only stride along W and no dilation are supported")
                k, s = wq.shape[2], max(o.StrideW(), 1)
                ow, pad = _padding(w_now, k, s, o.Padding() == Padding.SAME)
                act = o.FusedActivationFunction()
            else:
                o = _options(op, FullyConnectedOptions)
                if wq.shape[1] != w_now * c_now:
                    raise CompileError(f"FULLY_CONNECTED weights {list(wq.shape)} do not match {w_now * c_now} inputs")
                k, s, ow, pad = 1, 1, 1, 0
                base.update(in_w=1, in_c=w_now * c_now)
                act = o.FusedActivationFunction()
            n_out = wq.shape[0]
            if ow != g.shape(out)[2] if name == "CONV_2D" else False:
                raise CompileError(f"CONV_2D output width {g.shape(out)[2]} differs from the computed {ow}")
            bias = g.data(ins[2]).astype(np.int64) if len(ins) > 2 and ins[2] >= 0 else np.zeros(n_out, np.int64)
            w_scales = np.broadcast_to(ws, (n_out,))
            mult, shift = _requant_params(name, wide, float(s_in[0]), w_scales, float(s_out[0]))
            if np.any(np.abs(bias) >= 1 << 47):
                raise CompileError(f"{name}: a bias does not fit the accelerator's 48 bits")
            lo, hi = _activation_range(act, float(s_out[0]), int(zp_out[0]), dtype)
            lay = Layer(op=OP_CONV, out_w=ow, out_c=n_out, k=k, stride=s, pad=pad, act_min=lo, act_max=hi,
                        weights=wq.reshape(n_out, -1), bias=bias, mult=mult, shift=shift,
                        row_base=row_next, quant_base=quant_next, **base)
            if name == "FULLY_CONNECTED":
                lay.single_rounding = True
            rows = -(-lay.k * lay.in_c // cfg.accel_aus)
            row_next += rows * -(-n_out // cfg.accel_pes)
            quant_next += n_out
        elif name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
            o = _options(op, Pool2DOptions)
            k, s = o.FilterWidth(), max(o.StrideW(), 1)
            if o.FilterHeight() != 1 or k > 8:
                raise CompileError(f"{name}: the window must be 1 x k with k <= 8")
            if (s_in[0], zp_in[0]) != (s_out[0], zp_out[0]):
                raise CompileError(f"{name}: input and output quantisation differ")
            ow, pad = _padding(w_now, k, s, o.Padding() == Padding.SAME)
            lo, hi = _activation_range(o.FusedActivationFunction(), float(s_out[0]), int(zp_out[0]), dtype)
            lay = Layer(op=OP_MAXPOOL if name == "MAX_POOL_2D" else OP_AVGPOOL, out_w=ow, out_c=c_now, k=k,
                        stride=s, pad=pad, act_min=lo, act_max=hi, **base)
        else:
            raise CompileError(f"operator {name} is not supported (CONV_2D, MAX_POOL_2D, AVERAGE_POOL_2D, RESHAPE, "
                               f"FULLY_CONNECTED)")
        layers.append(lay)
        w_now, c_now, cur, bank = lay.out_w, lay.out_c, out, lay.dst
    if cur != g.sg.Outputs(0):
        raise CompileError("the last operator's output is not the graph output")
    _check_limits(layers, cfg, row_next, quant_next)
    out_scale, out_zp = g.quant(cur)
    return CompiledNet(config=cfg, layers=layers, descriptors=_descriptor_image(layers),
                       quant=_quant_image(layers), kernels=_kernel_images(layers, cfg), input_len=in_shape[2],
                       input_dtype=dtype, input_quant=(float(in_scale[0]), int(in_zp[0])), output_bank=bank,
                       output_count=w_now * c_now, output_dtype=dtype, output_quant=(float(out_scale[0]),
                                                                                     int(out_zp[0])),
                       op_names=op_names)


def _requant_params(name: str, wide: bool, s_in: float, w_scales: np.ndarray, s_out: float):
    mult, shift = [], []
    for ws in w_scales:
        real = float(np.float32(s_in * np.float32(ws))) / s_out if name == "FULLY_CONNECTED" and not wide \
            else s_in * float(ws) / s_out
        q, e = quantize_multiplier(real)
        if e > 7:
            raise CompileError(f"{name}: a rescale factor {real:.3g} is too large")
        if name == "FULLY_CONNECTED":   # LiteRT's reference FC (int8 and 16x8): one rounding, 31-bit multiplier
            mult.append(q)
            shift.append(31 - e)
        elif wide:                      # MultiplyByQuantizedMultiplier(int64): 16-bit multiplier, one rounding
            q = (q + (1 << 15)) >> 16 if q < 0x7FFF0000 else 0x7FFF
            mult.append(q)
            shift.append(15 - e)
        else:
            mult.append(q)
            shift.append(e)
    return np.asarray(mult, np.int64), np.asarray(shift, np.int64)


def _check_limits(layers: list[Layer], cfg: PulseDlConfig, rows: int, channels: int):
    if len(layers) + 1 > MAX_LAYERS:
        raise CompileError(f"{len(layers)} layers; the descriptor table holds {MAX_LAYERS - 1} and END")
    for i, lay in enumerate(layers):
        if lay.in_w * lay.in_c > ACT_WORDS or lay.out_w * lay.out_c > ACT_WORDS:
            raise CompileError(f"layer {i}: more than {ACT_WORDS} activations")
        if lay.op == OP_CONV and lay.k * lay.in_c > LINE_BUFFER_DEPTH:
            raise CompileError(f"layer {i}: window k * in_c = {lay.k * lay.in_c} > {LINE_BUFFER_DEPTH}")
        if lay.op == OP_CONV and lay.single_rounding and np.any(lay.shift < 1):
            raise CompileError(f"layer {i}: a right shift < 1 (rescale factor too large)")
    if rows > cfg.accel_kernel_rows:
        raise CompileError(f"the weights need {rows} kernel rows per PE; the config has {cfg.accel_kernel_rows}")
    if channels > QUANT_CHANNELS:
        raise CompileError(f"{channels} output channels; the quantisation table holds {QUANT_CHANNELS}")


def _descriptor_image(layers: list[Layer]) -> np.ndarray:
    words = [w for lay in layers for w in lay.words()] + [OP_END] + [0] * 7
    return np.asarray(words, dtype=np.uint32)


def _quant_image(layers: list[Layer]) -> np.ndarray:
    out = []
    for lay in layers:
        if lay.op != OP_CONV:
            continue
        for c in range(lay.out_c):
            b = int(lay.bias[c])
            out += [b & 0xFFFF_FFFF, (b >> 32) & 0xFFFF_FFFF, int(lay.mult[c]), int(lay.shift[c]) & 0xFFFF_FFFF]
    return np.asarray(out, dtype=np.uint32)


def _kernel_images(layers: list[Layer], cfg: PulseDlConfig) -> list[np.ndarray]:
    """PE ``p`` holds output channels ``p, p + P, ...`` of each layer, each as ``ceil(k * in_c / A)`` rows."""
    a, npe = cfg.accel_aus, cfg.accel_pes
    images = [np.zeros(cfg.accel_kernel_rows, np.uint64) for _ in range(npe)]
    for lay in layers:
        if lay.op != OP_CONV:
            continue
        taps = lay.k * lay.in_c
        rows = -(-taps // a)
        padded = np.zeros((lay.out_c, rows * a), np.uint8)
        padded[:, :taps] = lay.weights.view(np.uint8)
        packed = padded.reshape(lay.out_c, rows, a).astype(np.uint64)
        row_words = sum(packed[:, :, i] << np.uint64(8 * i) for i in range(a))
        for oc in range(lay.out_c):
            group, pe = divmod(oc, npe)
            first = lay.row_base + group * rows
            images[pe][first:first + rows] = row_words[oc]
    return images


# ---------------------------------------------------------------------------------------------------------------
# the sequencer's arithmetic in numpy (checks the compiler without the RTL)


def _srdhm(a: int, b: int) -> int:
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    return v >> 31 if v >= 0 else -((-v) >> 31)


def _rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    return (x >> e) + ((x & mask) > (mask >> 1) + (x < 0))


def _wrap32(x: int) -> int:
    return ((x + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)


def requantize(total: int, mult: int, shift: int, single: bool) -> int:
    """One accumulator (bias included) through the requantiser (before the zero point and clamp)."""
    if single:
        return _wrap32((total * mult + (1 << (shift - 1))) >> shift)
    x = _wrap32(_wrap32(total) << max(shift, 0))
    return _rdbpot(_srdhm(x, mult), max(-shift, 0))


def execute(net: CompiledNet, window: np.ndarray) -> np.ndarray:
    """What the accelerator computes for one input window (a numpy model of the sequencer's layer loops)."""
    banks = [np.zeros(ACT_WORDS, np.int64), np.zeros(ACT_WORDS, np.int64)]
    banks[0][:net.input_len] = np.asarray(window, np.int64)
    for lay in net.layers:
        x = banks[lay.src][:lay.in_w * lay.in_c].reshape(lay.in_w, lay.in_c)
        out = np.zeros((lay.out_w, lay.out_c), np.int64)
        for ow in range(lay.out_w):
            lo = ow * lay.stride - lay.pad
            idx = [w for w in range(lo, lo + lay.k) if 0 <= w < lay.in_w]
            if lay.op == OP_CONV:
                window_ops = np.zeros((lay.k, lay.in_c), np.int64)
                for w in idx:
                    window_ops[w - lo] = x[w] + lay.in_offset
                acc = lay.weights.astype(np.int64) @ window_ops.ravel()
                for oc in range(lay.out_c):
                    out[ow, oc] = requantize(int(acc[oc] + lay.bias[oc]), int(lay.mult[oc]), int(lay.shift[oc]),
                                             lay.single_rounding) + lay.out_zp
            elif lay.op == OP_MAXPOOL:
                out[ow] = x[idx].max(axis=0)
            else:
                total, n = x[idx].sum(axis=0), len(idx)
                out[ow] = np.where(total > 0, (total + n // 2) // n, -((-total + n // 2) // n))
        banks[lay.dst][:out.size] = np.clip(out, lay.act_min, lay.act_max).ravel()
    return banks[net.output_bank][:net.output_count].astype(net.output_dtype)
