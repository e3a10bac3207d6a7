"""PyNN network -> NeuroCore registers: the fixed-point conversion and its report (no PyNN imports here).

Units on the PyNN side are PyNN's: mV, ms, nA, nF, Hz.  The core's integers mean (``v_lsb`` in mV, ``dt`` in ms):

* voltages ``theta, v_reset, v_rest = round(v / v_lsb)`` (int24);
* decays are matched to the *exact* solution of the linear ODEs, ``d = round(4096 (1 - exp(-dt / tau)))``, so the
  core's per-step factor ``1 - d/4096`` is ``exp(-dt/tau)`` up to the 1/4096 code step (``tau`` as represented:
  ``-dt / ln(1 - d/4096)``, reported when it moves);
* ``i_offset`` (constant current) becomes the per-step bias ``(i_offset/cm) * tau_m * d_v/4096`` (mV), the
  zero-order-hold input that gives exactly the float steady state ``v_rest + i_offset tau_m / cm`` with the
  quantised leak (``dt * i_offset/cm`` when there is no leak);
* a weight of an ``IF_curr_exp`` synapse (nA) becomes the current jump ``c = (w/cm) * T_s * T_m / (dt * v_lsb)``
  LSB with ``T = tau * d/4096`` (``dt`` without decay): the area of the post-synaptic potential of the float
  model, preserved under the quantised decays; an ``IF_curr_delta`` weight (mV) is ``w / v_lsb``; then
  ``code = round(c / 2^w_exp)`` (int8), one global ``w_exp``;
* ``tau_refrac`` becomes ``t_ref = max(round(tau_refrac/dt) - 1, 0)`` held steps (integration resumes
  ``round(tau_refrac/dt)`` steps after the spike step, as in Brian2);
* STDP (``SpikePairRule`` + ``AdditiveWeightDependence``): per-source and per-neuron traces with exact-matched
  decays, trace increments of half the 8-bit range (a trace saturates at two spikes' worth), gains ``A+ w_max``
  and ``A- w_max`` as ``A / 2^s`` per trace unit, bounds ``w_min``/``w_max`` as weight codes.

``v_lsb`` is ``2^-k`` mV with the largest ``k <= 10`` for which every weight fits int8 at ``w_exp <= 7`` (or the
value given to ``setup(v_lsb=...)``).  Everything the core cannot express exactly and that would change the
results is refused with :class:`UnsupportedConstruct`; what is rounded or clipped goes into the
:class:`MappingReport`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from base import RampartError
from models.snn.params import (
    DECAY_ONE,
    STATE_BITS,
    T_REF_MAX,
    FixedScale,
    NeuronParams,
    PhysStdp,
    ResetMode,
    StdpParams,
    TraceMode,
    encode_stdp,
    int_range,
)

__all__ = ["Mapping", "MappingReport", "NeuronPop", "Proj", "SourcePop", "StdpRule", "UnsupportedConstruct",
           "build_mapping", "exact_decay_code", "tau_of_code"]

W_EXP_MAX = 7
V_LSB_SHIFT_MAX = 10      #: finest voltage LSB tried: 2^-10 mV
TRACE_CAP = 2.0           #: an 8-bit trace saturates at this many spikes' worth
REL = 1e-9


class UnsupportedConstruct(RampartError):
    """A PyNN construct the NeuroCore cannot express; the message names it and says why."""


def exact_decay_code(tau, dt: float):
    """``round(4096 (1 - exp(-dt / tau)))`` (0 for an infinite tau)."""
    tau = np.asarray(tau, dtype=float)
    with np.errstate(divide="ignore"):
        code = np.rint(DECAY_ONE * -np.expm1(-dt / tau)).astype(np.int64)
    return code


def tau_of_code(code, dt: float):
    """The time constant a decay code represents: ``-dt / ln(1 - d/4096)`` (inf for 0, 0 for 4096)."""
    c = np.asarray(code, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(c > 0, -dt / np.log1p(-np.minimum(c, DECAY_ONE) / DECAY_ONE), np.inf)


@dataclass
class NeuronPop:
    """One neuron population: ``kind`` is ``"IF_curr_exp"`` or ``"IF_curr_delta"``; parameters are per-neuron
    arrays in PyNN units; ``first`` its first core neuron."""

    label: str
    kind: str
    size: int
    params: dict
    first: int = 0
    v_init: np.ndarray | None = None


@dataclass
class SourcePop:
    """One spike-source population on core inputs ``first .. first + size - 1``."""

    label: str
    kind: str   # "SpikeSourceArray" | "SpikeSourcePoisson"
    size: int
    params: dict
    first: int = 0


@dataclass(frozen=True)
class StdpRule:
    """A ``SpikePairRule`` + ``AdditiveWeightDependence`` rule (PyNN units)."""

    tau_plus: float
    tau_minus: float
    A_plus: float
    A_minus: float
    w_min: float
    w_max: float


@dataclass
class Proj:
    """One projection, flattened: population-local pre/post indices, weights and delays per connection."""

    label: str
    pre: NeuronPop | SourcePop
    post: NeuronPop
    pre_idx: np.ndarray
    post_idx: np.ndarray
    weight: np.ndarray
    delay: np.ndarray
    receptor: str = "excitatory"
    stdp: StdpRule | None = None


@dataclass
class MappingReport:
    """What the conversion did: one line per population / projection / register set, each tagged ``exact``,
    ``rounded`` or ``clipped``."""

    dt: float
    v_lsb: float
    w_exp: int
    n_neurons: int
    n_inputs: int
    config: str = ""
    entries: list = field(default_factory=list)

    def add(self, item: str, kind: str, detail: str) -> None:
        self.entries.append((item, kind, detail))

    def kinds(self, item: str | None = None) -> set:
        return {k for it, k, _ in self.entries if item is None or it == item}

    def __str__(self) -> str:
        head = (f"NeuroCore mapping: {self.n_neurons} neurons + {self.n_inputs} inputs on core {self.config}, "
                f"dt = {self.dt:g} ms, v_lsb = {self.v_lsb:g} mV, weight LSB = {self.v_lsb * 2 ** self.w_exp:g} mV "
                f"(w_exp = {self.w_exp})")
        width = max([len(it) for it, _, _ in self.entries] + [4])
        return "\n".join([head] + [f"  {it:{width}s}  {k:8s} {d}" for it, k, d in self.entries])


@dataclass
class Mapping:
    """Register values for the core and the per-connection weight factors (LSB per PyNN weight unit)."""

    neurons: NeuronParams
    weights: np.ndarray          # (n_neurons + n_inputs, n_neurons) int64 codes (only the used part)
    mask: np.ndarray             # bool, plastic synapses
    w_exp: int
    v_lsb: float
    stdp: StdpParams | None
    factor: np.ndarray           # (n_neurons,) weight LSB per PyNN weight unit, per post neuron
    report: MappingReport


def _arr(pop: NeuronPop, name: str) -> np.ndarray:
    return np.broadcast_to(np.asarray(pop.params[name], dtype=float), (pop.size,)).astype(float)


def _tau_line(name: str, tau: np.ndarray, code: np.ndarray, dt: float) -> tuple[str, str]:
    if np.all(code == 0):
        return "rounded", f"{name} {_span(tau)} ms -> decay code 0: no decay (tau beyond {dt * 8192:g} ms)"
    rep = tau_of_code(code, dt)
    err = np.abs(rep - tau) / tau
    kind = "exact" if np.all(err < 1e-6) else "rounded"
    return kind, (f"{name} {_span(tau)} ms -> decay code {_span(code)} = tau {_span(rep)} ms "
                  f"(max rel. error {err.max():.2%})")


def _span(a) -> str:
    a = np.asarray(a)
    lo, hi = a.min(), a.max()
    fmt = (lambda x: f"{x:.4g}") if np.issubdtype(a.dtype, np.floating) else str
    return fmt(lo) if lo == hi else f"{fmt(lo)}..{fmt(hi)}"


def _receptors_used(pop: NeuronPop, projs) -> np.ndarray:
    """(size, 2) bool: neuron receives excitatory / inhibitory connections."""
    used = np.zeros((pop.size, 2), dtype=bool)
    for p in projs:
        if p.post is pop:
            used[p.post_idx, 0 if p.receptor == "excitatory" else 1] = True
    return used


def _neuron_constants(pop: NeuronPop, projs, dt: float, report: MappingReport):
    """Decay codes, refractory steps and the weight gain T_s*T_m/(dt*cm) (mV per nA ... per LSB: times 1/v_lsb)
    of one population."""
    tau_m = _arr(pop, "tau_m")
    cm = _arr(pop, "cm")
    if np.any(tau_m <= 0) or np.any(cm <= 0):
        raise UnsupportedConstruct(f"population {pop.label!r}: tau_m and cm must be positive")
    d_v = exact_decay_code(tau_m, dt)
    kind, line = _tau_line("tau_m", tau_m, d_v, dt)
    report.add(pop.label, kind, line)
    if pop.kind == "IF_curr_delta":
        d_i = np.full(pop.size, DECAY_ONE, dtype=np.int64)
        gain_i = None
    else:
        used = _receptors_used(pop, projs)
        tau_e, tau_i = _arr(pop, "tau_syn_E"), _arr(pop, "tau_syn_I")
        both = used[:, 0] & used[:, 1] & (np.abs(tau_e - tau_i) > REL * tau_e)
        if both.any():
            j = int(np.flatnonzero(both)[0])
            raise UnsupportedConstruct(
                f"population {pop.label!r}: IF_curr_exp with tau_syn_E ({tau_e[j]:g} ms) != tau_syn_I "
                f"({tau_i[j]:g} ms) on a neuron receiving both excitatory and inhibitory input: the core has one "
                "synaptic current per neuron")
        tau_s = np.where(used[:, 1] & ~used[:, 0], tau_i, tau_e)
        d_i = exact_decay_code(tau_s, dt)
        if np.any(d_i == 0):
            raise UnsupportedConstruct(f"population {pop.label!r}: tau_syn {_span(tau_s)} ms is too long for the "
                                       "13-bit decay code (it would never decay)")
        kind, line = _tau_line("tau_syn", tau_s, d_i, dt)
        report.add(pop.label, kind, line)
        gain_i = _t_eff(tau_s, d_i, dt)
    t_m = _t_eff(tau_m, d_v, dt)
    refrac = _arr(pop, "tau_refrac")
    steps = np.rint(refrac / dt)
    t_ref = np.maximum(steps - 1, 0)
    if np.any(t_ref > T_REF_MAX):
        raise UnsupportedConstruct(f"population {pop.label!r}: tau_refrac {_span(refrac)} ms exceeds the core's "
                                   f"{T_REF_MAX + 1} steps")
    off = np.abs(np.maximum(steps, 1) * dt - refrac) > 1e-9 * dt
    report.add(pop.label, "rounded" if off.any() else "exact",
               f"tau_refrac {_span(refrac)} ms -> {_span(np.maximum(steps, 1).astype(np.int64))} step(s)")
    if pop.kind == "IF_curr_delta":
        gain = np.ones(pop.size)                   # mV per mV
    else:
        gain = gain_i * t_m / (dt * cm)            # mV per nA
    return d_v, d_i, t_ref.astype(np.int64), gain, t_m, cm


def _t_eff(tau, code, dt):
    """``tau * d / 4096`` (``dt`` when the code is 0: no decay)."""
    return np.where(code > 0, np.asarray(tau, dtype=float) * code / DECAY_ONE, dt)


def _choose_v_lsb(max_mv: float, v_lsb: float | None) -> float:
    if v_lsb is not None:
        return float(v_lsb)
    for k in range(V_LSB_SHIFT_MAX, -8, -1):
        if max_mv / 2.0 ** -k <= 127.5 * 2 ** W_EXP_MAX:
            return 2.0 ** -k
    raise UnsupportedConstruct(f"a weight of {max_mv:g} mV per step exceeds what int8 << 7 can carry at any LSB")


def _choose_w_exp(max_lsb: float, v_lsb: float) -> int:
    for e in range(W_EXP_MAX + 1):
        if max_lsb / 2 ** e <= 127.5:
            return e
    raise UnsupportedConstruct(f"weights up to {max_lsb * v_lsb:g} mV per step do not fit int8 << {W_EXP_MAX} at "
                               f"v_lsb = {v_lsb:g} mV: raise setup(v_lsb=...)")


def build_mapping(neuron_pops, source_pops, projs, dt: float, *, v_lsb: float | None = None,
                  config_name: str = "", n_core: int | None = None) -> Mapping:
    """Convert a flattened network (populations already placed: ``first`` set) to register values.

    ``n_core``: the core's neuron count (parameter arrays are padded with silent neurons to it)."""
    n = sum(p.size for p in neuron_pops)
    m = sum(p.size for p in source_pops)
    n_core = n if n_core is None else n_core
    report = MappingReport(dt=dt, v_lsb=0.0, w_exp=0, n_neurons=n, n_inputs=m, config=config_name)
    for p in projs:
        if np.any(np.abs(p.delay - dt) > 1e-9 * dt):
            bad = float(p.delay[np.argmax(np.abs(p.delay - dt))])
            raise UnsupportedConstruct(f"projection {p.label!r}: delay {bad:g} ms; the core's synapses have exactly "
                                       f"one step of delay (delay = timestep = {dt:g} ms)")
    consts = {id(p): _neuron_constants(p, projs, dt, report) for p in neuron_pops}
    factor_mv = np.zeros(n_core)          # mV of per-step current per PyNN weight unit, per core neuron
    for p in neuron_pops:
        factor_mv[p.first:p.first + p.size] = consts[id(p)][3]

    # global voltage LSB and weight exponent from the largest weight (and plastic bound)
    max_mv = 0.0
    for p in projs:
        post = p.post.first + p.post_idx
        if p.weight.size:
            max_mv = max(max_mv, float(np.abs(p.weight * factor_mv[post]).max()))
        if p.stdp is not None:
            max_mv = max(max_mv, float(np.abs(np.array([p.stdp.w_min, p.stdp.w_max]) * factor_mv[post].max()).max()))
    v_lsb = _choose_v_lsb(max_mv, v_lsb)
    w_exp = _choose_w_exp(max_mv / v_lsb, v_lsb)
    report.v_lsb, report.w_exp = v_lsb, w_exp
    factor = factor_mv / v_lsb / 2 ** w_exp          # weight codes per PyNN weight unit

    neurons = _neuron_registers(neuron_pops, consts, n_core, v_lsb, dt, report)
    rows = n_core + max(m, 1)
    w_float = np.zeros((rows, n_core))
    mask = np.zeros((rows, n_core), dtype=bool)
    count = np.zeros((rows, n_core), dtype=np.int64)
    rules = {p.stdp for p in projs if p.stdp is not None}
    if len(rules) > 1:
        raise UnsupportedConstruct(f"{len(rules)} different STDP rules: the core has one global set of learning "
                                   "registers (several independent plastic networks cannot share it)")
    for p in projs:
        src = _source_rows(p, n_core)
        post = p.post.first + p.post_idx
        np.add.at(w_float, (src, post), p.weight * factor[post])
        np.add.at(count, (src, post), 1)
        if p.stdp is not None:
            mask[src, post] = True
    if (mask & (count > 1)).any():
        raise UnsupportedConstruct("a plastic synapse shares its (pre, post) pair with another connection: the core "
                                   "has one weight per pair, so plastic multapses cannot be kept apart")
    lo, hi = int_range(8)
    codes = np.rint(w_float)
    clipped = (codes < lo) | (codes > hi)
    codes = np.clip(codes, lo, hi).astype(np.int64)
    for p in projs:
        _report_weights(p, n_core, w_float, codes, count, factor, report)
    if clipped.any():
        report.add("weights", "clipped", f"{int(clipped.sum())} summed (pre, post) cells outside int8 clipped")

    stdp = None
    if rules:
        stdp = _stdp_registers(rules.pop(), projs, factor, mask, n_core, dt, v_lsb, w_exp, report)
    return Mapping(neurons=neurons, weights=codes, mask=mask, w_exp=w_exp, v_lsb=v_lsb, stdp=stdp,
                   factor=factor, report=report)


