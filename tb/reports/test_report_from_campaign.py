"""The report and `fi status` of a real (small) campaign: the fixes of issue 14 part 7 — the confidence a campaign
was sized for is used everywhere, the reproduce line keeps the config, worst injections with replay commands,
recorded simulation time, tool provenance, `fi status --json`, a per-stratum floor in the allocation."""
import csv
import json
import re
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner

from faultinj.campaign import campaign_meta, campaign_status
from faultinj.outcomes import Outcome
from faultinj.plan import fault_plan, fault_space, stratum_floor
from faultinj.spec import campaign_spec
from faultinj.stats import allocate
from rampart.cli import RampartGroup
from rampart.cmd_fi import fi
from reports.campaign import FMEDA_COLUMNS, campaign_report
from rtl.common.mac_array import MacArrayConfig
from rtl.designs import get_design
from sim.build import build

SMALL = MacArrayConfig(rows=2, cols=2)      # no preset: the report must carry the config
CYCLES = 200


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    path = tmp_path_factory.mktemp("fi") / "small.db"
    spec = campaign_spec("mac_array", SMALL, "mac_array_matmul", margin=0.1, confidence=0.99,
                         workload_cycles=CYCLES, seed=3)
    spec.run(path, workers=1)
    return path


def _cli():
    return RampartGroup("rampart", commands=[fi])


def test_sized_confidence_is_the_campaigns(campaign):
    meta = campaign_meta(campaign)
    assert meta["sized_for"] == {"margin": 0.1, "confidence": 0.99}
    status = campaign_status(campaign)
    assert status.confidence == 0.99
    assert all(i.confidence == 0.99 for i in status.overall.rates.values())
    assert campaign_status(campaign, 0.9).confidence == 0.9
    assert meta["timing"]["wall_seconds"] > 0 and meta["timing"]["worker_seconds"] >= meta["timing"]["wall_seconds"]


