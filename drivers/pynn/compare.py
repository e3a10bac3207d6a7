"""One PyNN script on Brian2 and on NeuroCore: the hardware-software gap, measured (PyCARL-style co-simulation).

:func:`compare_script` runs a plain PyNN script twice in this process, once with ``pyNN.brian2`` and once with
:mod:`drivers.pynn` as the simulator: whichever of the two the script imports, both module names point to the
chosen simulator while it runs.  Every ``Population`` the script creates is remembered; afterwards the recorded
spikes (and membranes) of each are read back and compared population by population, matched by creation order.

* The NeuroCore run goes first.  Its Poisson sources draw their spikes from the seeded generator; the Brian2 run
  then gets exactly those spike trains (its ``SpikeSourcePoisson`` is replaced by a ``SpikeSourceArray`` of the
  same realisation), so the gap measured is the simulators', not two random draws' (for scripts that call
  ``reset()``, only the first segment's Poisson trains are the same).
* Metrics per population: spike counts (total, mean and max |difference| per neuron), first-spike time
  differences, the van Rossum distance per neuron (exponential kernel ``tau``, normalised so that one unmatched
  spike gives ``sqrt(1/2)``), and the share of neurons whose spike trains are identical.
* The quantisation part of the gap: the golden run against the float model of the *same registers*
  (:func:`models.snn.brian2_ref.simulate` on the decoded parameters, forward Euler), checked against the error bound
  of ``tb/models/snn/test_vs_brian2.py``: ``|v_golden - v_float| <= E_v = (1 + 4096/d_i) 4096/d_v`` LSB until the
  first step where the spike trains differ.  The remaining gap is discretisation (Euler with the core's one-step
  arrival vs Brian2's exact integration with the PyNN delay), which the report names separately.
* Cost model: cycles of every step from :func:`rtl.neurocore.config.step_cycles` and the run's spikes, steps/s at the
  board clock, and over a UART at ``baud`` (a step's input bitmap and raster cross the link, plus the framing of
  the RUN commands that carry them: ``10 (ceil(M/8) + ceil(N/8) + 15 / steps per command) / baud`` seconds, added
  to the compute time).
"""
from __future__ import annotations

import contextlib
import importlib
import json
import math
import runpy
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from base import RampartError

__all__ = ["CompareResult", "compare_script", "plot_comparison", "run_script", "van_rossum"]

ALIASES = ("pyNN.brian2", "drivers.pynn")


@dataclass
class ScriptRun:
    """What one simulator produced: per population (creation order) label, size, spike trains (ms) and v."""

    simulator: str
    dt: float
    t_stop: float
    pops: list = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    state: object = None


