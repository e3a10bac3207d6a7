"""Global state of the NeuroCore PyNN backend: the network being built, the core it is loaded on, time.

The network is placed on the core at the first ``run()``: neuron populations on core neurons ``0..``, in creation
order, spike sources on core inputs ``0..``.  The core is one of three targets (``setup(target=...)``):

* ``"golden"``: :class:`models.snn.golden.GoldenCore` (numpy, bit-exact with the RTL);
* ``"rtl"``: the Verilated ``neurocore_uart`` design behind :class:`drivers.neurocore.NeuroCoreHost`, driven through
  its simulated UART pins (:class:`drivers.transport.SimTransport`);
* ``"board"``: the same host API over a serial port (:class:`drivers.transport.SerialTransport`, pyserial).

After loading, the network is fixed: new populations or projections, or changed parameters, are refused (the
core holds one network).  ``reset()`` soft-resets the core (weights learned by STDP are kept, as in PyNN).
"""
from __future__ import annotations

import numpy as np
from pyNN import common

from base import RampartError
from drivers.pynn.mapping import NeuronPop, Proj, SourcePop, StdpRule, UnsupportedConstruct, build_mapping

__all__ = ["ID", "State", "TARGETS", "state"]

name = "NeuroCore"
TARGETS = ("golden", "rtl", "board")
OVERRIDES: dict = {}   #: setup() options forced by a caller (``rampart snn compare --target``)


class ID(int, common.IDMixin):
    def __init__(self, n):
        int.__init__(n)
        common.IDMixin.__init__(self)


