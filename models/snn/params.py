"""Configuration and fixed-point parameter encodings of the NeuroCoreX-like SNN core: the specification.

This docstring is the contract between the bit-exact golden model (:mod:`models.snn.golden`) and the RTL
(``rtl/neurocore``): the RTL must reproduce every state variable, every step, for any lane count ``P``.
It follows ``shared/research/snn.md`` section 5; the deliberate departures are marked **[change]** and explained.

Structure
---------
``N`` LIF neurons, ``M`` external input lines, ``P`` lanes (``CoreConfig``).  One *source* address space of
``N + M`` rows: rows ``0..N-1`` are the neurons themselves (recurrent, all-to-all including self-synapses),
rows ``N..N+M-1`` are the inputs.  One weight matrix ``W[src, post]`` (``N+M`` rows x ``N`` columns) and one
plasticity mask of the same shape (1 bit per synapse).  ``P`` only changes banking and cycle counts (the weight
bank of a synapse is ``post mod P``); it never changes results.

Number formats (all integers; "LSB" below is the voltage LSB, whose physical size ``v_lsb`` is host-side only)
------------------------------------------------------------------------------------------------------------
=================  ================================  ==========================================================
quantity           format                            meaning
=================  ================================  ==========================================================
``W[s, i]``        int8 (-128..127)                  synaptic weight; a spike adds ``W << w_exp`` LSB to ``I``
``w_exp``          uint3, global (0..7)              weight exponent
``acc[i]``         signed, ``15 + clog2(N+M)`` bits  per-step sum of weights; exact, can never overflow
``I[i]``, ``v[i]`` int24, saturating                 synaptic current (in "LSB per step") and membrane potential
``theta``          int24 per neuron                  threshold: spike if ``v >= theta``
``v_reset``        int24 per neuron                  reset value
``v_rest``         int24 per neuron                  leak target
``bias``           int24 per neuron                  constant drive added to ``v`` every integrating step
``d_v``, ``d_i``   uint13 per neuron (0..4096)       decay per step in 1/4096: 0 = no decay, 4096 = full decay
``t_ref``          uint8 per neuron                  held steps after the spike step
``ref[i]``         uint8                             refractory down-counter
``x[s]``, ``y[i]`` uint(T), T = ``trace_bits`` (8)   pre-synaptic trace per source, post-synaptic trace per neuron
``d_x``, ``d_y``   uint13 global (0..4096)           trace decays
``a_pre/a_post``   uint(T) global                    trace increment (or value, in NEAREST mode) on a spike
``A+``, ``A-``     uint8 global                      STDP gains
``s+``, ``s-``     uint4 global                      STDP right shifts
``w_min/w_max``    int8 global, ``w_min <= w_max``   clamp of plastic weights
``x_tar``          uint(T) global                    potentiation target trace (0: off)
``w_decay``        uint4 global                      weight-dependent depression on a post spike (0: off)
``a[i]``           uint16, saturating                adaptive threshold of neuron ``i`` (learning state)
``theta_plus``     uint16 global                     raise of ``a`` on a post spike (0: off)
``d_theta``        uint13 global (0..4096)           decay of ``a``, applied once every ``2^theta_period`` steps
``theta_period``   uint4 global                      ``k``: the decay period is ``2^k`` learning steps
``tick``           uint15 global                     learning-step counter modulo ``2^theta_period``
=================  ================================  ==========================================================

Decay operator (the only rounding in the neuron datapath)::

    decay(x, d) = trunc(x * (4096 - d) / 4096)          # truncation toward zero (sign-magnitude shift)
                = sign(x) * ((|x| * (4096 - d)) >> 12)

**[change]** snn.md writes ``x - ((x * d) >> 12)``.  With a truncating shift that form *stalls*: once
``|x| * d < 4096`` the decrement is 0 and the value never decays further (a trace with ``d = 256`` sticks at 15
forever and keeps driving STDP).  The Lava bit-accurate LIF, which snn.md cites as the template, multiplies by
``4096 - d`` instead; truncating that product toward zero guarantees ``|decay(x, d)| < |x|`` for every ``x != 0``
and ``d > 0``, so every state relaxes exactly to its target.  Hardware: one 13-bit unsigned multiplier constant
``m = 4096 - d``, product ``p``; result ``(p + (p < 0 ? 4095 : 0)) >>> 12``.

Other decisions where snn.md is silent or loose:

* **[change]** ``acc`` is exact (25 bits would be needed only above 512 sources), not a saturating int24: a
  saturating running sum depends on the order sources are visited, i.e. on the lane schedule; an exact sum does
  not, so the RTL may visit spiking sources in any order.  Saturation happens once, when ``acc`` enters ``I``.
* **[change]** decay codes are 13-bit (0..4096); snn.md says uint12 but also wants 4096 = "full decay".
* Source order: neurons first, inputs after (the host API's ``(N+M) x N`` weight matrix).
* Inputs get the same one-step delay as recurrent spikes (one source bitmap, one rule), which is also what
  Brian2 does with a ``SpikeGeneratorGroup``; the price is one step of latency from host to membrane.
* STDP traces exclude same-step spikes (symmetric, no pairing at dt = 0); NeuroCoreX's rectangular "window" mode
  is not part of this version.

Per-step update (step ``t``)
----------------------------
Let ``S[t]`` be the source-spike bitmap of step ``t``: ``S[t] = (spike[t][0..N-1], in[t][0..M-1])`` where
``in[t]`` is the host's input bitmap for step ``t``.  Every source, neuron or input, reaches its targets one step
later (uniform one-step synaptic delay).

1. **Integrate** (phase A): ``acc[i] = sum over s with S[t-1][s] of (W[s, i] << w_exp)``, exact.
2. **Current** (phase B): ``I <- sat24(decay(I, d_i) + acc)``.
3. **Membrane** (phase B), per neuron:

   * if ``ref > 0``: ``ref <- ref - 1``; ``v`` is held and the neuron cannot spike;
   * else ``v <- sat24(v_rest + decay(v - v_rest, d_v) + I + bias)`` (exact 27-bit sum, saturated once;
     ``v - v_rest`` is a 25-bit difference); ``spike = v >= theta + a`` (exact 25-bit effective threshold
     ``theta_eff``, the adaptation ``a`` as it was at the start of the step); on a spike ``v <- v_reset``
     (``ResetMode.ABSOLUTE``) or ``v <- sat24(v - (theta_eff - v_reset))`` (``ResetMode.SUBTRACT``)
     and ``ref <- t_ref``.  So ``t_ref`` steps after the spike step are held, integration resumes at
     ``t_spike + t_ref + 1``.

4. **Trace decay** (phase C): ``xd = decay(x, d_x)`` for all ``N+M`` sources, ``yd = decay(y, d_y)`` for all ``N``.
5. **STDP** (phase D, only when learning is enabled), on the weights *after* step 1 read them:

   a. potentiation, column pass: for every neuron ``i`` with ``spike[t][i]`` and every source ``s`` with
      ``mask[s, i]``: ``W[s, i] <- clamp(W[s, i] + ((A+ * (xd[s] - x_tar)) >> s+) - leak(W[s, i]), w_min,
      w_max)``, where ``>>`` is an arithmetic (floor) shift of the signed product (a (T+1)-bit signed
      difference times uint8) and ``leak(w) = 0`` if ``w_decay == 0`` else ``ceil(w / 2^w_decay) =
      -((-w) >> w_decay)``; the sum is exact before the clamp;
   b. depression, row pass, after (a): for every source ``s`` with ``S[t][s]`` and every neuron ``i`` with
      ``mask[s, i]``: ``W[s, i] <- clamp(W[s, i] - ((A- * yd[i]) >> s-), w_min, w_max)``.

   The sums are exact before the clamp; a touched masked weight is clamped even when its change is 0.  Traces
   used here exclude this step's spikes, so a pre and post spike in the same step do not pair (dt = 0 gives
   no change).  A pre spike at ``t0`` and a post spike at ``t0 + k`` (k >= 1) pair with a trace decayed k times.
6. **Trace update** (phase C, always, learning on or off): ADD mode ``x <- min(xd + a_pre * S[t], 2^T - 1)``;
   NEAREST mode ``x <- a_pre where S[t] else xd``; likewise ``y`` from ``yd``, ``spike[t]`` and ``a_post``.
   **Adaptation** (phase C, only when learning is enabled; with learning off ``a`` and ``tick`` are frozen but
   ``a`` still raises the threshold): ``ad = decay(a, d_theta)`` if ``tick == 0`` else ``a``;
   ``a <- min(ad + theta_plus * spike[t], 2^16 - 1)``; ``tick <- (tick + 1) & (2^theta_period - 1)``.
7. ``S[t]`` becomes the pending bitmap integrated by step ``t + 1`` (it survives between ``run`` calls).

Sticky status flags record any saturation of ``I`` (bit 0) or ``v`` (bit 1).  A soft reset sets ``v <- v_rest``,
``I, ref, x, y, pending S, counters, status <- 0`` and leaves weights, mask, parameters, ``a`` and ``tick`` alone
(they are learned state, like the weights); power-on (``clear_all``) zeroes them.

Why this order: with ``I_hw = I * dt / v_lsb`` (current in volts per second) it is exactly Brian2's default
schedule (state update, thresholds, synapses, resets) with forward Euler, see :mod:`models.snn.brian2_ref`, so the
golden model and the float model differ only by the truncations inside ``decay``.

On-chip homeostasis (issue 6): why these two mechanisms
-------------------------------------------------------
Unsupervised STDP with winner-take-all needs (1) every neuron to get a turn and (2) bounded input weights; the
usual recipes (Diehl & Cook 2015) are an adaptive threshold and a host-side division renormalising each neuron's
weights to a fixed sum.  Both are replaced by rules the core runs on its own each step, with adders, shifts and
the existing decay multiplier only (no division, no host round trip):

* **adaptive threshold** ``a``: ``theta_plus`` per post spike, decaying with ``tau = 2^theta_period * 4096 /
  d_theta`` learning steps (each application removes ``ceil(a * d_theta / 4096) >= 1`` LSB, so with
  ``d_theta = 1`` the decay is linear, 1 LSB per period, below ``a = 4096``).  A neuron that wins often gets
  harder to fire, so others win.
* **weight-dependent depression** on a post spike (``w_decay = k``): ``dw = ((A+ * (xd - x_tar)) >> s+) -
  ceil(w / 2^k)``.  Every weight of a firing neuron relaxes towards ``2^k`` times its average potentiation,
  i.e. towards the neuron's mean presynaptic trace while it fires (competitive learning, Oja-like soft bound);
  inputs that are silent when the neuron fires decay to 0.  The input weight sum of a neuron is thus bounded by
  ``2^k * max potentiation * M`` without a normalisation step.  ``x_tar`` (Diehl & Cook's "pre-trace target"
  rule) is available as well: inputs whose trace is below ``x_tar`` at a post spike are depressed.

All five registers are 0 by default, which is bit-for-bit the behaviour above without them.

Physical meaning (``FixedScale`` and the ``encode_*``/``decode_*`` functions)
------------------------------------------------------------------------------
``dt`` (s) is one step and ``v_lsb`` (V) one voltage LSB (default 2^-10 mV).  The represented continuous model:
``dv/dt = -(v - v_rest)/tau_m + I + i_bias``, ``dI/dt = -I/tau_syn``, a spike on a synapse of weight ``w`` (V)
adds ``w/dt`` to ``I``.  Encodings: ``d = round(4096 dt / tau)`` (so ``tau = 4096 dt / d`` exactly, Euler factor
``1 - d/4096``); voltages ``round(V / v_lsb)``; ``bias = round(i_bias dt / v_lsb)``; weights
``round(w / (v_lsb 2^w_exp))``; ``t_ref = round(T_ref/dt) - 1`` held steps (Brian2's ``refractory`` counts the
spike step).  STDP: normalised traces (one spike adds 1.0, ``tau_pre = 4096 dt / d_x``) and
``dw = a_plus * x_pre`` on a post spike, ``-a_minus * y_post`` on a pre spike;
``a_plus = A+ * a_pre / 2^s+`` weight LSBs.  Traces saturate at ``pre_cap = (2^T - 1) / a_pre`` spikes
(likewise ``post_cap``).  Homeostasis: ``x_tar = round(x_tar_phys * a_pre)`` (a trace target in spikes),
``w_decay = k`` for ``w_leak = 2^-k``, ``theta_plus = round(V / v_lsb)``, and ``tau_theta`` becomes the shortest
decay period ``2^theta_period`` steps whose code ``d_theta = round(4096 2^theta_period dt / tau_theta)`` is at
least 256.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ADAPT_BITS",
    "DECAY_ONE",
    "DECAY_SHIFT",
    "STATE_BITS",
    "CoreConfig",
    "FixedScale",
    "NeuronParams",
    "PhysNeuron",
    "PhysStdp",
    "ResetMode",
    "StdpParams",
    "SynapseParams",
    "TraceMode",
    "decay_code",
    "decode_neurons",
    "decode_stdp",
    "decode_weights",
    "encode_neurons",
    "encode_stdp",
    "encode_weights",
    "int_range",
    "tau_from_decay",
]

STATE_BITS = 24  #: width of I, v, theta, v_reset, v_rest, bias
DECAY_SHIFT = 12  #: decay factors are in units of 2^-12
DECAY_ONE = 1 << DECAY_SHIFT  #: 4096: the largest decay code (full decay every step)
WEIGHT_BITS = 8
W_EXP_MAX = 7
T_REF_MAX = 255
GAIN_MAX = 255  #: A+ and A-
SHIFT_MAX = 15  #: s+ and s-
ADAPT_BITS = 16  #: width of the adaptive threshold ``a`` and of ``theta_plus``
MAX_NEURONS = 4096
MAX_INPUTS = 4096


def int_range(bits: int, signed: bool = True) -> tuple[int, int]:
    """Inclusive range of a two's-complement (``signed``) or unsigned integer of ``bits`` bits."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


