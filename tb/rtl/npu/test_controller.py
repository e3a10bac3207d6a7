"""NPU command-stream controller on the native harness: a real Vela stream end to end, and fuzzed streams.

One Verilator build of design ``npu`` (preset ``u55-128`` with ``stub_compute=True``: the compute unit replaced by
the ``StubCompute`` test double, so kicks are latched on ``last_kick`` and no OFM is written) serves every test here.
The real compute unit is tested end to end in ``test_compute.py``.
"""
import dataclasses

import numpy as np
import pytest
from amaranth import Shape
from amaranth.lib import data
from ethosu.vela.ethos_u55_regs.ethos_u55_regs import cmd0, cmd1

from drivers.npu import EXT_MEMORY as EXT
from drivers.npu import layout as driver_layout
from drivers.npu import load_bytes, read_bytes, start, wait_done
from drivers.transport import SimDevice
from models.npu import cmdstream as cs
from models.npu import tflite_builder as tb
from models.npu import vela
from rtl.designs import get_design
from rtl.npu.config import PRESETS, NpuConfig
from rtl.npu.controller import CMD0, CMD1, STORED_CMD0, STORED_CMD1, ErrorCode, KernelOp
from rtl.npu.dma import DmaError
from rtl.npu.top import Npu  # importing it registers design "npu"
from sim.build import build
from sim.harness import NativeSim

CONFIG = "u55-128"
CFG = PRESETS[CONFIG]
MAX_CYCLES = 200_000
DECODE_ERRORS = {ErrorCode.RESERVED_BITS, ErrorCode.UNKNOWN_CMD0, ErrorCode.UNKNOWN_CMD1, ErrorCode.TRUNCATED,
                 ErrorCode.BAD_MODE, ErrorCode.NO_STOP}


# --- host helpers (a driver's view of the NPU) ---------------------------------------------------------------------

def run(sim: SimDevice, cmd_base: int, cmd_len: int, basep=(), max_cycles: int = MAX_CYCLES, chunk: int = 16) -> int:
    """Start a run and step until ``done``; returns the cycles stepped (fails past ``max_cycles``)."""
    start(sim, cmd_base, cmd_len, basep)
    stepped = wait_done(sim, max_cycles, chunk)
    assert stepped is not None, "NPU did not finish"
    return stepped


def words_bytes(words) -> bytes:
    return np.asarray(words, dtype="<u4").tobytes()


@pytest.fixture(scope="module")
def npu():
    return build("npu", dataclasses.replace(CFG, stub_compute=True))


# --- opcode tables match Vela -------------------------------------------------------------------------------------

def test_opcodes_match_vela():
    assert {e.name: e.value for e in CMD0} == {e.name: e.value for e in cmd0}
    assert {e.name: e.value for e in CMD1} == {e.name: e.value for e in cmd1}
    assert all(f"NPU_SET_{n}" in CMD0.__members__ for n in STORED_CMD0)
    assert all(f"NPU_SET_{n}" in CMD1.__members__ for n in STORED_CMD1)


def test_presets_and_config():
    entry = get_design("npu")
    assert entry.make is Npu and entry.default == CONFIG
    # CONFIG images Vela writes into the COP1 header (SPEC.md section 1).
    assert {n: c.config_word for n, c in entry.presets.items()} == {
        "u55-32": 0x1005, "u55-64": 0x1006, "u55-128": 0x1807, "u55-256": 0x3008}
    with pytest.raises(ValueError, match="macs must be a power of two, not 96"):
        NpuConfig(macs=96)
    with pytest.raises(ValueError, match="ext_latency must be in 2..256, not 1"):
        NpuConfig(ext_latency=1)
    with pytest.raises(TypeError, match="ext_bandwidth must be an integer, not 2.5"):
        NpuConfig(ext_bandwidth=2.5)


def test_config_word_matches_vela_header(artifact):
    assert artifact.header.config_word == PRESETS[CONFIG].config_word


