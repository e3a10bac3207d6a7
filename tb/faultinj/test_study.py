"""`rampart fi study` (faultinj.study): a tiny study on the 4x4 MAC array end to end, its resumption after an
interruption, and refused input."""
import json
import sqlite3

import pytest
from click.testing import CliRunner

from faultinj.study import StudyRequest, quick_request, run_study
from rampart.cli import main

SAMPLES = 120


def _injections(db) -> int:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT COUNT(*) FROM injections").fetchone()[0]


def _study(out, *extra):
    return CliRunner().invoke(main, ["fi", "study", "mac_array", "--quick", "--samples", str(SAMPLES), "--workers",
                                     "1", "-o", str(out), *extra])


def test_tiny_study_end_to_end_and_rerun_does_no_new_work(tmp_path):
    out = tmp_path / "study"
    result = _study(out)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "study.json").read_text())
    assert doc["schema"] == "rampart-fi-study" and doc["design"] == "mac_array"
    assert doc["command"].startswith("rampart fi study mac_array --configs 4x4 --networks mac_array_matmul")
    assert "--quick" in doc["command"].split() and "--samples 120" in doc["command"]
    (pair,) = doc["pairs"]
    assert (pair["config"], pair["network"], pair["status"]) == ("4x4", "mac_array_matmul", "done")
    pair_dir = out / pair["dir"]
    assert _injections(pair_dir / "baseline.db") == SAMPLES
    assert _injections(pair_dir / "verify.db") == SAMPLES
    # the baseline misses ASIL-D (the array has no safety mechanism) and the plan protects something
    assert pair["baseline_asil"]["D"] is False and 0 < pair["baseline"]["spfm"] < 1
    assert pair["plan"] and set(pair["plan"].values()) <= {"none", "hardened", "dmr"}
    assert any(o != "none" for o in pair["plan"].values())
    assert 0 < pair["plan_overhead"] and 0 < pair["lockstep_overhead"]
    assert pair["verified"] == pair["verification_asil"]["target_met"]
    assert set(pair["verification"]) == {"spfm", "lfm", "pmhf"}
    steps = pair["step_seconds"]
    assert list(steps) == ["baseline_campaign", "block_areas", "optimisation", "unprotected_and_lockstep_areas",
                           "round0_protected_area", "round0_protected_build", "round0_verification_campaign"]
    assert all(t >= 0 for t in steps.values()) and sum(steps.values()) <= pair["seconds"]
    html = (out / pair["report"]["html"]).read_text()
    assert 'id="protection"' in html and "Pareto" in html
    report = json.loads((out / pair["report"]["json"]).read_text())
    assert report["extras"]["protection_plan"]["target"] == "ASIL-D"
    assert (out / pair["report"]["csv"]).read_text().startswith("block,")
    index = (out / "study.md").read_text()
    assert "| 4x4 | mac_array_matmul |" in index and "report/baseline.html" in index

    stamp = (out / "study.json").stat().st_mtime_ns, (pair_dir / "plan.json").stat().st_mtime_ns
    again = _study(out)
    assert again.exit_code == 0, again.output
    assert "done (skipped)" in again.output
    assert (pair_dir / "plan.json").stat().st_mtime_ns == stamp[1]          # nothing redone
    assert json.loads((out / "study.json").read_text())["pairs"] == doc["pairs"]


def test_interrupted_study_resumes_from_its_databases(tmp_path):
    out = tmp_path / "study"
    req = quick_request("mac_array", samples=SAMPLES)

    def killed(db, folder, extras):
        raise KeyboardInterrupt     # the study is killed after the campaigns, before the pair's report

    with pytest.raises(KeyboardInterrupt):
        run_study(out, req, report=killed)
    (pair,) = json.loads((out / "study.json").read_text())["pairs"]
    assert pair["status"] == "running"
    pair_dir = out / pair["dir"]
    assert _injections(pair_dir / "baseline.db") == SAMPLES
    lines = []
    doc = run_study(out, req, report=lambda db, folder, extras: {"html": folder / "r.html"}, log=lines.append)
    (pair,) = doc["pairs"]
    assert pair["status"] == "done" and pair["report"] == {"html": f"{pair['dir']}/report/r.html"}
    assert _injections(pair_dir / "baseline.db") == SAMPLES       # resumed: no injection added or redone
    assert _injections(pair_dir / "verify.db") == SAMPLES
    assert not any("skipped" in line for line in lines)


