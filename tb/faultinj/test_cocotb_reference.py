"""Validation (a): an independent cocotb + Icarus reference path (reset, full replay, flip through the simulator
handle, no snapshots or early stop) classifies every fault exactly as the fast engine does."""
import numpy as np
import pytest

from faultinj.engine import GoldenRun, cocotb_reference_outcomes
from faultinj.outcomes import Outcome
from faultinj.workload import make_workload
from sim.build import build


def _check(faults: int, cycles: int, seed: int):
    result = build("mac_array", "4x4")
    workload = make_workload("mac_array_matmul", result.config, cycles=cycles)
    rng = np.random.default_rng(seed)
    sites = rng.integers(0, result.state_bits, faults)
    when = rng.integers(0, workload.cycles, faults)
    fast, _ = GoldenRun(result, workload).inject(sites, when)
    reference, _ = cocotb_reference_outcomes(result, workload, sites, when)
    assert reference.tolist() == fast.tolist()
    return fast


def test_fast_engine_matches_cocotb_reference():
    outcomes = _check(faults=40, cycles=300, seed=1)
    assert {Outcome.MASKED, Outcome.SDC} <= set(outcomes.tolist())


@pytest.mark.slow
def test_fast_engine_matches_cocotb_reference_500_faults():
    _check(faults=500, cycles=1000, seed=2)