class State(common.control.BaseState):
    """One simulation: the network, the loaded core and the recorded data."""

    def __init__(self):
        super().__init__()
        self.mpi_rank = 0
        self.num_processes = 1
        self.dt = 1.0
        self.min_delay = "auto"
        self.max_delay = "auto"
        self.options = {}
        self.clear()

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def clear(self):
        """Forget the network (``setup``/``end``); closes the core."""
        self.close()
        self.recorders = set()
        self.populations = []
        self.projections = []
        self.id_counter = 0
        self.segment_counter = -1
        self.mapping = None
        self.layout = None
        self.config = None
        self.core = None
        self.loaded = False
        self.step = 0
        self.history = []          # (inputs, raster) of every run since load: the cost model and comparisons
        self.reset()

    def close(self):
        core = getattr(self, "core", None)
        transport = getattr(core, "transport", None)
        if transport is not None:
            transport.close()
        self.core = None
        self.loaded = False

    def reset(self):
        """Time back to 0, a new segment; the core's state (not its weights) back to rest."""
        self.running = False
        self.t = 0.0
        self.t_start = 0.0
        self.step = 0
        self.segment_counter += 1
        for rec in self.recorders:
            rec._clear_data()
        if getattr(self, "history", None):
            self.history.append(None)          # a soft reset between runs
        if getattr(self, "core", None) is not None:
            if self.mapping.stdp is not None:
                self.core.set_weights(self._initial_weights)     # PyNN's reset() restores the weights
            self.core.reset_state()
        self._poisson = {}

    def check_mutable(self, what: str) -> None:
        if self.loaded:
            raise UnsupportedConstruct(f"{what} after run(): the network is fixed once it is loaded on the core (one "
                                       "network per core); call setup() to start a new one")

    # -- running ---------------------------------------------------------------------------------------------------

    def run(self, simtime):
        self.run_until(self.t + simtime)

    def run_until(self, tstop):
        steps = int(round((tstop - self.t) / self.dt))
        if not self.loaded:
            self.load()
        if steps > 0:
            self._advance(steps)
            self.t += steps * self.dt          # on the step grid
        self.running = True

    def load(self) -> None:
        """Place the network, convert it (:func:`~drivers.pynn.mapping.build_mapping`) and write the core."""
        mapping = self.build()
        core = self.core if self.core is not None else self._open_core()
        try:
            self._initial_weights = _write(core, mapping)
        except Exception:
            self.core = core
            self.close()
            raise
        self.core = core
        self.loaded = True

    def build(self):
        """The mapping of the current network (placing it first); raises on unsupported constructs."""
        neuron_pops, source_pops, projs = self._layout()
        n = sum(p.size for p in neuron_pops)
        m = sum(p.size for p in source_pops)
        self.config = self._config(n, m)
        cfg = self.config
        mapping = build_mapping(neuron_pops, source_pops, projs, self.dt, v_lsb=self.options.get("v_lsb"),
                                config_name=f"{cfg.n_neurons}x{cfg.n_inputs} (P={cfg.lanes})",
                                n_core=cfg.n_neurons)
        _report_sources(source_pops, self.dt, mapping.report)
        if self.options.get("target") == "rtl":
            mapping.report.add("target", "exact", "RTL through the simulated UART (bit-exact with golden)")
        self.mapping = mapping
        return mapping

    def _layout(self):
        neuron_pops, source_pops, by_pop = [], [], {}
        n = m = 0
        for pop in self.populations:
            kind = type(pop.celltype).__name__
            params = {k: np.asarray(v) for k, v in pop._parameters.items()}
            if kind.startswith("SpikeSource"):
                spec = SourcePop(pop.label, kind, pop.size, params, first=m)
                m += pop.size
                source_pops.append(spec)
            else:
                v0 = np.asarray(pop.initial_values["v"].evaluate(simplify=False), dtype=float)
                spec = NeuronPop(pop.label, kind, pop.size, params, first=n, v_init=v0)
                n += pop.size
                neuron_pops.append(spec)
            by_pop[id(pop)] = spec
        projs = [prj.flatten(by_pop) for prj in self.projections]
        self.layout = (neuron_pops, source_pops, by_pop)
        return neuron_pops, source_pops, projs

    def _config(self, n: int, m: int):
        from rtl.neurocore.config import PRESETS, NeuroCoreConfig

        want = self.options.get("config")
        target = self.options.get("target", "golden")
        if target == "board":
            if self.core is None:
                self.core = self._open_core()      # the board's shape comes from the core itself
            cfg = self.core.config
            if n > cfg.n_neurons or m > cfg.n_inputs:
                raise UnsupportedConstruct(f"{n} neurons and {m} spike sources do not fit the board's core of "
                                           f"{cfg.n_neurons} neurons and {cfg.n_inputs} inputs")
            return cfg
        if want is None:
            for cfg in PRESETS.values():
                if n <= cfg.n_neurons and m <= cfg.n_inputs:
                    return cfg
            biggest = list(PRESETS)[-1]
            raise UnsupportedConstruct(f"{n} neurons and {m} spike sources: more than the largest NeuroCore preset "
                                       f"{biggest} holds; pass setup(config=...) with a bigger core")
        if isinstance(want, str):
            from rtl.designs import get_design

            want = get_design("neurocore").config(want)
        if not isinstance(want, NeuroCoreConfig):
            raise RampartError(f"config must be a NeuroCore preset name or NeuroCoreConfig, not {want!r}")
        if n > want.n_neurons or m > want.n_inputs:
            raise UnsupportedConstruct(f"{n} neurons and {m} spike sources do not fit the core's {want.n_neurons} "
                                       f"neurons and {want.n_inputs} inputs")
        return want

    def _open_core(self):
        target = self.options.get("target", "golden")
        cfg = self.config
        if target == "golden":
            from models.snn.golden import GoldenCore

            return GoldenCore(cfg.core_config)
        if target == "rtl":
            from drivers.neurocore import NeuroCoreHost
            from drivers.transport import SimTransport
            from rtl.neurocore.uart_top import NeuroCoreUartConfig

            uart = NeuroCoreUartConfig(cfg, divisor=4, timeout_cycles=1500, max_payload=512)
            return NeuroCoreHost(SimTransport(uart))
        return open_board(self.options.get("port"), self.options.get("baud", 115_200))

    def _advance(self, steps: int) -> None:
        cfg = self.config
        inputs = np.zeros((steps, cfg.n_inputs), dtype=bool)
        _, source_pops, _ = self.layout
        live = [p for p in self.populations if type(p.celltype).__name__.startswith("SpikeSource")]
        for k, (spec, pop) in enumerate(zip(source_pops, live, strict=True)):
            spec.params = {name: np.asarray(v) for name, v in pop._parameters.items()}   # sources may change
            inputs[:, spec.first:spec.first + spec.size] = self._source_raster(k, spec, steps)
        v_idx = self._recorded_v()
        raster, v = _run_core(self.core, steps, inputs, v_idx)
        self.history.append((inputs, raster))
        for rec in self.recorders:
            rec.store(self.step, raster, inputs, v_idx, v)
        self.step += steps

    def _source_raster(self, k: int, pop: SourcePop, steps: int) -> np.ndarray:
        t = (self.step + np.arange(steps)) * self.dt
        if pop.kind == "SpikeSourceArray":
            out = np.zeros((steps, pop.size), dtype=bool)
            for j, seq in enumerate(np.broadcast_to(pop.params["spike_times"], (pop.size,))):
                idx = np.rint(np.asarray(seq.value, dtype=float) / self.dt).astype(np.int64) - self.step
                idx = idx[(idx >= 0) & (idx < steps)]
                out[idx, j] = True
            return out
        rng = self._poisson.get(k)
        if rng is None:
            rng = self._poisson[k] = np.random.default_rng([int(self.options.get("rng_seed", 0)), k])
        rate = np.broadcast_to(pop.params["rate"].astype(float), (pop.size,))
        start = np.broadcast_to(pop.params["start"].astype(float), (pop.size,))
        dur = np.broadcast_to(pop.params["duration"].astype(float), (pop.size,))
        active = (t[:, None] >= start - 1e-9) & (t[:, None] < start + dur - 1e-9)
        return (rng.random((steps, pop.size)) < rate * self.dt * 1e-3) & active

    def _recorded_v(self) -> np.ndarray:
        idx = []
        for rec in self.recorders:
            idx += rec.core_indices("v")
        return np.array(sorted(set(idx)), dtype=np.int64)