class ResetMode(enum.IntEnum):
    """What a spike does to ``v`` (global)."""

    ABSOLUTE = 0  #: ``v <- v_reset``
    SUBTRACT = 1  #: ``v <- sat24(v - (theta - v_reset))``, keeps the overshoot


class TraceMode(enum.IntEnum):
    """How a spike updates an STDP trace (global)."""

    ADD = 0  #: all-to-all pairing: ``x <- min(x + a, 2^T - 1)``
    NEAREST = 1  #: nearest-spike pairing: ``x <- a``


def _check_int(name: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, not {value!r}")
    return int(value)


def _check_array(name: str, value, lo: int, hi: int) -> np.ndarray:
    """Validate an integer scalar or 1-D array, return it as a read-only int64 array (0-d or 1-d)."""
    arr = np.asarray(value)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer scalar or array, not {value!r} (dtype {arr.dtype})")
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D per-neuron array, not shape {arr.shape}")
    if arr.size and (arr.min() < lo or arr.max() > hi):
        raise ValueError(f"{name} must be in {lo}..{hi}, got values in {int(arr.min())}..{int(arr.max())}")
    arr = arr.astype(np.int64)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True)
class CoreConfig:
    """Elaboration-time structure of one core.

    ``n_neurons`` (N) LIF neurons, ``n_inputs`` (M) external input lines, ``lanes`` (P) parallel synapse lanes
    (a power of two dividing N), ``trace_bits`` (T) width of the STDP traces and of ``a_pre``/``a_post``.
    """

    n_neurons: int = 256
    n_inputs: int = 256
    lanes: int = 4
    trace_bits: int = 8

    def __post_init__(self):
        _check_int("n_neurons", self.n_neurons, 1, MAX_NEURONS)
        _check_int("n_inputs", self.n_inputs, 0, MAX_INPUTS)
        _check_int("lanes", self.lanes, 1, self.n_neurons)
        if self.lanes & (self.lanes - 1):
            raise ValueError(f"lanes must be a power of two, not {self.lanes!r}")
        if self.n_neurons % self.lanes:
            raise ValueError(f"n_neurons ({self.n_neurons!r}) must be a multiple of lanes ({self.lanes!r})")
        _check_int("trace_bits", self.trace_bits, 4, 16)

    @property
    def n_sources(self) -> int:
        """Rows of the weight matrix: neurons first, then inputs."""
        return self.n_neurons + self.n_inputs

    @property
    def acc_bits(self) -> int:
        """Width of the exact per-step accumulator: |sum| <= (N+M) * 128 * 2^7 = (N+M) * 2^14."""
        return 15 + max(0, math.ceil(math.log2(self.n_sources)))

    @property
    def trace_max(self) -> int:
        return (1 << self.trace_bits) - 1


