"""Calibration of the system model's NPU cost model (:mod:`models.system.npu_cost`) against the RTL.

Measures int8 layers and networks on the Verilated NPU through :func:`drivers.npu.run_on_npu` (the total is the
``cycles`` counter at ``done``: exact), at any external-memory bandwidth / latency (``NpuConfig.ext_bandwidth`` /
``ext_latency``: each pair is its own Verilator build), fits the cost model's coefficients with
:func:`scipy.optimize.least_squares` on relative error and validates the fit on workloads it was not fitted on.

Workloads (all from seeds, nothing hand-picked): :func:`fit_layers` / :func:`held_out_layers`: random single-layer
models (conv, depthwise, fully connected; Vela adds identity pools and DMAs where it needs them);
:func:`fit_networks` / :func:`held_out_networks`: random 2-4 layer conv / depthwise / FC stacks (the held-out set
also has the digits CNN); :func:`fit_block_stacks`: random stacks of the blocks real networks use (depthwise-separable,
inverted residual with ADD, residual conv pair, pools, FC head, SOFTMAX: the weight DMAs between ops); every set
from its own seed range, so nothing held out is ever fitted on.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace

import numpy as np

from base import RampartError
from models.npu import tflite_builder as tb
from models.npu import vela
from models.system import npu_cost
from models.system.npu_ops import ops_from_commands

__all__ = ["Measurement", "rtl_key", "Workload", "fit", "fit_block_stacks", "fit_layers", "fit_vector_layers",
           "held_out_layers",
           "held_out_networks", "measure", "network_bodies", "npu_config", "whole_networks"]

#: Seed ranges of the random workloads (disjoint: nothing held out is ever fitted on).
FIT_SEED0, FIT_NET_SEED0, HELD_LAYER_SEED0, HELD_NET_SEED0, FIT_VECTOR_SEED0 = 1000, 7000, 5000, 9000, 3000
FIT_BLOCK_SEED0 = 11000


def rtl_key() -> str:
    """A digest of the NPU's RTL sources (``rtl/npu/*.py``): a cached measurement is valid only for the RTL it was
    run on, so every measurement carries the key and a changed RTL never reuses a stale run."""
    from pathlib import Path

    import rtl.npu

    h = hashlib.sha256()
    for f in sorted(Path(rtl.npu.__file__).parent.glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Workload:
    name: str
    data: bytes        # .tflite


@dataclass(frozen=True)
class Measurement:
    """One RTL run: the workload, the NPU config / memory point, the exact total and per-layer cycles, wall time."""

    workload: str
    config: str
    bandwidth: int
    latency: int
    cycles: int
    layer_cycles: tuple[int, ...]
    wall: float                  # seconds of run_on_npu (Vela artifact cached, build cached)

    def to_json(self) -> dict:
        return {"workload": self.workload, "config": self.config, "bandwidth": self.bandwidth,
                "latency": self.latency, "cycles": self.cycles, "layer_cycles": list(self.layer_cycles),
                "wall": self.wall}

    @classmethod
    def from_json(cls, d: dict) -> Measurement:
        return cls(d["workload"], d["config"], d["bandwidth"], d["latency"], d["cycles"], tuple(d["layer_cycles"]),
                   d["wall"])


def npu_config(config: str, bandwidth: int, latency: int):
    """The preset ``config`` with its external memory at ``bandwidth`` bytes/cycle and ``latency`` cycles."""
    from rtl.npu.config import PRESETS

    return replace(PRESETS[config], ext_bandwidth=bandwidth, ext_latency=latency)


def _random_model(seed: int, n_layers: int, kinds, max_hw: int, max_channels: int) -> Workload:
    rng = np.random.default_rng(seed)
    spec = tb.random_model_spec(rng, n_layers=n_layers, kinds=kinds, max_hw=max_hw, max_channels=max_channels,
                                max_kernel=5)
    return Workload(f"s{seed} {spec.name}", tb.build_model(spec).data)


def _runs_everywhere(w: Workload, configs) -> bool:
    """Whether Vela maps every operator of ``w`` to the NPU for every config (no CPU fallback, compiles)."""
    try:
        for c in configs:
            vela.compile_cached(w.data, c)
    except RampartError:
        return False
    return True


def _draw(seed0: int, n: int, configs, **kw) -> list[Workload]:
    out, seed = [], seed0
    while len(out) < n:
        w = _random_model(seed, **kw)
        if _runs_everywhere(w, configs):
            out.append(w)
        seed += 1
    return out


LAYER_KINDS = ("conv", "conv", "depthwise", "fc")


def _layer_kw():
    return dict(n_layers=1, kinds=tuple("dw" if k == "depthwise" else k for k in LAYER_KINDS), max_hw=24,
                max_channels=48)


def fit_layers(n: int, configs) -> list[Workload]:
    """``n`` random single-layer models for the fit."""
    return _draw(FIT_SEED0, n, configs, **_layer_kw())


def _random_vector_layer(seed: int) -> Workload:
    """One random vector-unit layer: an average or max pool (kernel, stride, padding), an ADD of two inputs, or a
    SOFTMAX (Vela decomposes it into ELEMENTWISE ops and a table lookup)."""
    from models.npu.tflite_graph import Graph

    rng = np.random.default_rng(seed)
    kind = ("avgpool", "maxpool", "add", "softmax")[int(rng.integers(0, 4))]
    h, w, c = (int(rng.integers(1, 25)), int(rng.integers(1, 25)), int(rng.integers(1, 49)))
    if kind == "softmax":
        h, w = int(rng.integers(1, 4)), int(rng.integers(1, 9))
    g = Graph(f"s{seed} {h}x{w}x{c}_{kind}", seed=seed)
    x = g.input((h, w, c))
    if kind == "add":
        g.output(g.add(x, g.input((h, w, c))))
        return Workload(g.name, g.build().data)
    if kind == "softmax":
        g.output(g.softmax(x))
        return Workload(g.name, g.build().data)
    pad = ("VALID", "SAME")[int(rng.integers(0, 2))]
    k = (int(rng.integers(1, min(h, 5) + 1)), int(rng.integers(1, min(w, 5) + 1)))
    st = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    g.name += f"k{k[0]}x{k[1]}s{st[0]}x{st[1]}{pad[0].lower()}"
    g.output((g.avg_pool if kind == "avgpool" else g.max_pool)(x, k, st, pad))
    return Workload(g.name, g.build().data)


def fit_vector_layers(n: int, configs) -> list[Workload]:
    """``n`` random vector-unit layers for the fit (POOL / ELEMENTWISE on the NPU's vector unit)."""
    out, seed = [], FIT_VECTOR_SEED0
    while len(out) < n:
        w = _random_vector_layer(seed)
        if _runs_everywhere(w, configs):
            out.append(w)
        seed += 1
    return out


def held_out_layers(n: int, configs) -> list[Workload]:
    """``n`` random single-layer models from seeds the fit never sees."""
    return _draw(HELD_LAYER_SEED0, n, configs, **_layer_kw())


def _stacks(seed: int, n: int, configs, label: str) -> list[Workload]:
    nets = []
    while len(nets) < n:
        rng = np.random.default_rng(seed)
        w = _random_model(seed, n_layers=int(rng.integers(2, 5)), kinds=("conv", "conv", "dw", "fc"), max_hw=20,
                          max_channels=40)
        if _runs_everywhere(w, configs):
            nets.append(Workload(f"{label} {len(nets) + 1}: " + w.name, w.data))
        seed += 1
    return nets


def _random_block_stack(seed: int) -> Workload:
    """A random stack of the blocks real networks are made of (what single layers never show: the weight DMAs
    between ops, a DMA beside a running op, vector ops after MAC ops): a stem conv, then 1-4 blocks, each a
    depthwise-separable block (depthwise 3x3, stride 1 or 2, then a 1x1 conv), an inverted residual (1x1
    expansion, depthwise, 1x1 projection, a residual ADD when the shape allows) or a 3x3 conv pair with a residual
    ADD; then a head: a global average pool or a 2x2 max pool, optionally a fully connected layer, optionally a
    SOFTMAX."""
    from models.npu.tflite_graph import Graph

    rng = np.random.default_rng(seed)
    hw = int(rng.integers(6, 25))
    c = int(rng.choice([8, 16, 24, 32]))
    g = Graph(f"s{seed} blocks {hw}x{hw}", seed=seed)
    x = g.conv2d(g.input((hw, hw, int(rng.integers(1, 4)))), c, (3, 3), (int(rng.integers(1, 3)),) * 2, "SAME", "RELU")
    for _ in range(int(rng.integers(1, 5))):
        kind = ("separable", "inverted", "residual")[int(rng.integers(0, 3))]
        stride = int(rng.integers(1, 3)) if x.shape[0] >= 6 else 1
        width = int(rng.choice([8, 16, 24, 32, 48, 64]))
        if kind == "separable":
            x = g.conv2d(g.depthwise(x, (3, 3), (stride, stride), "SAME", "RELU"), width, (1, 1), (1, 1), "SAME",
                         "RELU")
        elif kind == "inverted":
            y = g.conv2d(x, x.shape[2] * int(rng.integers(2, 7)), (1, 1), (1, 1), "SAME", "RELU6")
            y = g.depthwise(y, (3, 3), (stride, stride), "SAME", "RELU6")
            out = x.shape[2] if stride == 1 and rng.random() < 0.6 else width
            y = g.conv2d(y, out, (1, 1), (1, 1), "SAME", "NONE")
            x = g.add(x, y) if y.shape == x.shape else y
        else:
            y = g.conv2d(g.conv2d(x, x.shape[2], (3, 3), (1, 1), "SAME", "RELU"), x.shape[2], (3, 3), (1, 1), "SAME")
            x = g.add(x, y, "RELU")
    if rng.random() < 0.5 or x.shape[0] < 2:
        x = g.avg_pool(x, x.shape[:2])
    else:
        x = g.max_pool(x, (2, 2))
    if rng.random() < 0.7:
        x = g.fully_connected(g.reshape(x, (int(np.prod(x.shape)),)), int(rng.integers(2, 17)))
        if rng.random() < 0.6:
            x = g.softmax(x)
    g.output(x)
    return Workload(g.name, g.build().data)


def fit_block_stacks(n: int, configs) -> list[Workload]:
    """``n`` random block stacks (:func:`_random_block_stack`) for the fit, from their own seed range."""
    out, seed = [], FIT_BLOCK_SEED0
    while len(out) < n:
        w = _random_block_stack(seed)
        if _runs_everywhere(w, configs):
            out.append(Workload(f"fit blocks {len(out) + 1}: " + w.name, w.data))
        seed += 1
    return out


def fit_networks(n: int, configs) -> list[Workload]:
    """``n`` random 2-4 layer stacks for the fit (how consecutive ops overlap; seeds apart from the held-out)."""
    return _stacks(FIT_NET_SEED0, n, configs, "fit stack")


def held_out_networks(n_random: int, configs) -> list[Workload]:
    """The digits CNN and ``n_random`` random 2-4 layer stacks (seeds the fit never sees)."""
    from models.npu.digits import digits_model

    return [Workload("digits CNN", digits_model().data)] + _stacks(HELD_NET_SEED0, n_random, configs, "stack")


def whole_networks(configs) -> list[Workload]:
    """Every network of :mod:`models.npu.networks` Vela maps to the NPU whole on ``configs`` (held out: never fitted
    on), as ``NAME``; the RTL NPU may still refuse one (an op it does not run yet)."""
    from models.npu.networks import NETWORKS, network

    out = [Workload(name, network(name).data) for name in NETWORKS]
    return [w for w in out if _runs_everywhere(w, configs)]


def network_bodies() -> list[Workload]:
    """The ``mac_body`` of every network of :mod:`models.npu.networks` (the part the RTL NPU runs today; held out:
    never fitted on), as ``NAME (body)``."""
    from models.npu.networks import NETWORKS, mac_body

    return [Workload(f"{name} (body)", mac_body(name).data) for name in NETWORKS]


def measure(w: Workload, config: str, bandwidth: int = 8, latency: int = 8) -> Measurement:
    """Run ``w`` on the RTL NPU ``config`` with its memory at (``bandwidth``, ``latency``)."""
    from drivers.npu import run_on_npu

    vela.compile_cached(w.data, config)        # compiled before the clock starts (both sides use the artifact)
    t0 = time.perf_counter()
    run = run_on_npu(w.data, npu_config(config, bandwidth, latency), seed=1)
    wall = time.perf_counter() - t0
    return Measurement(w.name, config, bandwidth, latency, run.cycles, tuple(lay.cycles for lay in run.layers), wall)


def ops_of(w: Workload, config: str):
    """The NPU ops of ``w`` compiled for ``config`` (the system model's input)."""
    return ops_from_commands(vela.compile_cached(w.data, config).commands())


def fit(measurements: list[Measurement], workloads: dict[str, Workload], *, verbose: bool = False) -> dict:
    """Least-squares fit (relative error of each run's total cycles) of :mod:`models.system.npu_cost`'s
    parameters; returns the coefficient document :func:`models.system.npu_cost.NpuCostModel.from_dict` reads."""
    from scipy.optimize import least_squares

    configs = sorted({m.config for m in measurements})
    layout = npu_cost.ParamLayout(configs)
    mats = [npu_cost.op_matrix(ops_of(workloads[m.workload], m.config), m.config) for m in measurements]
    x = np.concatenate(mats)
    bounds = np.cumsum([0] + [len(a) for a in mats])
    rep = np.repeat(np.arange(len(mats)), [len(a) for a in mats])
    cfg = np.array([configs.index(m.config) for m in measurements])[rep]
    bw = np.array([m.bandwidth for m in measurements], dtype=float)[rep]
    lat = np.array([m.latency for m in measurements], dtype=float)
    is_dma = x[:, 0] == len(npu_cost.KERNEL_KINDS)
    is_vec = x[:, 0] == len(npu_cost.KERNEL_KINDS) + 1
    target = np.array([m.cycles for m in measurements], dtype=float)
    start_ix = np.array([layout.index[f"start[{m.config}]"] for m in measurements])
    cw = layout.index["cw"]

    def residual(theta):
        load, run, handover, tail, bus, lbus, rbus, staged = npu_cost.stacked_durations(layout, theta, x, configs,
                                                                                       cfg, bw, lat[rep])
        pred = theta[start_ix] + theta[layout.index["slat"]] * lat
        shares = npu_cost.stall_shares(layout, theta, x)
        for i in range(len(mats)):
            a, b = bounds[i], bounds[i + 1]
            pred[i] += npu_cost.schedule(is_dma[a:b], load[a:b], run[a:b], handover[a:b], tail[a:b], bus[a:b],
                                         lbus[a:b], rbus[a:b], is_vec[a:b], theta[cw] * x[a:b, 14],
                                         x[a:b, 15], shares[a:b], staged[a:b])[0]
        return (pred - target) / target

    res = least_squares(residual, layout.initial(), bounds=layout.bounds(), x_scale="jac", loss="soft_l1",
                        f_scale=0.05, max_nfev=400)
    if verbose:
        err = np.abs(res.fun)
        print(f"fit: {len(measurements)} runs, {layout.size} parameters, mean |err| {100 * err.mean():.2f}%, "
              f"max {100 * err.max():.2f}%")
    return layout.to_dict(res.x)
