"""Fault-injection campaigns: a seeded fault list, local worker processes, results streamed into SQLite (WAL).

The fault list is a pure function of (build, workload, samples, seed, strata): sites x cycles are sampled without
replacement with :func:`faultinj.stats.sample_faults` (per block when ``strata="block"``, split by
:func:`faultinj.stats.allocate`), then put in a seeded random order. A fault's ``id`` is its position in that order.
A resumed campaign recomputes the same list and runs only the ids not yet stored, so a killed campaign ends with
exactly the counts of an uninterrupted one, nothing lost or duplicated. Each batch of results is committed in one
transaction.

Tables: ``meta(key, value)`` (design, config, workload, seeds, sampling parameters, build key, schema version) and
``injections(id, site, cycle, block, outcome, cycles)`` with ``id`` the fault's index in the seeded order.
"""
import dataclasses
import json
import multiprocessing
import os
import signal
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from faultinj.outcomes import DEFAULT_RATES, Outcome
from faultinj.stats import Interval, allocate, proportion_interval, sample_faults
from faultinj.workload import Workload, get_workload, make_workload
from rtl.designs import get_design
from sim.build import Build, build
from sim.errors import RampartError

__all__ = ["SCHEMA_VERSION", "FaultPlan", "fault_plan", "run_campaign", "resume_campaign", "campaign_status",
           "CampaignStatus", "BlockStatus", "campaign_meta"]

SCHEMA_VERSION = 1
APP = "rampart-fi"
STRATA = ("none", "block")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS injections (
    id INTEGER PRIMARY KEY,      -- the fault's index in the seeded sample order
    site INTEGER NOT NULL,       -- global state-bit index of the build's state map
    cycle INTEGER NOT NULL,      -- injection cycle
    block TEXT NOT NULL,
    outcome INTEGER NOT NULL,    -- faultinj.outcomes.Outcome value
    cycles INTEGER NOT NULL      -- cycles simulated for this injection
);
"""


# --------------------------------------------------------------------------------------------------------------------
# The fault list

@dataclass(frozen=True)
class FaultPlan:
    """The campaign's faults in id order: global site, cycle and block (index into ``blocks``) per id."""

    sites: np.ndarray
    cycles: np.ndarray
    block_ids: np.ndarray
    blocks: tuple[str, ...]
    populations: dict[str, int]      # sites x cycles per block

    def __len__(self) -> int:
        return len(self.sites)


