"""The NPU operator coverage matrix: one small single-operator model per TFLite operator that Vela 5.2 supports on
the Ethos-U55 (``ethosu/vela/tflite_supported_operators.py``: ``TFLiteSupportedOperators.supported_operators``), in
int8 and, where Vela takes it, int16 / uint8.

Each :class:`Row` names the operator, its precision and a builder ``seed -> .tflite bytes`` (written without
TensorFlow with :mod:`models.npu.tflite_builder`'s flatbuffer writer, quantisation drawn from the seed). Operators
that another work package owns carry ``owner`` (their result is reported but not this package's gap). Operators
this module does not build carry ``builder=None`` and a ``note`` saying why. ``benchmarks/npu_op_coverage.py``
compiles every row with Vela, runs it on the simulated NPU and compares it with LiteRT; ``tb/rtl/npu/
test_op_coverage.py`` runs the rows that pass.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from ethosu.vela.tflite import (
    ArgMaxOptions,
    ConcatenationOptions,
    Conv2DOptions,
    DepthwiseConv2DOptions,
    ExpandDimsOptions,
    MirrorPadOptions,
    PackOptions,
    PadOptions,
    QuantizeOptions,
    ReducerOptions,
    ReshapeOptions,
    ResizeBilinearOptions,
    ResizeNearestNeighborOptions,
    SliceOptions,
    SplitOptions,
    SplitVOptions,
    SquaredDifferenceOptions,
    SqueezeOptions,
    StridedSliceOptions,
    TransposeOptions,
    UnpackOptions,
)
from ethosu.vela.tflite.BuiltinOperator import BuiltinOperator
from ethosu.vela.tflite.BuiltinOptions import BuiltinOptions
from ethosu.vela.tflite.Padding import Padding
from ethosu.vela.tflite.TensorType import TensorType

from . import int16x8
from . import op_models as om
from .tflite_builder import (
    Conv2D,
    DepthwiseConv2D,
    FullyConnected,
    ModelSpec,
    _conv_options,
    _dw_options,
    _fc_options,
    _Writer,
    build_model,
)

__all__ = ["ROWS", "Row", "rows_by_name"]

_DT = {"int8": (TensorType.INT8, np.int8), "int16": (TensorType.INT16, np.int16),
       "uint8": (TensorType.UINT8, np.uint8)}


@dataclass(frozen=True)
class Row:
    """One row of the matrix: ``op`` (TFLite builtin name) at ``precision``; ``variant`` tells rows of one op apart."""

    op: str
    precision: str
    variant: str
    builder: Callable[[int], bytes] | None
    owner: str = ""      # another work package's operator, if any
    note: str = ""       # why a row is not built
    input_low: int | None = None   # smallest input value drawn (None: the dtype's minimum)

    @property
    def name(self) -> str:
        return f"{self.op.lower()}_{self.precision}_{self.variant}"


def _quant(rng: np.random.Generator, precision: str, lo: float = 0.02, hi: float = 0.1) -> om.Quant:
    return om._rand_quant(rng, lo, hi, int16=precision == "int16", uint8=precision == "uint8")


def _const_i32(wr: _Writer, name: str, values) -> int:
    arr = np.asarray(values, dtype="<i4")
    return wr.tensor(name, arr.shape, TensorType.INT32, buffer=wr.buffer(arr.tobytes()))


def _act(wr: _Writer, name: str, shape, q: om.Quant, precision: str) -> int:
    return wr.tensor(name, tuple(int(s) for s in shape), _DT[precision][0], scale=[q.scale], zero_point=[q.zero_point])


def _options(module, opt_type: int, **fields):
    """An options builder: ``module.Start``, ``module.Add<Field>(value)`` for each field (vectors are lists), End."""
    def build(b):
        vecs = {k: b.CreateNumpyVector(np.asarray(v, dtype=np.int32)) for k, v in fields.items() if isinstance(v, list)}
        module.Start(b)
        for k, v in fields.items():
            getattr(module, f"Add{k}")(b, vecs.get(k, v))
        return module.End(b)
    return opt_type, build


def _single(code: int, version: int, precision: str, in_shapes, out_shapes, consts=(), options=(0, lambda b: 0),
            *, seed: int, same_quant: bool = True, const_first: bool = False, desc: str = "") -> bytes:
    """A one-operator model: graph inputs of ``in_shapes`` (activations at ``precision``), int32 constant operands
    ``consts`` (after the inputs, or before them with ``const_first``), outputs of ``out_shapes``. ``same_quant``:
    every activation shares the first input's quantisation (memory-move ops need it)."""
    rng = np.random.default_rng(seed)
    q = _quant(rng, precision)
    wr = _Writer()
    ins = [_act(wr, f"input{i}", s, q, precision) for i, s in enumerate(in_shapes)]
    cs = [_const_i32(wr, f"const{i}", c) for i, c in enumerate(consts)]
    qo = q if same_quant else _quant(rng, precision)
    outs = [_act(wr, f"output{i}", s, qo, precision) for i, s in enumerate(out_shapes)]
    opt_type, opt_build = options
    wr.operator(code, version, cs + ins if const_first else ins + cs, outs, opt_type, opt_build)
    return wr.finish(ins, outs, f"rampart op_matrix: {desc}")