def test_a_pair_that_cannot_run_is_recorded_and_the_study_goes_on(tmp_path):
    model = tmp_path / "broken.tflite"
    model.write_bytes(b"not a flatbuffer")
    out = tmp_path / "study"
    lines = []
    doc = run_study(out, StudyRequest("npu", ("u55-32", "u55-64"), (str(model),), samples=5), log=lines.append)
    assert [(p["config"], p["status"]) for p in doc["pairs"]] == [("u55-32", "failed"), ("u55-64", "failed")]
    assert all(p["error"] for p in doc["pairs"])
    assert sum("failed:" in line for line in lines) == 2
    assert (out / "study.md").read_text().count("| failed: ") == 2


@pytest.mark.parametrize("args, message", [
    (["mac_array", "--configs", "9x9", "--samples", "5"], "unknown config '9x9'"),
    (["mac_array", "--configs", "4x4", "--networks", "nope", "--samples", "5"], "unknown network 'nope'"),
    (["mac_array", "--configs", "4x4", "--networks", "npu_conv", "--samples", "5"], "workload npu_conv is for npu"),
    (["mac_array", "--configs", "4x4"], "give --samples N or --margin M"),
    (["mac_array", "--configs", "4x4", "--samples", "5", "--margin", "0.01"], "give --samples or --margin"),
    (["mac_array", "--configs", "4x4,", "--samples", "5"], "--configs: give a comma-separated list"),
    (["mac_array", "--samples", "5"], "give --configs"),
    (["--samples", "5"], "give the DESIGN"),
    (["neurocore", "--quick"], "--quick has presets for mac_array, npu only"),
    (["nodesign", "--configs", "a", "--samples", "5"], "nodesign"),
    (["mac_array", "--configs", "4x4", "--samples", "5", "--target", "ASIL-Z"], "ASIL"),
    (["npu", "--configs", "u55-32", "--model", "missing.tflite", "--samples", "5"], "model not found"),
    (["mac_array", "--configs", "4x4", "--model", "x.tflite", "--samples", "5"], "does not run models"),
    (["mac_array", "--quick", "--second-inference"], "--second-inference is for the NPU"),
    (["npu", "--configs", "u55-32", "--model", "x.tflite", "--networks", "npu_conv", "--samples", "5"],
     "give --networks or --model"),
])
def test_bad_input_is_one_error_line(tmp_path, args, message):
    result = CliRunner().invoke(main, ["fi", "study", *args, "-o", str(tmp_path / "s")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rampart: error:") and message in lines[0], result.output
    assert not (tmp_path / "s").exists()      # refused before any work


def test_output_must_be_a_writable_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _study(blocker)
    assert result.exit_code == 2 and result.output.startswith("rampart: error: --output:"), result.output


def test_a_built_in_network_is_studied_whole(tmp_path):
    """digits-pool (pooling, FC, SOFTMAX) is the campaign's model as built, not a CONV/DEPTHWISE/FC prefix."""
    from faultinj.study import _campaign_spec
    from models.npu.graph import interpreter
    from models.npu.networks import network

    req = StudyRequest("npu", ("u55-128",), ("digits-pool",), samples=5, second=False)
    spec, note = _campaign_spec(req, tmp_path, "u55-128", "digits-pool")
    model = spec.options["workload_args"]["model"]
    assert note == "" and open(model, "rb").read() == network("digits-pool").data
    ops = {d["op_name"] for d in interpreter(network("digits-pool").data)._get_ops_details()}
    assert {"SOFTMAX", "MAX_POOL_2D", "AVERAGE_POOL_2D"} <= ops


def test_the_fi_memory_grows_only_for_a_network_that_does_not_fit():
    """autoencoder's 272 KiB of weights do not fit the FI NPU's 256 KiB external-memory model: the study runs it
    on the same NPU with 512 KiB (scaffolding, never a fault site); digits-pool keeps the preset."""
    from faultinj.workloads.npu import fi_memory_config
    from models.npu.networks import network
    from rtl.npu import PRESETS

    preset = PRESETS["u55-32"]
    assert fi_memory_config(preset, network("digits-pool").data, second=True) is preset
    big = fi_memory_config(preset, network("autoencoder").data, second=False)
    assert big.ext_mem_kib == 512 and big.macs == preset.macs and big.protection == preset.protection
    assert big == type(preset)(**{**preset.__dict__, "ext_mem_kib": 512})
