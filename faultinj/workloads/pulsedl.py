"""Fault-injection workloads of the PulseDL-II SoC: ``rv32_program`` (the RV32IM core alone) and ``pulse_batch``
(a batch of detector pulses through the firmware and the CNN accelerator).

``rv32_program``: one random-instruction program run to its halt.

The program is the differential test's (models/rv32/random_program: every RV32IM instruction class, loads and
stores into a 256-byte data region, a final dump of x1..x31 after it). Its ELF segments are the initial memory
image; the observed region is the data region plus the register dump (SDC: any word of it differs at the end);
``halted`` is the completion port and ``trap`` (illegal instruction, misaligned access or jump) the detection port.
"""
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from base import RampartError
from faultinj.workload import Workload
from models.rv32.random_program import DATA_BYTES, DUMP_BYTES, random_program
from models.rv32.toolchain import assemble, load_segments
from rtl.pulsedl.config import DMEM_BASE, IMEM_BASE

__all__ = ["pulse_batch", "pulse_error", "rv32_program", "significant_sdc"]

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


# --- pulse_batch -------------------------------------------------------------------------------------------------
#
# ``pulse_batch``: PULSES windows of models/pulse at PULSE_SNR_DB (seeded) through the SoC as infer_pulses runs them:
# rtl/pulsedl/firmware/pulse.c built for the batch, the checked-in pulse CNN's images preloaded into the accelerator
# (deployment: part of the initial memory image), the windows streamed into the ADC port. The stimulus is fixed: the
# ADC samples go in on the cycles the fault-free run's FIFO had room for them (recorded once), so a fault that slows
# the firmware can overflow the FIFO, as on the bench. Observed region: ``pulse_results``, the outputs the firmware
# read from the accelerator and printed (SDC: any bit differs; a fault that corrupts only the UART text, not the
# values, is not counted). ``halted`` is the completion port, ``trap`` the detection port. The judge
# (:func:`significant_sdc`, the campaign's ``top1`` column) replays an SDC, parses the UART's ``P`` lines and marks
# it significant when any pulse's time or energy moved by more than one Cramer-Rao sigma at the batch's SNR
# (:func:`pulse_error`); a run whose UART lines cannot be parsed (missing pulses, an error line) counts as significant.

PULSES = 4
PULSE_SNR_DB = 47.4
PULSE_SEED = 16
FEED_CHUNK = 128
UART_TAIL_BITS = 12


