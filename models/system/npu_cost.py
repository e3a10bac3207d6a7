"""The NPU's per-operation cost model: cycles of one op from its features, the NPU config and the memory system.

One parametric form for every op kind, its coefficients fitted on RTL cycle counts (``drivers.npu_calibration``,
``python benchmarks/system_model.py calibrate``) and stored as data (:data:`COEFFS_PATH`)::

    kernel op of kind k on config c:  max(core, memory) + lat[k] * latency
        core   = c0[c,k] + beat[c,k] * beats + weight[c,k] * weights + pos[c,k] * ofm_positions
        memory = mem[k] * (read_words + write_words) * 8 / bandwidth
    DMA:                              max(d0, dmem * 2 * words * 8 / bandwidth) + dlat * latency
    inference:                        start[c] + slat * latency + the sum over its ops

``core`` is the compute side (MAC beats, the weight decoder's one weight per cycle, the output unit's one position
per cycle), ``memory`` the op's external-memory traffic at the bus's bandwidth; they overlap, so the slower one
counts. Up to two kernel ops are in flight in the RTL: that overlap is inside the fitted coefficients (an op's cost
is the interval it adds), which is why each coefficient is per config.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.system.npu_ops import GEOMETRIES, WORD_BYTES, NpuOp, op_features

__all__ = ["COEFFS_PATH", "KERNEL_KINDS", "NpuCostModel", "ParamLayout", "op_cycles", "op_matrix", "op_parts",
           "total_cycles"]

#: Where ``calibrate`` stores the fitted coefficients (read by :meth:`NpuCostModel.load`).
COEFFS_PATH = Path(__file__).with_name("npu_costs.json")
KERNEL_KINDS = ("conv", "fc", "depthwise", "pool")
CORE_TERMS = ("c0", "beat", "weight", "pos")
_DMA = len(KERNEL_KINDS)   # kind index of a DMA in an op matrix


def op_matrix(ops, config: str) -> np.ndarray:
    """One row per op: kind index (DMA: 4), beats, weights, ofm_positions, read+write words."""
    geo = GEOMETRIES[config]
    rows = []
    for op in ops:
        f = op_features(op, geo)
        kind = KERNEL_KINDS.index(op.kind) if op.is_kernel else _DMA
        rows.append((kind, f["beats"], f["weights"], f["ofm_positions"], f["read_words"] + f["write_words"]))
    return np.array(rows, dtype=float).reshape(-1, 5)


@dataclass
class ParamLayout:
    """Where each coefficient sits in the flat parameter vector the fit works on."""

    configs: list[str]

    def __post_init__(self):
        names = [f"start[{c}]" for c in self.configs] + ["slat", "d0", "dmem", "dlat"]
        names += [f"{t}[{c},{k}]" for c in self.configs for k in KERNEL_KINDS for t in CORE_TERMS]
        names += [f"{t}[{k}]" for k in KERNEL_KINDS for t in ("mem", "lat")]
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}

    @property
    def size(self) -> int:
        return len(self.names)

    def initial(self) -> np.ndarray:
        start = {"start": 100.0, "slat": 1.0, "d0": 20.0, "dmem": 1.0, "dlat": 1.0, "c0": 50.0, "beat": 1.0,
                 "weight": 0.2, "pos": 0.2, "mem": 1.0, "lat": 1.0}
        return np.array([start[n.split("[")[0]] for n in self.names])

    def bounds(self):
        return np.zeros(self.size), np.full(self.size, np.inf)

    def to_dict(self, theta) -> dict:
        return {"form": "max(core, memory) v1", "coefficients": {n: float(v) for n, v in zip(self.names, theta,
                                                                                             strict=True)}}

    def from_dict(self, doc: dict) -> np.ndarray:
        coeffs = doc["coefficients"]
        missing = [n for n in self.names if n not in coeffs]
        if missing:
            raise KeyError(f"coefficients missing: {', '.join(missing[:5])}")
        return np.array([coeffs[n] for n in self.names], dtype=float)

    def kernel_params(self, theta, config: str) -> np.ndarray:
        """(kind, [c0, beat, weight, pos, mem, lat]) for ``config``: a 4 x 6 array."""
        ix = self.index
        return np.array([[theta[ix[f"{t}[{config},{k}]"]] for t in CORE_TERMS]
                         + [theta[ix[f"mem[{k}]"]], theta[ix[f"lat[{k}]"]]] for k in KERNEL_KINDS])


def op_parts(layout: ParamLayout, theta, x: np.ndarray, config: str,
             latency: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per op (rows of :func:`op_matrix` ``x``): compute cycles, bus bytes (traffic x the fitted memory factor,
    to be divided by the bandwidth) and the latency cycles after both; an op takes
    ``max(compute, bus_bytes / bandwidth) + tail``."""
    ix = layout.index
    kind = x[:, 0].astype(int)
    core, bus, tail = np.empty(len(x)), np.empty(len(x)), np.empty(len(x))
    dma = kind == _DMA
    if dma.any():
        core[dma] = theta[ix["d0"]]
        bus[dma] = theta[ix["dmem"]] * x[dma, 4] * WORD_BYTES
        tail[dma] = theta[ix["dlat"]] * latency
    ker = ~dma
    if ker.any():
        p = layout.kernel_params(theta, config)[kind[ker]]
        core[ker] = p[:, 0] + p[:, 1] * x[ker, 1] + p[:, 2] * x[ker, 2] + p[:, 3] * x[ker, 3]
        bus[ker] = p[:, 4] * x[ker, 4] * WORD_BYTES
        tail[ker] = p[:, 5] * latency
    return core, bus, tail


