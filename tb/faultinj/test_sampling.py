"""Exhaustive and iterative campaigns, and the statistics validated against an exhaustively injected fault space.

The small space: a 2x2 MAC array running 200 cycles of the matmul workload (256 bits x 200 cycles = 51,200 faults),
every fault injected once. Samples drawn by the campaign's own planner (:func:`faultinj.plan.fault_plan`) are
looked up in that table, so the interval coverage is measured without re-simulating.
"""
import sqlite3

import numpy as np
import pytest

from base import RampartError
from faultinj.campaign import campaign_status, resume_campaign, run_campaign
from faultinj.engine import ReferenceRun
from faultinj.outcomes import Outcome
from faultinj.plan import ELEMENT_SHARE, MEMORY_RANGES, draw_round, fault_plan, fault_space, space_from_description
from faultinj.stats import StoppingRule, leveugle_sample_size, proportion_interval, stratified_proportion
from faultinj.workload import make_workload
from rtl.common.mac_array import MacArrayConfig
from sim.build import build

SMALL = MacArrayConfig(rows=2, cols=2)
CYCLES = 200


@pytest.fixture(scope="module")
def exhaustive(tmp_path_factory):
    path = tmp_path_factory.mktemp("exh") / "exh.db"
    status = run_campaign(path, "mac_array", SMALL, "mac_array_matmul", None, strata="exhaustive", workers=1,
                          workload_cycles=CYCLES)
    with sqlite3.connect(path) as db:
        rows = np.array(db.execute("SELECT id, site, cycle, outcome FROM injections ORDER BY id").fetchall())
    return path, status, rows


def test_exhaustive_injects_every_fault_once(exhaustive):
    path, status, rows = exhaustive
    mac = build("mac_array", SMALL)
    total = mac.state_bits * CYCLES
    assert mac.state_bits == 256 and status.planned == total == status.done and status.complete
    assert np.array_equal(rows[:, 0], np.arange(total))
    assert np.array_equal(rows[:, 1] * CYCLES + rows[:, 2], rows[:, 0])       # id = site * cycles + cycle
    truth = float(np.mean(rows[:, 3] != Outcome.MASKED))
    exact = status.stratified["unmasked"]
    assert exact.estimate == pytest.approx(truth) and exact.low == exact.high == pytest.approx(truth)
    assert 0.2 < truth < 0.8
    # a few faults agree with the slow reference path
    ref = ReferenceRun(mac, make_workload("mac_array_matmul", SMALL, cycles=CYCLES))
    for i in np.random.default_rng(0).choice(total, 6, replace=False):
        assert ref.outcome(int(rows[i, 1]), int(rows[i, 2])) == Outcome(rows[i, 3])
    # rerunning is a no-op; an exhaustive campaign cannot be iterative
    assert resume_campaign(path, workers=1).counts() == status.counts()
    with pytest.raises(RampartError, match="exhaustive"):
        run_campaign(path, "mac_array", SMALL, strata="exhaustive", iterative=True, margin=0.05,
                     workload_cycles=CYCLES)


def _coverage(rows, strata, seeds=100, samples=300, windows=1) -> np.ndarray:
    """Per seed 0..seeds-1: does the 95% interval of that seed's planned sample contain the exhaustive rate?"""
    mac = build("mac_array", SMALL)
    unmasked = rows[:, 3] != Outcome.MASKED
    truth = float(unmasked.mean())
    space = fault_space(mac, CYCLES, strata, windows)
    hits = np.zeros(seeds, dtype=bool)
    for seed in range(seeds):
        plan = fault_plan(mac, CYCLES, samples, seed, strata, windows)
        events = unmasked[plan.sites * CYCLES + plan.cycles]
        if strata == "none":
            ci = proportion_interval(int(events.sum()), samples, 0.95, "wilson")
        else:
            h = space.stratum_of(plan.sites, plan.cycles)
            k = np.bincount(h, weights=events, minlength=len(space.sizes)).astype(np.int64)
            n = np.bincount(h, minlength=len(space.sizes))
            ci = stratified_proportion(k, n, space.sizes, 0.95).interval
        hits[seed] = ci.contains(truth)
    return hits


