"""The 8x8-digits CNN: a small all-convolutional int8 classifier for the NPU, trained here in numpy.

Data: scikit-learn's bundled ``load_digits`` (1,797 8x8 images, pixels 0..16). A fixed split drawn from
``TrainConfig.seed`` holds out ``held_out`` of the images; the rest trains the float model and calibrates the int8
activation ranges. Real input = pixel / 16 in [0, 1]; the int8 input uses scale 1/16 and zero point -128, so
``q = pixel - 128`` is exact (no input quantisation error).

Model (:data:`SPEC`): six CONV_2D layers with ReLU, strided convolutions instead of pooling:
8x8x1 -> 3x3 s1 SAME 8 -> 3x3 s2 SAME 16 -> 3x3 s1 SAME 16 -> 3x3 s2 SAME 32 -> 2x2 VALID 32 -> 1x1 10 (logits, no
activation, output ``(1, 1, 1, 10)``). The classifier head is a 1x1 convolution rather than FULLY_CONNECTED on
purpose: Vela emits double rounding for FC (as for conv) while LiteRT's reference FC rounds once, so an FC head
would differ from LiteRT by 1 LSB on ~0.15% of outputs (``models/npu/SPEC.md`` section 4); CONV_2D is bit-exact.
SAME padding follows TFLite (``pad_before = total // 2``, the extra row/column after), so the float and int8 graphs
compute the same function.

Training: im2col convolutions with hand-written backprop, softmax cross-entropy, Adam; deterministic in the seed
(single-threaded numbers may still differ in the last bits between BLAS builds, which is why only properties of the
result are tested). Quantisation: :func:`models.npu.tflite_builder.quantize_parameters` (per-channel weights,
per-tensor activations calibrated on the training images). The trained float parameters are cached under
``<rampart cache>/models`` keyed by a hash of this file, the config and the numpy version.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np

from .tflite_builder import Conv2D, FloatLayer, ModelSpec, TfliteModel, build_model, quantize_parameters

INPUT_SCALE = 1.0 / 16.0
INPUT_ZERO_POINT = -128
N_CLASSES = 10

SPEC = ModelSpec(
    input_shape=(8, 8, 1),
    layers=(
        Conv2D(8, (3, 3), (1, 1), "SAME", "RELU"),
        Conv2D(16, (3, 3), (2, 2), "SAME", "RELU"),
        Conv2D(16, (3, 3), (1, 1), "SAME", "RELU"),
        Conv2D(32, (3, 3), (2, 2), "SAME", "RELU"),
        Conv2D(32, (2, 2), (1, 1), "VALID", "RELU"),
        Conv2D(N_CLASSES, (1, 1), (1, 1), "VALID", "NONE"),
    ),
    input_scale=INPUT_SCALE,
    input_zero_point=INPUT_ZERO_POINT,
)

__all__ = ["INPUT_SCALE", "INPUT_ZERO_POINT", "SPEC", "DigitsModel", "DigitsSplit", "TrainConfig", "dequantize_input",
           "digits_model", "float_logits", "load_split", "quantize_input", "train", "trained_params"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything the trained model depends on (besides this file and numpy)."""

    seed: int = 0
    held_out: float = 0.3
    epochs: int = 60
    batch: int = 32
    learning_rate: float = 2e-3
    lr_decay: float = 0.96       # per epoch
    weight_decay: float = 1e-4   # L2 on the weights (not biases)

    def __post_init__(self) -> None:
        if not 0.05 <= self.held_out <= 0.9:
            raise ValueError(f"held_out must be in 0.05..0.9, got {self.held_out!r}")
        if self.epochs < 1 or self.batch < 1 or self.learning_rate <= 0:
            raise ValueError("epochs, batch and learning_rate must be positive")