def op_cycles(layout: ParamLayout, theta, x: np.ndarray, config: str, bandwidth: float,
              latency: float) -> np.ndarray:
    """Cycles of every op (rows of :func:`op_matrix` ``x``) alone on a memory of ``bandwidth`` bytes/cycle and
    ``latency`` cycles."""
    core, bus, tail = op_parts(layout, theta, x, config, latency)
    return np.maximum(core, bus / bandwidth) + tail


def total_cycles(layout: ParamLayout, theta, x: np.ndarray, config: str, bandwidth: float, latency: float) -> float:
    """Cycles of one inference (start overhead + every op) on an otherwise idle memory."""
    ix = layout.index
    return float(theta[ix[f"start[{config}]"]] + theta[ix["slat"]] * latency
                 + op_cycles(layout, theta, x, config, bandwidth, latency).sum())


class NpuCostModel:
    """Fitted coefficients for some NPU configs; :meth:`op_cycles` / :meth:`start_cycles` for the SimPy model."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.configs = sorted({n[len("start["):-1] for n in doc["coefficients"] if n.startswith("start[")})
        self.layout = ParamLayout(self.configs)
        self.theta = self.layout.from_dict(doc)
        self.meta = doc.get("meta", {})

    @classmethod
    def load(cls, path: str | Path = COEFFS_PATH) -> NpuCostModel:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def check_config(self, config: str) -> None:
        if config not in self.configs:
            raise KeyError(f"no calibration for NPU config {config!r}; calibrated: {', '.join(self.configs)}")

    def matrix(self, ops: tuple[NpuOp, ...] | list[NpuOp], config: str) -> np.ndarray:
        self.check_config(config)
        return op_matrix(ops, config)

    def op_cycles(self, x: np.ndarray, config: str, bandwidth: float, latency: float) -> np.ndarray:
        return op_cycles(self.layout, self.theta, x, config, bandwidth, latency)

    def op_parts(self, x: np.ndarray, config: str, latency: float):
        return op_parts(self.layout, self.theta, x, config, latency)

    def start_cycles(self, config: str, latency: float) -> float:
        ix = self.layout.index
        return float(self.theta[ix[f"start[{config}]"]] + self.theta[ix["slat"]] * latency)

