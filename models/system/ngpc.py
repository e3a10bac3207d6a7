"""NGPC in the system model: the cluster beside a GPU, calibrated from RTL cycle counts, and the 8-64 scaling study.

What is measured (RTL, native harness; ``ngpc_measurements.json``, written by ``benchmarks/ngpc_scaling.py
--measure``): batches of N queries per cycle at steady state (1.0 on every measured cluster: one query per cycle
per lane), the cluster's pipeline latency, and the table write rate (one entry per cycle, broadcast to every lane).

What is taken from the paper (abstract, ``../shared/seeds/papers.md``; NeRF, NSDF, NVR, GIA):

* the share of application time in encoding + MLP on the GPU, ``ENC_MLP_SHARE`` (72.37% with the hash grid, 60.0%
  multi-resolution dense grid, 59.96% low-resolution dense grid);
* the remaining kernels fused in Vulkan run 9.94x faster than unfused (``FUSED_REST_SPEEDUP``);
* the gap to 4k at 60 FPS on the GPU, 1.51x to 55.50x over the applications (``GPU_GAP_4K``);
* the speed-ups to compare with, 12 / 20 / 33 / 39x at N = 8 / 16 / 32 / 64 (``PAPER_SPEEDUP``).

Assumptions (named in :class:`ScalingAssumptions`, every one a parameter):

* A1 ``clock_hz``: NGPC runs at 1 GHz (the paper's clock is unknown);
* A2 ``gpu_lanes``: the GPU's encoding + MLP throughput in lane equivalents (queries per NGPC cycle), the one free
  parameter: :func:`calibrate` fits it so that the model's mean speed-up at N = 8 is the paper's 12x; N = 16, 32,
  64 are then predictions;
* A3 the GPU runs everything else (ray marching before, compositing after: ``pre_share`` of it before) fused, and
  its kernels for one batch overlap NGPC working on another (the paper's batch pipelining), ``batches`` per frame;
* A4 the per-frame frame time on the GPU from the gap: NeRF is the 55.50x application (the only one the paper says
  reaches only 30 FPS at 4k), the lightest one 1.51x; 8k has 4x the queries of 4k (linear in pixels);
* A5 memory: NGPC shares the GPU's DRAM bandwidth (936 GB/s on an RTX 3090) for query positions in (3 x fp32) and
  results out (4 x fp16) and for the per-frame table load (L = 16 levels of T = 2**19 entries, F = 2 fp16: 32 MiB,
  written at the RTL's measured rate);
* A6 the tables stay resident over the frames of one scene (``tables_per_frame`` False). The paper loads them once
  per frame; at the RTL's write rate (one entry per cycle, broadcast) NeRF's 8.4 M entries take 8.4 ms a frame,
  more than a 120 FPS frame, so that variant (tables written before the frame's queries, not overlapped: same
  SRAMs) is reported separately.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import simpy

from models.system.soc import Accelerator, Request, SharedMemory

__all__ = ["ENC_MLP_SHARE", "FUSED_REST_SPEEDUP", "GPU_GAP_4K", "MEASUREMENTS_PATH", "NgpcClusterAccelerator",
           "PAPER_SPEEDUP", "ScalingAssumptions", "calibrate", "frame_time", "load_measurements", "ngpc_cluster",
           "scaling_study"]

MEASUREMENTS_PATH = Path(__file__).with_name("ngpc_measurements.json")
ENC_MLP_SHARE = {"hash": 0.7237, "dense": 0.600, "lowres": 0.5996}
FUSED_REST_SPEEDUP = 9.94
GPU_GAP_4K = {"nerf": 55.50, "light": 1.51}
PAPER_SPEEDUP = {8: 12.0, 16: 20.0, 32: 33.0, 64: 39.0}
PIXELS = {"4k": 3840 * 2160, "8k": 7680 * 4320}


def load_measurements(path: Path = MEASUREMENTS_PATH) -> dict:
    """The RTL calibration: ``batches_per_cycle``, ``latency``, ``table_entries_per_cycle`` (and ``command``)."""
    return json.loads(Path(path).read_text())


@dataclass(frozen=True)
class ScalingAssumptions:
    """A1-A6 of the module docstring."""

    clock_hz: float = 1e9
    gpu_lanes: float = 1.0
    enc_mlp_share: float = ENC_MLP_SHARE["hash"]
    fused_rest_speedup: float = FUSED_REST_SPEEDUP
    pre_share: float = 0.5
    batches: int = 64
    bandwidth_gbs: float = 936.0
    in_bytes: int = 12
    out_bytes: int = 8
    table_bytes: int = 16 * (1 << 19) * 2 * 2
    table_entries: int = 16 * (1 << 19)
    tables_per_frame: bool = False


class NgpcClusterAccelerator(Accelerator):
    """N lanes; a request's payload is a number of queries. Service: the RTL-measured pipeline (latency, then
    ``batches_per_cycle`` batches of N queries per cycle), overlapped with moving its positions in and results out
    over the shared memory; a payload of ``"tables"`` is the per-frame table load."""

    def __init__(self, env: simpy.Environment, memory: SharedMemory | None, *, lanes: int,
                 measurements: dict | None = None, assumptions: ScalingAssumptions = ScalingAssumptions(),
                 name: str = "ngpc"):
        super().__init__(env, memory, name)
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, not {lanes!r}")
        m = measurements or load_measurements()
        self.lanes, self.a = lanes, assumptions
        self.batches_per_cycle = float(m["batches_per_cycle"])
        self.latency = float(m["latency"])
        self.table_rate = float(m["table_entries_per_cycle"])

    def _move(self, nbytes: float):
        if self.memory is not None and nbytes:
            yield from self.memory.transfer(self.name, nbytes)

    def service(self, request: Request):
        env = self.env
        if request.payload == "tables":
            compute = self.a.table_entries / self.table_rate
            nbytes = self.a.table_bytes
        else:
            queries = float(request.payload)
            compute = self.latency + math.ceil(queries / self.lanes) / self.batches_per_cycle
            nbytes = queries * (self.a.in_bytes + self.a.out_bytes)
        yield env.all_of([env.timeout(compute), env.process(self._move(nbytes))])


def ngpc_cluster(env: simpy.Environment, memory: SharedMemory | None, **options) -> NgpcClusterAccelerator:
    """The descriptor's ``system_model`` factory: ``lanes`` (required), ``measurements``, ``assumptions``."""
    return NgpcClusterAccelerator(env, memory, **options)


