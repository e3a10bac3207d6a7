"""Fault injection on the NeuroCore engine (workload ``snn_pattern``, design ``neurocore``).

The workload drives an STDP pattern-detection run over the engine's host bus (configuration writes, per step the
input words, RUN, the exact step time, the raster reads; the final weights read back) and observes the read data.
Checked here: the fault-free RTL gives the golden model's raster and final weights as the host reads them, ``busy``
covers exactly the waits the schedule predicts; directed faults classify as expected; the fast engine agrees with
the plain reference path on a sample; the workload is registered so that `rampart fi sites/run neurocore` work.
"""
import numpy as np
import pytest
from click.testing import CliRunner

from faultinj.engine import ReferenceRun, golden_run
from faultinj.outcomes import Outcome
from faultinj.plan import fault_plan
from faultinj.workload import default_workload, make_workload
from faultinj.workloads.neurocore import SNN_STEPS, host_view
from rampart.cli import main
from rtl.neurocore.config import PRESETS, Region
from sim.build import build
from sim.harness import NativeSim

CONFIG = "16x16"


@pytest.fixture(scope="module")
def core():
    return build("neurocore", CONFIG)


@pytest.fixture(scope="module")
def workload():
    return make_workload("snn_pattern", CONFIG)


@pytest.fixture(scope="module")
def reference(core, workload):
    return ReferenceRun(core, workload)


def busy_windows(workload) -> np.ndarray:
    """Cycles on which the schedule expects the engine busy: after each RUN write, the step's cycle count."""
    expected = np.zeros(workload.cycles, dtype=bool)
    run_cycles = np.flatnonzero(workload.inputs["bus__we"].astype(bool)
                                & (workload.inputs["bus__addr"] == workload.config.address(Region.CTRL, 0)))
    assert len(run_cycles) == workload.params["steps"]
    for start, n in zip(run_cycles + 1, workload.params["step_cycles"], strict=True):
        expected[start:start + n] = True
    return expected


def check_golden(core, workload):
    with NativeSim(core) as sim:
        trace = sim.run_stimulus(workload.inputs, ["bus__rdata", "bus__rvalid", "busy"])
    raster, weights, mask = host_view(workload, trace["bus__rdata"])
    np.testing.assert_array_equal(raster, workload.params["raster"])
    np.testing.assert_array_equal(weights, workload.params["weights"])
    np.testing.assert_array_equal(mask, workload.params["mask"])
    np.testing.assert_array_equal(trace["busy"][:, 0].astype(bool), busy_windows(workload))
    assert trace["bus__rvalid"][workload.observe, 0].all()
    return raster


def test_golden_run_is_the_golden_models(core, workload, reference):
    """The host reads the golden model's raster and final weights; busy lasts exactly the predicted step times."""
    raster = check_golden(core, workload)
    params = workload.params
    assert params["steps"] == SNN_STEPS and 2000 < workload.cycles < 50_000
    assert raster.sum() >= 20, "the run must have output spikes"
    assert (params["weights"] != params["initial_weights"]).sum() >= 10, "STDP must change weights"
    assert len(params["onsets"]) >= 2
    # the reference path's golden traces and the fast engine's golden run are the same run
    np.testing.assert_array_equal(host_view(workload, reference.outputs["bus__rdata"])[0], raster)
    assert workload.observe.sum() == params["steps"] + PRESETS[CONFIG].n_sources * PRESETS[CONFIG].groups


