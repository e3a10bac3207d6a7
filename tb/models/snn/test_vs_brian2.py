"""Golden fixed-point model against the Brian2 float model of the same equations.

Where the tolerances come from
------------------------------
Both models use the same decoded parameters (exact decay factors 1 - d/4096, weights, thresholds), so the only
differences are the golden model's truncations toward zero, each smaller than 1 LSB:

* current: ``e_I[t] = (1 - alpha) e_I[t-1] + delta``, ``|delta| < 1``  =>  ``|e_I| < 1/alpha``, alpha = d_i/4096
  (exactly 0 without synaptic input);
* membrane: ``e_v[t] = (1 - beta) e_v[t-1] + delta + e_I[t]``  =>  ``|e_v| < E_v = (1 + 1/alpha)/beta``,
  beta = d_v/4096; held steps keep ``e_v``, an (absolute) reset sets both models to v_reset exactly, ``e_v = 0``.

The bound holds between the golden model and a float "shadow" that resets whenever the golden neuron spikes.  The
golden neuron spikes iff ``v_shadow >= theta - e_v(t)``: it *is* a float LIF whose threshold wanders inside
``[theta - E_v, theta + E_v]``.  For a feed-forward layer with non-negative weights and bias and
``v_reset <= v_rest``, the float LIF is monotone in its threshold (the per-step map is increasing and never drops
below v_reset; by induction the k-th spike of a lower-threshold copy is never later than the k-th spike of a
higher-threshold copy).  Hence, with Brian2 copies at theta -+ E_v (run in the same network):

    first spike:  t1(theta - E_v) <= t1_golden <= t1(theta + E_v)
    spike count:  n(theta + E_v)  <= n_golden  <= n(theta - E_v)

These brackets are the tolerances: derived from the LSB and the decay codes (d = 4096 dt / tau), not tuned.  The
bound itself is also checked directly: ``|I_g - I_b| <= E_I`` always and ``|v_g - v_b| <= E_v`` until the first
step where the two spike trains differ.  Step-for-step spike agreement is only expected before that.
"""

import numpy as np
import pytest

from models.snn.brian2_ref import simulate, simulate_core
from models.snn.golden import GoldenCore
from models.snn.params import (
    CoreConfig,
    FixedScale,
    NeuronParams,
    PhysNeuron,
    StdpParams,
    SynapseParams,
    decode_neurons,
    decode_weights,
    encode_neurons,
)
from models.snn.stimulus import constant_current, poisson_spikes

pytest.importorskip("brian2")
# brian2 2.9 calls pyparsing's camelCase API, which pyparsing 3.3 deprecates; not ours to fix
pytestmark = pytest.mark.filterwarnings(r"ignore:.*deprecated.*use '\w+':DeprecationWarning")

DT = 1e-3
MARGIN = 1e-3  # LSB; double-precision round-off in Brian2 is ~1e-11 LSB


def error_bounds(d_i: int, d_v: int, synaptic: bool = True) -> tuple[float, float]:
    """(E_I, E_v) in LSB, the bounds derived in the module docstring (E_I = 0 when no weight is set)."""
    e_i = 4096 / d_i if synaptic and d_i else 0.0
    return e_i, (1 + e_i) * 4096 / d_v


def bracket_run(core: GoldenCore, scale: FixedScale, steps: int, inputs, e_v: float):
    """Brian2 copies of a feed-forward layer at theta - E, theta, theta + E (one network, 3N neurons)."""
    n, m = core.config.n_neurons, core.config.n_inputs
    w = core.weights()
    assert not w[:n].any(), "the bracket argument is for feed-forward layers"
    phys = decode_neurons(core.neuron_params(), scale)
    shift = (e_v + MARGIN) * scale.v_lsb

    def tile(a):
        return np.concatenate([np.broadcast_to(np.asarray(a, dtype=float), (n,))] * 3)

    copies = PhysNeuron(tau_m=tile(phys.tau_m), tau_syn=tile(phys.tau_syn),
                        v_th=tile(phys.v_th) + np.repeat([-shift, 0.0, shift], n),
                        v_reset=tile(phys.v_reset), v_rest=tile(phys.v_rest), i_bias=tile(phys.i_bias),
                        t_ref=tile(phys.t_ref), reset_mode=phys.reset_mode)
    big = np.zeros((3 * n + m, 3 * n))
    big[3 * n:] = np.tile(decode_weights(w[n:], scale), 3)
    res = simulate(copies, big, steps, inputs, dt=scale.dt)
    lo, mid, hi = (slice(k * n, (k + 1) * n) for k in range(3))
    return res, lo, mid, hi


