"""Write small int8-quantised .tflite models without TensorFlow.

The models are built with the ``flatbuffers`` builder and the TFLite schema classes that Vela ships
(``ethosu/vela/tflite/*.py``, generated from TFLite's ``schema.fbs``). Supported layers:

* ``Conv2D``            CONV_2D, kernel 1..7 (any size is accepted), stride 1..4, SAME/VALID, fused NONE/RELU/RELU6
* ``DepthwiseConv2D``   DEPTHWISE_CONV_2D with depth multiplier 1
* ``FullyConnected``    FULLY_CONNECTED (a RESHAPE to ``[1, N]`` is inserted when the input is not already 2-D)

Quantisation follows the TFLite int8 scheme: int8 activations with a per-tensor scale and zero point,
int8 weights quantised per output channel (zero point 0; axis 0 for CONV_2D/FULLY_CONNECTED weights in OHWI /
OI, axis 3 for DEPTHWISE_CONV_2D weights in 1HWC), int32 bias with scale ``input_scale * weight_scale[c]``.

A model is described by a frozen :class:`ModelSpec` (input shape, a tuple of layer specs, a seed). All weights,
biases and quantisation parameters that the spec leaves open are drawn from ``numpy.random.default_rng(seed)``, so a
spec fully determines the model bytes. :func:`random_model_spec` draws random valid specs from a caller's Generator.
Trained models instead pass their own numbers: :func:`quantize_parameters` turns trained float weights and biases
plus calibrated activation ranges into :class:`LayerParams` (post-training quantisation), and
``build_model(spec, params)`` serialises them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import flatbuffers
import numpy as np
from ethosu.vela.tflite import (
    Buffer,
    Conv2DOptions,
    DepthwiseConv2DOptions,
    FullyConnectedOptions,
    Model,
    Operator,
    OperatorCode,
    QuantizationParameters,
    ReshapeOptions,
    SubGraph,
    Tensor,
)
from ethosu.vela.tflite.ActivationFunctionType import ActivationFunctionType
from ethosu.vela.tflite.BuiltinOperator import BuiltinOperator
from ethosu.vela.tflite.BuiltinOptions import BuiltinOptions
from ethosu.vela.tflite.Padding import Padding as TflPadding
from ethosu.vela.tflite.TensorType import TensorType

Padding = Literal["SAME", "VALID"]
Activation = Literal["NONE", "RELU", "RELU6"]

_PADDINGS = ("SAME", "VALID")
_ACTIVATIONS = ("NONE", "RELU", "RELU6")
_ACT_CODE = {"NONE": ActivationFunctionType.NONE, "RELU": ActivationFunctionType.RELU,
             "RELU6": ActivationFunctionType.RELU6}
_TFLITE_SCHEMA_VERSION = 3


class SpecError(ValueError):
    """A layer or model spec is not a valid model (bad field value or shapes that do not chain)."""


def _pair(name: str, v: tuple[int, int], lo: int, hi: int) -> None:
    if (not isinstance(v, tuple) or len(v) != 2 or not all(isinstance(x, int) for x in v)
            or not all(lo <= x <= hi for x in v)):
        raise SpecError(f"{name} must be a pair of ints in {lo}..{hi}, got {v!r}")


def _check_common(padding: str, activation: str, ozp: int | None) -> None:
    if padding not in _PADDINGS:
        raise SpecError(f"padding must be one of {_PADDINGS}, got {padding!r}")
    if activation not in _ACTIVATIONS:
        raise SpecError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
    if ozp is not None and not -128 <= ozp <= 127:
        raise SpecError(f"output_zero_point must be in -128..127, got {ozp}")


@dataclass(frozen=True)
class Conv2D:
    """CONV_2D layer. ``kernel``/``stride`` are (height, width)."""

    out_channels: int
    kernel: tuple[int, int] = (3, 3)
    stride: tuple[int, int] = (1, 1)
    padding: Padding = "SAME"
    activation: Activation = "NONE"
    output_zero_point: int | None = None  # None: drawn from the model seed

    def __post_init__(self) -> None:
        if not isinstance(self.out_channels, int) or not 1 <= self.out_channels <= 4096:
            raise SpecError(f"out_channels must be in 1..4096, got {self.out_channels!r}")
        _pair("kernel", self.kernel, 1, 64)
        _pair("stride", self.stride, 1, 8)
        _check_common(self.padding, self.activation, self.output_zero_point)


@dataclass(frozen=True)
class DepthwiseConv2D:
    """DEPTHWISE_CONV_2D layer with depth multiplier 1 (output channels = input channels)."""

    kernel: tuple[int, int] = (3, 3)
    stride: tuple[int, int] = (1, 1)
    padding: Padding = "SAME"
    activation: Activation = "NONE"
    output_zero_point: int | None = None

    def __post_init__(self) -> None:
        _pair("kernel", self.kernel, 1, 64)
        _pair("stride", self.stride, 1, 8)
        _check_common(self.padding, self.activation, self.output_zero_point)


@dataclass(frozen=True)
class FullyConnected:
    """FULLY_CONNECTED layer; a non-2-D input is flattened by an explicit RESHAPE to ``[1, H*W*C]``."""

    units: int
    activation: Activation = "NONE"
    output_zero_point: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.units, int) or not 1 <= self.units <= 4096:
            raise SpecError(f"units must be in 1..4096, got {self.units!r}")
        _check_common("SAME", self.activation, self.output_zero_point)


LayerSpec = Conv2D | DepthwiseConv2D | FullyConnected


@dataclass(frozen=True)
class ModelSpec:
    """A sequential model: an int8 input of shape ``(1, *input_shape)`` followed by ``layers`` in order."""

    input_shape: tuple[int, ...]  # (H, W, C) -> NHWC input; (N,) -> a 2-D [1, N] input (FC-only models)
    layers: tuple[LayerSpec, ...]
    seed: int = 0
    input_scale: float = 0.05
    input_zero_point: int = 0

    def __post_init__(self) -> None:
        if (not isinstance(self.input_shape, tuple) or len(self.input_shape) not in (1, 3)
                or not all(isinstance(x, int) and 1 <= x <= 65536 for x in self.input_shape)):
            raise SpecError(f"input_shape must be (H, W, C) or (N,) of ints in 1..65536, got {self.input_shape!r}")
        if not isinstance(self.layers, tuple) or not self.layers:
            raise SpecError("layers must be a non-empty tuple of layer specs")
        for layer in self.layers:
            if not isinstance(layer, Conv2D | DepthwiseConv2D | FullyConnected):
                raise SpecError(f"unknown layer spec {layer!r}")
        if not (math.isfinite(self.input_scale) and self.input_scale > 0):
            raise SpecError(f"input_scale must be positive, got {self.input_scale}")
        if not -128 <= self.input_zero_point <= 127:
            raise SpecError(f"input_zero_point must be in -128..127, got {self.input_zero_point}")
        layer_shapes(self)  # raises SpecError when the shapes do not chain

    @property
    def name(self) -> str:
        """A short readable name, usable in file names."""
        parts = ["x".join(map(str, self.input_shape))]
        for layer in self.layers:
            parts.append(_layer_tag(layer))
        return "_".join(parts) + f"_s{self.seed}"


def _layer_tag(layer: LayerSpec) -> str:
    act = "" if layer.activation == "NONE" else layer.activation.lower()
    if isinstance(layer, FullyConnected):
        return f"fc{layer.units}{act}"
    kind = f"conv{layer.out_channels}" if isinstance(layer, Conv2D) else "dw"
    kh, kw = layer.kernel
    sh, sw = layer.stride
    return f"{kind}k{kh}x{kw}s{sh}x{sw}{layer.padding[0].lower()}{act}"


def _out_dim(size: int, k: int, s: int, padding: str) -> int:
    if padding == "SAME":
        return -(-size // s)
    return (size - k) // s + 1 if size >= k else 0


def layer_shapes(spec: ModelSpec) -> list[tuple[int, ...]]:
    """Output shape of every layer without the batch axis: ``(H, W, C)`` for conv layers, ``(units,)`` for FC."""
    shape: tuple[int, ...] = spec.input_shape
    out = []
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, FullyConnected):
            shape = (layer.units,)
        else:
            if len(shape) != 3:
                raise SpecError(f"layer {i} ({type(layer).__name__}) needs an (H, W, C) input, got {shape}")
            h, w, c = shape
            oh = _out_dim(h, layer.kernel[0], layer.stride[0], layer.padding)
            ow = _out_dim(w, layer.kernel[1], layer.stride[1], layer.padding)
            if oh < 1 or ow < 1:
                raise SpecError(f"layer {i}: kernel {layer.kernel} does not fit the {h}x{w} input with VALID padding")
            shape = (oh, ow, layer.out_channels if isinstance(layer, Conv2D) else c)
        out.append(shape)
    return out


@dataclass(frozen=True, eq=False)
class LayerParams:
    """The concrete numbers of one built layer (what a golden model needs besides the spec)."""

    spec: LayerSpec
    input_shape: tuple[int, ...]   # with batch axis
    output_shape: tuple[int, ...]  # with batch axis
    weights: np.ndarray            # int8: OHWI (conv), 1HWC (depthwise), OI (FC)
    weight_scales: np.ndarray      # float32 per output channel
    bias: np.ndarray               # int32 per output channel
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int


@dataclass(frozen=True, eq=False)
class TfliteModel:
    """A built model: the .tflite bytes plus the parameters that were drawn for it."""

    spec: ModelSpec
    data: bytes
    layers: tuple[LayerParams, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.layers[0].input_shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.layers[-1].output_shape

    def write(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_bytes(self.data)
        return path


# ---------------------------------------------------------------------------------------------------------------
# Parameter drawing


def _draw_layer(rng: np.random.Generator, layer: LayerSpec, in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                in_scale: float, in_zp: int, x_std: float) -> tuple[LayerParams, float]:
    """Draw weights, bias and output quantisation; return the params and the expected real output std."""
    if isinstance(layer, Conv2D):
        kh, kw = layer.kernel
        wshape = (layer.out_channels, kh, kw, in_shape[-1])
        n_out = layer.out_channels
    elif isinstance(layer, DepthwiseConv2D):
        kh, kw = layer.kernel
        wshape = (1, kh, kw, in_shape[-1])
        n_out = in_shape[-1]
    else:
        n_in = int(np.prod(in_shape[1:]))
        wshape = (layer.units, n_in)
        n_out = layer.units
    # Bell-shaped int8 weights with some exact zeros (exercises the weight compressor's zero runs).
    w = np.clip(np.rint(rng.normal(0.0, rng.uniform(20, 60), size=wshape)), -127, 127)
    w[rng.random(wshape) < rng.uniform(0.0, 0.3)] = 0
    w = w.astype(np.int8)
    w_scale = (rng.uniform(0.5, 2.0, size=n_out) * 0.004).astype(np.float32)
    # Expected std of the real accumulator per output channel, for an input of real std x_std.
    wf = w.astype(np.float64)
    if isinstance(layer, DepthwiseConv2D):
        wnorm = np.sqrt((wf.reshape(-1, n_out) ** 2).sum(axis=0))
    else:
        wnorm = np.sqrt((wf.reshape(n_out, -1) ** 2).sum(axis=1))
    acc_std = np.maximum(x_std * wnorm * w_scale, 1e-6)
    bias_scale = np.float64(np.float32(in_scale)) * w_scale.astype(np.float64)
    bias = np.rint(rng.normal(0.0, 0.5, size=n_out) * acc_std / bias_scale)
    bias = np.clip(bias, -(2**31) + 1, 2**31 - 1).astype(np.int32)
    y_std = float(np.median(acc_std))
    # Map roughly +-4 sigma onto the int8 range, with some random slack.
    out_scale = float(np.float32(y_std * 8.0 / 255.0 * rng.uniform(0.7, 1.4)))
    if layer.output_zero_point is not None:
        out_zp = layer.output_zero_point
    elif layer.activation == "NONE":
        out_zp = int(rng.integers(-24, 25))
    else:
        out_zp = -128 if rng.random() < 0.5 else int(rng.integers(-128, -60))
    params = LayerParams(layer, in_shape, out_shape, w, w_scale, bias, float(np.float32(in_scale)), in_zp,
                         out_scale, out_zp)
    # Real std of the quantised output as seen by the next layer (about 32 LSB for a 4-sigma mapping).
    return params, out_scale * 32.0


def draw_parameters(spec: ModelSpec) -> tuple[LayerParams, ...]:
    """All per-layer numbers of ``spec`` (deterministic in ``spec.seed``)."""
    rng = np.random.default_rng(spec.seed)
    shapes = layer_shapes(spec)
    in_shape: tuple[int, ...] = (1, *spec.input_shape)
    in_scale, in_zp = float(np.float32(spec.input_scale)), spec.input_zero_point
    x_std = in_scale * 73.9  # std of a uniformly random int8 input
    out = []
    for layer, shp in zip(spec.layers, shapes, strict=True):
        out_shape = (1, *shp)
        params, x_std = _draw_layer(rng, layer, in_shape, out_shape, in_scale, in_zp, x_std)
        out.append(params)
        in_shape, in_scale, in_zp = out_shape, params.output_scale, params.output_zero_point
    return tuple(out)


# ---------------------------------------------------------------------------------------------------------------
# Post-training quantisation of trained float parameters


@dataclass(frozen=True, eq=False)
class FloatLayer:
    """Trained float parameters of one layer: ``weights`` in the layer's TFLite layout (OHWI conv, 1HWC depthwise,
    OI fully connected) and one ``bias`` per output channel."""

    weights: np.ndarray
    bias: np.ndarray


def activation_quantisation(lo: float, hi: float) -> tuple[float, int]:
    """(scale, zero point) of an int8 tensor whose real values span ``lo..hi`` (the range is widened to hold 0, so
    that 0 is exact, as TFLite requires)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        raise SpecError(f"activation range must be finite with lo <= hi, got ({lo}, {hi})")
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    if hi - lo <= 0.0:
        hi = lo + 1e-6
    scale = float(np.float32((hi - lo) / 255.0))
    zero_point = int(np.clip(np.rint(-128.0 - lo / scale), -128, 127))
    return scale, zero_point


