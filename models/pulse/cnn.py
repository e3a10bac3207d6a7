"""The pulse CNN in float (numpy): forward, backward and Adam training.

Layers follow TFLite's semantics on a [1, 1, W, C] tensor (kept here as (N, W, C)), so the float network is exactly
what the quantised .tflite approximates: :class:`Conv` (1 x K kernel, weights (C_out, K, C_in) = OHWI without H,
SAME padding puts the odd extra sample after), :class:`Pool` (average or max, window = stride = k, VALID), the
flatten (index ``w * C + c``, NHWC order) and :class:`Dense` (weights (out, in)). :data:`ARCHITECTURE` is the network
(contract op subset: 64 samples in, [time, energy] out).

Training (:func:`train`) runs on normalised inputs and targets and folds the normalisation into the first and last
layers afterwards, so the stored network takes fractions of full scale and returns (samples, fraction of full
scale). The loss is each error divided by its Cramer-Rao bound at the pulse's SNR (squared, averaged), i.e. the
network is trained towards efficiency at every SNR at once.
"""
from dataclasses import dataclass, field

import numpy as np

from models.pulse.crlb import crlb
from models.pulse.frontend import AMPLITUDE_RANGE, BASELINE_RANGE, T_TRIGGER, WINDOW, generate

__all__ = ["ARCHITECTURE", "Conv", "Dense", "Network", "Pool", "fake_quantise", "train"]