@dataclass(frozen=True, eq=False)
class NeuronParams:
    """Per-neuron parameters in hardware encoding.

    Each field is an integer or a 1-D array (one entry per neuron); scalars broadcast to all neurons.
    Arrays are stored read-only as int64.  ``reset_mode`` is global.
    """

    theta: object = 1 << 10
    v_reset: object = 0
    v_rest: object = 0
    bias: object = 0
    d_v: object = 0
    d_i: object = 0
    t_ref: object = 0
    reset_mode: ResetMode = ResetMode.ABSOLUTE

    ARRAY_FIELDS = ("theta", "v_reset", "v_rest", "bias", "d_v", "d_i", "t_ref")

    def __post_init__(self):
        s_lo, s_hi = int_range(STATE_BITS)
        ranges = {
            "theta": (s_lo, s_hi),
            "v_reset": (s_lo, s_hi),
            "v_rest": (s_lo, s_hi),
            "bias": (s_lo, s_hi),
            "d_v": (0, DECAY_ONE),
            "d_i": (0, DECAY_ONE),
            "t_ref": (0, T_REF_MAX),
        }
        sizes = set()
        for name, (lo, hi) in ranges.items():
            arr = _check_array(name, getattr(self, name), lo, hi)
            object.__setattr__(self, name, arr)
            if arr.ndim == 1:
                sizes.add(arr.size)
        if len(sizes) > 1:
            raise ValueError(f"per-neuron arrays have different lengths: {sorted(sizes)}")
        object.__setattr__(self, "reset_mode", ResetMode(self.reset_mode))

    def broadcast(self, n: int) -> NeuronParams:
        """The same parameters with every field a length-``n`` array; raises if a field has another length."""
        out = {}
        for name in self.ARRAY_FIELDS:
            arr = getattr(self, name)
            if arr.ndim == 1 and arr.size != n:
                raise ValueError(f"{name} has {arr.size} entries, the core has {n} neurons")
            out[name] = np.broadcast_to(arr, (n,)).copy()
        return NeuronParams(**out, reset_mode=self.reset_mode)

    def replace(self, **changes) -> NeuronParams:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class SynapseParams:
    """Global synapse register: a weight ``w`` contributes ``w << w_exp`` to the accumulator."""

    w_exp: int = 0

    def __post_init__(self):
        _check_int("w_exp", self.w_exp, 0, W_EXP_MAX)