# --- data -----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class DigitsSplit:
    """Images as NHWC float in [0, 1] (pixel / 16) and integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float64), bunch.target.astype(np.int64)


def load_split(seed: int = 0, held_out: float = 0.3) -> DigitsSplit:
    """The fixed train / held-out split of ``load_digits`` for ``seed``."""
    images, labels = _digits()
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = round(held_out * len(labels))
    test, train_ = order[:n_test], order[n_test:]
    x = (images / 16.0)[..., None]
    return DigitsSplit(x[train_], labels[train_], x[test], labels[test])


def quantize_input(x: np.ndarray) -> np.ndarray:
    """int8 input tensor(s) of images in [0, 1] (multiples of 1/16): ``pixel - 128``."""
    return np.clip(np.rint(np.asarray(x) / INPUT_SCALE) + INPUT_ZERO_POINT, -128, 127).astype(np.int8)


def dequantize_input(q: np.ndarray) -> np.ndarray:
    """Images in [0, 1] of int8 input tensor(s) (the inverse of :func:`quantize_input`)."""
    return (np.asarray(q, dtype=np.float64) - INPUT_ZERO_POINT) * INPUT_SCALE


def _one_blas_thread():
    """Small matrices: BLAS threads only contend (badly, on a shared 2-core machine) and cost reproducibility.
    threadpoolctl comes with scikit-learn."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


# --- float model: im2col convolutions with TFLite padding ----------------------------------------------------------

def _pads(size: int, k: int, s: int, padding: str) -> tuple[int, int]:
    if padding == "VALID":
        return 0, 0
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _geometry(layer: Conv2D, h: int, w: int) -> tuple[tuple[int, int], tuple[int, int], int, int]:
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    ph, pw = _pads(h, kh, sh, layer.padding), _pads(w, kw, sw, layer.padding)
    oh = (h + sum(ph) - kh) // sh + 1
    ow = (w + sum(pw) - kw) // sw + 1
    return ph, pw, oh, ow


def _im2col(x: np.ndarray, layer: Conv2D) -> np.ndarray:
    """(N, OH, OW, KH*KW*C) patches in the OHWI weight order."""
    n, h, w, c = x.shape
    ph, pw, oh, ow = _geometry(layer, h, w)
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    xp = np.pad(x, ((0, 0), ph, pw, (0, 0)))
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = xp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]
    return cols.reshape(n, oh, ow, kh * kw * c)


def _col2im(dcols: np.ndarray, layer: Conv2D, in_shape: tuple[int, ...]) -> np.ndarray:
    """Adjoint of :func:`_im2col`: scatter-add patch gradients back onto the input."""
    n, h, w, c = in_shape
    ph, pw, oh, ow = _geometry(layer, h, w)
    (kh, kw), (sh, sw) = layer.kernel, layer.stride
    d = dcols.reshape(n, oh, ow, kh, kw, c)
    dxp = np.zeros((n, h + sum(ph), w + sum(pw), c), dtype=dcols.dtype)
    for i in range(kh):
        for j in range(kw):
            dxp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :] += d[:, :, :, i, j, :]
    return dxp[:, ph[0]:ph[0] + h, pw[0]:pw[0] + w, :]


def _layer(layer: Conv2D, p: FloatLayer, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pre-activation, output) of one layer from its patches."""
    z = cols @ p.weights.reshape(p.weights.shape[0], -1).T + p.bias
    return z, (np.maximum(z, 0.0) if layer.activation == "RELU" else z)


def _forward(params: list[FloatLayer], x: np.ndarray, keep: bool = False):
    """Logits (N, 10) and, with ``keep``, every layer's (input shape, patches, pre-activation) for backprop."""
    tape = []
    for layer, p in zip(SPEC.layers, params, strict=True):
        cols = _im2col(x, layer)
        z, y = _layer(layer, p, cols)
        if keep:
            tape.append((x.shape, cols, z))
        x = y
    logits = x.reshape(x.shape[0], -1)
    return (logits, tape) if keep else logits


def float_logits(params: list[FloatLayer], x: np.ndarray) -> np.ndarray:
    """The float model's logits for NHWC images in [0, 1]."""
    with _one_blas_thread():
        return _forward(params, np.asarray(x, dtype=np.float64))