@dataclass
class Conv:
    k: int
    c_in: int
    c_out: int
    stride: int = 1
    padding: str = "VALID"
    relu: bool = True
    w: np.ndarray = field(default=None, repr=False)
    b: np.ndarray = field(default=None, repr=False)

    def init(self, rng):
        self.w = rng.normal(0, np.sqrt(2.0 / (self.k * self.c_in)), (self.c_out, self.k, self.c_in))
        self.b = np.zeros(self.c_out)

    def out_width(self, width: int) -> int:
        return -(-width // self.stride) if self.padding == "SAME" else (width - self.k) // self.stride + 1

    def _cols(self, x):
        n, width, c = x.shape
        ow = self.out_width(width)
        pad = max((ow - 1) * self.stride + self.k - width, 0)
        xp = np.pad(x, ((0, 0), (pad // 2, pad - pad // 2), (0, 0)))
        idx = np.arange(ow)[:, None] * self.stride + np.arange(self.k)[None, :]
        return xp[:, idx, :].reshape(n, ow, self.k * c), xp.shape, idx

    def forward(self, x):
        self._in_width = x.shape[1]
        cols, self._xp_shape, self._idx = self._cols(x)
        self._cols_cache = cols
        z = cols @ self.w.reshape(self.c_out, -1).T + self.b
        self._mask = z > 0 if self.relu else None
        return np.maximum(z, 0) if self.relu else z

    def backward(self, g):
        if self.relu:
            g = g * self._mask
        cols = self._cols_cache
        flat = g.reshape(-1, self.c_out)
        grads = ((flat.T @ cols.reshape(len(flat), -1)).reshape(self.w.shape), flat.sum(axis=0))
        if self.c_in == 1 and self._in_width == WINDOW:
            return None, grads                      # the input layer: nobody needs d loss / d input
        dcols = (g @ self.w.reshape(self.c_out, -1)).reshape(*g.shape[:2], self.k, self.c_in)
        dxp = np.zeros(self._xp_shape, g.dtype)
        ow = g.shape[1]
        for j in range(self.k):
            dxp[:, j:j + (ow - 1) * self.stride + 1:self.stride] += dcols[:, :, j]
        pad = self._xp_shape[1] - self._in_width
        return dxp[:, pad // 2:pad // 2 + self._in_width], grads

    @property
    def params(self):
        return [self.w, self.b]


@dataclass
class Pool:
    k: int
    kind: str = "avg"      # "avg" | "max"

    def forward(self, x):
        n, width, c = x.shape
        ow = width // self.k
        self._shape = x.shape
        blocks = x[:, :ow * self.k].reshape(n, ow, self.k, c)
        if self.kind == "avg":
            return blocks.mean(axis=2)
        self._arg = blocks.argmax(axis=2)
        return blocks.max(axis=2)

    def backward(self, g):
        n, width, c = self._shape
        ow = width // self.k
        if self.kind == "avg":
            blocks = np.repeat(g[:, :, None, :] / self.k, self.k, axis=2)
        else:
            blocks = (np.arange(self.k)[None, None, :, None] == self._arg[:, :, None, :]) * g[:, :, None, :]
        dx = np.zeros(self._shape, g.dtype)
        dx[:, :ow * self.k] = blocks.reshape(n, ow * self.k, c)
        return dx, ()

    def out_width(self, width: int) -> int:
        return width // self.k

    params = property(lambda self: [])


@dataclass
class Dense:
    n_in: int
    n_out: int
    relu: bool = True
    w: np.ndarray = field(default=None, repr=False)
    b: np.ndarray = field(default=None, repr=False)

    def init(self, rng):
        self.w = rng.normal(0, np.sqrt(2.0 / self.n_in), (self.n_out, self.n_in))
        self.b = np.zeros(self.n_out)

    def forward(self, x):
        self._x = x
        z = x @ self.w.T + self.b
        self._mask = z > 0 if self.relu else None
        return np.maximum(z, 0) if self.relu else z

    def backward(self, g):
        if self.relu:
            g = g * self._mask
        return g @ self.w, (g.T @ self._x, g.sum(axis=0))

    @property
    def params(self):
        return [self.w, self.b]


def ARCHITECTURE():
    """A fresh (untrained) list of the network's layers: conv 1x5x8 -> avgpool 2 -> conv 1x5x16 -> avgpool 2 ->
    flatten -> FC 64 -> FC 2 (all VALID, ReLU but the last)."""
    convs = [Conv(5, 1, 8), Pool(2), Conv(5, 8, 16), Pool(2)]
    width = WINDOW
    for layer in convs:
        width = layer.out_width(width)
    return [*convs, Dense(width * 16, 64), Dense(64, 2, relu=False)]


class Network:
    """Layers in order; a flatten sits between the last pooling layer and the first :class:`Dense`."""

    def __init__(self, layers):
        self.layers = layers

    def forward(self, x: np.ndarray) -> np.ndarray:
        """``x`` (N, 64) fractions of full scale -> (N, 2) [time in samples, amplitude]."""
        h = np.asarray(x, self.layers[0].w.dtype)[:, :, None]
        for layer in self.layers:
            if isinstance(layer, Dense) and h.ndim == 3:
                self._flat_shape = h.shape
                h = h.reshape(len(h), -1)
            h = layer.forward(h)
        return h

    def backward(self, g: np.ndarray) -> list:
        grads = []
        for layer in reversed(self.layers):
            if not isinstance(layer, Dense) and g.ndim == 2:
                g = g.reshape(self._flat_shape)
            g, layer_grads = layer.backward(g)
            grads = list(layer_grads) + grads
        return grads

    @property
    def params(self) -> list[np.ndarray]:
        return [p for layer in self.layers for p in layer.params]

    def save(self, path) -> None:
        np.savez(path, *self.params)

    @classmethod
    def load(cls, path) -> "Network":
        net = cls(ARCHITECTURE())
        with np.load(path) as data:
            arrays = [data[f"arr_{i}"] for i in range(len(data.files))]
        for layer in net.layers:
            if layer.params:
                layer.w, layer.b = arrays.pop(0), arrays.pop(0)
        return net


# Normalisation used while training, folded into the first and last layer afterwards.
_X_SHIFT = float(np.mean(BASELINE_RANGE))
_X_SCALE = 4.0
_Y_SHIFT = np.array([T_TRIGGER + 0.5, float(np.mean(AMPLITUDE_RANGE))])
_Y_SCALE = np.array([4.0, 4.0])


def _fold(net: Network) -> None:
    first = net.layers[0]
    # w . (x - shift) * scale + b  ==  (w scale) . x + (b - shift scale sum(w))
    first.b = first.b - _X_SHIFT * _X_SCALE * first.w.sum(axis=(1, 2))
    first.w = first.w * _X_SCALE
    last = net.layers[-1]
    last.w = last.w / _Y_SCALE[:, None]
    last.b = last.b / _Y_SCALE + _Y_SHIFT


def fake_quantise(w: np.ndarray) -> np.ndarray:
    """``w`` rounded to per-output-channel symmetric int8 (TFLite's weight scheme: scale = max |w| / 127)."""
    flat = w.reshape(len(w), -1)
    scale = np.maximum(np.abs(flat).max(axis=1), 1e-12) / 127.0
    return (np.clip(np.rint(flat / scale[:, None]), -127, 127) * scale[:, None]).reshape(w.shape).astype(w.dtype)


def train(steps: int = 20000, batch: int = 256, n_train: int = 200_000, snr_range=(28.0, 62.0), seed: int = 0,
          lr: float = 2e-3, qat_steps: int = 0, log=None) -> Network:
    """Train a fresh network with Adam on ``n_train`` seeded pulses (SNR uniform in ``snr_range``).

    The last ``qat_steps`` of the ``steps`` are quantisation-aware: the forward pass sees the weights rounded to
    int8 (:func:`fake_quantise`), the update goes to the float weights (straight-through), and the returned weights
    are the rounded ones, so the exported int8 weights are exactly the network that was trained."""
    rng = np.random.default_rng(seed)
    net = Network(ARCHITECTURE())
    for layer in net.layers:
        if layer.params:
            layer.init(rng)
            layer.w, layer.b = layer.w.astype(np.float32), layer.b.astype(np.float32)   # float32 trains 2x faster
    pulses = generate(n_train, snr_range, seed + 1)
    x = ((pulses.samples - _X_SHIFT) * _X_SCALE).astype(np.float32)
    y = (np.stack([pulses.t0, pulses.amplitude], axis=1) - _Y_SHIFT) * _Y_SCALE
    bound_t, bound_a = crlb(0.0)
    scale = 10.0 ** (-pulses.snr_db / 20.0)
    # per-pulse error that counts as "one CRLB", in the normalised units
    unit = np.stack([bound_t * scale * _Y_SCALE[0], bound_a * scale * pulses.amplitude * _Y_SCALE[1]], axis=1)
    weighted = [layer for layer in net.layers if layer.params]
    params = net.params
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, steps + 1):
        idx = rng.integers(0, n_train, batch)
        qat = step > steps - qat_steps
        if qat:
            floats = [layer.w.copy() for layer in weighted]
            for layer in weighted:
                layer.w[...] = fake_quantise(layer.w)
        err = (net.forward(x[idx]) - y[idx]) / unit[idx]
        loss = float(np.mean(err ** 2))
        grads = net.backward((2.0 * err / unit[idx] / err.size).astype(np.float32))
        if qat:
            for layer, w in zip(weighted, floats, strict=True):
                layer.w[...] = w
        rate = lr * 0.5 * (1 + np.cos(np.pi * step / steps))           # cosine decay
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            p -= rate * (m[i] / (1 - beta1 ** step)) / (np.sqrt(v[i] / (1 - beta2 ** step)) + eps)
        if log is not None and step % 1000 == 0:
            log(step, loss)
    for layer in weighted:
        w = layer.w.astype(np.float64)
        layer.w, layer.b = (fake_quantise(w) if qat_steps else w), layer.b.astype(np.float64)
    _fold(net)
    return net
