"""The NPU in the system model: an :class:`~models.system.soc.Accelerator` that runs a Vela command stream's ops
with the fitted per-op costs (:mod:`models.system.npu_cost`) and their traffic over the shared memory.

A controller process walks the ops in stream order; each op's load and run stages (and each DMA) are processes
whose compute and memory traffic run side by side, overlapped as :func:`models.system.npu_cost.schedule` says
(one loader, one engine, two ops in flight). Alone on the memory the result is exactly that schedule, the form the
coefficients were fitted in (and then it is computed in closed form, one event, unless ``stage_processes``; one
inference on an idle system skips building the environment altogether); other masters on the memory slow the
transfers down by arbitration. Read a network's ops once (:func:`prepare_npu`) and predict many times.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import simpy

from models.system.npu_cost import IN_FLIGHT, NpuCostModel, OpParts, schedule
from models.system.npu_ops import NpuOp, layer_of_ops, ops_from_words
from models.system.soc import Accelerator, Host, Request, SharedMemory, Stats

__all__ = ["NpuAccelerator", "NpuJob", "NpuPrediction", "ops_from_artifact", "predict_npu", "prepare_npu",
           "sweep_npu"]


def ops_from_artifact(art) -> tuple[NpuOp, ...]:
    """The ops of a :class:`models.npu.vela.VelaArtifact` (its command stream, read in one pass)."""
    return ops_from_words(art.command_stream)


@dataclass(frozen=True)
class NpuJob:
    """One inference for the NPU ``config``: its ops' cost-model matrix and the layer of every op. Built once per
    network and config (:func:`prepare_npu`) and reused by every prediction (sweeps, several inferences): the
    command stream is read once; the stage costs per memory latency are kept too (``parts``)."""

    x: np.ndarray
    layers: tuple[int, ...]
    kinds: tuple[str, ...]
    config: str = ""
    parts_cache: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, ops, config: str, cost: NpuCostModel) -> NpuJob:
        return cls(cost.matrix(ops, config), tuple(layer_of_ops(ops)), tuple(op.kind for op in ops), config)

    def parts(self, cost: NpuCostModel, latency: float) -> OpParts:
        """The stage costs of the ops on a memory of ``latency`` cycles (computed once per cost model and
        latency)."""
        key = (id(cost), float(latency))
        if key not in self.parts_cache:
            self.parts_cache[key] = cost.op_parts(self.x, self.config, latency)
        return self.parts_cache[key]


def prepare_npu(ops, config: str, cost: NpuCostModel | None = None) -> NpuJob:
    """The job :func:`predict_npu` runs for ``ops`` (:func:`ops_from_artifact`) on ``config``: build it once,
    predict many times."""
    cost = cost if cost is not None else NpuCostModel.load()
    return NpuJob.of(ops, config, cost)


class NpuAccelerator(Accelerator):
    """One NPU of preset ``config`` (e.g. ``"u55-64"``) on ``memory``; ``cost``: the fitted cost model."""

    def __init__(self, env: simpy.Environment, memory: SharedMemory, *, config: str = "u55-128",
                 cost: NpuCostModel | None = None, name: str = "npu", stage_processes: bool = False):
        super().__init__(env, memory, name)
        #: run every stage as its own process even when the NPU is alone on the memory (same result, slower)
        self.stage_processes = stage_processes
        self.cost = cost if cost is not None else NpuCostModel.load()
        self.cost.check_config(config)
        self.config = config

    def _stage(self, core: float, nbytes: float, tail: float, first_bytes: float = 0.0, after: float = 0.0):
        """Process: one stage of an op: its compute and its memory traffic side by side, then its latency tail;
        ``after`` cycles of the compute wait for the ``first_bytes`` of the traffic (the engine's IFM reads)."""
        env, mem = self.env, self.memory
        if mem.masters <= {self.name}:     # alone on the bus: nothing to arbitrate, one event
            yield env.timeout(max(core, nbytes / mem.bandwidth, first_bytes / mem.bandwidth + after) + tail)
            mem.bytes[self.name] += nbytes
            mem.busy_cycles += nbytes / mem.bandwidth
            return
        yield env.all_of([env.timeout(core), env.process(mem.transfer(self.name, nbytes - first_bytes, latency=False)),
                          env.process(self._then(mem.transfer(self.name, first_bytes, latency=False), after))])
        yield env.timeout(tail)

    def _then(self, first, cycles: float):
        """Process: ``first``, then ``cycles``."""
        yield self.env.process(first)
        yield self.env.timeout(cycles)

    def _engine(self, prev_done, handed_over, load_done, parts: OpParts, i: int, done, last_block: float,
                bus_done: float, next_issue: dict, bus_share: float, dmas: list):
        """Process: the engine runs op ``i`` after op ``i-1`` and once the loader has handed it over; the last
        ``last_block`` cycles of its work come after its load; it is done no earlier than the NPU's bus traffic
        up to this op (``bus_done``); then it waits its share of the DMAs that ran beside it before its IFM was
        staged (``dmas``: their (start, end), appended by the controller while this is the last op issued), then
        the next op's loader
        traffic that went first (``next_issue[i]``: when the next kernel op was issued and its loader's bus cycles;
        ``bus_share`` the share of this op's run that needs the bus: :func:`models.system.npu_cost.schedule`)."""
        env = self.env
        yield env.all_of([prev_done, handed_over])
        began = env.now
        yield from self._stage(parts.run_core[i], parts.run_bytes[i], parts.run_tail[i], parts.read_bytes[i],
                               parts.run_after[i])
        loaded_at = yield load_done
        end = max(loaded_at + last_block, bus_done)
        if end > env.now:
            yield env.timeout(end - env.now)
        seen = 0
        while seen < len(dmas):      # a DMA may start while the op waits for one before it
            start, dma_end = dmas[seen]
            seen += 1
            over = (min(dma_end, env.now - parts.run_after[i]) - max(start, began)) * parts.dma_stall[i]
            if over > 0:
                yield env.timeout(over)
        if i in next_issue and next_issue[i][0] < env.now:
            issued_at, load_bus = next_issue[i]
            yield env.timeout(min(env.now - issued_at, load_bus) * bus_share)
        done.succeed()

    def _dma(self, parts: OpParts, i: int, bus_done: float):
        """Process: DMA or vector-unit op ``i``, done no earlier than ``bus_done`` (a vector-unit op: the NPU's bus
        traffic up to it; a DMA, which the arbiter serves first: 0); its value is the time it ends."""
        yield from self._stage(parts.load_core[i], parts.load_bytes[i], parts.load_tail[i])
        if bus_done > self.env.now:
            yield self.env.timeout(bus_done - self.env.now)
        return self.env.now

    def _after(self, when: float):
        """Generator: wait until ``when`` (if later than now); returns the time then."""
        if when > self.env.now:
            yield self.env.timeout(when - self.env.now)
        return self.env.now

    def _load(self, parts: OpParts, i: int):
        """Process: op ``i``'s load stage; its value is the time it ends."""
        yield from self._stage(parts.load_core[i], parts.load_bytes[i], parts.load_tail[i])
        return self.env.now

    def service(self, request: Request):
        """The controller: walks the ops in stream order (the schedule of :func:`models.system.npu_cost.schedule`
        with every stage a process on the shared memory)."""
        job: NpuJob = request.payload
        env, mem = self.env, self.memory
        parts = job.parts(self.cost, mem.latency)
        nominal_load, nominal_run = parts.durations(mem.bandwidth)
        yield env.timeout(self.cost.start_cycles(self.config, mem.latency))
        if not self.stage_processes and mem.masters <= {self.name}:
            # alone on the memory nothing can delay a stage: the schedule is the closed form, one event
            total, finish_at = schedule(parts.is_dma, nominal_load, nominal_run, parts.handover, parts.tail,
                                        parts.bus(mem.bandwidth), *parts.split_bus(mem.bandwidth), parts.is_vec,
                                        parts.parse, parts.kernel_wait, parts.dma_stall, parts.run_after)
            yield env.timeout(total)
            moved = float(parts.load_bytes.sum() + parts.run_bytes.sum())
            mem.bytes[self.name] += moved
            mem.busy_cycles += moved / mem.bandwidth
            request.detail["op_cycles"] = _op_cycles(finish_at)
            return
        t0 = env.now
        bus = parts.bus(mem.bandwidth).tolist()
        load_bus, run_bus = parts.split_bus(mem.bandwidth)
        next_issue: dict = {}   # kernel op -> (when the next kernel op was issued, that op's loader bus cycles)
        parse = parts.parse.tolist()
        waits = parts.kernel_wait.tolist()
        dmas_beside: dict = {}  # kernel op -> the DMAs started while it was the last op issued: [(start, end)]
        last_kernel = -1        # the last op issued if it is a kernel op (not the vector unit's)
        accepted = t0          # when the controller took the last kick (it parses the next op's commands from then)
        prev = -1
        bus_free = t0          # when the NPU's own traffic so far has passed the bus (at its full bandwidth)
        ready = env.event().succeed()
        dma_free = load_done = dep = issued = ready
        engine_done = [ready, ready]
        finished, finish_at = [], [0.0] * len(parts.is_dma)

        def mark(i):
            def record(_):
                finish_at[i] = env.now - t0
            return record

        for i, (is_dma, is_vec) in enumerate(zip(parts.is_dma.tolist(), parts.is_vec.tolist(), strict=True)):
            if 0 <= waits[i] < len(engine_done) - IN_FLIGHT:
                # NPU_OP_KERNEL_WAIT n: parsing stops until at most n kernel ops are outstanding
                yield engine_done[-(int(waits[i]) + 1)]
                accepted = env.now
            if is_vec:
                # a barrier: after every op before it, nothing loads while it runs
                yield env.all_of([engine_done[-1], load_done, dep])
                accepted = yield from self._after(accepted + parse[i])
                issued = env.event().succeed()
                bus_free = max(bus_free, env.now) + bus[i]
                load_done = done = env.process(self._dma(parts, i, bus_free))
                prev = last_kernel = -1
                engine_done.append(done)
                finished.append(done)
                done.callbacks.append(mark(i))
                continue
            if is_dma:
                yield env.all_of([dma_free, issued])
                accepted = yield from self._after(accepted + parse[i])
                bus_free = max(bus_free, env.now) + bus[i]
                if last_kernel >= 0:
                    dmas_beside[last_kernel].append((env.now, env.now + nominal_load[i]))
                dma_free = dep = env.process(self._dma(parts, i, 0.0))    # served first: its own time
                finished.append(dma_free)
                dma_free.callbacks.append(mark(i))
                continue
            yield env.all_of([load_done, dep, engine_done[-IN_FLIGHT]])
            accepted = yield from self._after(accepted + parse[i])
            issued = env.event().succeed()
            if prev >= 0:
                next_issue[prev] = (env.now, float(load_bus[i]))
            bus_free = max(bus_free, env.now + min(parts.handover[i], nominal_load[i])) + bus[i]
            load_done = env.process(self._load(parts, i))
            done = env.event()
            env.process(self._engine(engine_done[-1], env.timeout(min(parts.handover[i], nominal_load[i])),
                                     load_done, parts, i, done, parts.tail[i], bus_free, next_issue,
                                     min(1.0, run_bus[i] / nominal_run[i]) if nominal_run[i] > 0 else 0.0,
                                     dmas_beside.setdefault(i, [])))
            prev = last_kernel = i
            engine_done.append(done)
            finished.append(done)
            done.callbacks.append(mark(i))
        yield env.all_of(finished)
        request.detail["op_cycles"] = _op_cycles(finish_at)


def _op_cycles(finish_at) -> list[float]:
    """What each op adds to the time to done (ops finish out of order when stages overlap)."""
    frontier, out = 0.0, []
    for end in finish_at:
        out.append(max(end - frontier, 0.0))
        frontier = max(frontier, end)
    return out


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
                in_bytes: int = 0, out_bytes: int = 0, arbitration: str = "fifo",
                stage_processes: bool = False) -> NpuPrediction:
    """Simulate ``inferences`` inferences of ``ops`` (:func:`ops_from_artifact`, or the :class:`NpuJob` of
    :func:`prepare_npu` for them, to skip reading them again) on one NPU ``config`` behind a
    memory of ``bandwidth`` bytes/cycle and ``latency`` cycles, issued by a host (``setup_cycles`` each, at most
    ``inflight`` in flight, back to back or every ``interval`` cycles; ``in_bytes`` / ``out_bytes`` moved by the
    host per inference). ``cycles`` / ``layer_cycles`` are those of the first inference."""
    cost = cost if cost is not None else NpuCostModel.load()
    if inferences < 1:
        raise ValueError(f"inferences must be >= 1, not {inferences!r}")
    SharedMemory.check(bandwidth, latency, arbitration)
    cost.check_config(config)
    if isinstance(ops, NpuJob):
        if ops.config != config:
            raise ValueError(f"this job was prepared for {ops.config!r}, not {config!r}")
        job = ops
    else:
        job = NpuJob.of(ops, config, cost)
    if inferences == 1 and not (setup_cycles or in_bytes or out_bytes or stage_processes):
        return _alone(job, config, bandwidth, latency, cost, inflight)   # no environment to build
    env = simpy.Environment()
    mem = SharedMemory(env, bandwidth, latency, arbitration=arbitration)
    npu = NpuAccelerator(env, mem, config=config, cost=cost, stage_processes=stage_processes)
    mem.attach(npu.name)
    requests = [Request(i, job, in_bytes, out_bytes) for i in range(inferences)]
    if inferences == 1 and not (setup_cycles or in_bytes or out_bytes):
        env.run(env.process(npu.serve(requests[0])))      # nothing for the host to do: the NPU alone
        requests[0].done = env.now
        stats = Stats(requests, env.now)
    else:
        host = Host(env, mem, npu, setup_cycles=setup_cycles, inflight=inflight, interval=interval)
        stats = host.run(requests)
    first = stats.requests[0]
    per_layer, kinds = _layers(job, first.detail["op_cycles"])
    return NpuPrediction(config, float(bandwidth), float(latency), first.finished - first.started, per_layer, kinds,
                         inferences, inflight, stats.cycles, float(np.mean(stats.latencies)), stats.throughput)


