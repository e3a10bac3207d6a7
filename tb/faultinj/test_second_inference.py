"""Second inference (faultinj.workloads.npu ``second``, `rampart fi run --second-inference`).

The NPU runs npu_conv twice (second arena, same input): both outputs are the golden one, faults are drawn from the
first inference only, and the fast engine (first output checked when the second inference starts: SDC; second
output at the end: DELAYED) agrees with the reference path, which applies the same rules by plain replay, on faults
that include delayed violations, hangs and latent ones.
"""
import numpy as np
import pytest
from click.testing import CliRunner

from faultinj.engine import ReferenceRun, golden_run
from faultinj.outcomes import Outcome, fault_class
from faultinj.workload import make_workload
from rampart.cli import main
from sim.build import build

CONFIG = "u55-32"


@pytest.fixture(scope="module")
def npu():
    return build("npu", CONFIG)


@pytest.fixture(scope="module")
def workload():
    return make_workload("npu_conv", CONFIG, args={"second": True})


def test_two_inferences_golden(npu, workload):
    single = make_workload("npu_conv", CONFIG)
    p = workload.params
    assert workload.fault_cycles == p["second_start"] == single.cycles < p["second_done"] < workload.cycles
    assert workload.region_outcomes == (Outcome.SDC, Outcome.DELAYED) and workload.key != single.key
    golden = golden_run(npu, workload)
    half = len(golden.memory) // 2
    assert half and golden.memory[:half].tobytes() == golden.memory[half:].tobytes()
    assert golden.memory[:half].tobytes() == golden_run(npu, single).memory.tobytes()


def test_fast_equals_reference_late_flip_flop_faults(npu, workload):
    golden = golden_run(npu, workload)
    rng = np.random.default_rng(1)
    ff = [i for i, e in enumerate(npu.state) if e.kind == "ff" and e.block != "extmem"]
    elements = rng.choice(ff, 1500)
    sites = np.array([golden.sim.site_offsets[e] + rng.integers(0, npu.state[e].width) for e in elements])
    cycles = rng.integers(workload.fault_cycles - 300, workload.fault_cycles, len(sites))
    outcomes, _, analytic, top1 = golden.inject_ex(sites, cycles, liveness=True)
    assert not analytic.any() and (top1 == -1).all()      # flip-flops are always simulated; not a classifier
    assert {Outcome.DELAYED, Outcome.SDC, Outcome.HANG, Outcome.LATENT, Outcome.MASKED} <= set(outcomes.tolist())
    pick = np.concatenate([np.flatnonzero(outcomes == o)[:6] for o in Outcome])
    reference = ReferenceRun(npu, workload)
    assert [int(reference.outcome(int(sites[i]), int(cycles[i]))) for i in pick] == outcomes[pick].tolist()
    assert fault_class(Outcome.DELAYED) == fault_class(Outcome.SDC)


def test_second_input_needs_second_inference(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 8, 8, 8), np.int8))
    result = CliRunner().invoke(main, ["fi", "run", "npu", "-c", CONFIG, "--second-input", str(tmp_path / "x.npy"),
                                       "-n", "4", "--db", str(tmp_path / "c.db")])
    assert result.exit_code == 2 and result.output.startswith("rampart: error: --second-input needs"), result.output
