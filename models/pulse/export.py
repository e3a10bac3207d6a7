"""Quantise the float pulse CNN with TFLite's post-training scheme and write it as .tflite (no TensorFlow).

Two schemes, chosen per export (the accelerator runs both; the activation precision comes from the model):

* ``"int8"``: TFLite's int8 scheme -- per-tensor asymmetric int8 activations (range from calibration), input
  scale 1/255 over [0, 1) full scale;
* ``"16x8"``: TFLite's 16x8 scheme -- per-tensor symmetric int16 activations (zero point 0), int64 biases; the
  input scale is 2^-15, so a 14-bit ADC code ``c`` enters exactly as ``2c``.

Both: per-output-channel symmetric int8 weights (-127..127), bias at ``input_scale * weight_scale[c]``; pooling and
RESHAPE outputs keep their input's parameters. The graph is the contract's op subset: CONV_2D (1 x K) ->
AVERAGE_POOL_2D (1 x 2) -> CONV_2D -> AVERAGE_POOL_2D -> RESHAPE [1, N] -> FULLY_CONNECTED -> FULLY_CONNECTED
(2 outputs: time in samples, amplitude as a fraction of full scale, one per-tensor scale for both).
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ethosu.vela.tflite import Pool2DOptions
from ethosu.vela.tflite.BuiltinOperator import BuiltinOperator
from ethosu.vela.tflite.BuiltinOptions import BuiltinOptions
from ethosu.vela.tflite.Padding import Padding as TflPadding
from ethosu.vela.tflite.TensorType import TensorType

from models.npu.tflite_builder import (
    Conv2D,
    FullyConnected,
    _conv_options,
    _fc_options,
    _quantize_weights,
    _reshape_options,
    _Writer,
    activation_quantisation,
)
from models.pulse.cnn import Conv, Dense, Network, Pool
from models.pulse.frontend import ADC_BITS, WINDOW

__all__ = ["SCHEMES", "QuantisedModel", "export", "load_model", "quantise_input", "run_litert"]

SCHEMES = ("int8", "16x8")
INT16_INPUT_SCALE = 2.0 ** -15


@dataclass(frozen=True)
class QuantisedModel:
    scheme: str
    data: bytes                         # the .tflite flatbuffer
    input_quant: tuple[float, int]      # (scale, zero point)
    output_quant: tuple[float, int]

    @property
    def dtype(self):
        return np.int8 if self.scheme == "int8" else np.int16

    def quantise(self, samples: np.ndarray) -> np.ndarray:
        return quantise_input(samples, self.input_quant, self.dtype)

    def dequantise(self, outputs: np.ndarray) -> np.ndarray:
        scale, zp = self.output_quant
        return (np.asarray(outputs, np.float64) - zp) * scale


def quantise_input(samples: np.ndarray, quant: tuple[float, int], dtype) -> np.ndarray:
    """Fractions of full scale (N, 64) -> the model's input integers."""
    info = np.iinfo(dtype)
    scale, zp = quant
    return np.clip(np.rint(np.asarray(samples) / scale) + zp, info.min, info.max).astype(dtype)


def _activation_quant(values: np.ndarray, scheme: str) -> tuple[float, int]:
    if scheme == "int8":
        return activation_quantisation(float(values.min()), float(values.max()))
    return float(np.float32(max(float(np.abs(values).max()), 1e-6) / 32767.0)), 0


def _trace(net: Network, x: np.ndarray) -> list[np.ndarray]:
    """Every layer's float output on ``x`` (the flatten is part of the first Dense's input)."""
    h = np.asarray(x, np.float64)[:, :, None]
    outs = []
    for layer in net.layers:
        if isinstance(layer, Dense) and h.ndim == 3:
            h = h.reshape(len(h), -1)
        h = layer.forward(h)
        outs.append(h)
    return outs


def _pool_options(k: int):
    def build(b):
        Pool2DOptions.Start(b)
        Pool2DOptions.AddPadding(b, TflPadding.VALID)
        Pool2DOptions.AddStrideH(b, 1)
        Pool2DOptions.AddStrideW(b, k)
        Pool2DOptions.AddFilterHeight(b, 1)
        Pool2DOptions.AddFilterWidth(b, k)
        Pool2DOptions.AddFusedActivationFunction(b, 0)
        return Pool2DOptions.End(b)
    return build


# Operator versions LiteRT expects for int16 activations (TFLite's op versioning), else the int8 ones.
_VERSIONS = {"int8": {"conv": 3, "fc": 4, "pool": 2, "reshape": 1},
             "16x8": {"conv": 4, "fc": 7, "pool": 3, "reshape": 1}}


