"""Fault-injection workload of the PulseDL-II SoC's RV32IM core: one random-instruction program run to its halt.

The program is the differential test's (models/rv32/random_program: every RV32IM instruction class, loads and
stores into a 256-byte data region, a final dump of x1..x31 after it). Its ELF segments are the initial memory
image; the observed region is the data region plus the register dump (SDC: any word of it differs at the end);
``halted`` is the completion port and ``trap`` (illegal instruction, misaligned access or jump) the detection port.
"""
import tempfile
from pathlib import Path

import numpy as np

from base import RampartError
from faultinj.workload import Workload
from models.rv32.random_program import DATA_BYTES, DUMP_BYTES, random_program
from models.rv32.toolchain import assemble, load_segments
from rtl.pulsedl.config import DMEM_BASE, IMEM_BASE

__all__ = ["rv32_program"]

IMEM = "top.imem.storage"
DMEM = "top.dmem.storage"
PROGRAM_LENGTH = 200
HALT_MARGIN = 8
_DONE_CACHE: dict = {}


def _memory_image(seed: int) -> tuple:
    with tempfile.TemporaryDirectory() as tmp:
        elf = assemble({"program.S": random_program(seed, PROGRAM_LENGTH).source}, IMEM_BASE, DMEM_BASE,
                       Path(tmp) / "program.elf")
        _, segments = load_segments(elf)
    image = []
    for seg in segments:
        element, base = (IMEM, IMEM_BASE) if seg.address < DMEM_BASE else (DMEM, DMEM_BASE)
        data = seg.data + bytes(-len(seg.data) % 4)
        image.append((element, (seg.address - base) // 4, np.frombuffer(data, "<u4").astype(np.uint64)))
    return tuple(image)


def _halt_cycle(config, memory, limit: int = 1 << 20) -> int:
    """First cycle at which ``halted`` is high in a plain run (it must halt without a trap)."""
    from sim.build import build
    from sim.harness import NativeSim

    with NativeSim(build("pulsedl", config)) as sim:
        for element, first, values in memory:
            sim.load_memory(sim.element_index(element), values, first)
        n, chunk = 0, 4096
        while n < limit:
            trace = sim.run_stimulus({"uart_rx": np.ones(chunk, dtype=np.uint64)}, ["halted", "trap"])
            high = np.flatnonzero(trace["halted"][:, 0])
            if len(high):
                if trace["trap"][high[0], 0]:
                    raise RampartError("rv32_program: the core trapped in the fault-free run")
                return n + int(high[0])
            n += chunk
    raise RampartError(f"rv32_program: the core did not halt within {limit} cycles")


def rv32_program(config, seed: int = 0, cycles: int | None = None) -> Workload:
    """A random RV32IM program (200 instructions, from ``seed``) run once to its ECALL; SDC: the data region or
    the register dump differs at the end, DETECTED: the core trapped."""
    memory = _memory_image(seed)
    key = (repr(config), seed)
    if key not in _DONE_CACHE:
        _DONE_CACHE[key] = _halt_cycle(config, memory)
    halt_cycle = _DONE_CACHE[key]
    if cycles is None:
        cycles = halt_cycle + HALT_MARGIN
    elif cycles <= halt_cycle:
        raise RampartError(f"rv32_program needs more than {halt_cycle} cycles (the core halts at {halt_cycle}), "
                           f"not {cycles}")
    regions = ((DMEM, 0, (DATA_BYTES + DUMP_BYTES) // 4),)
    params = {"seed": seed, "halt_cycle": halt_cycle, "length": PROGRAM_LENGTH}
    return Workload("rv32_program", "pulsedl", config, {"uart_rx": np.ones(cycles, dtype=np.uint64)}, (), None,
                    params, memory=memory, regions=regions, complete="halted", detect=("trap",))