def test_status_json_and_confidence_option(campaign):
    result = CliRunner().invoke(_cli(), ["fi", "status", str(campaign), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["schema"] == "rampart-fi-status" and doc["confidence"] == 0.99 and doc["complete"]
    assert doc["done"] == doc["planned"] == sum(b["injections"] for b in doc["blocks"].values())
    assert doc["overall"]["unmasked"]["confidence"] == 0.99
    text = CliRunner().invoke(_cli(), ["fi", "status", str(campaign)]).output
    assert "99% CI" in text and "99% intervals" in text and "95% CI" not in text and "95% interval" not in text
    text = CliRunner().invoke(_cli(), ["fi", "status", str(campaign), "--confidence", "0.9"]).output
    assert "90% CI" in text


def test_report_from_the_database(campaign, tmp_path):
    paths = campaign_report(campaign, tmp_path)
    doc = json.loads(paths["json"].read_text())
    page = paths["html"].read_text()
    # the confidence the campaign was sized for, not 95 %
    assert doc["confidence"] == 0.99 and doc["assessment"]["confidence"] == 0.99 and "99 % interval" in page
    # reproduce line: the non-preset config is written beside the report and named; it reads back as the config
    assert "config" in paths and f"-c {paths['config'].name}" in doc["reproduce"]
    assert "--margin 0.1 --confidence 0.99" in doc["reproduce"] and "--seed 3" in doc["reproduce"]
    assert get_design("mac_array").config(str(paths["config"])) == SMALL
    # provenance and time
    assert doc["tool"]["version"] and doc["tool"]["date"] and doc["tool"]["commit"]
    assert doc["seconds"] > 0 and "simulation time not recorded" not in page
    # worst injections: residual first, each a stored injection with its replay command
    db = sqlite3.connect(campaign)
    stored = {i: o for i, o in db.execute("SELECT id, outcome FROM injections")}
    sdc = sum(1 for o in stored.values() if o == Outcome.SDC)
    assert sdc > 0 and doc["worst"]
    for w in doc["worst"]:
        assert Outcome[w["outcome"].upper()] == Outcome(stored[w["id"]])
        assert w["replay"] == f"rampart fi replay {campaign} {w['id']}" and w["replay"] in page
    assert doc["worst"][0]["outcome"] == "sdc"
    # outcome breakdown: no analytic column in this database, so everything counts as simulated
    assert sum(v["simulated"] for v in doc["outcomes"].values()) == len(stored)
    assert all(v["analytic"] == 0 for v in doc["outcomes"].values())
    # FMEDA: every upper bound at or above its point value
    with open(paths["csv"]) as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == FMEDA_COLUMNS and rows[-1]["block"] == "design"
    for row in rows:
        for key in ("spfm", "lfm", "pmhf_fit", "derated_fit", "residual_fraction"):
            if row[key]:
                assert float(row[f"{key}_low"]) <= float(row[key]) <= float(row[f"{key}_high"]), key
    assert "-0.000" not in page
    # the heat map covers the flip-flops that were hit
    hit = [e for e in doc["elements"] if e["kind"] == "ff" and e["injections"]]
    assert hit and all(sum(b[0] for b in e["bits"]) == e["injections"] for e in hit)


def test_report_cli_fit_config_and_errors(campaign, tmp_path):
    fit = tmp_path / "fit.toml"
    fit.write_text('[fit]\ntechnology = "generic-1200fit-mbit"\n[classes]\nhang = "mpf-detected"\n')
    out = tmp_path / "rep"
    result = CliRunner().invoke(_cli(), ["fi", "report", str(campaign), "-o", str(out), "--fit-config", str(fit),
                                         "--confidence", "0.95", "--worst", "3"])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "small.json").read_text())
    assert doc["fit"]["technology"] == "generic-1200fit-mbit" and doc["fit"]["file"] == str(fit)
    assert doc["fit"]["classes"]["hang"] == "mpf-detected" and doc["confidence"] == 0.95
    assert len(doc["worst"]) <= 3
    fit.write_text("[fit]\nff_fit_per_bit = 'many'\n")
    bad = CliRunner().invoke(_cli(), ["fi", "report", str(campaign), "-o", str(out), "--fit-config", str(fit)])
    assert bad.exit_code == 2 and "rampart: error:" in bad.output and "Traceback" not in bad.output


def test_allocation_floor_gives_every_stratum_a_usable_sample():
    sizes = [10 ** 6, 200, 50, 10 ** 5]
    plain = allocate(1000, sizes)
    assert plain[1] <= 1 and plain[2] <= 1            # proportional: tiny strata get a single injection
    floored = allocate(1000, sizes, minimum=30)
    assert floored.sum() == 1000 and np.all(floored >= 30) and floored[0] > floored[3] > 30
    assert allocate(100, [10, 10 ** 6], minimum=30).tolist() == [10, 90]   # capped by the population
    with pytest.raises(ValueError, match="floor"):
        allocate(50, sizes, minimum=30)
    assert stratum_floor(10_000, 10) == 30 and stratum_floor(400, 10) == 10 and stratum_floor(3, 10) == 1
    mac = build("mac_array", "4x4")
    space = fault_space(mac, 1500, "block")
    plan = fault_plan(mac, 1500, 2000, seed=1)
    per_block = np.bincount(plan.block_ids, minlength=len(plan.blocks))
    assert per_block.min() >= stratum_floor(2000, len(space.sizes))


def test_every_json_key_is_documented(campaign, tmp_path):
    from pathlib import Path

    schema = (Path(__file__).resolve().parents[2] / "reports" / "SCHEMA.md").read_text()
    documented = set(re.findall(r"`([a-z_]+)`", schema))
    doc = json.loads(campaign_report(campaign, tmp_path)["json"].read_text())
    a = doc["assessment"]
    groups = {
        "report": doc, "tool": doc["tool"], "fit": doc["fit"], "assessment": a, "scope": a["design"],
        "check": a["asil_conservative"][0], "worst": doc["worst"][0], "element": doc["elements"][0],
        "metrics": doc["metrics"]["point"], "asil": doc["asil"], "outcome": doc["outcomes"]["sdc"],
        "parameters": doc["parameters"], "fmeda": {c: 0 for c in FMEDA_COLUMNS if not c.startswith(
            tuple(o.name.lower() for o in Outcome)) and "_fraction" not in c and not c.startswith("lambda_")},
    }
    status = json.loads(CliRunner().invoke(_cli(), ["fi", "status", str(campaign), "--json"]).output)
    groups.update(status=status, status_block=status["overall"])
    missing = {name: sorted(set(keys) - documented) for name, keys in groups.items() if set(keys) - documented}
    assert not missing