def _weight_shape(layer: LayerSpec, in_shape: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(layer, Conv2D):
        return (layer.out_channels, *layer.kernel, in_shape[-1])
    if isinstance(layer, DepthwiseConv2D):
        return (1, *layer.kernel, in_shape[-1])
    return (layer.units, int(np.prod(in_shape[1:])))


def _quantize_weights(w: np.ndarray, depthwise: bool) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel int8 weights (zero point 0, -127..127) and their float32 scales."""
    per_channel = w.reshape(-1, w.shape[-1]).T if depthwise else w.reshape(w.shape[0], -1)
    scales = (np.maximum(np.abs(per_channel).max(axis=1), 1e-12) / 127.0).astype(np.float32)
    axis_shape = (1,) * (w.ndim - 1) + (-1,) if depthwise else (-1,) + (1,) * (w.ndim - 1)
    q = np.clip(np.rint(w / scales.astype(np.float64).reshape(axis_shape)), -127, 127)
    return q.astype(np.int8), scales


def quantize_parameters(spec: ModelSpec, layers: tuple[FloatLayer, ...] | list[FloatLayer],
                        output_ranges: tuple[tuple[float, float], ...] | list[tuple[float, float]]
                        ) -> tuple[LayerParams, ...]:
    """Post-training int8 quantisation of trained float parameters (the TFLite scheme of the module docstring).

    Weights are quantised per output channel (symmetric), activations per tensor from the calibrated real range
    ``output_ranges[i]`` of layer ``i``'s output (:func:`activation_quantisation`); the input uses
    ``spec.input_scale`` / ``spec.input_zero_point``; biases become int32 at scale ``input_scale * weight_scale[c]``.
    """
    shapes = layer_shapes(spec)
    if len(layers) != len(spec.layers) or len(output_ranges) != len(spec.layers):
        raise SpecError(f"need {len(spec.layers)} float layers and output ranges, got {len(layers)} and "
                        f"{len(output_ranges)}")
    in_shape: tuple[int, ...] = (1, *spec.input_shape)
    in_scale, in_zp = float(np.float32(spec.input_scale)), spec.input_zero_point
    out = []
    for i, (layer, fl, rng, shp) in enumerate(zip(spec.layers, layers, output_ranges, shapes, strict=True)):
        w = np.asarray(fl.weights, dtype=np.float64)
        b = np.asarray(fl.bias, dtype=np.float64)
        want = _weight_shape(layer, in_shape)
        if w.shape != want or b.shape != (want[-1] if isinstance(layer, DepthwiseConv2D) else want[0],):
            raise SpecError(f"layer {i}: weights {w.shape} / bias {b.shape} do not fit the spec (weights {want})")
        if not (np.isfinite(w).all() and np.isfinite(b).all()):
            raise SpecError(f"layer {i}: weights and bias must be finite")
        qw, w_scale = _quantize_weights(w, isinstance(layer, DepthwiseConv2D))
        bias_scale = np.float64(in_scale) * w_scale.astype(np.float64)
        bias = np.clip(np.rint(b / bias_scale), -(2**31) + 1, 2**31 - 1).astype(np.int32)
        out_scale, out_zp = activation_quantisation(*map(float, rng))
        out_shape = (1, *shp)
        out.append(LayerParams(layer, in_shape, out_shape, qw, w_scale, bias, in_scale, in_zp, out_scale, out_zp))
        in_shape, in_scale, in_zp = out_shape, out_scale, out_zp
    return tuple(out)


def _check_params(spec: ModelSpec, params: tuple[LayerParams, ...]) -> tuple[LayerParams, ...]:
    params = tuple(params)
    if len(params) != len(spec.layers) or any(p.spec != layer for p, layer in zip(params, spec.layers, strict=False)):
        raise SpecError("params do not belong to this spec (one LayerParams per layer, in order)")
    return params


# ---------------------------------------------------------------------------------------------------------------
# Flatbuffer serialisation (schema classes from ethosu/vela/tflite/, generated from TFLite's schema.fbs)


class _Writer:
    def __init__(self) -> None:
        self.b = flatbuffers.Builder(4096)
        self.buffers: list[bytes] = [b""]  # buffer 0 is the conventional empty buffer
        self.tensors: list[int] = []       # offsets of serialised Tensor tables
        self.opcodes: list[tuple[int, int]] = []
        self.operators: list[int] = []

    def buffer(self, data: bytes) -> int:
        self.buffers.append(data)
        return len(self.buffers) - 1

    def _int_vec(self, values, dtype=np.int32) -> int:
        return self.b.CreateNumpyVector(np.asarray(values, dtype=dtype))

    def tensor(self, name: str, shape: tuple[int, ...], ttype: int, buffer: int = 0,
               scale: np.ndarray | None = None, zero_point: np.ndarray | None = None, axis: int = 0,
               variable: bool = False) -> int:
        b = self.b
        qoff = None
        if scale is not None:
            s_off = b.CreateNumpyVector(np.asarray(scale, dtype=np.float32).ravel())
            z_off = b.CreateNumpyVector(np.asarray(zero_point, dtype=np.int64).ravel())
            QuantizationParameters.Start(b)
            QuantizationParameters.AddScale(b, s_off)
            QuantizationParameters.AddZeroPoint(b, z_off)
            QuantizationParameters.AddQuantizedDimension(b, axis)
            qoff = QuantizationParameters.End(b)
        name_off = b.CreateString(name)
        shape_off = self._int_vec(shape)
        Tensor.Start(b)
        Tensor.AddShape(b, shape_off)
        Tensor.AddType(b, ttype)
        Tensor.AddBuffer(b, buffer)
        Tensor.AddName(b, name_off)
        if qoff is not None:
            Tensor.AddQuantization(b, qoff)
        if variable:
            Tensor.AddIsVariable(b, True)
        self.tensors.append(Tensor.End(b))
        return len(self.tensors) - 1

    def opcode(self, code: int, version: int) -> int:
        key = (code, version)
        if key not in self.opcodes:
            self.opcodes.append(key)
        return self.opcodes.index(key)

    def operator(self, code: int, version: int, inputs: list[int], outputs: list[int], opt_type: int,
                 opt_builder, intermediates: tuple[int, ...] = ()) -> None:
        b = self.b
        opt_off = opt_builder(b)
        in_off = self._int_vec(inputs)
        out_off = self._int_vec(outputs)
        mid_off = self._int_vec(intermediates) if intermediates else None
        Operator.Start(b)
        Operator.AddOpcodeIndex(b, self.opcode(code, version))
        Operator.AddInputs(b, in_off)
        Operator.AddOutputs(b, out_off)
        Operator.AddBuiltinOptionsType(b, opt_type)
        Operator.AddBuiltinOptions(b, opt_off)
        if mid_off is not None:
            Operator.AddIntermediates(b, mid_off)
        self.operators.append(Operator.End(b))

    def _offset_vector(self, offsets: list[int]) -> int:
        b = self.b
        b.StartVector(4, len(offsets), 4)
        for off in reversed(offsets):
            b.PrependUOffsetTRelative(off)
        return b.EndVector()

    def finish(self, inputs: list[int], outputs: list[int], description: str) -> bytes:
        b = self.b
        tens_off = self._offset_vector(self.tensors)
        in_off = self._int_vec(inputs)
        out_off = self._int_vec(outputs)
        ops_off = self._offset_vector(self.operators)
        sg_name = b.CreateString("main")
        SubGraph.Start(b)
        SubGraph.AddTensors(b, tens_off)
        SubGraph.AddInputs(b, in_off)
        SubGraph.AddOutputs(b, out_off)
        SubGraph.AddOperators(b, ops_off)
        SubGraph.AddName(b, sg_name)
        sg_off = SubGraph.End(b)
        sgs_off = self._offset_vector([sg_off])

        code_offs = []
        for code, version in self.opcodes:
            OperatorCode.Start(b)
            OperatorCode.AddDeprecatedBuiltinCode(b, min(code, 127))
            OperatorCode.AddBuiltinCode(b, code)
            OperatorCode.AddVersion(b, version)
            code_offs.append(OperatorCode.End(b))
        codes_off = self._offset_vector(code_offs)

        buf_offs = []
        for data in self.buffers:
            data_off = None
            if data:
                b.Prep(16, len(data))  # 16-byte aligned constant data
                data_off = b.CreateByteVector(data)
            Buffer.Start(b)
            if data_off is not None:
                Buffer.AddData(b, data_off)
            buf_offs.append(Buffer.End(b))
        bufs_off = self._offset_vector(buf_offs)
        desc_off = b.CreateString(description)

        Model.Start(b)
        Model.AddVersion(b, _TFLITE_SCHEMA_VERSION)
        Model.AddOperatorCodes(b, codes_off)
        Model.AddSubgraphs(b, sgs_off)
        Model.AddDescription(b, desc_off)
        Model.AddBuffers(b, bufs_off)
        b.Finish(Model.End(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def _conv_options(layer: Conv2D):
    def build(b):
        Conv2DOptions.Start(b)
        Conv2DOptions.AddPadding(b, getattr(TflPadding, layer.padding))
        Conv2DOptions.AddStrideH(b, layer.stride[0])
        Conv2DOptions.AddStrideW(b, layer.stride[1])
        Conv2DOptions.AddFusedActivationFunction(b, _ACT_CODE[layer.activation])
        Conv2DOptions.AddDilationHFactor(b, 1)
        Conv2DOptions.AddDilationWFactor(b, 1)
        return Conv2DOptions.End(b)
    return build


def _dw_options(layer: DepthwiseConv2D):
    def build(b):
        DepthwiseConv2DOptions.Start(b)
        DepthwiseConv2DOptions.AddPadding(b, getattr(TflPadding, layer.padding))
        DepthwiseConv2DOptions.AddStrideH(b, layer.stride[0])
        DepthwiseConv2DOptions.AddStrideW(b, layer.stride[1])
        DepthwiseConv2DOptions.AddDepthMultiplier(b, 1)
        DepthwiseConv2DOptions.AddFusedActivationFunction(b, _ACT_CODE[layer.activation])
        DepthwiseConv2DOptions.AddDilationHFactor(b, 1)
        DepthwiseConv2DOptions.AddDilationWFactor(b, 1)
        return DepthwiseConv2DOptions.End(b)
    return build


def _fc_options(layer: FullyConnected):
    def build(b):
        FullyConnectedOptions.Start(b)
        FullyConnectedOptions.AddFusedActivationFunction(b, _ACT_CODE[layer.activation])
        FullyConnectedOptions.AddKeepNumDims(b, False)
        return FullyConnectedOptions.End(b)
    return build


def _reshape_options(shape: tuple[int, ...]):
    def build(b):
        vec = b.CreateNumpyVector(np.asarray(shape, dtype=np.int32))
        ReshapeOptions.Start(b)
        ReshapeOptions.AddNewShape(b, vec)
        return ReshapeOptions.End(b)
    return build


def build_model(spec: ModelSpec, params: tuple[LayerParams, ...] | None = None) -> TfliteModel:
    """Serialise ``spec`` into .tflite bytes (one subgraph, one input, one output).

    ``params``: the per-layer numbers to write (e.g. from :func:`quantize_parameters`); None: drawn from
    ``spec.seed`` with :func:`draw_parameters`.
    """
    params = draw_parameters(spec) if params is None else _check_params(spec, params)
    wr = _Writer()
    p0 = params[0]
    cur = wr.tensor("input", p0.input_shape, TensorType.INT8, scale=[p0.input_scale],
                    zero_point=[p0.input_zero_point])
    graph_input = cur
    for i, p in enumerate(params):
        layer = p.spec
        name = f"l{i}_{_layer_tag(layer)}"
        in_shape = p.input_shape
        if isinstance(layer, FullyConnected) and len(in_shape) != 2:
            flat = (1, int(np.prod(in_shape[1:])))
            shape_t = wr.tensor(f"{name}_shape", (2,), TensorType.INT32,
                                buffer=wr.buffer(np.asarray(flat, dtype="<i4").tobytes()))
            flat_t = wr.tensor(f"{name}_flat", flat, TensorType.INT8, scale=[p.input_scale],
                               zero_point=[p.input_zero_point])
            wr.operator(BuiltinOperator.RESHAPE, 1, [cur, shape_t], [flat_t], BuiltinOptions.ReshapeOptions,
                        _reshape_options(flat))
            cur = flat_t
        n_out = len(p.weight_scales)
        axis = 3 if isinstance(layer, DepthwiseConv2D) else 0
        w_t = wr.tensor(f"{name}_weights", p.weights.shape, TensorType.INT8, buffer=wr.buffer(p.weights.tobytes()),
                        scale=p.weight_scales, zero_point=np.zeros(n_out, np.int64), axis=axis)
        b_scale = (np.float64(p.input_scale) * p.weight_scales.astype(np.float64)).astype(np.float32)
        b_t = wr.tensor(f"{name}_bias", (n_out,), TensorType.INT32, buffer=wr.buffer(p.bias.astype("<i4").tobytes()),
                        scale=b_scale, zero_point=np.zeros(n_out, np.int64), axis=0)
        o_t = wr.tensor(f"{name}_out" if i < len(params) - 1 else "output", p.output_shape, TensorType.INT8,
                        scale=[p.output_scale], zero_point=[p.output_zero_point])
        if isinstance(layer, Conv2D):
            wr.operator(BuiltinOperator.CONV_2D, 3, [cur, w_t, b_t], [o_t], BuiltinOptions.Conv2DOptions,
                        _conv_options(layer))
        elif isinstance(layer, DepthwiseConv2D):
            wr.operator(BuiltinOperator.DEPTHWISE_CONV_2D, 3, [cur, w_t, b_t], [o_t],
                        BuiltinOptions.DepthwiseConv2DOptions, _dw_options(layer))
        else:
            wr.operator(BuiltinOperator.FULLY_CONNECTED, 4, [cur, w_t, b_t], [o_t],
                        BuiltinOptions.FullyConnectedOptions, _fc_options(layer))
        cur = o_t
    data = wr.finish([graph_input], [cur], f"rampart tflite_builder: {spec.name}")
    return TfliteModel(spec, data, params)


def single_layer(layer: LayerSpec, input_shape: tuple[int, ...], seed: int = 0, *,
                 input_scale: float = 0.05, input_zero_point: int = 0) -> TfliteModel:
    """Convenience: build a one-layer model."""
    return build_model(ModelSpec(input_shape, (layer,), seed, input_scale, input_zero_point))


# ---------------------------------------------------------------------------------------------------------------
# Random specs


def _rand_act(rng: np.random.Generator) -> Activation:
    return _ACTIVATIONS[int(rng.integers(0, len(_ACTIVATIONS)))]


def random_layer_spec(rng: np.random.Generator, in_shape: tuple[int, ...], *, kinds: tuple[str, ...] = (
        "conv", "dw", "fc"), max_channels: int = 32, max_kernel: int = 7, max_stride: int = 2) -> LayerSpec:
    """A random layer that accepts ``in_shape`` (``(H, W, C)`` or ``(N,)``); FC is the only choice after FC."""
    if len(in_shape) != 3:
        kinds = ("fc",)
    kind = kinds[int(rng.integers(0, len(kinds)))]
    if kind == "fc":
        return FullyConnected(int(rng.integers(1, max_channels + 1)), _rand_act(rng))
    h, w, _ = in_shape
    kernel = (int(rng.integers(1, max_kernel + 1)), int(rng.integers(1, max_kernel + 1)))
    stride = (int(rng.integers(1, max_stride + 1)), int(rng.integers(1, max_stride + 1)))
    padding: Padding = "SAME" if rng.random() < 0.5 else "VALID"
    if padding == "VALID" and (kernel[0] > h or kernel[1] > w):
        padding = "SAME"
    if kind == "dw":
        return DepthwiseConv2D(kernel, stride, padding, _rand_act(rng))
    if kind == "conv":
        return Conv2D(int(rng.integers(1, max_channels + 1)), kernel, stride, padding, _rand_act(rng))
    raise SpecError(f"unknown layer kind {kind!r}")


def random_model_spec(rng: np.random.Generator, *, n_layers: int | None = None, max_layers: int = 3,
                      kinds: tuple[str, ...] = ("conv", "dw", "fc"), max_hw: int = 16, max_channels: int = 32,
                      max_kernel: int = 7, max_stride: int = 2) -> ModelSpec:
    """A random valid sequential model spec; all randomness comes from ``rng``."""
    if n_layers is None:
        n_layers = int(rng.integers(1, max_layers + 1))
    shape: tuple[int, ...] = (int(rng.integers(1, max_hw + 1)), int(rng.integers(1, max_hw + 1)),
                              int(rng.integers(1, max_channels + 1)))
    input_shape = shape
    layers = []
    for _ in range(n_layers):
        layer = random_layer_spec(rng, shape, kinds=kinds, max_channels=max_channels, max_kernel=max_kernel,
                                  max_stride=max_stride)
        layers.append(layer)
        shape = layer_shapes(ModelSpec(input_shape, tuple(layers)))[-1]
    return ModelSpec(input_shape, tuple(layers), seed=int(rng.integers(0, 2**31)),
                     input_scale=float(np.float32(rng.uniform(0.01, 0.1))),
                     input_zero_point=int(rng.integers(-128, 128)))


__all__ = [
    "Activation", "Conv2D", "DepthwiseConv2D", "FloatLayer", "FullyConnected", "LayerParams", "LayerSpec", "ModelSpec",
    "Padding", "SpecError", "TfliteModel", "activation_quantisation", "build_model", "draw_parameters",
    "layer_shapes", "quantize_parameters", "random_layer_spec", "random_model_spec", "single_layer",
]


def model_bytes(model) -> bytes:
    """The .tflite flatbuffer of ``model``: bytes, a path, or a :class:`TfliteModel`."""
    if isinstance(model, bytes | bytearray):
        return bytes(model)
    if isinstance(model, str | Path):
        return Path(model).read_bytes()
    data = getattr(model, "data", None)  # TfliteModel
    if isinstance(data, bytes):
        return data
    raise TypeError(f"expected .tflite bytes, a path or a TfliteModel, got {type(model).__name__}")
