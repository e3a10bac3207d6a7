"""faultinj.campaign: SQLite store, deterministic fault list, kill-and-resume, status, bad databases."""
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from base import RampartError
from faultinj.campaign import campaign_meta, campaign_status, fault_plan, resume_campaign, run_campaign
from faultinj.outcomes import Outcome
from sim.build import build

ARGS = dict(design="mac_array", config="4x4", workload="mac_array_matmul", samples=2000, seed=42, strata="block")
KW = dict(workload_cycles=1500)
ROOT = Path(__file__).resolve().parents[2]


def _rows(path) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT id, site, cycle, block, outcome, cycles FROM injections ORDER BY id").fetchall()
    finally:
        db.close()


@pytest.fixture(scope="module")
def reference_db(tmp_path_factory):
    path = tmp_path_factory.mktemp("fi") / "whole.db"
    seen = []
    status = run_campaign(path, **ARGS, workers=1, progress_callback=lambda done, total: seen.append((done, total)),
                          **KW)
    assert seen and seen[-1] == (ARGS["samples"], ARGS["samples"])
    return path, status


def test_small_campaign(reference_db):
    path, status = reference_db
    assert status.complete and status.done == ARGS["samples"]
    mac = build("mac_array", "4x4")
    assert set(status.blocks) == set(mac.blocks())
    counts = status.counts()
    assert sum(counts.values()) == ARGS["samples"]
    assert counts[Outcome.MASKED] > 0 and counts[Outcome.SDC] > 0
    for block in status.blocks.values():
        ci = block.rates["unmasked"]
        assert 0 <= ci.low <= ci.estimate <= ci.high <= 1
    # proportional allocation: 17 blocks, pe blocks equal, top (128 bits vs 48) ~2.7x a pe block
    n = {b: s.injections for b, s in status.blocks.items()}
    assert abs(n["top"] / n["pe_0_0"] - 128 / 48) < 0.1
    meta = campaign_meta(path)
    assert meta["design"] == "mac_array" and meta["seed"] == 42 and meta["build_key"] == mac.key
    rows = _rows(path)
    assert [r[0] for r in rows] == list(range(ARGS["samples"]))


def test_fault_plan_is_deterministic_and_distinct():
    mac = build("mac_array", "4x4")
    a = fault_plan(mac, 1500, 500, seed=1)
    b = fault_plan(mac, 1500, 500, seed=1)
    c = fault_plan(mac, 1500, 500, seed=2)
    assert np.array_equal(a.sites, b.sites) and np.array_equal(a.cycles, b.cycles)
    assert not np.array_equal(a.sites, c.sites)
    assert len({(int(s), int(t)) for s, t in zip(a.sites, a.cycles, strict=True)}) == 500
    # every site lies in the block it is filed under
    offsets = np.concatenate([[0], np.cumsum([e.bits for e in mac.state])])
    for s, bid in zip(a.sites, a.block_ids, strict=True):
        element = int(np.searchsorted(offsets, s, side="right") - 1)
        assert mac.state[element].block == a.blocks[bid]
    flat = fault_plan(mac, 1500, 500, seed=1, strata="none")
    assert len(flat) == 500
    with pytest.raises(RampartError):
        fault_plan(mac, 1500, 500, seed=1, strata="bogus")