def _source_rows(p: Proj, n_core: int) -> np.ndarray:
    if isinstance(p.pre, NeuronPop):
        return p.pre.first + p.pre_idx
    return n_core + p.pre.first + p.pre_idx


def _neuron_registers(neuron_pops, consts, n_core: int, v_lsb: float, dt: float, report) -> NeuronParams:
    s_lo, s_hi = int_range(STATE_BITS)
    # padding neurons: never reached by a weight, threshold out of reach, no leak
    theta = np.full(n_core, s_hi, dtype=np.int64)
    v_reset = np.zeros(n_core, dtype=np.int64)
    v_rest = np.zeros(n_core, dtype=np.int64)
    bias = np.zeros(n_core, dtype=np.int64)
    d_v = np.zeros(n_core, dtype=np.int64)
    d_i = np.full(n_core, DECAY_ONE, dtype=np.int64)
    t_ref = np.zeros(n_core, dtype=np.int64)
    for p in neuron_pops:
        sl = slice(p.first, p.first + p.size)
        dv, di, tr, _gain, t_m, cm = consts[id(p)]
        d_v[sl], d_i[sl], t_ref[sl] = dv, di, tr
        for name, dst in (("v_thresh", theta), ("v_reset", v_reset), ("v_rest", v_rest)):
            val = _arr(p, name) / v_lsb
            q = np.rint(val)
            if np.any(q < s_lo) or np.any(q > s_hi):
                raise UnsupportedConstruct(f"population {p.label!r}: {name} {_span(_arr(p, name))} mV does not fit "
                                           f"the 24-bit register at v_lsb = {v_lsb:g} mV")
            dst[sl] = q.astype(np.int64)
            err = np.abs(q - val).max() * v_lsb
            report.add(p.label, "rounded" if err > 1e-12 else "exact", f"{name} {_span(_arr(p, name))} mV"
                       + (f" (max error {err:.3g} mV)" if err > 1e-12 else ""))
        i_off = _arr(p, "i_offset")
        drive = i_off / cm * t_m / v_lsb                 # LSB per step
        q = np.rint(drive)
        if np.any(q < s_lo) or np.any(q > s_hi):
            raise UnsupportedConstruct(f"population {p.label!r}: i_offset {_span(i_off)} nA overflows the bias "
                                       "register")
        bias[sl] = q.astype(np.int64)
        if np.any(i_off != 0):
            rel = np.abs(q - drive) / np.maximum(np.abs(drive), 1e-300)
            report.add(p.label, "rounded" if rel.max() > 1e-12 else "exact",
                       f"i_offset {_span(i_off)} nA -> bias {_span(q.astype(np.int64))} LSB/step "
                       f"(max rel. error {rel.max():.2%})")
        if p.v_init is not None:
            v0 = np.asarray(p.v_init, dtype=float)
            if np.any(np.abs(v0 - _arr(p, "v_rest")) > 1e-9):
                raise UnsupportedConstruct(f"population {p.label!r}: initial v different from v_rest; the core starts "
                                           "every neuron at v_rest")
    return NeuronParams(theta=theta, v_reset=v_reset, v_rest=v_rest, bias=bias, d_v=d_v, d_i=d_i, t_ref=t_ref,
                        reset_mode=ResetMode.ABSOLUTE)