def _symbol(elf: Path, name: str) -> int:
    out = subprocess.run(["riscv64-unknown-elf-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[2] == name:
            return int(fields[0], 16)
    raise RampartError(f"{elf}: no symbol {name}")


def _pulse_image(config, windows: np.ndarray, net) -> tuple[tuple, int]:
    """(initial memory image: the firmware's segments and the network's images, word of ``pulse_results``)."""
    from drivers.pulsedl import DESCRIPTORS, QUANT_TABLES, build_firmware

    defines = {"NPULSES": len(windows), "WINDOW": net.input_len, "OUT_BANK": net.output_bank,
               "NOUT": net.output_count, "THRESHOLD_MODE": 0, "THRESHOLD": 0}
    with tempfile.TemporaryDirectory() as tmp:
        elf = build_firmware("pulse.c", Path(tmp) / "pulse.elf", config, defines)
        _, segments = load_segments(elf)
        results = _symbol(elf, "pulse_results")
    image = []
    for seg in segments:
        element, base = (IMEM, IMEM_BASE) if seg.address < DMEM_BASE else (DMEM, DMEM_BASE)
        data = seg.data + bytes(-len(seg.data) % 4)
        image.append((element, (seg.address - base) // 4, np.frombuffer(data, "<u4").astype(np.uint64)))
    image.append((f"top.accel.{DESCRIPTORS}", 0, net.descriptors.astype(np.uint64)))
    quant = net.quant.reshape(-1, 4).astype(np.uint64)
    image += [(f"top.accel.{name}", 0, quant[:, field]) for field, name in enumerate(QUANT_TABLES)]
    image += [(f"top.accel.pe{p}.kernels", 0, np.asarray(k, np.uint64)) for p, k in enumerate(net.kernels)]
    return tuple(image), (results - DMEM_BASE) // 4


def _load(sim, memory) -> None:
    for element, first, values in memory:
        sim.load_memory(sim.element_index(element), values, first)


def _golden_feed(config, memory, samples: np.ndarray, limit: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The fault-free run: (adc_valid, adc_data per cycle, halt cycle), samples offered at each FEED_CHUNK start as
    the FIFO has room (as infer_pulses streams them)."""
    from sim.build import build
    from sim.harness import NativeSim

    valid, data = np.zeros(limit, np.uint32), np.zeros(limit, np.uint32)
    depth, pos, n = config.adc_fifo_depth, 0, 0
    with NativeSim(build("pulsedl", config)) as sim:
        _load(sim, memory)
        while n < limit:
            k = min(depth - sim.peek("adc_level"), samples.size - pos, FEED_CHUNK)
            valid[n:n + k], data[n:n + k] = 1, samples[pos:pos + k]
            pos += k
            trace = sim.run_stimulus({"uart_rx": np.ones(FEED_CHUNK, np.uint32), "adc_valid": valid[n:n + FEED_CHUNK],
                                      "adc_data": data[n:n + FEED_CHUNK]}, ["halted", "trap"])
            high = np.flatnonzero(trace["halted"][:, 0])
            if len(high):
                if trace["trap"][high[0], 0]:
                    raise RampartError("pulse_batch: the core trapped in the fault-free run")
                return valid, data, n + int(high[0])
            n += FEED_CHUNK
    raise RampartError(f"pulse_batch: the firmware did not finish within {limit} cycles")


def _pulse_net():
    from drivers.pulsedl_compile import compile_tflite
    from models.pulse.export import load_model
    from models.pulse.resolution import MODEL

    model = load_model(MODEL)
    return model, compile_tflite(model.data)


def pulse_batch(config, seed: int = PULSE_SEED, cycles: int | None = None) -> Workload:
    """4 detector pulses at 47.4 dB through the firmware and the CNN accelerator; SDC: an output the firmware
    printed differs in any bit (judge: time or energy of a pulse moved by more than one CRLB sigma)."""
    from models.pulse.crlb import crlb
    from models.pulse.frontend import generate

    model, net = _pulse_net()
    windows = model.quantise(generate(PULSES, PULSE_SNR_DB, seed).samples)
    memory, results_word = _pulse_image(config, windows, net)
    key = ("pulse_batch", repr(config), seed)
    if key not in _DONE_CACHE:
        samples = windows.astype(np.int64).ravel().astype(np.uint16).astype(np.uint32)
        _DONE_CACHE[key] = _golden_feed(config, memory, samples, 200_000 * (PULSES + 1))
    valid, data, halt_cycle = _DONE_CACHE[key]
    if cycles is None:
        cycles = halt_cycle + HALT_MARGIN
    elif cycles <= halt_cycle:
        raise RampartError(f"pulse_batch needs more than {halt_cycle} cycles (the firmware halts at {halt_cycle}), "
                           f"not {cycles}")
    inputs = {"uart_rx": np.ones(cycles, np.uint32), "adc_valid": valid[:cycles].copy(),
              "adc_data": data[:cycles].copy()}
    inputs["adc_valid"][halt_cycle:] = 0
    bound_t, bound_e = crlb(PULSE_SNR_DB)
    params = {"seed": seed, "pulses": PULSES, "snr_db": PULSE_SNR_DB, "halt_cycle": halt_cycle,
              "output_quant": tuple(model.output_quant), "n_out": net.output_count,
              "tolerance": {"time_samples": float(bound_t), "energy_relative": float(bound_e)}}
    return Workload("pulse_batch", "pulsedl", config, inputs, (), None, params, memory=memory,
                    regions=((DMEM, results_word, PULSES * net.output_count),), complete="halted", detect=("trap",),
                    judge="faultinj.workloads.pulsedl:significant_sdc")


def _printed_outputs(workload: Workload, text: str) -> np.ndarray | None:
    """The P lines' outputs (pulses, n_out), or None when the firmware did not print every pulse cleanly."""
    n_out, rows = workload.params["n_out"], []
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0] == "P":
            try:
                rows.append([int(v) for v in fields[1:1 + n_out]])
            except ValueError:
                return None
        elif fields and fields[0] in ("E", "O"):
            return None
    if len(rows) != workload.params["pulses"] or any(len(r) != n_out for r in rows):
        return None
    return np.asarray(rows, np.float64)


def _uart_text(workload: Workload, build_, site: int | None, cycle: int, upset: int) -> str:
    """Run the workload (with one upset after ``cycle`` edges unless ``site`` is None) until it halts or the
    watchdog, plus a UART frame's time; the decoded UART text."""
    from drivers.pulsedl import decode_uart
    from sim.harness import NativeSim

    cfg, inputs = workload.config, workload.inputs
    levels = []
    with NativeSim(build_) as sim:
        _load(sim, workload.memory)
        for lo, hi in ((0, cycle), (cycle, workload.cycles)):
            if hi > lo:
                levels.append(sim.run_stimulus({k: v[lo:hi] for k, v in inputs.items()}, ["uart_tx"])["uart_tx"])
            if lo == 0 and site is not None:
                sim.flip_upset(int(site), upset)
        hold = {k: np.repeat(v[-1:], FEED_CHUNK, axis=0) for k, v in inputs.items()}
        ran = workload.cycles
        while not sim.peek("halted") and ran < workload.watchdog_cycles:
            levels.append(sim.run_stimulus(hold, ["uart_tx"])["uart_tx"])
            ran += FEED_CHUNK
        tail = {k: np.repeat(v[-1:], UART_TAIL_BITS * cfg.uart_divisor, axis=0) for k, v in inputs.items()}
        levels.append(sim.run_stimulus(tail, ["uart_tx"])["uart_tx"])
    line = np.concatenate([x[:, 0] for x in levels]).astype(np.uint8)
    return decode_uart(line, cfg.uart_divisor).decode(errors="replace")


def pulse_error(workload: Workload, build_, site: int, cycle: int, upset: int = 1) -> dict:
    """Replay one injection and compare the printed outputs with the fault-free run's: ``time_samples`` and
    ``energy_relative`` (largest |change| over the batch, dequantised; inf when the faulty run's lines cannot be
    parsed) and ``significant`` (either beyond the workload's tolerance: one CRLB sigma at its SNR)."""
    good = _printed_outputs(workload, _uart_text(workload, build_, None, 0, 0))
    if good is None:
        raise RampartError("pulse_batch: the fault-free run did not print every pulse")
    bad = _printed_outputs(workload, _uart_text(workload, build_, site, cycle, upset))
    tol = workload.params["tolerance"]
    if bad is None:
        return {"time_samples": float("inf"), "energy_relative": float("inf"), "significant": True}
    scale, zp = workload.params["output_quant"]
    good, bad = (good - zp) * scale, (bad - zp) * scale
    dt = float(np.abs(bad[:, 0] - good[:, 0]).max())
    de = float(np.abs(bad[:, 1] / good[:, 1] - 1.0).max())
    return {"time_samples": dt, "energy_relative": de,
            "significant": dt > tol["time_samples"] or de > tol["energy_relative"]}


def significant_sdc(workload: Workload, build_, sites, cycles, upset: int = 1) -> np.ndarray:
    """The workload's judge (:mod:`faultinj.workload`): 1 per SDC whose time or energy moved beyond tolerance."""
    return np.array([int(pulse_error(workload, build_, int(s), int(c), upset)["significant"])
                     for s, c in zip(sites, cycles, strict=True)], dtype=np.int8)
