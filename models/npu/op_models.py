"""Single-operator int8 .tflite models for the NPU's pooling and elementwise units, written without TensorFlow.

Each builder returns the model's bytes, which LiteRT runs with its reference kernels and Vela compiles for the
Ethos-U55. Quantisation parameters (scales, zero points) are drawn from ``numpy.random.default_rng(seed)`` within
the ranges TFLite's int8 kernels and Vela's supported-operator checks accept (AVERAGE_POOL_2D, MAX_POOL_2D, MINIMUM
and MAXIMUM keep the input's scale and zero point, as TFLite requires).

* :func:`pool`: MAX_POOL_2D / AVERAGE_POOL_2D (kernel, stride, SAME/VALID, fused NONE/RELU/RELU6)
* :func:`binary`: ADD, SUB, MUL, MINIMUM, MAXIMUM on two graph inputs (shapes may broadcast) or an input and a
  constant
* :func:`unary`: LEAKY_RELU, ABS, TANH, LOGISTIC, HARD_SWISH (and any other one-input op without options)
* :func:`mean`: MEAN over axes of an NHWC tensor
* :func:`softmax`: SOFTMAX over the last axis (int8 or int16; TFLite's fixed output quantisation)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ethosu.vela.tflite import (
    AddOptions,
    LeakyReluOptions,
    MulOptions,
    Pool2DOptions,
    ReducerOptions,
    SoftmaxOptions,
    SubOptions,
)
from ethosu.vela.tflite.BuiltinOperator import BuiltinOperator
from ethosu.vela.tflite.BuiltinOptions import BuiltinOptions
from ethosu.vela.tflite.Padding import Padding as TflPadding
from ethosu.vela.tflite.TensorType import TensorType

from .tflite_builder import _ACT_CODE, _out_dim, _Writer

__all__ = ["Quant", "pool", "binary", "unary", "mean", "softmax"]


@dataclass(frozen=True)
class Quant:
    """An int8 tensor's quantisation: real = scale * (q - zero_point)."""
    scale: float
    zero_point: int


def _rand_quant(rng: np.random.Generator, lo: float = 0.01, hi: float = 0.2, int16: bool = False,
                uint8: bool = False) -> Quant:
    """int8: a scale in [lo, hi) and a zero point in -20..20 (uint8: 108..148); int16 (symmetric, zero point 0):
    the scale / 128."""
    scale = float(np.float32(rng.uniform(lo, hi) / (128 if int16 else 1)))
    zp = int(rng.integers(-20, 21))
    return Quant(scale, 0 if int16 else zp + 128 if uint8 else zp)


def _ttype(int16: bool, uint8: bool = False) -> int:
    return TensorType.INT16 if int16 else TensorType.UINT8 if uint8 else TensorType.INT8


def _tensor(wr: _Writer, name: str, shape, q: Quant, buffer: int = 0, ttype: int = TensorType.INT8) -> int:
    return wr.tensor(name, tuple(int(s) for s in shape), ttype, buffer=buffer, scale=[q.scale],
                     zero_point=[q.zero_point])


def _model(data: bytes) -> bytes:
    return data


