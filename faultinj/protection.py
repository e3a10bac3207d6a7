"""Selective protection: choose one option per functional block (integer program), rebuild, and confirm by
re-injection.

Inputs: a **baseline campaign** of the unprotected design (per block: its flip-flop and memory bits, measured from
the build, and its outcome counts) and the **measured area** of every block under every option
(:func:`block_areas`: Yosys generic synthesis of the unprotected design, of the design with every wrappable block
under ``dmr`` and under ``tmr``; the hierarchy is kept, so a block's cells do not depend on the other blocks'
options). Hardened flip-flops change no logic: their area and FIT come from :class:`HardeningFactors`.

**Prediction** (what the optimiser assumes; the verification campaign measures it). For block ``b`` with raw FIT
``λ`` (``bits x FIT per bit``, :func:`fit_model`) and, from the baseline, the upper confidence bounds ``r`` of its
residual fraction and ``l`` of its latent fraction (Clopper-Pearson, :func:`faultinj.safety.block_rates`):

=========  ===================================  ==============  =================
option     λ (state bits are what fail)          λ_SPF+RF        λ_MPF,latent
=========  ===================================  ==============  =================
none       λ                                     λ r             λ l
hardened   λ_ff x ff_fit_scale + λ_mem           (same) x r      (same) x l
dmr        2 λ (two copies)                      0               2 λ l
tmr        3 λ (three copies)                    0               3 λ l
parity,    λ_ff + λ_mem' (λ_mem': the measured   λ_ff r_ff       λ_ff l_ff
secded     memory bits with their check bits)
=========  ===================================  ==============  =================

``parity`` / ``secded`` code the block's memories (:mod:`rtl.common.protect.memory`): a flipped memory bit is
checked on every read and by the background scrubber, so it is predicted detected or corrected (neither residual
nor latent); the block's flip-flops keep the residual and latent bounds ``r_ff``, ``l_ff`` of the baseline's
flip-flop injections alone (the whole block's when it had none).

A DMR comparator sees every output of the block on the cycle it differs, so a fault that would have left the block
is detected (MPF detected) before or when it reaches the design's outputs; TMR outvotes it (flagged as corrected). A
copy whose state diverged without ever showing at the block's outputs stays latent, as in the unprotected block.

**Optimisation** (:func:`optimise`): binary ``x[b, o]``, one option per block, minimise ``sum area[b, o] x[b, o]``
subject to, on those conservative figures, ``R <= (1 - SPFM_min) T``, ``L <= (1 - LFM_min)(T - R)`` and
``R < PMHF_max`` with ``T``, ``R``, ``L`` the sums of λ, λ_SPF+RF and λ_MPF,latent: linear, solved exactly by
``scipy.optimize.milp`` (HiGHS). :func:`pareto_front` sweeps the SPFM bound.

**Verification** (:func:`verify_plan`): the plan goes into the design's config (``protection``), the protected
design is rebuilt and a campaign injects into it (its replicas included); SPFM, LFM and PMHF are computed from those
injections with hardened blocks' FIT scaled, and the verdict is on the conservative end of the design's intervals,
propagated from the per-block counts by stratified bounds (:func:`campaign_assessment`, the method the report
states, :data:`faultinj.assessment.METHOD`). A plan *meets* its target only if that verification passes. The plan
JSON also keeps ``per_block_sum``: every block's own upper bound summed (:func:`faultinj.safety.safety_metrics`, the
figure the optimiser predicts with), which holds at a much higher joint confidence than stated and so is stricter.
"""
import dataclasses
import json
import math
import sqlite3
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from base import RampartError
from faultinj.assessment import METHOD, assess
from faultinj.fit import FitConfig
from faultinj.outcomes import Outcome, normalize_counts
from faultinj.safety import (
    ASIL_TARGETS,
    Asil,
    AsilTarget,
    BitKind,
    BlockResult,
    FitModel,
    MetricSet,
    assess_asil,
    block_rates,
    safety_metrics,
)
from rtl.common.protect import LOGIC_OPTIONS, MEMORY_OPTIONS, Option, normalise_plan
from rtl.designs import get_design

__all__ = ["HardeningFactors", "fit_model", "BlockData", "baseline_blocks", "wrappable_blocks", "block_areas",
           "Candidate", "candidates", "Solution", "optimise", "pareto_front", "plot_pareto", "protected_config",
           "Verification", "verify_plan", "campaign_metrics", "campaign_assessment", "write_plan", "read_plan",
           "protect_design", "config_name"]


