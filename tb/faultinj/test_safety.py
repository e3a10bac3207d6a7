"""faultinj.outcomes and faultinj.safety: ISO 26262 mapping, FIT model, SPFM / LFM / PMHF, ASIL verdicts, FMEDA."""
import csv
import io
import math

import numpy as np
import pytest
from scipy.stats import beta

from faultinj.outcomes import (
    FAILURES,
    FaultClass,
    Outcome,
    fault_class,
    is_failure,
    normalize_counts,
    outcomes_of,
    rate_counts,
)
from faultinj.safety import (
    ASIL_TARGETS,
    DEFAULT_FF_FIT_PER_BIT,
    DEFAULT_MEM_FIT_PER_BIT,
    FMEDA_COLUMNS,
    Asil,
    BlockResult,
    FitModel,
    MetricSet,
    assess_asil,
    fmeda_rows,
    safety_metrics,
)

O = Outcome

# --------------------------------------------------------------------------------------------------------------------
# Outcomes


def test_outcome_mapping():
    assert FAILURES == set(Outcome) - {O.MASKED}
    assert not is_failure(O.MASKED) and is_failure("sdc") and is_failure(4)
    assert fault_class(O.MASKED) is FaultClass.SAFE
    assert fault_class(O.SDC) is FaultClass.RESIDUAL
    assert fault_class(O.DETECTED_RECOVERABLE) is fault_class(O.DETECTED_UNRECOVERABLE) is FaultClass.DETECTED
    assert fault_class(O.LATENT) is FaultClass.LATENT
    assert fault_class(O.HANG) is FaultClass.RESIDUAL
    assert fault_class(O.HANG, watchdog_detects_hang=True) is FaultClass.DETECTED
    assert fault_class(O.DELAYED) is FaultClass.RESIDUAL     # the next inference's outputs wrong: a violation
    assert outcomes_of(FaultClass.RESIDUAL) == {O.SDC, O.HANG, O.DELAYED}
    assert outcomes_of(FaultClass.RESIDUAL, watchdog_detects_hang=True) == {O.SDC, O.DELAYED}
    # Every outcome lands in exactly one class.
    for watchdog in (False, True):
        classes = [outcomes_of(c, watchdog_detects_hang=watchdog) for c in FaultClass]
        assert sum(len(c) for c in classes) == len(Outcome) and set().union(*classes) == set(Outcome)


def test_counts_normalisation_and_rate_columns():
    assert normalize_counts({"masked": 5, O.SDC: 2, 5: 1}) == {
        O.MASKED: 5, O.SDC: 2, O.DETECTED_RECOVERABLE: 0, O.DETECTED_UNRECOVERABLE: 0, O.HANG: 0, O.LATENT: 1,
        O.DELAYED: 0}
    with pytest.raises(ValueError, match="unknown outcome"):
        normalize_counts({"crash": 1})
    with pytest.raises(ValueError, match="given twice"):
        normalize_counts({"sdc": 1, O.SDC: 2})
    with pytest.raises(ValueError, match=">= 0"):
        normalize_counts({"sdc": -1})
    names, counts = rate_counts([{"masked": 8, "sdc": 1, "hang": 1}, {"latent": 3, "detected_recoverable": 2}])
    assert names == ("unmasked", "sdc", "detected", "hang", "latent")
    assert counts.tolist() == [[2, 1, 0, 1, 0], [5, 0, 2, 0, 3]]
    assert counts.dtype == np.int64


# --------------------------------------------------------------------------------------------------------------------
# FIT model and blocks


def test_fit_model_defaults_and_block_fit():
    assert DEFAULT_MEM_FIT_PER_BIT == 1e-3 and DEFAULT_FF_FIT_PER_BIT == 1e-3
    assert FitModel().per_bit("mem") == 1e-3
    model = FitModel(ff_fit_per_bit=5e-4, mem_fit_per_bit=2e-3)
    block = BlockResult("pe", {"ff": 1000, "mem": 500}, {O.MASKED: 3, O.SDC: 1}, protection_fit_scale=0.5)
    # raw = (1000 * 5e-4 + 500 * 2e-3) * 0.5 = 0.75 FIT; unmasked 1/4 -> 0.1875 FIT
    assert block.raw_fit(model) == pytest.approx(0.75)
    assert block.fit(model) == pytest.approx(0.1875)
    assert block.injections == 4
    with pytest.raises(ValueError):
        BlockResult("x", {"sram": 10}, {})
    with pytest.raises(ValueError, match="bits"):
        BlockResult("x", {"ff": -1}, {})
    with pytest.raises(ValueError, match="protection_fit_scale"):
        BlockResult("x", {"ff": 1}, {}, protection_fit_scale=-1)
    with pytest.raises(ValueError, match="ff_fit_per_bit"):
        FitModel(ff_fit_per_bit=math.inf)
    with pytest.raises(ValueError, match="no injections"):
        safety_metrics([BlockResult("empty", {"ff": 10}, {})])