def pool(kind: str, input_shape: tuple[int, int, int], kernel: tuple[int, int], stride: tuple[int, int] = (1, 1),
         padding: str = "VALID", activation: str = "NONE", *, seed: int = 0, int16: bool = False,
         uint8: bool = False) -> bytes:
    """A MAX_POOL_2D (``kind`` "MAX") or AVERAGE_POOL_2D ("AVERAGE") model on an ``(H, W, C)`` input (int8, or
    int16 with ``int16``, uint8 with ``uint8``)."""
    codes = {"MAX": BuiltinOperator.MAX_POOL_2D, "AVERAGE": BuiltinOperator.AVERAGE_POOL_2D}
    if kind not in codes:
        raise ValueError(f"kind must be MAX or AVERAGE, not {kind!r}")
    rng = np.random.default_rng(seed)
    q = _rand_quant(rng, int16=int16, uint8=uint8)
    h, w, c = input_shape
    out = (1, _out_dim(h, kernel[0], stride[0], padding), _out_dim(w, kernel[1], stride[1], padding), c)
    wr = _Writer()
    x = _tensor(wr, "input", (1, h, w, c), q, ttype=_ttype(int16, uint8))
    y = _tensor(wr, "output", out, q, ttype=_ttype(int16, uint8))

    def options(b):
        Pool2DOptions.Start(b)
        Pool2DOptions.AddPadding(b, getattr(TflPadding, padding))
        Pool2DOptions.AddStrideH(b, stride[0])
        Pool2DOptions.AddStrideW(b, stride[1])
        Pool2DOptions.AddFilterHeight(b, kernel[0])
        Pool2DOptions.AddFilterWidth(b, kernel[1])
        Pool2DOptions.AddFusedActivationFunction(b, _ACT_CODE[activation])
        return Pool2DOptions.End(b)

    wr.operator(codes[kind], 2, [x], [y], BuiltinOptions.Pool2DOptions, options)
    return _model(wr.finish([x], [y], f"rampart op_models: {kind} pool {input_shape} k{kernel} s{stride} {padding}"))


_BINARY = {
    "ADD": (BuiltinOperator.ADD, BuiltinOptions.AddOptions, AddOptions),
    "SUB": (BuiltinOperator.SUB, BuiltinOptions.SubOptions, SubOptions),
    "MUL": (BuiltinOperator.MUL, BuiltinOptions.MulOptions, MulOptions),
    "MINIMUM": (BuiltinOperator.MINIMUM, 0, None),
    "MAXIMUM": (BuiltinOperator.MAXIMUM, 0, None),
}


def binary(op: str, shape1: tuple[int, ...], shape2: tuple[int, ...], activation: str = "NONE", *, seed: int = 0,
           constant2: bool = False, same_quant: bool = False, int16: bool = False, uint8: bool = False) -> bytes:
    """A two-operand elementwise model: output = op(in1, in2) with TFLite broadcasting.

    ``constant2``: the second operand is a constant tensor (random int8) instead of a second graph input.
    ``same_quant``: both inputs share one scale / zero point (MINIMUM / MAXIMUM require the output's too).
    ``int16``: int16 tensors (zero points 0); ``uint8``: uint8 tensors."""
    code, opt_type, opt_mod = _BINARY[op]
    rng = np.random.default_rng(seed)
    q1 = _rand_quant(rng, int16=int16, uint8=uint8)
    q2 = q1 if same_quant or op in ("MINIMUM", "MAXIMUM") else _rand_quant(rng, int16=int16, uint8=uint8)
    qo = q1 if op in ("MINIMUM", "MAXIMUM") else _rand_quant(rng, 0.02, 0.3, int16=int16, uint8=uint8)
    tt = _ttype(int16, uint8)
    out_shape = tuple(int(s) for s in np.broadcast_shapes(shape1, shape2))
    wr = _Writer()
    a = _tensor(wr, "input", shape1, q1, ttype=tt)
    if constant2:
        dtype = np.int16 if int16 else np.uint8 if uint8 else np.int8
        info = np.iinfo(dtype)
        data = rng.integers(info.min, info.max + 1, size=shape2, dtype=dtype)
        b = _tensor(wr, "constant", shape2, q2, buffer=wr.buffer(data.astype(data.dtype.newbyteorder("<")).tobytes()),
                    ttype=tt)
    else:
        b = _tensor(wr, "input2", shape2, q2, ttype=tt)
    y = _tensor(wr, "output", out_shape, qo, ttype=tt)

    def options(bld):
        if opt_mod is None:
            return 0
        opt_mod.Start(bld)
        opt_mod.AddFusedActivationFunction(bld, _ACT_CODE[activation])
        return opt_mod.End(bld)

    version = 4 if int16 and op == "MUL" else 3 if int16 else 2 if op in ("MINIMUM", "MAXIMUM") else 1
    wr.operator(code, version, [a, b], [y], opt_type, options)
    inputs = [a] if constant2 else [a, b]
    return _model(wr.finish(inputs, [y], f"rampart op_models: {op} {shape1} {shape2}"))