@dataclass(frozen=True)
class StdpParams:
    """Global learning registers in hardware encoding (see the module docstring, steps 4-6)."""

    d_x: int = 256
    d_y: int = 256
    a_pre: int = 128
    a_post: int = 128
    a_plus: int = 0
    a_minus: int = 0
    s_plus: int = 8
    s_minus: int = 8
    w_min: int = -128
    w_max: int = 127
    trace_mode: TraceMode = TraceMode.ADD
    x_tar: int = 0
    w_decay: int = 0
    theta_plus: int = 0
    d_theta: int = 0
    theta_period: int = 0

    ONCHIP_FIELDS = ("x_tar", "w_decay", "theta_plus", "d_theta", "theta_period")  #: 0 = off, homeostasis

    def __post_init__(self):
        w_lo, w_hi = int_range(WEIGHT_BITS)
        for name, lo, hi in (
            ("d_x", 0, DECAY_ONE),
            ("d_y", 0, DECAY_ONE),
            ("a_pre", 0, (1 << 16) - 1),
            ("a_post", 0, (1 << 16) - 1),
            ("a_plus", 0, GAIN_MAX),
            ("a_minus", 0, GAIN_MAX),
            ("s_plus", 0, SHIFT_MAX),
            ("s_minus", 0, SHIFT_MAX),
            ("w_min", w_lo, w_hi),
            ("w_max", w_lo, w_hi),
            ("x_tar", 0, (1 << 16) - 1),
            ("w_decay", 0, SHIFT_MAX),
            ("theta_plus", 0, (1 << ADAPT_BITS) - 1),
            ("d_theta", 0, DECAY_ONE),
            ("theta_period", 0, SHIFT_MAX),
        ):
            object.__setattr__(self, name, _check_int(name, getattr(self, name), lo, hi))
        if self.w_min > self.w_max:
            raise ValueError(f"w_min ({self.w_min!r}) must not exceed w_max ({self.w_max!r})")
        object.__setattr__(self, "trace_mode", TraceMode(self.trace_mode))

    def check_trace_bits(self, trace_bits: int) -> None:
        """Raise unless ``a_pre`` and ``a_post`` fit the core's trace width."""
        hi = (1 << trace_bits) - 1
        for name in ("a_pre", "a_post", "x_tar"):
            if getattr(self, name) > hi:
                raise ValueError(f"{name} must be in 0..{hi} for {trace_bits}-bit traces, not {getattr(self, name)!r}")

    def onchip_homeostasis(self) -> dict:
        """The homeostasis registers (:attr:`ONCHIP_FIELDS`) that are switched on, by name."""
        return {name: getattr(self, name) for name in self.ONCHIP_FIELDS if getattr(self, name)}


