"""Fault-injection campaigns: seeded fault lists, local or Dask workers, results streamed into SQLite (WAL).

Three modes, all reproducible from the seed and resumable (a killed campaign ends with exactly the counts of an
uninterrupted one, nothing lost or duplicated; each batch of results is committed in one transaction):

* **fixed** (``samples``): the fault list is a pure function of (build, workload, samples, seed, strata), drawn
  by :func:`faultinj.plan.fault_plan` (without replacement, split over the strata in proportion to their size) and
  put in a seeded order; a fault's ``id`` is its position. A resumed campaign recomputes the list and runs only
  the ids not yet stored.
* **exhaustive** (``strata="exhaustive"``): every (site, cycle) of the space once, ``id = site * cycles + cycle``.
* **iterative** (``iterative=True`` with ``margin`` and ``confidence``): rounds driven by
  :class:`faultinj.stats.StoppingRule` (a pilot per stratum, then Neyman-allocated rounds) until every checked
  rate's interval half-width is within ``margin``. Round ``r`` is drawn with the RNG ``default_rng([seed, r])``
  excluding faults already planned, and stored (table ``planned``) together with the decision that led to it
  (table ``rounds``) in one transaction before it runs; rounds are planned only once the previous round is fully
  stored, so a resumed campaign reruns the stored plan's missing ids and then makes the same decisions.

Strata (see :mod:`faultinj.plan`): ``none``, ``block``, ``element``, ``cycle``, ``block,cycle``, ``element,cycle``
(``cycle_windows`` windows). The fault model is a single-event upset, or with ``mbu=K`` a K-bit upset of adjacent
bits of one word (see :mod:`faultinj.engine`: wrapping at the word's edge); the sampled fault space is the same.

Workers (see :mod:`faultinj.scheduler`): this process (``workers=1``), a local fork pool, or a Dask cluster
(``scheduler=ADDRESS``); results are always committed by this process, so resume semantics do not depend on them.

One campaign runs on a database at a time (:class:`CampaignLock`, a lock file beside it): a second ``run`` or
``resume`` is refused with one line. Everything that can be checked (options, sample size against the fault space)
is checked before the database is created, and a database that cannot be set up is removed again.

Tables: ``meta(key, value)`` (design, config, workload, seeds, sampling parameters, ``mbu``, the strata as
:meth:`faultinj.plan.FaultSpace.describe` under ``space``, build key, schema version, ``min_per_stratum``,
``sized_for``; and ``timing``, the wall-clock and worker seconds spent so far, updated with every batch),
``injections(id, site, cycle, block, outcome, cycles, analytic, top1)`` with ``id`` the fault's id,
``analytic`` 1 for a fault classified by the liveness analysis without simulating it (``liveness`` in ``meta``;
``cycles`` is then 0) and ``top1``, for classifier workloads (the model workload with one score vector out),
1 when the top-1 class of the output that decided an SDC or DELAYED changed, 0 otherwise, for workloads with a
``judge`` (:mod:`faultinj.workload`) 1 when the SDC's error is above their threshold, NULL for other workloads
(both columns are added, as 0 and NULL, to a database written before them), and for iterative campaigns
``planned(id, round, stratum, local, site, cycle)`` and ``rounds(round, injections, worst_half_width, done)``.

Schema version 2 (this one) added ``mbu`` and ``space`` (later, without a version change: ``workload_args``, the
workload factory's further arguments -- ``model`` / ``input`` paths, ``second`` / ``second_input`` -- ``{}`` when
absent, and ``liveness``, False when absent); a version-1 database is refused with one line (its strata
cannot be rebuilt without guessing): rerun that campaign into a new database.
"""
import dataclasses
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from base import RampartError
from base.paths import writable_file
from faultinj.engine import check_upset
from faultinj.outcomes import DEFAULT_RATES, Outcome
from faultinj.plan import (
    STRATA,
    FaultPlan,
    FaultSpace,
    draw_round,
    fault_plan,
    fault_space,
    space_from_description,
    stratum_floor,
)
from faultinj.scheduler import InitSpec, InlineScheduler, make_scheduler
from faultinj.stats import Interval, StoppingRule, StratifiedEstimate, proportion_interval, stratified_proportion
from faultinj.workload import Workload, get_workload, make_workload
from rtl.designs import get_design
from sim.build import build

__all__ = ["SCHEMA_VERSION", "STRATA", "Campaign", "FaultPlan", "fault_plan", "run_campaign", "resume_campaign",
           "campaign_status", "campaign_counts", "CampaignStatus", "BlockStatus", "campaign_meta", "campaign_config",
           "campaign_confidence", "state_bits_meta", "campaign_state_bits", "site_is_memory",
           "CampaignLock", "RoundRecord"]