# --- a real Vela stream -------------------------------------------------------------------------------------------

MODELS = {
    # 16x16x16 -> 1x1 conv, 32 channels: Vela splits it into two CONVs, each with its own weight DMA (u55-128).
    "conv1x1_split": lambda: tb.single_layer(tb.Conv2D(32, kernel=(1, 1)), (16, 16, 16), seed=3),
    "depthwise3x3": lambda: tb.single_layer(tb.DepthwiseConv2D(), (10, 10, 12), seed=1),
    "conv5x5_s2": lambda: tb.single_layer(tb.Conv2D(8, kernel=(5, 5), stride=(2, 2), padding="VALID"), (16, 16, 4)),
    "chain3": lambda: tb.build_model(tb.ModelSpec(
        (16, 16, 8), (tb.Conv2D(16), tb.DepthwiseConv2D(), tb.Conv2D(8, kernel=(1, 1))), 5)),
}


def compile_for_test(name, tmp_path_factory):
    return vela.compile_model(MODELS[name](), "ethos-u55-128", out_dir=tmp_path_factory.mktemp(name))


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return compile_for_test("conv1x1_split", tmp_path_factory)


def layout(art):
    """Place the driver payload, region 0 (weights) and region 1 (arena) in external memory."""
    lay = driver_layout(art, CFG.ext_mem_bytes)
    return lay.cmd_addr, list(lay.basep)


def kick_registers(value: int) -> dict[str, int]:
    """Unpack the ``last_kick`` port into {register: value}, using the KernelOp layout's field offsets."""
    regs_field = data.Layout.cast(KernelOp)["regs"]
    out = {"_opcode": value & 0x3FF}
    for name, field in data.Layout.cast(regs_field.shape):
        out[name] = (value >> (regs_field.offset + field.offset)) & ((1 << Shape.cast(field.shape).width) - 1)
    return out


