"""Single-layer int16x8 models (TFLite's 16x8 scheme: int16 activations, int8 weights) written without TensorFlow.

The scheme (TFLite's post-training "16x8" quantisation): activations int16 with a per-tensor scale and zero point 0;
weights int8, symmetric per output channel (-127..127, zero point 0); bias int64 at ``input_scale *
weight_scale[c]``. LiteRT's reference kernels accumulate in 64 bits and requantise with
``MultiplyByQuantizedMultiplier(int64, ...)`` (the multiplier rounded to 16 bits, one rounding shift); Vela writes
that as the "reduced" per-channel scale and the NATURAL round mode (``weight_compressor._prepare_scale_and_bias``,
``high_level_command_to_npu_op.get_rounding_mode``).

Every number a builder leaves open (weights, biases, scales) is drawn from ``numpy.random.default_rng(seed)``;
the output scale maps about four standard deviations of the accumulator onto the int16 range, so the outputs use
most of it without saturating everywhere.

* :func:`conv2d`: CONV_2D (kernel, stride, SAME / VALID, fused NONE / RELU / RELU6)
* :func:`depthwise_conv2d`: DEPTHWISE_CONV_2D, depth multiplier 1
* :func:`fully_connected`: FULLY_CONNECTED on a 2-D input
* :func:`stack`: CONV_2D / DEPTHWISE_CONV_2D layers in sequence (16-bit intermediates, NHCWB16 in Vela's arena)
* :func:`lstm`: UNIDIRECTIONAL_SEQUENCE_LSTM (no CIFG, peephole, projection or layer norm: what Vela lowers)
"""
from __future__ import annotations

import numpy as np
from ethosu.vela.tflite import UnidirectionalSequenceLSTMOptions
from ethosu.vela.tflite.BuiltinOperator import BuiltinOperator
from ethosu.vela.tflite.BuiltinOptions import BuiltinOptions
from ethosu.vela.tflite.TensorType import TensorType

from .tflite_builder import (
    Conv2D,
    DepthwiseConv2D,
    FullyConnected,
    _conv_options,
    _dw_options,
    _fc_options,
    _out_dim,
    _Writer,
)

__all__ = ["conv2d", "depthwise_conv2d", "fully_connected", "lstm", "stack"]

#: LiteRT's operator versions for int16 activations with int8 weights.
_VERSIONS = {"conv": 4, "dw": 5, "fc": 7}
_INT16_STD = 9000.0   # std of the int16 inputs the models are drawn for (most of the range, some saturation)


def _exact(scale: np.ndarray) -> np.ndarray:
    """``scale`` rounded to ``k * 2**e`` with a 15-bit ``k``: with power-of-two activation scales the requantisation
    multiplier is then exact in 16 bits (Vela's reduced scale equals LiteRT's 32-bit one)."""
    e = np.ceil(np.log2(scale))
    return (np.rint(scale / 2.0 ** e * 2 ** 15) * 2.0 ** (e - 15)).astype(np.float32)


def _pow2(scale: float) -> float:
    return float(2.0 ** np.round(np.log2(scale)))


def _draw(rng: np.random.Generator, wshape, n_out: int, fan_axis_sum, in_scale: float, exact: bool = False):
    """int8 weights (bell-shaped, some exact zeros), their per-channel scales, int64 biases and an output scale
    (``exact``: scales as :func:`_exact` / powers of two)."""
    w = np.clip(np.rint(rng.normal(0.0, rng.uniform(20, 60), size=wshape)), -127, 127)
    w[rng.random(wshape) < rng.uniform(0.0, 0.3)] = 0
    w = w.astype(np.int8)
    w_scale = (rng.uniform(0.5, 2.0, size=n_out) * 0.004).astype(np.float32)
    if exact:
        w_scale = _exact(w_scale)
    wnorm = np.sqrt(fan_axis_sum(w.astype(np.float64) ** 2))
    acc_std = np.maximum(_INT16_STD * in_scale * wnorm * w_scale, 1e-9)
    bias_scale = np.float64(in_scale) * w_scale.astype(np.float64)
    bias = np.rint(rng.normal(0.0, 0.5, size=n_out) * acc_std / bias_scale).astype(np.int64)
    out_scale = float(np.float32(float(np.median(acc_std)) * 8.0 / 65535.0 * rng.uniform(0.7, 1.4)))
    return w, w_scale, bias, _pow2(out_scale) if exact else out_scale


