"""Fault injection on the NPU running a Vela-compiled network (workload ``npu_conv``, design ``npu``).

The workload loads a memory image (command stream, weights, input) into the external memory model, pulses
``start``, and is observed through the OFM region at the end, ``error`` (detection) and ``done`` (completion,
watchdog = 2 x golden length). Checked here: the golden run is bit-exact against LiteRT; the fast engine
(snapshots, digests, early stop, ``rp_inject_batch_ex``) agrees with the plain :class:`ReferenceRun` on every
fault; the ``extmem`` scaffolding is never sampled by a campaign. One build of ``npu`` u55-32 (~40-60 s cold).
The independent reference (cocotb + Icarus, no shared code with the native harness) is checked against the fast
engine on this workload in test_cocotb_reference.py.
"""
import sqlite3

import numpy as np
import pytest

from faultinj.campaign import run_campaign
from faultinj.engine import ReferenceRun, golden_run
from faultinj.outcomes import Outcome
from faultinj.plan import fault_plan, fault_space
from faultinj.workload import make_workload, scaffolding_blocks
from sim.build import build

CONFIG = "u55-32"


@pytest.fixture(scope="module")
def npu():
    return build("npu", CONFIG)


@pytest.fixture(scope="module")
def workload():
    return make_workload("npu_conv", CONFIG)


@pytest.fixture(scope="module")
def golden(npu, workload):
    return golden_run(npu, workload)


@pytest.fixture(scope="module")
def reference(npu, workload):
    return ReferenceRun(npu, workload)


def ofm_of(workload, memory: bytes) -> np.ndarray:
    (_, first, _), = workload.regions
    addr, n = workload.params["ofm"]
    return np.frombuffer(memory[addr - 8 * first:][:n], dtype=np.int8)


def check_golden(npu, workload, golden, reference=None):
    from models.npu.reference import ReferenceModel

    want = ReferenceModel(workload.params["model"]).run(workload.params["input"]).reshape(-1)
    np.testing.assert_array_equal(ofm_of(workload, golden.memory.tobytes()), want)
    assert workload.cycles == workload.params["done_cycle"] + 4 and golden.watchdog == 2 * workload.cycles
    if reference is not None:
        got = np.concatenate(reference.memory).astype("<u8").tobytes()
        np.testing.assert_array_equal(ofm_of(workload, got), want)


def test_golden_run_completes_and_is_bit_exact(npu, workload, golden, reference):
    """done rises (GoldenRun raises otherwise), error stays low, and the OFM equals LiteRT's output."""
    check_golden(npu, workload, golden, reference)
    assert scaffolding_blocks("npu") == ("extmem",) and workload.exclude_blocks == ("extmem",)
    # the memory image is part of the workload's identity
    other = make_workload("npu_conv", CONFIG, seed=1)
    assert other.key != workload.key and other.cycles > 0


def per_block_faults(npu, workload, n_per_block: int, seed: int):
    """``n_per_block`` faults from every sampled block (a mix that reaches the small control blocks too)."""
    space = fault_space(npu, workload.cycles, "block")
    rng = np.random.default_rng(seed)
    sites, cycles = [], []
    for h, size in enumerate(space.sizes):
        s, c = space.decode(h, rng.choice(int(size), n_per_block, replace=False))
        sites.append(s)
        cycles.append(c)
    return np.concatenate(sites), np.concatenate(cycles)


def check_against_reference(golden, reference, sites, cycles):
    outcomes, simulated = golden.inject(sites, cycles)
    assert np.all(simulated >= 1)
    wrong = [(int(s), int(c), Outcome(o).name, reference.outcome(int(s), int(c)).name)
             for s, c, o in zip(sites, cycles, outcomes, strict=True)]
    wrong = [w for w in wrong if w[2] != w[3]]
    assert not wrong, f"fast != reference (site, cycle, fast, reference): {wrong[:10]}"
    counts = np.bincount(outcomes, minlength=len(Outcome))
    print("\nnpu_conv outcome mix:", {o.name: int(counts[o]) for o in Outcome if counts[o]})
    return counts