def _layer_outputs(params: list[FloatLayer], x: np.ndarray) -> list[np.ndarray]:
    outs = []
    for layer, p in zip(SPEC.layers, params, strict=True):
        x = _layer(layer, p, _im2col(x, layer))[1]
        outs.append(x)
    return outs


def _gradients(params: list[FloatLayer], x: np.ndarray, y: np.ndarray) -> tuple[float, list[tuple]]:
    """Mean softmax cross-entropy and its gradient (dW, db) per layer."""
    logits, tape = _forward(params, x, keep=True)
    shifted = logits - logits.max(axis=1, keepdims=True)
    prob = np.exp(shifted)
    prob /= prob.sum(axis=1, keepdims=True)
    n = len(y)
    loss = float(-np.log(prob[np.arange(n), y] + 1e-12).mean())
    dz = prob
    dz[np.arange(n), y] -= 1.0
    dz = (dz / n).reshape(tape[-1][2].shape)
    grads: list[tuple] = [None] * len(params)
    for i in range(len(params) - 1, -1, -1):
        in_shape, cols, z = tape[i]
        layer, p = SPEC.layers[i], params[i]
        if layer.activation == "RELU":
            dz = dz * (z > 0)
        o = p.weights.shape[0]
        dz2 = dz.reshape(-1, o)
        dw = (dz2.T @ cols.reshape(-1, cols.shape[-1])).reshape(p.weights.shape)
        grads[i] = (dw, dz2.sum(axis=0))
        if i:
            dx = _col2im(dz2 @ p.weights.reshape(o, -1), layer, in_shape)
            dz = dx
    return loss, grads


def _init(rng: np.random.Generator) -> list[FloatLayer]:
    params = []
    c = SPEC.input_shape[-1]
    for layer in SPEC.layers:
        fan_in = layer.kernel[0] * layer.kernel[1] * c
        w = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=(layer.out_channels, *layer.kernel, c))
        params.append(FloatLayer(w, np.zeros(layer.out_channels)))
        c = layer.out_channels
    return params


def train(config: TrainConfig = TrainConfig()) -> list[FloatLayer]:
    """Train the float model on the training part of the split (Adam, minibatches; deterministic in the seed)."""
    with _one_blas_thread():
        return _train(config)


_BETA1, _BETA2, _EPS = 0.9, 0.999, 1e-8  # Adam's usual constants (Kingma & Ba, 2015)


def _adam_step(flat: list[np.ndarray], grads: list[np.ndarray], m: list[np.ndarray], v: list[np.ndarray], t: int,
               lr: float, weight_decay: float) -> None:
    """One Adam update of ``flat`` in place (weights at even positions get L2 weight decay, biases do not)."""
    for k, g in enumerate(grads):
        if k % 2 == 0:
            g = g + weight_decay * flat[k]
        m[k] = _BETA1 * m[k] + (1 - _BETA1) * g
        v[k] = _BETA2 * v[k] + (1 - _BETA2) * g * g
        mhat = m[k] / (1 - _BETA1 ** t)
        vhat = v[k] / (1 - _BETA2 ** t)
        flat[k] -= lr * mhat / (np.sqrt(vhat) + _EPS)


def _train(config: TrainConfig) -> list[FloatLayer]:
    split = load_split(config.seed, config.held_out)
    rng = np.random.default_rng([config.seed, 1])
    params = _init(rng)
    flat = [a for p in params for a in (p.weights, p.bias)]  # the arrays params hold, updated in place
    m = [np.zeros_like(a) for a in flat]
    v = [np.zeros_like(a) for a in flat]
    n, t = len(split.y_train), 0
    for epoch in range(config.epochs):
        lr = config.learning_rate * config.lr_decay ** epoch
        order = rng.permutation(n)
        for start in range(0, n, config.batch):
            idx = order[start:start + config.batch]
            _, grads = _gradients(params, split.x_train[idx], split.y_train[idx])
            t += 1
            _adam_step(flat, [g for dw, db in grads for g in (dw, db)], m, v, t, lr, config.weight_decay)
    return params


