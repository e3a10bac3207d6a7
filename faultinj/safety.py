"""ISO 26262-5 hardware metrics from fault-injection counts: FIT model, SPFM, LFM, PMHF, ASIL verdicts, FMEDA rows.

Per block ``b`` with raw failure rate ``λ_b = sum_kind bits x raw FIT per bit x protection scale`` and outcome
fractions from its injections (mapping in :mod:`faultinj.outcomes`):

* ``λ_SPF+RF = λ_b f_residual``, ``λ_MPF,det = λ_b f_detected``, ``λ_MPF,lat = λ_b f_latent``, ``λ_safe = λ_b f_masked``
* block FIT (derated) = ``λ_b x (1 - f_masked)``
* SPFM = 1 - sum λ_SPF+RF / sum λ
* LFM  = 1 - sum λ_MPF,lat / sum (λ - λ_SPF+RF)
* PMHF = sum λ_SPF+RF  (+ an optional dual-point term ``sum λ_MPF,lat x λ_SM x 1e-9 x T_lifetime`` in FIT,
  omitted unless ``sm_fit`` and ``lifetime_hours`` are given)

Every block is treated as safety-related. The metrics are computed twice: at the point estimates, and on the
conservative end of each block's confidence interval: the upper bounds of ``f_residual`` and ``f_latent``
(``f_latent`` capped at ``1 - f_residual_upper``). Each block's bound holds at the stated confidence on its own;
they are not adjusted for simultaneity. rampart's verdicts use the conservative metrics and say so. The report
propagates the per-block intervals to the design by stratified bounds instead (:mod:`faultinj.assessment`).

A block's counts are assumed to come from injections spread uniformly over its bits, unless its ``strata`` are
given: then every fraction is the block's stratified estimate (each stratum's fraction weighted by its population,
:func:`faultinj.stats.stratified_proportion`) and its upper bound the stratified Agresti-Coull interval's, which is
right also when the strata were sampled unevenly (iterative Neyman rounds). If its flip-flops and memories have
different raw FIT (and different masking), give them as two blocks (e.g. ``pe0.ff`` and ``pe0.mem``).
"""
import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from faultinj.outcomes import FaultClass, Outcome, normalize_counts, outcomes_of
from faultinj.stats import IntervalMethod, proportion_interval, stratified_proportion

__all__ = [
    "DEFAULT_MEM_FIT_PER_BIT", "DEFAULT_FF_FIT_PER_BIT", "BitKind", "FitModel", "BlockResult", "BlockRates",
    "block_rates", "MetricSet", "SafetyMetrics", "safety_metrics",
    "Asil", "AsilTarget", "ASIL_TARGETS", "AsilVerdict", "AsilAssessment", "assess_asil",
    "FMEDA_COLUMNS", "fmeda_rows",
]

#: Raw SRAM soft-error rate, FIT per bit: 1e-3 FIT/bit = 1,000 FIT/Mbit, the middle of the ~700-1,200 FIT/Mbit
#: published for modern nodes (../shared/research/faultinj.md, "Raw soft-error rates"). Override per technology.
DEFAULT_MEM_FIT_PER_BIT = 1e-3
#: Raw flip-flop soft-error rate, FIT per bit. Assumption, not a measurement: per-bit flip-flop SER is
#: technology-specific and published figures are of the same order as SRAM per bit, so rampart defaults to the same
#: 1e-3 FIT/bit (faultinj.md: "take it as an input with a documented default of the same order"). Replace it with the
#: foundry's figure for the target node; hardened flip-flops are modelled with ``protection_fit_scale``.
DEFAULT_FF_FIT_PER_BIT = 1e-3


class BitKind(enum.StrEnum):
    """Kinds of state bits a fault can hit (each has its own raw FIT per bit)."""

    #: Flip-flops (registers).
    FF = "ff"
    #: Memory bits (SRAM / register-file macros).
    MEM = "mem"


@dataclass(frozen=True)
class FitModel:
    """Raw soft-error rate per bit, in FIT (failures per 1e9 device hours), by bit kind. Defaults documented above."""

    ff_fit_per_bit: float = DEFAULT_FF_FIT_PER_BIT
    mem_fit_per_bit: float = DEFAULT_MEM_FIT_PER_BIT

    def __post_init__(self):
        for name in ("ff_fit_per_bit", "mem_fit_per_bit"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, float | int) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")

    def per_bit(self, kind: BitKind | str) -> float:
        return self.ff_fit_per_bit if BitKind(kind) is BitKind.FF else self.mem_fit_per_bit


