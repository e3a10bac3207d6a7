"""ISO 26262-5 assessment with intervals: SPFM, LFM, PMHF and diagnostic coverage per functional block and for the
whole design, propagated from the per-block (per-cell) injection counts, and pass/fail per ASIL on the conservative
end of every interval, naming the metric(s) that fail.

Inputs are :class:`faultinj.safety.BlockResult` (a block's bits, its outcome counts and, for a stratified
campaign, its cells) and a :class:`faultinj.fit.FitConfig` (raw FIT per bit, per-block overrides, the
outcome -> class table). Outcomes enter only through that table, so a new outcome is one row of it.

Method (the report states it):

* Every cell ``h`` (a stratum of a block; a block without strata is one cell) gets the weight
  ``w_h = λ_b N_h / N_b``: its block's raw FIT ``λ_b`` split over the block's cells by population. For a block,
  only its own cells count; for the design, the cells of every safety-related block.
* A class's λ-weighted fraction ``F = sum w_h k_h / n_h / sum w_h`` (``k_h`` of ``n_h`` injections of the cell in
  that class) is a stratified proportion with weights ``w_h``; its interval is the stratified Agresti-Coull interval
  of :func:`faultinj.stats.stratified_proportion` with those weights (per-cell finite-population factors when the
  population is known, else 1). This propagates the per-block intervals to the design exactly as the strata of a
  stratified sample: no bootstrap, no Bonferroni over blocks.
* ``SPFM = 1 - F_residual``: interval ``[1 - high, 1 - low]`` at the confidence ``c``.
* ``LFM = 1 - F_latent / (1 - F_residual)``. A scope of one cell (a block of a block-stratified or pooled campaign):
  given the number ``m`` of its injections that are not residual, the latent ones among them are binomial, so the
  LFM is one minus that proportion and gets its Agresti-Coull interval (``k_latent`` of ``m``) directly. Several
  cells (the design; a block over several strata): the bounds combine the latent and residual bounds, each taken at
  ``1 - (1 - c) / 2`` so that the LFM bound holds at ``c`` (Bonferroni over the two), clipped to [0, 1].
* ``PMHF = λ F_residual (+ λ F_latent λ_SM 1e-9 T_lifetime)`` FIT, the bounds of ``F`` scaled (with a dual-point
  term, each at ``1 - (1 - c) / 2``).
* Single-point vs residual: a block's residual-class λ counts as λ_RF when a safety mechanism covers the block
  (the FIT config's ``safety_mechanism``; by default, when any of its injections was detected), else as λ_SPF.
  Both enter SPFM and PMHF alike; the split is reported (point estimates).
* Diagnostic coverage: ``DC = F_detected / (1 - F_safe)``, the share of the unsafe failure rate a mechanism
  detected (interval: one cell, directly on the detected share of its unsafe injections; several, Bonferroni over
  the detected and safe bounds); ``DC_latent = (F_detected + F_perceived) / (F_detected + F_perceived + F_latent)``.

Verdicts use the conservative ends: the lower bounds of SPFM and LFM and the upper bound of PMHF.
"""
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faultinj.fit import FitConfig, IsoClass
from faultinj.outcomes import Outcome
from faultinj.safety import ASIL_TARGETS, Asil, BlockResult, MetricSet
from faultinj.stats import _z

__all__ = ["Bound", "ScopeMetrics", "AsilCheck", "Assessment", "assess", "asil_checks", "weighted_interval",
           "METHOD", "raw_fit", "counts_total"]

#: One sentence for reports.
METHOD = ("Intervals propagated by stratified bounds: every cell (a block's stratum) weighted by its block's raw FIT "
          "times its share of the block's population, stratified Agresti-Coull interval over the cells; LFM bounds "
          "over several cells combine the latent and residual bounds each at 1-(1-c)/2 (Bonferroni), so every bound "
          "holds at the stated confidence c; a block of one stratum gets its LFM interval directly from its latent "
          "share among its non-residual injections.")


@dataclass(frozen=True)
class Bound:
    """A point estimate and its two-sided interval."""

    estimate: float
    low: float
    high: float

    def as_dict(self) -> dict:
        return {"estimate": _clean(self.estimate), "low": _clean(self.low), "high": _clean(self.high)}


def _clean(x: float) -> float | None:
    """JSON-safe: NaN -> None, -0.0 -> 0.0."""
    return None if x is None or math.isnan(x) else x + 0.0


