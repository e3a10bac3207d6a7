"""cocotb tests of the NPU command-stream controller (design ``npu``, compute replaced by its test double).

Every expectation comes from ``cocotb_npu_model.NpuModel`` (the specification, in Python): kick order and the
register snapshot each kick carries, the effect of KERNEL_WAIT / DMA_WAIT / STOP on what may overlap, error codes
and offsets, and that a new ``start`` without a reset works after every error. Run from
``test_cocotb_controller.py``.
"""
from __future__ import annotations

import copy
import random

import cocotb
from cocotb_npu_model import KERNEL_OPS, OP, SET0, SET1, STOP, NpuModel, dma, op, ranges_overlap, set0, set1
from cocotb_npu_tb import (
    BASEP,
    CMD_BASE,
    REGISTER_FIELDS,
    check_memories,
    execute,
    seed_from_env,
    setup,
    sweep_from_env,
)

from rtl.npu.controller import ErrorCode

# --- stream generators ---------------------------------------------------------------------------------------------

def register_write(rng: random.Random, name: str) -> list[int]:
    if name in SET1:
        return set1(name, rng.getrandbits(32), rng.getrandbits(16))
    return set0(name, rng.getrandbits(16))


def register_program(rng: random.Random, names, kicks: int) -> list[int]:
    """Writes to ``names`` (in random order) with kicks, no-ops and satisfied waits scattered in between."""
    items = [register_write(rng, n) for n in names]
    items += [op(rng.choice(KERNEL_OPS), rng.getrandbits(16)) for _ in range(kicks)]
    items += [op("OP_IRQ", rng.getrandbits(16)), op("OP_PMU_MASK", rng.getrandbits(16)),
              op("OP_KERNEL_WAIT", rng.randrange(3)), op("OP_DMA_WAIT", rng.randrange(2))]
    rng.shuffle(items)
    return [w for item in items for w in item] + [STOP]


# --- tests ---------------------------------------------------------------------------------------------------------

@cocotb.test()
async def register_snapshots_follow_the_stream(dut):
    """Every register lands in its own field of the kick payload; values are sticky across kicks and runs."""
    bench, model = await setup(dut)
    rng = random.Random(seed_from_env())
    known = set(SET0) | set(SET1) | {"OFM_SCALE_SHIFT", "OPA_SCALE_SHIFT"}
    assert set(REGISTER_FIELDS) <= known, set(REGISTER_FIELDS) - known
    every = (list(SET0) + list(SET1)) * 2
    seen_nonzero = set()
    for names, kicks in ((every, 8), (rng.sample(every, 20), 3), ([], 2)):   # no reset in between
        hw, expected = await execute(bench, model, register_program(rng, names, kicks))
        assert expected.code == ErrorCode.OK and len(hw.kicks) == kicks
        seen_nonzero |= {n for k in hw.kicks for n, v in k.regs.items() if v}
    assert seen_nonzero == set(REGISTER_FIELDS)


@cocotb.test()
async def kernel_wait_gates_the_next_command(dut):
    """KERNEL_WAIT 0 holds parsing until the test double has finished the last kick; KERNEL_WAIT 1 does not."""
    bench, model = await setup(dut)
    stub = bench.config.stub_compute_cycles
    for limit in (0, 1):
        words = op("OP_CONV") + op("OP_POOL", 3) + op("OP_KERNEL_WAIT", limit) + dma(0, 0, 1, 0, 64) + [STOP]
        hw, _ = await execute(bench, model, words)
        (dma_start,) = hw.dma_start_edges()
        second_kick = hw.kicks[1].edge
        if limit == 0:
            assert dma_start >= second_kick + stub, (dma_start, second_kick)
        else:
            assert dma_start < second_kick + stub, (dma_start, second_kick)
    await check_memories(bench, model)