# --- the trained, quantised model -----------------------------------------------------------------------------------

def _calibrate(params: list[FloatLayer], x: np.ndarray) -> list[tuple[float, float]]:
    """Real (min, max) of every layer's output over ``x`` (the training images)."""
    with _one_blas_thread():
        return [(float(o.min()), float(o.max())) for o in _layer_outputs(params, x)]


@dataclass(frozen=True, eq=False)
class DigitsModel:
    """The trained float model, its int8 .tflite and the data split it was trained and evaluated on."""

    config: TrainConfig
    params: tuple[FloatLayer, ...]
    output_ranges: tuple[tuple[float, float], ...]
    tflite: TfliteModel
    split: DigitsSplit

    @property
    def data(self) -> bytes:
        return self.tflite.data

    def held_out_input(self, index: int) -> tuple[np.ndarray, int]:
        """(int8 input of shape (1, 8, 8, 1), true label) of held-out image ``index``."""
        if not 0 <= index < len(self.split.y_test):
            raise IndexError(f"held-out image index must be in 0..{len(self.split.y_test) - 1}, got {index}")
        return quantize_input(self.split.x_test[index:index + 1]), int(self.split.y_test[index])

    def float_predictions(self, x: np.ndarray | None = None) -> np.ndarray:
        """Float-model classes of ``x`` (default: all held-out images)."""
        return float_logits(list(self.params), self.split.x_test if x is None else x).argmax(axis=1)

    def int8_predictions(self, x_int8: np.ndarray | None = None) -> np.ndarray:
        """Classes from LiteRT's reference kernels on the int8 model (default: all held-out images)."""
        from .reference import ReferenceModel

        ref = ReferenceModel(self.data)
        xs = quantize_input(self.split.x_test) if x_int8 is None else np.asarray(x_int8, dtype=np.int8)
        return np.array([int(np.argmax(ref.run(x.reshape(1, *SPEC.input_shape)))) for x in xs])

    def float_accuracy(self) -> float:
        return float((self.float_predictions() == self.split.y_test).mean())

    def int8_accuracy(self) -> float:
        return float((self.int8_predictions() == self.split.y_test).mean())


def _cache_key(config: TrainConfig) -> str:
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(repr(sorted(asdict(config).items())).encode())
    h.update(np.__version__.encode())
    return h.hexdigest()[:20]


def _cache_dir() -> Path:
    from base import cache_root

    return cache_root() / "models"


def _save(path: Path, params: list[FloatLayer]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"w{i}": p.weights for i, p in enumerate(params)} | {f"b{i}": p.bias for i, p in enumerate(params)}
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)  # atomic publish; a concurrent identical training run loses harmlessly
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _load(path: Path) -> list[FloatLayer] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            return [FloatLayer(z[f"w{i}"], z[f"b{i}"]) for i in range(len(SPEC.layers))]
    except (OSError, KeyError, ValueError):
        return None


def trained_params(config: TrainConfig = TrainConfig(), *, use_cache: bool = True) -> list[FloatLayer]:
    """:func:`train`, cached on disk (the file is re-trained whenever this module's source changes)."""
    path = _cache_dir() / f"digits-{_cache_key(config)}.npz"
    params = _load(path) if use_cache and path.exists() else None
    if params is None:
        params = train(config)
        if use_cache:
            _save(path, params)
    return params


def digits_model(config: TrainConfig = TrainConfig(), *, use_cache: bool = True) -> DigitsModel:
    """The trained float model and its int8 .tflite (calibrated on the training images)."""
    params = trained_params(config, use_cache=use_cache)
    split = load_split(config.seed, config.held_out)
    ranges = _calibrate(params, split.x_train)
    tflite = build_model(SPEC, quantize_parameters(SPEC, params, ranges))
    return DigitsModel(config, tuple(params), tuple(ranges), tflite, split)