def weighted_interval(k, n, weights, fpc, confidence: float) -> Bound:
    """Stratified estimate ``sum W_h k_h / n_h`` (``W`` = ``weights`` normalised) and its stratified Agresti-Coull
    interval: stratum ``h`` gets ``a_h = f_h z^2 n_h / sum n`` pseudo-trials, half of them events, and the interval
    is ``sum W_h c_h +/- z sqrt(sum W_h^2 f_h c_h (1 - c_h) / (n_h + a_h))`` with ``c_h = (k_h + a_h/2)/(n_h + a_h)``,
    clipped to [0, 1] and widened to contain the estimate (as :func:`faultinj.stats.stratified_proportion`, whose
    weights are populations)."""
    k, n = np.asarray(k, dtype=float), np.asarray(n, dtype=float)
    w, f = np.asarray(weights, dtype=float), np.asarray(fpc, dtype=float)
    if w.sum() <= 0:
        return Bound(math.nan, 0.0, 1.0)
    w = w / w.sum()
    estimate = float(np.dot(w, k / n))
    z2 = _z(confidence) ** 2
    pseudo = f * z2 * n / n.sum()
    n_t = n + pseudo
    c = (k + pseudo / 2) / n_t
    centre = float(np.dot(w, c))
    half = math.sqrt(z2 * float(np.sum(w * w * f * c * (1 - c) / n_t)))
    return Bound(estimate, min(max(centre - half, 0.0), estimate), max(min(centre + half, 1.0), estimate))


@dataclass(frozen=True)
class ScopeMetrics:
    """The metrics of one scope (a block, or the design): λ, class fractions, SPFM, LFM, PMHF with intervals."""

    name: str
    #: Raw FIT λ of the scope (safety-related blocks only for the design).
    fit: float
    injections: int
    #: λ-weighted fraction of each ISO class (IsoClass names), with its interval at the confidence.
    fractions: dict[str, Bound]
    spfm: Bound
    lfm: Bound
    pmhf: Bound
    dc: float
    dc_latent: float
    #: λ_SPF and λ_RF (point estimates, FIT): the residual-class λ of blocks without / with a safety mechanism.
    spf_fit: float = 0.0
    rf_fit: float = 0.0
    #: ``dc`` with its interval at the confidence.
    dc_interval: Bound | None = None

    @property
    def point(self) -> MetricSet:
        return MetricSet(self.spfm.estimate, self.lfm.estimate, self.pmhf.estimate)

    @property
    def conservative(self) -> MetricSet:
        return MetricSet(self.spfm.low, self.lfm.low, self.pmhf.high)

    @property
    def derated_fit(self) -> Bound:
        """FIT that is not safe: ``λ (1 - F_safe)`` with its interval."""
        s = self.fractions[IsoClass.SAFE]
        return Bound(self.fit * (1 - s.estimate), self.fit * (1 - s.high), self.fit * (1 - s.low))

    def as_dict(self) -> dict:
        return {"name": self.name, "fit": self.fit, "injections": self.injections,
                "fractions": {c: b.as_dict() for c, b in self.fractions.items()},
                "spfm": self.spfm.as_dict(), "lfm": self.lfm.as_dict(), "pmhf_fit": self.pmhf.as_dict(),
                "derated_fit": self.derated_fit.as_dict(), "dc": _clean(self.dc), "dc_latent": _clean(self.dc_latent),
                "spf_fit": self.spf_fit + 0.0, "rf_fit": self.rf_fit + 0.0,
                "dc_interval": self.dc_interval.as_dict() if self.dc_interval else None}


@dataclass(frozen=True)
class AsilCheck:
    """One ASIL's verdict on a MetricSet, with the metrics that miss their targets."""

    asil: Asil
    passed: bool
    #: e.g. ("SPFM 98.12 % < 99 %", "PMHF 12.3 FIT >= 10 FIT"); empty when passed.
    failing: tuple[str, ...]

    @property
    def failing_metrics(self) -> tuple[str, ...]:
        """Just the names of the failing metrics, e.g. ("SPFM", "PMHF")."""
        return tuple(f.split()[0] for f in self.failing)

    def as_dict(self) -> dict:
        return {"asil": self.asil.name, "passed": self.passed, "failing": list(self.failing),
                "failing_metrics": list(self.failing_metrics)}


