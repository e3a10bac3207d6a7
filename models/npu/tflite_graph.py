"""Int8 .tflite graphs (not only chains) without TensorFlow: residual adds, pooling, softmax, several inputs/outputs.

:mod:`models.npu.tflite_builder` writes sequential CONV/DEPTHWISE/FC models; this module extends it (same flatbuffer
writer, same quantisation scheme) to the graphs real networks have. A :class:`Graph` is built in float, layer by
layer (``conv2d``, ``depthwise``, ``fully_connected``, ``add``, ``avg_pool``, ``max_pool``, ``mean``, ``reshape``,
``softmax``, ``hard_swish``, ``tanh``, ``logistic``, ``resize``, ``transpose_conv``); weights and biases are drawn
from ``seed`` (He-normal, with a per-output-channel gain as a folded batch norm gives, so per-channel weight scales
differ realistically), unless the caller passes trained ones. :meth:`Graph.build` then quantises post-training:

* activations: per-tensor int8 from the float range seen on calibration inputs (``activation_quantisation``);
  MAX_POOL_2D / AVERAGE_POOL_2D / RESHAPE / RESIZE_* outputs keep their input's parameters (TFLite's int8 kernels
  require it), SOFTMAX and LOGISTIC outputs are 1/256 with zero point -128, TANH's 1/128 with zero point 0 (TFLite's
  int8 conventions);
* weights: per-output-channel symmetric int8; int32 bias at ``input_scale * weight_scale[c]``.

Float semantics follow TFLite (SAME padding puts the odd extra row/column after; AVERAGE_POOL_2D divides by the
number of taps inside the input). :meth:`Graph.float_outputs` runs the float graph, which is what the int8 model
approximates (tested against LiteRT in ``tb/models/npu/test_networks.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from ethosu.vela.tflite import (
    AddOptions,
    Operator,
    Pool2DOptions,
    ReducerOptions,
    ResizeBilinearOptions,
    ResizeNearestNeighborOptions,
    SoftmaxOptions,
    TransposeConvOptions,
)
from ethosu.vela.tflite.BuiltinOperator import BuiltinOperator
from ethosu.vela.tflite.BuiltinOptions import BuiltinOptions
from ethosu.vela.tflite.Padding import Padding as TflPadding
from ethosu.vela.tflite.TensorType import TensorType

from .tflite_builder import (
    _ACT_CODE,
    Conv2D,
    DepthwiseConv2D,
    FullyConnected,
    LayerParams,
    SpecError,
    _conv_options,
    _dw_options,
    _fc_options,
    _quantize_weights,
    _reshape_options,
    _Writer,
    activation_quantisation,
)

__all__ = ["Graph", "GraphModel", "Tensor"]

_ACTS = ("NONE", "RELU", "RELU6")


@dataclass(frozen=True)
class Tensor:
    """A tensor of a :class:`Graph` (an index into it); ``shape`` without the batch axis."""

    index: int
    shape: tuple[int, ...]


@dataclass
class _Node:
    kind: str                      # "input", "conv", "dw", "fc", "add", "avgpool", "maxpool", "mean", ...
    inputs: tuple[int, ...]
    shape: tuple[int, ...]
    attrs: dict = field(default_factory=dict)


@dataclass(frozen=True, eq=False)
class GraphModel:
    """A built graph: the .tflite bytes and the quantisation of every graph input and output."""

    name: str
    data: bytes
    input_quant: tuple[tuple[float, int], ...]    # (scale, zero point) per graph input
    output_quant: tuple[tuple[float, int], ...]
    graph: Graph = field(repr=False)
    layers: tuple[LayerParams, ...] = field(default=(), repr=False)   # CONV / DEPTHWISE / FC ops, graph order

    def quantize_inputs(self, xs: list[np.ndarray]) -> list[np.ndarray]:
        """Float inputs (batch axis included) -> the model's int8 inputs."""
        return [np.clip(np.rint(np.asarray(x) / s) + z, -128, 127).astype(np.int8)
                for x, (s, z) in zip(xs, self.input_quant, strict=True)]

    def dequantize_outputs(self, ys: list[np.ndarray]) -> list[np.ndarray]:
        return [(np.asarray(y, np.float64) - z) * s for y, (s, z) in zip(ys, self.output_quant, strict=True)]