def fault_plan(build_: Build, cycles: int, samples: int, seed: int, strata: str = "block") -> FaultPlan:
    """The deterministic fault list of a campaign (see the module docstring)."""
    if strata not in STRATA:
        raise RampartError(f"strata must be one of {', '.join(STRATA)}, not {strata!r}")
    widths = np.array([e.width * e.depth for e in build_.state], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(widths)])
    blocks = tuple(build_.blocks())
    element_block = np.array([blocks.index(e.block) for e in build_.state], dtype=np.int64)
    block_bits = np.bincount(element_block, weights=widths, minlength=len(blocks)).astype(np.int64)
    populations = {b: int(n) * cycles for b, n in zip(blocks, block_bits, strict=True)}
    total = int(offsets[-1]) * cycles
    if not 1 <= samples <= total:
        raise RampartError(f"samples must be between 1 and the population ({total} site-cycles), not {samples}")
    rng = np.random.default_rng(seed)
    if strata == "block":
        sizes = block_bits * cycles
        if samples < len(blocks):
            raise RampartError(f"stratified sampling needs at least one sample per block ({len(blocks)})")
        draws = sample_faults(rng, sizes, allocate(samples, sizes))
        sites, cyc, bids = [], [], []
        for b, idx in enumerate(draws):
            local, c = np.divmod(idx, cycles)
            elems = np.flatnonzero(element_block == b)
            cum = np.concatenate([[0], np.cumsum(widths[elems])])
            pos = np.searchsorted(cum, local, side="right") - 1
            sites.append(offsets[elems[pos]] + local - cum[pos])
            cyc.append(c)
            bids.append(np.full(len(idx), b, dtype=np.int64))
        sites, cyc, bids = np.concatenate(sites), np.concatenate(cyc), np.concatenate(bids)
    else:
        (idx,) = sample_faults(rng, [total], [samples])
        sites, cyc = np.divmod(idx, cycles)
        bids = element_block[np.searchsorted(offsets, sites, side="right") - 1]
    order = rng.permutation(len(sites))
    return FaultPlan(sites[order].astype(np.int64), cyc[order].astype(np.int64), bids[order].astype(np.int64),
                     blocks, populations)


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
                raise RampartError(f"{path}: campaign schema version {meta.get('schema_version')}, "
                                   f"this rampart reads {SCHEMA_VERSION}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.executescript(_SCHEMA)
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


def _config_from_json(design: str, text: str):
    entry = get_design(design)
    data = json.loads(text)
    if isinstance(data, dict):
        return entry.config_type(**data)
    return entry.config(None)


# --------------------------------------------------------------------------------------------------------------------
# Workers

_WORKER: dict = {}


def _die_with_parent():
    """Ask Linux to SIGKILL this worker when its parent dies (a killed campaign leaves no orphans)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_init(build_, config, workload_name, workload_seed, workload_cycles, interval, in_pool):
    from faultinj.engine import golden_run
    if in_pool:
        _die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    workload = make_workload(workload_name, config, seed=workload_seed, cycles=workload_cycles)
    _WORKER["golden"] = golden_run(build_, workload, interval)


def _worker_run(task):
    ids, sites, cycles = task
    outcomes, simulated = _WORKER["golden"].inject(sites, cycles)
    return ids, outcomes, simulated


def _batches(pending: np.ndarray, plan: FaultPlan, size: int):
    for start in range(0, len(pending), size):
        ids = pending[start:start + size]
        yield ids, plan.sites[ids], plan.cycles[ids]


# --------------------------------------------------------------------------------------------------------------------
# Running

def run_campaign(db_path, design: str, config=None, workload: str = "mac_array_matmul", samples: int = 1000,
                 seed: int = 0, strata: str = "block", workers: int | None = None,
                 progress_callback: Callable[[int, int], None] | None = None, *, workload_seed: int = 0,
                 workload_cycles: int | None = None, interval: int | None = None,
                 batch_size: int | None = None) -> "CampaignStatus":
    """Run (or resume) a campaign into ``db_path`` and return its status.

    ``workload`` is a registered workload name, instantiated with ``(config, workload_seed, workload_cycles)``.
    An existing database must hold the same campaign (same parameters and build); its stored ids are skipped.
    ``workers`` local processes (default: one per core; 1 runs in this process). ``progress_callback(done, total)``
    is called after every committed batch.
    """
    path = Path(db_path)
    entry = get_design(design)
    if not isinstance(config, entry.config_type):
        config = entry.config(config)
    wl_design, _, _ = get_workload(workload)
    if wl_design != design:
        raise RampartError(f"workload {workload} is for {wl_design}, not {design}")
    result = build(design, config)
    wl: Workload = make_workload(workload, config, seed=workload_seed, cycles=workload_cycles)
    meta = {
        "app": APP, "schema_version": SCHEMA_VERSION, "design": design, "config": _config_json(config),
        "config_repr": repr(config), "workload": workload, "workload_seed": workload_seed,
        "workload_cycles": wl.cycles, "workload_key": wl.key, "seed": seed, "samples": samples, "strata": strata,
        "interval": interval, "build_key": result.key,
    }
    db = _connect(path, create=True)
    try:
        stored = _read_meta(db)
        if stored:
            want = {k: json.dumps(v) for k, v in meta.items()}
            diff = [k for k in want if k != "app" and stored.get(k) != want[k]]
            if diff == ["build_key"]:
                raise RampartError(f"{path}: the build of {design} changed since this campaign started (RTL, harness "
                                   "or tools edited); start a new campaign database")
            if diff:
                raise RampartError(f"{path} holds a different campaign (differs in: {', '.join(diff)})")
        else:
            with db:
                db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)",
                               [(k, json.dumps(v)) for k, v in meta.items()])
        plan = fault_plan(result, wl.cycles, samples, seed, strata)
        done_ids = np.fromiter((row[0] for row in db.execute("SELECT id FROM injections")), dtype=np.int64)
        pending = np.setdiff1d(np.arange(len(plan), dtype=np.int64), done_ids)
        done = len(plan) - len(pending)
        workers = max(1, workers or os.cpu_count() or 1)
        if batch_size is None:
            batch_size = int(np.clip(len(pending) // (workers * 8) or 1, 64, 4096))
        tasks = _batches(pending, plan, batch_size)
        init = (result, config, workload, workload_seed, workload_cycles, interval)

        def commit(ids, outcomes, simulated):
            nonlocal done
            rows = [(int(i), int(plan.sites[i]), int(plan.cycles[i]), plan.blocks[plan.block_ids[i]], int(o), int(s))
                    for i, o, s in zip(ids, outcomes, simulated, strict=True)]
            with db:
                db.executemany("INSERT INTO injections (id, site, cycle, block, outcome, cycles) "
                               "VALUES (?, ?, ?, ?, ?, ?)", rows)
            done += len(rows)
            if progress_callback:
                progress_callback(done, len(plan))

        if len(pending):
            if workers == 1 or len(pending) <= batch_size:
                _worker_init(*init, in_pool=False)
                for task in tasks:
                    commit(*_worker_run(task))
            else:
                ctx = multiprocessing.get_context("fork")
                with ctx.Pool(workers, initializer=_worker_init, initargs=(*init, True)) as pool:
                    for res in pool.imap_unordered(_worker_run, tasks):
                        commit(*res)
    finally:
        db.close()
    return campaign_status(path)


def resume_campaign(db_path, workers: int | None = None,
                    progress_callback: Callable[[int, int], None] | None = None) -> "CampaignStatus":
    """Continue the campaign stored in ``db_path`` with its own parameters."""
    meta = campaign_meta(db_path)
    config = _config_from_json(meta["design"], meta["config"])
    return run_campaign(db_path, meta["design"], config, meta["workload"], meta["samples"], meta["seed"],
                        meta["strata"], workers, progress_callback, workload_seed=meta["workload_seed"],
                        workload_cycles=meta["workload_cycles"], interval=meta["interval"])


# --------------------------------------------------------------------------------------------------------------------
# Status

@dataclass(frozen=True)
class BlockStatus:
    block: str
    injections: int
    counts: dict[Outcome, int]
    rates: dict[str, Interval]       # DEFAULT_RATES name -> Wilson interval (None-free only when injections > 0)
    cycles_simulated: int


@dataclass(frozen=True)
class CampaignStatus:
    meta: dict
    planned: int
    done: int
    blocks: dict[str, BlockStatus]
    overall: BlockStatus

    @property
    def complete(self) -> bool:
        return self.done >= self.planned

    def counts(self) -> dict[Outcome, int]:
        return dict(self.overall.counts)


def _block_status(name: str, counts: dict[Outcome, int], cycles: int, confidence: float) -> BlockStatus:
    n = sum(counts.values())
    rates = {}
    if n:
        for rate, outcomes in DEFAULT_RATES.items():
            rates[rate] = proportion_interval(sum(counts[o] for o in outcomes), n, confidence, "wilson")
    return BlockStatus(name, n, counts, rates, cycles)


def campaign_status(db_path, confidence: float = 0.95) -> CampaignStatus:
    """Per-block and overall outcome counts with Wilson intervals for every default rate."""
    path = Path(db_path)
    db = _connect(path, create=False)
    try:
        meta = {k: json.loads(v) for k, v in _read_meta(db).items()}
        per_block: dict[str, dict[Outcome, int]] = {}
        cycles: dict[str, int] = {}
        for block, outcome, n, simulated in db.execute(
                "SELECT block, outcome, COUNT(*), SUM(cycles) FROM injections GROUP BY block, outcome"):
            per_block.setdefault(block, dict.fromkeys(Outcome, 0))[Outcome(outcome)] = n
            cycles[block] = cycles.get(block, 0) + simulated
    except sqlite3.DatabaseError as e:
        raise RampartError(f"{path}: unreadable campaign database ({e})") from None
    finally:
        db.close()
    blocks = {b: _block_status(b, per_block[b], cycles[b], confidence) for b in sorted(per_block)}
    total = dict.fromkeys(Outcome, 0)
    for status in blocks.values():
        for o, k in status.counts.items():
            total[o] += k
    overall = _block_status("all", total, sum(cycles.values()), confidence)
    return CampaignStatus(meta, int(meta.get("samples", 0)), overall.injections, blocks, overall)