def _report_weights(p: Proj, n_core, w_float, codes, count, factor, report) -> None:
    src = _source_rows(p, n_core)
    post = p.post.first + p.post_idx
    if not p.weight.size:
        report.add(p.label, "exact", "no connections")
        return
    want = w_float[src, post]
    got = codes[src, post]
    err = np.abs(got - want) / factor[post]                  # in PyNN weight units
    nz = p.weight != 0
    zeroed = int((nz & (got == 0)).sum())
    rel = err[nz] / np.abs(p.weight[nz]) if nz.any() else np.zeros(1)
    merged = int((count[src, post] > 1).sum())
    unit = "mV" if p.post.kind == "IF_curr_delta" else "nA"
    kind = "exact" if err.max() < 1e-9 * max(np.abs(p.weight).max(), 1e-300) else "rounded"
    if np.any((want < -128.5) | (want > 127.5)):
        kind = "clipped"
    detail = (f"{p.weight.size} connections, weights {_span(p.weight)} {unit} -> codes {_span(got)} "
              f"(max error {err.max():.3g} {unit}, {rel.max():.2%} relative; {zeroed} rounded to 0)")
    if merged:
        detail += f"; {merged} share a (pre, post) cell with another connection (summed)"
    if p.stdp is not None:
        detail += "; plastic"
    report.add(p.label, kind, detail)


