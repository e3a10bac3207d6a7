"""faultinj.fit (FIT assumptions from TOML) and faultinj.assessment (SPFM / LFM / PMHF with propagated intervals)."""
import math

import numpy as np
import pytest

from base import RampartError
from faultinj.assessment import asil_checks, assess, weighted_interval
from faultinj.fit import DEFAULT_TECHNOLOGY, TECHNOLOGIES, ClassMap, FitConfig, IsoClass, load_fit_config
from faultinj.outcomes import Outcome
from faultinj.safety import Asil, BlockResult, MetricSet, fmeda_rows, safety_metrics
from faultinj.stats import proportion_interval, stratified_proportion

O = Outcome


def test_default_technology_is_named_and_sourced():
    config = FitConfig()
    assert config.technology == DEFAULT_TECHNOLOGY in TECHNOLOGIES
    assert config.fit.mem_fit_per_bit == 1e-3 and config.fit.ff_fit_per_bit == 1e-3
    assert any("IEC 61508" in s for s in config.sources)
    assert TECHNOLOGIES["generic-1200fit-mbit"].mem_fit_per_bit == pytest.approx(1.2e-3)
    assert config.classes.of(O.HANG) == IsoClass.RESIDUAL and config.classes.of(O.LATENT) == IsoClass.LATENT


def test_fit_config_toml_overrides(tmp_path):
    path = tmp_path / "fit.toml"
    path.write_text("""
[fit]
technology = "generic-1200fit-mbit"
mem_fit_per_bit = 5e-4
source = "foundry report 7"
[fit.blocks.mac]
ff_fit_per_bit = 1e-4
protection_fit_scale = 0.5
[fit.blocks.dbg]
safety_related = false
[classes]
hang = "mpf-detected"
[pmhf]
sm_fit = 10.0
lifetime_hours = 1e4
""")
    config = load_fit_config(path)
    assert config.fit.ff_fit_per_bit == pytest.approx(1.2e-3) and config.fit.mem_fit_per_bit == 5e-4
    assert "overridden" in config.technology and "foundry report 7" in config.sources[0]
    assert config.block_fit("mac").ff_fit_per_bit == 1e-4 and config.block_fit("mac").mem_fit_per_bit == 5e-4
    assert config.protection_scale("mac") == 0.5 and config.protection_scale("other") == 1.0
    assert not config.safety_related("dbg") and config.safety_related("mac")
    assert config.classes.of(O.HANG) == IsoClass.DETECTED
    assert config.describe()["file"] == str(path)
    # raw FIT of a block under the config: 1000 ff x 1e-4 x 0.5 + 2000 mem x 5e-4 x 0.5 = 0.05 + 0.5
    mac = BlockResult("mac", {"ff": 1000, "mem": 2000}, {O.MASKED: 9, O.SDC: 1})
    dbg = BlockResult("dbg", {"ff": 10**6}, {O.SDC: 10})
    a = assess([mac, dbg], config)
    assert a.blocks[0].fit == pytest.approx(0.55)
    assert a.excluded == ("dbg",) and a.design.fit == pytest.approx(0.55)   # dbg left out of the design


@pytest.mark.parametrize("text, message", [
    ("[fit]\ntechnology = 'nope'", "unknown technology"),
    ("[fit]\nff_fit_per_bit = -1", "finite number >= 0"),
    ("[fit]\ncolour = 1", "unknown key"),
    ("[classes]\nsdc = 'fine'", "unknown ISO 26262 class"),
    ("[classes]\nbogus = 'safe'", "unknown outcome"),
    ("[fit.blocks.x]\nsafety_related = 3", "true or false"),
    ("[fit", "malformed TOML"),
])
def test_fit_config_refuses_bad_input(tmp_path, text, message):
    path = tmp_path / "fit.toml"
    path.write_text(text)
    with pytest.raises(RampartError, match=message):
        load_fit_config(path)


def test_class_map_needs_every_outcome():
    with pytest.raises(RampartError, match="no ISO 26262 class for outcome"):
        ClassMap({"masked": "safe"})


def test_single_pooled_block_is_agresti_coull():
    block = BlockResult("b", {"ff": 10_000}, {O.MASKED: 80, O.SDC: 12, O.LATENT: 8})
    a = assess([block], confidence=0.9)
    ac = proportion_interval(12, 100, 0.9, "agresti-coull")
    res = a.design.fractions[IsoClass.RESIDUAL]
    assert (res.estimate, res.low, res.high) == pytest.approx((ac.estimate, ac.low, ac.high))
    assert a.design.spfm.low == pytest.approx(1 - ac.high) and a.design.pmhf.high == pytest.approx(10 * ac.high)
    # one cell: LFM = 1 - (latent share of the 88 non-residual injections), its interval directly
    q = proportion_interval(8, 88, 0.9, "agresti-coull")
    assert a.design.lfm.estimate == pytest.approx(1 - 0.08 / 0.88)
    assert (a.design.lfm.low, a.design.lfm.high) == pytest.approx((1 - q.high, 1 - q.low))
    assert a.blocks[0].dc == 0.0 and a.blocks[0].dc_latent == 0.0