def test_cycle_budget_gives_a_prefix(workload):
    """``cycles`` is a budget: fewer steps (a prefix of the default run), idle to exactly that many cycles; the
    stored length of a campaign gives back the same workload."""
    short = make_workload("snn_pattern", CONFIG, cycles=workload.cycles // 2)
    assert short.cycles == workload.cycles // 2 and 0 < short.params["steps"] < workload.params["steps"]
    np.testing.assert_array_equal(short.params["raster"], workload.params["raster"][:short.params["steps"]])
    assert make_workload("snn_pattern", CONFIG, cycles=workload.cycles).key == workload.key
    assert make_workload("snn_pattern", CONFIG, seed=1).key != workload.key


def test_directed_faults_classify(core, workload, reference):
    """Known consequences, from the fast engine and the reference path alike: a weight bit flipped before the
    host writes the weights is overwritten (masked); after, the host reads it back (SDC); a spike counter nobody
    reads stays wrong (latent); the read-data register between two reads is overwritten (masked)."""
    golden = golden_run(core, workload)
    sim = golden.sim
    first_step = int(np.flatnonzero(busy_windows(workload))[0])
    mid = first_step + (workload.cycles - first_step) // 2
    while workload.observe[mid] or workload.inputs["bus__re"][mid] or workload.inputs["bus__re"][mid - 1]:
        mid += 1
    k = workload.config.groups
    cases = [
        (sim.site_index("w_mem_0", k, 3), 0, Outcome.MASKED),             # W[4, 0], before the setup writes
        (sim.site_index("w_mem_1", 2, 4), first_step, Outcome.SDC),       # W[1, 8] after them: read back
        (sim.site_index("neuron.count_3", 3, 2), mid, Outcome.LATENT),           # silent neuron 15's spike counter
        (sim.site_index("rdata_reg", 0, 5), mid, Outcome.MASKED),
    ]
    sites = np.array([c[0] for c in cases])
    cycles = np.array([c[1] for c in cases])
    fast, _ = golden.inject(sites, cycles)
    for (site, cycle, want), got in zip(cases, fast, strict=True):
        assert Outcome(got) == want, (site, cycle)
        assert reference.outcome(site, cycle) == want, (site, cycle)


def test_fast_engine_equals_reference(core, workload, reference):
    """150 uniformly drawn faults: the fast engine's outcome equals the reference path's for each; masked, SDC and
    latent all occur."""
    plan = fault_plan(core, workload.cycles, 150, seed=4, strata="none")
    fast, simulated = golden_run(core, workload).inject(plan.sites, plan.cycles)
    assert np.all(simulated >= 1)
    wrong = [(int(s), int(c), Outcome(f).name, ref.name)
             for s, c, f in zip(plan.sites, plan.cycles, fast, strict=True)
             if (ref := reference.outcome(int(s), int(c))) != Outcome(f)]
    assert not wrong, f"fast != reference (site, cycle, fast, reference): {wrong[:10]}"
    counts = np.bincount(fast, minlength=len(Outcome))
    print("\nsnn_pattern outcome mix (150 uniform):", {o.name: int(counts[o]) for o in Outcome if counts[o]})
    assert counts[Outcome.MASKED] and counts[Outcome.SDC] and counts[Outcome.LATENT]


def test_multi_bit_upsets_agree(core, workload, reference):
    plan = fault_plan(core, workload.cycles, 30, seed=9, strata="none")
    fast, _ = golden_run(core, workload).inject(plan.sites, plan.cycles, upset=3)
    ref = [reference.outcome(int(s), int(c), 3) for s, c in zip(plan.sites, plan.cycles, strict=True)]
    assert [Outcome(f) for f in fast] == ref


def test_cli_sites_and_run(tmp_path):
    """`rampart fi sites neurocore` and `rampart fi run neurocore -w snn_pattern` (the design's default workload)."""
    assert default_workload("neurocore") == "snn_pattern"
    runner = CliRunner()
    sites = runner.invoke(main, ["fi", "sites", "neurocore"])
    assert sites.exit_code == 0, sites.output
    assert "workload snn_pattern" in sites.output and "total sampled" in sites.output
    db = tmp_path / "x.db"
    run = runner.invoke(main, ["fi", "run", "neurocore", "-w", "snn_pattern", "--samples", "200", "--workers", "1",
                               "--db", str(db)])
    assert run.exit_code == 0, run.output
    assert "200 of 200 injections" in run.output


@pytest.mark.parametrize("config", ["64x64", pytest.param("4x4", marks=pytest.mark.slow),
                                    pytest.param("256x256", marks=pytest.mark.slow)])
def test_other_presets(config):
    """The workload on other presets (P = 2 on 4x4): the golden run is the golden model's; a few faults agree."""
    core = build("neurocore", config)
    wl = make_workload("snn_pattern", config)
    raster = check_golden(core, wl)
    assert raster.any()
    plan = fault_plan(core, wl.cycles, 12, seed=2, strata="none")
    fast, _ = golden_run(core, wl).inject(plan.sites, plan.cycles)
    reference = ReferenceRun(core, wl)
    faults = zip(plan.sites, plan.cycles, strict=True)
    assert [Outcome(f) for f in fast] == [reference.outcome(int(s), int(c)) for s, c in faults]