def test_interval_coverage_against_the_exhaustive_truth(exhaustive):
    """Issue acceptance (b): seeds x 300 planned faults; how often the 95% interval holds the exhaustive rate.

    The acceptance is stated on 100 seeds (>= 93 of 100), but 100 seeds cannot separate 95% coverage from a
    shortfall: even at the exact coverage of Wilson here (95.3%, computed from the hypergeometric law) about one
    set of 100 seeds in seven scores below 93 (seeds 0-99 of the uniform plan score 89). So the assertion is on
    1,000 seeds (>= 93%; at 95% coverage it fails with probability ~0.2%), and the 100-seed scores are printed.
    """
    _, _, rows = exhaustive
    results = {"stratified by block (300)": _coverage(rows, "block", 1000),
               "uniform, Wilson (300)": _coverage(rows, "none", 1000),
               "block x 4 cycle windows (600)": _coverage(rows, "block,cycle", 1000, samples=600, windows=4),
               "stratified by element (300)": _coverage(rows, "element", 1000),
               "element x 4 cycle windows (600)": _coverage(rows, "element,cycle", 1000, samples=600, windows=4)}
    for name, hits in results.items():
        print(f"coverage of the exhaustive unmasked rate, {name}: {hits[:100].sum()}/100 seeds, "
              f"{hits.sum()}/1000 seeds")
    for name, hits in results.items():
        assert hits.mean() >= 0.93, name


def test_rounds_never_replan_a_fault():
    mac = build("mac_array", SMALL)
    space = fault_space(mac, CYCLES, "block,cycle", 4)
    used = [np.empty(0, dtype=np.int64)] * len(space.sizes)
    seen = set()
    for r, per in enumerate((30, 200, 400)):
        add = np.minimum(per, space.sizes - np.array([len(u) for u in used]))
        strata, local, sites, cycles = draw_round(space, used, add, seed=5, round_=r)
        again = draw_round(space, used, add, seed=5, round_=r)
        assert all(np.array_equal(a, b) for a, b in zip((strata, local, sites, cycles), again, strict=True))
        assert np.array_equal(space.stratum_of(sites, cycles), strata)
        for h in range(len(space.sizes)):
            assert np.array_equal(space.encode(h, sites[strata == h], cycles[strata == h]),
                                  local[strata == h])
        pairs = set(zip(sites.tolist(), cycles.tolist(), strict=True))
        assert len(pairs) == len(sites) and not pairs & seen
        seen |= pairs
        used = [np.concatenate([u, local[strata == h]]) for h, u in enumerate(used)]
    assert len(seen) == sum(len(u) for u in used)


def test_iterative_resume_is_deterministic(tmp_path):
    args = dict(design="mac_array", config=SMALL, workload="mac_array_matmul", samples=None, seed=9,
                strata="block,cycle", workers=1, workload_cycles=CYCLES, cycle_windows=2, iterative=True,
                margin=0.03, confidence=0.95, per_block=False)
    whole = run_campaign(tmp_path / "whole.db", **args)
    assert whole.complete and whole.rounds[-1].done and len(whole.rounds) >= 3
    assert whole.stratified["unmasked"].half_width <= 0.03
    # kill after the second round's plan was stored and part of it run: drop results, resume
    part = tmp_path / "part.db"
    run_campaign(part, **args)
    with sqlite3.connect(part) as db:
        cut = db.execute("SELECT MIN(id) FROM planned WHERE round = 1").fetchone()[0] + 7
        db.execute("DELETE FROM injections WHERE id >= ?", (cut,))
        last = db.execute("SELECT MAX(round) FROM rounds").fetchone()[0]
        db.execute("DELETE FROM rounds WHERE round > 1")
        db.execute("DELETE FROM planned WHERE round > 1")
    assert last > 1
    assert not campaign_status(part).complete
    again = resume_campaign(part, workers=2)
    assert again.complete and again.counts() == whole.counts() and again.rounds == whole.rounds
    with pytest.raises(RampartError, match="different campaign.*margin"):
        run_campaign(part, **{**args, "margin": 0.02})


