"""DMA engine and external-memory model: Amaranth pysim unit tests, then command-stream DMAs on the native build."""
import numpy as np
import pytest
from amaranth import Module
from amaranth.hdl import MemoryData
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator

import rtl.npu.top as npu_top  # importing it registers design "npu"
from rtl.designs import get_design
from rtl.npu.config import PRESETS
from rtl.npu.controller import CMD0, CMD1, ErrorCode
from rtl.npu.dma import Dma, DmaError
from rtl.npu.extmem import ExtMem
from sim.build import build
from sim.harness import NativeSim

CONFIG = "u55-128"   # the same build as test_controller.py
CFG = PRESETS[CONFIG]
EXT = "top.extmem.storage"
SHRAM = "top.shram.storage"


# --- pysim bench: Dma + ExtMem + SHRAM ------------------------------------------------------------------------------

class Bench(wiring.Component):
    def __init__(self, *, ext_size=2048, shram_size=1024, latency=3, bandwidth=8):
        self.extmem = ExtMem(size=ext_size, latency=latency, bandwidth=bandwidth)
        self.dma = Dma(ext_size=ext_size, shram_size=shram_size, queue_depth=latency + 3)
        self.shram_data = MemoryData(shape=64, depth=shram_size // 8, init=[])
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.extmem, m.submodules.dma = self.extmem, self.dma
        m.submodules.shram = shram = Memory(data=self.shram_data)
        port = shram.write_port(granularity=8)
        wiring.connect(m, self.dma.bus, self.extmem.bus)
        m.d.comb += [port.addr.eq(self.dma.shram.addr), port.data.eq(self.dma.shram.data),
                     port.en.eq(self.dma.shram.en)]
        return m


def simulate(bench, testbench, max_cycles=20_000):
    async def watchdog(ctx):
        for _ in range(max_cycles):
            await ctx.tick()
        raise TimeoutError("pysim bench did not finish")

    sim = Simulator(bench)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.add_testbench(watchdog, background=True)
    sim.run()


def to_words(b: bytes) -> list[int]:
    return [int(x) for x in np.frombuffer(bytes(b) + bytes(-len(b) % 8), dtype="<u8")]


@pytest.mark.parametrize("latency", [2, 5])
def test_extmem_read_latency(latency):
    mem = ExtMem(size=2048, latency=latency, bandwidth=8)
    mem.storage.init = list(range(100, 100 + mem.depth))
    bus = mem.bus

    async def testbench(ctx):
        ctx.set(bus.resp.ready, 1)
        ctx.set(bus.req.valid, 1)
        ctx.set(bus.req.payload.addr, 8 * 7)
        assert ctx.get(bus.req.ready)
        await ctx.tick()
        ctx.set(bus.req.valid, 0)
        cycles = 1
        while not ctx.get(bus.resp.valid):
            await ctx.tick()
            cycles += 1
        assert cycles == latency
        assert ctx.get(bus.resp.payload.rdata) == 107 and not ctx.get(bus.resp.payload.err)
        # Out of range: error response, data 0.
        ctx.set(bus.req.valid, 1)
        ctx.set(bus.req.payload.addr, mem.size)
        await ctx.tick()
        ctx.set(bus.req.valid, 0)
        await ctx.tick()
        while not ctx.get(bus.resp.valid):
            await ctx.tick()
        assert ctx.get(bus.resp.payload.err) and ctx.get(bus.resp.payload.rdata) == 0
        assert ctx.get(mem.fault)

    simulate(mem, testbench)


@pytest.mark.parametrize("bandwidth", [8, 3, 1])
def test_extmem_bandwidth_and_order(bandwidth):
    mem = ExtMem(size=2048, latency=4, bandwidth=bandwidth)
    mem.storage.init = [i * 3 for i in range(mem.depth)]
    bus = mem.bus
    cycles = 160

    async def testbench(ctx):
        ctx.set(bus.resp.ready, 1)
        ctx.set(bus.req.valid, 1)
        accepted, received = 0, []
        for _ in range(cycles):
            ctx.set(bus.req.payload.addr, 8 * accepted)
            if ctx.get(bus.req.ready):
                accepted += 1
            if ctx.get(bus.resp.valid):
                received.append(ctx.get(bus.resp.payload.rdata))
            await ctx.tick()
        assert abs(accepted - cycles * bandwidth / 8) <= 1.5
        assert received == [3 * i for i in range(len(received))]
        assert len(received) >= accepted - 5

    simulate(mem, testbench)


async def run_desc(ctx, dma, src_region, src, dst_region, dst, length) -> tuple[int, int]:
    """Offer one descriptor; returns (desc_error, busy cycles) (0 cycles when rejected)."""
    for name, value in [("src_region", src_region), ("src", src), ("dst_region", dst_region), ("dst", dst),
                        ("length", length)]:
        ctx.set(getattr(dma.desc.payload, name), value)
    ctx.set(dma.desc.valid, 1)
    error = ctx.get(dma.desc_error)
    if error:
        assert not ctx.get(dma.desc.ready)
        ctx.set(dma.desc.valid, 0)
        await ctx.tick()
        assert not ctx.get(dma.busy)
        return error, 0
    assert ctx.get(dma.desc.ready)
    await ctx.tick()
    ctx.set(dma.desc.valid, 0)
    cycles = 0
    while ctx.get(dma.busy):
        await ctx.tick()
        cycles += 1
    return 0, cycles


def test_dma_random_copies_vs_numpy():
    rng = np.random.default_rng(7)
    bench = Bench(ext_size=2048, shram_size=1024, latency=3, bandwidth=8)
    ext = bytearray(rng.integers(0, 256, 2048, dtype=np.uint8).tobytes())
    shram = bytearray(1024)
    bench.extmem.storage.init = to_words(ext)
    dma = bench.dma
    basep = [0, 512, 1024, 1536, 0, 0, 0, 0]

    async def testbench(ctx):
        for i in range(8):
            ctx.set(dma.basep[i], basep[i])
        for _ in range(24):
            internal = rng.random() < 0.5
            length = int(rng.integers(1, 200))
            src_region = int(rng.integers(0, 4))
            src = int(rng.integers(0, 2048 - basep[src_region] - length + 1))
            if internal:
                dst_region, dst = 0x103, int(rng.integers(0, 1024 - length + 1))
            else:
                while True:   # overlapping ranges are undefined (Vela never emits them)
                    dst_region = int(rng.integers(0, 4))
                    dst = int(rng.integers(0, 2048 - basep[dst_region] - length + 1))
                    if abs(basep[dst_region] + dst - basep[src_region] - src) >= length:
                        break
            error, _ = await run_desc(ctx, dma, src_region, src, dst_region, dst, length)
            assert error == 0
            a = basep[src_region] + src
            chunk = bytes(ext[a:a + length])
            if internal:
                shram[dst:dst + length] = chunk
            else:
                b = basep[dst_region] + dst
                ext[b:b + length] = chunk
        got_ext = b"".join(int(ctx.get(bench.extmem.storage[i])).to_bytes(8, "little") for i in range(256))
        got_shram = b"".join(int(ctx.get(bench.shram_data[i])).to_bytes(8, "little") for i in range(128))
        assert got_ext == bytes(ext)
        assert got_shram == bytes(shram)

    simulate(bench, testbench)


def test_dma_rejects_bad_descriptors():
    bench = Bench(ext_size=2048, shram_size=1024)
    dma = bench.dma
    cases = [
        ((0, 0, 1, 0, 0), DmaError.LENGTH_ZERO),
        ((0x100, 0, 1, 0, 8), DmaError.SRC_REGION),      # internal source
        ((8, 0, 1, 0, 8), DmaError.SRC_REGION),
        ((0, 0, 9, 0, 8), DmaError.DST_REGION),
        ((0x200, 0, 1, 0, 8), DmaError.STRIDE_MODE),
        ((0, 0, 0x301, 0, 8), DmaError.STRIDE_MODE),
        ((1, 1500, 0, 0, 8), DmaError.SRC_RANGE),         # basep[1] = 1024: 2524 > 2048
        ((0, 0xFFFF_FFF8, 0, 0, 16), DmaError.SRC_RANGE),  # no wrap-around
        ((0, 0, 0x103, 1020, 8), DmaError.DST_RANGE),     # SHRAM
        ((0, 0, 1, 1020, 8), DmaError.DST_RANGE),
        ((0, 0, 0x103, 1016, 8), DmaError.OK),
    ]

    async def testbench(ctx):
        ctx.set(dma.basep[1], 1024)
        for args, expected in cases:
            error, _ = await run_desc(ctx, dma, *args)
            assert error == expected, (args, error)

    simulate(bench, testbench)


@pytest.mark.parametrize("latency,bandwidth", [(2, 8), (10, 8), (4, 2)])
def test_dma_timing_follows_memory_parameters(latency, bandwidth):
    bench = Bench(ext_size=2048, shram_size=1024, latency=latency, bandwidth=bandwidth)
    n = 256

    async def testbench(ctx):
        _, to_shram = await run_desc(ctx, bench.dma, 0, 0, 0x103, 0, n)
        _, to_ext = await run_desc(ctx, bench.dma, 0, 0, 0, 1024, n)
        words = n // 8
        # Into SHRAM: one word read per ceil(8/bandwidth) cycles plus the latency.
        floor = words * 8 / bandwidth
        assert floor + latency - 2 <= to_shram <= floor + latency + 4, to_shram
        # Into external memory: reads and writes share the memory's single port (2 requests per word).
        assert 2 * floor - 4 <= to_ext <= 2 * floor + latency + 6, to_ext
        print(f"\n{n} B, latency {latency}, {bandwidth} B/cycle: to SHRAM {to_shram} cycles, to ext {to_ext} cycles")

    simulate(bench, testbench)


# --- native: DMA through command streams -------------------------------------------------------------------------

def dma_stream(descs, wait_each=True) -> list[int]:
    words = []
    for src_region, src, dst_region, dst, length in descs:
        words += [CMD0.NPU_SET_DMA0_SRC_REGION | src_region << 16, CMD0.NPU_SET_DMA0_DST_REGION | dst_region << 16,
                  CMD1.NPU_SET_DMA0_SRC | 0x4000, src, CMD1.NPU_SET_DMA0_DST | 0x4000, dst,
                  CMD1.NPU_SET_DMA0_LEN | 0x4000, length, CMD0.NPU_OP_DMA_START]
        if wait_each:
            words.append(CMD0.NPU_OP_DMA_WAIT)
    return words + [0xFFFF0000]


@pytest.fixture(scope="module")
def npu():
    assert get_design("npu").make is npu_top.Npu
    return build("npu", CONFIG)


def start_and_wait(sim, cmd_base, cmd_len, basep, max_cycles=50_000):
    for i in range(8):
        sim.poke(f"basep__{i}", basep[i])
    sim.poke("cmd_base", cmd_base)
    sim.poke("cmd_len", cmd_len)
    sim.poke("start", 1)
    sim.step(1)
    sim.poke("start", 0)
    cycles = 1
    while not sim.peek("done"):
        assert cycles < max_cycles
        sim.step(8)
        cycles += 8


def test_native_dma_streams_vs_numpy(npu):
    rng = np.random.default_rng(11)
    size = CFG.ext_mem_bytes
    basep = [0x10000, 0x20000, 0x30000, 0, 0, 0, 0, 0]
    ext_elem_words = size // 8
    with NativeSim(npu) as sim:
        ext = bytearray(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
        ext[:0x1000] = bytes(0x1000)
        shram = bytearray(CFG.shram_bytes)
        sim.load_memory(sim.element_index(SHRAM), np.zeros(CFG.shram_bytes // 8, dtype=np.uint64))
        for run in range(6):
            descs = []
            for _ in range(int(rng.integers(1, 6))):
                length = int(rng.integers(1, 1500))
                src_region = int(rng.integers(0, 3))
                src = int(rng.integers(0, 0x8000))
                if rng.random() < 0.4:
                    dst_region, dst = 0x103, int(rng.integers(0, CFG.shram_bytes - length))
                else:
                    while True:   # overlapping ranges are undefined (Vela never emits them)
                        dst_region, dst = int(rng.integers(0, 3)), int(rng.integers(0, 0x8000))
                        if abs(basep[dst_region] + dst - basep[src_region] - src) >= length:
                            break
                descs.append((src_region, src, dst_region, dst, length))
            words = dma_stream(descs, wait_each=bool(run % 2))
            stream = np.asarray(words, dtype="<u4").tobytes()
            ext[0x100:0x100 + len(stream)] = stream
            sim.reset()
            sim.load_memory(sim.element_index(EXT), np.frombuffer(bytes(ext), dtype="<u8"))
            start_and_wait(sim, 0x100, len(stream), basep)
            assert (sim.peek("error"), sim.peek("dma_count")) == (0, len(descs))
            for src_region, src, dst_region, dst, length in descs:   # the DMA runs them in order
                a = basep[src_region] + src
                chunk = bytes(ext[a:a + length])
                if dst_region & 0x100:
                    shram[dst:dst + length] = chunk
                else:
                    b = basep[dst_region] + dst
                    ext[b:b + length] = chunk
            got = sim.read_memory(sim.element_index(EXT), 0, ext_elem_words).astype("<u8").tobytes()
            assert got == bytes(ext)
            got = sim.read_memory(sim.element_index(SHRAM)).astype("<u8").tobytes()
            assert got == bytes(shram)
        # A bad descriptor stops the stream with its code and the offset of its DMA_START.
        words = dma_stream([(0, 0, 0x103, 0, 8), (0, 0, 0x103, CFG.shram_bytes - 4, 8)])
        stream = np.asarray(words, dtype="<u4").tobytes()
        sim.reset()
        padded = stream + bytes(-len(stream) % 8)
        sim.load_memory(sim.element_index(EXT), np.frombuffer(padded, dtype="<u8"), 0x100 // 8)
        start_and_wait(sim, 0x100, len(stream), basep)
        assert sim.peek("error_code") == ErrorCode.DMA_DESCRIPTOR | DmaError.DST_RANGE
        assert sim.peek("error_offset") == 4 * words.index(CMD0.NPU_OP_DMA_START, 10)
        assert sim.peek("dma_count") == 1
