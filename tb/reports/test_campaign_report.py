import csv
import json

from faultinj.assessment import assess
from faultinj.outcomes import Outcome
from faultinj.safety import BlockResult, safety_metrics
from reports.campaign import FMEDA_COLUMNS, CampaignSummary, render


def _summary():
    blocks = (
        BlockResult("mac", {"ff": 3000}, {Outcome.MASKED: 900, Outcome.SDC: 90, Outcome.LATENT: 10}),
        BlockResult("buffer", {"mem": 8192}, {Outcome.MASKED: 400, Outcome.SDC: 5, Outcome.DETECTED_RECOVERABLE: 95}),
    )
    return CampaignSummary("npu", "u55-32", "conv1x1", 7, "stratified by block", blocks, seconds=1.5,
                           cycles_simulated=10**6, fault_space=10**9, reproduce="rampart fi run npu ...",
                           worst=({"id": 3, "block": "mac", "site": "top.mac.acc[3]", "cycle": 120},))


def test_report_files_and_numbers(tmp_path):
    summary = _summary()
    paths = render(summary, tmp_path)
    page = paths["html"].read_text()
    assert "data:image/png;base64," in page and "SPFM" in page and "ASIL D" in page
    assert "top.mac.acc[3]" in page
    document = json.loads(paths["json"].read_text())
    expected = assess(list(summary.blocks))     # intervals propagated by stratified bounds (faultinj.assessment)
    assert document["metrics"]["conservative"]["spfm"] == expected.design.conservative.spfm
    assert document["injections"] == 1500
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == FMEDA_COLUMNS
    assert [r["block"] for r in rows] == ["mac", "buffer", "design"]
    assert int(rows[0]["sdc"]) == 90


def test_report_shows_the_stratified_overall_rates(tmp_path):
    from faultinj.stats import Interval, stratified_proportion

    strata = ((1000, {Outcome.MASKED: 10, Outcome.SDC: 90}), (9000, {Outcome.MASKED: 95, Outcome.LATENT: 5}))
    block = BlockResult("mac", {"ff": 3000}, {Outcome.MASKED: 105, Outcome.SDC: 90, Outcome.LATENT: 5}, strata=strata)
    sdc = stratified_proportion([90, 0], [100, 100], [1000, 9000], 0.95).interval
    summary = CampaignSummary("npu", "u55-32", "conv", 1, "stratified by state element, iterative", (block,),
                              rates={"sdc": sdc, "latent": Interval(0.045, 0.02, 0.09, "agresti-coull", 0.95)},
                              rates_method="Stratified estimates over the campaign's 2 strata", mbu=2)
    paths = render(summary, tmp_path)
    page = paths["html"].read_text()
    assert "Overall outcome rates" in page and "Stratified estimates over the campaign" in page
    assert "2-bit upsets" in page and "stratified interval" in page
    assert f"{100 * sdc.estimate:.3f} %" == "9.000 %" and "9.000 %" in page   # 0.1 x 90 %, not pooled 45 %
    assert "13.500 %" in page and "47.500 %" not in page      # the block's unmasked: stratified, not pooled
    document = json.loads(paths["json"].read_text())
    assert document["overall_rates"]["sdc"]["estimate"] == sdc.estimate and document["mbu"] == 2
    assert document["metrics"]["point"]["spfm"] == safety_metrics([block]).point.spfm