def test_reproduce_line_reruns_the_same_campaign(campaign, tmp_path, monkeypatch):
    """Run the report's reproduce command (with the config TOML written beside the report) into a new database:
    the same faults with the same outcomes, and the same stored parameters."""
    import shlex

    out = tmp_path / "rep"
    doc = json.loads(campaign_report(campaign, out)["json"].read_text())
    argv = shlex.split(doc["reproduce"])
    assert argv[:3] == ["rampart", "fi", "run"] and argv[argv.index("--db") + 1] == "small.db"
    monkeypatch.chdir(out)
    result = CliRunner().invoke(_cli(), [*argv[1:], "--workers", "1"])
    assert result.exit_code == 0, result.output
    query = "SELECT id, site, cycle, block, outcome FROM injections ORDER BY id"
    with sqlite3.connect(campaign) as a, sqlite3.connect(out / "small.db") as b:
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
    old, new = campaign_meta(campaign), campaign_meta(out / "small.db")
    for key in ("config", "samples", "seed", "strata", "sized_for", "min_per_stratum", "workload_cycles", "build_key"):
        assert old[key] == new[key], key


def test_report_cli_extras(campaign, tmp_path):
    extras = {"protection_plan": {"target": "ASIL-D", "verified": False,
                                  "blocks": [{"block": "pe_0_0", "option": "tmr", "area_cells": 10}],
                                  "area": {"baseline": {"cells": 100}, "lockstep": {"cells": 205}}},
              "pareto": [{"area_overhead": 0.0, "spfm": 0.5}, {"area_overhead": 0.4, "spfm": 0.99, "chosen": True}]}
    path = tmp_path / "extras.json"
    path.write_text(json.dumps(extras))
    out = tmp_path / "rep"
    result = CliRunner().invoke(_cli(), ["fi", "report", str(campaign), "-o", str(out), "--extras", str(path)])
    assert result.exit_code == 0, result.output
    page = (out / "small.html").read_text()
    assert 'id="protection"' in page and 'id="pareto"' in page and "NOT verified by re-injection" in page
    assert "105.0 %" in page                                       # lockstep overhead: 205 / 100 - 1
    assert json.loads((out / "small.json").read_text())["extras"] == extras
    for bad in ('{"plan": {}}', '{"pareto": [{"spfm": 1}]}', "not json"):
        path.write_text(bad)
        result = CliRunner().invoke(_cli(), ["fi", "report", str(campaign), "-o", str(out), "--extras", str(path)])
        assert result.exit_code == 2 and result.output.startswith("rampart: error:"), result.output


def test_complete_exhaustive_campaign_has_exact_metrics(tmp_path):
    path = tmp_path / "all.db"
    campaign_spec("mac_array", SMALL, "mac_array_matmul", exhaustive=True, workload_cycles=8).run(path, workers=1)
    doc = json.loads(campaign_report(path, tmp_path / "rep")["json"].read_text())
    design = doc["assessment"]["design"]
    assert doc["injections"] == campaign_status(path).planned
    for key in ("spfm", "lfm", "pmhf_fit"):
        b = design[key]
        if b["estimate"] is not None:
            assert b["low"] == pytest.approx(b["estimate"]) and b["high"] == pytest.approx(b["estimate"]), key
    assert doc["metrics"]["conservative"] == pytest.approx(doc["metrics"]["point"])