@cocotb.test()
async def dma_wait_and_stop_drain_the_dma(dut):
    """A kick right after DMA_START overlaps the copy; DMA_WAIT 0 holds the next kick until the copy is done
    (DMA_WAIT 1 does not); STOP reports ``done`` only after the DMA and the kernel ops have finished."""
    bench, model = await setup(dut)
    stub = bench.config.stub_compute_cycles
    for limit in (0, 1):
        words = dma(0, 0, 2, 0, 4096) + op("OP_CONV") + op("OP_DMA_WAIT", limit) + op("OP_DEPTHWISE") + [STOP]
        hw, _ = await execute(bench, model, words)
        last_active = hw.dma_active_edges()[-1]
        assert hw.kicks[0].edge < last_active
        if limit == 0:
            assert hw.kicks[1].edge > last_active
        else:
            assert hw.kicks[1].edge < last_active
        assert hw.done_edge > last_active and hw.done_edge >= hw.kicks[1].edge + stub
    words = op("OP_CONV") + [STOP]
    hw, _ = await execute(bench, model, words)
    assert hw.done_edge >= hw.kicks[0].edge + stub
    await check_memories(bench, model)


@cocotb.test()
async def done_holds_until_the_next_start(dut):
    bench, model = await setup(dut)
    hw, _ = await execute(bench, model, op("OP_ELEMENTWISE", 7) + [STOP])
    for _ in range(50):
        await bench.wait_dma_idle()
        assert (bench.peek("done"), bench.peek("busy"), bench.peek("error")) == (1, 0, 0)
        assert bench.peek("kernel_count") == 1
    hw, _ = await execute(bench, model, [STOP])   # bench.run asserts that start clears done
    assert hw.kernel_count == 0


def error_cases(cfg) -> list[tuple[str, list[int], int, int | None]]:
    """(name, words, cmd_base, cmd_len or None) of streams that must end in an error."""
    size, shram = cfg.ext_mem_bytes, cfg.shram_bytes
    ok = set0("IFM_REGION", 1) + set1("IFM_BASE0", 0x40)
    return [
        ("unknown cmd0", ok + [0x03FF] + [STOP], CMD_BASE, None),
        ("unknown cmd1", ok + [0x43FF, 5] + [STOP], CMD_BASE, None),
        ("reserved bits", ok + [OP["OP_CONV"] | 1 << 12] + [STOP], CMD_BASE, None),
        ("mode 2", ok + [SET0["IFM_REGION"] | 0x8000] + [STOP], CMD_BASE, None),
        ("mode 3", [0xC000 | SET1["IFM_BASE0"], 0] + [STOP], CMD_BASE, None),
        ("truncated cmd1", ok + op("OP_CONV") + [SET1["OFM_BASE0"] | 0x4000], CMD_BASE, None),
        ("no stop", ok + op("OP_CONV"), CMD_BASE, None),
        ("misaligned base", ok + [STOP], CMD_BASE + 2, None),
        ("empty stream", [STOP], CMD_BASE, 0),
        ("ragged length", ok + [STOP], CMD_BASE, 6),
        ("stream beyond memory", [STOP], size - 8, 16),
        ("dma length 0", dma(0, 0, 1, 0, 0) + [STOP], CMD_BASE, None),
        ("dma source region 8", dma(8, 0, 1, 0, 8) + [STOP], CMD_BASE, None),
        ("dma internal source", dma(0x100, 0, 1, 0, 8) + [STOP], CMD_BASE, None),
        ("dma destination region 9", dma(0, 0, 9, 0, 8) + [STOP], CMD_BASE, None),
        ("dma stride mode", dma(0x200, 0, 1, 0, 8) + [STOP], CMD_BASE, None),
        ("dma source beyond memory", dma(7, size - BASEP[7] - 4, 1, 0, 8) + [STOP], CMD_BASE, None),
        ("dma source address wraps", dma(0, 0xFFFF_FFF8, 1, 0, 16) + [STOP], CMD_BASE, None),
        ("dma destination beyond memory", dma(0, 0, 7, size - BASEP[7], 1) + [STOP], CMD_BASE, None),
        ("dma destination beyond SHRAM", dma(0, 0, 0x100, shram - 4, 8) + [STOP], CMD_BASE, None),
        ("error behind a long dma", dma(0, 0, 3, 0, 8192) + [0x03FF], CMD_BASE, None),
    ]


