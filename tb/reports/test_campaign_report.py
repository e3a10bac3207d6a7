import csv
import json

from faultinj.outcomes import Outcome
from faultinj.safety import FMEDA_COLUMNS, BlockResult, safety_metrics
from reports.campaign import CampaignSummary, render


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
    expected = safety_metrics(list(summary.blocks))
    assert document["metrics"]["conservative"]["spfm"] == expected.conservative.spfm
    assert document["injections"] == 1500
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == FMEDA_COLUMNS
    assert [r["block"] for r in rows] == ["mac", "buffer"]
    assert int(rows[0]["sdc"]) == 90