SCHEMA_VERSION = 2
APP = "rampart-fi"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS injections (
    id INTEGER PRIMARY KEY,      -- the fault's id (index in the seeded sample order / the plan)
    site INTEGER NOT NULL,       -- global state-bit index of the build's state map
    cycle INTEGER NOT NULL,      -- injection cycle
    block TEXT NOT NULL,
    outcome INTEGER NOT NULL,    -- faultinj.outcomes.Outcome value
    cycles INTEGER NOT NULL,     -- cycles simulated for this injection (0 when analytic)
    analytic INTEGER NOT NULL DEFAULT 0, -- 1: classified by the liveness analysis, not simulated
    top1 INTEGER                 -- classifier workloads: 1 = the deciding output's top-1 class changed;
                                 -- workloads with a judge: 1 = the SDC's error is above their threshold; else NULL
);
CREATE TABLE IF NOT EXISTS planned (
    id INTEGER PRIMARY KEY,      -- iterative campaigns: every planned fault, round by round
    round INTEGER NOT NULL,
    stratum INTEGER NOT NULL,
    local INTEGER NOT NULL,      -- index within the stratum (faultinj.plan.FaultSpace.decode)
    site INTEGER NOT NULL,
    cycle INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rounds (
    round INTEGER PRIMARY KEY,   -- the decision taken once every earlier round was stored
    injections INTEGER NOT NULL, -- faults this round adds (0 when done)
    worst_half_width REAL,       -- widest checked interval half-width at the decision (NULL before the pilot)
    done INTEGER NOT NULL        -- 1: every checked rate met the margin (or the space is exhausted)
);
"""

#: Meta keys added after the first campaigns, with the value an older database implicitly has.
_META_DEFAULTS = {"mode": "fixed", "cycle_windows": 1, "mbu": 1, "min_per_stratum": 1, "sized_for": None,
                  "workload_args": {}, "liveness": False}

# --------------------------------------------------------------------------------------------------------------------
# The database

def _connect(path: Path, create: bool) -> sqlite3.Connection:
    """Open (or create) a campaign database; anything that is not one is a RampartError."""
    if not create and not path.exists():
        raise RampartError(f"{path}: no such campaign database")
    try:
        db = sqlite3.connect(path, timeout=30)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and not {"meta", "injections"} <= tables:
            db.close()
            raise RampartError(f"{path}: not a rampart campaign database (tables: {', '.join(sorted(tables))})")
        if not tables and not create:
            db.close()
            raise RampartError(f"{path}: not a rampart campaign database (empty)")
        if tables:
            meta = {}
            for key, value in db.execute("SELECT key, value FROM meta"):
                try:
                    meta[key] = json.loads(value)
                except (TypeError, ValueError):
                    meta[key] = None
            if meta.get("app") != APP:
                db.close()
                raise RampartError(f"{path}: not a rampart campaign database (no rampart metadata)")
            if meta.get("schema_version") != SCHEMA_VERSION:
                db.close()
                old = meta.get("schema_version")
                hint = ("written by an older rampart, before multi-bit upsets and element strata; rerun the "
                        "campaign into a new database" if isinstance(old, int) and old < SCHEMA_VERSION
                        else "written by a newer rampart")
                raise RampartError(f"{path}: campaign schema version {old}, this rampart reads {SCHEMA_VERSION} "
                                   f"({hint})")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(injections)")}
        if "analytic" not in columns:
            with db:    # a database from before the liveness analysis: every injection was simulated
                db.execute("ALTER TABLE injections ADD COLUMN analytic INTEGER NOT NULL DEFAULT 0")
        if "top1" not in columns:
            with db:    # ... and from before classifier workloads
                db.execute("ALTER TABLE injections ADD COLUMN top1 INTEGER")
        return db
    except sqlite3.DatabaseError as e:
        raise RampartError(f"{path}: not a rampart campaign database ({e})") from None


def _read_meta(db: sqlite3.Connection) -> dict[str, str]:
    return dict(db.execute("SELECT key, value FROM meta"))


def campaign_meta(db_path) -> dict:
    """The stored campaign parameters (decoded from the ``meta`` table)."""
    db = _connect(Path(db_path), create=False)
    try:
        return {k: json.loads(v) for k, v in _read_meta(db).items()}
    finally:
        db.close()


def _config_json(config) -> str:
    if dataclasses.is_dataclass(config):
        return json.dumps(dataclasses.asdict(config), sort_keys=True)
    return json.dumps(repr(config))


def state_bits_meta(result) -> dict:
    """What the FIT weights and the bit kinds of a campaign come from, stored with it (``meta["state_bits"]``): per
    block its flip-flop and memory bits, and the memory runs ``[first site, bits]`` in state-map (site) order. A
    report or metric computed later uses these, not a rebuild of a design that may have changed since."""
    bits: dict[str, dict[str, int]] = {}
    mem_runs: list[list[int]] = []
    site = 0
    for element in result.state:
        kinds = bits.setdefault(element.block, {"ff": 0, "mem": 0})
        kinds[element.kind] += element.bits
        if element.kind == "mem":
            if mem_runs and mem_runs[-1][0] + mem_runs[-1][1] == site:
                mem_runs[-1][1] += element.bits
            else:
                mem_runs.append([site, element.bits])
        site += element.bits
    return {"blocks": bits, "mem_runs": mem_runs}


def campaign_state_bits(meta: dict, result=None) -> dict:
    """``meta["state_bits"]`` (:func:`state_bits_meta`); a campaign written before it was stored gets it from
    ``result`` or a build of its config (today's RTL: the numbers follow the current design)."""
    if "state_bits" in meta:
        return meta["state_bits"]
    return state_bits_meta(result or build(meta["design"], campaign_config(meta)))


def site_is_memory(state_bits: dict, sites) -> np.ndarray:
    """Whether each of ``sites`` (global state-bit indices) is a memory bit."""
    runs = np.array(state_bits["mem_runs"], dtype=np.int64).reshape(-1, 2)
    sites = np.asarray(sites, dtype=np.int64)
    if not runs.size:
        return np.zeros(sites.shape, dtype=bool)
    i = np.searchsorted(runs[:, 0], sites, side="right") - 1
    run = runs[np.maximum(i, 0)]
    return (i >= 0) & (sites < run[:, 0] + run[:, 1])


def campaign_config(meta: dict):
    """The design config object a campaign ran with (from its ``meta``)."""
    return _config_from_json(meta["design"], meta["config"])


def _config_from_json(design: str, text: str):
    entry = get_design(design)
    data = json.loads(text)
    if isinstance(data, dict):
        return entry.config_type(**data)
    return entry.config(None)



# --------------------------------------------------------------------------------------------------------------------
# Running

def _batches(pending: np.ndarray, sites: np.ndarray, cycles: np.ndarray, size: int):
    for start in range(0, len(pending), size):
        ids = pending[start:start + size]
        yield ids, sites[ids], cycles[ids]


def _ids(db: sqlite3.Connection) -> np.ndarray:
    return np.fromiter((row[0] for row in db.execute("SELECT id FROM injections")), dtype=np.int64)


def _stored(db: sqlite3.Connection) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sites, cycles, outcomes) of every stored injection."""
    rows = np.array(db.execute("SELECT site, cycle, outcome FROM injections").fetchall(), dtype=np.int64)
    rows = rows.reshape(-1, 3)
    return rows[:, 0], rows[:, 1], rows[:, 2]


def _event_matrix(outcomes: np.ndarray, rates: Sequence[str]) -> np.ndarray:
    """(injections, rates) 0/1: is each outcome an event of each rate (names of DEFAULT_RATES)."""
    table = np.array([[Outcome(o) in DEFAULT_RATES[r] for r in rates] for o in range(len(Outcome))], dtype=np.int64)
    return table[outcomes].reshape(len(outcomes), len(rates))


def _space_counts(db: sqlite3.Connection, space: FaultSpace, rates: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(events per stratum and rate, injections per stratum) of the stored injections."""
    sites, cycles, outcomes = _stored(db)
    strata = space.stratum_of(sites, cycles)
    events = _event_matrix(outcomes, rates)
    k = np.zeros((len(space.sizes), len(rates)), dtype=np.int64)
    np.add.at(k, strata, events)
    return k, np.bincount(strata, minlength=len(space.sizes)).astype(np.int64)


@dataclass(frozen=True)
class RoundRecord:
    round: int
    injections: int
    worst_half_width: float | None
    done: bool


def _rounds(db: sqlite3.Connection) -> list[RoundRecord]:
    return [RoundRecord(r, n, w, bool(d))
            for r, n, w, d in db.execute("SELECT round, injections, worst_half_width, done FROM rounds ORDER BY round")]


def run_campaign(db_path, design: str, config=None, workload: str = "mac_array_matmul", samples: int | None = 1000,
                 seed: int = 0, strata: str = "block", workers: int | None = None,
                 progress_callback: Callable[[int, int], None] | None = None, *, workload_seed: int = 0,
                 workload_cycles: int | None = None, interval: int | None = None,
                 batch_size: int | None = None, cycle_windows: int = 1, iterative: bool = False,
                 margin: float | None = None, confidence: float = 0.99, per_block: bool = False,
                 rates: Sequence[str] = ("unmasked",), pilot: int = 30, scheduler=None,
                 mbu: int = 1, min_per_stratum: int | None = None,
                 sized_for: dict | None = None, workload_args: dict | None = None,
                 liveness: bool = False) -> "CampaignStatus":
    """Run (or resume) a campaign into ``db_path`` and return its status.

    ``workload`` is a registered workload name, instantiated with ``(config, workload_seed, workload_cycles)``
    and ``workload_args`` (a model workload's ``model`` and ``input`` paths, see
    :func:`faultinj.workload.make_workload`; stored, so resume and replay rebuild the same workload).
    An existing database must hold the same campaign (same parameters and build); its stored ids are skipped.
    ``strata``: ``"none"``, ``"block"``, ``"element"``, ``"cycle"``, ``"block,cycle"``, ``"element,cycle"``
    (``cycle_windows`` windows) or ``"exhaustive"`` (every fault once; ``samples`` is ignored).
    ``mbu``: bits flipped per fault (1: single-event upsets; K: K adjacent bits of one word, see
    :mod:`faultinj.engine`).
    ``liveness``: faults the liveness analysis classifies (:mod:`faultinj.liveness`: memory words overwritten
    before they are read, or never read again) are stored without simulating them (``analytic = 1``).
    ``iterative=True``: ignore ``samples`` and inject in rounds until the ``rates`` (names of
    :data:`faultinj.outcomes.DEFAULT_RATES`) meet ``margin`` at ``confidence`` overall (stratified interval) and,
    with ``per_block``, in every stratum; ``pilot`` injections per stratum first (see
    :class:`faultinj.stats.StoppingRule`).
    Fixed-size campaigns give every stratum at least ``min_per_stratum`` injections (default
    :func:`faultinj.plan.stratum_floor`; stored, so a resumed campaign draws the same plan).
    ``sized_for``: ``{"margin": M, "confidence": C}`` when ``samples`` is Leveugle's size for them; stored, and the
    confidence becomes the campaign's (status, report and verdicts use it).
    ``workers`` local processes (default: one per core; 1 runs in this process), or ``scheduler`` a Dask scheduler
    address (or a ``distributed.Client``). ``progress_callback(done, total)`` is called after every committed batch
    (``total``: the faults planned so far).
    """
    path = Path(db_path)
    entry = get_design(design)
    if not isinstance(config, entry.config_type):
        config = entry.config(config)
    wl_design, _ = get_workload(workload)
    if wl_design != design:
        raise RampartError(f"workload {workload} is for {wl_design}, not {design}")
    if strata not in STRATA:
        raise RampartError(f"strata must be one of {', '.join(STRATA)}, not {strata!r}")
    if iterative and strata == "exhaustive":
        raise RampartError("an exhaustive campaign cannot also be iterative")
    mbu = check_upset(mbu)
    if iterative:
        if margin is None:
            raise RampartError("the iterative mode needs a margin")
        unknown = [r for r in rates if r not in DEFAULT_RATES]
        if unknown or not rates:
            raise RampartError(f"rates must be among {', '.join(DEFAULT_RATES)}, not {', '.join(unknown) or 'none'}")
        try:
            rule = StoppingRule(margin=margin, confidence=confidence, per_stratum=per_block, pilot=pilot)
        except (TypeError, ValueError) as e:
            raise RampartError(str(e)) from None
    result = build(design, config)
    workload_args = dict(workload_args or {})
    wl: Workload = make_workload(workload, config, seed=workload_seed, cycles=workload_cycles, args=workload_args)
    space = fault_space(result, wl.fault_cycles, strata, cycle_windows)
    mode = "iterative" if iterative else "exhaustive" if strata == "exhaustive" else "fixed"
    if mode == "exhaustive":
        samples = space.total
    elif mode == "iterative":
        samples = 0
    elif samples is None:
        raise RampartError("give a number of samples (or an exhaustive or iterative campaign)")
    meta = {
        "app": APP, "schema_version": SCHEMA_VERSION, "design": design, "config": _config_json(config),
        "config_repr": repr(config), "workload": workload, "workload_seed": workload_seed,
        "workload_cycles": wl.cycles, "workload_key": wl.key, "seed": seed, "samples": samples, "strata": strata,
        "interval": interval, "build_key": result.key, "mode": mode, "cycle_windows": space.windows,
        "block_bits": {b: int(n) for b, n in zip(space.blocks, space.block_bits, strict=True)},
        "mbu": mbu, "space": space.describe(),
        "min_per_stratum": (stratum_floor(samples, len(space.sizes)) if min_per_stratum is None
                            else min_per_stratum) if mode == "fixed" else 1,
        "sized_for": sized_for, "workload_args": workload_args, "liveness": bool(liveness),
        "state_bits": state_bits_meta(result),
    }
    if iterative:
        meta.update(margin=margin, confidence=confidence, per_block=per_block, rates=list(rates), pilot=pilot)
    # drawn before the database is opened, so a sample size the space cannot give leaves no file behind
    plan = None if iterative else fault_plan(result, wl.fault_cycles, samples, seed, strata, space.windows,
                                             min_per_stratum=meta["min_per_stratum"])
    if not path.exists():
        writable_file(path, "campaign database")
    lock = CampaignLock(path)
    try:
        db = _open_campaign(path, meta, design)
    except BaseException:
        lock.release()
        raise
    runner = None
    try:
        workers = max(1, workers or os.cpu_count() or 1)
        spec = InitSpec(result, config, workload, workload_seed, workload_cycles, interval, mbu,
                        tuple(sorted(workload_args.items())), bool(liveness))
        runner = make_scheduler(spec, workers, scheduler)
        inline = InlineScheduler(spec)
        block_names = np.array(space.blocks, dtype=object)

        def execute(sites, cycles, blocks, total):
            """Run every id in [0, total) not yet stored."""
            pending = np.setdiff1d(np.arange(total, dtype=np.int64), _ids(db))
            done = total - len(pending)
            size = batch_size
            if size is None:
                size = int(np.clip(len(pending) // (workers * 8) or 1, 64, 4096))
            if not len(pending):
                return
            use = inline if scheduler is None and (workers == 1 or len(pending) <= size) else runner
            started = time.monotonic()
            for ids, outcomes, simulated, analytic, top1 in use.map(_batches(pending, sites, cycles, size)):
                ids = np.asarray(ids, dtype=np.int64)
                top1 = [None if t < 0 else t for t in np.asarray(top1).tolist()]
                rows = list(zip(ids.tolist(), sites[ids].tolist(), cycles[ids].tolist(),
                                block_names[blocks[ids]].tolist(), np.asarray(outcomes).tolist(),
                                np.asarray(simulated).tolist(), np.asarray(analytic, dtype=int).tolist(), top1,
                                strict=True))
                now = time.monotonic()
                with db:
                    db.executemany("INSERT INTO injections (id, site, cycle, block, outcome, cycles, analytic, top1) "
                                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                    _add_seconds(db, now - started, workers if use is runner else 1)
                started = now
                done += len(rows)
                if progress_callback:
                    progress_callback(done, total)

        if plan is not None:
            execute(plan.sites, plan.cycles, plan.block_ids, len(plan))
        else:
            _run_rounds(db, space, rule, list(rates), seed, execute)
    finally:
        if runner is not None:
            runner.close()
        db.close()
        lock.release()
    return campaign_status(path)


def _add_seconds(db: sqlite3.Connection, seconds: float, workers: int) -> None:
    """Add to the campaign's wall-clock and worker seconds (meta ``timing``; not part of the campaign's identity)."""
    row = db.execute("SELECT value FROM meta WHERE key = 'timing'").fetchone()
    timing = json.loads(row[0]) if row else {"wall_seconds": 0.0, "worker_seconds": 0.0}
    timing["wall_seconds"] += seconds
    timing["worker_seconds"] += seconds * workers
    db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('timing', ?)", (json.dumps(timing),))


def campaign_confidence(meta: dict) -> float:
    """The confidence a campaign was run for: its iterative target, or the one its Leveugle size was computed for
    (``fi run --margin M --confidence C``); 0.95 for a plain fixed-size or exhaustive campaign."""
    if meta.get("mode") == "iterative":
        return float(meta["confidence"])
    if meta.get("sized_for"):
        return float(meta["sized_for"]["confidence"])
    return 0.95


def _open_campaign(path: Path, meta: dict, design: str) -> sqlite3.Connection:
    """The campaign database at ``path``: created holding ``meta``, or checked to hold the same campaign.

    A database this call creates is removed again if it cannot be set up, so no half-created file is left."""
    created = not path.exists()
    db = None
    try:
        db = _connect(path, create=True)
        stored = _read_meta(db)
        if stored:
            want = {k: json.dumps(v) for k, v in meta.items()}
            stored = {**{k: json.dumps(v) for k, v in _META_DEFAULTS.items()}, **stored}
            diff = [k for k in want if k not in ("app", "block_bits", "space", "timing", "state_bits")
                    and stored.get(k) != want[k]]
            if diff == ["build_key"]:
                raise RampartError(f"{path}: the build of {design} changed since this campaign started (RTL, harness "
                                   "or tools edited); start a new campaign database")
            if diff:
                raise RampartError(f"{path} holds a different campaign (differs in: {', '.join(diff)})")
        else:
            with db:
                db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                               [(k, json.dumps(v)) for k, v in meta.items()])
        return db
    except BaseException:
        if db is not None:
            db.close()
        if created:
            for name in (path.name, path.name + "-wal", path.name + "-shm", path.name + "-journal"):
                path.with_name(name).unlink(missing_ok=True)
        raise


class CampaignLock:
    """An exclusive lock on a campaign database for one running campaign (``run`` or ``resume``), held from before
    the database is opened until the campaign stops; a second campaign on the same database is refused with one
    line instead of racing it for the same fault ids.

    The lock is ``flock`` on ``<db>.lock`` beside the database; it is released when the process ends, however it
    ends, and the file is removed on release (a process that locked a removed file notices and locks the new one).
    Readers (``status``, ``report``) do not take it: SQLite's WAL lets them read while a campaign writes."""

    def __init__(self, db_path):
        self.path = Path(db_path).with_name(Path(db_path).name + ".lock")
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as e:
                raise RampartError(f"cannot lock campaign database {db_path}: {e.strerror or e} ({self.path})") \
                    from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise RampartError(f"{db_path} is in use by another running campaign (process {holder}); wait for "
                                   "it to finish, or use another --db") from None
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)    # the holder removed the file as we locked it: lock the current one
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None


def _run_rounds(db, space: FaultSpace, rule: StoppingRule, rates: list[str], seed: int, execute):
    """The iterative mode's loop: run the stored plan, decide, store the next round, repeat (see the docstring)."""
    while True:
        rows = np.array(db.execute("SELECT id, stratum, local, site, cycle FROM planned ORDER BY id").fetchall(),
                        dtype=np.int64).reshape(-1, 5)
        if len(rows) and not np.array_equal(rows[:, 0], np.arange(len(rows))):
            raise RampartError("the campaign's planned faults are not numbered 0..n-1 (database edited?)")
        sites, cycles = rows[:, 3], rows[:, 4]
        execute(sites, cycles, space.block_of(sites), len(rows))
        history = _rounds(db)
        if history and history[-1].done:
            return
        k, n = _space_counts(db, space, rates)
        decision = rule.evaluate(k, n, space.sizes, rates)
        add = decision.additional
        worst = None if not decision.checks else float(decision.worst_half_width)
        r = len(history)
        if decision.done or add.sum() == 0:
            with db:
                db.execute("INSERT INTO rounds VALUES (?, 0, ?, 1)", (r, worst))
            return
        used = [rows[rows[:, 1] == h, 2] for h in range(len(space.sizes))]
        strata, local, new_sites, new_cycles = draw_round(space, used, add, seed, r)
        ids = np.arange(len(rows), len(rows) + len(local))
        with db:
            db.execute("INSERT INTO rounds VALUES (?, ?, ?, 0)", (r, int(add.sum()), worst))
            db.executemany("INSERT INTO planned VALUES (?, ?, ?, ?, ?, ?)",
                           zip(ids.tolist(), [r] * len(ids), strata.tolist(), local.tolist(), new_sites.tolist(),
                               new_cycles.tolist(), strict=True))


def resume_campaign(db_path, workers: int | None = None,
                    progress_callback: Callable[[int, int], None] | None = None, *,
                    scheduler=None) -> "CampaignStatus":
    """Continue the campaign stored in ``db_path`` with its own parameters."""
    meta = campaign_meta(db_path)
    config = _config_from_json(meta["design"], meta["config"])
    extra = {}
    if meta.get("mode") == "iterative":
        extra = dict(iterative=True, margin=meta["margin"], confidence=meta["confidence"],
                     per_block=meta["per_block"], rates=tuple(meta["rates"]), pilot=meta["pilot"])
    return run_campaign(db_path, meta["design"], config, meta["workload"], meta["samples"], meta["seed"],
                        meta["strata"], workers, progress_callback, workload_seed=meta["workload_seed"],
                        workload_cycles=meta["workload_cycles"], interval=meta["interval"],
                        cycle_windows=meta.get("cycle_windows", 1), scheduler=scheduler, mbu=meta.get("mbu", 1),
                        min_per_stratum=meta.get("min_per_stratum", 1), sized_for=meta.get("sized_for"),
                        workload_args=meta.get("workload_args") or {}, liveness=meta.get("liveness", False),
                        **extra)


# --------------------------------------------------------------------------------------------------------------------
# Status

@dataclass(frozen=True)
class BlockStatus:
    block: str
    injections: int
    counts: dict[Outcome, int]
    rates: dict[str, Interval]       # DEFAULT_RATES name -> Wilson interval (None-free only when injections > 0)
    cycles_simulated: int
    #: The block's rates estimated over its cells (stratum x block, weighted by their populations): unbiased also
    #: when the allocation is not proportional. Empty when a cell has no injection yet (or the campaign is uniform).
    stratified: dict[str, StratifiedEstimate] = dataclasses.field(default_factory=dict)
    #: Per cell of the block: (population, {outcome: count}); what :class:`faultinj.safety.BlockResult` takes.
    cells: tuple[tuple[int, dict[Outcome, int]], ...] = ()


@dataclass(frozen=True)
class CampaignStatus:
    meta: dict
    planned: int
    done: int
    blocks: dict[str, BlockStatus]
    overall: BlockStatus
    #: Overall rates estimated over the campaign's strata (:func:`faultinj.stats.stratified_proportion`): unbiased
    #: also when the allocation is not proportional (iterative mode); exact for a complete exhaustive campaign.
    #: Empty when a stratum has no injection yet.
    stratified: dict[str, StratifiedEstimate] = dataclasses.field(default_factory=dict)
    #: Iterative campaigns: the decision of every round so far (empty otherwise).
    rounds: tuple[RoundRecord, ...] = ()
    #: The confidence of every interval here.
    confidence: float = 0.95
    #: Injections classified by the liveness analysis without simulating them, per outcome (column ``analytic``).
    analytic: dict[Outcome, int] = dataclasses.field(default_factory=dict)

    @property
    def complete(self) -> bool:
        if self.meta.get("mode") == "iterative":
            return bool(self.rounds) and self.rounds[-1].done and self.done >= self.planned
        return self.done >= self.planned

    @property
    def is_stratified(self) -> bool:
        """More than one stratum (the stratified estimates then differ from the pooled counts' rates)."""
        return self.meta.get("strata") not in ("none", "exhaustive") or int(self.meta.get("cycle_windows", 1)) > 1

    def counts(self) -> dict[Outcome, int]:
        return dict(self.overall.counts)

    @property
    def strata(self) -> int:
        """Number of strata of the sample (stratum groups x cycle windows)."""
        return len(self.meta["space"]["groups"]) * int(self.meta.get("cycle_windows", 1))

    @property
    def rates_stratified(self) -> bool:
        """Whether the rates to show are the stratified estimates (a stratified campaign with every stratum hit)."""
        return bool(self.is_stratified and self.stratified)

    def unmasked(self, block: BlockStatus) -> Interval | None:
        """The unmasked-rate interval to show for ``block`` (one of :attr:`blocks`, or :attr:`overall`): the
        stratified estimate when :attr:`rates_stratified` (None while a cell of the block has no injection), else
        the pooled counts' Wilson interval; None without injections."""
        if not block.injections:
            return None
        if self.rates_stratified:
            estimates = self.stratified if block is self.overall else block.stratified
            return estimates["unmasked"].interval if "unmasked" in estimates else None
        return block.rates.get("unmasked")


def _block_status(name: str, counts: dict[Outcome, int], cycles: int, confidence: float,
                  cells: tuple = ()) -> BlockStatus:
    n = sum(counts.values())
    rates, stratified = {}, {}
    if n:
        for rate, outcomes in DEFAULT_RATES.items():
            rates[rate] = proportion_interval(sum(counts[o] for o in outcomes), n, confidence, "wilson")
    if cells and all(sum(c.values()) for _, c in cells):
        sizes = [size for size, _ in cells]
        samples = [sum(c.values()) for _, c in cells]
        for rate, outcomes in DEFAULT_RATES.items():
            k = [sum(c[o] for o in outcomes) for _, c in cells]
            stratified[rate] = stratified_proportion(k, samples, sizes, confidence)
    return BlockStatus(name, n, counts, rates, cycles, stratified, cells)


def _cells(space: FaultSpace, sites: np.ndarray, cycles: np.ndarray, outcomes: np.ndarray):
    """Per block index: its cells (stratum x block) as (population, {outcome: count}), every non-empty cell."""
    nb, windows = len(space.blocks), space.windows
    active = space.active
    cell_bits = np.bincount(space.element_group[active] * nb + space.element_block[active],
                            weights=space.widths[active], minlength=len(space.groups) * nb).astype(np.int64)
    lengths = np.diff(space.bounds)
    per_cell = np.zeros((len(space.sizes) * nb, len(Outcome)), dtype=np.int64)
    if len(sites):
        cell = space.stratum_of(sites, cycles) * nb + space.block_of(sites)
        np.add.at(per_cell, (cell, outcomes), 1)
    out: dict[int, list] = {b: [] for b in range(nb)}
    for g in range(len(space.groups)):
        for b in range(nb):
            if cell_bits[g * nb + b] == 0:
                continue
            for w in range(windows):
                h = g * windows + w
                counts = {o: int(per_cell[h * nb + b, o]) for o in Outcome}
                out[b].append((int(cell_bits[g * nb + b] * lengths[w]), counts))
    return {b: tuple(cells) for b, cells in out.items()}


def campaign_counts(db_path) -> dict[Outcome, int]:
    """Injections per outcome so far (cheap: for progress displays; :func:`campaign_status` has everything)."""
    path = Path(db_path)
    db = _connect(path, create=False)
    try:
        counts = dict.fromkeys(Outcome, 0)
        for outcome, n in db.execute("SELECT outcome, COUNT(*) FROM injections GROUP BY outcome"):
            counts[Outcome(outcome)] = n
        return counts
    except sqlite3.DatabaseError as e:
        raise RampartError(f"{path}: unreadable campaign database ({e})") from None
    finally:
        db.close()


def campaign_status(db_path, confidence: float | None = None) -> CampaignStatus:
    """Per-block and overall outcome counts with Wilson intervals for every default rate, and stratified rates
    (overall and per block).

    ``confidence`` defaults to the campaign's own (:func:`campaign_confidence`).
    """
    path = Path(db_path)
    db = _connect(path, create=False)
    try:
        meta = {k: json.loads(v) for k, v in _read_meta(db).items()}
        if confidence is None:
            confidence = campaign_confidence(meta)
        per_block: dict[str, dict[Outcome, int]] = {}
        cycles: dict[str, int] = {}
        for block, outcome, n, simulated in db.execute(
                "SELECT block, outcome, COUNT(*), SUM(cycles) FROM injections GROUP BY block, outcome"):
            per_block.setdefault(block, dict.fromkeys(Outcome, 0))[Outcome(outcome)] = n
            cycles[block] = cycles.get(block, 0) + simulated
        planned = int(meta.get("samples", 0) or 0)
        rounds: tuple[RoundRecord, ...] = ()
        if meta.get("mode") == "iterative":
            planned = db.execute("SELECT COUNT(*) FROM planned").fetchone()[0]
            rounds = tuple(_rounds(db))
        space = space_from_description(meta["space"])
        sites, fault_cycles, outcomes = _stored(db)
        analytic = dict.fromkeys(Outcome, 0)
        for outcome, n in db.execute("SELECT outcome, COUNT(*) FROM injections WHERE analytic = 1 GROUP BY outcome"):
            analytic[Outcome(outcome)] = n
    except sqlite3.DatabaseError as e:
        raise RampartError(f"{path}: unreadable campaign database ({e})") from None
    finally:
        db.close()
    names = list(DEFAULT_RATES)
    strata = space.stratum_of(sites, fault_cycles)
    k = np.zeros((len(space.sizes), len(names)), dtype=np.int64)
    np.add.at(k, strata, _event_matrix(outcomes, names))
    n = np.bincount(strata, minlength=len(space.sizes))
    stratified = {}
    if np.all(n >= 1):
        stratified = {name: stratified_proportion(k[:, j], n, space.sizes, confidence)
                      for j, name in enumerate(names)}
    cells = _cells(space, sites, fault_cycles, outcomes) if meta.get("strata") != "exhaustive" else {}
    index = {b: i for i, b in enumerate(space.blocks)}
    blocks = {b: _block_status(b, per_block[b], cycles[b], confidence, cells.get(index.get(b), ()))
              for b in sorted(per_block)}
    total = dict.fromkeys(Outcome, 0)
    for status in blocks.values():
        for o, count in status.counts.items():
            total[o] += count
    overall = _block_status("all", total, sum(cycles.values()), confidence)
    return CampaignStatus(meta, planned, overall.injections, blocks, overall, stratified, rounds, confidence,
                          analytic)


class Campaign:
    """A campaign database, the object form of this module's functions::

        campaign = Campaign.run("c.db", "npu", "u55-32", "npu_conv", samples=300)   # or Campaign("c.db")
        campaign.resume(); print(campaign.status().done, campaign.counts())
    """

    def __init__(self, db_path):
        self.path = Path(db_path)
        self.meta = campaign_meta(self.path)     # refuses a missing, foreign or corrupt file with one line

    @classmethod
    def run(cls, db_path, design: str, config=None, workload: str | None = None, samples: int | None = 1000,
            **options) -> "Campaign":
        """Run a new campaign (or continue the one in ``db_path``); ``options`` as :func:`run_campaign`."""
        from faultinj.workload import default_workload

        run_campaign(db_path, design, config, workload or default_workload(design), samples, **options)
        return cls(db_path)

    @property
    def config(self):
        return campaign_config(self.meta)

    def resume(self, workers: int | None = None, progress_callback=None, *, scheduler=None) -> "CampaignStatus":
        return resume_campaign(self.path, workers, progress_callback, scheduler=scheduler)

    def status(self, confidence: float | None = None) -> "CampaignStatus":
        return campaign_status(self.path, confidence)

    def counts(self) -> dict[Outcome, int]:
        return campaign_counts(self.path)