@dataclass(frozen=True, eq=False)
class BlockResult:
    """Injection results for one block (an rtl/ submodule, or one bit kind of it).

    Parameters
    ----------
    name : str
        Block name.
    bits : mapping of BitKind (or "ff" / "mem") to int
        State bits of each kind in the block.
    counts : mapping of Outcome (or its name / value) to int
        Injections per outcome; missing outcomes count 0.
    protection_fit_scale : float
        Multiplies the raw FIT (e.g. 0.1 for hardened flip-flops); 1.0 when unprotected.
    strata : sequence of (population, counts)
        Optional: the block's strata (e.g. its cells of a stratified campaign), each its population (faults) and
        its outcome counts; they must add up to ``counts``, and each needs an injection. Empty: pooled counts.
    """

    name: str
    bits: Mapping[BitKind, int]
    counts: Mapping[Outcome, int]
    protection_fit_scale: float = 1.0
    strata: tuple = ()

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"name must be a non-empty str, not {self.name!r}")
        if not isinstance(self.bits, Mapping):
            raise TypeError(f"bits must be a mapping of kind -> count, not {self.bits!r}")
        bits = {}
        for kind, count in self.bits.items():
            kind = BitKind(kind)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"bits[{kind.value!r}] must be an int >= 0, not {count!r}")
            bits[kind] = bits.get(kind, 0) + count
        scale = self.protection_fit_scale
        if isinstance(scale, bool) or not isinstance(scale, float | int) or not math.isfinite(scale) or scale < 0:
            raise ValueError(f"protection_fit_scale must be a finite number >= 0, not {scale!r}")
        object.__setattr__(self, "bits", MappingProxyType(bits))
        object.__setattr__(self, "counts", MappingProxyType(normalize_counts(self.counts)))
        object.__setattr__(self, "strata", self._check_strata(self.strata))

    def _check_strata(self, strata) -> tuple:
        out = []
        for size, counts in strata:
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"block {self.name!r}: a stratum population must be an int >= 1, not {size!r}")
            counts = normalize_counts(counts)
            if not 1 <= sum(counts.values()) <= size:
                raise ValueError(f"block {self.name!r}: every stratum needs 1 to {size} injections, "
                                 f"not {sum(counts.values())}")
            out.append((size, MappingProxyType(counts)))
        if out and any(sum(c[o] for _, c in out) != self.counts[o] for o in Outcome):
            raise ValueError(f"block {self.name!r}: the strata's counts do not add up to the block's counts")
        return tuple(out)

    @property
    def injections(self) -> int:
        return sum(self.counts.values())

    def raw_fit(self, fit_model: FitModel | None = None) -> float:
        """``sum_kind bits x raw FIT per bit x protection scale``: the block's λ before derating."""
        fit_model = fit_model or FitModel()
        return sum(n * fit_model.per_bit(kind) for kind, n in self.bits.items()) * self.protection_fit_scale

    def count_of(self, outcomes) -> int:
        return sum(self.counts[o] for o in outcomes)

    def unmasked_fraction(self) -> float:
        """Point estimate of the unmasked fraction (stratified when the block has strata)."""
        n = self._require_injections()
        if not self.strata:
            return (n - self.counts[Outcome.MASKED]) / n
        total = sum(size for size, _ in self.strata)
        return sum(size * (1 - c[Outcome.MASKED] / sum(c.values())) for size, c in self.strata) / total

    def fit(self, fit_model: FitModel | None = None) -> float:
        """Block FIT = bits x raw FIT x unmasked fraction (point estimate)."""
        return self.raw_fit(fit_model) * self.unmasked_fraction()

    def _require_injections(self) -> int:
        n = self.injections
        if n == 0:
            raise ValueError(f"block {self.name!r} has no injections; its rates are unknown")
        return n