def first_spike(raster: np.ndarray) -> np.ndarray:
    """First spike step per neuron (steps if none)."""
    return np.where(raster.any(0), raster.argmax(0), raster.shape[0])


def check_against_brian2(core: GoldenCore, scale: FixedScale, steps: int, inputs):
    """Run golden and Brian2 from rest; assert the derived bounds and brackets; return a summary."""
    n = core.config.n_neurons
    params = core.neuron_params()
    d_i, d_v = int(params.d_i.max()), int(params.d_v.min())
    assert (params.d_i == d_i).all()
    e_i, e_v = error_bounds(d_i, d_v, synaptic=bool(core.weights().any()))
    v_g = np.zeros((steps, n))
    i_g = np.zeros((steps, n))
    for k in range(0, n, 4):  # the probe takes 4 neurons per run; rerun from rest for each group
        core.reset_state()
        core.set_probe(range(k, min(k + 4, n)))
        golden = core.run(steps, inputs)
        v_g[:, k:k + 4], i_g[:, k:k + 4] = core.last_probe.v, core.last_probe.i
    res, lo, mid, hi = bracket_run(core, scale, steps, inputs, e_v)
    brian = res.raster[:, mid]
    v_b, i_b = res.v[:, mid] / scale.v_lsb, res.i[:, mid] / scale.v_lsb

    # the bound itself
    assert np.abs(i_g - i_b).max() <= e_i + MARGIN
    mismatch = golden != brian
    first_diff = np.where(mismatch.any(0), mismatch.argmax(0), steps)
    for j in range(n):
        assert np.abs(v_g[:first_diff[j], j] - v_b[:first_diff[j], j]).max(initial=0) <= e_v + MARGIN, j
    # the brackets
    t1_g, t1_lo, t1_hi = first_spike(golden), first_spike(res.raster[:, lo]), first_spike(res.raster[:, hi])
    assert np.all(t1_lo <= t1_g) and np.all(t1_g <= t1_hi), (t1_lo, t1_g, t1_hi)
    n_g, n_lo, n_hi = golden.sum(0), res.raster[:, lo].sum(0), res.raster[:, hi].sum(0)
    assert np.all(n_hi <= n_g) and np.all(n_g <= n_lo), (n_hi, n_g, n_lo)
    return {
        "E_I": e_i, "E_v": e_v,
        "max |dv| before divergence": max(np.abs(v_g[:f, j] - v_b[:f, j]).max(initial=0)
                                          for j, f in enumerate(first_diff)),
        "spikes golden/brian2": (int(n_g.sum()), int(brian.sum())),
        "count bracket width": int((n_lo - n_hi).max()),
        "first-spike equal": int((t1_g == first_spike(brian)).sum()),
    }


def test_constant_current_matches_brian2():
    # 8 neurons, tau_m = 20 ms, constant drives from just below to 2.7x rheobase (15 mV / 20 ms = 0.75 V/s), 1 s.
    # No synaptic input: E_I = 0 and E_v = 4096/205 = 20 LSB = 0.02 mV.
    scale = FixedScale(dt=DT)
    n = 8
    drive = np.linspace(0.7, 2.0, n)
    params = encode_neurons(PhysNeuron(tau_m=20e-3, tau_syn=5e-3, t_ref=2e-3), scale)
    core = GoldenCore(CoreConfig(n_neurons=n, n_inputs=0, lanes=1),
                      neurons=params.replace(bias=constant_current(drive, scale)))
    summary = check_against_brian2(core, scale, 1000, None)
    assert summary["E_v"] == pytest.approx(4096 / 205)
    print(summary)


def test_poisson_feedforward_matches_brian2():
    # 32 Poisson inputs at 10 Hz -> 16 LIF neurons, non-negative int8 weights (w_exp = 4), tau_syn = 5 ms,
    # tau_m = 20 ms, 500 steps: E_I = 4096/819 = 5.0 LSB, E_v = 6.0 * 4096/205 = 120 LSB = 0.12 mV (theta is
    # 15 mV above rest).
    scale = FixedScale(dt=DT, w_exp=4)
    n, m, steps = 16, 32, 500
    rng = np.random.default_rng(2024)
    params = encode_neurons(PhysNeuron(tau_m=20e-3, tau_syn=5e-3, t_ref=2e-3), scale)
    core = GoldenCore(CoreConfig(n_neurons=n, n_inputs=m, lanes=4), neurons=params,
                      synapses=SynapseParams(w_exp=4))
    w = np.zeros((n + m, n), dtype=np.int64)
    w[n:] = rng.integers(0, 64, (m, n))
    core.set_weights(w)
    inputs = poisson_spikes(rng, steps, 10.0, DT, n=m)
    summary = check_against_brian2(core, scale, steps, inputs)
    assert summary["spikes golden/brian2"][0] > 5 * n  # the layer is actually firing
    print(summary)