# --------------------------------------------------------------------------------------------------------------------
# Hand-worked three-block example
#
# FIT model: flip-flops 5e-4 FIT/bit, memory 1e-3 FIT/bit. No watchdog: HANG counts as residual.
#
#   block        bits          scale  λ (FIT)                 n     residual (SDC+HANG)  detected (DR+DU)  latent
#   pe_array     ff 20,000     1      20,000 x 5e-4 = 10      1000  30+10 = 40 -> 0.04   150+20 -> 0.17    90 -> 0.09
#   weight_sram  mem 40,000    1      40,000 x 1e-3 = 40      1000  5         -> 0.005   80     -> 0.08    15 -> 0.015
#   ctrl         ff 4,000      0.5    4,000 x 5e-4 x .5 = 1    500  100+50    -> 0.3     0                 50 -> 0.1
#
#   λ_SPF+RF  = 10 x 0.04 + 40 x 0.005 + 1 x 0.3 = 0.4 + 0.2 + 0.3 = 0.9 FIT;  Σλ = 51 FIT
#   λ_latent  = 10 x 0.09 + 40 x 0.015 + 1 x 0.1 = 0.9 + 0.6 + 0.1 = 1.6 FIT
#   SPFM = 1 - 0.9 / 51         = 0.98235294  (>= 97 %: C, < 99 %: not D)
#   LFM  = 1 - 1.6 / (51 - 0.9) = 0.96806387  (>= 90 %: D)
#   PMHF = 0.9 FIT              (< 10: D)      -> highest ASIL at the point estimate: C
#   block FIT (unmasked): pe_array 10 x 0.3 = 3.0, weight_sram 40 x 0.1 = 4.0, ctrl 1 x 0.4 = 0.4
#
# With a watchdog that detects hangs: residual = 10 x 0.03 + 0.2 + 1 x 0.2 = 0.7 FIT,
#   SPFM = 1 - 0.7 / 51 = 0.98627451, LFM = 1 - 1.6 / 50.3 = 0.96819085, PMHF = 0.7 FIT.

MODEL = FitModel(ff_fit_per_bit=5e-4, mem_fit_per_bit=1e-3)
BLOCKS = [
    BlockResult("pe_array", {"ff": 20_000}, {O.MASKED: 700, O.SDC: 30, O.DETECTED_RECOVERABLE: 150,
                                             O.DETECTED_UNRECOVERABLE: 20, O.HANG: 10, O.LATENT: 90}),
    BlockResult("weight_sram", {"mem": 40_000}, {O.MASKED: 900, O.SDC: 5, O.DETECTED_RECOVERABLE: 80,
                                                 O.LATENT: 15}),
    BlockResult("ctrl", {"ff": 4_000}, {O.MASKED: 300, O.SDC: 100, O.HANG: 50, O.LATENT: 50},
                protection_fit_scale=0.5),
]


def test_metrics_point_estimate_by_hand():
    m = safety_metrics(BLOCKS, MODEL)
    assert m.total_fit == pytest.approx(51.0)
    assert m.point.spfm == pytest.approx(0.98235294, abs=1e-8)
    assert m.point.lfm == pytest.approx(0.96806387, abs=1e-8)
    assert m.point.pmhf == pytest.approx(0.9)
    assert [b.unmasked for b in m.blocks] == pytest.approx([3.0, 4.0, 0.4])
    assert [b.residual for b in m.blocks] == pytest.approx([0.4, 0.2, 0.3])
    verdict = assess_asil(m.point)
    assert verdict.highest is Asil.C
    assert verdict.passed(Asil.B) and verdict.passed(Asil.C) and not verdict.passed(Asil.D)
    d = next(v for v in verdict.verdicts if v.asil is Asil.D)
    assert (d.spfm_ok, d.lfm_ok, d.pmhf_ok) == (False, True, True)