@dataclass(frozen=True)
class BlockRates:
    """One block's raw FIT and its split into ISO 26262 fault classes (fractions of its injections).

    The ``*_upper`` fractions are the upper confidence bounds used for the conservative metrics; the latent one is
    capped at ``1 - residual_upper_fraction``. The λ properties are in FIT.
    """

    name: str
    injections: int
    #: λ: raw FIT (bits x FIT/bit x protection scale).
    total: float
    safe_fraction: float
    residual_fraction: float
    residual_upper_fraction: float
    detected_fraction: float
    latent_fraction: float
    latent_upper_fraction: float
    #: The latent fraction's own upper bound, not capped (what an FMEDA "upper" column shows: never below the point).
    latent_high_fraction: float = math.nan

    @property
    def safe(self) -> float:
        return self.total * self.safe_fraction

    @property
    def residual(self) -> float:
        """λ_SPF + λ_RF (point estimate)."""
        return self.total * self.residual_fraction

    @property
    def residual_upper(self) -> float:
        return self.total * self.residual_upper_fraction

    @property
    def detected(self) -> float:
        """λ_MPF,detected."""
        return self.total * self.detected_fraction

    @property
    def latent(self) -> float:
        """λ_MPF,latent (point estimate)."""
        return self.total * self.latent_fraction

    @property
    def latent_upper(self) -> float:
        return self.total * self.latent_upper_fraction

    @property
    def unmasked(self) -> float:
        """Derated block FIT: λ x unmasked fraction."""
        return self.total * (1 - self.safe_fraction)


def _class_fractions(block: BlockResult, confidence: float, method: IntervalMethod,
                     watchdog_detects_hang: bool) -> dict[FaultClass, tuple[float, float]]:
    """(estimate, upper bound) of each fault class's fraction of the block: stratified when it has strata."""
    sets = {c: outcomes_of(c, watchdog_detects_hang=watchdog_detects_hang) for c in FaultClass}
    if block.strata:
        sizes = [size for size, _ in block.strata]
        samples = [sum(c.values()) for _, c in block.strata]
        out = {}
        for cls, outcomes in sets.items():
            k = [sum(c[o] for o in outcomes) for _, c in block.strata]
            est = stratified_proportion(k, samples, sizes, confidence)
            out[cls] = (est.estimate, est.high)
        return out
    n = block._require_injections()
    return {cls: (block.count_of(outcomes) / n,
                  proportion_interval(block.count_of(outcomes), n, confidence, method).high)
            for cls, outcomes in sets.items()}


def block_rates(block: BlockResult, fit_model: FitModel | None = None, *, confidence: float = 0.95,
                method: IntervalMethod | str = IntervalMethod.CLOPPER_PEARSON,
                watchdog_detects_hang: bool = False) -> BlockRates:
    """Split ``block``'s raw FIT into fault classes, with upper bounds for the residual and latent parts.

    With ``block.strata`` the fractions are stratified estimates and the bounds stratified Agresti-Coull ones
    (``method`` then does not apply)."""
    n = block._require_injections()
    frac = _class_fractions(block, confidence, IntervalMethod(method), watchdog_detects_hang)
    res_hi = frac[FaultClass.RESIDUAL][1]
    lat_hi = min(frac[FaultClass.LATENT][1], 1 - res_hi)
    return BlockRates(
        name=block.name, injections=n, total=block.raw_fit(fit_model),
        safe_fraction=frac[FaultClass.SAFE][0],
        residual_fraction=frac[FaultClass.RESIDUAL][0], residual_upper_fraction=res_hi,
        detected_fraction=frac[FaultClass.DETECTED][0],
        latent_fraction=frac[FaultClass.LATENT][0], latent_upper_fraction=lat_hi,
        latent_high_fraction=frac[FaultClass.LATENT][1],
    )


@dataclass(frozen=True)
class MetricSet:
    """SPFM and LFM as fractions in [0, 1] (NaN when undefined), PMHF in FIT."""

    spfm: float
    lfm: float
    pmhf: float


@dataclass(frozen=True)
class SafetyMetrics:
    """ISO 26262-5 metrics at the point estimate and on the conservative end of every block's interval."""

    point: MetricSet
    #: Upper bounds of each block's residual and latent fractions; what verdicts should use.
    conservative: MetricSet
    blocks: tuple[BlockRates, ...]
    confidence: float
    method: IntervalMethod
    watchdog_detects_hang: bool

    @property
    def total_fit(self) -> float:
        return sum(b.total for b in self.blocks)