# ----------------------------------------------------------------------------------------------------------------
# physical <-> fixed point


@dataclass(frozen=True)
class FixedScale:
    """Host-side meaning of the integers: step ``dt`` (s), voltage LSB ``v_lsb`` (V), weight exponent ``w_exp``."""

    dt: float = 1e-3
    v_lsb: float = 1e-3 / 1024
    w_exp: int = 0

    def __post_init__(self):
        if not (self.dt > 0 and math.isfinite(self.dt)):
            raise ValueError(f"dt must be a positive number of seconds, not {self.dt!r}")
        if not (self.v_lsb > 0 and math.isfinite(self.v_lsb)):
            raise ValueError(f"v_lsb must be a positive number of volts, not {self.v_lsb!r}")
        _check_int("w_exp", self.w_exp, 0, W_EXP_MAX)

    @property
    def w_lsb(self) -> float:
        """Volts per weight LSB (the jump of ``v`` one step after a spike on a unit weight)."""
        return self.v_lsb * (1 << self.w_exp)


def decay_code(tau, dt: float) -> np.ndarray | int:
    """``round(4096 dt / tau)``; ``tau = inf`` gives 0 (no decay).  Raises if ``tau < dt`` (code > 4096)."""
    tau_arr = np.asarray(tau, dtype=float)
    if np.any(~(tau_arr > 0)):
        raise ValueError(f"time constants must be positive, got {tau!r}")
    code = np.rint(DECAY_ONE * dt / tau_arr).astype(np.int64)
    if np.any(code > DECAY_ONE):
        raise ValueError(f"time constant {tau!r} is shorter than dt={dt!r}: not representable (code > {DECAY_ONE})")
    return int(code) if code.ndim == 0 else code


