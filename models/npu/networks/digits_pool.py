"""The 8x8 digits CNN with real pooling and an FC + softmax head, trained here in numpy on scikit-learn's digits:
8x8x1 -> conv 3x3 SAME 16 ReLU -> max pool 2x2 -> conv 3x3 SAME 32 ReLU -> average pool 4x4 -> flatten -> FC 10 ->
softmax. Same data, split and int8 input (``pixel - 128``, scale 1/16) as :mod:`models.npu.digits`; trained with
softmax cross-entropy and Adam (im2col convolutions, hand-written backprop), then quantised post-training with the
activation ranges of the training images (:class:`~models.npu.tflite_graph.Graph`). Deterministic in the seed;
the trained float parameters are cached under ``<rampart cache>/models`` keyed by a hash of this file, the seed and
the numpy version (training takes a few seconds)."""
from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from ..digits import INPUT_SCALE, INPUT_ZERO_POINT, _one_blas_thread, load_split
from ..tflite_graph import Graph, GraphModel

C1, C2, CLASSES = 16, 32, 10


def _im2col(x: np.ndarray) -> np.ndarray:
    """3x3 SAME patches of NHWC ``x``: (N*H*W, 9*C), columns in (ky, kx, c) order (OHWI weights)."""
    n, h, w, c = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = [xp[:, ky:ky + h, kx:kx + w, :] for ky in range(3) for kx in range(3)]
    return np.concatenate(cols, axis=-1).reshape(n * h * w, 9 * c)


def _col2im(dcols: np.ndarray, shape) -> np.ndarray:
    n, h, w, c = shape
    dxp = np.zeros((n, h + 2, w + 2, c))
    d = dcols.reshape(n, h, w, 9, c)
    for i, (ky, kx) in enumerate((ky, kx) for ky in range(3) for kx in range(3)):
        dxp[:, ky:ky + h, kx:kx + w, :] += d[:, :, :, i, :]
    return dxp[:, 1:-1, 1:-1, :]


def _init(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"w1": rng.normal(0, np.sqrt(2 / 9), (C1, 9)), "b1": np.zeros(C1),
            "w2": rng.normal(0, np.sqrt(2 / (9 * C1)), (C2, 9 * C1)), "b2": np.zeros(C2),
            "w3": rng.normal(0, np.sqrt(1 / C2), (CLASSES, C2)), "b3": np.zeros(CLASSES)}


def _forward(p, x):
    n = len(x)
    x1 = _im2col(x)
    a1 = np.maximum(x1 @ p["w1"].T + p["b1"], 0).reshape(n, 8, 8, C1)
    blocks = a1.reshape(n, 4, 2, 4, 2, C1)
    m1 = blocks.max(axis=(2, 4))
    x2 = _im2col(m1)
    a2 = np.maximum(x2 @ p["w2"].T + p["b2"], 0).reshape(n, 4, 4, C2)
    feat = a2.mean(axis=(1, 2))
    logits = feat @ p["w3"].T + p["b3"]
    return logits, (x1, a1, blocks, m1, x2, a2, feat)


def _backward(p, cache, dlogits):
    x1, a1, blocks, m1, x2, a2, feat = cache
    n = len(dlogits)
    g = {"w3": dlogits.T @ feat, "b3": dlogits.sum(0)}
    da2 = np.broadcast_to((dlogits @ p["w3"])[:, None, None, :] / 16.0, a2.shape) * (a2 > 0)
    d2 = da2.reshape(-1, C2)
    g["w2"], g["b2"] = d2.T @ x2, d2.sum(0)
    dm1 = _col2im(d2 @ p["w2"], m1.shape)
    mask = blocks == m1[:, :, None, :, None, :]
    dblocks = mask * dm1[:, :, None, :, None, :] / mask.sum(axis=(2, 4), keepdims=True)
    d1 = (dblocks.reshape(n, 8, 8, C1) * (a1 > 0)).reshape(-1, C1)
    g["w1"], g["b1"] = d1.T @ x1, d1.sum(0)
    return g


def train(seed: int = 0, epochs: int = 30, batch: int = 64, lr: float = 3e-3) -> tuple[dict, object]:
    """Float parameters trained on the training split (Adam); returns (params, split)."""
    with _one_blas_thread():
        return _train(seed, epochs, batch, lr)


def _train(seed: int, epochs: int, batch: int, lr: float) -> tuple[dict, object]:
    split = load_split(seed)
    rng = np.random.default_rng(seed)
    p = _init(rng)
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(val) for k, val in p.items()}
    step = 0
    for _ in range(epochs):
        order = rng.permutation(len(split.y_train))
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            logits, cache = _forward(p, split.x_train[idx])
            prob = np.exp(logits - logits.max(1, keepdims=True))
            prob /= prob.sum(1, keepdims=True)
            prob[np.arange(len(idx)), split.y_train[idx]] -= 1.0
            grads = _backward(p, cache, prob / len(idx))
            step += 1
            for k in p:
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
                p[k] -= lr * (m[k] / (1 - 0.9**step)) / (np.sqrt(v[k] / (1 - 0.999**step)) + 1e-8)
    return p, split


def float_accuracy(p, split) -> float:
    logits, _ = _forward(p, split.x_test)
    return float(np.mean(np.argmax(logits, 1) == split.y_test))


def trained(seed: int = 0) -> tuple[dict, object]:
    """:func:`train`, cached on disk; returns (params, split)."""
    from base import cache_root

    key = hashlib.sha256(Path(__file__).read_bytes() + f"{seed} {np.__version__}".encode()).hexdigest()[:20]
    path = cache_root() / "models" / f"digits_pool-{key}.npz"
    if path.exists():
        with np.load(path) as d:
            return {k: d[k] for k in d.files}, load_split(seed)
    p, split = train(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=path.parent)
    with os.fdopen(fd, "wb") as f:
        np.savez(f, **p)
    os.replace(tmp, path)
    return p, split


def build(seed: int = 0) -> GraphModel:
    p, split = trained(seed)
    g = Graph("digits-pool", seed)
    lo = (-128 - INPUT_ZERO_POINT) * INPUT_SCALE
    x = g.input((8, 8, 1), lo, (127 - INPUT_ZERO_POINT) * INPUT_SCALE)
    x = g.conv2d(x, C1, activation="RELU", weights=p["w1"].reshape(C1, 3, 3, 1), bias=p["b1"])
    x = g.max_pool(x, (2, 2))
    x = g.conv2d(x, C2, activation="RELU", weights=p["w2"].reshape(C2, 3, 3, C1), bias=p["b2"])
    x = g.reshape(g.avg_pool(x, (4, 4)), (C2,))
    g.output(g.softmax(g.fully_connected(x, CLASSES, weights=p["w3"], bias=p["b3"])))
    model = g.build([split.x_train])
    return model