def test_design_lfm_bounds_are_bonferroni_over_cells():
    # λ 1 : 3 (1,000 and 3,000 ff bits); stratified_proportion with populations in that ratio (and so large that the
    # finite-population factors are 1 to 1e-9) gives the same λ-weighted intervals, computed by other code
    a_ = BlockResult("a", {"ff": 1000}, {O.MASKED: 80, O.SDC: 12, O.LATENT: 8})
    b_ = BlockResult("b", {"ff": 3000}, {O.MASKED: 90, O.SDC: 2, O.LATENT: 8})
    a = assess([a_, b_], confidence=0.9)
    sizes = [10 ** 12, 3 * 10 ** 12]
    res = stratified_proportion([12, 2], [100, 100], sizes, 0.95).interval       # each at 1 - 0.1/2
    lat = stratified_proportion([8, 8], [100, 100], sizes, 0.95).interval
    r, la = (0.12 + 3 * 0.02) / 4, (0.08 + 3 * 0.08) / 4
    assert a.design.lfm.estimate == pytest.approx(1 - la / (1 - r))
    assert a.design.lfm.low == pytest.approx(1 - lat.high / (1 - res.high), abs=1e-6)
    assert a.design.lfm.high == pytest.approx(1 - lat.low / (1 - res.low), abs=1e-6)
    spfm = stratified_proportion([12, 2], [100, 100], sizes, 0.9).interval
    assert a.design.spfm.low == pytest.approx(1 - spfm.high, abs=1e-6)


def test_stratified_block_matches_stratified_proportion():
    strata = ((1000, {O.MASKED: 10, O.SDC: 90}), (9000, {O.MASKED: 95, O.LATENT: 5}))
    block = BlockResult("b", {"ff": 100}, {O.MASKED: 105, O.SDC: 90, O.LATENT: 5}, strata=strata)
    a = assess([block])
    want = stratified_proportion([90, 0], [100, 100], [1000, 9000], 0.95).interval
    res = a.blocks[0].fractions[IsoClass.RESIDUAL]
    assert (res.estimate, res.low, res.high) == pytest.approx((want.estimate, want.low, want.high))


def test_design_weights_blocks_by_fit():
    # a: 1 FIT (1000 ff bits), 20 % residual; b: 9 FIT (9000 mem bits), 0 % residual -> design 2 %
    a_ = BlockResult("a", {"ff": 1000}, {O.MASKED: 80, O.SDC: 20})
    b_ = BlockResult("b", {"mem": 9000}, {O.MASKED: 50, O.DETECTED_UNRECOVERABLE: 50})
    a = assess([a_, b_])
    assert a.design.fit == pytest.approx(10.0)
    assert a.design.fractions[IsoClass.RESIDUAL].estimate == pytest.approx(0.02)
    assert a.design.spfm.estimate == pytest.approx(0.98) and a.design.pmhf.estimate == pytest.approx(0.2)
    assert a.design.dc == pytest.approx(0.45 / (0.02 + 0.45))
    for scope in (*a.blocks, a.design):
        for bound in (scope.spfm, scope.lfm, scope.pmhf, *scope.fractions.values()):
            assert bound.low <= bound.estimate <= bound.high
        assert 0 <= scope.lfm.low and scope.lfm.high <= 1


def test_conservative_bound_covers_in_simulation():
    """Two blocks, true residual rates 2 % and 0.3 %, λ 1 : 4, 400 injections each: the 95 % conservative SPFM is
    below the true SPFM in >= 95 % of 1,000 simulated campaigns (one-sided: nominally 97.5 %)."""
    rng = np.random.default_rng(5)
    p, lam, n = np.array([0.02, 0.003]), np.array([1.0, 4.0]), 400
    true_spfm = 1 - float(np.dot(lam, p) / lam.sum())
    covered = 0
    for _ in range(1000):
        k = rng.binomial(n, p)
        res = weighted_interval(k, [n, n], lam, [1.0, 1.0], 0.95)
        covered += 1 - res.high <= true_spfm
    assert covered >= 950


def test_lfm_never_negative_and_checks_name_failing_metrics():
    block = BlockResult("b", {"ff": 10_000}, {O.SDC: 1, O.LATENT: 99})
    a = assess([block])
    assert a.design.lfm.estimate == 0.0 and a.design.lfm.low == 0.0 and math.copysign(1, a.design.lfm.low) == 1
    checks = {c.asil: c for c in asil_checks(MetricSet(0.985, 0.95, 12.0))}
    assert checks[Asil.B].passed and checks[Asil.C].passed
    assert not checks[Asil.D].passed
    assert checks[Asil.D].failing == ("SPFM 98.50 % < 99%", "PMHF 12 FIT >= 10 FIT")
    assert asil_checks(MetricSet(math.nan, 0.95, 1.0))[0].failing == ("SPFM n/a < 90%",)


