"""Replay (faultinj.replay, `rampart fi replay`) gives back the stored outcome on NPU and NeuroCore campaigns.

Each campaign is run by the fast engine (snapshots, digests, early stop); its stored injections are then replayed
from scratch through the reference path (memory image, regions, completion and watchdog, detection). For every
outcome class that occurs, :data:`PER_CLASS` injections are replayed (all of them where the campaign has fewer,
which the output says). The diagnostics must fit the outcome, and two of them are recomputed here by brute force.

Campaign sizes (uniform, seed 1): NPU ``npu_conv`` on u55-32, 4,000 faults: about 3,940 latent (most of the state
is never rewritten after the one layer), 28 masked, 29 SDC, one detected and one hang; NeuroCore ``snn_pattern``
on 16x16, 400 faults: masked, SDC and latent in the hundreds.
"""
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner

from base import RampartError
from faultinj.campaign import run_campaign
from faultinj.engine import load_image
from faultinj.outcomes import Outcome
from faultinj.replay import Replayer
from rampart.cli import main
from sim.harness import NativeSim

PER_CLASS = 20


def campaign(tmp_path_factory, design, config, workload, samples, seed=1):
    db = tmp_path_factory.mktemp(design) / f"{workload}.db"
    status = run_campaign(db, design, config, workload, samples=samples, seed=seed, strata="none", workers=1)
    assert status.complete
    return db


@pytest.fixture(scope="module")
def npu_db(tmp_path_factory):
    return campaign(tmp_path_factory, "npu", "u55-32", "npu_conv", 6000)  # masked ~0.45%: >= 20 of them


@pytest.fixture(scope="module")
def neurocore_db(tmp_path_factory):
    return campaign(tmp_path_factory, "neurocore", "16x16", "snn_pattern", 400)


def stored_by_class(db) -> dict[Outcome, list[int]]:
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT id, outcome FROM injections ORDER BY id").fetchall()
    by_class: dict[Outcome, list[int]] = {}
    for ident, outcome in rows:
        by_class.setdefault(Outcome(outcome), []).append(ident)
    return by_class


def check_diagnostics(r, workload):
    """The side-by-side diagnostics fit the reference path's outcome."""
    if r.outcome == Outcome.MASKED:
        assert r.first_difference is None and not r.regions_differ and (r.converged is not None or r.final_equal)
    elif r.outcome == Outcome.SDC:
        assert r.first_difference is not None or r.regions_differ
    elif r.outcome == Outcome.LATENT:
        assert r.first_difference is None and not r.regions_differ and r.converged is None and not r.final_equal
    elif r.outcome == Outcome.DETECTED_UNRECOVERABLE:
        assert r.first_detection is not None
    elif r.outcome == Outcome.HANG:
        assert r.ended_by == "watchdog" and r.end == workload.watchdog_cycles and r.converged is None


def replay_each_class(db, per_class: int) -> dict[Outcome, tuple[int, int]]:
    """Replay ``per_class`` injections of every stored class (all when fewer); assert each agrees. Returns class ->
    (replayed, stored)."""
    replayer = Replayer(db)
    done, disagree = {}, []
    for outcome, ids in sorted(stored_by_class(db).items()):
        chosen = ids if len(ids) <= per_class else list(np.random.default_rng(0).choice(ids, per_class, False))
        for ident in chosen:
            r = replayer.replay(int(ident))
            assert r.stored == outcome
            if not r.agrees:
                disagree.append((int(ident), outcome.name, r.outcome.name))
            else:
                check_diagnostics(r, replayer.workload)
        done[outcome] = (len(chosen), len(ids))
    note = f" (all: fewer than {per_class} stored)"
    summary = ", ".join(f"{o.name} {n} of {m}" + (note if m < per_class else "") for o, (n, m) in done.items())
    print(f"\n{db.name}: replayed {summary}; {sum(n for n, _ in done.values()) - len(disagree)} agree")
    assert not disagree, f"replayed != stored (id, stored, replayed): {disagree}"
    return done


def test_npu_replays_agree(npu_db):
    """npu_conv (memory image, OFM region, done, error): every replayed injection gives its stored class; masked
    (which the CLI's earlier replay without the memory image called latent), SDC and latent >= 20 times each."""
    done = replay_each_class(npu_db, PER_CLASS)
    for outcome in (Outcome.MASKED, Outcome.SDC, Outcome.LATENT):
        assert done[outcome][0] >= PER_CLASS