def tau_from_decay(code, dt: float) -> np.ndarray | float:
    """The time constant a decay code represents exactly under forward Euler: ``4096 dt / d`` (inf for 0)."""
    c = np.asarray(code, dtype=float)
    with np.errstate(divide="ignore"):
        tau = np.where(c > 0, DECAY_ONE * dt / np.where(c > 0, c, 1.0), np.inf)
    return float(tau) if tau.ndim == 0 else tau


def _round_int(name: str, value, lo: int, hi: int):
    arr = np.rint(np.asarray(value, dtype=float))
    if np.any(~np.isfinite(arr)) or np.any(arr < lo) or np.any(arr > hi):
        raise ValueError(f"{name}={value!r} encodes outside {lo}..{hi}")
    arr = arr.astype(np.int64)
    return int(arr) if arr.ndim == 0 else arr


@dataclass(frozen=True, eq=False)
class PhysNeuron:
    """Physical LIF parameters (SI units; scalars or per-neuron arrays).

    ``tau_m``, ``tau_syn``, ``t_ref`` in s (``t_ref`` as Brian2's ``refractory``: from the spike to the first
    integrating step); ``v_th``, ``v_reset``, ``v_rest`` in V; ``i_bias`` in V/s (a drive added to dv/dt).
    """

    tau_m: object = 20e-3
    tau_syn: object = 5e-3
    v_th: object = -50e-3
    v_reset: object = -65e-3
    v_rest: object = -65e-3
    i_bias: object = 0.0
    t_ref: object = 2e-3
    reset_mode: ResetMode = ResetMode.ABSOLUTE


def encode_neurons(phys: PhysNeuron, scale: FixedScale) -> NeuronParams:
    """Quantise physical neuron parameters to hardware registers (round to nearest)."""
    s_lo, s_hi = int_range(STATE_BITS)
    t_ref = np.maximum(np.rint(np.asarray(phys.t_ref, dtype=float) / scale.dt) - 1, 0)
    return NeuronParams(
        theta=_round_int("v_th", np.asarray(phys.v_th) / scale.v_lsb, s_lo, s_hi),
        v_reset=_round_int("v_reset", np.asarray(phys.v_reset) / scale.v_lsb, s_lo, s_hi),
        v_rest=_round_int("v_rest", np.asarray(phys.v_rest) / scale.v_lsb, s_lo, s_hi),
        bias=_round_int("i_bias", np.asarray(phys.i_bias) * scale.dt / scale.v_lsb, s_lo, s_hi),
        d_v=decay_code(phys.tau_m, scale.dt),
        d_i=decay_code(phys.tau_syn, scale.dt),
        t_ref=_round_int("t_ref", t_ref, 0, T_REF_MAX),
        reset_mode=phys.reset_mode,
    )