def export(net: Network, calibration: np.ndarray, scheme: str = "16x8") -> QuantisedModel:
    """Quantise ``net`` (ranges from ``calibration``, (N, 64) fractions of full scale) and serialise it."""
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, not {scheme!r}")
    act_type = TensorType.INT8 if scheme == "int8" else TensorType.INT16
    bias_type, bias_dtype = (TensorType.INT32, "<i4") if scheme == "int8" else (TensorType.INT64, "<i8")
    versions = _VERSIONS[scheme]
    in_quant = (1.0 / 255.0, -128) if scheme == "int8" else (INT16_INPUT_SCALE, 0)
    in_quant = (float(np.float32(in_quant[0])), in_quant[1])
    outs = _trace(net, calibration)

    wr = _Writer()
    cur = wr.tensor("input", (1, 1, WINDOW, 1), act_type, scale=[in_quant[0]], zero_point=[in_quant[1]])
    quant, width, channels = in_quant, WINDOW, 1
    for i, (layer, value) in enumerate(zip(net.layers, outs, strict=True)):
        name = f"l{i}"
        if isinstance(layer, Pool):
            width //= layer.k
            out = wr.tensor(name, (1, 1, width, channels), act_type, scale=[quant[0]], zero_point=[quant[1]])
            code = BuiltinOperator.AVERAGE_POOL_2D if layer.kind == "avg" else BuiltinOperator.MAX_POOL_2D
            wr.operator(code, versions["pool"], [cur], [out], BuiltinOptions.Pool2DOptions, _pool_options(layer.k))
            cur = out
            continue
        if isinstance(layer, Dense) and channels:
            flat = wr.tensor(f"{name}_flat", (1, width * channels), act_type, scale=[quant[0]],
                             zero_point=[quant[1]])
            shape_t = wr.tensor(f"{name}_shape", (2,), TensorType.INT32,
                                buffer=wr.buffer(np.asarray([1, width * channels], "<i4").tobytes()))
            wr.operator(BuiltinOperator.RESHAPE, versions["reshape"], [cur, shape_t], [flat],
                        BuiltinOptions.ReshapeOptions, _reshape_options((1, width * channels)))
            cur, channels = flat, 0
        last = layer is net.layers[-1]
        out_quant = _activation_quant(value, scheme)
        w = layer.w[:, None, :, :] if isinstance(layer, Conv) else layer.w     # OHWI with H = 1
        qw, w_scale = _quantize_weights(w, False)
        bias_scale = np.float64(np.float32(quant[0])) * w_scale.astype(np.float64)
        bias = np.rint(layer.b / bias_scale).astype(bias_dtype)
        w_t = wr.tensor(f"{name}_weights", qw.shape, TensorType.INT8, buffer=wr.buffer(qw.tobytes()),
                        scale=w_scale, zero_point=np.zeros(len(w_scale), np.int64), axis=0)
        b_t = wr.tensor(f"{name}_bias", bias.shape, bias_type, buffer=wr.buffer(bias.tobytes()),
                        scale=bias_scale.astype(np.float32), zero_point=np.zeros(len(w_scale), np.int64), axis=0)
        act = "RELU" if layer.relu else "NONE"
        if isinstance(layer, Conv):
            width = layer.out_width(width)
            channels = layer.c_out
            out = wr.tensor("output" if last else name, (1, 1, width, channels), act_type, scale=[out_quant[0]],
                            zero_point=[out_quant[1]])
            spec = Conv2D(layer.c_out, (1, layer.k), (1, layer.stride), layer.padding, act)
            wr.operator(BuiltinOperator.CONV_2D, versions["conv"], [cur, w_t, b_t], [out],
                        BuiltinOptions.Conv2DOptions, _conv_options(spec))
        else:
            out = wr.tensor("output" if last else name, (1, layer.n_out), act_type, scale=[out_quant[0]],
                            zero_point=[out_quant[1]])
            wr.operator(BuiltinOperator.FULLY_CONNECTED, versions["fc"], [cur, w_t, b_t], [out],
                        BuiltinOptions.FullyConnectedOptions, _fc_options(FullyConnected(layer.n_out, act)))
        cur, quant = out, out_quant
    data = wr.finish([0], [cur], f"rampart models.pulse: pulse CNN ({scheme}, {ADC_BITS}-bit ADC windows)")
    return QuantisedModel(scheme, data, in_quant, quant)


def run_litert(model: QuantisedModel | bytes, windows: np.ndarray) -> np.ndarray:
    """The model's integer outputs (N, 2) for integer input ``windows`` (N, 64) under LiteRT's reference kernels
    (one thread, ``BUILTIN_REF``: the kernels the accelerator is bit-exact with)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    data = model.data if isinstance(model, QuantisedModel) else model
    it = Interpreter(model_content=data, num_threads=1, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    windows = np.asarray(windows)
    if windows.dtype != inp["dtype"]:
        raise ValueError(f"the model takes {np.dtype(inp['dtype']).name} windows, not {windows.dtype}")
    result = np.empty((len(windows), 2), out["dtype"])
    for i, window in enumerate(windows):
        it.set_tensor(inp["index"], window.reshape(1, 1, WINDOW, 1))
        it.invoke()
        result[i] = it.get_tensor(out["index"])[0]
    return result


def load_model(path) -> QuantisedModel:
    """A pulse CNN .tflite: its scheme and quantisation come from its input and output tensors (the truth)."""
    from ai_edge_litert.interpreter import Interpreter

    data = Path(path).read_bytes()
    it = Interpreter(model_content=data, num_threads=1)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    scheme = "int8" if np.dtype(inp["dtype"]) == np.int8 else "16x8"
    quant = [(float(d["quantization"][0]), int(d["quantization"][1])) for d in (inp, out)]
    return QuantisedModel(scheme, data, quant[0], quant[1])