def step_cycle_counts(config, history, learn: bool) -> np.ndarray:
    """Clock cycles of every step run so far, from :func:`rtl.neurocore.config.step_cycles` and the spikes.

    A step's pending sources are the previous step's spikes and inputs (none in the first step after loading
    or a soft reset); with learning on, every other step reuses the previous depression pass (``integrated``:
    the host only sends inputs and RUN between steps)."""
    from rtl.neurocore.config import step_cycles

    runs = [h for h in history if h is not None]
    if not runs:
        return np.zeros(0, dtype=np.int64)
    inputs = np.concatenate([h[0] for h in runs])
    raster = np.concatenate([h[1] for h in runs])
    now = raster.sum(1) + inputs.sum(1)
    first = np.zeros(raster.shape[0], dtype=bool)        # first step after loading or a soft reset
    t = 0
    for h in history:
        if h is None:
            first[min(t, first.size - 1)] = True
        else:
            t += h[1].shape[0]
    first[0] = True
    pending = np.where(first, 0, np.concatenate([[0], now[:-1]]))
    p = config.lanes
    groups = raster.reshape(raster.shape[0], -1, p).any(2).sum(1)
    return np.array([step_cycles(config, int(pending[t]), int(now[t]), int(groups[t]), learn,
                                 integrated=learn and not first[t]) for t in range(raster.shape[0])], dtype=np.int64)


def open_board(port, baud):
    """A :class:`~drivers.neurocore.NeuroCoreHost` on a serial port; one clear error if it cannot be opened."""
    from drivers.neurocore import NeuroCoreHost
    from drivers.transport import ProtocolError, SerialTransport

    if not port:
        raise RampartError("target='board' needs setup(port='/dev/ttyUSB0', baud=...)")
    try:
        transport = SerialTransport(port, int(baud))
    except ImportError as e:
        raise RampartError(str(e)) from None
    except Exception as e:  # serial.SerialException, OSError
        raise RampartError(f"target='board': cannot open serial port {port!r}: {e}") from None
    try:
        return NeuroCoreHost(transport)
    except ProtocolError as e:
        transport.close()
        raise RampartError(f"target='board': no NeuroCore answers on {port!r} at {baud} baud ({e})") from None