@dataclass(frozen=True)
class HardeningFactors:
    """Hardened (radiation-hardened-by-design) flip-flops: area and FIT relative to a standard flip-flop.

    ``ff_area``: the DICE cell (Calin, Nicolaidis, Velazco, "Upset hardened memory design for submicron CMOS
    technology", IEEE Trans. Nucl. Sci. 43(6), 1996) stores each bit on four interlocked nodes, about twice the
    transistors of a standard latch; 2.0 x the flip-flop area. ``ff_fit_scale``: Mitra et al., "Robust system design
    with built-in soft-error resilience", IEEE Computer 38(2), 2005, report a flip-flop soft-error rate reduction of
    more than 20x for their hardened (BISER) flip-flops; 0.05. Both are assumptions to replace with the target
    library's figures.
    """

    ff_area: float = 2.0
    ff_fit_scale: float = 0.05

    def __post_init__(self):
        for name in ("ff_area", "ff_fit_scale"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")


def fit_model(technology: str | None = None) -> FitModel:
    """Raw FIT per bit: the one place the optimiser and the verification take it from (swap in a technology's
    model here). ``None``: :class:`faultinj.safety.FitModel`'s documented defaults."""
    if technology is not None:
        raise RampartError(f"no FIT model for technology {technology!r} yet (only the defaults)")
    return FitModel()


# --------------------------------------------------------------------------------------------------------------------
# Inputs: the baseline campaign and the measured areas

@dataclass(frozen=True)
class BlockData:
    """One functional block: state bits by kind and the injection outcome counts of a campaign."""

    name: str
    ff_bits: int
    mem_bits: int
    counts: Mapping[Outcome, int]
    #: The same counts split by the kind of the injected bit ("ff", "mem"; empty: not split)
    kind_counts: Mapping[str, Mapping[Outcome, int]] = field(default_factory=dict)

    def result(self, fit_scale: float = 1.0, strata: tuple = ()) -> BlockResult:
        return BlockResult(self.name, {BitKind.FF: self.ff_bits, BitKind.MEM: self.mem_bits}, dict(self.counts),
                           fit_scale, strata)

    def kind_result(self, kind: str) -> BlockResult | None:
        """The block's ``kind`` bits alone ("ff" / "mem") with their injections; None without any."""
        counts = self.kind_counts.get(kind, {})
        if not sum(counts.values()):
            return None
        bits = self.ff_bits if kind == "ff" else self.mem_bits
        return BlockResult(f"{self.name}:{kind}", {BitKind(kind): bits}, dict(counts))


def baseline_blocks(db_path) -> list[BlockData]:
    """Per sampled block of a campaign database: bits (as stored with the campaign, :func:`faultinj.campaign.
    campaign_state_bits`) and outcome counts (every block needs injections; scaffolding is never sampled)."""
    from faultinj.campaign import campaign_meta, campaign_state_bits, site_is_memory

    meta = campaign_meta(db_path)
    state_bits = campaign_state_bits(meta)
    db = sqlite3.connect(db_path)
    try:
        rows = db.execute("SELECT block, outcome, site FROM injections").fetchall()
    finally:
        db.close()
    kinds = site_is_memory(state_bits, [r[2] for r in rows]) if rows else []
    counts: dict[str, dict[Outcome, int]] = {}
    split: dict[str, dict[str, dict[Outcome, int]]] = {}
    for (block, outcome, _), mem in zip(rows, kinds, strict=True):
        o = Outcome(outcome)
        counts.setdefault(block, {}).setdefault(o, 0)
        counts[block][o] += 1
        per = split.setdefault(block, {}).setdefault("mem" if mem else "ff", {})
        per[o] = per.get(o, 0) + 1
    missing = sorted(set(meta["block_bits"]) - set(counts))
    if missing:
        raise RampartError(f"{db_path}: no injections in block(s) {', '.join(missing)}; run more samples")
    bits = state_bits["blocks"]
    return [BlockData(b, bits.get(b, {}).get("ff", 0), bits.get(b, {}).get("mem", 0), normalize_counts(counts[b]),
                      {k: normalize_counts(v) for k, v in split[b].items()})
            for b in sorted(counts)]


def _instance_paths(design, block: str) -> list[str]:
    paths = [k for k, v in design.blocks.items() if v == block]
    return paths or ([block] if block != "top" else [])


def wrappable_blocks(design_name: str, blocks: Sequence[str],
                     memory_blocks: Sequence[str] = ()) -> dict[str, tuple[Option, ...]]:
    """The options each block can take: all of :data:`rtl.common.protect.LOGIC_OPTIONS` when every instance of
    the block is a leaf of the block map (no other block inside it; wrapping it would also copy that block), else
    ``none`` / ``hardened`` (no logic change); a leaf among ``memory_blocks`` (blocks holding memories) also
    :data:`rtl.common.protect.MEMORY_OPTIONS`."""
    design = get_design(design_name)
    keys = list(design.blocks)
    out = {}
    for block in blocks:
        paths = _instance_paths(design, block)
        leaf = bool(paths) and not any(k.startswith(p + ".") for p in paths for k in keys)
        out[block] = (LOGIC_OPTIONS + (MEMORY_OPTIONS if block in memory_blocks else ()) if leaf
                      else (Option.NONE, Option.HARDENED))
    return out


def protected_config(design_name: str, config, plan) -> object:
    """``config`` with the protection plan ``plan`` (block -> option)."""
    entry = get_design(design_name)
    if not any(f.name == "protection" for f in dataclasses.fields(entry.config_type)):
        raise RampartError(f"design {design_name!r} has no protection plan in its config")
    try:
        return dataclasses.replace(config, protection=normalise_plan(plan))
    except ValueError as e:
        raise RampartError(f"protection plan for {design_name}: {e}") from None


def block_areas(design_name: str, config, blocks: Mapping[str, Sequence[Option]], *, abc: bool = True,
                bits: dict | None = None) -> dict[str, dict[Option, float]]:
    """Measured area (gate equivalents, :mod:`sim.area`; ``abc``: which synthesis script) of every block under each
    of its options (one synthesis per option, every block that can take it under it). ``bits``, if given, receives
    ``{block: {option: (ff_bits, mem_bits)}}`` as measured (check bits and a scrubber's counter included)."""
    from sim.area import AreaModel, measure_area

    model = AreaModel()
    factors = HardeningFactors()
    base = measure_area(design_name, protected_config(design_name, config, {}), abc=abc)
    out = {b: {Option.NONE: base.blocks[b].ge(model),
               Option.HARDENED: base.blocks[b].ge(model, ff_factor=factors.ff_area)} for b in blocks}
    if bits is not None:
        bits.update({b: {o: (base.blocks[b].ff_bits, base.blocks[b].mem_bits) for o in out[b]} for b in blocks})
    for option in (Option.DMR, Option.TMR, *MEMORY_OPTIONS):
        plan = {b: option for b, options in blocks.items() if option in options}
        if not plan:
            continue
        measured = measure_area(design_name, protected_config(design_name, config, plan), abc=abc)
        for b in plan:
            out[b][option] = measured.blocks[b].ge(model)
            if bits is not None:
                bits[b][option] = (measured.blocks[b].ff_bits, measured.blocks[b].mem_bits)
    return out


# --------------------------------------------------------------------------------------------------------------------
# Candidates and the integer program

@dataclass(frozen=True)
class Candidate:
    """One (block, option): measured area and predicted conservative FIT split (FIT)."""

    block: str
    option: Option
    area: float
    fit: float
    residual: float
    latent: float


def candidates(blocks: Sequence[BlockData], areas: Mapping[str, Mapping[Option, float]], *,
               fits: FitModel | None = None, factors: HardeningFactors | None = None,
               confidence: float = 0.95, bits: Mapping | None = None) -> list[Candidate]:
    """Every block's options with their predicted FIT split (module docstring table); ``bits``: measured bits
    under each option (:func:`block_areas`), for the check bits of ``parity`` / ``secded``."""
    fits = fits or fit_model()
    factors = factors or HardeningFactors()
    out = []
    for block in blocks:
        rates = block_rates(block.result(), fits, confidence=confidence)
        r, lat = rates.residual_upper_fraction, rates.latent_upper_fraction
        lam_ff = block.ff_bits * fits.ff_fit_per_bit
        lam = rates.total
        ff_r, ff_l = _kind_bounds(block, "ff", fits, confidence, (r, lat))
        for option, area in areas[block.name].items():
            option = Option(option)
            match option:
                case Option.NONE:
                    fit, res, latent = lam, lam * r, lam * lat
                case Option.HARDENED:
                    fit = lam - lam_ff + lam_ff * factors.ff_fit_scale
                    res, latent = fit * r, fit * lat
                case Option.DMR:
                    fit, res, latent = 2 * lam, 0.0, 2 * lam * lat
                case Option.TMR:
                    fit, res, latent = 3 * lam, 0.0, 3 * lam * lat
                case Option.PARITY | Option.SECDED:
                    # flip-flops as unprotected; every memory bit (check bits too) read or scrubbed is checked
                    ff, mem = (bits or {}).get(block.name, {}).get(option, (block.ff_bits, block.mem_bits))
                    lam_ff_p = ff * fits.ff_fit_per_bit
                    fit, res, latent = lam_ff_p + mem * fits.mem_fit_per_bit, lam_ff_p * ff_r, lam_ff_p * ff_l
                case _:
                    raise RampartError(f"block {block.name}: no prediction for option {option.value!r}")
            out.append(Candidate(block.name, option, float(area), fit, res, latent))
    return out


def _kind_bounds(block: BlockData, kind: str, fits: FitModel, confidence: float,
                 fallback: tuple[float, float]) -> tuple[float, float]:
    """Upper bounds of the residual and latent fractions of the block's ``kind`` bits alone (the whole block's,
    ``fallback``, when that kind had no injections)."""
    result = block.kind_result(kind)
    if result is None or result.bits.get(BitKind(kind), 0) == 0:
        return fallback
    rates = block_rates(result, fits, confidence=confidence)
    return rates.residual_upper_fraction, rates.latent_upper_fraction


@dataclass(frozen=True)
class Solution:
    """An optimal plan and its predicted figures (conservative, from the baseline)."""

    plan: dict[str, Option]
    area: float
    predicted: MetricSet
    feasible: bool = True
    status: str = ""
    chosen: tuple[Candidate, ...] = field(default=(), repr=False)

    def plan_json(self) -> dict[str, str]:
        return {b: o.value for b, o in sorted(self.plan.items())}


def _metrics(chosen: Sequence[Candidate]) -> MetricSet:
    total = sum(c.fit for c in chosen)
    res = sum(c.residual for c in chosen)
    lat = sum(c.latent for c in chosen)
    spfm = 1 - res / total if total > 0 else math.nan
    lfm = 1 - lat / (total - res) if total - res > 0 else math.nan
    return MetricSet(spfm, lfm, res)


def optimise(cands: Sequence[Candidate], target: AsilTarget | Asil | str | None = None, *,
             spfm_min: float | None = None, lfm_min: float | None = None,
             pmhf_max: float | None = None, time_limit: float = 60.0, mip_rel_gap: float = 1e-4) -> Solution:
    """Minimum-area choice of one candidate per block meeting ``target`` (an ASIL or its targets; or the
    individual bounds, which override it) on the predicted conservative figures.

    Many equal blocks (the PEs of an array) make the branch and bound slow to *prove* optimality: the solver stops
    at ``time_limit`` seconds or within ``mip_rel_gap`` of the optimum; :attr:`Solution.status` says which."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    if target is not None and not isinstance(target, AsilTarget):
        target = ASIL_TARGETS[_asil(target)]
    spfm_min = spfm_min if spfm_min is not None else (target.spfm_min if target else None)
    lfm_min = lfm_min if lfm_min is not None else (target.lfm_min if target else None)
    pmhf_max = pmhf_max if pmhf_max is not None else (target.pmhf_max_fit if target else None)
    blocks = sorted({c.block for c in cands})
    n = len(cands)
    area = np.array([c.area for c in cands])
    fit = np.array([c.fit for c in cands])
    res = np.array([c.residual for c in cands])
    lat = np.array([c.latent for c in cands])
    rows, lo, hi = [], [], []
    for b in blocks:   # exactly one option per block
        rows.append(np.array([1.0 if c.block == b else 0.0 for c in cands]))
        lo.append(1.0)
        hi.append(1.0)
    if spfm_min is not None:    # R - (1 - s) T <= 0
        rows.append(res - (1 - spfm_min) * fit)
        lo.append(-np.inf)
        hi.append(0.0)
    if lfm_min is not None:     # L - (1 - l)(T - R) <= 0
        rows.append(lat - (1 - lfm_min) * (fit - res))
        lo.append(-np.inf)
        hi.append(0.0)
    if pmhf_max is not None:    # R < PMHF_max
        rows.append(res)
        lo.append(-np.inf)
        hi.append(pmhf_max * (1 - 1e-12))
    # scale the area objective to O(1) for the solver's tolerances
    scale = float(area.max()) if n and area.max() > 0 else 1.0
    result = milp(area / scale, integrality=np.ones(n), bounds=Bounds(0, 1),
                  constraints=LinearConstraint(np.array(rows), lo, hi),
                  options={"time_limit": time_limit, "mip_rel_gap": mip_rel_gap})
    if result.x is None:
        return Solution({}, math.inf, MetricSet(math.nan, math.nan, math.nan), False, result.message)
    picked = [c for c, x in zip(cands, result.x, strict=True) if x > 0.5]
    plan = {c.block: c.option for c in picked}
    return Solution(plan, sum(c.area for c in picked), _metrics(picked), True, result.message, tuple(picked))


def _asil(value) -> Asil:
    if isinstance(value, Asil):
        return value
    name = str(value).upper().removeprefix("ASIL-").removeprefix("ASIL ")
    try:
        return Asil[name]
    except KeyError:
        raise RampartError(f"unknown ASIL {value!r} (ASIL-B, ASIL-C or ASIL-D)") from None


def pareto_front(cands: Sequence[Candidate], spfm_targets: Sequence[float] | None = None, *,
                 time_limit: float = 15.0) -> list[Solution]:
    """Minimum area for each SPFM bound (predicted conservative SPFM; no LFM / PMHF bound): the area-vs-SPFM
    front, without dominated or repeated points, by increasing area."""
    if spfm_targets is None:
        spfm_targets = [0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 1.0]
    front: list[Solution] = []
    for s in spfm_targets:
        sol = optimise(cands, spfm_min=s, time_limit=time_limit)
        if sol.feasible:
            front.append(sol)
    front.sort(key=lambda s: (s.area, -s.predicted.spfm))
    out = []
    for sol in front:
        if not out or sol.predicted.spfm > out[-1].predicted.spfm + 1e-12:
            out.append(sol)
    return out


def plot_pareto(front: Sequence[Solution], path, *, unprotected_area: float, lockstep_area: float | None = None,
                verified: Sequence[tuple[float, float]] = (), title: str = "") -> Path:
    """PNG of the front: area overhead (% of the unprotected design) against predicted conservative SPFM; the
    lockstep baseline and verified points (overhead, measured conservative SPFM) if given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [100 * (s.area / unprotected_area - 1) for s in front]
    ys = [100 * s.predicted.spfm for s in front]
    ax.step(xs, ys, where="post", marker="o", label="optimal plans (predicted, conservative)")
    if lockstep_area is not None:
        ax.axvline(100 * (lockstep_area / unprotected_area - 1), color="grey", linestyle="--",
                   label="dual-core lockstep (measured area)")
    if verified:
        ax.scatter([v[0] for v in verified], [100 * v[1] for v in verified], color="red", marker="x", zorder=3,
                   label="verified by re-injection (conservative)")
    ax.axhline(99, color="green", linewidth=0.8, label="ASIL-D SPFM 99 %")
    ax.set_xlabel("area overhead vs unprotected (%)")
    ax.set_ylabel("SPFM (%)")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------------------------------
# Verification by re-injection

def _plan_results(db_path, plan, fits: FitModel, factors: HardeningFactors | None) -> list[BlockResult]:
    """The campaign's blocks as BlockResults, hardened blocks of ``plan`` with their flip-flop FIT scaled by
    ``factors.ff_fit_scale``."""
    factors = factors or HardeningFactors()
    plan = {b: Option(o) for b, o in (plan or {}).items()}
    results = []
    for block in baseline_blocks(db_path):
        scale = 1.0
        if plan.get(block.name) is Option.HARDENED:
            lam_ff = block.ff_bits * fits.ff_fit_per_bit
            lam = lam_ff + block.mem_bits * fits.mem_fit_per_bit
            scale = (lam - lam_ff + lam_ff * factors.ff_fit_scale) / lam if lam > 0 else 1.0
        results.append(block.result(scale))
    return results


def campaign_metrics(db_path, plan: Mapping[str, Option] | None = None, *, confidence: float = 0.95,
                     fits: FitModel | None = None, factors: HardeningFactors | None = None):
    """SafetyMetrics of a campaign (on whatever design it ran), hardened blocks of ``plan`` with their flip-flop
    FIT scaled by ``factors.ff_fit_scale``. Its ``conservative`` set sums every block's own upper bounds (what the
    optimiser predicts with); verdicts use :func:`campaign_assessment`."""
    fits = fits or fit_model()
    return safety_metrics(_plan_results(db_path, plan, fits, factors), fits, confidence=confidence)


def campaign_assessment(db_path, plan: Mapping[str, Option] | None = None, *, confidence: float = 0.95,
                        fits: FitModel | None = None, factors: HardeningFactors | None = None):
    """The campaign's :class:`faultinj.assessment.Assessment` (hardened blocks of ``plan`` scaled as in
    :func:`campaign_metrics`): per-block intervals propagated to the design by stratified bounds, the method the
    report states (:data:`faultinj.assessment.METHOD`). Its ``design.conservative`` is what verdicts use."""
    fits = fits or fit_model()
    return assess(_plan_results(db_path, plan, fits, factors), FitConfig(fit=fits), confidence)


@dataclass(frozen=True)
class Verification:
    """The protected design's re-injection campaign and its verdict on the conservative bounds."""

    plan: dict[str, str]
    db: Path
    metrics: object          # faultinj.safety.SafetyMetrics: per-block bounds (summed: stricter than the design's)
    target: Asil
    passed: bool
    failing: tuple[str, ...]   # metric names that miss the target
    injections: int
    counts: dict[str, int]
    #: The design's metrics with intervals (faultinj.assessment.ScopeMetrics); the verdict is on its conservative end
    design: object = None


def verify_plan(db_path, design: str, config, plan, workload: str, *, target="ASIL-D", samples: int = 20000,
                seed: int = 1, workers: int | None = 1, confidence: float = 0.95, **campaign_kw) -> Verification:
    """Rebuild ``design`` under ``plan`` and inject ``samples`` faults into it (stratified by block); the plan
    meets ``target`` only if the conservative SPFM, LFM and PMHF of this campaign pass (the design's intervals,
    :func:`campaign_assessment`)."""
    from faultinj.campaign import campaign_counts, run_campaign

    asil = _asil(target)
    config = protected_config(design, config, plan)
    run_campaign(db_path, design, config, workload, samples=samples, seed=seed, strata="block", workers=workers,
                 **campaign_kw)
    plan = dict(config.protection)
    metrics = campaign_metrics(db_path, plan, confidence=confidence)
    scope = campaign_assessment(db_path, plan, confidence=confidence).design
    verdict = next(v for v in assess_asil(scope.conservative).verdicts if v.asil is asil)
    failing = tuple(name for name, ok in (("SPFM", verdict.spfm_ok), ("LFM", verdict.lfm_ok),
                                          ("PMHF", verdict.pmhf_ok)) if not ok)
    counts = {o.name.lower(): n for o, n in campaign_counts(db_path).items()}
    return Verification(plan, Path(db_path), metrics, asil, verdict.passed, failing,
                        sum(counts.values()), counts, scope)


def _json_metrics(metrics: MetricSet) -> dict:
    """A MetricSet for JSON (NaN: null)."""
    return {k: (v if math.isfinite(v) else None) for k, v in dataclasses.asdict(metrics).items()}


def write_plan(path, solution: Solution, *, design: str, config, target: str, baseline_db=None,
               verification: Verification | None = None, extra: Mapping | None = None) -> Path:
    """The plan as JSON: ``{"design", "config", "target", "plan": {block: option}, "area_ge", "predicted":
    {spfm, lfm, pmhf_fit}, "verified": null | {"passed", "failing", "db", "injections", "conservative": ...}}``."""
    data = {
        "design": design, "config": repr(config), "target": target, "plan": solution.plan_json(),
        "area_ge": solution.area if math.isfinite(solution.area) else None,
        "baseline_db": None if baseline_db is None else str(baseline_db),
        "predicted": _json_metrics(solution.predicted),
        "verified": None,
    }
    if verification is not None:
        data["verified"] = {"passed": verification.passed, "failing": list(verification.failing),
                            "db": str(verification.db), "injections": verification.injections,
                            "counts": verification.counts, "method": METHOD,
                            "conservative": dataclasses.asdict(verification.design.conservative),
                            "point": dataclasses.asdict(verification.design.point),
                            "per_block_sum": dataclasses.asdict(verification.metrics.conservative)}
    data.update(extra or {})
    path = Path(path)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def read_plan(path) -> dict[str, str]:
    """The ``plan`` of a plan JSON file, checked."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise RampartError(f"cannot read protection plan {path}: {e}") from None
    try:
        return dict(normalise_plan(data["plan"]))
    except (KeyError, TypeError, ValueError) as e:
        raise RampartError(f"{path}: not a protection plan ({e})") from None


# --------------------------------------------------------------------------------------------------------------------
# The whole step: baseline -> areas -> plan -> rebuild -> verification

def protect_design(out_dir, design: str, config, workload: str, *, target="ASIL-D", baseline_samples: int = 20000,
                   verify_samples: int = 20000, seed: int = 0, workers: int | None = 1, confidence: float = 0.95,
                   baseline_db=None, lockstep: bool = True, max_rounds: int = 3, area_abc: bool = True,
                   campaign_kw: Mapping | None = None, options: Sequence[Option] = LOGIC_OPTIONS,
                   measure_protected: bool = True) -> dict:
    """Optimise and verify a protection plan for ``design`` / ``config`` running ``workload``; files in
    ``out_dir``: ``baseline.db`` (unless ``baseline_db`` is given), ``plan.json``, ``verify.db``, ``pareto.json``,
    ``pareto.png``, ``area.json``. Returns the summary written to ``plan.json``; its ``seconds`` says where this
    call's wall time went (baseline campaign, block areas, optimisation, unprotected and lockstep areas, and per
    verification round the protected build and its campaign; a resumed step takes only its look-up).

    ``options`` limits the options considered (e.g. without ``tmr`` to save a synthesis of a large design);
    ``measure_protected=False`` takes the protected design's area as the sum of its blocks' measured areas (exact
    up to the top's error OR gates, since blocks are synthesised alone) instead of synthesising it again.

    The plan is verified by re-injection; when a metric misses, its bound is tightened by how far the measured
    conservative figure fell short of the prediction and the optimiser runs again (up to ``max_rounds``
    verifications, each its own database ``verify<n>.db``). Resumable: campaigns resume from their databases and
    areas come from the synthesis cache.
    """
    from faultinj.campaign import run_campaign
    from sim.area import AreaModel, measure_area
    from sim.build import build

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entry = get_design(design)
    config = protected_config(design, entry.config(config), {})
    asil = _asil(target)
    clock = _StepClock()
    if baseline_db is None:
        baseline_db = out / "baseline.db"
        run_campaign(baseline_db, design, config, workload, samples=baseline_samples, seed=seed, strata="block",
                     workers=workers, **(campaign_kw or {}))
    clock.step("baseline_campaign")
    blocks = baseline_blocks(baseline_db)
    allowed = {Option(o) for o in options} | {Option.NONE}
    memories = [b.name for b in blocks if b.mem_bits]
    options = {b: tuple(o for o in opts if o in allowed)
               for b, opts in wrappable_blocks(design, [b.name for b in blocks], memories).items()}
    bits: dict = {}
    areas = block_areas(design, config, options, abc=area_abc, bits=bits)
    clock.step("block_areas")
    cands = candidates(blocks, areas, confidence=confidence, bits=bits)
    solution = optimise(cands, asil)
    front = pareto_front(cands)
    clock.step("optimisation")
    model = AreaModel()
    scaffolding = tuple(entry.scaffolding)
    unprotected = measure_area(design, config, abc=area_abc)
    area_doc = {"model": dataclasses.asdict(model), "hardening": dataclasses.asdict(HardeningFactors()),
                "unprotected": unprotected.as_dict(model), "per_option_ge": {
                    b: {o.value: round(a, 2) for o, a in opts.items()} for b, opts in sorted(areas.items())}}
    base_ge = unprotected.ge(model, exclude=scaffolding)
    summary: dict = {"unprotected_ge": base_ge}
    if lockstep:
        ls = measure_area(design, protected_config(design, config, {"*": Option.LOCKSTEP}), abc=area_abc)
        # lockstep duplicates the scaffolding too (it is inside the top): leave both copies out
        summary["lockstep_ge"] = ls.ge(model, exclude=scaffolding)
        summary["lockstep_overhead"] = summary["lockstep_ge"] / base_ge - 1
        area_doc["lockstep"] = ls.as_dict(model)
    clock.step("unprotected_and_lockstep_areas")
    verification, rounds = None, []
    bounds = {"spfm_min": ASIL_TARGETS[asil].spfm_min, "lfm_min": ASIL_TARGETS[asil].lfm_min,
              "pmhf_max": ASIL_TARGETS[asil].pmhf_max_fit}
    for attempt in range(max_rounds):
        if not solution.feasible:
            break
        if measure_protected:
            protected = measure_area(design, protected_config(design, config, solution.plan), abc=area_abc)
            area_doc["protected"] = protected.as_dict(model)
            # hardened flip-flops are the same cells in the netlist: their area factor is applied on top
            hardened_extra = sum(protected.blocks[b].ff_bits * model.ff_ge * (HardeningFactors().ff_area - 1)
                                 for b, o in solution.plan.items() if o is Option.HARDENED)
            summary["protected_ge"] = protected.ge(model, exclude=scaffolding) + hardened_extra
        else:
            summary["protected_ge"] = base_ge - sum(areas[b][Option.NONE] for b in areas) + solution.area
        summary["protected_area_measured"] = measure_protected
        summary["protected_overhead"] = summary["protected_ge"] / base_ge - 1
        db = out / ("verify.db" if attempt == 0 else f"verify{attempt}.db")
        clock.step(f"round{attempt}_protected_area")
        build(design, protected_config(design, config, solution.plan))    # (the campaign's build: cached)
        clock.step(f"round{attempt}_protected_build")
        verification = verify_plan(db, design, config, solution.plan, workload, target=asil,
                                   samples=verify_samples, seed=seed + 1 + attempt, workers=workers,
                                   confidence=confidence, **(campaign_kw or {}))
        clock.step(f"round{attempt}_verification_campaign")
        rounds.append({"bounds": dict(bounds), "plan": solution.plan_json(), "area_ge": summary["protected_ge"],
                       "predicted": _json_metrics(solution.predicted), "passed": verification.passed,
                       "failing": list(verification.failing),
                       "measured": dataclasses.asdict(verification.design.conservative)})
        if verification.passed or attempt + 1 == max_rounds:
            break   # (re-optimising after the last round would write a plan that was never verified)
        tighter = _tightened(bounds, solution.predicted, verification.design.conservative)
        if tighter == bounds:   # nothing to tighten (e.g. a bound limited by the verification's sample size)
            break
        bounds = tighter
        solution = optimise(cands, **bounds)
    summary["rounds"] = rounds
    summary["seconds"] = clock.seconds
    (out / "area.json").write_text(json.dumps(area_doc, indent=1, default=str) + "\n")
    # the options' areas cover every sampled block; the design's other cells (scaffolding excluded) are fixed
    fixed = base_ge - sum(areas[b][Option.NONE] for b in areas)
    pareto = [{"area_ge": s.area + fixed, "overhead": (s.area + fixed) / base_ge - 1,
               "predicted": dataclasses.asdict(s.predicted), "plan": s.plan_json()} for s in front]
    (out / "pareto.json").write_text(json.dumps(pareto, indent=1) + "\n")
    verified = []
    if verification is not None:
        verified.append((100 * summary["protected_overhead"], verification.design.conservative.spfm))
    plot_pareto([dataclasses.replace(s, area=s.area + fixed) for s in front], out / "pareto.png",
                unprotected_area=base_ge, lockstep_area=summary.get("lockstep_ge"), verified=verified,
                title=f"{design} {config_name(design, config)}: area vs SPFM")
    summary.update({
        "meets_target": bool(verification is not None and verification.passed),
        "baseline": dataclasses.asdict(campaign_assessment(baseline_db, confidence=confidence).design.conservative),
    })
    write_plan(out / "plan.json", solution, design=design, config=config, target=asil.name, baseline_db=baseline_db,
               verification=verification, extra={"summary": summary, "solver_status": solution.status})
    return json.loads((out / "plan.json").read_text())


class _StepClock:
    """Wall seconds per named step (each step ends where the next begins)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._last = time.monotonic()

    def step(self, name: str):
        now = time.monotonic()
        self.seconds[name] = round(now - self._last, 1)
        self._last = now


def _tightened(bounds: dict, predicted: MetricSet, measured: MetricSet) -> dict:
    """Bounds for the next round: each metric that came out worse than predicted gets its slack (1 - SPFM_min,
    1 - LFM_min, PMHF_max) scaled by predicted / measured shortfall, and 10 % more."""
    out = dict(bounds)
    for key, pred, meas in (("spfm_min", 1 - predicted.spfm, 1 - measured.spfm),
                            ("lfm_min", 1 - predicted.lfm, 1 - measured.lfm)):
        if meas > pred > 0:
            out[key] = 1 - (1 - bounds[key]) * pred / meas * 0.9
    if measured.pmhf > predicted.pmhf > 0:
        out["pmhf_max"] = bounds["pmhf_max"] * predicted.pmhf / measured.pmhf * 0.9
    return out


def config_name(design: str, config) -> str:
    """The preset name of ``config`` (ignoring its protection plan), else its repr."""
    entry = get_design(design)
    bare = protected_config(design, config, {}) if hasattr(config, "protection") else config
    return next((name for name, c in entry.presets.items() if c == bare), repr(bare))