@pytest.mark.parametrize("strata, windows", [("block", 1), ("block,cycle", 8)])
def test_iterative_beats_leveugle(tmp_path, strata, windows):
    """+/-1% at 99% on the overall unmasked rate of the MAC array workload with fewer injections than
    Leveugle's plain random sample size (16,588 at p = 0.5)."""
    status = run_campaign(tmp_path / "it.db", "mac_array", "4x4", "mac_array_matmul", None, seed=1, strata=strata,
                          cycle_windows=windows, workers=2, workload_cycles=2000, iterative=True, margin=0.01,
                          confidence=0.99)
    mac = build("mac_array", "4x4")
    population = mac.state_bits * 2000
    leveugle = leveugle_sample_size(population, 0.01, 0.99)
    est = status.stratified["unmasked"]
    print(f"iterative {strata} x {windows} windows: {status.done:,} injections in {len(status.rounds)} rounds, "
          f"unmasked {est.estimate:.4f} +/- {est.half_width:.4f} (99%); Leveugle (p=0.5) {leveugle:,} for "
          f"N={population:,}, 16,588 for N -> infinity")
    assert status.complete and est.half_width <= 0.01 and est.interval.confidence == 0.99
    assert status.done < leveugle <= 16588


def test_iterative_per_block_meets_the_margin_in_every_block(tmp_path):
    status = run_campaign(tmp_path / "pb.db", "mac_array", SMALL, "mac_array_matmul", None, seed=4, strata="block",
                          workers=1, workload_cycles=CYCLES, iterative=True, margin=0.06, confidence=0.95,
                          per_block=True)
    mac = build("mac_array", SMALL)
    assert status.complete and set(status.blocks) == set(mac.blocks())
    populations = fault_space(mac, CYCLES, "block").populations
    for name, block in status.blocks.items():
        k = block.injections - block.counts[Outcome.MASKED]
        ci = stratified_proportion([k], [block.injections], [populations[name]], 0.95)
        assert ci.half_width <= 0.06, name
    overall_only = run_campaign(tmp_path / "o.db", "mac_array", SMALL, "mac_array_matmul", None, seed=4,
                                strata="block", workers=1, workload_cycles=CYCLES, iterative=True, margin=0.06,
                                confidence=0.95)
    assert overall_only.done < status.done