def test_safety_fmeda_upper_columns_never_below_point():
    # 96 % latent: the conservative metric caps latent at 1 - residual upper (< 96 %); the FMEDA column must not
    block = BlockResult("b", {"mem": 1000}, {O.MASKED: 2, O.SDC: 2, O.LATENT: 96})
    row = fmeda_rows([block])[0]
    assert row["latent_fraction_upper"] >= row["latent_fraction"] == 0.96
    assert row["lambda_mpf_latent_upper_fit"] >= row["lambda_mpf_latent_fit"]
    assert row["residual_fraction_upper"] >= row["residual_fraction"]
    m = safety_metrics([block])
    assert m.conservative.lfm >= 0.0 and math.copysign(1, m.conservative.lfm) == 1


def test_single_point_versus_residual_split():
    # a: no detection seen -> no mechanism -> its residual λ is single-point; b: detects -> residual (RF)
    a_ = BlockResult("a", {"ff": 1000}, {O.MASKED: 80, O.SDC: 20})                                  # 1 FIT x 0.2
    b_ = BlockResult("b", {"ff": 2000}, {O.MASKED: 80, O.SDC: 10, O.DETECTED_RECOVERABLE: 10})     # 2 FIT x 0.1
    a = assess([a_, b_])
    assert (a.blocks[0].spf_fit, a.blocks[0].rf_fit) == pytest.approx((0.2, 0.0))
    assert (a.blocks[1].spf_fit, a.blocks[1].rf_fit) == pytest.approx((0.0, 0.2))
    assert (a.design.spf_fit, a.design.rf_fit) == pytest.approx((0.2, 0.2))
    assert a.design.pmhf.estimate == pytest.approx(0.4)
    from faultinj.fit import fit_config_from_dict

    config = fit_config_from_dict({"fit": {"blocks": {"a": {"safety_mechanism": True},
                                                      "b": {"safety_mechanism": False}}}})
    a = assess([a_, b_], config)
    assert (a.design.spf_fit, a.design.rf_fit) == pytest.approx((0.2, 0.2))
    assert a.blocks[0].rf_fit == pytest.approx(0.2) and a.blocks[1].spf_fit == pytest.approx(0.2)


def test_diagnostic_coverage_interval():
    # one cell: 30 unsafe injections, 24 of them detected -> DC 80 %, Agresti-Coull on 24 of 30
    block = BlockResult("b", {"ff": 1000}, {O.MASKED: 70, O.DETECTED_RECOVERABLE: 24, O.SDC: 6})
    a = assess([block])
    ac = proportion_interval(24, 30, 0.95, "agresti-coull")
    dc = a.blocks[0].dc_interval
    assert a.blocks[0].dc == pytest.approx(0.8)
    assert (dc.estimate, dc.low, dc.high) == pytest.approx((0.8, ac.low, ac.high))
    # two cells: Bonferroni over the detected and safe bounds, around the point value
    other = BlockResult("c", {"ff": 1000}, {O.MASKED: 90, O.SDC: 10})
    d = assess([block, other]).design
    assert d.dc == pytest.approx(0.24 / 0.40)
    assert d.dc_interval.low < d.dc < d.dc_interval.high <= 1


def test_design_bound_covers_a_protected_npu_in_simulation():
    """The verification regime of a protected NPU (u55-32 / digits-pool, session 7): 4 memory blocks with parity
    (98 % of the raw FIT, rare undetected flips) and 19 flip-flop blocks (5 injections each, 20-60 % residual). The
    design's conservative PMHF (stratified bounds over the blocks) is at or above the true PMHF in >= 97 % of 2,000
    simulated 3,000-injection campaigns (one-sided 97.5 % nominal); a bound from the point estimate would not be."""
    rng = np.random.default_rng(11)
    mem_fit = np.array([590.0, 182.0, 148.0, 134.0])
    ff_fit = np.array([3.0, 2.7, 1.6, 1.6, 1.6, 1.1, 1.0, 1.0, 0.97, 0.38, 0.32, 0.26, 0.22, 0.2, 0.13, 0.06, 0.05,
                       0.04, 0.03])
    lam = np.concatenate([mem_fit, ff_fit])
    n = np.concatenate([np.round(2430 * mem_fit / mem_fit.sum()), np.full(ff_fit.size, 30)]).astype(int)
    p = np.concatenate([np.full(mem_fit.size, 4e-4), np.resize([0.2, 0.4, 0.0, 0.6], ff_fit.size)])
    true_pmhf = float(np.dot(lam, p))
    covered = point_covered = 0
    for _ in range(2000):
        k = rng.binomial(n, p)
        res = weighted_interval(k, n, lam, np.ones(lam.size), 0.95)
        covered += lam.sum() * res.high >= true_pmhf
        point_covered += lam.sum() * res.estimate >= true_pmhf
    assert covered >= 1940
    assert point_covered < 1500