def _act(x: np.ndarray, activation: str) -> np.ndarray:
    if activation == "RELU":
        return np.maximum(x, 0.0)
    if activation == "RELU6":
        return np.clip(x, 0.0, 6.0)
    return x


def _out_dim(size: int, k: int, s: int, padding: str) -> int:
    return -(-size // s) if padding == "SAME" else (size - k) // s + 1


def _pad(x: np.ndarray, k: tuple[int, int], s: tuple[int, int], padding: str, value: float = 0.0):
    """``x`` (NHWC) padded as TFLite pads it, and the output height and width."""
    n, h, w, c = x.shape
    oh, ow = _out_dim(h, k[0], s[0], padding), _out_dim(w, k[1], s[1], padding)
    if oh < 1 or ow < 1:
        raise SpecError(f"a {k} window does not fit a {h}x{w} input with {padding} padding")
    ph = max((oh - 1) * s[0] + k[0] - h, 0)
    pw = max((ow - 1) * s[1] + k[1] - w, 0)
    xp = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), constant_values=value)
    return xp, oh, ow


def _taps(xp: np.ndarray, k, s, oh: int, ow: int):
    for ky in range(k[0]):
        for kx in range(k[1]):
            yield ky, kx, xp[:, ky:ky + s[0] * (oh - 1) + 1:s[0], kx:kx + s[1] * (ow - 1) + 1:s[1], :]


