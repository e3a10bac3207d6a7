"""Random pulse CNNs of the PulseDL contract's op subset as .tflite (int8 or 16x8), for the accelerator's tests and
for ``rampart run pulsedl`` when no trained model is at hand.

The float network gets random He-normal weights (per-output-channel gains, as a folded batch norm gives) and
biases; its activations are calibrated on synthetic detector pulses (a CR-RC^4-like shape at a random time and
amplitude plus white noise) and it is quantised post-training: int8 activations with TFLite's asymmetric scheme, or
symmetric int16 activations (16x8: int64 bias); weights symmetric int8, per output channel for CONV_2D and per tensor
for FULLY_CONNECTED (what TFLite's converter writes). LiteRT's reference kernels are the judge of the integer model.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
from ethosu.vela.tflite import Pool2DOptions
from ethosu.vela.tflite.BuiltinOperator import BuiltinOperator
from ethosu.vela.tflite.BuiltinOptions import BuiltinOptions
from ethosu.vela.tflite.Padding import Padding
from ethosu.vela.tflite.TensorType import TensorType

from models.npu.tflite_builder import (
    _ACT_CODE,
    _conv_options,
    _fc_options,
    _quantize_weights,
    _reshape_options,
    _Writer,
    activation_quantisation,
)

__all__ = ["PulseNet", "pulse_windows", "random_layers", "random_pulse_cnn"]

WINDOW = 64


@dataclass(frozen=True)
class PulseNet:
    data: bytes
    precision: str                    # "int8" or "16x8"
    input_quant: tuple[float, int]
    layers: tuple[dict, ...]

    def quantize(self, windows: np.ndarray) -> np.ndarray:
        """Float windows (N, 64) -> the model's input dtype."""
        scale, zp = self.input_quant
        info = np.iinfo(np.int8 if self.precision == "int8" else np.int16)
        return np.clip(np.rint(windows / scale) + zp, info.min, info.max).astype(info.dtype)


def pulse_windows(n: int, seed: int = 0, noise: float = 0.01) -> np.ndarray:
    """``n`` float windows of 64 samples: a CR-RC^4 pulse (tau 2 samples) at a random start within samples 8-24,
    amplitude 0.1-0.9 of full scale, plus white noise of ``noise`` (full scale = 1)."""
    rng = np.random.default_rng(seed)
    t = np.arange(WINDOW)[None, :] - rng.uniform(8, 24, (n, 1))
    u = np.clip(t / 2.0, 0, None)
    shape = u ** 4 * np.exp(-u) / (4 ** 4 * np.exp(-4))
    return rng.uniform(0.1, 0.9, (n, 1)) * shape + noise * rng.standard_normal((n, WINDOW))