def unary(op: str, shape: tuple[int, ...], *, seed: int = 0, alpha: float = 0.2,
          out_quant: Quant | None = None, int16: bool = False) -> bytes:
    """A one-input model: LEAKY_RELU (``alpha``), ABS, TANH, LOGISTIC, HARD_SWISH, ... on an int8 tensor (int16 with
    ``int16``: zero points 0; ``out_quant`` None then means the input's quantisation)."""
    rng = np.random.default_rng(seed)
    q = _rand_quant(rng, 0.02, 0.1, int16=int16)
    qo = out_quant if out_quant is not None else q if int16 else _rand_quant(rng, 0.02, 0.1)
    wr = _Writer()
    x = _tensor(wr, "input", shape, q, ttype=_ttype(int16))
    y = _tensor(wr, "output", shape, qo, ttype=_ttype(int16))
    code = getattr(BuiltinOperator, op)
    if op == "LEAKY_RELU":
        def options(b):
            LeakyReluOptions.Start(b)
            LeakyReluOptions.AddAlpha(b, alpha)
            return LeakyReluOptions.End(b)
        wr.operator(code, 2, [x], [y], BuiltinOptions.LeakyReluOptions, options)
    else:
        wr.operator(code, 1, [x], [y], 0, lambda b: 0)
    return _model(wr.finish([x], [y], f"rampart op_models: {op} {shape}"))


def mean(shape: tuple[int, ...], axes: tuple[int, ...], keep_dims: bool = True, *, seed: int = 0,
         same_quant: bool = False) -> bytes:
    """A MEAN model over ``axes`` of an int8 tensor of ``shape``."""
    rng = np.random.default_rng(seed)
    q = _rand_quant(rng)
    qo = q if same_quant else _rand_quant(rng)
    out = tuple(1 if i in axes else int(s) for i, s in enumerate(shape)) if keep_dims else tuple(
        int(s) for i, s in enumerate(shape) if i not in axes)
    wr = _Writer()
    x = _tensor(wr, "input", shape, q)
    ax = wr.tensor("axes", (len(axes),), TensorType.INT32,
                   buffer=wr.buffer(np.asarray(axes, dtype="<i4").tobytes()))
    y = _tensor(wr, "output", out, qo)

    def options(b):
        ReducerOptions.Start(b)
        ReducerOptions.AddKeepDims(b, keep_dims)
        return ReducerOptions.End(b)

    wr.operator(BuiltinOperator.MEAN, 2, [x, ax], [y], BuiltinOptions.ReducerOptions, options)
    return _model(wr.finish([x], [y], f"rampart op_models: MEAN {shape} {axes}"))


def softmax(shape: tuple[int, ...], *, beta: float = 1.0, seed: int = 0, int16: bool = False,
            in_scale: float | None = None) -> bytes:
    """A SOFTMAX model over the last axis of ``shape``; the output is quantised as TFLite requires (int8: 1/256,
    zero point -128; int16: 1/32768, 0). ``in_scale``: the input scale (default: drawn from ``seed``)."""
    rng = np.random.default_rng(seed)
    q = _rand_quant(rng, 0.02, 0.2, int16=int16)
    if in_scale is not None:
        q = Quant(float(np.float32(in_scale)), q.zero_point)
    qo = Quant(1 / 32768, 0) if int16 else Quant(1 / 256, -128)
    wr = _Writer()
    x = _tensor(wr, "input", shape, q, ttype=_ttype(int16))
    y = _tensor(wr, "output", shape, qo, ttype=_ttype(int16))

    def options(b):
        SoftmaxOptions.Start(b)
        SoftmaxOptions.AddBeta(b, beta)
        return SoftmaxOptions.End(b)

    wr.operator(BuiltinOperator.SOFTMAX, 2 if int16 else 1, [x], [y], BuiltinOptions.SoftmaxOptions, options)
    return _model(wr.finish([x], [y], f"rampart op_models: SOFTMAX {shape}"))
