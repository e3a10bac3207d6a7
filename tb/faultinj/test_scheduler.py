"""Local schedulers: batches split into pieces for load balance (merged back into batch-sized results), and a
2-worker pool gives exactly the inline scheduler's outcomes for every fault id, each once."""
import numpy as np

from faultinj.scheduler import InitSpec, InlineScheduler, PoolScheduler, merge_results, split_tasks
from sim.build import build


def _tasks(sizes):
    start = 0
    for n in sizes:
        ids = np.arange(start, start + n, dtype=np.int64)
        yield ids, ids * 10, ids * 100
        start += n


def test_split_tasks_covers_every_fault_once_in_order():
    pieces = list(split_tasks(_tasks([100, 7, 64]), pieces=4, minimum=16))
    assert [len(p[0]) for p in pieces] == [25, 25, 25, 25, 7, 16, 16, 16, 16]
    ids = np.concatenate([p[0] for p in pieces])
    assert ids.tolist() == list(range(171))
    for ids, sites, cycles in pieces:
        assert (sites == ids * 10).all() and (cycles == ids * 100).all()


def test_merge_results():
    a = (np.array([3, 1]), np.array([0, 1], dtype=np.uint8), np.array([5, 6]))
    b = (np.array([7]), np.array([4], dtype=np.uint8), np.array([9]))
    ids, outcomes, simulated = merge_results([a, b])
    assert ids.tolist() == [3, 1, 7] and outcomes.tolist() == [0, 1, 4] and simulated.tolist() == [5, 6, 9]
    assert merge_results([a]) is a


def test_pool_equals_inline():
    result = build("mac_array", "4x4")
    spec = InitSpec(result, result.config, "mac_array_matmul", 0, 600, None)
    rng = np.random.default_rng(3)
    n = 300
    ids = np.arange(n, dtype=np.int64)
    sites, cycles = rng.integers(0, result.state_bits, n), rng.integers(0, 600, n)
    tasks = [(ids[i:i + 100], sites[i:i + 100], cycles[i:i + 100]) for i in range(0, n, 100)]

    def collect(scheduler):
        got, results = np.full(n, -1), 0
        with scheduler:
            for task_ids, outcomes, *_ in scheduler.map(tasks):
                assert (got[task_ids] == -1).all()
                got[task_ids] = outcomes
                results += 1
        return got, results

    pooled, results = collect(PoolScheduler(spec, 2))
    # pieces of 25 run on the workers, merged back into results of the batch size (100)
    assert (pooled >= 0).all() and results == 3
    assert pooled.tolist() == collect(InlineScheduler(spec))[0].tolist()
