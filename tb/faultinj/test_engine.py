"""faultinj.engine: the fast C injector (checkpoints, digests, early stop) against the plain full-replay reference."""
import numpy as np
import pytest

from faultinj.engine import GoldenRun, ReferenceRun, golden_run
from faultinj.outcomes import Outcome
from faultinj.workload import Workload, make_workload
from sim.build import build
from sim.crosscheck import words_to_ints
from sim.errors import RampartError

ROWS = COLS = 4


@pytest.fixture(scope="module")
def mac():
    return build("mac_array", "4x4")


@pytest.fixture(scope="module")
def matmul():
    return make_workload("mac_array_matmul", "4x4", seed=7, cycles=3000)


def _signed32(x: int) -> int:
    return x - (1 << 32) if x >= 1 << 31 else x


def test_matmul_workload_computes_matrix_products(mac, matmul):
    golden = golden_run(mac, matmul)
    out = words_to_ints(golden.outputs)
    checked = 0
    for start, A, W in matmul.params["tiles"]:
        readout = start + A.shape[1] + ROWS + COLS - 2
        for r in range(ROWS):
            cycle = readout + r + 1
            if cycle >= matmul.cycles:
                break
            assert matmul.observe[cycle]
            got = [_signed32((out[cycle] >> (32 * c)) & 0xFFFFFFFF) for c in range(COLS)]
            assert got == (A @ W)[r].tolist()
            checked += 1
    assert checked > 200
    assert matmul.observe.sum() == checked


def test_fast_engine_matches_reference(mac, matmul):
    golden = golden_run(mac, matmul)
    reference = ReferenceRun(mac, matmul)
    rng = np.random.default_rng(11)
    n = 240
    sites = rng.integers(0, golden.num_sites, n)
    cycles = rng.integers(0, matmul.cycles, n)
    # plus faults in the last cycles and right on checkpoint boundaries
    sites = np.concatenate([sites, rng.integers(0, golden.num_sites, 40)])
    edges = np.array([0, golden.interval - 1, golden.interval, 2 * golden.interval, matmul.cycles - 1] * 8)
    cycles = np.concatenate([cycles, edges])
    outcomes, simulated = golden.inject(sites, cycles)
    expected = np.array([reference.outcome(int(s), int(c)) for s, c in zip(sites, cycles, strict=True)])
    mismatches = np.flatnonzero(outcomes != expected)
    assert mismatches.size == 0, [(int(sites[i]), int(cycles[i]), int(outcomes[i]), int(expected[i]))
                                  for i in mismatches[:10]]
    counts = np.bincount(outcomes, minlength=len(Outcome))
    assert counts[Outcome.MASKED] >= 20 and counts[Outcome.SDC] >= 20
    assert set(np.unique(outcomes)) <= {Outcome.MASKED, Outcome.SDC, Outcome.LATENT}
    # early stop: masked faults mostly end at the next checkpoint, far from the end of the workload
    assert simulated.max() <= matmul.cycles
    assert np.median(simulated[outcomes == Outcome.MASKED]) <= 2 * golden.interval


def _pipeline_workload(mac, cycles=300, seed=5) -> Workload:
    """Always enabled, clear only at cycle 0, random operands and row select, every cycle observed."""
    rng = np.random.default_rng(seed)
    inputs = {p.name: rng.integers(1, 1 << p.width, size=cycles, dtype=np.uint64)
              for p in mac.ports if p.direction == "in" and p.name.startswith(("a_in", "w_in"))}
    inputs["en"] = np.ones(cycles, dtype=np.uint64)
    inputs["clear"] = (np.arange(cycles) == 0).astype(np.uint64)
    inputs["rsel"] = rng.integers(0, ROWS, size=cycles, dtype=np.uint64)
    return Workload("pipeline", "mac_array", mac.config, inputs, ("out",))


def test_flip_in_the_last_cycle(mac):
    workload = _pipeline_workload(mac)
    golden = GoldenRun(mac, workload, interval=32)
    reference = ReferenceRun(mac, workload)
    last = workload.cycles - 1

    def site(name, bit):
        return int(golden.sim.site_offsets[golden.sim.element_index(name)]) + bit

    cases = {
        # the readout register drives `out` directly: the flip is seen in the same cycle
        site("top.out", 3): Outcome.SDC,
        # a dead-end pipeline register (last column's a_out feeds nothing) is overwritten by the final edge
        site(f"top.pe_0_{COLS - 1}.a_out", 2): Outcome.MASKED,
        site(f"top.pe_{ROWS - 1}_0.w_out", 6): Outcome.MASKED,
        # an accumulator keeps the error (acc + a*w) but no later cycle reads it out
        site("top.pe_1_1.acc", 9): Outcome.LATENT,
    }
    for s, want in cases.items():
        outcomes, simulated = golden.inject([s], [last])
        assert Outcome(int(outcomes[0])) is want
        assert reference.outcome(s, last) is want
        assert simulated[0] <= golden.interval
    # the same dead-end register flipped mid-run is overwritten by the next edge: masked at the next checkpoint
    outcomes, simulated = golden.inject([site(f"top.pe_0_{COLS - 1}.a_out", 2)], [100])
    assert outcomes[0] == Outcome.MASKED and simulated[0] <= golden.interval
    golden.close()


def test_bad_faults_are_rejected(mac, matmul):
    golden = golden_run(mac, matmul)
    with pytest.raises(RampartError, match="site out of range"):
        golden.inject([golden.num_sites], [0])
    with pytest.raises(RampartError, match="cycle out of range"):
        golden.inject([0], [matmul.cycles])
    with pytest.raises(RampartError, match="workload .* is for"):
        GoldenRun(build("mac_array", "4x4"), Workload("x", "other", None, {"a": np.zeros(3)}, ("out",)))