def decode_neurons(params: NeuronParams, scale: FixedScale) -> PhysNeuron:
    """The physical parameters that the registers represent exactly (per-neuron float arrays or scalars)."""

    def f(a):
        return a.astype(float) if a.ndim else float(a)

    return PhysNeuron(
        tau_m=tau_from_decay(params.d_v, scale.dt),
        tau_syn=tau_from_decay(params.d_i, scale.dt),
        v_th=f(params.theta) * scale.v_lsb,
        v_reset=f(params.v_reset) * scale.v_lsb,
        v_rest=f(params.v_rest) * scale.v_lsb,
        i_bias=f(params.bias) * scale.v_lsb / scale.dt,
        t_ref=(f(params.t_ref) + 1) * scale.dt,
        reset_mode=params.reset_mode,
    )


def encode_weights(w, scale: FixedScale, *, clip: bool = False) -> np.ndarray:
    """Physical weights (V) to int8 codes, ``round(w / w_lsb)``.  Out of range raises unless ``clip``."""
    q = np.rint(np.asarray(w, dtype=float) / scale.w_lsb)
    lo, hi = int_range(WEIGHT_BITS)
    if not np.all(np.isfinite(q)):
        raise ValueError("weights must be finite")
    if clip:
        q = np.clip(q, lo, hi)
    elif q.size and (q.min() < lo or q.max() > hi):
        raise ValueError(
            f"weights encode to {int(q.min())}..{int(q.max())}, outside int8; raise w_exp or pass clip=True"
        )
    return q.astype(np.int8)


def decode_weights(w, scale: FixedScale) -> np.ndarray:
    """int8 codes to physical weights (V)."""
    return np.asarray(w, dtype=float) * scale.w_lsb


@dataclass(frozen=True)
class PhysStdp:
    """Physical additive trace STDP (Song/Abbott form with normalised traces, see the module docstring).

    ``tau_pre``/``tau_post`` in s; ``a_plus``, ``a_minus``, ``w_min``, ``w_max`` in V (weight units);
    ``pre_cap``/``post_cap``: saturation of a trace in units of one spike's increment (ADD mode).  The
    homeostasis fields are off at their defaults; with them, a post spike changes a plastic weight by
    ``a_plus * (x_pre - x_tar) - w_leak * w`` and raises the neuron's threshold by ``theta_plus``, which relaxes
    to 0 with ``tau_theta`` while learning.
    """

    tau_pre: float = 16e-3
    tau_post: float = 16e-3
    a_plus: float = 0.0
    a_minus: float = 0.0
    w_min: float = -128 / 1024 * 1e-3
    w_max: float = 127 / 1024 * 1e-3
    pre_cap: float = 2.0
    post_cap: float = 2.0
    trace_mode: TraceMode = TraceMode.ADD
    x_tar: float = 0.0          #: potentiation target trace (one spike = 1.0): dw = a_plus * (x_pre - x_tar)
    w_leak: float = 0.0         #: fraction of each plastic weight removed on a post spike (2^-w_decay)
    theta_plus: float = 0.0     #: V, adaptive-threshold raise per post spike
    tau_theta: float = math.inf  #: s, decay time constant of the adaptive threshold


def _gain_shift(target: float, name: str) -> tuple[int, int]:
    """Best (A, s) with A in 0..255, s in 0..15 and A / 2^s ~= target (largest s that keeps A in range)."""
    if target < 0 or not math.isfinite(target):
        raise ValueError(f"{name} must be a finite non-negative amplitude, not {target!r}")
    if target == 0:
        return 0, 0
    for s in range(SHIFT_MAX, -1, -1):
        a = round(target * (1 << s))
        if a <= GAIN_MAX:
            if a == 0:
                raise ValueError(f"{name} is too small to encode (gain/2^15 rounds to 0); raise a_pre or lower w_exp")
            return a, s
    raise ValueError(f"{name} is too large to encode (needs gain > {GAIN_MAX} at shift 0); lower a_pre or w_exp")