def _layer(code: int, version: int, build, opt_type: int, wshape, axis: int, in_shape, out_shape, fan_axis_sum,
           seed: int, desc: str, exact: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    in_scale = float(np.float32(rng.uniform(0.02, 0.1) / 128))
    if exact:
        in_scale = _pow2(in_scale)
    n_out = wshape[axis]
    w, w_scale, bias, out_scale = _draw(rng, wshape, n_out, fan_axis_sum, in_scale, exact)
    wr = _Writer()
    x = wr.tensor("input", in_shape, TensorType.INT16, scale=[in_scale], zero_point=[0])
    w_t = wr.tensor("weights", w.shape, TensorType.INT8, buffer=wr.buffer(w.tobytes()), scale=w_scale,
                    zero_point=np.zeros(n_out, np.int64), axis=axis)
    b_scale = (np.float64(in_scale) * w_scale.astype(np.float64)).astype(np.float32)
    b_t = wr.tensor("bias", (n_out,), TensorType.INT64, buffer=wr.buffer(bias.astype("<i8").tobytes()),
                    scale=b_scale, zero_point=np.zeros(n_out, np.int64), axis=0)
    y = wr.tensor("output", out_shape, TensorType.INT16, scale=[out_scale], zero_point=[0])
    wr.operator(code, version, [x, w_t, b_t], [y], opt_type, build)
    return wr.finish([x], [y], f"rampart int16x8: {desc}")


def conv2d(input_shape: tuple[int, int, int], out_channels: int, kernel=(3, 3), stride=(1, 1), padding="SAME",
           activation="NONE", *, seed: int = 0) -> bytes:
    """A CONV_2D model on an int16 ``(H, W, C)`` input."""
    spec = Conv2D(out_channels, tuple(kernel), tuple(stride), padding, activation)
    h, w, c = input_shape
    out = (1, _out_dim(h, kernel[0], stride[0], padding), _out_dim(w, kernel[1], stride[1], padding), out_channels)
    return _layer(BuiltinOperator.CONV_2D, _VERSIONS["conv"], _conv_options(spec), BuiltinOptions.Conv2DOptions,
                  (out_channels, *kernel, c), 0, (1, h, w, c), out, lambda w2: w2.reshape(out_channels, -1).sum(1),
                  seed, f"CONV_2D {input_shape} -> {out_channels} k{kernel} s{stride} {padding} {activation}")


def depthwise_conv2d(input_shape: tuple[int, int, int], kernel=(3, 3), stride=(1, 1), padding="SAME",
                     activation="NONE", *, seed: int = 0) -> bytes:
    """A DEPTHWISE_CONV_2D model (depth multiplier 1) on an int16 ``(H, W, C)`` input."""
    spec = DepthwiseConv2D(tuple(kernel), tuple(stride), padding, activation)
    h, w, c = input_shape
    out = (1, _out_dim(h, kernel[0], stride[0], padding), _out_dim(w, kernel[1], stride[1], padding), c)
    return _layer(BuiltinOperator.DEPTHWISE_CONV_2D, _VERSIONS["dw"], _dw_options(spec),
                  BuiltinOptions.DepthwiseConv2DOptions, (1, *kernel, c), 3, (1, h, w, c), out,
                  lambda w2: w2.reshape(-1, c).sum(0), seed,
                  f"DEPTHWISE_CONV_2D {input_shape} k{kernel} s{stride} {padding} {activation}")


def fully_connected(n_in: int, units: int, activation="NONE", *, seed: int = 0, exact_scales: bool = False) -> bytes:
    """A FULLY_CONNECTED model on an int16 ``(1, n_in)`` input.

    LiteRT's int16 FULLY_CONNECTED requantises with the whole 32-bit multiplier, its CONV_2D / DEPTHWISE with the
    16-bit reduced one that Vela writes for all three (measured: ~10% of FC outputs off by one for random scales;
    the stream, not the NPU, differs from LiteRT). ``exact_scales``: scales whose multipliers fit 16 bits
    (:func:`_exact`), where the two agree."""
    spec = FullyConnected(units, activation)
    return _layer(BuiltinOperator.FULLY_CONNECTED, _VERSIONS["fc"], _fc_options(spec),
                  BuiltinOptions.FullyConnectedOptions, (units, n_in), 0, (1, n_in), (1, units),
                  lambda w2: w2.sum(1), seed, f"FULLY_CONNECTED {n_in} -> {units} {activation}"
                  + (" exact scales" if exact_scales else ""), exact_scales)


def stack(input_shape: tuple[int, int, int], layers: tuple, *, seed: int = 0) -> bytes:
    """``layers`` (:class:`~models.npu.tflite_builder.Conv2D` / ``DepthwiseConv2D`` specs) in sequence on an int16
    ``(H, W, C)`` input, every tensor int16x8 as in :func:`conv2d`."""
    rng = np.random.default_rng(seed)
    wr = _Writer()
    scale = float(np.float32(rng.uniform(0.02, 0.1) / 128))
    shape = (1, *input_shape)
    x = cur = wr.tensor("input", shape, TensorType.INT16, scale=[scale], zero_point=[0])
    for i, layer in enumerate(layers):
        _, h, w, c = shape
        conv = isinstance(layer, Conv2D)
        n_out = layer.out_channels if conv else c
        wshape, axis = ((n_out, *layer.kernel, c), 0) if conv else ((1, *layer.kernel, c), 3)
        fan = (lambda w2, n=n_out: w2.reshape(n, -1).sum(1)) if conv else (lambda w2, n=c: w2.reshape(-1, n).sum(0))
        wt, w_scale, bias, out_scale = _draw(rng, wshape, n_out, fan, scale)
        w_t = wr.tensor(f"l{i}_weights", wt.shape, TensorType.INT8, buffer=wr.buffer(wt.tobytes()), scale=w_scale,
                        zero_point=np.zeros(n_out, np.int64), axis=axis)
        b_t = wr.tensor(f"l{i}_bias", (n_out,), TensorType.INT64, buffer=wr.buffer(bias.astype("<i8").tobytes()),
                        scale=(np.float64(scale) * w_scale.astype(np.float64)).astype(np.float32),
                        zero_point=np.zeros(n_out, np.int64))
        shape = (1, _out_dim(h, layer.kernel[0], layer.stride[0], layer.padding),
                 _out_dim(w, layer.kernel[1], layer.stride[1], layer.padding), n_out)
        y = wr.tensor("output" if i == len(layers) - 1 else f"l{i}_out", shape, TensorType.INT16, scale=[out_scale],
                      zero_point=[0])
        if conv:
            wr.operator(BuiltinOperator.CONV_2D, _VERSIONS["conv"], [cur, w_t, b_t], [y], BuiltinOptions.Conv2DOptions,
                        _conv_options(layer))
        else:
            wr.operator(BuiltinOperator.DEPTHWISE_CONV_2D, _VERSIONS["dw"], [cur, w_t, b_t], [y],
                        BuiltinOptions.DepthwiseConv2DOptions, _dw_options(layer))
        cur, scale = y, out_scale
    return wr.finish([x], [cur], f"rampart int16x8: {len(layers)} layers on {input_shape}")


def lstm(n_time: int = 3, n_input: int = 8, n_cell: int = 8, *, seed: int = 0) -> bytes:
    """A batch-major UNIDIRECTIONAL_SEQUENCE_LSTM on an int16 ``(1, n_time, n_input)`` input, as TFLite's 16x8 LSTM
    is quantised: int8 per-tensor weights, int64 gate biases, int16 states (cell 2**-11: 4 integer bits; hidden
    2**-15), the gate and hidden intermediates (Vela reads the hidden one's scale). No CIFG, peephole, projection
    or layer norm (Vela 5.2's constraints). LiteRT's own kernel does not run it: its integer LSTM takes int8
    inputs only (an int16 input wants float biases, ``unidirectional_sequence_lstm.cc``), so there is no reference
    to compare with."""
    rng = np.random.default_rng(seed)
    wr = _Writer()
    x = wr.tensor("input", (1, n_time, n_input), TensorType.INT16, scale=[2.0 ** -12], zero_point=[0])

    def weights(name, shape):
        w = np.clip(np.rint(rng.normal(0, 40, shape)), -127, 127).astype(np.int8)
        return wr.tensor(name, shape, TensorType.INT8, buffer=wr.buffer(w.tobytes()), scale=[0.004], zero_point=[0])

    gates = ("input", "forget", "cell", "output")
    w_in = [weights(f"input_to_{g}_weights", (n_cell, n_input)) for g in gates]
    w_rec = [weights(f"recurrent_to_{g}_weights", (n_cell, n_cell)) for g in gates]
    biases = [wr.tensor(f"{g}_gate_bias", (n_cell,), TensorType.INT64, scale=[2.0 ** -12 * 0.004], zero_point=[0],
                        buffer=wr.buffer(rng.integers(-4000, 4000, n_cell).astype("<i8").tobytes())) for g in gates]
    h = wr.tensor("output_state", (1, n_cell), TensorType.INT16, scale=[2.0 ** -15], zero_point=[0], variable=True)
    c = wr.tensor("cell_state", (1, n_cell), TensorType.INT16, scale=[2.0 ** -11], zero_point=[0], variable=True)
    y = wr.tensor("output", (1, n_time, n_cell), TensorType.INT16, scale=[2.0 ** -15], zero_point=[0])
    mids = tuple(wr.tensor(f"intermediate_{g}", (0,), TensorType.INT16, scale=[2.0 ** -12], zero_point=[0])
                 for g in gates) + (wr.tensor("intermediate_hidden", (0,), TensorType.INT16, scale=[2.0 ** -15],
                                              zero_point=[0]),)
    none = -1
    inputs = [x, *w_in, *w_rec, none, none, none, *biases, none, none, h, c, none, none, none, none]

    def options(b):
        UnidirectionalSequenceLSTMOptions.Start(b)
        UnidirectionalSequenceLSTMOptions.AddFusedActivationFunction(b, 4)   # TANH
        UnidirectionalSequenceLSTMOptions.AddTimeMajor(b, False)
        return UnidirectionalSequenceLSTMOptions.End(b)

    wr.operator(BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM, 1, inputs, [y],
                BuiltinOptions.UnidirectionalSequenceLSTMOptions, options, mids)
    return wr.finish([x], [y], f"rampart int16x8: UNIDIRECTIONAL_SEQUENCE_LSTM {n_time}x{n_input} -> {n_cell}")
