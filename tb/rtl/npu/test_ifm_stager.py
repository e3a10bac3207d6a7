# amaranth: UnusedElaboratable=no
"""IfmStager alone in Amaranth pysim against a byte-array memory model (random latency and back-pressure): every
buffer word must equal the 8 bytes SPEC.md's address formula names, in resident and in ring mode, and the ring must
never overwrite a row the consumer still needs."""
from collections import deque

import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl.npu.ifm_stager import IfmStager

MEM_BYTES = 4096


def expected_word(mem, base, y, x, c, sy, sx, sc, nhcwb16):
    """The 8 bytes of channels c..c+7 of pixel (y, x), read as one little-endian word (independent formula)."""
    if nhcwb16:
        addr = base + y * sy + 16 * x + (c // 16) * sc + c % 16
    else:
        addr = base + y * sy + x * sx + c
    return int.from_bytes(bytes(mem[addr:addr + 8]), "little")


def run_stager(op, consumer, *, latency=5, seed=0, positions=2, depth=64):
    """Drive one op through the stager; ``consumer(ctx, dut)`` is an async testbench that checks the buffer."""
    rng = np.random.default_rng(seed)
    mem = rng.integers(0, 256, MEM_BYTES, dtype=np.uint8)
    dut = IfmStager(depth=depth, positions=positions, outstanding=4)
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def memory(ctx):
        queue = deque()   # (due cycle, word address)
        cycle = 0
        while True:
            ready = int(rng.random() < 0.8)
            ctx.set(dut.bus.req.ready, ready)
            head_due = bool(queue) and queue[0][0] <= cycle
            ctx.set(dut.bus.resp.valid, int(head_due))
            if head_due:
                word = int.from_bytes(bytes(mem[queue[0][1]:queue[0][1] + 8]), "little")
                ctx.set(dut.bus.resp.payload.rdata, word)
            await ctx.delay(1e-8)
            if ctx.get(dut.bus.req.valid) and ready:
                addr = ctx.get(dut.bus.req.payload.addr)
                assert addr % 8 == 0 and addr + 8 <= MEM_BYTES
                queue.append((cycle + latency, addr))
            if head_due and ctx.get(dut.bus.resp.ready):
                queue.popleft()
            await ctx.tick()
            cycle += 1

    async def testbench(ctx):
        set_op(ctx, dut, op)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        await consumer(ctx, dut, mem)
        for _ in range(2000):
            if not ctx.get(dut.busy):
                break
            await ctx.tick()
        assert not ctx.get(dut.busy) and not ctx.get(dut.mem_err)

    sim.add_testbench(memory, background=True)
    sim.add_testbench(testbench)
    sim.run()


def make_op(height, width, ublocks, *, base=8, sy=None, sx=16, sc=0, nhcwb16=0, ring=0, passes=1, chan_step=0, span=3,
            tiles=None):
    """One op; ``tiles`` = (h0, h1, w0, (base1, base2, base3)), default: tile 0 is the whole IFM."""
    sy = sy if sy is not None else width * sx
    h0, h1, w0, bases = tiles if tiles is not None else (height, height, width, (0, 0, 0))
    return dict(base=base, height=height, width=width, ublocks=ublocks, stride_y=sy, stride_x=sx, stride_c=sc,
                nhcwb16=nhcwb16, ring=ring, passes=passes, chan_step=chan_step, span=span, tile_h0=h0, tile_h1=h1,
                tile_w0=w0, tile_base=bases)


def set_op(ctx, dut, op):
    for name, value in op.items():
        if name == "tile_base":
            for port, v in zip(dut.tile_base, value, strict=True):
                ctx.set(port, v)
        else:
            ctx.set(getattr(dut, name), value)


async def read_word(ctx, dut, row, x, u):
    ctx.set(dut.rd_row[0], row)
    ctx.set(dut.rd_x[0], x)
    ctx.set(dut.rd_u[0], u)
    await ctx.delay(1e-8)
    return ctx.get(dut.rd_data[0])


@pytest.mark.parametrize("base,sx,nhcwb16", [(8, 16, 0), (3, 12, 0), (16, 16, 1)])
def test_resident_buffer_matches_address_formula(base, sx, nhcwb16):
    """Whole IFM resident: aligned NHWC, unaligned NHWC (12 channels, two reads per word) and NHCWB16."""
    h, w, ub = 5, 6, 2
    op = make_op(h, w, ub, base=base, sx=sx, sy=w * sx if not nhcwb16 else w * 16 * 2, sc=w * 16, nhcwb16=nhcwb16)
    done = []

    async def consumer(ctx, dut, mem):
        assert ctx.get(dut.resident) and ctx.get(dut.fits)
        for _ in range(3000):
            if ctx.get(dut.rows) == h:
                break
            await ctx.tick()
        assert ctx.get(dut.rows) == h
        for y in range(h):
            for x in range(w):
                for u in range(ub):
                    want = expected_word(mem, base, y, x, 8 * u, op["stride_y"], sx, op["stride_c"], nhcwb16)
                    assert await read_word(ctx, dut, y, x, u) == want, (y, x, u)
        done.append(True)

    run_stager(op, consumer)
    assert done


def test_ring_never_overwrites_needed_rows():
    """Ring mode (2 passes, channel offset +4 per pass, 4 row slots): a consumer that reads a window of ``span``
    rows and only then releases the lowest one sees exactly the formula's bytes for every row of both passes."""
    h, w, span = 9, 4, 3
    op = make_op(h, w, 1, base=8, sx=12, sy=w * 12, ring=1, passes=2, chan_step=4, span=span)
    checked = []

    async def consumer(ctx, dut, mem):
        assert not ctx.get(dut.resident) and ctx.get(dut.fits)
        for pass_ in range(2):
            for lo in range(h - span + 1):
                ctx.set(dut.low, pass_ * h + lo)
                for _ in range(3000):
                    if ctx.get(dut.rows) > pass_ * h + lo + span - 1:
                        break
                    await ctx.tick()
                for _ in range(int(np.random.default_rng(lo).integers(0, 6))):  # the consumer takes its time
                    await ctx.tick()
                for y in range(lo, lo + span):
                    for x in range(w):
                        want = expected_word(mem, 8, y, x, 4 * pass_, w * 12, 12, 0, 0)
                        assert await read_word(ctx, dut, pass_ * h + y, x, 0) == want, (pass_, y, x)
                checked.append((pass_, lo))
                await ctx.tick()
            ctx.set(dut.low, (pass_ + 1) * h)

    run_stager(op, consumer, depth=16)
    assert len(checked) == 2 * (h - span + 1)


def test_fits_reports_rows_that_do_not_fit():
    dut = IfmStager(depth=64, positions=1)
    sim = Simulator(dut)
    seen = {}

    async def testbench(ctx):
        set_op(ctx, dut, make_op(40, 8, 2, ring=1, span=4))   # 16 words per row: 4 slots
        await ctx.delay(1e-8)
        seen["four"] = ctx.get(dut.fits)
        ctx.set(dut.span, 5)
        await ctx.delay(1e-8)
        seen["five"] = ctx.get(dut.fits)

    sim.add_testbench(testbench)
    sim.run()
    assert seen == {"four": 1, "five": 0}


@pytest.mark.parametrize("nhcwb16", [0, 1])
def test_tiles_1_to_3_address_generation(nhcwb16):
    """Four IFM tiles (NPU_SET_IFM_BASE0-3, HEIGHT0/1, WIDTH0): pixel (y, x) comes from tile 0 (y < h0, x < w0),
    1 (y < h1, x >= w0), 2 (y >= h0, x < w0) or 3 (y >= h1, x >= w0), at its row and column inside that tile; the
    tiles' bases are unrelated and one of them unaligned (NHWC)."""
    h, w, ub, h0, h1, w0 = 5, 6, 2, 2, 3, 4
    sx = 16
    sy = w * 16 * 2 if nhcwb16 else 4 * sx
    sc = w * 16
    bases = (8, 512 + 16, 1024 + (0 if nhcwb16 else 5), 2048 + 32)
    op = make_op(h, w, ub, base=bases[0], sx=sx, sy=sy, sc=sc, nhcwb16=nhcwb16,
                 tiles=(h0, h1, w0, bases[1:]))
    done = []

    def tile_of(y, x):
        if x < w0:
            return (0, y, x) if y < h0 else (2, y - h0, x)
        return (1, y, x - w0) if y < h1 else (3, y - h1, x - w0)

    async def consumer(ctx, dut, mem):
        for _ in range(3000):
            if ctx.get(dut.rows) == h:
                break
            await ctx.tick()
        assert ctx.get(dut.rows) == h
        for y in range(h):
            for x in range(w):
                t, ty, tx = tile_of(y, x)
                for u in range(ub):
                    want = expected_word(mem, bases[t], ty, tx, 8 * u, sy, sx, sc, nhcwb16)
                    assert await read_word(ctx, dut, y, x, u) == want, (y, x, u, t)
        done.append(True)

    run_stager(op, consumer)
    assert done