def test_killed_campaign_resumes_to_the_same_counts(reference_db, tmp_path):
    whole_path, whole = reference_db
    path = tmp_path / "killed.db"
    script = textwrap.dedent(f"""
        import time
        from faultinj.campaign import run_campaign
        run_campaign({str(path)!r}, **{ARGS!r}, workers=1, batch_size=40,
                     progress_callback=lambda done, total: time.sleep(0.05), **{KW!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        stored = 0
        while time.monotonic() < deadline and proc.poll() is None:
            if path.exists():
                try:
                    db = sqlite3.connect(path, timeout=5)
                    stored = db.execute("SELECT COUNT(*) FROM injections").fetchone()[0]
                    db.close()
                except sqlite3.OperationalError:
                    stored = 0
                if stored >= 200:
                    break
            time.sleep(0.02)
        assert proc.poll() is None, "the campaign finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    partial = _rows(path)
    assert 200 <= len(partial) < ARGS["samples"]
    status = resume_campaign(path, workers=2)
    assert status.complete
    assert status.counts() == whole.counts()
    rows = _rows(path)
    assert [r[0] for r in rows] == list(range(ARGS["samples"]))   # no id lost or duplicated
    assert rows == _rows(whole_path)
    # resuming a finished campaign does nothing
    assert resume_campaign(path, workers=1).counts() == whole.counts()


def test_different_campaign_in_same_db_is_refused(reference_db):
    path, _ = reference_db
    with pytest.raises(RampartError, match="different campaign.*seed"):
        run_campaign(path, **{**ARGS, "seed": 43}, workers=1, **KW)


def test_foreign_and_garbage_files_are_refused(tmp_path):
    foreign = tmp_path / "foreign.db"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE people (name TEXT)")
    db.commit()
    db.close()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(os.urandom(4096))
    for path in (foreign, garbage):
        for call in (lambda p: campaign_status(p), lambda p: run_campaign(p, **ARGS, workers=1, **KW)):
            with pytest.raises(RampartError, match="not a rampart campaign database") as info:
                call(path)
            assert "\n" not in str(info.value)
    assert garbage.stat().st_size == 4096
    with pytest.raises(RampartError, match="no such campaign"):
        campaign_status(tmp_path / "missing.db")


def test_old_schema_is_refused_in_one_line(reference_db, tmp_path):
    path, _ = reference_db
    old = tmp_path / "v1.db"
    old.write_bytes(Path(path).read_bytes())
    with sqlite3.connect(old) as db:
        db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    for call in (campaign_status, lambda p: resume_campaign(p, workers=1)):
        with pytest.raises(RampartError, match=r"schema version 1, this rampart reads 2 \(written by an older") as e:
            call(old)
        assert "\n" not in str(e.value)


def test_multi_bit_campaign_stores_and_resumes_its_upsets(tmp_path, monkeypatch):
    """--mbu 2: stored in the metadata, every batch injected as 2-bit upsets, outcomes those of the engine's 2-bit
    upsets, resumable, a different campaign from the single-bit one."""
    from faultinj.engine import GoldenRun, golden_run
    from faultinj.workload import make_workload

    upsets = set()
    inject = GoldenRun.inject

    def spy(self, sites, cycles, upset=1):
        upsets.add(upset)
        return inject(self, sites, cycles, upset)

    monkeypatch.setattr(GoldenRun, "inject", spy)
    args = {**ARGS, "samples": 300}
    path = tmp_path / "mbu.db"
    status = run_campaign(path, **args, workers=1, mbu=2, **KW)
    assert upsets == {2}
    assert status.complete and status.meta["mbu"] == 2 and campaign_meta(path)["mbu"] == 2
    rows = _rows(path)
    golden = golden_run(build("mac_array", "4x4"), make_workload("mac_array_matmul", "4x4", cycles=1500))
    sites, cycles = [r[1] for r in rows], [r[2] for r in rows]
    outcomes, simulated = golden.inject(sites, cycles, upset=2)
    assert [(r[4], r[5]) for r in rows] == list(zip(outcomes.tolist(), simulated.tolist(), strict=True))
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM injections WHERE id >= 150")
    assert resume_campaign(path, workers=1).counts() == status.counts()
    assert _rows(path) == rows
    with pytest.raises(RampartError, match="different campaign.*mbu"):
        run_campaign(path, **args, workers=1, mbu=1, **KW)
    with pytest.raises(RampartError, match="multi-bit upset"):
        run_campaign(tmp_path / "bad.db", **args, workers=1, mbu=0, **KW)


def test_status_gives_stratified_overall_and_block_rates(tmp_path):
    """A Neyman-allocated (iterative) element campaign: the overall and per-block rates are the strata's rates
    weighted by their populations, recomputed here by hand from the stored rows."""
    from faultinj.plan import fault_space
    from faultinj.stats import stratified_proportion

    path = tmp_path / "el.db"
    status = run_campaign(path, "mac_array", "4x4", "mac_array_matmul", None, seed=5, strata="element", workers=1,
                          iterative=True, margin=0.03, confidence=0.95, pilot=10, **KW)
    space = fault_space(build("mac_array", "4x4"), 1500, "element")
    rows = np.array([(r[1], r[2], r[4]) for r in _rows(path)], dtype=np.int64)      # site, cycle, outcome
    h = space.stratum_of(rows[:, 0], rows[:, 1])
    unmasked = rows[:, 2] != Outcome.MASKED
    k = np.bincount(h, weights=unmasked, minlength=len(space.sizes)).astype(np.int64)
    n = np.bincount(h, minlength=len(space.sizes))
    want = stratified_proportion(k, n, space.sizes, 0.95)
    got = status.stratified["unmasked"]
    assert got.estimate == pytest.approx(want.estimate) and got.low == pytest.approx(want.low)
    pooled = status.overall.rates["unmasked"].estimate
    assert abs(pooled - got.estimate) > 1e-4            # Neyman rounds: pooled counts are not the estimate
    acc = status.blocks["pe_1_2"]
    assert len(acc.cells) == 2 and sum(size for size, _ in acc.cells) == space.populations["pe_1_2"]
    cells = [(size, sum(c.values()) - c[Outcome.MASKED], sum(c.values())) for size, c in acc.cells]
    by_hand = sum(size * e / m for size, e, m in cells) / sum(size for size, _, _ in cells)
    assert acc.stratified["unmasked"].estimate == pytest.approx(by_hand)


def test_campaign_object_reads_and_continues_a_stored_campaign(reference_db, tmp_path):
    from faultinj.campaign import Campaign

    path, status = reference_db
    campaign = Campaign(path)
    assert campaign.meta["design"] == "mac_array" and campaign.config == build("mac_array", "4x4").config
    assert campaign.counts() == status.counts() and campaign.status().done == ARGS["samples"]
    fresh = Campaign.run(tmp_path / "small.db", "mac_array", "4x4", samples=50, seed=3, workers=1, **KW)
    assert fresh.status().done == 50 and fresh.resume(workers=1).done == 50
    with pytest.raises(RampartError):
        Campaign(tmp_path / "missing.db")
