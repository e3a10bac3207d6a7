"""The NPU in the system model: an :class:`~models.system.soc.Accelerator` that runs a Vela command stream's ops
with the fitted per-op costs (:mod:`models.system.npu_cost`) and their traffic over the shared memory.

Per op: its compute time and its memory transfer run side by side (the op ends when both have), then the op's
latency tail; the inference starts with the stream's start overhead. Alone on the memory this is exactly the
fitted formula; other masters on the memory slow the transfer down by arbitration.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import simpy

from models.system.npu_cost import NpuCostModel
from models.system.npu_ops import NpuOp, layer_of_ops, ops_from_words
from models.system.soc import Accelerator, Host, Request, SharedMemory, Stats

__all__ = ["NpuAccelerator", "NpuJob", "NpuPrediction", "ops_from_artifact", "predict_npu", "sweep_npu"]


def ops_from_artifact(art) -> tuple[NpuOp, ...]:
    """The ops of a :class:`models.npu.vela.VelaArtifact` (its command stream, read in one pass)."""
    return ops_from_words(art.command_stream)


@dataclass(frozen=True)
class NpuJob:
    """One inference for the NPU: its ops' cost-model matrix and the layer of every op."""

    x: np.ndarray
    layers: tuple[int, ...]
    kinds: tuple[str, ...]

    @classmethod
    def of(cls, ops, config: str, cost: NpuCostModel) -> NpuJob:
        return cls(cost.matrix(ops, config), tuple(layer_of_ops(ops)), tuple(op.kind for op in ops))


class NpuAccelerator(Accelerator):
    """One NPU of preset ``config`` (e.g. ``"u55-64"``) on ``memory``; ``cost``: the fitted cost model."""

    def __init__(self, env: simpy.Environment, memory: SharedMemory, *, config: str = "u55-128",
                 cost: NpuCostModel | None = None, name: str = "npu"):
        super().__init__(env, memory, name)
        self.cost = cost if cost is not None else NpuCostModel.load()
        self.cost.check_config(config)
        self.config = config

    def service(self, request: Request):
        job: NpuJob = request.payload
        env, mem = self.env, self.memory
        core, bus, tail = self.cost.op_parts(job.x, self.config, mem.latency)
        yield env.timeout(self.cost.start_cycles(self.config, mem.latency))
        op_cycles = []
        for c, b, t in zip(core.tolist(), bus.tolist(), tail.tolist(), strict=True):
            t0 = env.now
            if len(mem.masters) <= 1 and mem.masters <= {self.name}:
                yield env.timeout(max(c, b / mem.bandwidth) + t)   # alone on the bus: no arbitration to model
                mem.bytes[self.name] += b
                mem.busy_cycles += b / mem.bandwidth
            else:
                yield env.all_of([env.timeout(c), env.process(mem.transfer(self.name, b, latency=False))])
                yield env.timeout(t)
            op_cycles.append(env.now - t0)
        request.detail["op_cycles"] = op_cycles


@dataclass(frozen=True)
class NpuPrediction:
    """What :func:`predict_npu` returns. Cycles are NPU clock cycles."""

    config: str
    bandwidth: float
    latency: float
    cycles: float                    # one inference alone: start of the stream to done
    layer_cycles: tuple[float, ...]  # per layer (the sum of its ops; the start overhead is in ``cycles`` only)
    layer_kinds: tuple[str, ...]
    inferences: int
    inflight: int
    makespan: float                  # all ``inferences``, issued as configured
    mean_latency: float              # per inference, issue to result, with queueing
    throughput: float                # inferences per cycle

    def to_json(self) -> dict:
        return {"config": self.config, "bandwidth": self.bandwidth, "latency": self.latency, "cycles": self.cycles,
                "layers": [{"layer": i, "kind": k, "cycles": c}
                           for i, (k, c) in enumerate(zip(self.layer_kinds, self.layer_cycles, strict=True))],
                "inferences": self.inferences, "inflight": self.inflight, "makespan": self.makespan,
                "mean_latency": self.mean_latency, "throughput_per_cycle": self.throughput}


def predict_npu(ops, config: str, *, bandwidth: float = 8, latency: float = 8, cost: NpuCostModel | None = None,
                inferences: int = 1, inflight: int = 1, setup_cycles: float = 0.0, interval: float | None = None,
                in_bytes: int = 0, out_bytes: int = 0, arbitration: str = "fifo") -> NpuPrediction:
    """Simulate ``inferences`` inferences of ``ops`` (:func:`ops_from_artifact`) on one NPU ``config`` behind a
    memory of ``bandwidth`` bytes/cycle and ``latency`` cycles, issued by a host (``setup_cycles`` each, at most
    ``inflight`` in flight, back to back or every ``interval`` cycles; ``in_bytes`` / ``out_bytes`` moved by the
    host per inference). ``cycles`` / ``layer_cycles`` are those of the first inference."""
    cost = cost if cost is not None else NpuCostModel.load()
    if inferences < 1:
        raise ValueError(f"inferences must be >= 1, not {inferences!r}")
    env = simpy.Environment()
    mem = SharedMemory(env, bandwidth, latency, arbitration=arbitration)
    npu = NpuAccelerator(env, mem, config=config, cost=cost)
    mem.attach(npu.name)
    job = NpuJob.of(ops, config, cost)
    requests = [Request(i, job, in_bytes, out_bytes) for i in range(inferences)]
    if inferences == 1 and not (setup_cycles or in_bytes or out_bytes):
        env.run(env.process(npu.serve(requests[0])))      # nothing for the host to do: the NPU alone
        requests[0].done = env.now
        stats = Stats(requests, env.now)
    else:
        host = Host(env, mem, npu, setup_cycles=setup_cycles, inflight=inflight, interval=interval)
        stats = host.run(requests)
    first = stats.requests[0]
    n_layers = max(job.layers, default=-1) + 1
    per_layer = [0.0] * n_layers
    kinds = [""] * n_layers
    for layer, kind, c in zip(job.layers, job.kinds, first.detail["op_cycles"], strict=True):
        per_layer[layer] += c
        if kind != "dma" and not kinds[layer]:
            kinds[layer] = kind
    return NpuPrediction(config, float(bandwidth), float(latency), first.finished - first.started, tuple(per_layer),
                         tuple(kinds), inferences, inflight, stats.cycles, float(np.mean(stats.latencies)),
                         stats.throughput)


def sweep_npu(networks: dict[str, dict[str, tuple[NpuOp, ...]]], configs, bandwidths, *, latency: float = 8,
              cost: NpuCostModel | None = None, **options) -> list[dict]:
    """Predict every network (``{name: {config: ops}}``) on every config and bandwidth; one row each."""
    cost = cost if cost is not None else NpuCostModel.load()
    rows = []
    for name, per_config in networks.items():
        for config in configs:
            for bw in bandwidths:
                p = predict_npu(per_config[config], config, bandwidth=bw, latency=latency, cost=cost, **options)
                rows.append({"network": name, "config": config, "bandwidth": bw, "latency": latency,
                             "cycles": p.cycles, "throughput_per_cycle": p.throughput})
    return rows
