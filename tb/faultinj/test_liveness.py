"""The liveness analysis (faultinj.liveness): memory faults classified from the golden run, without simulating.

Fast tier: the classification rules on hand-made access records; the signal-spec reader; on the NPU (npu_conv,
u55-32), a sample of 50 analytically classified faults re-run through the reference path (fresh model, full
replay, no snapshots or early stop) gives the same outcome, and a campaign stores what it classified as analytic.
Slow tier: >= 500 analytically classified faults per NPU workload re-run by full injection: 0 mismatches.
"""
import numpy as np
import pytest

from faultinj.campaign import campaign_status, run_campaign
from faultinj.engine import ReferenceRun, golden_run
from faultinj.liveness import SIMULATE, Liveness, _Events, sigspec_bits
from faultinj.outcomes import Outcome
from faultinj.plan import fault_plan
from faultinj.workload import make_workload
from sim.build import build

MASKED, LATENT = int(Outcome.MASKED), int(Outcome.LATENT)


def test_sigspec_bits():
    wires = {"a": 4, "b": 3}
    assert sigspec_bits("\\a", wires) == [("a", 0), ("a", 1), ("a", 2), ("a", 3)]
    assert sigspec_bits("\\a [2:1]", wires) == [("a", 1), ("a", 2)]
    assert sigspec_bits("{ \\b [0] \\a [3] 2'10 }", wires) == [0, 1, ("a", 3), ("b", 0)]
    assert sigspec_bits("$flatten\\x.\\y.$4 [1]", {"$flatten\\x.\\y.$4": 2}) == [("$flatten\\x.\\y.$4", 1)]


def _liveness(reads, writes, width=8, span=100) -> Liveness:
    """A Liveness of one memory (element 0) with (word, cycle) reads and (word, cycle, written bits) writes."""
    lv = object.__new__(Liveness)
    lv.span = span
    rk = np.sort(np.array([w * span + c for w, c in reads], dtype=np.int64))
    keys = np.array([w * span + c for w, c, _ in writes], dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    masks = np.zeros((len(writes), (width + 7) // 8), dtype=np.uint8)
    for i, (_, _, bits) in enumerate(writes):
        for b in bits:
            masks[i, b // 8] |= 1 << (b % 8)
    lv.events = {0: _Events(rk, keys[order], masks[order], width)}
    return lv


def classify(lv, word, bit, cycle, upset=1, element=0):
    return int(lv.classify([element], [word], [bit], [cycle], upset)[0])


def test_rules():
    full = range(8)
    lv = _liveness(reads=[(1, 50), (2, 30), (3, 40)],
                   writes=[(1, 20, full), (2, 30, full), (3, 10, [0, 1]), (3, 12, [2, 3]), (4, 5, full)])
    assert classify(lv, 1, 0, 10) == MASKED            # written at 20, read only at 50
    assert classify(lv, 1, 0, 20) == MASKED            # the write of the fault's own cycle overwrites it
    assert classify(lv, 1, 0, 21) == SIMULATE          # next: the read at 50
    assert classify(lv, 1, 0, 51) == LATENT            # never read or written again
    assert classify(lv, 2, 5, 10) == SIMULATE          # read and written in cycle 30: the read sees the flip
    assert classify(lv, 3, 1, 0) == MASKED
    assert classify(lv, 3, 0, 0, upset=4) == MASKED    # bits 0..3 covered by two partial writes
    assert classify(lv, 3, 3, 0, upset=2) == SIMULATE  # bit 4 is not written before the read at 40
    assert classify(lv, 3, 7, 0, upset=2) == SIMULATE  # wraps to bit 0 (covered), bit 7 is not
    assert classify(lv, 4, 0, 3) == MASKED             # never read at all
    assert classify(lv, 4, 0, 6) == LATENT
    assert classify(lv, 5, 0, 0) == LATENT             # a word nobody touches
    assert classify(lv, 5, 0, 0, element=1) == SIMULATE    # an element without a record (a flip-flop)


def test_partly_written_never_read_is_latent():
    lv = _liveness(reads=[], writes=[(0, 10, [0])])
    assert classify(lv, 0, 0, 0, upset=2) == LATENT    # bit 0 restored, bit 1 stays wrong to the end
    assert classify(lv, 0, 0, 0, upset=1) == MASKED


CONFIG = "u55-32"


@pytest.fixture(scope="module")
def npu():
    return build("npu", CONFIG)


def _analysed(result, workload, n, seed):
    """(sites, cycles, classified outcomes) of the analytically classified faults of an n-fault uniform sample."""
    golden = golden_run(result, workload)
    plan = fault_plan(result, workload.fault_cycles, n, seed, "none")
    classes = golden.liveness().classify(*golden.decode(plan.sites), plan.cycles)
    keep = classes != SIMULATE
    return plan.sites[keep], plan.cycles[keep], classes[keep]


def test_npu_sample_agrees_with_reference(npu):
    workload = make_workload("npu_conv", CONFIG)
    sites, cycles, classes = _analysed(npu, workload, 2000, 5)   # a sample large enough to hold MASKED ones
    assert len(sites) >= 50 and {MASKED, LATENT} <= set(classes.tolist())
    pick = np.random.default_rng(0).choice(len(sites), 50, replace=False)
    pick = np.concatenate([pick, np.flatnonzero(classes == MASKED)[:5]])
    reference = ReferenceRun(npu, workload)
    got = [int(reference.outcome(int(sites[i]), int(cycles[i]))) for i in pick]
    assert got == classes[pick].tolist()


def test_campaign_stores_analytic(npu, tmp_path):
    db = tmp_path / "l.db"
    status = run_campaign(db, "npu", CONFIG, "npu_conv", samples=64, seed=3, workers=1, liveness=True)
    assert status.meta["liveness"] is True
    n = sum(status.analytic.values())
    assert 0 < n <= 64 and set(o for o, k in status.analytic.items() if k) <= {Outcome.MASKED, Outcome.LATENT}
    import sqlite3

    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM injections WHERE analytic = 1 AND cycles = 0").fetchone()[0] == n
    plain = run_campaign(tmp_path / "p.db", "npu", CONFIG, "npu_conv", samples=64, seed=3, workers=1)
    assert plain.counts() == status.counts() and sum(campaign_status(tmp_path / "p.db").analytic.values()) == 0


@pytest.mark.slow
@pytest.mark.parametrize("config, name, args", [("u55-32", "npu_conv", {}), ("u55-32", "npu_cnn", {}),
                                                ("u55-128", "npu_cnn", {}), ("u55-32", "npu_conv", {"second": True})])
def test_npu_500_agree_with_full_injection(config, name, args):
    result = build("npu", config)
    workload = make_workload(name, config, args=args)
    sites, cycles, classes = _analysed(result, workload, 4000, 11)
    assert len(sites) >= 500
    outcomes, _ = golden_run(result, workload).inject(sites, cycles)
    assert np.count_nonzero(outcomes != classes) == 0
    assert np.count_nonzero(classes == MASKED) > 0 and np.count_nonzero(classes == LATENT) > 0
