"""Replay of stored injections: the outcome again, from scratch, and where the faulty run departs from the golden one.

:class:`Replayer` opens a campaign database, rebuilds its design and workload, and replays injections by id:

* the replayed **outcome** comes from the reference injection path, :meth:`faultinj.engine.ReferenceRun.outcome`
  (fresh model, the workload's memory image, full replay, flip, observed outputs, memory regions, completion port
  and watchdog, detection and correction ports, multi-bit upsets): the same classification rules as the fast
  engine that stored the outcome, without its snapshots, digests and early stop;
* **diagnostics** from a golden and a faulty model run side by side: the first observed cycle whose outputs differ,
  the first cycle a detection port is high, the cycle after which the state equals the golden run's again (once
  equal it stays equal: same state, same inputs), and for a run that never converges whether its end state (at
  completion, past the stimulus with the last inputs held, for workloads with a completion port) equals the golden
  end state;
* optionally an FST **waveform** of the faulty run from cycle 0 to its end (the build's tracing variant).
"""
import dataclasses
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from base import RampartError
from faultinj.campaign import campaign_config, campaign_meta
from faultinj.engine import ReferenceRun, check_upset, load_image
from faultinj.outcomes import Outcome
from faultinj.workload import Workload, make_workload
from sim.build import Build, build
from sim.harness import NativeSim

__all__ = ["Replay", "Replayer", "replay_injection"]

#: Cycles the side-by-side run advances between two state comparisons.
CHUNK = 64


@dataclass(frozen=True)
class Replay:
    """One replayed injection: what was flipped, the stored and the replayed outcome, and the diagnostics."""

    injection: int
    site: int
    cycle: int                      # flipped after this many rising edges, before this cycle's inputs
    block: str
    element: str                    # state element (with ``[word]`` for a memory)
    bits: tuple[int, ...]           # the flipped bits of its word
    stored: Outcome
    outcome: Outcome                # from the reference path
    first_difference: int | None    # first observed cycle whose outputs differ from the golden run
    first_detection: int | None     # first cycle a detection port is high
    converged: int | None           # the state equals the golden run's again after this cycle (None: never)
    end: int                        # cycle the faulty run ended (past the stimulus only with a completion port)
    ended_by: str | None            # "completion", "detection" or "watchdog" (None: no completion port)
    regions_differ: bool | None     # observed memory regions differ at the end (None: the workload has none)
    final_equal: bool               # the faulty run's end state equals the golden run's end state
    trace: Path | None = None

    @property
    def agrees(self) -> bool:
        return self.outcome == self.stored

    @property
    def flipped(self) -> str:
        """E.g. ``top.x_0[3] bit 5`` or ``top.acc 2 adjacent bits 7, 0``."""
        if len(self.bits) == 1:
            return f"{self.element} bit {self.bits[0]}"
        return f"{self.element} {len(self.bits)} adjacent bits {', '.join(map(str, self.bits))}"


@dataclass(frozen=True)
class _Divergence:
    """The diagnostics of :class:`Replay` (same names)."""

    first_difference: int | None
    first_detection: int | None
    converged: int | None
    end: int
    ended_by: str | None
    regions_differ: bool | None
    final_equal: bool


class Replayer:
    """Replays injections of the campaign in ``db``; ``trace=True`` also builds the tracing variant (needed for
    waveforms). The golden traces of the reference path are computed once, here."""

    def __init__(self, db, *, trace: bool = False):
        self.db = Path(db)
        meta = campaign_meta(self.db)
        self.meta = meta
        self.upset = check_upset(int(meta.get("mbu", 1)))
        config = campaign_config(meta)
        self.build: Build = build(meta["design"], config, trace=trace)
        if self.build.key != meta["build_key"]:
            raise RampartError(f"{self.db}: the build of {meta['design']} changed since this campaign ran (RTL, "
                               "harness or tools edited): its sites no longer name the same bits")
        self.workload: Workload = make_workload(meta["workload"], config, seed=meta["workload_seed"],
                                                cycles=meta["workload_cycles"], args=meta.get("workload_args"))
        if self.workload.key != meta["workload_key"]:
            raise RampartError(f"{self.db}: workload {meta['workload']} is no longer the one this campaign ran")
        self.reference = ReferenceRun(self.build, self.workload)

    def stored(self, injection: int) -> tuple[int, int, str, Outcome]:
        """(site, cycle, block, stored outcome) of an injection id."""
        with sqlite3.connect(f"file:{self.db.resolve()}?mode=ro", uri=True) as con:
            row = con.execute("SELECT site, cycle, block, outcome FROM injections WHERE id = ?",
                              (int(injection),)).fetchone()
        if row is None:
            raise RampartError(f"{self.db} has no injection {injection}")
        site, cycle, block, outcome = row
        return int(site), int(cycle), str(block), Outcome(outcome)

    def replay(self, injection: int, trace: str | Path | None = None) -> Replay:
        """Replay one injection (optionally writing an FST waveform of the faulty run to ``trace``)."""
        trace = _check_trace(trace)
        site, cycle, block, stored = self.stored(injection)
        outcome = self.reference.outcome(site, cycle, self.upset)
        div = _diverge(self.reference, site, cycle, self.upset)
        if trace is not None:
            if not self.build.trace_library.exists():
                raise RampartError("waveforms need the tracing build: Replayer(db, trace=True)")
            _faulty_waveform(self.build, self.workload, site, cycle, self.upset, trace)
        with NativeSim(self.build) as sim:
            element, word, bit = sim.site(site)
        e = self.build.state[element]
        bits = tuple(sorted({(bit + j) % e.width for j in range(self.upset)}))
        name = e.hier_name + (f"[{word}]" if e.depth > 1 else "")
        return Replay(int(injection), site, cycle, block, name, bits, stored, outcome, **dataclasses.asdict(div),
                      trace=trace)


