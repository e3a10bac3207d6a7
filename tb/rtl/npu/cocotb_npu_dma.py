"""cocotb tests of the NPU DMA through command streams (design ``npu``, compute replaced by its test double).

Every copy is checked byte for byte over both whole memories (external memory and the shared buffer) against
``cocotb_npu_model.NpuModel``, which copies ``DMA0_LEN`` bytes from ``BASEP[src] + DMA0_SRC`` to
``BASEP[dst] + DMA0_DST`` (or to the shared buffer) in stream order. Run from ``test_cocotb_dma.py``.
"""
from __future__ import annotations

import random

import cocotb
from cocotb_npu_model import INTERNAL, STOP, dma, op, ranges_overlap, set0, set1
from cocotb_npu_tb import BASEP, check_memories, execute, seed_from_env, setup, sweep_from_env

from rtl.npu.controller import ErrorCode
from rtl.npu.dma import DmaError

#: Random DMA source data: regions 0..3.
SOURCE_BYTES = 0x10000
EDGE_LENGTHS = (1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 64, 65, 255, 1000)


def random_external(rng: random.Random, length: int, avoid: int | None = None) -> tuple[int, int]:
    """(region, offset) of a ``length``-byte range in regions 0..3 (up to 32 KiB past the base) not overlapping the
    absolute range starting at ``avoid``."""
    while True:
        region, offset = rng.randrange(4), rng.randrange(0x8000 - length)
        if avoid is None or not ranges_overlap(BASEP[region] + offset, avoid, length):
            return region, offset


def random_copy(rng: random.Random, length: int, shram_bytes: int, to_shram: bool) -> list[int]:
    src_region, src = random_external(rng, length)
    if to_shram:   # the region index is ignored for the shared buffer: use any
        return dma(src_region, src, INTERNAL | rng.randrange(8), rng.randrange(shram_bytes - length + 1), length)
    dst_region, dst = random_external(rng, length, avoid=BASEP[src_region] + src)
    return dma(src_region, src, dst_region, dst, length)


@cocotb.test()
async def copies_of_every_alignment_match_the_model(dut):
    bench, model = await setup(dut, random_bytes=SOURCE_BYTES)
    rng = random.Random(seed_from_env())
    shram = bench.config.shram_bytes
    for wait in (True, False):
        words = []
        for i, length in enumerate(EDGE_LENGTHS):
            words += random_copy(rng, length, shram, to_shram=bool(i % 2) == wait)
            words += op("OP_DMA_WAIT") if wait else []
        hw, _ = await execute(bench, model, words + [STOP])
        assert hw.dma_count == len(EDGE_LENGTHS)
        await check_memories(bench, model)
    await execute(bench, model, dma(0, 8, INTERNAL, 0, shram) + [STOP])   # the whole shared buffer
    await check_memories(bench, model)


@cocotb.test()
async def a_copy_overlaps_later_commands_but_not_the_next_copy(dut):
    """Parsing goes on while a copy runs (register writes, kicks), the running copy keeps the descriptor it started
    with, and a second DMA_START waits for the single channel: a copy of a copy's destination sees the new data."""
    bench, model = await setup(dut, random_bytes=SOURCE_BYTES)
    length = 3000
    first = bytes(model.ext[BASEP[0] + 0x100:BASEP[0] + 0x100 + length])
    hw, _ = await execute(bench, model, dma(0, 0x100, 1, 0x200, length) + dma(1, 0x200, 2, 0x300, length) + [STOP])
    s1, s2 = hw.dma_start_edges()
    assert s2 > s1 + 1 and s2 not in hw.dma_active_edges()
    await check_memories(bench, model)
    assert bytes(model.ext[BASEP[2] + 0x300:BASEP[2] + 0x300 + length]) == first   # the model itself chained them

    words = (dma(0, 0, 3, 0, 4096) + set1("DMA0_SRC", 0x40) + set1("DMA0_DST", 0x80) + set1("DMA0_LEN", 5)
             + set0("DMA0_DST_REGION", INTERNAL) + op("OP_CONV") + op("OP_DMA_WAIT") + op("OP_DMA_START")
             + op("OP_DMA_WAIT") + [STOP])
    hw, expected = await execute(bench, model, words)
    assert [d.length for d in expected.dmas] == [4096, 5]
    first_copy = [e for e in hw.dma_active_edges() if e < hw.dma_start_edges()[1]]
    assert hw.kicks[0].edge < first_copy[-1]   # the kick came while the first copy was still running
    await check_memories(bench, model)


@cocotb.test()
async def rejected_descriptors_touch_nothing(dut):
    bench, model = await setup(dut, random_bytes=SOURCE_BYTES)
    size, shram = bench.config.ext_mem_bytes, bench.config.shram_bytes
    bad = [
        ((0, 0, 1, 0, 0), DmaError.LENGTH_ZERO),
        ((INTERNAL, 0, 1, 0, 8), DmaError.SRC_REGION),
        ((0, 0, 8, 0, 8), DmaError.DST_REGION),
        ((0, 0, 0x401, 0, 8), DmaError.STRIDE_MODE),
        ((3, size - BASEP[3] - 7, 1, 0, 8), DmaError.SRC_RANGE),
        ((0, 0, INTERNAL, shram - 7, 8), DmaError.DST_RANGE),
        ((0, 0, 1, 0xFFFF_FFF0, 0x20), DmaError.DST_RANGE),
    ]
    good = dma(1, 0x40, 2, 0x80, 200) + [STOP]
    for args, error in bad:
        words = dma(0, 0x10, INTERNAL, 0x20, 100) + dma(*args) + [STOP]
        hw, expected = await execute(bench, model, words)
        assert expected.code == ErrorCode.DMA_DESCRIPTOR | error and hw.dma_count == 1
        hw, _ = await execute(bench, model, good)   # the next start works, no reset
        assert hw.code == ErrorCode.OK and hw.dma_count == 1
    await check_memories(bench, model)   # a stray write by any rejected descriptor would still show here


def random_program(rng: random.Random, shram_bytes: int) -> list[int]:
    """1..6 copies of random lengths and places, each followed or not by a DMA_WAIT or a kick."""
    words = []
    for _ in range(rng.randrange(1, 7)):
        length = rng.choice([rng.randrange(1, 17), rng.randrange(1, 600), rng.randrange(600, 3000)])
        words += random_copy(rng, length, shram_bytes, to_shram=rng.random() < 0.4)
        words += rng.choice([[], op("OP_DMA_WAIT"), op("OP_DMA_WAIT", 1), op("OP_CONV")])
    return words + [STOP]


@cocotb.test()
async def random_copies_match_the_model(dut):
    bench, model = await setup(dut, source_seed=seed_from_env(), random_bytes=SOURCE_BYTES)
    rng = random.Random(seed_from_env())
    programs = sweep_from_env(8)
    copies = 0
    for _ in range(programs):
        hw, expected = await execute(bench, model, random_program(rng, bench.config.shram_bytes))
        assert expected.code == ErrorCode.OK
        copies += hw.dma_count
        await check_memories(bench, model)
    cocotb.log.info(f"{programs} random DMA programs, {copies} copies")
