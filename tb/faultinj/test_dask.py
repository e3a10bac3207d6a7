"""`--scheduler`: campaigns on a dask.distributed cluster store exactly what the local pool stores."""
import sqlite3
import sys

import pytest

from base import RampartError
from faultinj.campaign import campaign_status, resume_campaign, run_campaign
from rtl.common.mac_array import MacArrayConfig

distributed = pytest.importorskip("distributed")

SMALL = MacArrayConfig(rows=2, cols=2)
ARGS = dict(design="mac_array", config=SMALL, workload="mac_array_matmul", samples=3000, seed=11, strata="block",
            workload_cycles=200, batch_size=250)


def _rows(path):
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id, site, cycle, block, outcome, cycles FROM injections ORDER BY id").fetchall()


def _make_flaky(always=False):
    """Run on every worker: the next batch there raises once (or every batch raises, with ``always``)."""
    import faultinj.scheduler as scheduler

    original = getattr(scheduler, "ORIGINAL_RUN_TASK", scheduler.run_task)
    scheduler.ORIGINAL_RUN_TASK = original
    scheduler.FAILURES_INJECTED = 0

    def flaky(spec, task):
        if always or scheduler.FAILURES_INJECTED == 0:
            scheduler.FAILURES_INJECTED += 1
            raise RuntimeError("injected worker failure")
        return original(spec, task)

    scheduler.run_task = flaky


def _restore():
    import faultinj.scheduler as scheduler

    scheduler.run_task = getattr(scheduler, "ORIGINAL_RUN_TASK", scheduler.run_task)


def _failures_injected():
    import faultinj.scheduler as scheduler

    return getattr(scheduler, "FAILURES_INJECTED", 0)


ITERATIVE = dict(ARGS, samples=None, strata="block,cycle", cycle_windows=2, iterative=True, margin=0.04,
                 confidence=0.95)


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    """The local fork-pool runs, made before the cluster's threads exist in this process (fork + threads)."""
    tmp = tmp_path_factory.mktemp("local")
    return {"fixed": (tmp / "fixed.db", run_campaign(tmp / "fixed.db", **ARGS, workers=2)),
            "iterative": (tmp / "it.db", run_campaign(tmp / "it.db", **ITERATIVE, workers=2))}


@pytest.fixture(scope="module")
def cluster(local):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                  silence_logs=40) as cluster:
        yield cluster


def test_dask_equals_local_pool(local, cluster, tmp_path):
    local_path, local = local["fixed"]
    with distributed.Client(cluster) as client:
        client.run(_make_flaky)
        remote = run_campaign(tmp_path / "dask.db", **ARGS, scheduler=cluster.scheduler_address)
        failures = sum(client.run(_failures_injected).values())
        client.run(_restore)
    assert 1 <= failures <= 2, "each worker fails its first task once; the client retries it"
    assert remote.complete and remote.counts() == local.counts()
    assert _rows(tmp_path / "dask.db") == _rows(local_path)


def test_dask_resume_and_iterative(local, cluster, tmp_path):
    local_path, local = local["iterative"]
    path = tmp_path / "dask.db"
    run_campaign(path, **ITERATIVE, scheduler=cluster.scheduler_address)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM injections WHERE id % 3 = 0")
    assert campaign_status(path).done < local.done and not campaign_status(path).complete
    again = resume_campaign(path, scheduler=cluster.scheduler_address)
    assert again.complete and again.counts() == local.counts() and again.rounds == local.rounds
    assert _rows(path) == _rows(local_path)


def test_dask_batch_failing_every_retry_is_one_error(cluster, tmp_path):
    path = tmp_path / "fail.db"
    with distributed.Client(cluster) as client:
        client.run(_make_flaky, always=True)
        try:
            with pytest.raises(RampartError, match="failed on the Dask cluster after 3 retries.*injected worker"):
                run_campaign(path, **ARGS, scheduler=cluster.scheduler_address)
        finally:
            client.run(_restore)
    assert campaign_status(path).done == 0
    assert resume_campaign(path, scheduler=cluster.scheduler_address).complete
