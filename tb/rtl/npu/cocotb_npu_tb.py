"""cocotb bench for design ``npu``: clock, reset, memories through the simulator handles, host runs with a monitor.

Imported only inside the simulator process (by the ``cocotb_npu_controller``, ``cocotb_npu_dma`` and
``cocotb_npu_e2e`` test modules). The configuration comes from ``RAMPART_NPU_CONFIG`` (JSON of the ``NpuConfig``
fields), the random seed and sweep size from ``RAMPART_SEED`` / ``RAMPART_SWEEP`` (set by
``cocotb_npu_run.run_bench``). The last part holds the steps the tests share: set up bench and reference model side
by side (:func:`setup`), run a stream on both and compare (:func:`execute`), compare both memories
(:func:`check_memories`).

Cycle numbering of a run: edge 0 is the rising edge that samples ``start``; the monitor reads the host ports in the
read-only phase after every later edge, so ``HwRun.trace[c]`` holds the registered values just after edge ``c``.
"""
from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass

import cocotb
from amaranth import Shape
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotb_npu_model import NpuModel, Outcome, to_bytes

from rtl.npu.config import EXT_WORD_BYTES, NpuConfig
from rtl.npu.controller import KernelOp

CLOCK_NS = 10
MONITORED = ("done", "kernel_count", "dma_count", "dma_cycles")


def config_from_env() -> NpuConfig:
    return NpuConfig(**json.loads(os.environ["RAMPART_NPU_CONFIG"]))


def seed_from_env() -> int:
    return int(os.environ.get("RAMPART_SEED", "1"))


def sweep_from_env(default: int) -> int:
    return int(os.environ.get("RAMPART_SWEEP") or default)


def _kick_fields() -> dict[str, tuple[int, int]]:
    """{name: (bit offset, width)} of every field of the ``last_kick`` port (``KernelOp``; registers by name)."""
    layout = data.Layout.cast(KernelOp)
    fields = {}
    for name, field in layout:
        if name == "regs":
            for reg, sub in data.Layout.cast(field.shape):
                fields[reg] = (field.offset + sub.offset, Shape.cast(sub.shape).width)
        else:
            fields["_" + name] = (field.offset, Shape.cast(field.shape).width)
    return fields


KICK_FIELDS = _kick_fields()
REGISTER_FIELDS = tuple(name for name in KICK_FIELDS if not name.startswith("_"))


def unpack_kick(value: int) -> dict[str, int]:
    return {name: (value >> offset) & ((1 << width) - 1) for name, (offset, width) in KICK_FIELDS.items()}


@dataclass(frozen=True)
class HwKick:
    edge: int
    opcode: int
    param: int
    regs: dict[str, int]


@dataclass(frozen=True)
class HwRun:
    """What the host saw of one run."""

    code: int
    error: int
    offset: int
    ext_fault: int
    kernel_count: int
    dma_count: int
    done_edge: int
    kicks: tuple[HwKick, ...]
    trace: tuple[dict[str, int], ...]   # MONITORED values after every edge (index = edge)

    def dma_start_edges(self) -> list[int]:
        return [c for c in range(1, len(self.trace)) if self.trace[c]["dma_count"] > self.trace[c - 1]["dma_count"]]

    def dma_active_edges(self) -> list[int]:
        """Edges at which the DMA was busy (``dma_cycles`` counted them)."""
        return [c for c in range(1, len(self.trace))
                if self.trace[c]["dma_cycles"] > self.trace[c - 1]["dma_cycles"]]