def test_fast_engine_equals_reference(npu, workload, golden, reference):
    """100 faults (20 per sampled block): fast outcome == reference outcome for each; masked and failures occur."""
    sites, cycles = per_block_faults(npu, workload, 20, seed=5)
    counts = check_against_reference(golden, reference, sites, cycles)
    assert counts[Outcome.MASKED] > 0
    assert counts[Outcome.SDC] + counts[Outcome.HANG] + counts[Outcome.DETECTED_UNRECOVERABLE] > 0


def test_command_stream_faults_detected(npu, workload, golden, reference):
    """Directed: bit flips in the command stream in external memory at cycle 0 (outside the sampled fault space:
    extmem is scaffolding, but GoldenRun.inject takes any site) -- the controller reports some as errors."""
    art = workload.params["artifact"]
    element = golden.sim.element_index("top.extmem.storage")
    first = art.header.stream_offset // 8
    words = (4 * len(art.command_stream) + 7) // 8
    rng = np.random.default_rng(0)
    sites = golden.sim.site_offsets[element] + (first + rng.integers(0, words, 30)) * 64 + rng.integers(0, 64, 30)
    counts = check_against_reference(golden, reference, sites, np.zeros(30, dtype=np.int64))
    assert counts[Outcome.DETECTED_UNRECOVERABLE] > 0 and counts[Outcome.SDC] > 0


@pytest.mark.slow
def test_fast_engine_equals_reference_500(npu, workload, golden, reference):
    sites, cycles = per_block_faults(npu, workload, 50, seed=11)
    plan = fault_plan(npu, workload.cycles, 250, seed=12, strata="none")
    check_against_reference(golden, reference, np.concatenate([sites, plan.sites]),
                            np.concatenate([cycles, plan.cycles]))


def test_plan_excludes_scaffolding(npu, workload):
    space = fault_space(npu, workload.cycles, "none")
    assert "extmem" not in space.blocks
    extmem_bits = sum(e.width * e.depth for e in npu.state if e.block == "extmem")
    assert space.total == (npu.state_bits - extmem_bits) * workload.cycles
    local = np.random.default_rng(0).integers(0, space.total, 2000)
    sites, cycles = space.decode(0, local)
    assert np.array_equal(space.encode(0, sites, cycles), local)
    element = np.searchsorted(space.offsets, sites, side="right") - 1
    assert not any(npu.state[e].block == "extmem" for e in element)
    # an explicit empty exclusion list restores the whole state
    assert fault_space(npu, workload.cycles, "none", exclude_blocks=()).total == npu.state_bits * workload.cycles


def test_campaign_never_samples_extmem(npu, tmp_path):
    status = run_campaign(tmp_path / "npu.db", "npu", CONFIG, "npu_conv", samples=250, seed=2, workers=1)
    assert status.complete and status.done == 250
    assert "extmem" not in status.blocks and "extmem" not in status.meta["block_bits"]
    with sqlite3.connect(tmp_path / "npu.db") as db:
        sites = np.array([r[0] for r in db.execute("SELECT site FROM injections")], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum([e.width * e.depth for e in npu.state])])
    element = np.searchsorted(offsets, sites, side="right") - 1
    assert len(sites) == 250 and not any(npu.state[e].block == "extmem" for e in element)
    counts = status.counts()
    print("\nnpu_conv campaign (250):", {o.name: n for o, n in counts.items() if n})
    assert sum(counts.values()) == 250


@pytest.mark.slow
@pytest.mark.parametrize("config", ["u55-64", "u55-128", "u55-256"])
def test_other_presets_golden(config):
    npu = build("npu", config)
    wl = make_workload("npu_conv", config)
    g = golden_run(npu, wl)
    check_golden(npu, wl, g)
    outcomes, _ = g.inject(*per_block_faults(npu, wl, 4, seed=1))
    assert len(outcomes) == 4 * len(fault_space(npu, wl.cycles, "block").blocks)
