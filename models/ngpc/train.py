"""Training a neural field (grid encoding + fully fused MLP) on the CPU, in numpy, with Adam.

The forward pass is the float reference's (:func:`models.ngpc.reference.level_corners`: tiny-cuda-nn's scale,
corner order, hash and float32 weights; :func:`models.ngpc.mlp.mlp_float`: ReLU, no biases). The backward pass
scatters the feature gradients onto the table entries with the same corner weights (``np.bincount``), as
tiny-cuda-nn's grid backward does. Adam with tiny-cuda-nn's defaults (beta1 0.9, beta2 0.99, eps 1e-15), tables
initialised uniform in +-1e-4, weights Xavier-uniform; the learning rate steps down by 3x at 60 % and 85 % of the
steps.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from models.ngpc.mlp import mlp_float
from models.ngpc.params import GridConfig, levels
from models.ngpc.reference import encode_float, level_corners

__all__ = ["Adam", "NeuralField", "Sampler", "TrainLog", "fit", "init_field"]

#: ``sampler(rng, n) -> (x, target)``: positions (n, D) in [0, 1) and target outputs (n, outputs).
Sampler = Callable[[np.random.Generator, int], tuple[np.ndarray, np.ndarray]]


@dataclass
class NeuralField:
    """Float parameters of a grid-encoded MLP: per-level tables (params_l, F) and weight matrices (out, in)."""
    grid: GridConfig
    tables: list[np.ndarray]
    weights: list[np.ndarray]

    @property
    def outputs(self) -> int:
        return self.weights[-1].shape[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The float reference: :func:`encode_float` (float32 sums) then :func:`mlp_float`."""
        return mlp_float(self.weights, encode_float(self.grid, self.tables, x))


@dataclass
class TrainLog:
    losses: list[float] = field(default_factory=list)   #: mean training loss per step
    seconds: float = 0.0


class Adam:
    def __init__(self, params: list[np.ndarray], lr: float, beta1=0.9, beta2=0.99, eps=1e-15):
        self.params, self.lr, self.beta1, self.beta2, self.eps = params, lr, beta1, beta2, eps
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.t = 0

    def step(self, grads: list[np.ndarray]) -> None:
        self.t += 1
        c1, c2 = 1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            p -= (self.lr / c1) * m / (np.sqrt(v / c2) + self.eps)


def init_field(grid: GridConfig, width: int, hidden_layers: int, outputs: int, rng: np.random.Generator):
    tables = [rng.uniform(-1e-4, 1e-4, (lv.params, grid.features)).astype(np.float32) for lv in levels(grid)]
    shapes = [(width, grid.levels * grid.features)] + [(width, width)] * (hidden_layers - 1) + [(outputs, width)]
    weights = [rng.uniform(-1, 1, s).astype(np.float32) * np.float32(np.sqrt(6 / sum(s))) for s in shapes]
    return NeuralField(grid, tables, weights)


def _encode(net: NeuralField, x: np.ndarray):
    """Features (N, L*F) and, per level, the corners' (index, weight) for the backward pass."""
    grid = net.grid
    feats = np.zeros((len(x), grid.levels * grid.features), dtype=np.float32)
    corners = []
    for level, table in zip(levels(grid), net.tables, strict=True):
        acc = feats[:, level.index * grid.features:(level.index + 1) * grid.features]
        level_c = list(level_corners(level, x))
        for index, weight in level_c:
            acc += weight[:, None] * table[index]
        corners.append(level_c)
    return feats, corners


def _grads(net: NeuralField, x: np.ndarray, target: np.ndarray, channel_weight: np.ndarray):
    """(loss, gradients of tables + weights) of the weighted mean squared error."""
    feats, corners = _encode(net, x)
    acts = [feats]
    for k, w in enumerate(net.weights):
        y = acts[-1] @ w.T
        acts.append(np.maximum(y, 0) if k < len(net.weights) - 1 else y)
    err = acts[-1] - target
    loss = float(np.mean(channel_weight * err * err))
    g = (2 / err.size) * channel_weight * err
    w_grads = [None] * len(net.weights)
    for k in range(len(net.weights) - 1, -1, -1):
        w_grads[k] = g.T @ acts[k]
        g = g @ net.weights[k]
        if k:
            g = g * (acts[k] > 0)
    t_grads = []
    for level, table, level_c in zip(levels(net.grid), net.tables, corners, strict=True):
        gf = g[:, level.index * net.grid.features:(level.index + 1) * net.grid.features]
        tg = np.zeros_like(table)
        for index, weight in level_c:
            for k in range(net.grid.features):
                tg[:, k] += np.bincount(index.astype(np.int64), weights=weight * gf[:, k], minlength=len(table))
        t_grads.append(tg)
    return loss, t_grads + [wg.astype(np.float32) for wg in w_grads]


def fit(net: NeuralField, sampler: Sampler, steps: int, batch: int, rng: np.random.Generator, lr: float = 1e-2,
        channel_weight: np.ndarray | None = None, log: Callable[[int, float], None] | None = None) -> TrainLog:
    """Train ``net`` in place on ``steps`` batches of ``batch`` samples from ``sampler`` (one BLAS thread: the
    matrices are small and BLAS threads only contend on a shared machine)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _fit(net, sampler, steps, batch, rng, lr, channel_weight, log)


def _fit(net, sampler, steps, batch, rng, lr, channel_weight, log) -> TrainLog:
    import time

    start = time.process_time()
    params = net.tables + net.weights
    opt = Adam(params, lr)
    cw = np.ones(net.outputs, np.float32) if channel_weight is None else np.asarray(channel_weight, np.float32)
    out = TrainLog()
    for step in range(steps):
        opt.lr = lr / (3 ** ((step >= 0.6 * steps) + (step >= 0.85 * steps)))
        x, target = sampler(rng, batch)
        loss, grads = _grads(net, x.astype(np.float32), target.astype(np.float32), cw)
        opt.step(grads)
        out.losses.append(loss)
        if log is not None and (step % 100 == 0 or step == steps - 1):
            log(step, loss)
    out.seconds = time.process_time() - start
    return out