# --- builders per operator ------------------------------------------------------------------------------------------

def _conv(seed: int) -> bytes:
    return build_model(ModelSpec((6, 7, 5), (Conv2D(8, (3, 3), (1, 1), "SAME", "RELU"),), seed)).data


def _depthwise(seed: int) -> bytes:
    return build_model(ModelSpec((6, 7, 8), (DepthwiseConv2D((3, 3), (2, 2), "SAME"),), seed)).data


def _fc(seed: int) -> bytes:
    return build_model(ModelSpec((40,), (FullyConnected(12, "RELU6"),), seed)).data


def _conv16(seed: int) -> bytes:
    return int16x8.conv2d((6, 7, 5), 8, (3, 3), (1, 1), "SAME", "RELU", seed=seed)


def _depthwise16(seed: int) -> bytes:
    return int16x8.depthwise_conv2d((6, 7, 8), (3, 3), (2, 2), "SAME", seed=seed)


def _fc16(exact_scales: bool):
    def make(seed: int) -> bytes:
        return int16x8.fully_connected(40, 12, "RELU6", seed=seed, exact_scales=exact_scales)
    return make


def _mac_uint8(kind: str, ifm_zero_point: int | None = None):
    """A uint8 CONV_2D (3x3, RELU) / DEPTHWISE_CONV_2D (3x3, stride 2) / FULLY_CONNECTED (40 -> 12, RELU6): uint8
    activations and weights with per-tensor zero points (TFLite's legacy asymmetric scheme), int32 bias; the input's
    zero point random (108..148) or ``ifm_zero_point``."""
    def make(seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        q, qo = _quant(rng, "uint8"), _quant(rng, "uint8", 0.05, 0.2)
        if ifm_zero_point is not None:
            q = om.Quant(q.scale, ifm_zero_point)
        w_scale, w_zp = float(rng.uniform(0.002, 0.01)), int(rng.integers(108, 149))
        if kind == "conv":
            layer, in_shape, w_shape, out_shape = Conv2D(4, (3, 3), (1, 1), "SAME", "RELU"), (1, 5, 6, 8), \
                (4, 3, 3, 8), (1, 5, 6, 4)
            code, options = BuiltinOperator.CONV_2D, (BuiltinOptions.Conv2DOptions, _conv_options(layer))
        elif kind == "dw":
            layer, in_shape, w_shape, out_shape = DepthwiseConv2D((3, 3), (2, 2), "SAME"), (1, 6, 7, 8), \
                (1, 3, 3, 8), (1, 3, 4, 8)
            code, options = BuiltinOperator.DEPTHWISE_CONV_2D, (BuiltinOptions.DepthwiseConv2DOptions,
                                                               _dw_options(layer))
        else:
            layer, in_shape, w_shape, out_shape = FullyConnected(12, "RELU6"), (1, 40), (12, 40), (1, 12)
            code, options = BuiltinOperator.FULLY_CONNECTED, (BuiltinOptions.FullyConnectedOptions,
                                                             _fc_options(layer))
        wr = _Writer()
        x = _act(wr, "input", in_shape, q, "uint8")
        w = rng.integers(0, 256, size=w_shape, dtype=np.uint8)
        wt = wr.tensor("weights", w_shape, TensorType.UINT8, buffer=wr.buffer(w.tobytes()), scale=[w_scale],
                       zero_point=[w_zp])
        bias = rng.integers(-400, 400, size=w_shape[0] if kind != "dw" else w_shape[3]).astype("<i4")
        bt = wr.tensor("bias", bias.shape, TensorType.INT32, buffer=wr.buffer(bias.tobytes()),
                       scale=[q.scale * w_scale], zero_point=[0])
        y = _act(wr, "output", out_shape, qo, "uint8")
        wr.operator(code, 1, [x, wt, bt], [y], *options)
        return wr.finish([x], [y], f"rampart op_matrix: uint8 {kind}")
    return make


def _dilated(kind: str, dilation: int | tuple[int, int], kernel: tuple[int, int] = (3, 3),
             stride: tuple[int, int] = (1, 1), padding: str = "SAME", in_hw: tuple[int, int] = (9, 10)):
    """An int8 CONV_2D (8 -> 4 channels) / DEPTHWISE_CONV_2D on ``in_hw`` x 8 (default: 3x3, SAME, stride 1 on 9x10x8)
    dilated by ``dilation`` (one factor, or (H, W)); Vela: dilation 2 is the NPU's own KERNEL_STRIDE dilation, larger
    even ones that and a kernel with zeros, odd ones a kernel with zeros."""
    dh, dw_ = (dilation, dilation) if isinstance(dilation, int) else dilation

    def make(seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        q, qo = _quant(rng, "int8"), _quant(rng, "int8", 0.05, 0.2)
        conv = kind == "conv"
        w_shape, n = ((4, *kernel, 8), 4) if conv else ((1, *kernel, 8), 8)
        w_scales = rng.uniform(0.002, 0.01, size=n)
        wr = _Writer()
        x = _act(wr, "input", (1, *in_hw, 8), q, "int8")
        w = rng.integers(-127, 128, size=w_shape, dtype=np.int8)
        wt = wr.tensor("weights", w_shape, TensorType.INT8, buffer=wr.buffer(w.tobytes()), scale=w_scales,
                       zero_point=[0] * n, axis=0 if conv else 3)
        bias = rng.integers(-400, 400, size=n).astype("<i4")
        bt = wr.tensor("bias", (n,), TensorType.INT32, buffer=wr.buffer(bias.tobytes()), scale=q.scale * w_scales,
                       zero_point=[0] * n)
        out_hw = [(i + s - 1) // s if padding == "SAME" else (i - (k - 1) * d + s - 1) // s
                  for i, k, s, d in zip(in_hw, kernel, stride, (dh, dw_), strict=True)]
        y = _act(wr, "output", (1, *out_hw, n), qo, "int8")
        module = Conv2DOptions if conv else DepthwiseConv2DOptions

        def options(b):
            module.Start(b)
            module.AddPadding(b, Padding.SAME if padding == "SAME" else Padding.VALID)
            module.AddStrideH(b, stride[0])
            module.AddStrideW(b, stride[1])
            if not conv:
                module.AddDepthMultiplier(b, 1)
            module.AddDilationHFactor(b, dh)
            module.AddDilationWFactor(b, dw_)
            return module.End(b)
        code = BuiltinOperator.CONV_2D if conv else BuiltinOperator.DEPTHWISE_CONV_2D
        opt = BuiltinOptions.Conv2DOptions if conv else BuiltinOptions.DepthwiseConv2DOptions
        wr.operator(code, 2, [x, wt, bt], [y], opt, options)
        return wr.finish([x], [y], f"rampart op_matrix: {kind} dilation {dilation}")
    return make


def _pad(precision: str, mirror: bool = False):
    def make(seed: int) -> bytes:
        pads = [[0, 0], [1, 2], [2, 1], [0, 0]]
        if mirror:
            opts = _options(MirrorPadOptions, BuiltinOptions.MirrorPadOptions, Mode=0)
            return _single(BuiltinOperator.MIRROR_PAD, 2, precision, [(1, 5, 6, 7)], [(1, 8, 9, 7)], [pads], opts,
                           seed=seed, desc="MIRROR_PAD")
        return _single(BuiltinOperator.PAD, 2, precision, [(1, 5, 6, 7)], [(1, 8, 9, 7)], [pads],
                       _options(PadOptions, BuiltinOptions.PadOptions), seed=seed, desc="PAD")
    return make


def _concat(precision: str, axis: int):
    def make(seed: int) -> bytes:
        a = (1, 4, 5, 6)
        b = tuple(x + (3 if i == axis else 0) for i, x in enumerate(a))
        out = tuple(x + y if i == axis else x for i, (x, y) in enumerate(zip(a, b, strict=True)))
        opts = _options(ConcatenationOptions, BuiltinOptions.ConcatenationOptions, Axis=axis, FusedActivationFunction=0)
        return _single(BuiltinOperator.CONCATENATION, 1, precision, [a, b], [out], (), opts, seed=seed,
                       desc=f"CONCATENATION axis {axis}")
    return make


def _slice(precision: str):
    def make(seed: int) -> bytes:
        return _single(BuiltinOperator.SLICE, 1, precision, [(1, 6, 7, 8)], [(1, 3, 4, 5)],
                       [[0, 1, 2, 3], [1, 3, 4, 5]], _options(SliceOptions, BuiltinOptions.SliceOptions), seed=seed,
                       desc="SLICE")
    return make


def _strided_slice(precision: str):
    def make(seed: int) -> bytes:
        opts = _options(StridedSliceOptions, BuiltinOptions.StridedSliceOptions, BeginMask=0, EndMask=0)
        return _single(BuiltinOperator.STRIDED_SLICE, 1, precision, [(1, 8, 9, 6)], [(1, 3, 4, 4)],
                       [[0, 1, 1, 0], [1, 7, 9, 4], [1, 2, 2, 1]], opts, seed=seed, desc="STRIDED_SLICE")
    return make


def _split(precision: str):
    def make(seed: int) -> bytes:
        opts = _options(SplitOptions, BuiltinOptions.SplitOptions, NumSplits=2)
        return _single(BuiltinOperator.SPLIT, 1, precision, [(1, 4, 5, 12)], [(1, 4, 5, 6)] * 2, [[3]], opts,
                       seed=seed, const_first=True, desc="SPLIT")
    return make


def _split_v(precision: str):
    def make(seed: int) -> bytes:
        opts = _options(SplitVOptions, BuiltinOptions.SplitVOptions, NumSplits=2)
        return _single(BuiltinOperator.SPLIT_V, 1, precision, [(1, 6, 5, 4)], [(1, 2, 5, 4), (1, 4, 5, 4)],
                       [[2, 4], [1]], opts, seed=seed, desc="SPLIT_V")
    return make


def _pack(precision: str):
    def make(seed: int) -> bytes:
        opts = _options(PackOptions, BuiltinOptions.PackOptions, ValuesCount=2, Axis=1)
        return _single(BuiltinOperator.PACK, 1, precision, [(1, 5, 6), (1, 5, 6)], [(1, 2, 5, 6)], (), opts,
                       seed=seed, desc="PACK")
    return make


def _unpack(precision: str):
    def make(seed: int) -> bytes:
        opts = _options(UnpackOptions, BuiltinOptions.UnpackOptions, Num=3, Axis=1)
        return _single(BuiltinOperator.UNPACK, 1, precision, [(1, 3, 4, 5)], [(1, 4, 5)] * 3, (), opts,
                       seed=seed, desc="UNPACK")
    return make


def _reshape(precision: str):
    def make(seed: int) -> bytes:
        opts = _options(ReshapeOptions, BuiltinOptions.ReshapeOptions, NewShape=[1, 12, 10])
        return _single(BuiltinOperator.RESHAPE, 1, precision, [(1, 4, 5, 6)], [(1, 12, 10)], [[1, 12, 10]], opts,
                       seed=seed, desc="RESHAPE")
    return make


def _squeeze(precision: str):
    def make(seed: int) -> bytes:
        opts = _options(SqueezeOptions, BuiltinOptions.SqueezeOptions, SqueezeDims=[1])
        return _single(BuiltinOperator.SQUEEZE, 1, precision, [(1, 1, 5, 6)], [(1, 5, 6)], (), opts, seed=seed,
                       desc="SQUEEZE")
    return make


def _expand_dims(precision: str):
    def make(seed: int) -> bytes:
        return _single(BuiltinOperator.EXPAND_DIMS, 1, precision, [(1, 5, 6)], [(1, 5, 1, 6)], [[2]],
                       _options(ExpandDimsOptions, BuiltinOptions.ExpandDimsOptions), seed=seed, desc="EXPAND_DIMS")
    return make


def _transpose(precision: str):
    def make(seed: int) -> bytes:
        return _single(BuiltinOperator.TRANSPOSE, 1, precision, [(1, 4, 5, 6)], [(1, 5, 4, 6)], [[0, 2, 1, 3]],
                       _options(TransposeOptions, BuiltinOptions.TransposeOptions), seed=seed, desc="TRANSPOSE")
    return make


def _quantize(precision: str, out_precision: str):
    """QUANTIZE as a requantisation (``precision`` -> ``out_precision``, new scale / zero point)."""
    def make(seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        qi, qo = _quant(rng, precision), _quant(rng, out_precision, 0.03, 0.2)
        wr = _Writer()
        x = _act(wr, "input", (1, 4, 5, 6), qi, precision)
        y = _act(wr, "output", (1, 4, 5, 6), qo, out_precision)
        opt_type, build = _options(QuantizeOptions, BuiltinOptions.QuantizeOptions)
        wr.operator(BuiltinOperator.QUANTIZE, 2, [x], [y], opt_type, build)
        return wr.finish([x], [y], f"rampart op_matrix: QUANTIZE {precision}->{out_precision}")
    return make


def _unary(op: str, precision: str, **kw):
    def make(seed: int) -> bytes:
        if op == "RSQRT":   # inputs above the zero point only: LiteRT refuses x <= 0
            rng = np.random.default_rng(seed)
            q, qo = om.Quant(_quant(rng, precision).scale, -128), _quant(rng, precision)
            wr = _Writer()
            x, y = _act(wr, "input", (1, 4, 5, 6), q, precision), _act(wr, "output", (1, 4, 5, 6), qo, precision)
            wr.operator(BuiltinOperator.RSQRT, 2, [x], [y], 0, lambda b: 0)
            return wr.finish([x], [y], "rampart op_matrix: RSQRT")
        if op in ("RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "EXP"):
            return _single(getattr(BuiltinOperator, op), 1, precision, [(1, 4, 5, 6)], [(1, 4, 5, 6)], seed=seed,
                           same_quant=False, desc=op)
        return om.unary(op, (1, 4, 5, 6), seed=seed, int16=precision == "int16", **kw)
    return make


def _binary(op: str, precision: str, shape2=(1, 4, 5, 6), **kw):
    def make(seed: int) -> bytes:
        if op == "SQUARED_DIFFERENCE":
            return _single(BuiltinOperator.SQUARED_DIFFERENCE, 1, precision, [(1, 4, 5, 6), shape2], [(1, 4, 5, 6)],
                           options=_options(SquaredDifferenceOptions, BuiltinOptions.SquaredDifferenceOptions),
                           seed=seed, same_quant=False, desc=op)
        return om.binary(op, (1, 4, 5, 6), shape2, seed=seed, int16=precision == "int16",
                         uint8=precision == "uint8", **kw)
    return make


def _prelu(precision: str):
    def make(seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        q, qa, qo = _quant(rng, precision), _quant(rng, precision, 0.002, 0.01), _quant(rng, precision)
        wr = _Writer()
        x = _act(wr, "input", (1, 4, 5, 6), q, precision)
        alpha = rng.integers(-128, 128, size=(1, 1, 6), dtype=np.int8)
        a = wr.tensor("alpha", (1, 1, 6), TensorType.INT8, buffer=wr.buffer(alpha.tobytes()), scale=[qa.scale],
                      zero_point=[qa.zero_point])
        y = _act(wr, "output", (1, 4, 5, 6), qo, precision)
        wr.operator(BuiltinOperator.PRELU, 1, [x, a], [y], 0, lambda b: 0)
        return wr.finish([x], [y], "rampart op_matrix: PRELU")
    return make


def _arg_max(precision: str):
    def make(seed: int) -> bytes:
        rng = np.random.default_rng(seed)
        q = _quant(rng, precision)
        wr = _Writer()
        x = _act(wr, "input", (1, 4, 5, 6), q, precision)
        ax = _const_i32(wr, "axis", [3])
        y = wr.tensor("output", (1, 4, 5), TensorType.INT32)
        opt_type, build = _options(ArgMaxOptions, BuiltinOptions.ArgMaxOptions, OutputType=TensorType.INT32)
        wr.operator(BuiltinOperator.ARG_MAX, 1, [x, ax], [y], opt_type, build)
        return wr.finish([x], [y], "rampart op_matrix: ARG_MAX")
    return make


def _resize(op: str, precision: str):
    def make(seed: int) -> bytes:
        nearest = op == "RESIZE_NEAREST_NEIGHBOR"
        module = ResizeNearestNeighborOptions if nearest else ResizeBilinearOptions
        opt = BuiltinOptions.ResizeNearestNeighborOptions if nearest else BuiltinOptions.ResizeBilinearOptions
        opts = _options(module, opt, AlignCorners=False, HalfPixelCenters=False)
        return _single(getattr(BuiltinOperator, op), 1, precision, [(1, 4, 5, 6)], [(1, 8, 10, 6)], [[8, 10]],
                       opts, seed=seed, desc=op)
    return make


def _mean(precision: str, shape, axes, same_quant=False):
    def make(seed: int) -> bytes:
        if precision == "int8":
            return om.mean(shape, axes, True, seed=seed, same_quant=same_quant)
        out = tuple(1 if i in axes else d for i, d in enumerate(shape))
        opts = _options(ReducerOptions, BuiltinOptions.ReducerOptions, KeepDims=True)
        return _single(BuiltinOperator.MEAN, 2, precision, [shape], [out], [list(axes)], opts, seed=seed,
                       same_quant=same_quant, desc=f"MEAN {shape} {axes}")
    return make


def _pool(kind: str, precision: str, padding: str = "SAME"):
    def make(seed: int) -> bytes:
        return om.pool(kind, (7, 9, 8), (3, 3), (2, 2), padding, seed=seed, int16=precision == "int16",
                       uint8=precision == "uint8")
    return make


def _softmax(precision: str):
    def make(seed: int) -> bytes:
        return om.softmax((1, 2, 12), seed=seed, int16=precision == "int16")
    return make


def _rows() -> list[Row]:
    r: list[Row] = []
    P8, P16, PU8 = "int8", "int16", "uint8"
    r += [Row("CONV_2D", P8, "3x3_relu", _conv), Row("DEPTHWISE_CONV_2D", P8, "3x3_s2", _depthwise),
          Row("FULLY_CONNECTED", P8, "40x12_relu6", _fc)]
    r += [Row("CONV_2D", P16, "3x3_relu", _conv16), Row("DEPTHWISE_CONV_2D", P16, "3x3_s2", _depthwise16),
          Row("FULLY_CONNECTED", P16, "40x12_relu6", _fc16(False)),
          Row("FULLY_CONNECTED", P16, "40x12_relu6_exact_scales", _fc16(True))]
    r += [Row("CONV_2D", P8, f"3x3_dilation{d}", _dilated("conv", d)) for d in (2, 3)]
    r += [Row("DEPTHWISE_CONV_2D", P8, f"3x3_dilation{d}", _dilated("dw", d)) for d in (2, 3)]
    r += [Row("CONV_2D", PU8, "3x3_relu", _mac_uint8("conv")),
          Row("DEPTHWISE_CONV_2D", PU8, "3x3_s2", _mac_uint8("dw")),
          Row("FULLY_CONNECTED", PU8, "40x12_relu6", _mac_uint8("fc"))]
    for p in (P8, P16, PU8):
        r += [Row("MAX_POOL_2D", p, "3x3_s2_same", _pool("MAX", p)),
              Row("AVERAGE_POOL_2D", p, "3x3_s2_same", _pool("AVERAGE", p))]
    r += [Row("MEAN", P8, "hw_5x6x8", _mean(P8, (1, 5, 6, 8), (1, 2))),
          Row("MEAN", P8, "hw_same_quant_4x4x16", _mean(P8, (1, 4, 4, 16), (1, 2), same_quant=True)),
          Row("MEAN", P8, "w_3x7x5", _mean(P8, (1, 3, 7, 5), (2,))),
          Row("MEAN", P8, "c_1x4x10", _mean(P8, (1, 1, 4, 10), (3,))),
          Row("MEAN", P8, "hw_7x7x32", _mean(P8, (1, 7, 7, 32), (1, 2))),
          Row("MEAN", P8, "hw_100x8x4", _mean(P8, (1, 100, 8, 4), (1, 2))),       # reshaped to 1 x 800
          Row("MEAN", P8, "hw_80x64x2", _mean(P8, (1, 80, 64, 2), (1, 2))),       # two depthwise sums + ADD
          Row("MEAN", P16, "hw_5x6x8", _mean(P16, (1, 5, 6, 8), (1, 2)))]
    for p in (P8, P16, PU8):
        r += [Row("ADD", p, "tensor", _binary("ADD", p)), Row("SUB", p, "bcast_c", _binary("SUB", p, (1, 1, 1, 6))),
              Row("MUL", p, "tensor", _binary("MUL", p))]
    for p in (P8, P16, PU8):
        r += [Row("MINIMUM", p, "tensor", _binary("MINIMUM", p)),
              Row("MAXIMUM", p, "bcast_hw", _binary("MAXIMUM", p, (1, 1, 5, 6))),
              Row("MINIMUM", p, "scalar", _binary("MINIMUM", p, (1, 1, 1, 1), constant2=True))]
    r += [Row("ADD", P8, "scalar_const", _binary("ADD", P8, (1, 1, 1, 1), constant2=True)),
          Row("SQUARED_DIFFERENCE", P8, "tensor", _binary("SQUARED_DIFFERENCE", P8))]
    for p in (P8, P16):
        r += [Row("ABS", p, "4x5x6", _unary("ABS", p)), Row("LEAKY_RELU", p, "a0.2", _unary("LEAKY_RELU", p)),
              Row("RELU", p, "4x5x6", _unary("RELU", p)), Row("RELU6", p, "4x5x6", _unary("RELU6", p)),
              Row("RELU_N1_TO_1", p, "4x5x6", _unary("RELU_N1_TO_1", p)),
              Row("RELU_0_TO_1", p, "4x5x6", _unary("RELU_0_TO_1", p))]
    r += [Row("PRELU", P8, "alpha_c", _prelu(P8)),
          Row("TANH", P8, "4x5x6", _unary("TANH", P8, out_quant=om.Quant(1 / 128, 0))),
          Row("LOGISTIC", P8, "4x5x6", _unary("LOGISTIC", P8, out_quant=om.Quant(1 / 256, -128))),
          Row("TANH", P16, "4x5x6", _unary("TANH", P16, out_quant=om.Quant(1 / 32768, 0))),
          Row("LOGISTIC", P16, "4x5x6", _unary("LOGISTIC", P16, out_quant=om.Quant(1 / 32768, 0))),
          Row("HARD_SWISH", P8, "4x5x6", _unary("HARD_SWISH", P8)),
          Row("EXP", P8, "4x5x6", _unary("EXP", P8)), Row("RSQRT", P8, "4x5x6", _unary("RSQRT", P8), input_low=-127),
          Row("SOFTMAX", P8, "2x12", _softmax(P8)), Row("SOFTMAX", P16, "2x12", _softmax(P16))]
    r += [Row("QUANTIZE", P8, "to_int8", _quantize(P8, P8)), Row("QUANTIZE", P16, "to_int16", _quantize(P16, P16)),
          Row("QUANTIZE", P8, "to_int16", _quantize(P8, P16)), Row("QUANTIZE", P16, "to_int8", _quantize(P16, P8)),
          Row("QUANTIZE", PU8, "to_int8", _quantize(PU8, P8)), Row("QUANTIZE", P8, "to_uint8", _quantize(P8, PU8))]
    for p in (P8, P16, PU8):
        r += [Row("PAD", p, "hw", _pad(p)), Row("MIRROR_PAD", p, "reflect_hw", _pad(p, mirror=True)),
              Row("CONCATENATION", p, "axis3", _concat(p, 3)), Row("CONCATENATION", p, "axis1", _concat(p, 1)),
              Row("SLICE", p, "4d", _slice(p)), Row("STRIDED_SLICE", p, "s2", _strided_slice(p)),
              Row("SPLIT", p, "c2", _split(p)), Row("SPLIT_V", p, "h2_4", _split_v(p)),
              Row("PACK", p, "axis1", _pack(p)), Row("UNPACK", p, "axis1", _unpack(p)),
              Row("RESHAPE", p, "4x5x6_12x10", _reshape(p)), Row("SQUEEZE", p, "dim1", _squeeze(p)),
              Row("EXPAND_DIMS", p, "axis2", _expand_dims(p)), Row("TRANSPOSE", p, "hw", _transpose(p))]
    r += [Row("ARG_MAX", P8, "c", _arg_max(P8))]
    r += [Row("RESIZE_NEAREST_NEIGHBOR", P8, "2x", _resize("RESIZE_NEAREST_NEIGHBOR", P8)),
          Row("RESIZE_BILINEAR", P8, "2x", _resize("RESIZE_BILINEAR", P8))]   # a 2x2 AVERAGE on a NEAREST-upscaled IFM
    r += [Row("TRANSPOSE_CONV", P8, "-", None, note="8 models in tb/rtl/npu/test_resample.py instead"),
          Row("UNIDIRECTIONAL_SEQUENCE_LSTM", P16, "3x8_8", lambda seed: int16x8.lstm(seed=seed)),
          Row("SHAPE", "int32", "-", None, note="a constant once shapes are static: no NPU op")]
    return r


ROWS: tuple[Row, ...] = tuple(_rows())


def rows_by_name() -> dict[str, Row]:
    return {row.name: row for row in ROWS}