def random_layers(rng: np.random.Generator, small: bool = False) -> list[dict]:
    """A random chain of the contract's subset: 1-3 convolutions (1 x K, K <= 9, stride 1-2, VALID / SAME, any
    fused activation; channels <= 16 or <= 8 when ``small``), optional pooling after each, then 1-2 FCs ending in 2."""
    layers, w, c = [], WINDOW, 1
    cmax = 8 if small else 16
    for _ in range(int(rng.integers(1, 4))):
        k = int(rng.integers(1, 10))
        stride = int(rng.integers(1, 3))
        padding = str(rng.choice(["VALID", "SAME"]))
        out_w = -(-w // stride) if padding == "SAME" else (w - k + stride) // stride
        if out_w < 2:
            break
        oc = int(rng.integers(2, cmax + 1))
        if k * c > 512:
            break
        layers.append(dict(kind="conv", filters=oc, k=k, stride=stride, padding=padding,
                           activation=str(rng.choice(["NONE", "RELU", "RELU6"]))))
        w, c = out_w, oc
        if rng.random() < 0.6 and w >= 4:
            pk = int(rng.integers(2, 5))
            layers.append(dict(kind=str(rng.choice(["maxpool", "avgpool"])), k=pk, padding="VALID"))
            w //= pk
    while w * c > 512:
        layers.append(dict(kind="maxpool", k=2, padding="VALID"))
        w //= 2
    if rng.random() < 0.7:
        layers.append(dict(kind="fc", units=int(rng.integers(4, 33 if small else 65)),
                           activation=str(rng.choice(["NONE", "RELU"]))))
    layers.append(dict(kind="fc", units=2, activation="NONE"))
    return layers


def _conv1d(x, wt, b, stride, padding):
    n, w_in, _ = x.shape
    oc, k, _ = wt.shape
    if padding == "SAME":
        out = -(-w_in // stride)
        total = max((out - 1) * stride + k - w_in, 0)
        x = np.pad(x, ((0, 0), (total // 2, total - total // 2), (0, 0)))
    else:
        out = (w_in - k + stride) // stride
    cols = np.stack([x[:, i * stride:i * stride + k, :].reshape(n, -1) for i in range(out)], axis=1)
    return cols @ wt.reshape(oc, -1).T + b


def _act(x, a):
    return np.maximum(x, 0) if a == "RELU" else np.clip(x, 0, 6) if a == "RELU6" else x


def _pool(x, kind, k):
    n, w, c = x.shape
    x = x[:, :(w // k) * k].reshape(n, w // k, k, c)
    return x.max(axis=2) if kind == "maxpool" else x.mean(axis=2)


def _forward(layers, params, x):
    """Float forward pass; returns every layer's output."""
    outs, h = [], x[:, :, None]
    for lay, p in zip(layers, params, strict=True):
        if lay["kind"] == "conv":
            h = _act(_conv1d(h, p["w"], p["b"], lay["stride"], lay["padding"]), lay["activation"])
        elif lay["kind"] in ("maxpool", "avgpool"):
            h = _pool(h, lay["kind"], lay["k"])
        else:
            h = _act(h.reshape(h.shape[0], -1) @ p["w"].T + p["b"], lay["activation"])
        outs.append(h)
    return outs


def _draw_params(layers, rng):
    params, c, w = [], 1, WINDOW
    for lay in layers:
        if lay["kind"] == "conv":
            k, oc = lay["k"], lay["filters"]
            gain = rng.uniform(0.3, 2.0, (oc, 1, 1))
            params.append(dict(w=gain * rng.standard_normal((oc, k, c)) * np.sqrt(2.0 / (k * c)),
                               b=rng.normal(0, 0.1, oc)))
            c = oc
            w = -(-w // lay["stride"]) if lay["padding"] == "SAME" else (w - k + lay["stride"]) // lay["stride"]
        elif lay["kind"] in ("maxpool", "avgpool"):
            params.append({})
            w //= lay["k"]
        else:
            n_in = w * c
            params.append(dict(w=rng.standard_normal((lay["units"], n_in)) * np.sqrt(2.0 / n_in),
                               b=rng.normal(0, 0.1, lay["units"])))
            w, c = 1, lay["units"]
    return params


def random_pulse_cnn(seed: int = 0, precision: str = "int8", layers: list[dict] | None = None,
                     small: bool = False) -> PulseNet:
    """A random pulse CNN as .tflite bytes (``layers`` as :func:`random_layers` gives them, default drawn from
    ``seed``)."""
    if precision not in ("int8", "16x8"):
        raise ValueError(f"precision must be 'int8' or '16x8', not {precision!r}")
    rng = np.random.default_rng(seed)
    layers = layers if layers is not None else random_layers(rng, small)
    params = _draw_params(layers, rng)
    calib = pulse_windows(32, seed=seed + 1)
    outs = _forward(layers, params, calib)
    wide = precision == "16x8"
    act_type = TensorType.INT16 if wide else TensorType.INT8

    def quant(values):      # a dead (all-zero) tensor still gets a usable range
        if wide:
            return float(np.float32(max(np.abs(values).max(), 1e-2) / 32767.0)), 0
        return activation_quantisation(float(values.min()), max(float(values.max()), float(values.min()) + 1e-2))

    wr = _Writer()
    in_q = quant(calib)
    shape = (1, 1, WINDOW, 1)
    cur = wr.tensor("input", shape, act_type, scale=[in_q[0]], zero_point=[in_q[1]])
    cur_q = in_q
    for i, (lay, p, val) in enumerate(zip(layers, params, outs, strict=True)):
        last = i == len(layers) - 1
        name = "output" if last else f"t{i}_{lay['kind']}"
        if lay["kind"] in ("maxpool", "avgpool"):
            out_q = cur_q
        else:
            out_q = quant(val)
        out_shape = (1, 1, val.shape[1], val.shape[2]) if val.ndim == 3 else (1, val.shape[1])
        if lay["kind"] == "fc" and len(shape) != 2:          # flatten [1, 1, W, C] before the first FC
            flat = (1, int(np.prod(shape[1:])))
            t = wr.tensor(f"t{i}_flat", flat, act_type, scale=[cur_q[0]], zero_point=[cur_q[1]])
            shape_t = wr.tensor(f"t{i}_shape", (2,), TensorType.INT32,
                                buffer=wr.buffer(np.asarray(flat, "<i4").tobytes()))
            wr.operator(BuiltinOperator.RESHAPE, 1, [cur, shape_t], [t], BuiltinOptions.ReshapeOptions,
                        _reshape_options(flat))
            cur = t
        out = wr.tensor(name, out_shape, act_type, scale=[out_q[0]], zero_point=[out_q[1]])
        if lay["kind"] in ("maxpool", "avgpool"):
            code = BuiltinOperator.MAX_POOL_2D if lay["kind"] == "maxpool" else BuiltinOperator.AVERAGE_POOL_2D
            wr.operator(code, 3 if wide else 2, [cur], [out], BuiltinOptions.Pool2DOptions,
                        _pool_options(lay["k"], lay["padding"]))
        else:
            _write_weighted(wr, lay, p, cur, out, cur_q[0], wide)
        cur, cur_q, shape = out, out_q, out_shape
    data = wr.finish([0], [cur], f"rampart pulsedl random CNN seed {seed} {precision}")
    return PulseNet(data, precision, in_q, tuple(layers))


def _write_weighted(wr, lay, p, cur, out, in_scale, wide):
    if lay["kind"] == "conv":
        w = p["w"][:, None, :, :]                           # (oc, 1, k, ic)
        qw, w_scale = _quantize_weights(w, depthwise=False)
    else:
        w = p["w"]
        scale = np.float32(max(np.abs(w).max(), 1e-12) / 127.0)
        qw = np.clip(np.rint(w / np.float64(scale)), -127, 127).astype(np.int8)
        w_scale = np.asarray([scale], np.float32)
    n_out = qw.shape[0]
    b_scale = np.float64(np.float32(in_scale)) * np.broadcast_to(w_scale, (n_out,)).astype(np.float64)
    limit = (1 << 47) if wide else (1 << 31) - 1
    bias = np.clip(np.rint(p["b"] / b_scale), -limit, limit).astype("<i8" if wide else "<i4")
    w_t = wr.tensor(f"{lay['kind']}_w{out}", qw.shape, TensorType.INT8, buffer=wr.buffer(qw.tobytes()),
                    scale=w_scale, zero_point=np.zeros(len(w_scale), np.int64), axis=0)
    b_q = b_scale if len(w_scale) > 1 else b_scale[:1]      # per-tensor weights: a per-tensor bias scale
    b_t = wr.tensor(f"{lay['kind']}_b{out}", (n_out,), TensorType.INT64 if wide else TensorType.INT32,
                    buffer=wr.buffer(bias.tobytes()), scale=b_q.astype(np.float32),
                    zero_point=np.zeros(len(b_q), np.int64), axis=0)
    if lay["kind"] == "conv":
        spec = SimpleNamespace(padding=lay["padding"], stride=(1, lay["stride"]), activation=lay["activation"])
        wr.operator(BuiltinOperator.CONV_2D, 4 if wide else 3, [cur, w_t, b_t], [out],
                    BuiltinOptions.Conv2DOptions, _conv_options(spec))
    else:
        spec = SimpleNamespace(activation=lay["activation"])
        wr.operator(BuiltinOperator.FULLY_CONNECTED, 7 if wide else 4, [cur, w_t, b_t], [out],
                    BuiltinOptions.FullyConnectedOptions, _fc_options(spec))


def _pool_options(k: int, padding: str):
    def build(b):
        Pool2DOptions.Start(b)
        Pool2DOptions.AddPadding(b, getattr(Padding, padding))
        Pool2DOptions.AddStrideH(b, 1)
        Pool2DOptions.AddStrideW(b, k)
        Pool2DOptions.AddFilterHeight(b, 1)
        Pool2DOptions.AddFilterWidth(b, k)
        Pool2DOptions.AddFusedActivationFunction(b, _ACT_CODE["NONE"])
        return Pool2DOptions.End(b)
    return build
