"""Where injection batches run: in this process, a local fork pool, or a Dask cluster.

Every scheduler maps tasks ``(ids, sites, cycles)`` to results ``(ids, outcomes, cycles simulated, analytic, top1)``
(:meth:`faultinj.engine.GoldenRun.inject_ex`: ``analytic`` classified by the liveness analysis, not simulated;
``top1`` a classifier's top-1 changed, -1 for other workloads) and yields
them in completion order; the campaign commits each result on the client, so where a batch ran never changes what
is stored or how a campaign resumes. A worker sets itself up once per process from an :class:`InitSpec`: the
client's build if its files are visible (same host or shared cache), else the worker's own build from its cache
(same key required), and the workload's golden run, both cached in the process for every later batch.
"""
import abc
import signal
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from base import RampartError
from sim.build import Build

__all__ = ["InitSpec", "Scheduler", "InlineScheduler", "PoolScheduler", "DaskScheduler", "make_scheduler",
           "split_tasks", "merge_results"]


@dataclass(frozen=True)
class InitSpec:
    """Everything a worker needs to rebuild the campaign's golden run."""

    build: Build
    config: object
    workload: str
    workload_seed: int
    workload_cycles: int | None
    interval: int | None
    upset: int = 1          # bits flipped per fault (multi-bit upsets: adjacent bits of one word)
    workload_args: tuple = ()   # (name, value) pairs: further arguments of the workload factory (a model's path)
    liveness: bool = False      # classify what the liveness analysis can without simulating (faultinj.liveness)

    def golden(self):
        from faultinj.engine import golden_run
        from faultinj.workload import make_workload

        key = (self.build.key, str(self.build.directory), self.workload, self.workload_seed, self.workload_cycles,
               self.interval, self.workload_args)
        if key not in _GOLDEN:
            wl = make_workload(self.workload, self.config, seed=self.workload_seed, cycles=self.workload_cycles,
                               args=dict(self.workload_args))
            _GOLDEN[key] = golden_run(self.local_build(), wl, self.interval)
        return _GOLDEN[key]

    def local_build(self) -> Build:
        """The client's build if its files are here (same machine), else this host's own (cached) build of it."""
        if self.build.library.exists():
            return self.build
        from sim.build import build

        mine = build(self.build.design, self.config)
        if mine.key != self.build.key:
            raise RampartError(f"this worker's build of {self.build.design} differs from the client's (sources or "
                               "tool versions differ); run workers from the same rampart checkout and tools")
        return mine


_GOLDEN: dict = {}


def run_task(spec: InitSpec, task):
    """Run one batch (in whatever process this is); the golden run is built once per process and spec."""
    ids, sites, cycles = task
    outcomes, simulated, analytic, top1 = spec.golden().inject_ex(sites, cycles, spec.upset, spec.liveness)
    return ids, outcomes, simulated, analytic, top1


class Scheduler(abc.ABC):
    """Runs batches of injections somewhere (this process, a local pool, a Dask cluster) and yields results."""

    @abc.abstractmethod
    def map(self, tasks: Iterable) -> Iterator:
        """Results of ``run_task`` for every task, in any order."""

    def close(self) -> None:
        """Release workers or cluster connections (nothing by default)."""
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InlineScheduler(Scheduler):
    """Batches run one after another in this process."""

    def __init__(self, spec: InitSpec):
        self.spec = spec

    def map(self, tasks):
        for task in tasks:
            yield run_task(self.spec, task)


_POOL_SPEC: list[InitSpec] = []