def test_neurocore_replays_agree(neurocore_db):
    done = replay_each_class(neurocore_db, PER_CLASS)
    assert set(done) == {Outcome.MASKED, Outcome.SDC, Outcome.LATENT}
    assert all(n == PER_CLASS for n, _ in done.values())


def test_diagnostics_by_brute_force(neurocore_db):
    """The convergence cycle (found from 64-cycle chunks and snapshots) is the first cycle after which the full
    state equals the golden one, stepping cycle by cycle; the first observed difference is the first observed
    cycle where the faulty output trace differs from the golden trace."""
    replayer = Replayer(neurocore_db)
    wl, build_ = replayer.workload, replayer.build
    by_class = stored_by_class(neurocore_db)
    for ident in by_class[Outcome.MASKED][:3] + by_class[Outcome.SDC][:3]:
        r = replayer.replay(ident)
        with NativeSim(build_) as golden, NativeSim(build_) as faulty:
            for sim in (golden, faulty):
                load_image(sim, wl)
                sim.run_stimulus({k: v[:r.cycle] for k, v in wl.inputs.items()}, [])
            faulty.flip_upset(r.site, replayer.upset)
            converged, outputs = None, []
            for c in range(r.cycle, wl.cycles):
                one = {k: v[c:c + 1] for k, v in wl.inputs.items()}
                golden.run_stimulus(one, [])
                outputs.append(faulty.run_stimulus(one, list(wl.outputs))[wl.outputs[0]][0])
                if converged is None and golden.state_bytes() == faulty.state_bytes():
                    converged = c
        assert r.converged == converged, ident
        golden_out = replayer.reference.outputs[wl.outputs[0]][r.cycle:]
        differs = (np.array(outputs) != golden_out).any(axis=1) & wl.observe[r.cycle:]
        first = r.cycle + int(np.flatnonzero(differs)[0]) if differs.any() else None
        assert r.first_difference == first, ident
        assert (r.outcome == Outcome.SDC) == (first is not None)


def test_cli_replay_prints_the_agreeing_outcome(npu_db):
    """`rampart fi replay` on the NPU campaign: one injection of every stored class, each printed as agreeing."""
    runner = CliRunner()
    for outcome, ids in stored_by_class(npu_db).items():
        result = runner.invoke(main, ["fi", "replay", str(npu_db), str(ids[0])])
        assert result.exit_code == 0, result.output
        assert f"stored outcome {outcome.name}" in result.output
        assert f"replayed outcome {outcome.name} (reference path): agrees with the stored outcome" in result.output
        if outcome in (Outcome.MASKED, Outcome.SDC, Outcome.LATENT):
            regions = "differ" if outcome == Outcome.SDC else "equal"
            assert f"observed memory regions at the end: {regions}" in result.output
    bad = runner.invoke(main, ["fi", "replay", str(npu_db), "999999"])
    assert bad.exit_code == 2 and bad.output.strip() == f"rampart: error: {npu_db} has no injection 999999"
    bad = runner.invoke(main, ["fi", "replay", str(npu_db), "0", "--trace", str(npu_db.parent / "no" / "f.fst")])
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_changed_build_is_refused(neurocore_db, tmp_path):
    copy = tmp_path / "copy.db"
    with sqlite3.connect(neurocore_db) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with sqlite3.connect(copy) as con:
        con.execute("UPDATE meta SET value = '\"0\"' WHERE key = 'build_key'")
    with pytest.raises(RampartError, match="changed since this campaign ran"):
        Replayer(copy)


@pytest.mark.slow
def test_larger_campaigns_replay_agree(tmp_path_factory):
    """20,000 NPU faults (about 140 masked, 145 SDC and a handful detected and hung) and 3,000 NeuroCore faults:
    50 of every class (all of the rarer ones) replay to their stored class; a NeuroCore waveform is written."""
    npu = campaign(tmp_path_factory, "npu", "u55-32", "npu_conv", 20_000, seed=2)
    done = replay_each_class(npu, 50)
    assert done[Outcome.MASKED][0] == done[Outcome.SDC][0] == 50
    neurocore = campaign(tmp_path_factory, "neurocore", "16x16", "snn_pattern", 3000, seed=2)
    replay_each_class(neurocore, 50)
    trace = neurocore.parent / "sdc.fst"
    ident = stored_by_class(neurocore)[Outcome.SDC][0]
    r = Replayer(neurocore, trace=True).replay(ident, trace)
    assert r.agrees and trace.stat().st_size > 0