class NpuBench:
    """Owns the clock and the host side of one ``Npu`` (``dut``); see the module docstring."""

    def __init__(self, dut, config: NpuConfig):
        self.dut, self.config = dut, config
        self.handles = {}
        for handle in dut:
            name = handle._name
            self.handles[name[1:].rstrip(" ") if name.startswith("\\") else name] = handle
        self.ext = self.handles["extmem.storage"]
        self.shram = self.handles["shram.storage"]
        assert len(self.ext) * EXT_WORD_BYTES == config.ext_mem_bytes
        assert len(self.shram) * EXT_WORD_BYTES == config.shram_bytes

    async def start(self):
        """Start the clock and reset (call once per cocotb test)."""
        dut = self.dut
        dut.start.value = 0
        dut.cmd_base.value = 0
        dut.cmd_len.value = 0
        dut.shram_raddr.value = 0
        for i in range(8):
            dut[f"basep__{i}"].value = 0
        dut.rst.value = 1
        cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start(start_high=False))
        for _ in range(2):
            await RisingEdge(dut.clk)
        dut.rst.value = 0
        await RisingEdge(dut.clk)

    # --- memories ---------------------------------------------------------------------------------------------------

    async def sync_memory(self, ext: bytes, shram: bytes):
        """Make both memories hold exactly ``ext`` / ``shram`` (writes only the words that differ)."""
        await RisingEdge(self.dut.clk)   # leave a read-only phase: handle writes are refused there
        for handle, image in ((self.ext, ext), (self.shram, shram)):
            for index, (have, want) in enumerate(zip(self._words(handle, 0, len(handle)), _to_words(image),
                                                     strict=True)):
                if have != want:
                    handle[index].value = want
        await RisingEdge(self.dut.clk)

    async def load(self, addr: int, payload: bytes):
        """Write ``payload`` at byte ``addr`` (8-aligned) of external memory."""
        assert addr % EXT_WORD_BYTES == 0
        await RisingEdge(self.dut.clk)
        for i, word in enumerate(_to_words(payload)):
            self.ext[addr // EXT_WORD_BYTES + i].value = word
        await RisingEdge(self.dut.clk)

    async def read_ext(self) -> bytes:
        await RisingEdge(self.dut.clk)
        await ReadOnly()
        return _from_words(self._words(self.ext, 0, len(self.ext)))

    async def read_shram(self) -> bytes:
        await RisingEdge(self.dut.clk)
        await ReadOnly()
        return _from_words(self._words(self.shram, 0, len(self.shram)))

    @staticmethod
    def _words(handle, first: int, count: int) -> list[int]:
        return [int(handle[i].value) for i in range(first, first + count)]

    # --- host -------------------------------------------------------------------------------------------------------

    def peek(self, name: str) -> int:
        return int(self.dut[name].value)

    async def run(self, cmd_base: int, cmd_len: int, basep, max_edges: int = 50_000) -> HwRun:
        """Set the host registers, pulse ``start`` and monitor every edge until ``done``."""
        dut = self.dut
        await RisingEdge(dut.clk)
        for i in range(8):
            dut[f"basep__{i}"].value = basep[i] if i < len(basep) else 0
        dut.cmd_base.value = cmd_base
        dut.cmd_len.value = cmd_len
        dut.start.value = 1
        await RisingEdge(dut.clk)                      # edge 0: the start pulse is sampled
        dut.start.value = 0
        trace, kicks = [], []
        await ReadOnly()
        trace.append(self._sample())
        assert trace[0]["done"] == 0, "start did not clear done"
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            now = self._sample()
            edge = len(trace)
            before = trace[-1]["kernel_count"]
            if now["kernel_count"] < before:   # the run began: the counters restart from 0
                assert now["kernel_count"] == now["dma_count"] == 0 and not kicks
            elif now["kernel_count"] > before:
                assert now["kernel_count"] == before + 1, "two kicks in one cycle"
                fields = unpack_kick(self.peek("last_kick"))
                regs = {name: fields[name] for name in REGISTER_FIELDS}
                kicks.append(HwKick(edge, fields["_opcode"], fields["_param"], regs))
            trace.append(now)
            if now["done"]:
                break
            assert edge < max_edges, f"no done within {max_edges} cycles"
        return HwRun(code=self.peek("error_code"), error=self.peek("error"), offset=self.peek("error_offset"),
                     ext_fault=self.peek("ext_fault"), kernel_count=now["kernel_count"], dma_count=now["dma_count"],
                     done_edge=len(trace) - 1, kicks=tuple(kicks), trace=tuple(trace))

    def _sample(self) -> dict[str, int]:
        return {name: self.peek(name) for name in MONITORED}

    async def wait_dma_idle(self, max_edges: int = 50_000):
        """Wait until the DMA is idle: ``dma_cycles`` stops counting (a run may end with a copy still going)."""
        await RisingEdge(self.dut.clk)
        await ReadOnly()
        last = self.peek("dma_cycles")
        for _ in range(max_edges):
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            now = self.peek("dma_cycles")
            if now == last:
                return
            last = now
        raise AssertionError("the DMA never went idle")


def _to_words(payload: bytes) -> list[int]:
    padded = bytes(payload) + bytes(-len(payload) % EXT_WORD_BYTES)
    return [int.from_bytes(padded[i:i + EXT_WORD_BYTES], "little") for i in range(0, len(padded), EXT_WORD_BYTES)]


def _from_words(words) -> bytes:
    return b"".join(w.to_bytes(EXT_WORD_BYTES, "little") for w in words)


# --- shared test steps: bench and model side by side ----------------------------------------------------------------

CMD_BASE = 0x100
#: Region base pointers: far above the command stream, so no DMA can touch it.
BASEP = [0x10000 + 0x4000 * i for i in range(8)]


async def setup(dut, source_seed: int = 0, random_bytes: int = 0x4000) -> tuple[NpuBench, NpuModel]:
    """Clock, reset, and memories equal to the model's: zeros, but ``random_bytes`` random ones from region 0 on
    (DMA sources)."""
    cfg = config_from_env()
    bench = NpuBench(dut, cfg)
    await bench.start()
    model = NpuModel(cfg.ext_mem_bytes, cfg.shram_bytes)
    model.ext[BASEP[0]:BASEP[0] + random_bytes] = random.Random(source_seed).randbytes(random_bytes)
    await bench.sync_memory(model.ext, model.shram)
    return bench, model


async def execute(bench: NpuBench, model: NpuModel, words, *, cmd_base: int = CMD_BASE, cmd_len: int | None = None,
                  basep=BASEP) -> tuple[HwRun, Outcome]:
    """Load ``words`` at ``cmd_base``, run them on the model and on the hardware, check they agree."""
    image = to_bytes(words) + bytes(4 * (len(words) % 2))   # whole 8-byte memory words
    if cmd_base + len(image) <= len(model.ext) and cmd_base % 8 == 0:
        model.ext[cmd_base:cmd_base + len(image)] = image
        await bench.load(cmd_base, image)
    cmd_len = 4 * len(words) if cmd_len is None else cmd_len
    expected = model.run(words, cmd_base, basep, cmd_len)
    hw = await bench.run(cmd_base, cmd_len, basep)
    check_outcome(hw, expected)
    return hw, expected


def check_outcome(hw: HwRun, expected: Outcome):
    assert (hw.code, hw.error) == (expected.code, expected.error), (hex(hw.code), hex(expected.code))
    if expected.offset is not None:
        assert hw.offset == expected.offset
    assert (hw.kernel_count, hw.dma_count) == (len(expected.kicks), len(expected.dmas))
    assert hw.ext_fault == 0
    for got, want in zip(hw.kicks, expected.kicks, strict=True):
        assert (got.opcode, got.param) == (want.opcode, want.param)
        mismatched = {name: (got.regs[name], want.regs.get(name, 0)) for name in REGISTER_FIELDS
                      if got.regs[name] != want.regs.get(name, 0)}
        assert not mismatched, mismatched


async def check_memories(bench: NpuBench, model: NpuModel):
    await bench.wait_dma_idle()
    for name, got, want in (("external memory", await bench.read_ext(), model.ext),
                            ("SHRAM", await bench.read_shram(), model.shram)):
        wrong = [i for i in range(len(want)) if got[i] != want[i]]
        assert not wrong, f"{name}: {len(wrong)} bytes differ in {wrong[0]:#x}..{wrong[-1]:#x}"
