"""Fault injection on the NGPC cluster (workload ``ngpc_queries``, design ``ngpc``).

Checked: the fault-free run delivers what the golden models compute for the workload's queries; the fast engine
agrees with the plain reference path on a sample; directed faults classify as expected and the error measure of an
SDC (output_error) separates a visible from an invisible corruption."""
import numpy as np
import pytest

from faultinj.engine import ReferenceRun, golden_run
from faultinj.outcomes import Outcome
from faultinj.plan import fault_plan
from faultinj.workload import make_workload
from faultinj.workloads.ngpc import delivered_results, expected_results, output_error

CONFIG = "hash2d-x2"


@pytest.fixture(scope="module")
def core():
    from sim.build import build

    return build("ngpc", CONFIG)


@pytest.fixture(scope="module")
def workload():
    return make_workload("ngpc_queries", CONFIG, seed=2, cycles=900)


@pytest.fixture(scope="module")
def golden(core, workload):
    return golden_run(core, workload)


def test_fault_free_results_are_the_golden_models(core, workload):
    from sim.harness import NativeSim

    with NativeSim(core) as sim:
        trace = sim.run_stimulus(workload.inputs, ["results__valid", "results__payload"])
    assert trace["results__valid"][workload.observe, 0].all()
    assert trace["results__valid"][:, 0].sum() == workload.params["batches"]
    assert np.array_equal(delivered_results(workload, trace), expected_results(workload))


def test_fast_engine_equals_reference(core, workload, golden):
    plan = fault_plan(core, workload.cycles, 40, seed=7, strata="none")
    fast, _ = golden.inject(plan.sites, plan.cycles)
    reference = ReferenceRun(core, workload)
    ref = [reference.outcome(int(s), int(c)) for s, c in zip(plan.sites, plan.cycles, strict=True)]
    assert [Outcome(f) for f in fast] == ref
    counts = np.bincount(fast, minlength=len(Outcome))
    print("\nngpc_queries outcome mix (40 uniform):", {o.name: int(counts[o]) for o in Outcome if counts[o]})


def test_directed_faults_and_their_error(core, workload, golden):
    """A table bit flipped before the table is written is overwritten (masked); bit 14 of a level-0 table word
    flipped once the queries run corrupts results (SDC, visible); its bit 0 changes a feature by at most 1 LSB, which
    the MLP's 1/4-bounded weights carry to the outputs as a few LSB at most (SDC, any-bit, not visible)."""
    sim = golden.sim
    start = workload.params["first_result"] - workload.config.latency
    table = sim.site_index("top.lane_0.encoder.level_0.table.bank_0", 3, 14)
    lsb = table - 14
    cases = [(table, 0, Outcome.MASKED), (table, start, Outcome.SDC), (lsb, start, Outcome.SDC)]
    got, _ = golden.inject(np.array([c[0] for c in cases]), np.array([c[1] for c in cases]))
    assert [Outcome(g) for g in got] == [c[2] for c in cases]
    visible = output_error(workload, core, table, start)
    small = output_error(workload, core, lsb, start)
    assert visible["visible"] and visible["max_lsb"] > workload.params["visible_lsb"]
    assert 0 < small["max_lsb"] <= workload.params["visible_lsb"] and not small["visible"]
    assert small["psnr_db"] > visible["psnr_db"]


def test_campaign_records_visible_sdc(core, workload, golden):
    """inject_ex fills the flag column from the judge: 1 exactly for the SDC faults output_error calls visible."""
    plan = fault_plan(core, workload.cycles, 60, seed=3, strata="none")
    outcomes, _, _, flags = golden.inject_ex(plan.sites, plan.cycles)
    sdc = outcomes == Outcome.SDC
    assert sdc.any() and not flags[~sdc].any()
    want = [int(output_error(workload, core, int(s), int(c))["visible"])
            for s, c in zip(plan.sites[sdc], plan.cycles[sdc], strict=True)]
    assert flags[sdc].tolist() == want


def test_multi_bit_upsets_agree(core, workload, golden):
    plan = fault_plan(core, workload.cycles, 20, seed=9, strata="none")
    fast, _ = golden.inject(plan.sites, plan.cycles, upset=3)
    reference = ReferenceRun(core, workload)
    assert [Outcome(f) for f in fast] == [reference.outcome(int(s), int(c), 3)
                                          for s, c in zip(plan.sites, plan.cycles, strict=True)]


def test_cli_campaign_records_visibility(tmp_path):
    """`rampart fi run ngpc -w ngpc_queries -n 200`: every SDC row has its visibility flag, other rows none set."""
    import sqlite3

    from click.testing import CliRunner

    from rampart.cli import main

    db = tmp_path / "g.db"
    run = CliRunner().invoke(main, ["fi", "run", "ngpc", "-w", "ngpc_queries", "-n", "200", "--workers", "1",
                                    "--db", str(db)])
    assert run.exit_code == 0, run.output
    assert "200 of 200 injections" in run.output
    rows = sqlite3.connect(db).execute("SELECT outcome, top1 FROM injections").fetchall()
    assert len(rows) == 200 and any(o == Outcome.SDC for o, _ in rows)
    assert all(t in (0, 1) for o, t in rows if o == Outcome.SDC)
    assert all(t == 0 for o, t in rows if o != Outcome.SDC)


@pytest.mark.slow
@pytest.mark.parametrize("config", ["hash3d-x2", "hash2d-x4"])
def test_other_presets(config):
    """The workload on a 3-D and a 4-lane cluster: the fault-free results are the golden models'; a few faults
    agree with the reference path."""
    from sim.build import build
    from sim.harness import NativeSim

    core = build("ngpc", config)
    wl = make_workload("ngpc_queries", config, seed=4)
    with NativeSim(core) as sim:
        trace = sim.run_stimulus(wl.inputs, ["results__payload"])
    assert np.array_equal(delivered_results(wl, trace), expected_results(wl))
    plan = fault_plan(core, wl.cycles, 15, seed=2, strata="none")
    fast, _ = golden_run(core, wl).inject(plan.sites, plan.cycles)
    reference = ReferenceRun(core, wl)
    assert [Outcome(f) for f in fast] == [reference.outcome(int(s), int(c))
                                          for s, c in zip(plan.sites, plan.cycles, strict=True)]