def encode_stdp(phys: PhysStdp, scale: FixedScale, trace_bits: int = 8) -> StdpParams:
    """Quantise physical STDP parameters; the trace increments are ``floor((2^T - 1) / cap)``."""
    tmax = (1 << trace_bits) - 1
    amps = []
    for name in ("pre_cap", "post_cap"):
        cap = getattr(phys, name)
        if not 1 <= cap <= tmax:
            raise ValueError(f"{name} must be in 1..{tmax} spikes, not {cap!r}")
        amps.append(int(tmax // cap))
    a_pre, a_post = amps
    a_plus, s_plus = _gain_shift(phys.a_plus / scale.w_lsb / a_pre, "a_plus")
    a_minus, s_minus = _gain_shift(phys.a_minus / scale.w_lsb / a_post, "a_minus")
    lo, hi = int_range(WEIGHT_BITS)
    d_theta, theta_period = _period_decay(phys.tau_theta, scale.dt)
    return StdpParams(
        x_tar=_round_int("x_tar", phys.x_tar * a_pre, 0, tmax),
        w_decay=_leak_shift(phys.w_leak),
        theta_plus=_round_int("theta_plus", phys.theta_plus / scale.v_lsb, 0, (1 << ADAPT_BITS) - 1),
        d_theta=d_theta,
        theta_period=theta_period,
        d_x=decay_code(phys.tau_pre, scale.dt),
        d_y=decay_code(phys.tau_post, scale.dt),
        a_pre=a_pre,
        a_post=a_post,
        a_plus=a_plus,
        a_minus=a_minus,
        s_plus=s_plus,
        s_minus=s_minus,
        w_min=_round_int("w_min", phys.w_min / scale.w_lsb, lo, hi),
        w_max=_round_int("w_max", phys.w_max / scale.w_lsb, lo, hi),
        trace_mode=phys.trace_mode,
    )


def decode_stdp(params: StdpParams, scale: FixedScale, trace_bits: int = 8) -> PhysStdp:
    """Physical STDP parameters the registers represent (a zero trace increment decodes to an infinite cap)."""
    tmax = (1 << trace_bits) - 1
    return PhysStdp(
        tau_pre=tau_from_decay(params.d_x, scale.dt),
        tau_post=tau_from_decay(params.d_y, scale.dt),
        a_plus=params.a_plus * params.a_pre / (1 << params.s_plus) * scale.w_lsb,
        a_minus=params.a_minus * params.a_post / (1 << params.s_minus) * scale.w_lsb,
        w_min=params.w_min * scale.w_lsb,
        w_max=params.w_max * scale.w_lsb,
        pre_cap=tmax / params.a_pre if params.a_pre else math.inf,
        post_cap=tmax / params.a_post if params.a_post else math.inf,
        trace_mode=params.trace_mode,
        x_tar=params.x_tar / params.a_pre if params.a_pre else 0.0,
        w_leak=2.0 ** -params.w_decay if params.w_decay else 0.0,
        theta_plus=params.theta_plus * scale.v_lsb,
        tau_theta=float(tau_from_decay(params.d_theta, scale.dt * (1 << params.theta_period))),
    )


def _leak_shift(w_leak: float) -> int:
    """``w_decay`` register for a leak fraction: 0 for none, else ``k`` with ``2^-k == w_leak`` (1..15)."""
    if w_leak == 0:
        return 0
    k = -math.log2(w_leak) if w_leak > 0 else math.nan
    if not (math.isfinite(k) and k == round(k) and 1 <= k <= SHIFT_MAX):
        raise ValueError(f"w_leak must be 0 or 2^-k with k in 1..{SHIFT_MAX}, not {w_leak!r}")
    return int(k)


def _period_decay(tau: float, dt: float) -> tuple[int, int]:
    """(d_theta, theta_period) for a decay time constant: the shortest period 2^k steps whose code is at least
    256 (under 0.2 % quantisation error), or the longest period; ``tau = inf`` gives (0, 0)."""
    if tau == math.inf:
        return 0, 0
    for k in range(SHIFT_MAX + 1):
        code = decay_code(tau, dt * (1 << k))
        if code >= 256 or k == SHIFT_MAX:
            if code == 0:
                raise ValueError(f"tau_theta={tau!r} is too long to encode (more than 2^27 steps)")
            return code, k
    raise AssertionError("unreachable")


def check_learnable(mask, stdp: StdpParams) -> None:
    """Refuse to enable STDP when nothing could be learned (an all-zero plasticity mask, or both gains zero)."""
    if not mask.any():
        raise ValueError("STDP enabled but the plasticity mask is all zero: pass mask= or call set_plastic()")
    if stdp.a_plus == 0 and stdp.a_minus == 0:
        raise ValueError("STDP enabled but a_plus and a_minus are both 0: nothing would change")
