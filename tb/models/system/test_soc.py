"""The SoC processes of models/system/soc.py against timings worked out by hand."""
import pytest
import simpy

from models.system.soc import Accelerator, Host, Request, SharedMemory


def _run_transfers(memory, env, jobs):
    """Start ``jobs`` = [(master, bytes, priority, start)]; returns {master: finish time}."""
    done = {}

    def one(master, nbytes, prio, start):
        yield env.timeout(start)
        yield from memory.transfer(master, nbytes, priority=prio)
        done[master] = env.now

    for job in jobs:
        memory.attach(job[0])
        env.process(one(*job))
    env.run()
    return done


def test_one_master_pays_latency_once_then_bandwidth():
    env = simpy.Environment()
    mem = SharedMemory(env, bandwidth=4, latency=40)
    done = _run_transfers(mem, env, [("npu", 1000, 0, 0)])
    assert done["npu"] == 40 + 1000 / 4
    assert mem.bytes["npu"] == 1000 and mem.busy_cycles == 250


def test_two_masters_share_the_bandwidth_in_bursts():
    env = simpy.Environment()
    mem = SharedMemory(env, bandwidth=8, latency=0, burst_bytes=64)
    done = _run_transfers(mem, env, [("a", 4096, 0, 0), ("b", 4096, 0, 0)])
    # interleaved bursts: both finish near the end of 8 KiB at 8 bytes/cycle, one burst apart
    assert max(done.values()) == 8192 / 8
    assert abs(done["a"] - done["b"]) == 64 / 8


def test_priority_arbitration_serves_the_urgent_master_first():
    env = simpy.Environment()
    mem = SharedMemory(env, bandwidth=8, latency=0, burst_bytes=64, arbitration="priority")
    done = _run_transfers(mem, env, [("bulk", 4096, 5, 0), ("urgent", 1024, 0, 1)])
    # the urgent master waits for at most the burst in progress, then owns the bus
    assert done["urgent"] <= 1 + 64 / 8 + 1024 / 8
    assert done["bulk"] == (4096 + 1024) / 8


@pytest.mark.parametrize("bad", [dict(bandwidth=0), dict(latency=-1), dict(arbitration="lottery"),
                                 dict(burst_bytes=0)])
def test_bad_memory_parameters(bad):
    with pytest.raises(ValueError):
        SharedMemory(simpy.Environment(), **bad)


class Fixed(Accelerator):
    def __init__(self, env, cycles):
        super().__init__(env, None, "fixed")
        self.cycles = cycles

    def service(self, request):
        yield self.env.timeout(self.cycles)


@pytest.mark.parametrize("inflight, expect", [(1, 4 * (30 + 100)), (2, 30 + 4 * 100), (4, 30 + 4 * 100)])
def test_host_overlaps_setup_with_service_when_several_are_in_flight(inflight, expect):
    env = simpy.Environment()
    host = Host(env, None, Fixed(env, 100), setup_cycles=30, inflight=inflight)
    stats = host.run([Request(i, None) for i in range(4)])
    assert stats.cycles == expect
    assert [r.index for r in stats.requests] == [0, 1, 2, 3]
    assert stats.throughput == 4 / expect


def test_host_at_a_rate_leaves_the_accelerator_idle_between_requests():
    env = simpy.Environment()
    host = Host(env, None, Fixed(env, 100), inflight=4, interval=250)
    stats = host.run([Request(i, None) for i in range(3)])
    assert stats.latencies == [100, 100, 100] and stats.cycles == 2 * 250 + 100


def test_host_moves_inputs_and_outputs_over_the_memory():
    env = simpy.Environment()
    mem = SharedMemory(env, bandwidth=2, latency=10)
    host = Host(env, mem, Fixed(env, 100))
    stats = host.run([Request(0, None, in_bytes=64, out_bytes=16)])
    assert stats.cycles == (10 + 32) + 100 + (10 + 8)
    assert mem.bytes["host"] == 80