@dataclass
class CompareResult:
    script: str
    brian2: ScriptRun
    core: ScriptRun
    populations: list
    cost: dict
    quantisation: list
    mapping: str

    def as_dict(self) -> dict:
        return {"script": self.script, "dt_ms": self.core.dt, "t_stop_ms": self.core.t_stop,
                "seconds": {"brian2": self.brian2.seconds, "neurocore": self.core.seconds},
                "populations": self.populations, "quantisation": self.quantisation, "cost_model": self.cost,
                "mapping_report": self.mapping}

    def summary(self) -> str:
        lines = [f"{self.script}: Brian2 {self.brian2.seconds:.1f} s, NeuroCore ({self.core.state}) "
                 f"{self.core.seconds:.1f} s, {self.core.t_stop:g} ms at dt = {self.core.dt:g} ms"]
        for p in self.populations:
            lines.append(f"  {p['label']} ({p['size']} neurons): spikes brian2 {p['spikes_brian2']} / neurocore "
                         f"{p['spikes_core']}; |count diff| mean {p['count_diff_mean']:.3g} max "
                         f"{p['count_diff_max']}; first spike diff mean {_f(p['first_spike_diff_mean'])} ms, max |.| "
                         f"{_f(p['first_spike_diff_max'])} ms; van Rossum ({p['tau_ms']:g} ms) mean "
                         f"{p['van_rossum_mean']:.3g} max {p['van_rossum_max']:.3g}; identical trains "
                         f"{p['identical_share']:.0%} ({p['identical_share_one_step_later']:.0%} with the core's "
                         "spikes one step later)")
        for q in self.quantisation:
            lines.append(f"  quantisation {q['label']}: golden vs float core model: identical trains "
                         f"{q['identical_share']:.0%} (network first differs at step {q['first_divergence_step']}), "
                         f"max |dv| before divergence {_f(q['max_dv_mV'])} mV, bound "
                         f"E_v {_f(q['bound_mV'])} mV: {q['verdict']}")
        lines.append("  (timing: the core integrates a spike in the step after it is emitted, PyNN simulators with "
                     "delay = dt one step later, so the core leads by about one step per synaptic hop)")
        c = self.cost
        lines.append(f"  cost model: {c['mean_cycles_per_step']:.0f} cycles/step (max {c['max_cycles_per_step']}) "
                     f"-> {c['steps_per_s_clock']:.0f} steps/s at {c['clock_hz'] / 1e6:g} MHz; over a "
                     f"{c['baud']} baud UART {c['steps_per_s_uart']:.0f} steps/s "
                     f"({c['uart_bytes_per_step']:.3g} B/step); real time needs {1000 / self.core.dt:.0f} steps/s")
        return "\n".join(lines)