def test_metrics_with_watchdog_by_hand():
    m = safety_metrics(BLOCKS, MODEL, watchdog_detects_hang=True)
    assert m.point.spfm == pytest.approx(0.98627451, abs=1e-8)
    assert m.point.lfm == pytest.approx(0.96819085, abs=1e-8)
    assert m.point.pmhf == pytest.approx(0.7)


def test_metrics_conservative_bounds():
    # Conservative end: Clopper-Pearson 95 % upper bounds of each block's residual and latent fractions,
    # u(k, n) = Beta.ppf(0.975, k + 1, n - k), computed here straight from the beta distribution.
    def u(k, n):
        return beta.ppf(0.975, k + 1, n - k)

    lam = [10.0, 40.0, 1.0]
    res = [u(40, 1000), u(5, 1000), u(150, 500)]
    lat = [u(90, 1000), u(15, 1000), u(50, 500)]
    residual = sum(a * b for a, b in zip(lam, res, strict=True))
    latent = sum(a * b for a, b in zip(lam, lat, strict=True))
    m = safety_metrics(BLOCKS, MODEL, confidence=0.95, method="clopper-pearson")
    assert m.conservative.spfm == pytest.approx(1 - residual / 51, rel=1e-9)
    assert m.conservative.lfm == pytest.approx(1 - latent / (51 - residual), rel=1e-9)
    assert m.conservative.pmhf == pytest.approx(residual, rel=1e-9)
    assert m.conservative.spfm < m.point.spfm and m.conservative.lfm < m.point.lfm
    assert m.conservative.pmhf > m.point.pmhf
    # Wilson bounds are narrower than Clopper-Pearson, so less conservative but still below the point estimate.
    w = safety_metrics(BLOCKS, MODEL, method="wilson")
    assert m.conservative.spfm < w.conservative.spfm < w.point.spfm


def test_clean_campaign_too_small_for_asil_d():
    # One block, 10 FIT (10,000 ff bits at 1e-3), 100 injections: 90 masked, 10 detected, nothing residual/latent.
    # Point: SPFM = LFM = 100 %, PMHF = 0 -> ASIL D.
    # Conservative (CP 95 %, k = 0): u = 1 - 0.025^(1/100) = 1 - exp(-0.0368888) = 0.0362167
    #   SPFM = 1 - u = 0.9637833 (B only), PMHF = 10 u = 0.362167 FIT
    #   LFM  = 1 - u / (1 - u) = 1 - 0.0362167 / 0.9637833 = 1 - 0.0375776 = 0.9624224
    block = BlockResult("clean", {"ff": 10_000}, {O.MASKED: 90, O.DETECTED_RECOVERABLE: 10})
    m = safety_metrics([block])
    assert (m.point.spfm, m.point.lfm, m.point.pmhf) == (1.0, 1.0, 0.0)
    assert assess_asil(m.point).highest is Asil.D
    assert m.conservative.spfm == pytest.approx(0.9637833, abs=1e-7)
    assert m.conservative.lfm == pytest.approx(0.9624224, abs=1e-7)
    assert m.conservative.pmhf == pytest.approx(0.362167, abs=1e-6)
    assert assess_asil(m.conservative).highest is Asil.B


def test_pmhf_dual_point_term():
    # λ_SM = 100 FIT over 10,000 h: 1.6 FIT latent x 100 x 1e-9 x 1e4 = 0.0016 FIT on top of 0.9.
    m = safety_metrics(BLOCKS, MODEL, sm_fit=100.0, lifetime_hours=10_000.0)
    assert m.point.pmhf == pytest.approx(0.9016)


