"""Bit-exact fixed-point golden model of one SNN core (the semantics are specified in :mod:`models.snn.params`).

Integer-only: every state variable is an int64 numpy array holding the value of the hardware register, and every
operation is the hardware's (truncating decay, exact accumulation, saturation, clamping).  One step is a handful of
vectorised numpy operations over neurons, so N=256 neurons with 256 inputs run 1,000 steps in well under a second.

The host API mirrors the hardware's command set (snn.md section 5): write/read weights and the plasticity mask,
write neuron and global registers, soft reset, run n steps with an input raster, probe up to a few neurons, read
membranes, spike counters and status.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from models.snn.params import (
    ADAPT_BITS,
    DECAY_ONE,
    DECAY_SHIFT,
    STATE_BITS,
    CoreConfig,
    NeuronParams,
    ResetMode,
    StdpParams,
    SynapseParams,
    TraceMode,
    check_learnable,
    int_range,
)

__all__ = ["GoldenCore", "Probe", "Status", "decay"]

_S_LO, _S_HI = int_range(STATE_BITS)
_W_LO, _W_HI = int_range(8)
COUNTER_MAX = (1 << 16) - 1
ADAPT_MAX = (1 << ADAPT_BITS) - 1
MAX_PROBES = 4


class Status(enum.IntFlag):
    """Sticky status bits."""

    OK = 0
    OVF_I = 1  #: a current saturated
    OVF_V = 2  #: a membrane potential saturated


def decay(x: np.ndarray, d) -> np.ndarray:
    """``trunc(x * (4096 - d) / 4096)``, truncation toward zero (int64 in, int64 out)."""
    p = x * (DECAY_ONE - np.asarray(d, dtype=np.int64))
    return np.where(p >= 0, p >> DECAY_SHIFT, -((-p) >> DECAY_SHIFT))


@dataclass(frozen=True)
class Probe:
    """Per-step samples (end of step, after reset) of the probed neurons: arrays of shape (steps, n_probes)."""

    neurons: tuple[int, ...]
    v: np.ndarray
    i: np.ndarray
    y: np.ndarray


def _leak(w: np.ndarray, shift: int):
    """Weight-dependent depression ``ceil(w / 2^shift)`` (0 when ``shift`` is 0: off)."""
    return -((-w) >> shift) if shift else 0


class GoldenCore:
    """One core: ``N`` neurons, ``M`` inputs, weights ``W[N+M, N]`` (rows: neurons, then inputs).

    After construction (or :meth:`clear_all`) the weights, mask and learning are all zero/off and the neuron
    parameters are :class:`NeuronParams` defaults.  Writing parameters does not touch the state; call
    :meth:`reset_state` to restart from ``v = v_rest``.
    """

    def __init__(self, config: CoreConfig | None = None, *, neurons: NeuronParams | None = None,
                 synapses: SynapseParams | None = None, stdp: StdpParams | None = None):
        self.config = config if config is not None else CoreConfig()
        self.clear_all()
        if neurons is not None:
            self.set_neuron_params(neurons)
        if synapses is not None:
            self.set_synapse_params(synapses)
        if stdp is not None:
            self.set_stdp_params(stdp)
        self.reset_state()

    # -- configuration --------------------------------------------------------------------------------------

    def clear_all(self) -> None:
        """Power-on state: zero weights and mask, default parameters, learning off, state reset."""
        c = self.config
        self._w = np.zeros((c.n_sources, c.n_neurons), dtype=np.int64)
        self._mask = np.zeros((c.n_sources, c.n_neurons), dtype=bool)
        self._neurons = NeuronParams().broadcast(c.n_neurons)
        self._synapses = SynapseParams()
        self._stdp = StdpParams()
        self._learn = False
        self._a = np.zeros(c.n_neurons, dtype=np.int64)
        self._tick = 0
        self._probe: tuple[int, ...] = ()
        self.last_probe: Probe | None = None
        self.reset_state()

    def reset_state(self) -> None:
        """Soft reset: ``v = v_rest``; current, refractory counters, traces, pending spikes, counters, status 0.

        The adaptive thresholds and their decay tick are learned state and survive (like the weights)."""
        c = self.config
        self._v = self._neurons.v_rest.copy()
        self._i = np.zeros(c.n_neurons, dtype=np.int64)
        self._ref = np.zeros(c.n_neurons, dtype=np.int64)
        self._x = np.zeros(c.n_sources, dtype=np.int64)
        self._y = np.zeros(c.n_neurons, dtype=np.int64)
        self._pending = np.zeros(c.n_sources, dtype=bool)
        self._counts = np.zeros(c.n_neurons, dtype=np.int64)
        self._status = Status.OK
        self.step = 0

    def set_weights(self, w, src0: int = 0) -> None:
        """Write a block of rows ``src0 .. src0 + len(w) - 1`` (all N columns) of int8 weights."""
        block = self._block("weights", w, src0)
        if np.issubdtype(block.dtype, np.floating) or block.dtype == bool:
            raise TypeError(f"weights must be integers, not {block.dtype}")
        if block.size and (block.min() < _W_LO or block.max() > _W_HI):
            raise ValueError(f"weights must be in {_W_LO}..{_W_HI}, got {int(block.min())}..{int(block.max())}")
        self._w[src0:src0 + block.shape[0]] = block

    def weights(self) -> np.ndarray:
        """Read back all weights as an int8 array of shape (N+M, N); loads straight back with set_weights."""
        return self._w.astype(np.int8)

    def set_plastic(self, mask, src0: int = 0) -> None:
        """Write a block of rows of the plasticity mask (bool, 1 = the synapse learns)."""
        block = self._block("mask", mask, src0)
        if block.dtype != bool and not np.all((block == 0) | (block == 1)):
            raise ValueError("mask must be boolean or 0/1")
        self._mask[src0:src0 + block.shape[0]] = block.astype(bool)

    def plastic(self) -> np.ndarray:
        return self._mask.copy()

    def _block(self, what: str, value, src0: int) -> np.ndarray:
        c = self.config
        arr = np.asarray(value)
        if arr.ndim != 2 or arr.shape[1] != c.n_neurons:
            raise ValueError(f"{what} must have shape (rows, {c.n_neurons}), not {arr.shape}")
        if not 0 <= src0 <= c.n_sources - arr.shape[0]:
            raise ValueError(f"{what} rows {src0}..{src0 + arr.shape[0] - 1} exceed the {c.n_sources} sources")
        return arr

    def set_neuron_params(self, params: NeuronParams | None = None, **fields) -> None:
        """Write the neuron registers (scalars broadcast to all neurons); keywords change single fields."""
        base = params if params is not None else self._neurons
        if fields:
            base = base.replace(**fields)
        self._neurons = base.broadcast(self.config.n_neurons)

    def neuron_params(self) -> NeuronParams:
        return self._neurons

    def set_synapse_params(self, params: SynapseParams) -> None:
        self._synapses = params

    def synapse_params(self) -> SynapseParams:
        return self._synapses

    def set_stdp_params(self, params: StdpParams) -> None:
        params.check_trace_bits(self.config.trace_bits)
        self._stdp = params

    def stdp_params(self) -> StdpParams:
        return self._stdp

    def enable_stdp(self, params: StdpParams | None = None, mask=None) -> None:
        """Turn learning on (optionally writing the STDP registers and the whole mask first).

        Raises instead of learning silently nothing: if the mask is all zero, or if both gains are zero.
        """
        if params is not None:
            self.set_stdp_params(params)
        if mask is not None:
            self.set_plastic(mask)
        check_learnable(self._mask, self._stdp)
        self._learn = True

    def disable_stdp(self) -> None:
        self._learn = False

    @property
    def learning(self) -> bool:
        return self._learn

    def set_probe(self, neurons=()) -> None:
        """Record v, I and the post trace of up to 4 neurons every step of the following runs."""
        idx = tuple(int(i) for i in neurons)
        if len(idx) > MAX_PROBES:
            raise ValueError(f"at most {MAX_PROBES} probes, not {len(idx)}")
        for i in idx:
            if not 0 <= i < self.config.n_neurons:
                raise ValueError(f"probe neuron {i} out of range 0..{self.config.n_neurons - 1}")
        self._probe = idx

    # -- readback ---------------------------------------------------------------------------------------------

    def membrane(self) -> np.ndarray:
        return self._v.copy()

    def current(self) -> np.ndarray:
        return self._i.copy()

    def refractory(self) -> np.ndarray:
        return self._ref.copy()

    def traces(self) -> tuple[np.ndarray, np.ndarray]:
        """(pre traces per source, post traces per neuron)."""
        return self._x.copy(), self._y.copy()

    def adaptation(self) -> np.ndarray:
        """Adaptive threshold ``a`` per neuron (the effective threshold is ``theta + a``)."""
        return self._a.copy()

    @property
    def tick(self) -> int:
        """Learning steps modulo ``2^theta_period``: ``a`` decays in the steps that start with ``tick == 0``."""
        return self._tick

    def counts(self, clear: bool = False) -> np.ndarray:
        """Spike counters (16-bit, saturating); ``clear`` resets them after reading."""
        out = self._counts.copy()
        if clear:
            self._counts[:] = 0
        return out

    @property
    def status(self) -> Status:
        return self._status

    # -- running ----------------------------------------------------------------------------------------------

    def run(self, steps: int, input_spikes=None, *, probe: bool | None = None) -> np.ndarray:
        """Run ``steps`` steps; ``input_spikes[t, k]`` is input ``k``'s spike in step ``t`` (reaches targets at t+1).

        Returns the spike raster, bool of shape (steps, N).  If probes are set, :attr:`last_probe` holds the
        per-step samples of this run.
        """
        c = self.config
        steps = int(steps)
        if steps < 0:
            raise ValueError(f"steps must be >= 0, not {steps!r}")
        if input_spikes is None:
            inputs = np.zeros((steps, c.n_inputs), dtype=bool)
        else:
            inputs = np.asarray(input_spikes)
            if inputs.shape != (steps, c.n_inputs):
                raise ValueError(f"input_spikes must have shape ({steps}, {c.n_inputs}), not {inputs.shape}")
            if inputs.dtype != bool:
                if not np.all((inputs == 0) | (inputs == 1)):
                    raise ValueError("input_spikes must be boolean or 0/1")
                inputs = inputs.astype(bool)
        raster = np.zeros((steps, c.n_neurons), dtype=bool)
        do_probe = bool(self._probe) if probe is None else probe
        pidx = np.array(self._probe, dtype=np.int64)
        pv = np.zeros((steps, pidx.size), dtype=np.int64)
        pi, py = pv.copy(), pv.copy()
        for t in range(steps):
            raster[t] = self._step(inputs[t])
            if do_probe:
                pv[t], pi[t], py[t] = self._v[pidx], self._i[pidx], self._y[pidx]
        self.last_probe = Probe(self._probe, pv, pi, py) if do_probe else None
        return raster

    def _step(self, inp: np.ndarray) -> np.ndarray:
        p = self._neurons
        shift = self._synapses.w_exp

        # 1. integrate the sources that spiked in the previous step (exact sum)
        src = np.flatnonzero(self._pending)
        acc = self._w[src].sum(axis=0) << shift if src.size else 0

        # 2. synaptic current
        i_new = decay(self._i, p.d_i) + acc
        self._i = self._saturate(i_new, Status.OVF_I)

        # 3. membrane, threshold, reset, refractory
        held = self._ref > 0
        v_int = self._saturate(p.v_rest + decay(self._v - p.v_rest, p.d_v) + self._i + p.bias, Status.OVF_V,
                               where=~held)
        v = np.where(held, self._v, v_int)
        self._ref = np.where(held, self._ref - 1, self._ref)
        theta = p.theta + self._a
        spike = ~held & (v >= theta)
        if spike.any():
            if p.reset_mode == ResetMode.ABSOLUTE:
                v_after = p.v_reset
            else:
                v_after = self._saturate(v - (theta - p.v_reset), Status.OVF_V, where=spike)
            v = np.where(spike, v_after, v)
            self._ref = np.where(spike, p.t_ref, self._ref)
        self._v = v
        self._counts = np.minimum(self._counts + spike, COUNTER_MAX)

        # 4. trace decay
        s = self._stdp
        now = np.concatenate([spike, inp])
        xd = decay(self._x, s.d_x)
        yd = decay(self._y, s.d_y)

        # 5. STDP: potentiation column pass, then depression row pass
        if self._learn:
            post = np.flatnonzero(spike)
            if post.size:
                dw = (s.a_plus * (xd - s.x_tar)) >> s.s_plus
                cols = self._w[:, post]
                new = np.clip(cols + dw[:, None] - _leak(cols, s.w_decay), s.w_min, s.w_max)
                self._w[:, post] = np.where(self._mask[:, post], new, cols)
            pre = np.flatnonzero(now)
            if pre.size:
                dw = (s.a_minus * yd) >> s.s_minus
                rows = self._w[pre]
                new = np.clip(rows - dw[None, :], s.w_min, s.w_max)
                self._w[pre] = np.where(self._mask[pre], new, rows)
        # 6. trace update
        tmax = self.config.trace_max
        if s.trace_mode == TraceMode.ADD:
            self._x = np.minimum(xd + s.a_pre * now, tmax)
            self._y = np.minimum(yd + s.a_post * spike, tmax)
        else:
            self._x = np.where(now, s.a_pre, xd)
            self._y = np.where(spike, s.a_post, yd)
        if self._learn:
            self._adapt(spike)

        # 7. this step's sources are integrated by the next step
        self._pending = now
        self.step += 1
        return spike

    def _adapt(self, spike: np.ndarray) -> None:
        """Adaptive threshold: decay once every 2^theta_period learning steps, then add theta_plus per spike."""
        s = self._stdp
        a = decay(self._a, s.d_theta) if self._tick == 0 else self._a
        self._a = np.minimum(a + s.theta_plus * spike, ADAPT_MAX)
        self._tick = (self._tick + 1) & ((1 << s.theta_period) - 1)

    def _saturate(self, x: np.ndarray, flag: Status, where=None) -> np.ndarray:
        out = np.clip(x, _S_LO, _S_HI)
        over = out != x
        if where is not None:
            over &= where
        if over.any():
            self._status |= flag
        return out