@cocotb.test()
async def errors_are_reported_and_a_new_start_works(dut):
    bench, model = await setup(dut)
    good = (set0("OFM_REGION", 2) + dma(0, 8, 0x100, 16, 100) + op("OP_CONV") + op("OP_DMA_WAIT")
            + op("OP_KERNEL_WAIT") + [STOP])
    codes = set()
    for name, words, cmd_base, cmd_len in error_cases(bench.config):
        hw, expected = await execute(bench, model, words, cmd_base=cmd_base, cmd_len=cmd_len)
        assert expected.code != ErrorCode.OK, name
        codes.add(expected.code)
        hw, expected = await execute(bench, model, good, cmd_base=0x800)   # no reset
        assert expected.code == ErrorCode.OK and hw.kernel_count == 1, name
    assert len(codes) == 13   # 7 stream errors + 6 descriptor errors
    await check_memories(bench, model)


# --- random streams -----------------------------------------------------------------------------------------------

def random_value(rng: random.Random, name: str) -> int:
    """Mostly plausible values for the DMA registers (so most copies run), anything for the others."""
    weird = rng.random() < 0.2
    if name in ("DMA0_SRC_REGION", "DMA0_DST_REGION"):
        return rng.choice([9, 0x200, 0x100, rng.getrandbits(16)]) if weird else rng.choice([0, 1, 2, 3, 0x100])
    if name in ("DMA0_SRC", "DMA0_DST"):
        return rng.getrandbits(32) if weird else rng.randrange(0x3000)
    if name == "DMA0_LEN":
        return rng.choice([0, rng.getrandbits(32)]) if weird else rng.randrange(1, 0x400)
    return rng.getrandbits(32 if name in SET1 else 16)


def random_command(rng: random.Random) -> list[int]:
    r = rng.random()
    if r < 0.3:
        name = rng.choice(["DMA0_SRC_REGION", "DMA0_DST_REGION", "DMA0_SRC", "DMA0_DST", "DMA0_LEN"])
    elif r < 0.55:
        name = rng.choice(list(SET0) + list(SET1))
    elif r < 0.65:
        return op("OP_DMA_START")
    elif r < 0.95:
        return op(rng.choice(("OP_DMA_WAIT", "OP_KERNEL_WAIT", "OP_IRQ") + KERNEL_OPS), rng.randrange(3))
    elif r < 0.99:
        return [rng.getrandbits(32)]                         # anything, mostly illegal
    else:
        return [rng.choice(list(SET1.values())) | 0x4000]   # a cmd1 word that may end up truncated
    value = random_value(rng, name)
    return set1(name, value, rng.getrandbits(16)) if name in SET1 else set0(name, value)


def random_stream(rng: random.Random) -> list[int]:
    words = [w for _ in range(rng.randrange(1, 20)) for w in random_command(rng)]
    return words + [STOP] if rng.random() < 0.9 else words


def copies_are_defined(model: NpuModel, words) -> bool:
    """Overlapping source and destination ranges of one copy are undefined in the hardware (Vela never emits them)."""
    trial = copy.deepcopy(model)
    outcome = trial.run(words, CMD_BASE, BASEP)
    for d in outcome.dmas:
        if not d.dst_region & 0x100 and ranges_overlap(BASEP[d.src_region & 0xFF] + d.src,
                                                       BASEP[d.dst_region & 0xFF] + d.dst, d.length):
            return False
    return True


@cocotb.test()
async def random_streams_match_the_model(dut):
    bench, model = await setup(dut, source_seed=seed_from_env())
    rng = random.Random(seed_from_env())
    runs = sweep_from_env(25)
    codes, kicks, copies = {}, 0, 0
    for _ in range(runs):
        words = random_stream(rng)
        while not copies_are_defined(model, words):
            words = random_stream(rng)
        _, expected = await execute(bench, model, words)
        codes[int(expected.code)] = codes.get(int(expected.code), 0) + 1
        kicks, copies = kicks + len(expected.kicks), copies + len(expected.dmas)
    cocotb.log.info(f"{runs} random streams: {kicks} kicks, {copies} copies, outcomes by error code "
                    f"{dict(sorted(codes.items()))}")
    assert len(codes) >= min(4, runs // 5) and ErrorCode.OK in codes
    assert kicks >= runs // 4 and copies >= runs // 10
    await check_memories(bench, model)