def frame_time(lanes: int | None, gpu_frame_s: float, a: ScalingAssumptions, measurements: dict) -> float:
    """Seconds per frame: the GPU alone (``lanes`` None: every kernel on the GPU, unfused) or the GPU with an NGPC of
    ``lanes`` lanes (A3: fused rest, batch pipeline, A5 memory, A6 tables)."""
    if lanes is None:
        return gpu_frame_s
    clock = a.clock_hz
    enc_mlp_cycles = a.enc_mlp_share * gpu_frame_s * clock
    queries = enc_mlp_cycles * a.gpu_lanes                   # the GPU does gpu_lanes queries per cycle
    rest_cycles = (1 - a.enc_mlp_share) * gpu_frame_s * clock / a.fused_rest_speedup
    per_batch_q = queries / a.batches
    pre, post = rest_cycles * a.pre_share / a.batches, rest_cycles * (1 - a.pre_share) / a.batches

    env = simpy.Environment()
    memory = SharedMemory(env, bandwidth=a.bandwidth_gbs * 1e9 / clock, latency=0)
    cluster = NgpcClusterAccelerator(env, memory, lanes=lanes, measurements=measurements, assumptions=a)
    gpu = simpy.Resource(env, 1)
    tables_done = env.event()

    def load_tables():
        if a.tables_per_frame:
            yield from cluster.serve(Request(-1, "tables"))
        tables_done.succeed()

    def on_gpu(cycles: float):
        with gpu.request() as slot:
            yield slot
            yield env.timeout(cycles)

    def batch(i: int):
        yield from on_gpu(pre)
        if not tables_done.triggered:
            yield tables_done
        yield from cluster.serve(Request(i, per_batch_q))
        yield from on_gpu(post)

    env.process(load_tables())
    for i in range(a.batches):
        env.process(batch(i))
    env.run()
    return env.now / clock


def _speedup(lanes: int, a: ScalingAssumptions, m: dict, gap: float) -> float:
    gpu_frame = gap / 60.0
    return gpu_frame / frame_time(lanes, gpu_frame, a, m)


def calibrate(a: ScalingAssumptions, m: dict, lanes: int = 8, target: float = PAPER_SPEEDUP[8]) -> float:
    """A2: the ``gpu_lanes`` that gives the paper's mean speed-up at ``lanes`` (bisection on a log scale), mean over
    the two applications of A4."""
    def mean_speedup(g):
        b = replace(a, gpu_lanes=g)
        return sum(_speedup(lanes, b, m, gap) for gap in GPU_GAP_4K.values()) / len(GPU_GAP_4K)

    lo, hi = 1e-3, 1e3
    if not mean_speedup(hi) < target < mean_speedup(lo):
        raise ValueError(f"no GPU throughput in [{lo}, {hi}] lane equivalents gives {target}x at N = {lanes}")
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if mean_speedup(mid) > target else (lo, mid)
    return math.sqrt(lo * hi)


def scaling_study(lanes=(8, 16, 32, 64), a: ScalingAssumptions | None = None, m: dict | None = None,
                  fit: bool = True) -> dict:
    """Speed-ups and FPS per N (module docstring); ``fit``: calibrate ``gpu_lanes`` (A2), else use ``a``'s."""
    m = m or load_measurements()
    a = a or ScalingAssumptions()
    if fit:
        a = replace(a, gpu_lanes=calibrate(a, m))
    rows = []
    for n in lanes:
        row = {"lanes": n, "paper_speedup": PAPER_SPEEDUP.get(n)}
        for app, gap in GPU_GAP_4K.items():
            row[f"speedup_{app}"] = _speedup(n, a, m, gap)
            for res, pixels in PIXELS.items():
                gpu_frame = gap / 60.0 * pixels / PIXELS["4k"]
                row[f"fps_{app}_{res}"] = 1.0 / frame_time(n, gpu_frame, a, m)
        row["speedup_mean"] = sum(row[f"speedup_{app}"] for app in GPU_GAP_4K) / len(GPU_GAP_4K)
        rows.append(row)
    bound = a.fused_rest_speedup / (1 - a.enc_mlp_share)
    gpu_fps = {f"{app}_{res}": 60.0 / gap * PIXELS["4k"] / PIXELS[res] for app, gap in GPU_GAP_4K.items()
               for res in PIXELS}
    return {"assumptions": a.__dict__, "measurements": m, "rows": rows, "amdahl_bound": bound, "gpu_fps": gpu_fps}