def _stdp_registers(rule: StdpRule, projs, factor, mask, n_core, dt, v_lsb, w_exp, report) -> StdpParams:
    posts = np.concatenate([p.post.first + p.post_idx for p in projs if p.stdp is not None])
    f = factor[posts]
    if np.ptp(f) > 1e-9 * np.abs(f).max():
        raise UnsupportedConstruct("STDP onto neurons with different weight scales (cm, tau_m, tau_syn differ): the "
                                   "core's weight changes are the same integers for every plastic synapse")
    for p in projs:
        if p.stdp is not None and p.receptor != "excitatory":
            raise UnsupportedConstruct(f"projection {p.label!r}: STDP on an inhibitory projection (the core's "
                                       "potentiation raises the signed weight)")
    k = float(f[0])                                   # codes per PyNN weight unit
    scale = FixedScale(dt=dt * 1e-3, v_lsb=1.0, w_exp=0)     # work in weight codes directly (w_lsb = 1)
    phys = PhysStdp(tau_pre=rule.tau_plus * 1e-3, tau_post=rule.tau_minus * 1e-3,
                    a_plus=rule.A_plus * rule.w_max * k, a_minus=rule.A_minus * rule.w_max * k,
                    w_min=rule.w_min * k, w_max=rule.w_max * k, pre_cap=TRACE_CAP, post_cap=TRACE_CAP,
                    trace_mode=TraceMode.ADD)
    lo, hi = int_range(8)
    if not lo <= phys.w_min <= hi or not lo <= phys.w_max <= hi:
        raise UnsupportedConstruct(f"STDP bounds w_min={rule.w_min:g}, w_max={rule.w_max:g} do not fit int8")
    try:
        regs = encode_stdp(phys, scale)
    except ValueError as e:
        raise UnsupportedConstruct(f"STDP rule {rule}: {e}") from None
    d_x, d_y = int(exact_decay_code(rule.tau_plus, dt)), int(exact_decay_code(rule.tau_minus, dt))
    regs = replace(regs, d_x=d_x, d_y=d_y)
    got_p = regs.a_plus * regs.a_pre / 2 ** regs.s_plus / k / rule.w_max
    got_m = regs.a_minus * regs.a_post / 2 ** regs.s_minus / k / rule.w_max
    report.add("STDP", "rounded",
               f"tau_plus {rule.tau_plus:g} ms -> {float(tau_of_code(d_x, dt)):.4g} ms, tau_minus {rule.tau_minus:g}"
               f" ms -> {float(tau_of_code(d_y, dt)):.4g} ms; A_plus {rule.A_plus:g} -> {got_p:.4g}, A_minus "
               f"{rule.A_minus:g} -> {got_m:.4g}; weight changes floored to whole codes ({1 / k:.3g} weight units), "
               "same-step pairs ignored")
    report.add("STDP", "clipped", f"traces saturate at {TRACE_CAP:g} spikes' worth (8-bit); w_min {rule.w_min:g} -> "
               f"{regs.w_min / k:.4g}, w_max {rule.w_max:g} -> {regs.w_max / k:.4g}")
    if math.isclose(rule.A_plus, 0) and math.isclose(rule.A_minus, 0):
        raise UnsupportedConstruct("STDP with A_plus = A_minus = 0 would learn nothing")
    return regs
