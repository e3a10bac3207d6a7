"""faultinj.engine: the fast C injector (checkpoints, digests, early stop) against the plain full-replay reference."""

import numpy as np
import pytest

from base import RampartError
from faultinj.engine import GoldenRun, ReferenceRun, golden_run
from faultinj.outcomes import Outcome
from faultinj.workload import Workload, make_workload
from sim.build import build
from sim.crosscheck import words_to_ints
from sim.harness import NativeSim

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


# --------------------------------------------------------------------------------------------------------------------
# Multi-bit upsets

def test_multi_bit_upsets_fast_equals_reference(mac, matmul):
    """2- and 3-bit upsets (wrapping at the word's edge) through the C loop == the reference's bit-by-bit flips."""
    golden = golden_run(mac, matmul)
    reference = ReferenceRun(mac, matmul)
    rng = np.random.default_rng(21)
    acc = golden.sim.element_index("top.pe_2_1.acc")
    top_bit = int(golden.sim.site_offsets[acc]) + mac.state[acc].width - 1   # wraps to bit 0
    for upset in (2, 3):
        sites = np.concatenate([rng.integers(0, golden.num_sites, 50), [top_bit] * 4])
        cycles = np.concatenate([rng.integers(0, matmul.cycles, 50), [0, 700, 1500, matmul.cycles - 1]])
        outcomes, _ = golden.inject(sites, cycles, upset=upset)
        expected = [reference.outcome(int(s), int(c), upset) for s, c in zip(sites, cycles, strict=True)]
        assert outcomes.tolist() == [int(o) for o in expected]
        assert (outcomes == Outcome.SDC).sum() >= 5
    with pytest.raises(RampartError, match="multi-bit upset"):
        golden.inject([0], [0], upset=0)


def test_upset_wraps_within_one_word(mac):
    with NativeSim(mac) as sim:
        acc = sim.element_index("top.pe_0_0.acc")
        width = mac.state[acc].width
        before = np.frombuffer(sim.state_bytes(), dtype=np.uint8)
        sim.flip_upset(int(sim.site_offsets[acc]) + width - 2, 4)
        after = np.frombuffer(sim.state_bytes(), dtype=np.uint8)
        changed = np.flatnonzero(np.unpackbits(before ^ after, bitorder="little"))
        base = sim.digest_bit_offset(int(sim.site_offsets[acc]))
        assert (changed - base).tolist() == [0, 1, width - 2, width - 1]


def _secded_reads(result, config, cycles=600, seed=3) -> Workload:
    """Every word of a SECDED SRAM loaded with random data, then read in address order, twice over."""
    memory = next(e for e in result.state if e.kind == "mem")
    data = np.random.default_rng(seed).integers(0, 1 << config.width, config.depth)
    addr = np.arange(cycles, dtype=np.uint64) % config.depth
    inputs = {"addr": addr, "re": np.ones(cycles, dtype=np.uint64), "we": np.zeros(cycles, dtype=np.uint64),
              "wdata": np.zeros(cycles, dtype=np.uint64)}
    image = ((memory.hier_name, 0, [config.encode_int(int(d)) for d in data]),)
    return Workload("secded_reads", "sram", result.config, inputs, ("rdata",), memory=image,
                        detect=("error",), correct=("corrected",))


def test_secded_corrects_single_and_flags_double_upsets():
    """One flipped bit of a stored SECDED word is corrected on its next read (DETECTED_RECOVERABLE: rdata right,
    ``corrected`` pulsed); two adjacent flipped bits of the same word are flagged (DETECTED_UNRECOVERABLE). Fast
    engine and reference agree on every case."""
    from rtl.common.sram import SramConfig

    result = build("sram", "256x16-secded")
    config = SramConfig(256, 16, result.config.protection)
    workload = _secded_reads(result, config)
    golden = GoldenRun(result, workload, interval=64)
    reference = ReferenceRun(result, workload)
    memory = next(i for i, e in enumerate(result.state) if e.kind == "mem")
    stored = result.state[memory].width
    rng = np.random.default_rng(4)
    words = rng.integers(0, 256, 12)
    bits = rng.integers(0, stored, 12)
    sites = int(golden.sim.site_offsets[memory]) + words * stored + bits
    cycles = words - 5 + 256 * (words < 5)          # a few cycles before the word's next read
    want = {1: Outcome.DETECTED_RECOVERABLE, 2: Outcome.DETECTED_UNRECOVERABLE}
    for upset, outcome in want.items():
        outcomes, _ = golden.inject(sites, cycles, upset=upset)
        assert outcomes.tolist() == [outcome] * len(sites)
        assert [reference.outcome(int(s), int(c), upset) for s, c in zip(sites, cycles, strict=True)] == \
            [outcome] * len(sites)
    golden.close()