def test_stdp_window_matches_brian2():
    # 41 independent pairs, dt = post - pre = -20..20 steps.  Pair k: input k is the plastic pre synapse (w = 0),
    # input 41 + k a driver (127 << 3 >= theta) that makes neuron k fire exactly once (t_ref = 200) one step after
    # it.  d_v = d_i = 4096 make v equal this step's input in both models (tau = dt).
    # Golden: dw = floor(A * x_g / 2^s) with x_g the trace after |dt| truncating decays; float: A * x_b / 2^s.
    # Trace error after k decays: |x_g - x_b| < sum_{j<k} (1-a)^j = (1 - (1-a)^k)/a, a = d_x/4096, and the floor
    # adds < 1, so |dw_g - dw_b| < A (1 - (1-a)^k) / (a 2^s) + 1; both truncations shrink: |dw_g| <= |dw_b|.
    deltas = np.arange(-20, 21)
    n = deltas.size
    t_pre, steps = 30, 60
    scale = FixedScale(dt=DT, w_exp=3)
    stdp = StdpParams(d_x=256, d_y=512, a_pre=128, a_post=128, a_plus=40, s_plus=6, a_minus=30, s_minus=6)
    core = GoldenCore(CoreConfig(n_neurons=n, n_inputs=2 * n, lanes=1),
                      neurons=NeuronParams(theta=1000, d_v=4096, d_i=4096, t_ref=200),
                      synapses=SynapseParams(w_exp=3), stdp=stdp)
    w = np.zeros((3 * n, n), dtype=np.int64)
    w[2 * n + np.arange(n), np.arange(n)] = 127
    mask = np.zeros_like(w, dtype=bool)
    mask[n + np.arange(n), np.arange(n)] = True
    core.set_weights(w)
    core.enable_stdp(mask=mask)
    inputs = np.zeros((steps, 2 * n), dtype=bool)
    inputs[t_pre, np.arange(n)] = True
    inputs[t_pre + deltas - 1, n + np.arange(n)] = True

    raster = core.run(steps, inputs)
    assert np.array_equal(first_spike(raster), t_pre + deltas)
    dw_g = core.weights()[n + np.arange(n), np.arange(n)].astype(float)
    # Brian2 decodes a fresh core with the same registers (the first one has already learned)
    core_b = GoldenCore(core.config, neurons=core.neuron_params(), synapses=core.synapse_params(), stdp=stdp)
    core_b.set_weights(w)
    core_b.enable_stdp(mask=mask)
    res = simulate_core(core_b, scale, steps, inputs, record=False)
    assert np.array_equal(res.raster, raster)
    dw_b = res.weights[n + np.arange(n), np.arange(n)] / scale.w_lsb

    k = np.abs(deltas)
    a = np.where(deltas > 0, stdp.d_x, stdp.d_y) / 4096
    gain = np.where(deltas > 0, stdp.a_plus / 2**stdp.s_plus, stdp.a_minus / 2**stdp.s_minus)
    tol = gain * (1 - (1 - a) ** k) / a + 1
    assert np.all(np.abs(dw_g - dw_b) < tol + MARGIN)
    assert np.all(np.abs(dw_g) <= np.abs(dw_b) + MARGIN)
    assert np.array_equal(np.sign(dw_g), np.sign(deltas)) and np.array_equal(np.sign(np.round(dw_b, 9)),
                                                                               np.sign(deltas))
    print({"max |dw_g - dw_b|": float(np.abs(dw_g - dw_b).max()), "rms": float(np.sqrt(((dw_g - dw_b) ** 2).mean())),
           "max tol": float(tol.max())})


# -- on-chip homeostasis -------------------------------------------------------------------------------------------
# Binary scales (dt = 2^-10 s, v_lsb = 2^-20 V) make every non-leaky update exact in double precision, so without
# a decay the two models must agree bit for bit; with a decay, the golden truncation (< 1 LSB per application,
# factor 1 - d/4096) bounds |a_g - a_b| < 4096 / d_theta, the argument used for I above.
EXACT = FixedScale(dt=2.0**-10, v_lsb=2.0**-20)