def _write(core, mapping) -> None:
    from models.snn.params import SynapseParams

    rows = mapping.weights.shape[0]
    cfg = core.config
    w = np.zeros((cfg.n_sources, cfg.n_neurons), dtype=np.int64)
    w[:rows] = mapping.weights
    mask = np.zeros(w.shape, dtype=bool)
    mask[:rows] = mapping.mask
    core.set_synapse_params(SynapseParams(w_exp=mapping.w_exp))
    core.set_neuron_params(mapping.neurons)
    if mapping.stdp is not None:
        core.set_stdp_params(mapping.stdp)
    if mask.any():
        core.set_plastic(mask)
    core.set_weights(w)
    core.reset_state()
    if mapping.stdp is not None:
        core.enable_stdp()
    return w


def _run_core(core, steps: int, inputs: np.ndarray, v_idx: np.ndarray):
    """Run ``steps`` steps; with membranes to record, one step at a time (reading them after each)."""
    if not v_idx.size:
        return core.run(steps, inputs), None
    raster = np.zeros((steps, core.config.n_neurons), dtype=bool)
    v = np.zeros((steps, v_idx.size), dtype=np.int64)
    golden = not hasattr(core, "transport")
    for t in range(steps):
        raster[t] = core.run(1, inputs[t:t + 1])[0]
        v[t] = core.membrane()[v_idx] if golden else core.membrane(v_idx)
    return raster, v


def _report_sources(source_pops, dt: float, report) -> None:
    for pop in source_pops:
        if pop.kind == "SpikeSourceArray":
            seqs = np.broadcast_to(pop.params["spike_times"], (pop.size,))
            times = [np.asarray(s.value, dtype=float) for s in seqs]
            total = sum(t.size for t in times)
            off = sum(int((np.abs(t / dt - np.rint(t / dt)) > 1e-9).sum()) for t in times)
            merged = sum(t.size - np.unique(np.rint(t / dt)).size for t in times)
            kind = "rounded" if off or merged else "exact"
            report.add(pop.label, kind, f"{total} spike times, {off} moved to the {dt:g} ms grid, {merged} merged "
                                        "into a step that already had a spike")
        else:
            rate = np.asarray(pop.params["rate"], dtype=float)
            p = rate * dt * 1e-3
            if np.any(p > 1):
                raise UnsupportedConstruct(f"population {pop.label!r}: Poisson rate {rate.max():g} Hz exceeds one "
                                           f"spike per {dt:g} ms step")
            report.add(pop.label, "rounded", f"Poisson {_fmt(rate)} Hz as a Bernoulli draw per step (p = rate * dt), "
                                             "seeded by setup(rng_seed=...)")


def _fmt(a) -> str:
    a = np.asarray(a, dtype=float)
    return f"{a.min():g}" if a.min() == a.max() else f"{a.min():g}..{a.max():g}"


def flatten_projection(prj, by_pop) -> Proj:
    """The :class:`~drivers.pynn.mapping.Proj` of a backend projection (population-local indices)."""
    pre, pre_idx = _base(prj.pre, prj._pre_idx)
    post, post_idx = _base(prj.post, prj._post_idx)
    stdp = None
    st = prj.synapse_type
    if type(st).__name__ == "STDPMechanism":
        values = {}
        for comp in (st.timing_dependence, st.weight_dependence):
            for k, v in comp.parameter_space.items():
                if hasattr(v, "is_homogeneous"):
                    if not v.is_homogeneous:
                        raise UnsupportedConstruct(f"projection {prj.label!r}: per-synapse STDP parameter {k}: the "
                                                   "core's learning registers are global")
                    v = v.base_value if not callable(v.base_value) else v.evaluate(simplify=True)
                values[k] = float(np.ravel(v)[0])
        stdp = StdpRule(**{k: values[k] for k in ("tau_plus", "tau_minus", "A_plus", "A_minus", "w_min", "w_max")})
    return Proj(prj.label, by_pop[id(pre)], by_pop[id(post)], pre_idx, post_idx, prj._weights(), prj._delays(),
                prj.receptor_type, stdp)


def _base(pop, idx):
    """(population, indices in it) for a Population or a view of one."""
    if isinstance(pop, common.Assembly):
        raise UnsupportedConstruct("a Projection from or to an Assembly: connect the populations one by one")
    if isinstance(pop, common.PopulationView):
        return pop.grandparent, np.asarray(pop.index_in_grandparent(idx), dtype=np.int64)
    return pop, idx


state = State()