def _f(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


# -- running a script ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _as_simulator(module, created: list, cleared: dict):
    """While active, ``import pyNN.brian2`` and ``import drivers.pynn`` both give ``module``; every Population
    created is appended to ``created``, and the blocks of ``get_data(clear=True)`` calls are kept in ``cleared``
    (by population id), since the data they return is gone from the simulator afterwards."""
    import pyNN
    from pyNN.common import populations as common_pops

    import drivers

    saved = {name: sys.modules.get(name) for name in ALIASES}
    saved_attr = (getattr(pyNN, "brian2", None), getattr(drivers, "pynn", None))
    orig_init = common_pops.Population.__init__
    orig_get = common_pops.BasePopulation.get_data

    def init(self, *args, **kwargs):
        orig_init(self, *args, **kwargs)
        created.append(self)

    def get_data(self, variables="all", gather=True, clear=False, locations=None):
        block = orig_get(self, variables, gather, clear, locations)
        if clear:
            cleared.setdefault(id(self), []).append(block)
        return block

    try:
        for name in ALIASES:
            sys.modules[name] = module
        pyNN.brian2 = module
        drivers.pynn = module
        common_pops.Population.__init__ = init
        common_pops.BasePopulation.get_data = get_data
        yield
    finally:
        common_pops.Population.__init__ = orig_init
        common_pops.BasePopulation.get_data = orig_get
        for name, mod in saved.items():
            if mod is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = mod
        pyNN.brian2, drivers.pynn = saved_attr


@contextlib.contextmanager
def _shared_poisson(module, trains):
    """Replace ``module.SpikeSourcePoisson`` by spike arrays of the given realisations, in creation order."""
    if trains is None:
        yield
        return
    orig = module.SpikeSourcePoisson
    queue = list(trains)

    def factory(**params):
        if not queue:
            raise RampartError("the script creates more Poisson sources under Brian2 than under NeuroCore")
        return module.SpikeSourceArray(spike_times=[list(t) for t in queue.pop(0)])

    module.SpikeSourcePoisson = factory
    try:
        yield
    finally:
        module.SpikeSourcePoisson = orig


def run_script(script, simulator: str, *, target: str = "golden", config=None, poisson=None,
               argv=()) -> ScriptRun:
    """Run ``script`` with ``simulator`` ("brian2" or "neurocore"; then ``target`` and, if given, the core
    ``config`` override the script's setup()); returns the recorded data."""
    script = Path(script)
    if simulator == "brian2":
        module = importlib.import_module("pyNN.brian2")
    else:
        module = importlib.import_module("drivers.pynn")
        from drivers.pynn import simulator as core_sim

        core_sim.OVERRIDES.clear()
        core_sim.OVERRIDES["target"] = target
        if config is not None:
            core_sim.OVERRIDES["config"] = config
    created, cleared = [], {}
    start, cpu = time.monotonic(), time.process_time()
    old_argv = sys.argv
    sys.argv = [str(script), *argv]
    try:
        with _as_simulator(module, created, cleared), _shared_poisson(module, poisson), _quiet():
            runpy.run_path(str(script), run_name="__main__")
    except RampartError:
        raise
    except SystemExit as e:
        if e.code not in (None, 0):
            raise RampartError(f"{script} exited with {e.code} under {simulator}") from None
    except Exception as e:
        raise RampartError(f"{script} failed under {simulator}: {type(e).__name__}: {e}") from None
    finally:
        sys.argv = old_argv
        if simulator != "brian2":
            core_sim.OVERRIDES.clear()
    seconds, cpu = time.monotonic() - start, time.process_time() - cpu
    st = sys.modules["pyNN.brian2"].simulator.state if simulator == "brian2" else core_sim.state
    run = ScriptRun(simulator, float(st.dt), float(st.t), seconds=seconds, cpu_seconds=cpu,
                    state=target if simulator != "brian2" else None)
    for pop in created:
        run.pops.append(_harvest(pop, cleared.get(id(pop))))
    run.t_stop = max([run.t_stop] + [p["t_stop"] for p in run.pops])
    if simulator != "brian2":
        run.state = core_sim.state
    return run


@contextlib.contextmanager
def _quiet():
    import logging

    logger = logging.getLogger("brian2")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _harvest(pop, cleared_blocks=None) -> dict:
    """Recorded spikes (and v) of ``pop``: the segments the script cleared while reading, or else what the
    population holds now; several segments are laid end to end (spike times shifted by the earlier ones)."""
    names = {v.name for v in pop.recorder.recorded}
    out = {"label": pop.label, "size": pop.size, "kind": type(pop.celltype).__name__, "spikes": None, "v": None,
           "t_stop": 0.0}
    if not names:
        return out
    if cleared_blocks:
        segments = [seg for block in cleared_blocks for seg in block.segments]
    else:
        segments = pop.get_data([n for n in ("spikes", "v") if n in names]).segments
    trains = [[] for _ in range(pop.size)]
    offset = 0.0
    for seg in segments:
        length = 0.0
        for st in seg.spiketrains:
            trains[int(st.annotations.get("source_index", 0))].append(np.asarray(st.magnitude, dtype=float) + offset)
            length = float(st.t_stop - st.t_start)
        for sig in seg.analogsignals:
            if sig.name == "v" and len(segments) == 1:
                out["v"] = np.asarray(sig.magnitude, dtype=float)
                out["v_index"] = np.asarray(sig.array_annotations["channel_index"], dtype=np.int64)
        offset += length
    if "spikes" in names:
        out["spikes"] = [np.concatenate(t) if t else np.zeros(0) for t in trains]
    out["t_stop"] = offset
    return out


# -- metrics ----------------------------------------------------------------------------------------------------


def van_rossum(a, b, tau: float, t_stop: float, dt: float) -> float:
    """van Rossum distance of two spike trains (ms): ``sqrt(1/tau * integral (f - g)^2)`` with causal exponential
    kernels, evaluated on a grid of ``dt / 10``; one unmatched spike gives ``sqrt(1/2)``."""
    h = dt / 10
    grid = np.arange(0.0, t_stop + 5 * tau, h)

    def trace(times):
        f = np.zeros(grid.size)
        for s in np.asarray(times, dtype=float):
            k = grid >= s - 1e-12
            f[k] += np.exp(-(grid[k] - s) / tau)
        return f

    d = trace(a) - trace(b)
    return float(math.sqrt(np.sum(d * d) * h / tau))


def _first(trains):
    return np.array([t[0] if t is not None and len(t) else np.nan for t in trains])


def population_gap(label, size, ref, core, tau, t_stop, dt) -> dict:
    counts_r = np.array([len(t) for t in ref])
    counts_c = np.array([len(t) for t in core])
    diff = counts_c - counts_r
    f_r, f_c = _first(ref), _first(core)
    both = ~np.isnan(f_r) & ~np.isnan(f_c)
    fd = f_c[both] - f_r[both]
    vr = np.array([van_rossum(r, c, tau, t_stop, dt) for r, c in zip(ref, core, strict=True)])
    same = np.array([len(r) == len(c) and np.allclose(r, c) for r, c in zip(ref, core, strict=True)])
    shifted = np.array([len(r) == len(c) and np.allclose(r, c + dt) for r, c in zip(ref, core, strict=True)])
    return {"label": label, "size": size, "tau_ms": tau, "spikes_brian2": int(counts_r.sum()),
            "spikes_core": int(counts_c.sum()), "count_diff_mean": float(np.abs(diff).mean()),
            "count_diff_max": int(np.abs(diff).max()), "count_diff_per_neuron": diff.tolist(),
            "first_spike_diff_mean": float(fd.mean()) if fd.size else None,
            "first_spike_diff_max": float(np.abs(fd).max()) if fd.size else None,
            "first_spike_only_one": int((np.isnan(f_r) != np.isnan(f_c)).sum()),
            "van_rossum_mean": float(vr.mean()), "van_rossum_max": float(vr.max()),
            "van_rossum_per_neuron": vr.tolist(), "identical_share": float(same.mean()),
            "identical_share_one_step_later": float(shifted.mean())}


FRAME_OVERHEAD = 6 + 7 + 2   #: command frame (sync, op, len16, CRC16) + response (sync, op, status, len16, CRC16)
#: + RUN's step count


def cost_model(state, clock_hz: float, baud: int, max_payload: int = 512) -> dict:
    """Cycles per step (``step_cycles`` on the run's spikes) and steps/s at ``clock_hz``, and over a UART at
    ``baud`` (8N1): the RUN commands of :meth:`drivers.neurocore.NeuroCoreHost.run` carry ``floor((max_payload
    - 2) / ceil(M/8))`` steps of input bitmaps each and return their rasters; transfer and computation are
    counted one after the other (membrane reads for recorded v are not included)."""
    from drivers.pynn.simulator import step_cycle_counts

    cfg = state.config
    learn = state.mapping is not None and state.mapping.stdp is not None
    cycles = step_cycle_counts(cfg, state.history, learn)
    mean = float(cycles.mean()) if cycles.size else 0.0
    in_bytes, ras_bytes = -(-cfg.n_inputs // 8), -(-cfg.n_neurons // 8)
    per_run = min((max_payload - 2) // in_bytes, 0xFFFF // ras_bytes)
    per_step_bytes = in_bytes + ras_bytes + FRAME_OVERHEAD / per_run
    t_step = mean / clock_hz
    t_uart = 10 * per_step_bytes / baud
    return {"core": f"{cfg.n_neurons}x{cfg.n_inputs} P={cfg.lanes}", "learning": learn, "steps": int(cycles.size),
            "mean_cycles_per_step": mean, "max_cycles_per_step": int(cycles.max()) if cycles.size else 0,
            "clock_hz": clock_hz, "steps_per_s_clock": clock_hz / mean if mean else math.inf, "baud": baud,
            "steps_per_run_command": per_run, "uart_bytes_per_step": round(per_step_bytes, 3),
            "steps_per_s_uart": 1 / (t_step + t_uart)}


def quantisation_gap(state, core_run: ScriptRun) -> list:
    """Golden run vs the float model of the same registers, per neuron population (spikes and recorded v)."""
    from models.snn.brian2_ref import simulate
    from models.snn.params import FixedScale, decode_neurons, decode_stdp, decode_weights

    m = state.mapping
    cfg = state.config
    dt_s = state.dt * 1e-3
    scale = FixedScale(dt=dt_s, v_lsb=m.v_lsb * 1e-3, w_exp=m.w_exp)
    w = np.zeros((cfg.n_sources, cfg.n_neurons), dtype=np.int64)
    w[:m.weights.shape[0]] = m.weights
    mask = np.zeros(w.shape, dtype=bool)
    mask[:m.mask.shape[0]] = m.mask
    learn = m.stdp is not None
    neurons, weights = decode_neurons(m.neurons, scale), decode_weights(w, scale)
    stdp = decode_stdp(m.stdp, scale, cfg.trace_bits) if learn else None
    # one float run per segment (the core restarts from rest after every reset(); STDP weights are restored too)
    rasters, floats, volts = [], [], []
    for seg in _segments(state.history):
        inputs = np.concatenate([h[0] for h in seg])
        res = simulate(neurons, weights, inputs.shape[0], inputs, dt=dt_s, stdp=stdp, plastic=mask if learn else None,
                       learn=learn, record=True)
        rasters.append(np.concatenate([h[1] for h in seg]))
        floats.append(res.raster)
        volts.append(res.v)
    raster, float_raster = np.concatenate(rasters), np.concatenate(floats)
    float_v = volts[0] if len(volts) == 1 else None
    steps = raster.shape[0]
    neuron_pops = state.layout[0]
    feedforward = not m.weights[:cfg.n_neurons].any() and m.weights.min() >= 0 and not learn
    # a neuron's v stays within the bound while it and every source feeding it spike as in the float model;
    # a spike differing at step t changes its targets from step t + 1
    differ = (raster != float_raster).any(1)
    net_first = int(differ.argmax()) if differ.any() else steps
    out = []
    for pop, run in zip(neuron_pops, [p for p in core_run.pops if not p["kind"].startswith("SpikeSource")],
                        strict=True):
        sl = slice(pop.first, pop.first + pop.size)
        g, b = raster[:, sl], float_raster[:, sl]
        same = (g == b).all(0)
        mismatch = g != b
        first_diff = np.minimum(np.where(mismatch.any(0), mismatch.argmax(0), steps), net_first + 1)
        d_i = m.neurons.d_i[sl]
        d_v = m.neurons.d_v[sl]
        e_i = np.where(d_i > 0, 4096 / np.maximum(d_i, 1), np.inf)
        bound = np.where(d_v > 0, (1 + e_i) * 4096 / np.maximum(d_v, 1), np.inf) * m.v_lsb
        max_dv, within = None, None
        if run.get("v") is not None and float_v is not None:
            idx = run["v_index"]
            vg = run["v"][1:]
            vb = float_v[:, pop.first + idx] * 1e3
            dv = [np.abs(vg[:first_diff[j], k] - vb[:first_diff[j], k]).max(initial=0) for k, j in enumerate(idx)]
            max_dv = float(max(dv))
            within = bool(all(d <= bound[j] + 1e-9 for d, j in zip(dv, idx, strict=True)))
        if within is None:
            verdict = "no v recorded"
        elif within:
            verdict = "within the bound"
        else:
            verdict = "EXCEEDS the bound"
        verdict += "" if feedforward else " (the spike-time bracket of the bound holds for feed-forward layers " \
                                          "with non-negative weights and no STDP only)"
        out.append({"label": pop.label, "identical_share": float(same.mean()), "max_dv_mV": max_dv,
                    "bound_mV": float(bound.max()), "within_bound": within, "feedforward": feedforward,
                    "verdict": verdict, "spikes_golden": int(g.sum()), "spikes_float_core": int(b.sum()),
                    "first_divergence_step": net_first})
    return out


def _segments(history):
    """The runs of ``history`` split at soft resets."""
    out, cur = [], []
    for h in history:
        if h is None:
            if cur:
                out.append(cur)
            cur = []
        else:
            cur.append(h)
    if cur:
        out.append(cur)
    return out


def _poisson_trains(state):
    """Realised spike times (ms) of every Poisson source population of the NeuroCore run, in creation order."""
    _, source_pops, _ = state.layout
    runs = [h for h in state.history if h is not None]
    inputs = np.concatenate([h[0] for h in runs]) if runs else None
    out = []
    for pop in source_pops:
        if pop.kind != "SpikeSourcePoisson":
            continue
        block = inputs[:, pop.first:pop.first + pop.size]
        out.append([np.flatnonzero(block[:, j]) * state.dt for j in range(pop.size)])
    return out


def compare_script(script, *, target: str = "golden", tau: float = 10.0, clock_hz: float = 25e6,
                   baud: int = 115_200, quantisation: bool = True, argv=()) -> CompareResult:
    """Run ``script`` on NeuroCore (``target``) and on Brian2 (same Poisson realisations) and measure the gap."""
    core = run_script(script, "neurocore", target=target, argv=argv)
    state = core.state
    if state.mapping is None or not state.history:
        raise RampartError(f"{script}: the script never ran a simulation under NeuroCore")
    mapping = str(state.mapping.report)
    cost = cost_model(state, clock_hz, baud)
    quant = quantisation_gap(state, core) if quantisation else []
    ref = run_script(script, "brian2", poisson=_poisson_trains(state), argv=argv)
    core.state = target
    if len(ref.pops) != len(core.pops):
        raise RampartError(f"{script} created {len(ref.pops)} populations under Brian2, {len(core.pops)} under "
                           "NeuroCore")
    pops = []
    for r, c in zip(ref.pops, core.pops, strict=True):
        if r["spikes"] is None or c["spikes"] is None:
            continue
        pops.append(population_gap(c["label"], c["size"], r["spikes"], c["spikes"], tau, max(c["t_stop"], core.t_stop),
                                   core.dt))
        pops[-1]["kind"] = c["kind"]
    if not pops:
        raise RampartError(f"{script} records no spikes: call Population.record('spikes') on what to compare")
    return CompareResult(str(script), ref, core, pops, cost, quant, mapping)


# -- plots --------------------------------------------------------------------------------------------------------


def plot_comparison(result: CompareResult, out: Path) -> list:
    """raster_<label>.png per compared population (Brian2 | NeuroCore) and distance.png (van Rossum per neuron)."""
    from matplotlib.figure import Figure

    out.mkdir(parents=True, exist_ok=True)
    paths = []
    by_label = {p["label"]: p for p in result.brian2.pops}
    core_by = {p["label"]: p for p in result.core.pops}
    for gap in result.populations:
        label = gap["label"]
        fig = Figure(figsize=(11, 3.6), layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        for ax, (name, run) in zip(axes, (("Brian2 (float)", by_label[label]), ("NeuroCore", core_by[label])),
                                   strict=True):
            trains = [t if t is not None else np.zeros(0) for t in run["spikes"]]
            ax.eventplot(trains, colors="k", linelengths=0.8, linewidths=0.8)
            ax.set(title=f"{label}: {name}", xlabel="time (ms)", xlim=(0, max(run["t_stop"], result.core.t_stop)))
        axes[0].set_ylabel("neuron")
        paths.append(out / f"raster_{_safe(label)}.png")
        fig.savefig(paths[-1], dpi=110)
    fig = Figure(figsize=(11, 3.2 * len(result.populations)), layout="constrained")
    axes = fig.subplots(len(result.populations), 1, squeeze=False)
    for ax, gap in zip(axes[:, 0], result.populations, strict=True):
        ax.bar(np.arange(gap["size"]), gap["van_rossum_per_neuron"], color="tab:purple")
        ax.set(title=f"{gap['label']}: van Rossum distance per neuron (tau = {gap['tau_ms']:g} ms)",
               xlabel="neuron", ylabel="distance")
    paths.append(out / "distance.png")
    fig.savefig(paths[-1], dpi=110)
    return paths


def _safe(label: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in label)


def write_json(result: CompareResult, path: Path) -> None:
    path.write_text(json.dumps(result.as_dict(), indent=2))
