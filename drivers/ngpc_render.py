"""Rendering a trained scene through the Verilated neural-fields processor (``ngpc_nfp``), next to the float network,
the fixed-point golden model and the analytic scene.

The renderers (:mod:`models.ngpc.render`) call a ``query(x)`` once per batch (a whole image of pixels, every sample of
every ray, or one sphere-tracing step of every active ray); :class:`RtlField` streams each batch through the NFP in
the native harness (:class:`drivers.ngpc.NfpHost`, chunks of ``CHUNK`` queries per ``run_stimulus`` call, no
per-query Python). Tables and weights are loaded once through the write ports.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from base import RampartError
from drivers.ngpc import NfpHost
from models.ngpc.quantize import FixedField, quantize_field
from models.ngpc.render import psnr
from models.ngpc.scenes import SCENES, trained_field

__all__ = ["CHUNK", "GoldenField", "RenderResult", "RtlField", "render_scene"]

CHUNK = 1 << 16


class _Recording:
    """Digest of every raw integer output, in order, and the query count."""

    def __init__(self, fixed: FixedField):
        self.fixed, self.queries, self._digest = fixed, 0, hashlib.sha256()

    def _record(self, raw: np.ndarray) -> np.ndarray:
        self.queries += len(raw)
        self._digest.update(np.ascontiguousarray(raw, dtype=np.int64).tobytes())
        return self.fixed.dequantize(raw)

    @property
    def digest(self) -> str:
        return self._digest.hexdigest()


class GoldenField(_Recording):
    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._record(self.fixed.golden(self.fixed.positions(x)))


class RtlField(_Recording):
    """The quantised network on the Verilated NFP: ``__call__(x)`` streams the positions, returns float outputs."""

    def __init__(self, sim, fixed: FixedField):
        super().__init__(fixed)
        self.host = NfpHost(sim, fixed.config)
        self.load_cycles = self.host.load(fixed.tables, fixed.weights)
        self.seconds, self.cycles, self.streaming_cycles = 0.0, 0, 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        u = self.fixed.positions(x)
        raws = []
        for start in range(0, len(u), CHUNK):
            chunk = u[start:start + CHUNK]
            began = time.perf_counter()
            result = self.host.run(chunk)
            self.seconds += time.perf_counter() - began
            if len(result.features) != len(chunk):
                raise RampartError(f"the NFP returned {len(result.features)} outputs for {len(chunk)} queries")
            self.cycles += result.cycles
            self.streaming_cycles += result.last_output - result.first_output + 1
            raws.append(result.features)
        raw = np.concatenate(raws) if raws else np.zeros((0, self.fixed.config.mlp.outputs), np.int64)
        return self._record(raw)


@dataclass
class RenderResult:
    scene: str
    preset: str
    size: int
    truth: np.ndarray            #: the analytic scene through the same renderer
    float_: np.ndarray           #: the float network (tiny-cuda-nn semantics)
    golden: np.ndarray           #: the fixed-point golden model
    rtl: np.ndarray              #: the Verilated NFP
    rtl_equals_golden: bool      #: identical images and identical raw integer outputs, query for query
    queries: int
    sim_seconds: float           #: wall time inside the simulator's batch calls
    cycles: int                  #: cycles simulated for the render (all batches, fill and drain included)
    streaming_cycles: int        #: cycles from each batch's first output to its last, summed
    train_steps: int
    train_cpu_seconds: float
    train_cached: bool
    loss_first: float
    loss_last: float
    act_frac: int
    field_error: tuple[float, float]   #: mean |float - truth|, mean |fixed - float| of the outputs on sample points

    @property
    def psnr(self) -> dict[str, float]:
        return {"rtl_vs_float": psnr(self.rtl, self.float_), "rtl_vs_golden": psnr(self.rtl, self.golden),
                "float_vs_truth": psnr(self.float_, self.truth), "rtl_vs_truth": psnr(self.rtl, self.truth)}

    @property
    def queries_per_second(self) -> float:
        return self.queries / self.sim_seconds if self.sim_seconds else float("inf")

    @property
    def queries_per_cycle(self) -> float:
        return self.queries / self.streaming_cycles if self.streaming_cycles else 0.0


def render_scene(scene: str, config=None, size: int = 128, steps: int | None = None, seed: int = 0,
                 log: Callable[[str], None] = lambda line: None) -> RenderResult:
    """Train (or load) ``scene``'s network for the ``ngpc_nfp`` config (preset name, TOML path, config or None:
    the scene's preset), quantise it, render it four ways and compare."""
    from threadpoolctl import threadpool_limits

    from rtl.designs import get_design
    from sim.build import build
    from sim.harness import NativeSim

    if scene not in SCENES:
        raise RampartError(f"unknown scene {scene!r} (scenes: {', '.join(SCENES)})")
    spec = SCENES[scene]
    design = get_design("ngpc_nfp")
    nfp = design.config(spec.preset if config is None else config)
    try:
        net, losses, train_seconds, cached = trained_field(
            spec, nfp, steps, seed, log=lambda step, loss: log(f"train step {step}: loss {loss:.3g}"))
    except ValueError as e:
        raise RampartError(f"-c {config}: {e}") from None
    rng = np.random.default_rng(seed + 1)
    fixed = quantize_field(net, nfp, spec.sample(rng, 1 << 14)[0])
    with threadpool_limits(limits=1, user_api="blas"):
        x, y = spec.sample(rng, 1 << 14)
        fx = net(x)
        error = (float(np.mean(np.abs(fx - y))), float(np.mean(np.abs(fixed(x) - fx))))
        truth = spec.render(spec.truth, size)
        float_image = spec.render(net, size)
        golden = GoldenField(fixed)
        golden_image = spec.render(golden, size)
        built = build("ngpc_nfp", nfp)
        with NativeSim(built) as sim:
            rtl = RtlField(sim, fixed)
            rtl_image = spec.render(rtl, size)
    same = np.array_equal(rtl_image, golden_image) and rtl.digest == golden.digest and rtl.queries == golden.queries
    preset = config if isinstance(config, str) else spec.preset if config is None else "custom"
    return RenderResult(scene, preset, size, truth, float_image, golden_image, rtl_image, same, rtl.queries,
                        rtl.seconds, rtl.cycles, rtl.streaming_cycles, len(losses), train_seconds, cached, losses[0],
                        losses[-1], fixed.act_frac, error)
