"""Validation (a): an independent cocotb + Icarus reference path (power-on state, full replay, flip through the
simulator handle, no snapshots, digests or early stop; see faultinj.cocotb_reference) classifies every fault exactly
as the fast engine does: on the MAC array's per-cycle outputs and on the NPU running a Vela-compiled convolution from
external memory (memory image, OFM region at the end, error = detection, done = completion with a watchdog)."""
import numpy as np
import pytest

from base import RampartError
from faultinj.cocotb_reference import reference_outcomes
from faultinj.engine import GoldenRun, golden_run
from faultinj.outcomes import Outcome
from faultinj.plan import fault_plan, fault_space
from faultinj.workload import make_workload
from sim.build import build

NPU_CONFIG = "u55-32"


def _check_mac_array(faults: int, cycles: int, seed: int):
    result = build("mac_array", "4x4")
    workload = make_workload("mac_array_matmul", result.config, cycles=cycles)
    rng = np.random.default_rng(seed)
    sites = rng.integers(0, result.state_bits, faults)
    when = rng.integers(0, workload.cycles, faults)
    fast, _ = GoldenRun(result, workload).inject(sites, when)
    reference, _ = reference_outcomes(result, workload, sites, when)
    assert reference.tolist() == fast.tolist()
    return fast


def test_fast_engine_matches_cocotb_reference():
    outcomes = _check_mac_array(faults=40, cycles=300, seed=1)
    assert {Outcome.MASKED, Outcome.SDC} <= set(outcomes.tolist())


def test_reference_rejects_bad_faults():
    result = build("mac_array", "4x4")
    workload = make_workload("mac_array_matmul", result.config, cycles=50)
    with pytest.raises(RampartError, match="injection cycle out of range"):
        reference_outcomes(result, workload, [0], [50])
    with pytest.raises(RampartError, match="site out of range"):
        reference_outcomes(result, workload, [result.state_bits], [0])


@pytest.mark.slow
def test_fast_engine_matches_cocotb_reference_500_faults():
    _check_mac_array(faults=500, cycles=1000, seed=2)


@pytest.fixture(scope="module")
def npu():
    return build("npu", NPU_CONFIG)


@pytest.fixture(scope="module")
def npu_workload():
    return make_workload("npu_conv", NPU_CONFIG)


def npu_per_block(npu, workload, n_per_block: int, seed: int):
    """``n_per_block`` faults from every sampled block (reaches the small controller and DMA blocks too)."""
    space = fault_space(npu, workload.cycles, "block")
    rng = np.random.default_rng(seed)
    pairs = [space.decode(h, rng.choice(int(size), n_per_block, replace=False)) for h, size in enumerate(space.sizes)]
    return np.concatenate([s for s, _ in pairs]), np.concatenate([c for _, c in pairs])


def command_stream_faults(npu, workload, n: int, seed: int):
    """Flips in the command stream in external memory at cycle 0 (scaffolding, not sampled by campaigns, but the
    controller must read it: these give DETECTED (error) and SDC outcomes)."""
    art = workload.params["artifact"]
    element = next(i for i, e in enumerate(npu.state) if e.hier_name == "top.extmem.storage")
    offset = sum(e.bits for e in npu.state[:element])
    first, words = art.header.stream_offset // 8, (4 * len(art.command_stream) + 7) // 8
    rng = np.random.default_rng(seed)
    return offset + (first + rng.integers(0, words, n)) * 64 + rng.integers(0, 64, n), np.zeros(n, dtype=np.int64)


def check_npu(npu, workload, sites, cycles):
    fast, _ = golden_run(npu, workload).inject(sites, cycles)
    reference, seconds = reference_outcomes(npu, workload, sites, cycles)
    wrong = [(int(s), int(c), Outcome(f).name, Outcome(r).name)
             for s, c, f, r in zip(sites, cycles, fast, reference, strict=True) if f != r]
    assert not wrong, f"fast != cocotb reference (site, cycle, fast, reference): {wrong[:10]}"
    counts = np.bincount(fast, minlength=len(Outcome))
    print(f"\nnpu_conv: {len(sites)} faults agree, reference {len(sites) / seconds:.2f} faults/s; mix",
          {o.name: int(counts[o]) for o in Outcome if counts[o]})
    return counts


def test_npu_fast_engine_matches_cocotb_reference(npu, npu_workload):
    """A small sample in the fast tier: 4 faults per sampled block + 8 command-stream flips."""
    sites, cycles = npu_per_block(npu, npu_workload, 4, seed=3)
    cs_sites, cs_cycles = command_stream_faults(npu, npu_workload, 8, seed=4)
    counts = check_npu(npu, npu_workload, np.concatenate([sites, cs_sites]), np.concatenate([cycles, cs_cycles]))
    assert counts[Outcome.MASKED] + counts[Outcome.LATENT] > 0
    assert counts[Outcome.SDC] + counts[Outcome.DETECTED_UNRECOVERABLE] + counts[Outcome.HANG] > 0


@pytest.mark.slow
def test_npu_fast_engine_matches_cocotb_reference_500_faults(npu, npu_workload):
    """>= 500 faults: 50 per sampled block, 250 uniform over the whole fault space, 30 command-stream flips."""
    sites, cycles = npu_per_block(npu, npu_workload, 50, seed=11)
    plan = fault_plan(npu, npu_workload.cycles, 250, seed=12, strata="none")
    cs_sites, cs_cycles = command_stream_faults(npu, npu_workload, 30, seed=13)
    all_sites = np.concatenate([sites, plan.sites, cs_sites])
    assert len(all_sites) >= 500
    check_npu(npu, npu_workload, all_sites, np.concatenate([cycles, plan.cycles, cs_cycles]))