def asil_checks(metrics: MetricSet) -> tuple[AsilCheck, ...]:
    """Pass/fail per ASIL (B, C, D), naming each failing metric; NaN never passes."""
    out = []
    for asil, t in sorted(ASIL_TARGETS.items()):
        failing = []
        if not metrics.spfm >= t.spfm_min:
            failing.append(f"SPFM {_pct(metrics.spfm)} < {t.spfm_min:.0%}")
        if not metrics.lfm >= t.lfm_min:
            failing.append(f"LFM {_pct(metrics.lfm)} < {t.lfm_min:.0%}")
        if not metrics.pmhf < t.pmhf_max_fit:
            failing.append(f"PMHF {metrics.pmhf:.4g} FIT >= {t.pmhf_max_fit:g} FIT")
        out.append(AsilCheck(asil, not failing, tuple(failing)))
    return tuple(out)


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x + 0.0:.2f} %"


@dataclass(frozen=True)
class Assessment:
    """Per-block and design metrics; ``design`` covers the safety-related blocks."""

    blocks: tuple[ScopeMetrics, ...]
    design: ScopeMetrics
    confidence: float
    fit_config: FitConfig
    #: Blocks left out of the design metrics (``safety_related = false`` in the FIT config).
    excluded: tuple[str, ...] = ()

    @property
    def checks(self) -> tuple[AsilCheck, ...]:
        """Verdicts on the design's conservative metrics (what rampart reports)."""
        return asil_checks(self.design.conservative)

    @property
    def point_checks(self) -> tuple[AsilCheck, ...]:
        return asil_checks(self.design.point)

    @property
    def highest(self) -> Asil | None:
        return max((c.asil for c in self.checks if c.passed), default=None)

    def as_dict(self) -> dict:
        return {"confidence": self.confidence, "method": METHOD, "design": self.design.as_dict(),
                "blocks": [b.as_dict() for b in self.blocks], "excluded_blocks": list(self.excluded),
                "asil_conservative": [c.as_dict() for c in self.checks],
                "asil_point": [c.as_dict() for c in self.point_checks],
                "highest_asil_conservative": self.highest.name if self.highest else None}


def _cells(block: BlockResult, lam: float):
    """(weight, population or None, counts) per cell of ``block``."""
    if not block.strata:
        return [(lam, None, block.counts)]
    total = sum(size for size, _ in block.strata)
    return [(lam * size / total, size, counts) for size, counts in block.strata]


def _scope(name: str, cells: list, fit: float, config: FitConfig, confidence: float) -> ScopeMetrics:
    n = np.array([sum(c.values()) for _, _, c in cells], dtype=float)
    if np.any(n < 1):
        raise ValueError(f"{name}: every cell needs an injection")
    w = np.array([wt for wt, _, _ in cells], dtype=float)
    fpc = np.array([1.0 if size is None or size <= 1 else max(0.0, (size - m) / (size - 1))
                    for (_, size, _), m in zip(cells, n, strict=True)])

    def events(cls: str) -> np.ndarray:
        outcomes = config.classes.outcomes(cls)
        return np.array([sum(c[o] for o in outcomes) for _, _, c in cells], dtype=float)

    k = {cls: events(cls) for cls in IsoClass.ALL}
    fractions = {cls: weighted_interval(k[cls], n, w, fpc, confidence) for cls in IsoClass.ALL}
    joint = 1 - (1 - confidence) / 2
    res_j = weighted_interval(k[IsoClass.RESIDUAL], n, w, fpc, joint)
    lat_j = weighted_interval(k[IsoClass.LATENT], n, w, fpc, joint)
    res, lat = fractions[IsoClass.RESIDUAL], fractions[IsoClass.LATENT]
    spfm = Bound(1 - res.estimate, 1 - res.high, 1 - res.low)
    lfm = Bound(_lfm(lat.estimate, res.estimate), _lfm(lat_j.high, res_j.high), _lfm(lat_j.low, res_j.low))
    rest = n - k[IsoClass.RESIDUAL]
    if len(cells) == 1 and rest[0] > 0:
        # one cell: among its non-residual injections the latent count is binomial (given their number), so the
        # LFM is one minus that proportion; an interval on it directly is valid and much tighter than Bonferroni
        q = weighted_interval(k[IsoClass.LATENT], rest, w, fpc, confidence)
        lfm = Bound(1 - q.estimate, 1 - q.high, 1 - q.low)
    dual = config.sm_fit * 1e-9 * config.lifetime_hours
    if dual > 0:
        pmhf = Bound(fit * (res.estimate + dual * lat.estimate), fit * (res_j.low + dual * lat_j.low),
                     fit * (res_j.high + dual * lat_j.high))
    else:
        pmhf = Bound(fit * res.estimate, fit * res.low, fit * res.high)
    safe, det = fractions[IsoClass.SAFE].estimate, fractions[IsoClass.DETECTED].estimate
    per = fractions[IsoClass.PERCEIVED].estimate
    unsafe = 1 - safe
    mpf = det + per + lat.estimate
    dc = det / unsafe if unsafe > 1e-15 else math.nan
    return ScopeMetrics(name, fit, int(n.sum()), fractions, spfm, lfm, pmhf, dc,
                        (det + per) / mpf if mpf > 1e-15 else math.nan,
                        dc_interval=_dc_interval(dc, k, n, w, fpc, confidence))