def _metric_set(total: float, residual: float, latent: float, dual: float) -> MetricSet:
    spfm = 1 - residual / total if total > 0 else math.nan
    rest = total - residual
    # clipped: the capped latent bound can exceed ``rest`` by rounding, which printed as "-0.000 %"
    lfm = min(1.0, max(0.0, 1 - latent / rest)) if rest > 0 else math.nan
    return MetricSet(spfm, lfm, residual + dual)


def safety_metrics(blocks: Sequence[BlockResult], fit_model: FitModel | None = None, *, confidence: float = 0.95,
                   method: IntervalMethod | str = IntervalMethod.CLOPPER_PEARSON, watchdog_detects_hang: bool = False,
                   sm_fit: float = 0.0, lifetime_hours: float = 0.0) -> SafetyMetrics:
    """SPFM, LFM and PMHF over ``blocks`` (formulas in the module docstring).

    Parameters
    ----------
    blocks : sequence of BlockResult
        The safety-related blocks; each must have injections.
    fit_model : FitModel, optional
        Raw FIT per bit; the documented defaults when omitted.
    confidence, method :
        Interval for each block's residual and latent fractions (Clopper-Pearson by default: conservative).
    watchdog_detects_hang : bool
        Count HANG as detected instead of residual.
    sm_fit, lifetime_hours : float
        Safety-mechanism FIT and vehicle lifetime for the dual-point PMHF term; 0 omits the term.
    """
    if not blocks:
        raise ValueError("no blocks given")
    if sm_fit < 0 or lifetime_hours < 0:
        raise ValueError(f"sm_fit and lifetime_hours must be >= 0, not {sm_fit!r}, {lifetime_hours!r}")
    method = IntervalMethod(method)
    rates = tuple(block_rates(b, fit_model, confidence=confidence, method=method,
                              watchdog_detects_hang=watchdog_detects_hang) for b in blocks)
    total = sum(r.total for r in rates)
    dual = sm_fit * 1e-9 * lifetime_hours
    point = _metric_set(total, sum(r.residual for r in rates), sum(r.latent for r in rates),
                        dual * sum(r.latent for r in rates))
    cons = _metric_set(total, sum(r.residual_upper for r in rates), sum(r.latent_upper for r in rates),
                       dual * sum(r.latent_upper for r in rates))
    return SafetyMetrics(point, cons, rates, confidence, method, watchdog_detects_hang)


# --------------------------------------------------------------------------------------------------------------------
# ASIL targets

class Asil(enum.IntEnum):
    """Automotive Safety Integrity Levels with hardware-metric targets (ISO 26262-5); higher is stricter."""

    #: ASIL B: SPFM >= 90 %, LFM >= 60 %, PMHF < 100 FIT.
    B = 2
    #: ASIL C: SPFM >= 97 %, LFM >= 80 %, PMHF < 100 FIT.
    C = 3
    #: ASIL D: SPFM >= 99 %, LFM >= 90 %, PMHF < 10 FIT.
    D = 4


@dataclass(frozen=True)
class AsilTarget:
    spfm_min: float
    lfm_min: float
    #: PMHF must be strictly below this, in FIT.
    pmhf_max_fit: float


#: ISO 26262-5 targets per ASIL.
ASIL_TARGETS: Mapping[Asil, AsilTarget] = MappingProxyType({
    Asil.B: AsilTarget(0.90, 0.60, 100.0),
    Asil.C: AsilTarget(0.97, 0.80, 100.0),
    Asil.D: AsilTarget(0.99, 0.90, 10.0),
})


@dataclass(frozen=True)
class AsilVerdict:
    asil: Asil
    spfm_ok: bool
    lfm_ok: bool
    pmhf_ok: bool

    @property
    def passed(self) -> bool:
        return self.spfm_ok and self.lfm_ok and self.pmhf_ok


@dataclass(frozen=True)
class AsilAssessment:
    """Pass/fail per ASIL for one MetricSet, and the highest ASIL whose targets all pass (None if none)."""

    verdicts: tuple[AsilVerdict, ...]
    highest: Asil | None

    def passed(self, asil: Asil) -> bool:
        return next(v.passed for v in self.verdicts if v.asil is Asil(asil))