class Graph:
    """A float graph to be quantised to int8 .tflite (see the module docstring). Methods return :class:`Tensor`s."""

    def __init__(self, name: str, seed: int = 0):
        self.name = name
        self.rng = np.random.default_rng(seed)
        self.nodes: list[_Node] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.calibration: list[np.ndarray] | None = None   # what the last build calibrated on

    # --- building ---------------------------------------------------------------------------------------------

    def _add(self, kind: str, inputs, shape, **attrs) -> Tensor:
        self.nodes.append(_Node(kind, tuple(t.index for t in inputs), tuple(int(d) for d in shape), attrs))
        return Tensor(len(self.nodes) - 1, self.nodes[-1].shape)

    def input(self, shape: tuple[int, ...], lo: float = -1.0, hi: float = 1.0) -> Tensor:
        """A graph input; calibration draws it uniformly from ``lo..hi``."""
        t = self._add("input", (), shape, lo=lo, hi=hi)
        self.inputs.append(t.index)
        return t

    def output(self, *tensors: Tensor) -> None:
        self.outputs.extend(t.index for t in tensors)

    def _weights(self, shape, fan_in: int, n_out: int, axis: int, weights, bias):
        if weights is None:
            w = self.rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape)
            gain = self.rng.uniform(0.4, 1.6, size=n_out)   # a folded batch norm's per-channel gain
            w = w * gain.reshape([-1 if i == axis else 1 for i in range(len(shape))])
        else:
            w = np.asarray(weights, np.float64)
            if w.shape != tuple(shape):
                raise SpecError(f"weights of shape {w.shape}, need {tuple(shape)}")
        b = self.rng.normal(0.0, 0.1, size=n_out) if bias is None else np.asarray(bias, np.float64)
        if b.shape != (n_out,):
            raise SpecError(f"bias of shape {b.shape}, need ({n_out},)")
        return w, b

    @staticmethod
    def _check_act(activation: str):
        if activation not in _ACTS:
            raise SpecError(f"activation must be one of {_ACTS}, got {activation!r}")

    def conv2d(self, x: Tensor, filters: int, kernel=(3, 3), stride=(1, 1), padding="SAME", activation="NONE",
               weights=None, bias=None) -> Tensor:
        self._check_act(activation)
        h, w, c = x.shape
        k, s = tuple(kernel), tuple(stride)
        wt, b = self._weights((filters, *k, c), k[0] * k[1] * c, filters, 0, weights, bias)
        shape = (_out_dim(h, k[0], s[0], padding), _out_dim(w, k[1], s[1], padding), filters)
        return self._add("conv", (x,), shape, spec=Conv2D(filters, k, s, padding, activation), w=wt, b=b)

    def depthwise(self, x: Tensor, kernel=(3, 3), stride=(1, 1), padding="SAME", activation="NONE",
                  weights=None, bias=None) -> Tensor:
        self._check_act(activation)
        h, w, c = x.shape
        k, s = tuple(kernel), tuple(stride)
        wt, b = self._weights((1, *k, c), k[0] * k[1], c, 3, weights, bias)
        shape = (_out_dim(h, k[0], s[0], padding), _out_dim(w, k[1], s[1], padding), c)
        return self._add("dw", (x,), shape, spec=DepthwiseConv2D(k, s, padding, activation), w=wt, b=b)

    def fully_connected(self, x: Tensor, units: int, activation="NONE", weights=None, bias=None) -> Tensor:
        """FULLY_CONNECTED on a 1-D tensor (``reshape`` a feature map first, as Keras' Flatten does)."""
        self._check_act(activation)
        if len(x.shape) != 1:
            raise SpecError(f"fully_connected needs a 1-D input (reshape first), got {x.shape}")
        wt, b = self._weights((units, x.shape[0]), x.shape[0], units, 0, weights, bias)
        return self._add("fc", (x,), (units,), spec=FullyConnected(units, activation), w=wt, b=b)

    def add(self, a: Tensor, b: Tensor, activation="NONE") -> Tensor:
        self._check_act(activation)
        if a.shape != b.shape:
            raise SpecError(f"add needs equal shapes, got {a.shape} and {b.shape}")
        return self._add("add", (a, b), a.shape, activation=activation)

    def _pool(self, kind: str, x: Tensor, pool, stride, padding) -> Tensor:
        h, w, c = x.shape
        k = tuple(pool)
        s = k if stride is None else tuple(stride)
        shape = (_out_dim(h, k[0], s[0], padding), _out_dim(w, k[1], s[1], padding), c)
        return self._add(kind, (x,), shape, k=k, s=s, padding=padding)

    def avg_pool(self, x: Tensor, pool, stride=None, padding="VALID") -> Tensor:
        """AVERAGE_POOL_2D (``stride`` defaults to ``pool``, as in Keras)."""
        return self._pool("avgpool", x, pool, stride, padding)

    def max_pool(self, x: Tensor, pool, stride=None, padding="VALID") -> Tensor:
        return self._pool("maxpool", x, pool, stride, padding)

    def mean(self, x: Tensor) -> Tensor:
        """MEAN over height and width, keeping them (1x1xC), as a global average pool."""
        return self._add("mean", (x,), (1, 1, x.shape[2]))

    def reshape(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        if int(np.prod(shape)) != int(np.prod(x.shape)):
            raise SpecError(f"cannot reshape {x.shape} to {shape}")
        return self._add("reshape", (x,), shape)

    def softmax(self, x: Tensor, beta: float = 1.0) -> Tensor:
        return self._add("softmax", (x,), x.shape, beta=beta)

    def hard_swish(self, x: Tensor) -> Tensor:
        return self._add("hardswish", (x,), x.shape)

    def tanh(self, x: Tensor) -> Tensor:
        return self._add("tanh", (x,), x.shape)

    def logistic(self, x: Tensor) -> Tensor:
        return self._add("logistic", (x,), x.shape)

    def resize(self, x: Tensor, size: tuple[int, int], bilinear: bool = False, align_corners: bool = False,
               half_pixel_centers: bool = False) -> Tensor:
        """RESIZE_NEAREST_NEIGHBOR (or RESIZE_BILINEAR) to ``size`` (height, width)."""
        if align_corners and half_pixel_centers:
            raise SpecError("align_corners and half_pixel_centers exclude each other")
        return self._add("resize", (x,), (*size, x.shape[2]), bilinear=bilinear, align_corners=align_corners,
                         half_pixel_centers=half_pixel_centers)

    def transpose_conv(self, x: Tensor, filters: int, kernel=(3, 3), stride=(2, 2), padding="SAME",
                       weights=None, bias=None) -> Tensor:
        """TRANSPOSE_CONV (weights OHWI, with bias): output ``in * stride`` (SAME) or ``(in - 1) * stride +
        kernel`` (VALID)."""
        h, w, c = x.shape
        k, s = tuple(kernel), tuple(stride)
        wt, b = self._weights((filters, *k, c), k[0] * k[1] * c, filters, 0, weights, bias)
        if padding == "SAME":
            shape = (h * s[0], w * s[1], filters)
        else:
            shape = ((h - 1) * s[0] + k[0], (w - 1) * s[1] + k[1], filters)
        return self._add("tconv", (x,), shape, k=k, s=s, padding=padding, w=wt, b=b)

    def prefix(self, tensor: Tensor, name: str | None = None) -> Graph:
        """The graph up to ``tensor`` (every node built before it, the same weights) with ``tensor`` as its only
        output: what the NPU runs of a network whose later operators it does not support yet. Its tensors quantise
        exactly as in the whole graph when built on the same calibration inputs."""
        used = {tensor.index}
        for i in range(tensor.index, -1, -1):
            if i in used:
                used.update(self.nodes[i].inputs)
        if not set(self.inputs) <= used:
            raise SpecError("a prefix must keep every graph input")
        g = Graph(name or f"{self.name}-prefix", 0)
        remap: dict[int, int] = {}
        for i in sorted(used):
            node = self.nodes[i]
            remap[i] = len(g.nodes)
            g.nodes.append(_Node(node.kind, tuple(remap[j] for j in node.inputs), node.shape, dict(node.attrs)))
        g.inputs = [remap[i] for i in self.inputs]
        g.outputs = [remap[tensor.index]]
        g.calibration = self.calibration
        return g

    def mac_prefix(self) -> Graph:
        """:meth:`prefix` up to the first operator that is not CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED (up to
        its latest-built input); the whole graph when there is none."""
        for node in self.nodes:
            if node.kind not in ("input", "conv", "dw", "fc"):
                last = max(node.inputs)
                return self.prefix(Tensor(last, self.nodes[last].shape), f"{self.name}-body")
        return self
    # --- float semantics ----------------------------------------------------------------------------------------

    def _eval(self, node: _Node, xs: list[np.ndarray]) -> np.ndarray:
        a = node.attrs
        if node.kind == "conv":
            spec = a["spec"]
            xp, oh, ow = _pad(xs[0], spec.kernel, spec.stride, spec.padding)
            y = np.zeros((xp.shape[0], oh, ow, spec.out_channels))
            for ky, kx, tap in _taps(xp, spec.kernel, spec.stride, oh, ow):
                y += tap @ a["w"][:, ky, kx, :].T
            return _act(y + a["b"], spec.activation)
        if node.kind == "dw":
            spec = a["spec"]
            xp, oh, ow = _pad(xs[0], spec.kernel, spec.stride, spec.padding)
            y = np.zeros((xp.shape[0], oh, ow, xp.shape[3]))
            for ky, kx, tap in _taps(xp, spec.kernel, spec.stride, oh, ow):
                y += tap * a["w"][0, ky, kx, :]
            return _act(y + a["b"], spec.activation)
        if node.kind == "fc":
            return _act(xs[0].reshape(len(xs[0]), -1) @ a["w"].T + a["b"], a["spec"].activation)
        if node.kind == "add":
            return _act(xs[0] + xs[1], a["activation"])
        if node.kind in ("avgpool", "maxpool"):
            fill = -np.inf if node.kind == "maxpool" else 0.0
            xp, oh, ow = _pad(xs[0], a["k"], a["s"], a["padding"], fill)
            if node.kind == "maxpool":
                return np.max([tap for *_, tap in _taps(xp, a["k"], a["s"], oh, ow)], axis=0)
            ones, _, _ = _pad(np.ones_like(xs[0][:1]), a["k"], a["s"], a["padding"])
            total = sum(tap for *_, tap in _taps(xp, a["k"], a["s"], oh, ow))
            count = sum(tap for *_, tap in _taps(ones, a["k"], a["s"], oh, ow))
            return total / count
        if node.kind == "mean":
            return xs[0].mean(axis=(1, 2), keepdims=True)
        if node.kind == "reshape":
            return xs[0].reshape(len(xs[0]), *node.shape)
        if node.kind == "softmax":
            z = a["beta"] * (xs[0] - xs[0].max(axis=-1, keepdims=True))
            e = np.exp(z)
            return e / e.sum(axis=-1, keepdims=True)
        if node.kind == "hardswish":
            return xs[0] * np.clip(xs[0] + 3.0, 0.0, 6.0) / 6.0
        if node.kind == "tanh":
            return np.tanh(xs[0])
        if node.kind == "logistic":
            return 1.0 / (1.0 + np.exp(-xs[0]))
        if node.kind == "resize":
            return _resize(xs[0], node.shape[:2], a)
        if node.kind == "tconv":
            return _transpose_conv(xs[0], node.shape, a)
        raise SpecError(f"unknown node kind {node.kind!r}")

    def run_float(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Every tensor's float value for ``inputs`` (one batch array per graph input, NHWC / NC)."""
        values: list[np.ndarray | None] = [None] * len(self.nodes)
        for i, x in zip(self.inputs, inputs, strict=True):
            values[i] = np.asarray(x, np.float64)
        for i, node in enumerate(self.nodes):
            if node.kind != "input":
                values[i] = self._eval(node, [values[j] for j in node.inputs])
        return values

    def float_outputs(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        values = self.run_float(inputs)
        return [values[i] for i in self.outputs]

    def calibration_inputs(self, n: int, seed: int = 1) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        return [rng.uniform(self.nodes[i].attrs["lo"], self.nodes[i].attrs["hi"], size=(n, *self.nodes[i].shape))
                for i in self.inputs]

    # --- quantisation and serialisation -------------------------------------------------------------------------

    def _quant(self, values: list[np.ndarray]) -> list[tuple[float, int]]:
        quant: list[tuple[float, int]] = []
        for node, v in zip(self.nodes, values, strict=True):
            if node.kind in ("maxpool", "avgpool", "reshape", "resize"):
                quant.append(quant[node.inputs[0]])
            elif node.kind in ("softmax", "logistic"):
                quant.append((1.0 / 256.0, -128))
            elif node.kind == "tanh":
                quant.append((1.0 / 128.0, 0))
            elif node.kind == "input":
                quant.append(activation_quantisation(node.attrs["lo"], node.attrs["hi"]))
            else:
                quant.append(activation_quantisation(float(v.min()), float(v.max())))
        return quant

    def build(self, calibration: list[np.ndarray] | None = None) -> GraphModel:
        """Quantise (calibrating on ``calibration``; default: what the last build used, else 8 random inputs) and
        serialise to .tflite."""
        if not self.inputs or not self.outputs:
            raise SpecError("a graph needs at least one input and one output")
        if calibration is None:
            calibration = self.calibration if self.calibration is not None else self.calibration_inputs(8)
        self.calibration = calibration
        values = self.run_float(calibration)
        quant = self._quant(values)
        wr = _Writer()
        tensors: dict[int, int] = {}
        layers: list[LayerParams] = []
        for i, node in enumerate(self.nodes):
            scale, zp = quant[i]
            name = "output" if i in self.outputs and len(self.outputs) == 1 else f"t{i}_{node.kind}"
            tensors[i] = wr.tensor(name, (1, *node.shape), TensorType.INT8, scale=[scale], zero_point=[zp])
            if node.kind != "input":
                params = self._write_op(wr, node, [tensors[j] for j in node.inputs], tensors[i],
                                        [quant[j] for j in node.inputs], name)
                if params is not None:
                    src = self.nodes[node.inputs[0]]
                    layers.append(LayerParams(node.attrs["spec"], (1, *src.shape), (1, *node.shape), *params,
                                              float(np.float32(quant[node.inputs[0]][0])), quant[node.inputs[0]][1],
                                              scale, zp))
        data = wr.finish([tensors[i] for i in self.inputs], [tensors[i] for i in self.outputs],
                         f"rampart tflite_graph: {self.name}")
        return GraphModel(self.name, data, tuple(quant[i] for i in self.inputs),
                          tuple(quant[i] for i in self.outputs), self, tuple(layers))

    def _write_op(self, wr: _Writer, node: _Node, ins: list[int], out: int, in_quant, name: str):
        """Serialise one operator; for CONV / DEPTHWISE / FC return (int8 weights, weight scales, int32 bias)."""
        a = node.attrs
        if node.kind in ("conv", "dw", "fc"):
            depthwise = node.kind == "dw"
            qw, w_scale = _quantize_weights(a["w"], depthwise)
            n_out = len(w_scale)
            in_scale = float(np.float32(in_quant[0][0]))
            bias = np.clip(np.rint(a["b"] / (np.float64(in_scale) * w_scale.astype(np.float64))),
                           -(2**31) + 1, 2**31 - 1).astype("<i4")
            w_t = wr.tensor(f"{name}_weights", qw.shape, TensorType.INT8, buffer=wr.buffer(qw.tobytes()),
                            scale=w_scale, zero_point=np.zeros(n_out, np.int64), axis=3 if depthwise else 0)
            b_scale = (np.float64(in_scale) * w_scale.astype(np.float64)).astype(np.float32)
            b_t = wr.tensor(f"{name}_bias", (n_out,), TensorType.INT32, buffer=wr.buffer(bias.tobytes()),
                            scale=b_scale, zero_point=np.zeros(n_out, np.int64), axis=0)
            code, version, opt_type, opts = {
                "conv": (BuiltinOperator.CONV_2D, 3, BuiltinOptions.Conv2DOptions, _conv_options),
                "dw": (BuiltinOperator.DEPTHWISE_CONV_2D, 3, BuiltinOptions.DepthwiseConv2DOptions, _dw_options),
                "fc": (BuiltinOperator.FULLY_CONNECTED, 4, BuiltinOptions.FullyConnectedOptions, _fc_options),
            }[node.kind]
            wr.operator(code, version, [ins[0], w_t, b_t], [out], opt_type, opts(a["spec"]))
            return qw, w_scale, bias.astype(np.int32)
        if node.kind == "add":
            wr.operator(BuiltinOperator.ADD, 2, ins, [out], BuiltinOptions.AddOptions, _add_options(a["activation"]))
        elif node.kind in ("avgpool", "maxpool"):
            code = BuiltinOperator.AVERAGE_POOL_2D if node.kind == "avgpool" else BuiltinOperator.MAX_POOL_2D
            wr.operator(code, 2, ins, [out], BuiltinOptions.Pool2DOptions, _pool_options(a["k"], a["s"], a["padding"]))
        elif node.kind == "mean":
            axes = wr.tensor(f"{name}_axes", (2,), TensorType.INT32,
                             buffer=wr.buffer(np.asarray([1, 2], "<i4").tobytes()))
            wr.operator(BuiltinOperator.MEAN, 2, [ins[0], axes], [out], BuiltinOptions.ReducerOptions,
                        _reducer_options(True))
        elif node.kind == "reshape":
            shape = (1, *node.shape)
            shape_t = wr.tensor(f"{name}_shape", (len(shape),), TensorType.INT32,
                                buffer=wr.buffer(np.asarray(shape, "<i4").tobytes()))
            wr.operator(BuiltinOperator.RESHAPE, 1, [ins[0], shape_t], [out], BuiltinOptions.ReshapeOptions,
                        _reshape_options(shape))
        elif node.kind == "softmax":
            wr.operator(BuiltinOperator.SOFTMAX, 2, ins, [out], BuiltinOptions.SoftmaxOptions,
                        _softmax_options(a["beta"]))
        elif node.kind == "hardswish":
            _operator_without_options(wr, BuiltinOperator.HARD_SWISH, 1, ins, [out])
        elif node.kind == "tanh":
            _operator_without_options(wr, BuiltinOperator.TANH, 1, ins, [out])
        elif node.kind == "logistic":
            _operator_without_options(wr, BuiltinOperator.LOGISTIC, 1, ins, [out])
        elif node.kind == "resize":
            size = wr.tensor(f"{name}_size", (2,), TensorType.INT32,
                             buffer=wr.buffer(np.asarray(node.shape[:2], "<i4").tobytes()))
            code, opt_type, options = ((BuiltinOperator.RESIZE_BILINEAR, BuiltinOptions.ResizeBilinearOptions,
                                        ResizeBilinearOptions) if a["bilinear"] else
                                       (BuiltinOperator.RESIZE_NEAREST_NEIGHBOR,
                                        BuiltinOptions.ResizeNearestNeighborOptions, ResizeNearestNeighborOptions))
            wr.operator(code, 3, [ins[0], size], [out], opt_type,
                        _resize_options(options, a["align_corners"], a["half_pixel_centers"]))
        elif node.kind == "tconv":
            return self._write_tconv(wr, node, ins, out, in_quant, name)
        else:
            raise SpecError(f"unknown node kind {node.kind!r}")
        return None


    @staticmethod
    def _write_tconv(wr: _Writer, node: _Node, ins: list[int], out: int, in_quant, name: str):
        a = node.attrs
        qw, w_scale = _quantize_weights(a["w"], False)
        n_out = len(w_scale)
        in_scale = float(np.float32(in_quant[0][0]))
        b_scale = np.float64(in_scale) * w_scale.astype(np.float64)
        bias = np.clip(np.rint(a["b"] / b_scale), -(2**31) + 1, 2**31 - 1).astype("<i4")
        w_t = wr.tensor(f"{name}_weights", qw.shape, TensorType.INT8, buffer=wr.buffer(qw.tobytes()),
                        scale=w_scale, zero_point=np.zeros(n_out, np.int64), axis=0)
        b_t = wr.tensor(f"{name}_bias", (n_out,), TensorType.INT32, buffer=wr.buffer(bias.tobytes()),
                        scale=b_scale.astype(np.float32), zero_point=np.zeros(n_out, np.int64), axis=0)
        shape_t = wr.tensor(f"{name}_output_shape", (4,), TensorType.INT32,
                            buffer=wr.buffer(np.asarray((1, *node.shape), "<i4").tobytes()))
        wr.operator(BuiltinOperator.TRANSPOSE_CONV, 3, [shape_t, w_t, ins[0], b_t], [out],
                    BuiltinOptions.TransposeConvOptions, _tconv_options(a["s"], a["padding"]))
        return None


def _resize(x: np.ndarray, size, a) -> np.ndarray:
    """TFLite's float RESIZE_NEAREST_NEIGHBOR / RESIZE_BILINEAR (``a``: the node's attributes)."""
    def coords(n_in: int, n_out: int) -> np.ndarray:
        o = np.arange(n_out, dtype=np.float64)
        scale = (n_in - 1) / (n_out - 1) if a["align_corners"] and n_out > 1 else n_in / n_out
        return (o + 0.5) * scale - (0.5 if a["bilinear"] else 0.0) if a["half_pixel_centers"] else o * scale

    ys, xs = coords(x.shape[1], size[0]), coords(x.shape[2], size[1])
    if not a["bilinear"]:
        def pick(v):   # TFLite: std::round (half away from zero) with align_corners, else floor
            return np.floor(v + 0.5 if a["align_corners"] else v).astype(int)
        iy = np.minimum(pick(ys), x.shape[1] - 1)
        ix = np.minimum(pick(xs), x.shape[2] - 1)
        return x[:, iy][:, :, ix]
    y0 = np.clip(np.floor(ys), 0, None).astype(int)
    x0 = np.clip(np.floor(xs), 0, None).astype(int)
    y1 = np.minimum(np.ceil(ys), x.shape[1] - 1).astype(int)
    x1 = np.minimum(np.ceil(xs), x.shape[2] - 1).astype(int)
    fy = (ys - y0).reshape(1, -1, 1, 1)   # as TFLite: from the clamped lower bound
    fx = (xs - x0).reshape(1, 1, -1, 1)
    top = x[:, y0][:, :, x0] * (1 - fx) + x[:, y0][:, :, x1] * fx
    bottom = x[:, y1][:, :, x0] * (1 - fx) + x[:, y1][:, :, x1] * fx
    return top * (1 - fy) + bottom * fy


def _transpose_conv(x: np.ndarray, shape, a) -> np.ndarray:
    """TFLite's float TRANSPOSE_CONV: input pixel ``i`` scatters ``w`` onto outputs ``i * stride + k - pad``."""
    (kh, kw), (sh, sw) = a["k"], a["s"]
    n, h, w, _ = x.shape
    oh, ow, _ = shape
    full = np.zeros((n, (h - 1) * sh + kh, (w - 1) * sw + kw, shape[2]))
    for ky in range(kh):
        for kx in range(kw):
            full[:, ky:ky + sh * (h - 1) + 1:sh, kx:kx + sw * (w - 1) + 1:sw, :] += x @ a["w"][:, ky, kx, :].T
    top, left = max(full.shape[1] - oh, 0) // 2, max(full.shape[2] - ow, 0) // 2
    return full[:, top:top + oh, left:left + ow, :] + a["b"]


def _resize_options(options, align_corners: bool, half_pixel_centers: bool):
    def build(b):
        options.Start(b)
        options.AddAlignCorners(b, align_corners)
        options.AddHalfPixelCenters(b, half_pixel_centers)
        return options.End(b)
    return build


def _tconv_options(s, padding: str):
    def build(b):
        TransposeConvOptions.Start(b)
        TransposeConvOptions.AddPadding(b, TflPadding.SAME if padding == "SAME" else TflPadding.VALID)
        TransposeConvOptions.AddStrideW(b, s[1])
        TransposeConvOptions.AddStrideH(b, s[0])
        return TransposeConvOptions.End(b)
    return build


def _add_options(activation: str):
    def build(b):
        AddOptions.Start(b)
        AddOptions.AddFusedActivationFunction(b, _ACT_CODE[activation])
        return AddOptions.End(b)
    return build


def _pool_options(k, s, padding: str):
    def build(b):
        Pool2DOptions.Start(b)
        Pool2DOptions.AddPadding(b, getattr(TflPadding, padding))
        Pool2DOptions.AddStrideH(b, s[0])
        Pool2DOptions.AddStrideW(b, s[1])
        Pool2DOptions.AddFilterHeight(b, k[0])
        Pool2DOptions.AddFilterWidth(b, k[1])
        Pool2DOptions.AddFusedActivationFunction(b, _ACT_CODE["NONE"])
        return Pool2DOptions.End(b)
    return build


def _reducer_options(keep_dims: bool):
    def build(b):
        ReducerOptions.Start(b)
        ReducerOptions.AddKeepDims(b, keep_dims)
        return ReducerOptions.End(b)
    return build


def _softmax_options(beta: float):
    def build(b):
        SoftmaxOptions.Start(b)
        SoftmaxOptions.AddBeta(b, beta)
        return SoftmaxOptions.End(b)
    return build


def _operator_without_options(wr: _Writer, code: int, version: int, inputs: list[int], outputs: list[int]) -> None:
    b = wr.b
    in_off = wr._int_vec(inputs)
    out_off = wr._int_vec(outputs)
    Operator.Start(b)
    Operator.AddOpcodeIndex(b, wr.opcode(code, version))
    Operator.AddInputs(b, in_off)
    Operator.AddOutputs(b, out_off)
    Operator.AddBuiltinOptionsType(b, BuiltinOptions.NONE)
    wr.operators.append(Operator.End(b))