def test_asil_targets_and_boundaries():
    assert ASIL_TARGETS[Asil.B].spfm_min == 0.90 and ASIL_TARGETS[Asil.C].lfm_min == 0.80
    assert ASIL_TARGETS[Asil.D].pmhf_max_fit == 10.0 and ASIL_TARGETS[Asil.B].pmhf_max_fit == 100.0
    assert assess_asil(MetricSet(0.99, 0.90, 9.99)).highest is Asil.D
    assert assess_asil(MetricSet(0.99, 0.90, 10.0)).highest is Asil.C  # PMHF must be strictly below 10 FIT
    assert assess_asil(MetricSet(0.97, 0.80, 99.0)).highest is Asil.C
    assert assess_asil(MetricSet(0.98, 0.70, 50.0)).highest is Asil.B
    assert assess_asil(MetricSet(0.95, 0.95, 100.0)).highest is None
    assert assess_asil(MetricSet(0.89, 0.95, 1.0)).highest is None
    assert assess_asil(MetricSet(0.999, math.nan, 1.0)).highest is None


def test_fmeda_rows():
    rows = fmeda_rows(BLOCKS, MODEL)
    assert [r["block"] for r in rows] == ["pe_array", "weight_sram", "ctrl"]
    assert all(tuple(r) == FMEDA_COLUMNS for r in rows)
    pe = rows[0]
    assert (pe["ff_bits"], pe["mem_bits"], pe["injections"], pe["sdc"], pe["hang"]) == (20_000, 0, 1000, 30, 10)
    assert pe["lambda_fit"] == pytest.approx(10.0)
    assert pe["lambda_spf_rf_fit"] == pytest.approx(0.4)
    assert pe["lambda_mpf_detected_fit"] == pytest.approx(1.7)
    assert pe["lambda_mpf_latent_fit"] == pytest.approx(0.9)
    assert pe["block_fit"] == pytest.approx(3.0)
    # DC: residual 1 - 0.04 / 0.3 = 0.866667; latent 1 - 0.09 / (0.3 - 0.04) = 0.653846
    assert pe["dc_residual"] == pytest.approx(0.8666667, abs=1e-7)
    assert pe["dc_latent"] == pytest.approx(0.6538462, abs=1e-7)
    assert pe["lambda_spf_rf_upper_fit"] > pe["lambda_spf_rf_fit"]
    assert rows[2]["dc_latent"] == pytest.approx(0.0, abs=1e-12)  # ctrl detects nothing: every MPF is latent
    assert pe["hang_counts_as"] == "residual" and pe["interval_method"] == "clopper-pearson"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FMEDA_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    back = list(csv.DictReader(io.StringIO(buf.getvalue())))
    assert len(back) == 3 and float(back[1]["lambda_fit"]) == pytest.approx(40.0)


def test_stratified_block_fractions():
    """A block sampled unevenly over two strata: its fractions are the strata's fractions weighted by their
    populations (by hand), not the pooled counts; bounds from the stratified interval; FMEDA says so."""
    small = {O.MASKED: 10, O.SDC: 90}          # population 1,000: 90 % residual
    big = {O.MASKED: 95, O.LATENT: 5}          # population 9,000: 0 % residual, 5 % latent
    pooled = {O.MASKED: 105, O.SDC: 90, O.LATENT: 5}
    block = BlockResult("b", {"ff": 100}, pooled, strata=((1000, small), (9000, big)))
    flat = BlockResult("b", {"ff": 100}, pooled)
    m = safety_metrics([block], MODEL)
    r = m.blocks[0]
    assert r.residual_fraction == pytest.approx(0.1 * 0.9)
    assert r.latent_fraction == pytest.approx(0.9 * 0.05)
    assert r.safe_fraction == pytest.approx(0.1 * 0.1 + 0.9 * 0.95)
    assert r.safe_fraction + r.residual_fraction + r.detected_fraction + r.latent_fraction == pytest.approx(1)
    assert block.fit(MODEL) == pytest.approx(r.total * (1 - r.safe_fraction))
    assert safety_metrics([flat], MODEL).blocks[0].residual_fraction == pytest.approx(0.45)
    from faultinj.stats import stratified_proportion

    upper = stratified_proportion([90, 0], [100, 100], [1000, 9000], 0.95).high
    assert r.residual_upper_fraction == pytest.approx(upper)
    assert r.residual_fraction < r.residual_upper_fraction < 0.45
    assert fmeda_rows([block], MODEL)[0]["interval_method"] == "stratified agresti-coull"
    with pytest.raises(ValueError, match="do not add up"):
        BlockResult("b", {"ff": 1}, pooled, strata=((1000, small),))
    with pytest.raises(ValueError, match="every stratum needs"):
        BlockResult("b", {"ff": 1}, {}, strata=((1000, {}),))