def assess_asil(metrics: MetricSet, targets: Mapping[Asil, AsilTarget] = ASIL_TARGETS) -> AsilAssessment:
    """Compare ``metrics`` with each ASIL's targets: SPFM >= min, LFM >= min, PMHF < max. NaN never passes.

    Pass ``SafetyMetrics.conservative`` for a verdict on the conservative bounds (what rampart reports).
    """
    verdicts = tuple(
        AsilVerdict(asil, metrics.spfm >= t.spfm_min, metrics.lfm >= t.lfm_min, metrics.pmhf < t.pmhf_max_fit)
        for asil, t in sorted(targets.items()))
    highest = max((v.asil for v in verdicts if v.passed), default=None)
    return AsilAssessment(verdicts, highest)


# --------------------------------------------------------------------------------------------------------------------
# FMEDA

#: Column order of :func:`fmeda_rows` (for ``csv.DictWriter(fieldnames=FMEDA_COLUMNS)``). FIT columns are in FIT;
#: fractions in [0, 1]; ``*_upper`` columns are the upper ends of the block's intervals (never below the point value;
#: the latent one is not capped by the residual bound as the conservative metrics' is).
FMEDA_COLUMNS: tuple[str, ...] = (
    "block", "ff_bits", "mem_bits", "ff_fit_per_bit", "mem_fit_per_bit", "protection_fit_scale",
    "injections", *(o.name.lower() for o in Outcome),
    "lambda_fit", "lambda_safe_fit", "lambda_spf_rf_fit", "lambda_spf_rf_upper_fit",
    "lambda_mpf_detected_fit", "lambda_mpf_latent_fit", "lambda_mpf_latent_upper_fit", "block_fit",
    "safe_fraction", "residual_fraction", "residual_fraction_upper", "latent_fraction", "latent_fraction_upper",
    "dc_residual", "dc_latent", "confidence", "interval_method", "hang_counts_as",
)


def fmeda_rows(blocks: Sequence[BlockResult], fit_model: FitModel | None = None, *, confidence: float = 0.95,
               method: IntervalMethod | str = IntervalMethod.CLOPPER_PEARSON,
               watchdog_detects_hang: bool = False) -> list[dict[str, object]]:
    """One FMEDA row per block (keys :data:`FMEDA_COLUMNS`), ready for ``csv.DictWriter``.

    ``dc_residual = 1 - λ_SPF+RF / (λ - λ_safe)`` and ``dc_latent = 1 - λ_MPF,lat / (λ - λ_safe - λ_SPF+RF)``
    (point estimates); None (an empty CSV cell) when the denominator is 0.
    """
    fit_model = fit_model or FitModel()
    method = IntervalMethod(method)
    rows = []
    for block in blocks:
        r = block_rates(block, fit_model, confidence=confidence, method=method,
                        watchdog_detects_hang=watchdog_detects_hang)
        unsafe = 1 - r.safe_fraction
        mpf = unsafe - r.residual_fraction
        rows.append({
            "block": block.name,
            "ff_bits": block.bits.get(BitKind.FF, 0),
            "mem_bits": block.bits.get(BitKind.MEM, 0),
            "ff_fit_per_bit": fit_model.ff_fit_per_bit,
            "mem_fit_per_bit": fit_model.mem_fit_per_bit,
            "protection_fit_scale": block.protection_fit_scale,
            "injections": r.injections,
            **{o.name.lower(): block.counts[o] for o in Outcome},
            "lambda_fit": r.total,
            "lambda_safe_fit": r.safe,
            "lambda_spf_rf_fit": r.residual,
            "lambda_spf_rf_upper_fit": r.residual_upper,
            "lambda_mpf_detected_fit": r.detected,
            "lambda_mpf_latent_fit": r.latent,
            "lambda_mpf_latent_upper_fit": r.total * r.latent_high_fraction,
            "block_fit": r.unmasked,
            "safe_fraction": r.safe_fraction,
            "residual_fraction": r.residual_fraction,
            "residual_fraction_upper": r.residual_upper_fraction,
            "latent_fraction": r.latent_fraction,
            "latent_fraction_upper": r.latent_high_fraction,
            "dc_residual": 1 - r.residual_fraction / unsafe if unsafe > 0 else None,
            "dc_latent": 1 - r.latent_fraction / mpf if mpf > 0 else None,
            "confidence": confidence,
            "interval_method": "stratified agresti-coull" if block.strata else method.value,
            "hang_counts_as": (FaultClass.DETECTED if watchdog_detects_hang else FaultClass.RESIDUAL).value,
        })
    return rows