def adaptive_layer(biases, stdp: StdpParams, t_ref: int = 0) -> GoldenCore:
    """Non-leaky neurons driven by their bias only, learning on through one silent plastic input (no weight can
    change: its trace stays 0), so only the adaptive threshold acts."""
    n = len(biases)
    core = GoldenCore(CoreConfig(n_neurons=n, n_inputs=1, lanes=1),
                      neurons=NeuronParams(theta=1000, bias=np.asarray(biases), t_ref=t_ref))
    mask = np.zeros((n + 1, n), dtype=bool)
    mask[n] = True
    core.enable_stdp(stdp, mask)
    return core


def brian2_theta(core: GoldenCore, steps: int):
    return simulate_core(core, EXACT, steps, np.zeros((steps, 1), dtype=bool), record=False)


def test_adaptive_threshold_matches_brian2_exactly():
    biases = [37, 53, 71, 90, 113, 130, 151, 177]
    stdp = StdpParams(a_plus=1, theta_plus=97)
    core = adaptive_layer(biases, stdp)
    res = brian2_theta(core, 400)       # Brian2 decodes the fresh core (a = 0) before the golden run
    raster = core.run(400)
    assert raster.sum() > 100
    assert np.array_equal(res.raster, raster)
    spikes = raster.sum(0)
    assert np.array_equal(core.adaptation(), 97 * spikes)


def test_adaptive_threshold_decay_matches_brian2():
    # one spike per neuron (t_ref 255 holds it for the rest of the run), at every phase of the 4-step decay
    # period; a = 40000 then x 0.875 per period
    biases = [37, 53, 71, 90, 113, 130, 151, 177]
    stdp = StdpParams(a_plus=1, theta_plus=40000, d_theta=512, theta_period=2)
    core = adaptive_layer(biases, stdp, t_ref=255)
    res = brian2_theta(core, 120)
    raster = core.run(120)
    assert np.array_equal(raster.sum(0), np.ones(8))
    assert set(first_spike(raster) % 4) == {0, 1, 2, 3}
    assert np.array_equal(res.raster, raster)
    a_g = core.adaptation()
    theta_b = np.asarray(res.theta) / EXACT.v_lsb
    assert np.all(a_g > 500)
    assert np.abs(a_g - theta_b).max() < 4096 / 512 + MARGIN, (a_g, theta_b)


def test_homeostatic_stdp_matches_brian2():
    # The STDP window test's pairs (pre at 30, post 1..20 steps later), now with w = 60 at the start, x_tar and
    # the weight-dependent depression.  Golden dw = floor(A (x_g - x_tar) / 2^s) - ceil(w / 2^k), float
    # dw = A (x_b - x_tar) / 2^s - w / 2^k: the trace bound of that test plus < 1 for the floor and < 1 for the ceil.
    deltas = np.arange(1, 21)
    n = deltas.size
    t_pre, steps = 30, 60
    scale = FixedScale(dt=DT, w_exp=3)
    stdp = StdpParams(d_x=256, a_pre=128, a_post=128, a_plus=40, s_plus=6, x_tar=50, w_decay=3)
    core = GoldenCore(CoreConfig(n_neurons=n, n_inputs=2 * n, lanes=1),
                      neurons=NeuronParams(theta=1000, d_v=4096, d_i=4096, t_ref=200),
                      synapses=SynapseParams(w_exp=3), stdp=stdp)
    w = np.zeros((3 * n, n), dtype=np.int64)
    w[2 * n + np.arange(n), np.arange(n)] = 127
    w[n + np.arange(n), np.arange(n)] = 60
    mask = np.zeros_like(w, dtype=bool)
    mask[n + np.arange(n), np.arange(n)] = True
    core.set_weights(w)
    core.enable_stdp(mask=mask)
    inputs = np.zeros((steps, 2 * n), dtype=bool)
    inputs[t_pre, np.arange(n)] = True
    inputs[t_pre + deltas - 1, n + np.arange(n)] = True
    res = simulate_core(core, scale, steps, inputs, record=False)
    raster = core.run(steps, inputs)
    assert np.array_equal(first_spike(raster), t_pre + deltas)
    assert np.array_equal(res.raster, raster)
    dw_g = core.weights()[n + np.arange(n), np.arange(n)] - 60.0
    dw_b = res.weights[n + np.arange(n), np.arange(n)] / scale.w_lsb - 60.0
    a = stdp.d_x / 4096
    tol = stdp.a_plus / 2**stdp.s_plus * (1 - (1 - a) ** deltas) / a + 2
    assert np.all(np.abs(dw_g - dw_b) < tol + MARGIN), (dw_g, dw_b)
    assert dw_g[0] > 0 > dw_g[-1]        # recent pre spike potentiates, stale one (trace < x_tar) depresses
    print({"max |dw_g - dw_b|": float(np.abs(dw_g - dw_b).max()), "max tol": float(tol.max())})
