"""Brian2 float reference of the SNN core (numpy code generation, forward Euler, Brian2's default schedule).

It simulates the continuous model that the fixed-point registers represent (see :mod:`models.snn.params`)::

    dv/dt = -(v - v_rest)/tau_m + I + i_bias   (unless refractory)      threshold v >= v_th, reset, refractory
    dI/dt = -I/tau_syn                                                 a spike on weight w: I_post += w/dt
    dApre/dt = -Apre/tau_pre, dApost/dt = -Apost/tau_post             (per synapse, clock-driven)

How it lines up with the golden model, step by step (Brian2 schedule: groups, thresholds, synapses, resets):

* Euler updates ``v`` with the *old* ``I``; the golden model updates ``I`` first and adds the new ``I`` to ``v``.
  The two agree because the golden register ``I_hw[t]`` equals Brian2's ``I * dt / v_lsb`` at the *start* of step
  ``t`` (both include the spikes of step ``t-1``).  So the current monitor records at ``when="start"`` and the
  membrane monitor at ``when="end"`` (after the reset), to line up with the golden model's end-of-step values.
* A spike of a neuron or an input at step ``t`` is propagated in the synapses slot of step ``t`` and first moves
  ``v`` at step ``t+1``: the golden model's uniform one-step delay.
* Refractoriness: Brian2 integrates again when ``timestep(t - lastspike) >= timestep(refractory)``, i.e. at
  ``t_spike + refractory/dt``; the golden model at ``t_spike + t_ref + 1``.  Hence ``refractory = (t_ref+1) dt``.
* STDP pathways are ordered explicitly inside the synapses slot: potentiation (on_post, order 1), depression
  (on_pre, order 2), trace increments (order 3), transmission (order 4).  With the traces decayed in the groups
  slot, this is exactly golden steps 4, 5a, 5b, 6 and then the weight that step ``t+1`` integrates.  Per-synapse
  traces equal the golden per-neuron traces because every synapse of a source sees the same spikes.
* Decay constants are exact (``tau = 4096 dt / d``), and all parameters and weights are the decoded register
  values, so there is no parameter quantisation between the two models.
* On-chip homeostasis (learning only): the threshold test is ``v >= v_th + theta_a``; the reset adds
  ``theta_plus`` to ``theta_a``; a ``run_regularly`` in the thresholds slot (after the test, before the reset)
  multiplies ``theta_a`` by ``1 - d_theta/4096`` once every ``2^theta_period`` steps from the first step, which is
  the golden order (compare with the old ``a``, decay if ``tick == 0``, add).  Potentiation on a post spike is
  ``a_plus * (Apre - x_tar) - w_leak * w`` (``w_leak = 2^-w_decay``).

Residual differences: (1) the golden model truncates toward zero in every decay (current, membrane, traces,
adaptive threshold), at most 1 LSB per step each, which accumulates to at most ``1/alpha`` LSB in ``I``,
``(1 + 1/alpha)/beta`` LSB in ``v`` (``alpha = d_i/4096``, ``beta = d_v/4096``) and ``4096/d_theta`` LSB in the
adaptive threshold; (2) the golden STDP change ``(A * x) >> s`` is floored to whole weight LSBs (and the leak
rounded up to ``ceil(w / 2^w_decay)``) while Brian2 keeps fractional weights; (3) the golden model saturates I, v
(24 bit), traces and the adaptive threshold (16 bit); Brian2 does not (the trace cap is modelled).
Double-precision round-off is ~1e-11 LSB and negligible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.snn.params import (
    FixedScale,
    PhysNeuron,
    PhysStdp,
    ResetMode,
    TraceMode,
    decode_neurons,
    decode_stdp,
    decode_weights,
)

__all__ = ["Brian2Result", "simulate", "simulate_core"]


@dataclass(frozen=True)
class Brian2Result:
    """Spikes (steps, N) bool; ``v`` (V, end of step) and ``i`` (``I * dt`` in V, aligned with the golden ``I``)
    of shape (steps, N) or None; final weights (N+M, N) in V (0 where no synapse was created); final adaptive
    thresholds (N,) in V."""

    raster: np.ndarray
    v: np.ndarray | None
    i: np.ndarray | None
    weights: np.ndarray
    theta: np.ndarray | None = None  #: final adaptive thresholds (V, added to v_th)


_NEURON_EQS = """
dv/dt = -(v - v_rest)/tau_m + I + i_bias : volt (unless refractory)
dI/dt = -I/tau_syn : volt/second
tau_m : second (constant)
tau_syn : second (constant)
v_rest : volt (constant)
v_th : volt (constant)
v_reset : volt (constant)
i_bias : volt/second (constant)
ref_time : second (constant)
theta_a : volt
"""

_SYN_EQS = """
w : volt
plastic : 1 (constant)
dApre/dt = -Apre/tau_pre : 1 (clock-driven)
dApost/dt = -Apost/tau_post : 1 (clock-driven)
"""


def simulate(neurons: PhysNeuron, weights, steps: int, input_spikes=None, *, dt: float,
             stdp: PhysStdp | None = None, plastic=None, learn: bool = False, record: bool = True,
             theta_every: int = 1) -> Brian2Result:
    """Run the float model from rest (v = v_rest, I = 0, traces 0, adaptive thresholds 0).

    ``weights``: (N+M, N) in V, rows 0..N-1 recurrent, N..N+M-1 inputs.  ``input_spikes``: (steps, M) bool.
    ``learn`` needs ``stdp`` and a ``plastic`` mask of the weights' shape.  The adaptive threshold decays by
    ``1 - theta_every * dt / tau_theta`` once every ``theta_every`` steps (the core's ``2^theta_period``).
    """
    import brian2 as b2

    b2.prefs.codegen.target = "numpy"
    w = np.asarray(weights, dtype=float)
    n = w.shape[1]
    m = w.shape[0] - n
    if m < 0:
        raise ValueError(f"weights must have N+M rows and N columns, not shape {w.shape}")
    if learn and (stdp is None or plastic is None):
        raise ValueError("learn=True needs stdp= and plastic=")
    mask = np.zeros(w.shape, dtype=bool) if plastic is None else np.asarray(plastic, dtype=bool)
    clock = b2.Clock(dt=dt * b2.second)

    adapt = learn and stdp.theta_plus > 0
    reset = "v = v_reset" if neurons.reset_mode == ResetMode.ABSOLUTE else "v = v - (v_th + theta_a - v_reset)"
    if adapt:
        reset += "\ntheta_a += theta_plus"
    g = b2.NeuronGroup(n, _NEURON_EQS, threshold="v >= v_th + theta_a", reset=reset, refractory="ref_time",
                       method="euler", clock=clock, name="neurons*")
    for name, unit in (("tau_m", b2.second), ("tau_syn", b2.second), ("v_rest", b2.volt), ("v_th", b2.volt),
                       ("v_reset", b2.volt), ("i_bias", b2.volt / b2.second)):
        setattr(g, name, np.broadcast_to(np.asarray(getattr(neurons, name), dtype=float), (n,)) * unit)
    g.ref_time = np.broadcast_to(np.asarray(neurons.t_ref, dtype=float), (n,)) * b2.second
    g.v = g.v_rest
    objects = [g]
    if adapt and np.isfinite(stdp.tau_theta):
        objects.append(_theta_decay(b2, g, stdp, dt, theta_every, clock))

    sources = [(g, 0, n)]
    if m:
        inp = np.zeros((steps, m), dtype=bool) if input_spikes is None else np.asarray(input_spikes, dtype=bool)
        if inp.shape != (steps, m):
            raise ValueError(f"input_spikes must have shape ({steps}, {m}), not {inp.shape}")
        t_idx, k_idx = np.nonzero(inp)
        gen = b2.SpikeGeneratorGroup(m, k_idx, t_idx * dt * b2.second, clock=clock, name="inputs*")
        objects.append(gen)
        sources.append((gen, n, m))

    namespace = {"step_dt": dt * b2.second}
    if stdp is not None:
        namespace.update(tau_pre=stdp.tau_pre * b2.second, tau_post=stdp.tau_post * b2.second,
                         a_plus=stdp.a_plus * b2.volt, a_minus=stdp.a_minus * b2.volt,
                         w_min=stdp.w_min * b2.volt, w_max=stdp.w_max * b2.volt,
                         pre_cap=stdp.pre_cap, post_cap=stdp.post_cap, x_tar=stdp.x_tar, w_leak=stdp.w_leak)
        g.namespace["theta_plus"] = stdp.theta_plus * b2.volt
    synapses = []
    for src, row0, rows in sources:
        block_w = w[row0:row0 + rows]
        block_m = mask[row0:row0 + rows]
        pre_i, post_j = np.nonzero((block_w != 0) | (block_m & learn))
        if not pre_i.size:
            continue
        if learn:
            if stdp.trace_mode == TraceMode.ADD:
                inc_pre, inc_post = "Apre = clip(Apre + 1, 0, pre_cap)", "Apost = clip(Apost + 1, 0, post_cap)"
            else:
                inc_pre, inc_post = "Apre = 1", "Apost = 1"
            s = b2.Synapses(
                src, g, _SYN_EQS, method="euler", clock=clock, namespace=namespace,
                on_pre={
                    "dep": "w = plastic * clip(w - a_minus * Apost, w_min, w_max) + (1 - plastic) * w",
                    "trpre": inc_pre,
                    "transmit": "I_post += w / step_dt",
                },
                on_post={
                    "pot": "w = plastic * clip(w + a_plus * (Apre - x_tar) - w_leak * w, w_min, w_max)"
                           " + (1 - plastic) * w",
                    "trpost": inc_post,
                },
                name="syn*",
            )
            s.connect(i=pre_i, j=post_j)
            s.plastic = block_m[pre_i, post_j].astype(float)
            s.pot.order, s.dep.order, s.trpre.order, s.trpost.order, s.transmit.order = 1, 2, 3, 3, 4
        else:
            s = b2.Synapses(src, g, "w : volt", on_pre="I_post += w / step_dt", clock=clock,
                            namespace=namespace, name="syn*")
            s.connect(i=pre_i, j=post_j)
        s.w = block_w[pre_i, post_j] * b2.volt
        synapses.append((s, row0))
        objects.append(s)

    spikes = b2.SpikeMonitor(g, name="spikes*")
    objects.append(spikes)
    if record:
        mon_v = b2.StateMonitor(g, "v", record=True, when="end", clock=clock, name="mon_v*")
        mon_i = b2.StateMonitor(g, "I", record=True, when="start", clock=clock, name="mon_i*")
        objects += [mon_v, mon_i]
    net = b2.Network(*objects)
    net.run(steps * dt * b2.second, namespace={})

    raster = np.zeros((steps, n), dtype=bool)
    t_steps = np.rint(np.asarray(spikes.t / b2.second) / dt).astype(np.int64)
    raster[t_steps, np.asarray(spikes.i)] = True
    w_out = np.zeros_like(w)
    for s, row0 in synapses:
        w_out[row0 + np.asarray(s.i), np.asarray(s.j)] = np.asarray(s.w / b2.volt)
    v = i = None
    if record:
        v = np.asarray(mon_v.v / b2.volt).T.copy()
        i = np.asarray(mon_i.I / (b2.volt / b2.second)).T * dt
    return Brian2Result(raster=raster, v=v, i=i, weights=w_out, theta=np.asarray(g.theta_a / b2.volt).copy())


def _theta_decay(b2, group, stdp: PhysStdp, dt: float, every: int, clock):
    """The adaptive threshold's decay: once every ``every`` steps from the first, in the thresholds slot after the
    threshold test and before the reset's raise (golden: compare with the old ``a``, then decay, then add)."""
    factor = 1.0 - every * dt / stdp.tau_theta
    return group.run_regularly(f"theta_a = theta_a * {factor!r}", dt=every * dt * b2.second, when="thresholds",
                               order=1, name="theta_decay*")


def simulate_core(core, scale: FixedScale, steps: int, input_spikes=None, *, record: bool = True) -> Brian2Result:
    """Brian2 run of the network held in a :class:`~models.snn.golden.GoldenCore`'s registers.

    Decodes the neuron, weight and STDP registers with ``scale`` (whose ``w_exp`` must match the core's), and
    learns if the core has learning enabled.  Compare with the golden model run from :meth:`reset_state` (and,
    with an adaptive threshold, from :meth:`clear_all`: Brian2 starts from ``a = 0``, ``tick = 0``).
    """
    cfg = core.config
    if scale.w_exp != core.synapse_params().w_exp:
        raise ValueError(f"scale.w_exp={scale.w_exp} but the core's w_exp={core.synapse_params().w_exp}")
    return simulate(decode_neurons(core.neuron_params(), scale), decode_weights(core.weights(), scale), steps,
                    input_spikes, dt=scale.dt, stdp=decode_stdp(core.stdp_params(), scale, cfg.trace_bits),
                    plastic=core.plastic(), learn=core.learning, record=record,
                    theta_every=1 << core.stdp_params().theta_period)