@pytest.mark.parametrize("model", list(MODELS))
def test_real_stream_end_to_end(npu, model, tmp_path_factory):
    art = compile_for_test(model, tmp_path_factory)
    commands = art.commands()
    kicks = cs.kicks(commands)
    dmas = [k for k in kicks if k.name == "NPU_OP_DMA_START"]
    kernels = [k for k in kicks if k.name in cs.KERNEL_OPS]
    cmd_addr, basep = layout(art)
    assert art.header.stream_offset == 32
    scratch = basep[art.scratch_region]
    with SimDevice(NativeSim(npu)) as sim:
        sim.reset()
        sim.clear(EXT)
        load_bytes(sim, cmd_addr, art.cmd_data)
        load_bytes(sim, basep[art.weight_region], art.weight_data)
        for i in range(8):
            sim.poke(f"basep__{i}", basep[i])
        sim.poke("cmd_base", cmd_addr + art.header.stream_offset)
        sim.poke("cmd_len", 4 * len(art.command_stream))
        sim.poke("start", 1)
        sim.step(1)
        sim.poke("start", 0)
        # Step cycle by cycle and capture the register snapshot of every kernel kick.
        seen, cycles = [], 1
        while not sim.peek("done"):
            assert cycles < 20_000
            sim.step(1)
            cycles += 1
            if sim.peek("kernel_count") > len(seen):
                sim.step(1)  # the test double latches the kick at the accepting edge
                cycles += 1
                seen.append(kick_registers(sim.peek("last_kick")))
        assert (sim.peek("error"), sim.peek("error_code")) == (0, ErrorCode.OK)
        assert sim.peek("kernel_count") == len(kernels) == len(seen)
        assert sim.peek("dma_count") == len(dmas)
        assert sim.peek("ext_fault") == 0
        # The arena holds exactly what the decoder's DMAs, replayed in order, put there (the compute unit is a test
        # double and writes nothing), and the weights are untouched.
        arena = bytearray(art.scratch_size)
        for k in dmas:
            assert k.reg("DMA0_SRC_REGION") == art.weight_region
            assert k.reg("DMA0_DST_REGION") == art.scratch_region
            src, dst, n = k.reg("DMA0_SRC"), k.reg("DMA0_DST"), k.reg("DMA0_LEN")
            arena[dst:dst + n] = art.weight_data[src:src + n]
        assert read_bytes(sim, scratch, art.scratch_size) == bytes(arena)
        assert read_bytes(sim, basep[art.weight_region], len(art.weight_data)) == art.weight_data
        # Every kernel kick carried the registers the decoder replays.
        for k, hw in zip(kernels, seen, strict=True):
            assert hw["_opcode"] == k.command.opcode
            for name, value in k.registers.items():
                if name in hw:
                    assert hw[name] == value, name
            if "OFM_SCALE" in k.params:
                assert hw["OFM_SCALE_SHIFT"] == k.params["OFM_SCALE"] & 0x3F
        total, dma_cycles = sim.peek("cycles"), sim.peek("dma_cycles")
        print(f"\n{model}: {len(art.command_stream)} words, {len(kernels)} kernel ops, {total} cycles busy, "
              f"DMA busy {dma_cycles} cycles for {[k.reg('DMA0_LEN') for k in dmas]} bytes")
        # Each external-to-external copy needs a read and a write per 8-byte word on the one memory port.
        budget = sum(CFG.ext_latency + 2 * (-(-k.reg("DMA0_LEN") // 8)) + 8 for k in dmas)
        assert dma_cycles <= budget


# --- fuzzing ------------------------------------------------------------------------------------------------------

def reference(words, basep, ext_size=CFG.ext_mem_bytes, shram_size=CFG.shram_bytes):
    """What the controller must report for ``words``: (error code, offset or None, kernel kicks, DMA starts)."""
    regs = {}
    kernels = dmas = 0
    i, n = 0, len(words)
    while True:
        if i >= n:
            return ErrorCode.NO_STOP, 4 * n, kernels, dmas
        w, off = int(words[i]), 4 * i
        i += 1
        opcode, reserved, mode, param = w & 0x3FF, (w >> 10) & 0xF, (w >> 14) & 3, w >> 16
        if reserved:
            return ErrorCode.RESERVED_BITS, off, kernels, dmas
        if mode == 0:
            name = cs.CMD0_NAMES.get(opcode)
            if name is None:
                return ErrorCode.UNKNOWN_CMD0, off, kernels, dmas
            if name == "NPU_OP_STOP":
                return ErrorCode.OK, None, kernels, dmas
            if name.startswith("NPU_SET_"):
                regs[name[8:]] = param
            elif name == "NPU_OP_DMA_START":
                err = dma_check(regs, basep, ext_size, shram_size)
                if err:
                    return ErrorCode.DMA_DESCRIPTOR | err, off, kernels, dmas
                dmas += 1
            elif name in cs.KERNEL_OPS:
                kernels += 1
        elif mode == 1:
            name = cs.CMD1_NAMES.get(opcode)
            if name is None:
                return ErrorCode.UNKNOWN_CMD1, off, kernels, dmas
            if i >= n:
                return ErrorCode.TRUNCATED, off, kernels, dmas
            regs[name[8:]] = int(words[i])
            i += 1
        else:
            return ErrorCode.BAD_MODE, off, kernels, dmas


def dma_check(regs, basep, ext_size, shram_size) -> int:
    sr, dr = regs.get("DMA0_SRC_REGION", 0), regs.get("DMA0_DST_REGION", 0)
    src, dst, length = regs.get("DMA0_SRC", 0), regs.get("DMA0_DST", 0), regs.get("DMA0_LEN", 0)
    if length == 0:
        return DmaError.LENGTH_ZERO
    if sr & 0x100 or (sr & 0xFF) >= 8:
        return DmaError.SRC_REGION
    if not dr & 0x100 and (dr & 0xFF) >= 8:
        return DmaError.DST_REGION
    if (sr >> 9) & 3 or (dr >> 9) & 3:
        return DmaError.STRIDE_MODE
    if basep[sr & 7] + src + length > ext_size:
        return DmaError.SRC_RANGE
    if dr & 0x100:
        if dst + length > shram_size:
            return DmaError.DST_RANGE
    elif basep[dr & 7] + dst + length > ext_size:
        return DmaError.DST_RANGE
    return DmaError.OK


KNOWN0 = [e.value for e in cmd0]
KNOWN1 = [e.value for e in cmd1]
DMA_REGS0 = [CMD0.NPU_SET_DMA0_SRC_REGION, CMD0.NPU_SET_DMA0_DST_REGION]
DMA_REGS1 = [CMD1.NPU_SET_DMA0_SRC, CMD1.NPU_SET_DMA0_DST, CMD1.NPU_SET_DMA0_LEN]


def random_command(rng) -> list[int]:
    r = rng.random()
    if r < 0.25:   # a DMA register with a small value (so some DMAs are valid)
        if rng.random() < 0.4:
            op = int(rng.choice(DMA_REGS0))
            param = int(rng.choice([0, 1, 2, 0x100, 0x103, 9, 0x200, int(rng.integers(0, 1 << 16))]))
            return [op | param << 16]
        op = int(rng.choice(DMA_REGS1))
        return [op | 0x4000, int(rng.integers(0, 2048))]
    if r < 0.35:
        ops = [CMD0.NPU_OP_DMA_START, CMD0.NPU_OP_DMA_WAIT, CMD0.NPU_OP_KERNEL_WAIT, CMD0.NPU_OP_CONV,
               CMD0.NPU_OP_DEPTHWISE, CMD0.NPU_OP_POOL]
        return [int(rng.choice(ops)) | int(rng.integers(0, 3)) << 16]
    if r < 0.65:
        return [int(rng.choice(KNOWN0[1:])) | int(rng.integers(0, 1 << 16)) << 16]
    if r < 0.95:
        return [int(rng.choice(KNOWN1)) | 0x4000 | int(rng.integers(0, 1 << 16)) << 16,
                int(rng.integers(0, 1 << 32))]
    return [int(rng.integers(0, 1 << 32))]   # anything


def random_stream(rng, real_words) -> list[int]:
    kind = rng.integers(0, 6)
    if kind == 0:   # random words
        return [int(x) for x in rng.integers(0, 1 << 32, size=int(rng.integers(1, 24)))]
    if kind == 1:   # the real stream, truncated
        return list(real_words[:int(rng.integers(1, len(real_words)))])
    if kind == 2:   # the real stream with one corrupted word
        words = list(real_words)
        words[int(rng.integers(0, len(words)))] ^= 1 << int(rng.integers(0, 32))
        return words
    words = [w for _ in range(int(rng.integers(1, 16))) for w in random_command(rng)]
    if kind >= 3:
        words.append(0xFFFF0000)   # STOP
    return words


def test_fuzz_streams_always_finish(npu, artifact):
    rng = np.random.default_rng(20261124)
    art = artifact
    real_words = [int(w) for w in art.command_stream]
    cmd_addr, basep = layout(art)
    stream_addr = 0x100
    basep_fuzz = list(basep)
    basep_fuzz[2:] = [0x30000 + 0x800 * i for i in range(6)]   # regions far from the stream: DMAs cannot hit it
    assert min(basep_fuzz[1:]) > stream_addr + 4 * 256 and basep_fuzz[0] > stream_addr + 4 * 256
    outcomes = {}
    worst = executed_dmas = 0
    runs = 300
    with SimDevice(NativeSim(npu)) as sim:
        load_bytes(sim, basep[0], art.weight_data)
        for _ in range(runs):
            words = random_stream(rng, real_words)
            sim.reset()
            load_bytes(sim, stream_addr, words_bytes(words))
            cycles = run(sim, stream_addr, 4 * len(words), basep_fuzz, max_cycles=5000, chunk=4)
            worst = max(worst, cycles)
            code, off, kernels, dmas = reference(words, basep_fuzz)
            got = ErrorCode(sim.peek("error_code")) if sim.peek("error_code") < 0x10 else sim.peek("error_code")
            assert got == code, (words, code, got)
            assert sim.peek("error") == (code != ErrorCode.OK)
            if off is not None:
                assert sim.peek("error_offset") == off
            assert (sim.peek("kernel_count"), sim.peek("dma_count")) == (kernels, dmas)
            assert sim.peek("ext_fault") == 0
            # The Python decoder agrees on which streams are malformed.
            try:
                cs.decode_stream(words, allow_trailing=True)
                decodes = True
            except cs.CommandStreamError:
                decodes = False
            if code in DECODE_ERRORS:
                assert not decodes
            elif code == ErrorCode.OK:
                assert decodes
                ks = cs.kicks(cs.decode_stream(words, allow_trailing=True))
                assert kernels == sum(k.name in cs.KERNEL_OPS for k in ks)
                assert dmas == sum(k.name == "NPU_OP_DMA_START" for k in ks)
            outcomes[int(code)] = outcomes.get(int(code), 0) + 1
            executed_dmas += dmas if code == ErrorCode.OK else 0
        # Bad stream placement: misaligned base, empty, ragged length, beyond memory.
        for base, length in [(2, 8), (0x100, 0), (0x100, 6), (CFG.ext_mem_bytes - 4, 8)]:
            sim.reset()
            run(sim, base, length, basep_fuzz, max_cycles=100, chunk=1)
            assert sim.peek("error_code") == ErrorCode.BAD_STREAM
    print(f"\nfuzz: {runs} streams, worst {worst} cycles, {executed_dmas} DMAs run, outcomes {outcomes}")
    assert executed_dmas >= 20
    assert outcomes.get(ErrorCode.OK, 0) >= 20
    assert sum(v for k, v in outcomes.items() if k >= 0x10) >= 20
    assert len(outcomes) >= 8


def dma_words(src_region, src, dst_region, dst, length) -> list[int]:
    return [CMD0.NPU_SET_DMA0_SRC_REGION | src_region << 16, CMD0.NPU_SET_DMA0_DST_REGION | dst_region << 16,
            CMD1.NPU_SET_DMA0_SRC | 0x4000, src, CMD1.NPU_SET_DMA0_DST | 0x4000, dst,
            CMD1.NPU_SET_DMA0_LEN | 0x4000, length, CMD0.NPU_OP_DMA_START]


def test_error_while_dma_runs_then_restart_without_reset(npu):
    basep = [0x10000, 0x20000] + [0] * 6
    first = dma_words(0, 0, 0x103, 0, 8192) + [0x0000_03FF]          # unknown cmd0 right behind a long DMA
    second = dma_words(0, 8, 1, 0, 100) + [CMD0.NPU_OP_DMA_WAIT, 0xFFFF0000]
    source = np.random.default_rng(5).integers(0, 256, 8192, dtype=np.uint8).tobytes()
    with SimDevice(NativeSim(npu)) as sim:
        sim.reset()
        load_bytes(sim, basep[0], source)
        load_bytes(sim, 0x100, words_bytes(first))
        load_bytes(sim, 0x400, words_bytes(second))
        run(sim, 0x100, 4 * len(first), basep, chunk=1)
        assert sim.peek("error_code") == ErrorCode.UNKNOWN_CMD0
        assert sim.peek("error_offset") == 4 * (len(first) - 1)
        stopped_at = sim.peek("cycles")
        # The DMA is still copying: a new start waits for it, then runs the next stream.
        run(sim, 0x400, 4 * len(second), basep, chunk=1)
        assert (sim.peek("error"), sim.peek("dma_count")) == (0, 1)
        assert read_bytes(sim, basep[1], 100) == source[8:108]
        assert read_bytes(sim, 0, 8192, element="top.shram.storage") == source
        assert stopped_at < 8192 // 8   # the first run stopped long before its DMA finished