def _dc_interval(dc: float, k: dict, n, w, fpc, confidence: float) -> Bound:
    """DC = detected / not safe: one cell, the detected share of its unsafe injections (binomial given their
    number); several cells, detected and safe bounds each at 1 - (1 - c)/2 (Bonferroni)."""
    if math.isnan(dc):
        return Bound(math.nan, 0.0, 1.0)
    unsafe = n - k[IsoClass.SAFE]
    if len(n) == 1:
        return weighted_interval(k[IsoClass.DETECTED], unsafe, w, fpc, confidence)
    joint = 1 - (1 - confidence) / 2
    det = weighted_interval(k[IsoClass.DETECTED], n, w, fpc, joint)
    safe = weighted_interval(k[IsoClass.SAFE], n, w, fpc, joint)
    low = det.low / (1 - safe.low) if safe.low < 1 else 0.0
    high = det.high / (1 - safe.high) if safe.high < 1 else 1.0
    return Bound(dc, min(max(low, 0.0), dc), max(min(high, 1.0), dc))


def _lfm(latent: float, residual: float) -> float:
    rest = 1 - residual
    if rest <= 1e-15:
        return math.nan
    return min(1.0, max(0.0, 1 - latent / rest))


def raw_fit(block: BlockResult, config: FitConfig) -> float:
    """``block``'s raw FIT λ: bits x the config's FIT per bit for the block x protection scale (the config's
    override for the block, else the block's own ``protection_fit_scale``)."""
    model = config.block_fit(block.name)
    bits = sum(n * model.per_bit(kind) for kind, n in block.bits.items())
    return bits * config.protection_scale(block.name, block.protection_fit_scale)


def assess(blocks: Sequence[BlockResult], config: FitConfig | None = None, confidence: float = 0.95) -> Assessment:
    """Per-block and design metrics of ``blocks`` (each with injections) under ``config`` (module docstring)."""
    config = config or FitConfig()
    blocks = [b for b in blocks if b.injections]
    if not blocks:
        raise ValueError("no block has injections")
    scopes, design_cells, design_fit, excluded, spf, rf = [], [], 0.0, [], 0.0, 0.0
    detected = config.classes.outcomes(IsoClass.DETECTED)
    for block in blocks:
        lam = raw_fit(block, config)
        cells = _cells(block, lam)
        scope = _scope(block.name, cells, lam, config, confidence)
        mechanism = config.safety_mechanism(block.name)
        if mechanism is None:
            mechanism = block.count_of(detected) > 0
        residual = scope.fit * scope.fractions[IsoClass.RESIDUAL].estimate
        scope = dataclasses.replace(scope, spf_fit=0.0 if mechanism else residual,
                                    rf_fit=residual if mechanism else 0.0)
        scopes.append(scope)
        if config.safety_related(block.name):
            design_cells += cells
            design_fit += lam
            spf += scope.spf_fit
            rf += scope.rf_fit
        else:
            excluded.append(block.name)
    if not design_cells:
        raise ValueError("no safety-related block has injections")
    if design_fit <= 0:
        design_cells = [(1.0, size, counts) for _, size, counts in design_cells]
    design = dataclasses.replace(_scope("design", design_cells, design_fit, config, confidence), spf_fit=spf,
                                 rf_fit=rf)
    return Assessment(tuple(scopes), design, confidence, config, tuple(excluded))


def counts_total(blocks: Sequence[BlockResult]) -> dict[Outcome, int]:
    out = dict.fromkeys(Outcome, 0)
    for b in blocks:
        for o, n in b.counts.items():
            out[o] += n
    return out