def test_element_groups_and_their_description():
    """Element strata: big elements alone, small ones pooled per (block, kind), never across blocks; the stored
    description rebuilds the same strata, sizes and stratum of every fault."""
    mac = build("mac_array", "4x4")
    space = fault_space(mac, CYCLES, "element,cycle", 3)
    threshold = mac.state_bits / ELEMENT_SHARE
    for e, element in enumerate(mac.state):
        name = space.groups[space.element_group[e]]
        assert name == (element.hier_name if element.bits >= threshold else f"{element.block} {element.kind}")
    assert np.all(space.group_block >= 0) and space.sizes.sum() == space.total
    assert len(space.groups) == 33 and len(space.sizes) == 99        # 16 acc + 16 pooled a/w + out
    sram = build("sram", "256x16-secded")
    memory = next(e for e in sram.state if e.kind == "mem")
    ranges = fault_space(sram, 50, "element")
    rows = [r * memory.depth // MEMORY_RANGES for r in range(MEMORY_RANGES + 1)]
    assert [g for g in ranges.groups if g.startswith(memory.hier_name)] == \
        [f"{memory.hier_name}[{lo}:{hi}]" for lo, hi in zip(rows, rows[1:], strict=False)]
    assert ranges.sizes.sum() == sram.state_bits * 50
    for one in (space, ranges):
        again = space_from_description(one.describe())
        assert np.array_equal(again.sizes, one.sizes) and again.names == one.names
        rng = np.random.default_rng(2)
        for h in range(len(one.sizes)):
            sites, cycles = one.decode(h, rng.integers(0, one.sizes[h], 20))
            assert np.all(again.stratum_of(sites, cycles) == h)
            assert np.array_equal(again.block_of(sites), one.block_of(sites))
            assert np.array_equal(one.encode(h, sites, cycles), again.encode(h, sites, cycles))
    # a memory row range holds exactly its rows
    h = ranges.groups.index(f"{memory.hier_name}[{rows[3]}:{rows[4]}]")
    sites, _ = ranges.decode(h, np.arange(ranges.sizes[h]))
    first = next(i for i, e in enumerate(sram.state) if e is memory)
    offset = sum(e.bits for e in sram.state[:first])
    assert set(((sites - offset) // memory.width).tolist()) == set(range(rows[3], rows[4]))


def test_iterative_element_campaign_covers_the_exhaustive_truth(exhaustive, tmp_path):
    """An iterative element-stratified campaign: its overall and per-block stratified intervals (and the pooled
    counts' blocks) against the exhaustive truth of the same space."""
    _, _, rows = exhaustive
    mac = build("mac_array", SMALL)
    unmasked = rows[:, 3] != Outcome.MASKED
    status = run_campaign(tmp_path / "el.db", "mac_array", SMALL, "mac_array_matmul", None, seed=3,
                          strata="element", workers=1, workload_cycles=CYCLES, iterative=True, margin=0.03,
                          confidence=0.99, rates=("unmasked", "sdc"), pilot=10)
    assert status.complete and status.is_stratified
    overall = status.stratified["unmasked"]
    assert overall.half_width <= 0.03 and overall.interval.contains(float(unmasked.mean()))
    assert status.stratified["sdc"].half_width <= 0.03
    block_of = fault_space(mac, CYCLES, "block").block_of(rows[:, 1])
    for b, name in enumerate(fault_space(mac, CYCLES, "block").blocks):
        est = status.blocks[name].stratified["unmasked"]
        assert est.interval.contains(float(unmasked[block_of == b].mean())), name


def _iterative_run(space, unmasked, seed, rule) -> tuple[bool, int, float]:
    """One iterative campaign's rounds (:func:`draw_round` + :class:`StoppingRule`, as the campaign runs them) with
    outcomes looked up in the exhaustive table: (margin met, injections, final stratified interval)."""
    sizes = space.sizes
    used = [np.empty(0, dtype=np.int64)] * len(sizes)
    k, n = np.zeros(len(sizes), dtype=np.int64), np.zeros(len(sizes), dtype=np.int64)
    for r in range(100):
        decision = rule.evaluate(k, n, sizes)
        if decision.done:
            break
        strata, local, sites, cycles = draw_round(space, used, decision.additional, seed, r)
        np.add.at(k, strata, unmasked[sites * CYCLES + cycles].astype(np.int64))
        np.add.at(n, strata, 1)
        used = [np.concatenate([u, local[strata == h]]) for h, u in enumerate(used)]
    return decision.done, int(n.sum()), stratified_proportion(k, n, sizes, rule.confidence).interval


def test_iterative_element_strata_coverage(exhaustive):
    """The iterative mode (pilot 30, Neyman rounds to +/-2 % at 95 %) with element strata, 200 seeds: its final
    interval holds the exhaustive truth about as often as stated (measured 190/200; uniform 191/200), with far
    fewer injections than uniform sampling run the same way."""
    _, _, rows = exhaustive
    mac = build("mac_array", SMALL)
    unmasked = rows[:, 3] != Outcome.MASKED
    truth = float(unmasked.mean())
    rule = StoppingRule(margin=0.02, confidence=0.95, pilot=30)
    runs = [_iterative_run(fault_space(mac, CYCLES, "element"), unmasked, seed, rule) for seed in range(200)]
    assert all(done for done, _, _ in runs)
    hits = sum(ci.contains(truth) for _, _, ci in runs)
    uniform = [_iterative_run(fault_space(mac, CYCLES, "none"), unmasked, seed, rule)[1] for seed in range(20)]
    print(f"iterative element strata: {hits}/200 intervals hold the truth; mean injections "
          f"{np.mean([n for _, n, _ in runs]):.0f} vs uniform {np.mean(uniform):.0f}")
    assert hits >= 180
    assert np.mean([n for _, n, _ in runs]) < 0.5 * np.mean(uniform)