def _die_with_parent():
    """Ask Linux to SIGKILL this worker when its parent dies (a killed campaign leaves no orphans)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _pool_init(spec: InitSpec):
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _POOL_SPEC[:] = [spec]
    spec.golden()


def _pool_run(task):
    return run_task(_POOL_SPEC[0], task)


def split_tasks(tasks: Iterable, pieces: int, minimum: int = 16) -> Iterator:
    """Each task ``(ids, sites, cycles)`` as up to ``pieces`` consecutive sub-tasks of at least ``minimum`` faults.

    Injections differ widely in cost (an early-stopped masked fault vs. a latent one run to the end), so a few
    large batches leave workers idle at the end of a round; smaller pieces keep them busy until the last one."""
    for ids, sites, cycles in tasks:
        n = len(ids)
        size = max(minimum, -(-n // pieces))
        for start in range(0, n, size):
            yield ids[start:start + size], sites[start:start + size], cycles[start:start + size]


def merge_results(results: list):
    """Several ``(ids, outcomes, cycles simulated, analytic, top1)`` results as one."""
    if len(results) == 1:
        return results[0]
    return tuple(np.concatenate(parts) for parts in zip(*results, strict=True))


class PoolScheduler(Scheduler):
    """``workers`` forked local processes (created on first use, kept across rounds).

    Each batch runs as ``2 x workers`` pieces (see :func:`split_tasks`) for load balance, and finished pieces are
    handed back merged into results of at least the batch size, so the client commits no more often than it would
    without the split (a commit costs the client, which shares the cores with the workers)."""

    def __init__(self, spec: InitSpec, workers: int):
        self.spec, self.workers, self.pool = spec, workers, None
        self._batch = 1

    def _sized(self, tasks):
        for task in tasks:
            self._batch = max(self._batch, len(task[0]))
            yield task

    def map(self, tasks):
        if self.pool is None:
            import multiprocessing

            ctx = multiprocessing.get_context("fork")
            self.pool = ctx.Pool(self.workers, initializer=_pool_init, initargs=(self.spec,))
        pieces = split_tasks(self._sized(tasks), 2 * self.workers)
        done, count = [], 0
        for result in self.pool.imap_unordered(_pool_run, pieces):
            done.append(result)
            count += len(result[0])
            if count >= self._batch:
                yield merge_results(done)
                done, count = [], 0
        if done:
            yield merge_results(done)

    def close(self):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None


class DaskScheduler(Scheduler):
    """Batches run on a dask.distributed cluster at ``address``; a failed task is retried ``retries`` times.

    At most ``2 x cluster threads`` (at least ``window``) tasks are in flight, so results stream back to the client
    as they finish and a killed client loses at most those batches (they are simply rerun on resume).
    """

    def __init__(self, spec: InitSpec, address, retries: int = 3, window: int = 4):
        try:
            from distributed import Client
        except ImportError:
            raise RampartError("--scheduler needs dask.distributed (pip install distributed)") from None
        try:
            self.client = address if isinstance(address, Client) else Client(address, timeout="20s")
        except (OSError, TimeoutError, ValueError) as e:
            raise RampartError(f"cannot reach the Dask scheduler at {address}: {e}") from None
        self.own = not isinstance(address, Client)
        self.spec, self.retries = spec, retries
        threads = sum(self.client.nthreads().values()) or 1
        self.window = max(window, 2 * threads)
        self.spec_future = self.client.scatter(spec, broadcast=True)

    def map(self, tasks):
        from distributed import as_completed

        tasks = iter(tasks)
        pending = as_completed()
        inflight = 0
        for task in tasks:
            pending.add(self.client.submit(run_task, self.spec_future, task, retries=self.retries, pure=False))
            inflight += 1
            if inflight >= self.window:
                break
        for future in pending:
            try:
                result = future.result()
            except Exception as e:
                raise RampartError(f"a batch failed on the Dask cluster after {self.retries} retries "
                                   f"({type(e).__name__}: {e}); the results so far are stored, resume later") from None
            inflight -= 1
            for task in tasks:
                pending.add(self.client.submit(run_task, self.spec_future, task, retries=self.retries, pure=False))
                break
            yield result

    def close(self):
        if self.own:
            self.client.close()


def make_scheduler(spec: InitSpec, workers: int, scheduler=None, pending: int = 0, batch_size: int = 1) -> Scheduler:
    """Dask when ``scheduler`` (an address or a Client) is given, else a fork pool, or inline for one worker."""
    if scheduler is not None:
        return DaskScheduler(spec, scheduler)
    if workers == 1:
        return InlineScheduler(spec)
    return PoolScheduler(spec, workers)