def replay_injection(db, injection: int, trace: str | Path | None = None) -> Replay:
    """Replay one stored injection of the campaign in ``db`` (see :class:`Replayer`)."""
    trace = _check_trace(trace)
    return Replayer(db, trace=trace is not None).replay(injection, trace)


def _check_trace(trace) -> Path | None:
    """The waveform path, checked before anything is simulated."""
    if trace is None:
        return None
    path = Path(trace)
    if path.suffix != ".fst":
        raise RampartError(f"waveforms are written as FST; give a file name ending in .fst, not {str(trace)!r}")
    if not path.parent.resolve().is_dir():
        raise RampartError(f"cannot write {path}: no folder {path.parent}")
    return path


def _slice(workload: Workload, start: int, stop: int) -> dict[str, np.ndarray]:
    return {k: v[start:stop] for k, v in workload.inputs.items()}


def _first(mask: np.ndarray, start: int) -> int | None:
    hits = np.flatnonzero(mask)
    return start + int(hits[0]) if len(hits) else None


def _diverge(reference: ReferenceRun, site: int, cycle: int, upset: int) -> _Divergence:
    """Golden and faulty model side by side from the flip on, ``CHUNK`` cycles at a time; the chunk in which the
    states become equal is rerun from snapshots cycle by cycle to find the exact cycle. A run that does not
    converge goes on past the stimulus as the reference path does and is compared with ``reference``'s end."""
    wl = reference.workload
    observe = np.ones(wl.cycles, dtype=bool) if wl.observe is None else np.asarray(wl.observe, dtype=bool)
    ports = list(dict.fromkeys([*wl.outputs, *wl.detect]))
    first_diff = first_det = None
    ended_by = None if wl.complete is None else "completion"
    regions = None if not wl.regions else False
    with NativeSim(reference.build) as golden, NativeSim(reference.build) as faulty:
        for sim in (golden, faulty):
            load_image(sim, wl)
            sim.run_stimulus(_slice(wl, 0, cycle), [])
        faulty.flip_upset(site, upset)
        c = cycle
        while c < wl.cycles:
            n = min(CHUNK, wl.cycles - c)
            snaps = golden.snapshot(), faulty.snapshot()
            g = golden.run_stimulus(_slice(wl, c, c + n), ports)
            f = faulty.run_stimulus(_slice(wl, c, c + n), ports)
            if first_diff is None and wl.outputs:
                differs = np.any([(g[p] != f[p]).any(axis=1) for p in wl.outputs], axis=0)
                first_diff = _first(differs & observe[c:c + n], c)
            if first_det is None and wl.detect:
                first_det = _first(np.any([f[p].any(axis=1) for p in wl.detect], axis=0), c)
            if golden.state_bytes() == faulty.state_bytes():
                golden.restore(snaps[0])
                faulty.restore(snaps[1])
                for i in range(n):
                    golden.run_stimulus(_slice(wl, c + i, c + i + 1), [])
                    faulty.run_stimulus(_slice(wl, c + i, c + i + 1), [])
                    if golden.state_bytes() == faulty.state_bytes():
                        return _Divergence(first_diff, first_det, c + i, wl.cycles, ended_by, regions, True)
                raise AssertionError("the chunk's end states are equal, so some cycle of it converges")
            c += n
        end, ended_by = _run_out(faulty, wl)
        if first_det is None and ended_by == "detection":
            first_det = end
        if wl.regions:
            memory = [faulty.read_memory(faulty.element_index(name), first, count)
                      for name, first, count in wl.regions]
            regions = any(not np.array_equal(a, b) for a, b in zip(memory, reference.memory, strict=True))
        return _Divergence(first_diff, first_det, None, end, ended_by, regions,
                           faulty.state_bytes() == reference.state)


def _run_out(sim: NativeSim, wl: Workload) -> tuple[int, str | None]:
    """Past the stimulus (workloads with a completion port): the last inputs held, one cycle at a time until
    completion, a detection port or the watchdog, as the reference path does. Returns (end cycle, what ended it:
    ``"completion"``, ``"detection"``, ``"watchdog"``, or None without a completion port)."""
    c = wl.cycles
    if wl.complete is None:
        return c, None
    while c < wl.watchdog_cycles:
        if any(sim.peek(d) for d in wl.detect):
            return c, "detection"
        if sim.peek(wl.complete):
            return c, "completion"
        sim.step(1)
        c += 1
    return c, "watchdog"


def _faulty_waveform(build_: Build, wl: Workload, site: int, cycle: int, upset: int, path: Path):
    with NativeSim(build_, trace=path) as sim:
        load_image(sim, wl)
        sim.run_stimulus(_slice(wl, 0, cycle), [])
        sim.flip_upset(site, upset)
        sim.run_stimulus(_slice(wl, cycle, wl.cycles), [])
        _run_out(sim, wl)