def _layers(job: NpuJob, op_cycles) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """Per layer of ``job``: the cycles its ops add, its kind."""
    n_layers = max(job.layers, default=-1) + 1
    per_layer = [0.0] * n_layers
    kinds = [""] * n_layers
    for layer, kind, c in zip(job.layers, job.kinds, op_cycles, strict=True):
        per_layer[layer] += c
        if kind != "dma" and not kinds[layer]:
            kinds[layer] = kind
    return tuple(per_layer), tuple(kinds)


def _alone(job: NpuJob, config: str, bandwidth: float, latency: float, cost: NpuCostModel,
           inflight: int) -> NpuPrediction:
    """One inference on an idle system: what the SimPy run does then (start overhead, then the closed-form
    schedule as one event: :meth:`NpuAccelerator.service`), without building the environment."""
    parts = job.parts(cost, latency)
    load, run = parts.durations(bandwidth)
    total, finish_at = schedule(parts.is_dma, load, run, parts.handover, parts.tail, parts.bus(bandwidth),
                                *parts.split_bus(bandwidth), parts.is_vec, parts.parse, parts.kernel_wait,
                                parts.dma_stall, parts.run_after)
    cycles = cost.start_cycles(config, latency) + total
    per_layer, kinds = _layers(job, _op_cycles(finish_at))
    return NpuPrediction(config, float(bandwidth), float(latency), cycles, per_layer, kinds, 1, inflight, cycles,
                         cycles, 1.0 / cycles if cycles else 0.0)


def sweep_npu(networks: dict[str, dict[str, tuple[NpuOp, ...]]], configs, bandwidths, *, latency: float = 8,
              cost: NpuCostModel | None = None, **options) -> list[dict]:
    """Predict every network (``{name: {config: ops}}``) on every config and bandwidth; one row each (each
    network's ops prepared once per config)."""
    cost = cost if cost is not None else NpuCostModel.load()
    rows = []
    for name, per_config in networks.items():
        for config in configs:
            job = prepare_npu(per_config[config], config, cost)
            for bw in bandwidths:
                p = predict_npu(job, config, bandwidth=bw, latency=latency, cost=cost, **options)
                rows.append({"network": name, "config": config, "bandwidth": bw, "latency": latency,
                             "cycles": p.cycles, "throughput_per_cycle": p.throughput})
    return rows
