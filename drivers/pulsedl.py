"""Host driver of the PulseDL-II SoC in the native harness: load an RV32 ELF into its memories and run the core.

:func:`run_program` is the one-call form; :class:`SocRunner` keeps one simulator for many programs (it reloads the
memories and resets the SoC for each). :func:`build_firmware` compiles the C firmware of rtl/pulsedl/firmware
(picolibc, stdio on the UART); :func:`run_with_uart` runs to the halt recording ``uart_tx`` and decodes it
(:func:`decode_uart`).
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from base import RampartError
from models.rv32.toolchain import load_segments
from rtl.pulsedl.config import DMEM_BASE, IMEM_BASE
from sim.build import build
from sim.harness import NativeSim

__all__ = ["RunResult", "SocRunner", "build_firmware", "decode_uart", "run_program", "run_with_uart"]

IMEM = "top.imem.storage"
DMEM = "top.dmem.storage"
REGFILE = "top.cpu.regfile.storage"


@dataclass
class RunResult:
    halted: bool
    trap: bool
    cycles: int               # clock cycles stepped (rounded up to the polling chunk)
    instret: int              # instructions retired (ECALL/EBREAK not counted)
    registers: np.ndarray     # x0..x31 as uint32
    dmem: np.ndarray          # the whole data memory as bytes

    def data(self, address: int, size: int) -> bytes:
        first = address - DMEM_BASE
        return self.dmem[first:first + size].tobytes()


def _words(data: bytes) -> np.ndarray:
    padded = data + bytes(-len(data) % 4)
    return np.frombuffer(padded, dtype="<u4").astype(np.uint64)


class SocRunner:
    """One simulated SoC (design ``pulsedl`` with ``config``)."""

    def __init__(self, config=None):
        self.build = build("pulsedl", config)
        self.config = self.build.config
        self.sim = NativeSim(self.build)
        self._imem = self.sim.element_index(IMEM)
        self._dmem = self.sim.element_index(DMEM)
        self._regs = self.sim.element_index(REGFILE)

    def load(self, elf: Path):
        """Clear both memories and the register file, load ``elf``'s segments, and reset the SoC."""
        entry, segments = load_segments(elf)
        if entry != IMEM_BASE:
            raise RampartError(f"{elf}: entry point {entry:#x}, the core starts at {IMEM_BASE:#x}")
        cfg = self.config
        self.sim.load_memory(self._imem, np.zeros(cfg.imem_words, dtype=np.uint64))
        self.sim.load_memory(self._dmem, np.zeros(cfg.dmem_words, dtype=np.uint64))
        self.sim.load_memory(self._regs, np.zeros(32, dtype=np.uint64))
        for seg in segments:
            for base, size, element in ((IMEM_BASE, cfg.imem_bytes, self._imem), (DMEM_BASE, cfg.dmem_bytes,
                                                                                    self._dmem)):
                if base <= seg.address and seg.address + len(seg.data) <= base + size:
                    if seg.address % 4:
                        raise RampartError(f"{elf}: segment at {seg.address:#x} is not word-aligned")
                    self.sim.load_memory(element, _words(seg.data), (seg.address - base) // 4)
                    break
            else:
                raise RampartError(f"{elf}: segment {seg.address:#x}+{len(seg.data)} is outside the SoC's memories")
        self.sim.reset()

    def run(self, max_cycles: int = 10_000_000, chunk: int = 4096) -> RunResult:
        """Step until the core halts (or ``max_cycles``), polling every ``chunk`` cycles."""
        cycles = 0
        while cycles < max_cycles and not self.sim.peek("halted"):
            self.sim.step(chunk)
            cycles += chunk
        dmem = self.sim.read_memory(self._dmem).astype("<u4").view(np.uint8)
        return RunResult(halted=bool(self.sim.peek("halted")), trap=bool(self.sim.peek("trap")), cycles=cycles,
                         instret=self.sim.peek("instret"),
                         registers=self.sim.read_memory(self._regs).astype(np.uint32), dmem=dmem.copy())


def run_program(elf: Path, config=None, max_cycles: int = 10_000_000) -> RunResult:
    runner = SocRunner(config)
    runner.load(elf)
    return runner.run(max_cycles)


FIRMWARE = Path(__file__).resolve().parents[1] / "rtl" / "pulsedl" / "firmware"
FIRMWARE_FLAGS = ("-Os", "-nostartfiles", "-DPICOLIBC_INTEGER_PRINTF_SCANF")


def build_firmware(main: str, out: Path, config=None, defines: dict[str, int] | None = None) -> Path:
    """Compile firmware ``main`` (a C file of rtl/pulsedl/firmware) with the start-up code and the UART stdio
    against picolibc into the ELF ``out``; the stack starts at the top of the data memory of ``config``;
    ``defines`` become ``-DNAME=value``."""
    from models.rv32.toolchain import PICOLIBC_SPECS, assemble
    from rtl.designs import get_design

    cfg = get_design("pulsedl").config(config)
    if not PICOLIBC_SPECS.exists():
        raise RampartError(f"{PICOLIBC_SPECS} not found (Debian package picolibc-riscv64-unknown-elf)")
    sources = {name: (FIRMWARE / name).read_text() for name in ("crt0.S", "uart_stdio.c", main)}
    flags = (*FIRMWARE_FLAGS, f"--specs={PICOLIBC_SPECS}", f"-I{FIRMWARE}",
             *(f"-D{name}={value}" for name, value in (defines or {}).items()))
    return assemble(sources, IMEM_BASE, DMEM_BASE, out, flags=flags, stack_top=DMEM_BASE + cfg.dmem_bytes)


def decode_uart(line: np.ndarray, divisor: int) -> bytes:
    """Bytes of an 8N1 line sampled once per clock (idle high), each bit sampled in its middle."""
    line = np.asarray(line, dtype=np.uint8)
    out, i = bytearray(), 1
    middles = divisor * np.arange(1, 10) + divisor // 2      # data bits 0-7, then the stop bit
    while True:
        falls = np.flatnonzero((line[i:] == 0) & (line[i - 1:-1] == 1))
        if falls.size == 0:
            break
        start = i + int(falls[0])
        if start + middles[-1] >= line.size:
            break
        bits = line[start + middles]
        if bits[-1] != 1:
            raise RampartError(f"UART framing error at cycle {start}")
        out.append(int(np.packbits(bits[:8], bitorder="little")[0]))
        i = start + int(middles[-1]) + 1
    return bytes(out)


def run_with_uart(runner: SocRunner, max_cycles: int = 10_000_000, chunk: int = 65536) -> tuple[RunResult, bytes]:
    """Run the loaded program to its halt recording the UART line; (result, the bytes it sent)."""
    levels, cycles = [], 0
    idle = np.ones(chunk, dtype=np.uint32)
    while cycles < max_cycles:
        out = runner.sim.run_stimulus({"uart_rx": idle}, ["uart_tx", "halted"])
        levels.append(out["uart_tx"][:, 0].astype(np.uint8))
        cycles += chunk
        if out["halted"][-1, 0]:
            break
    # a frame still on the line when the core halted: idle until it is out
    levels.append(runner.sim.run_stimulus({"uart_rx": np.ones(12 * runner.config.uart_divisor, np.uint32)},
                                          ["uart_tx"])["uart_tx"][:, 0].astype(np.uint8))
    result = runner.run(max_cycles=0)
    result.cycles = cycles
    return result, decode_uart(np.concatenate(levels), runner.config.uart_divisor)


# ---------------------------------------------------------------------------------------------------------------
# the CNN accelerator

#: State elements of the accelerator's images, relative to its instance.
ACT_BANKS = ("act0.storage", "act1.storage")
DESCRIPTORS = "descriptors.storage"
QUANT_TABLES = tuple(f"quant.{name}_table.storage" for name in ("bias_lo", "bias_hi", "mult", "shift"))


def load_images(sim: NativeSim, prefix: str, net) -> None:
    """Preload a compiled network's descriptors, quantisation table and kernel registers into the accelerator at
    ``prefix`` (``top`` alone, ``top.accel`` in the SoC) — the images a deployment writes once, before any pulse."""
    cfg = net.config
    sim.load_memory(sim.element_index(f"{prefix}.{DESCRIPTORS}"), np.zeros(cfg.max_layers * 8, np.uint64))
    sim.load_memory(sim.element_index(f"{prefix}.{DESCRIPTORS}"), net.descriptors.astype(np.uint64))
    quant = net.quant.reshape(-1, 4).astype(np.uint64)
    for field, name in enumerate(QUANT_TABLES):
        sim.load_memory(sim.element_index(f"{prefix}.{name}"), quant[:, field])
    for p, image in enumerate(net.kernels):
        sim.load_memory(sim.element_index(f"{prefix}.pe{p}.kernels"), image)


def _signed16(values: np.ndarray) -> np.ndarray:
    return ((values.astype(np.int64) + (1 << 15)) % (1 << 16)) - (1 << 15)


class NnRunner:
    """The accelerator alone (fixture ``pulsedl_nn``) in the native harness: images preloaded, each window written
    into activation bank 0, START and STATUS through its bus port; the fast path of the bit-exact tests."""

    def __init__(self, config=None):
        from rtl.pulsedl.config import ACCEL_BASE
        self.base = ACCEL_BASE
        self.build = build("pulsedl_nn", config)
        self.config = self.build.config
        self.sim = NativeSim(self.build)
        self.sim.reset()
        self._banks = [self.sim.element_index(f"top.{name}") for name in ACT_BANKS]

    def bus(self, offset: int, value: int | None = None) -> int:
        """One bus access at accelerator offset ``offset``: a write of ``value``, or a read (returned)."""
        s = self.sim
        for name, v in (("bus__adr", self.base + offset), ("bus__sel", 0xF), ("bus__we", value is not None),
                        ("bus__dat_w", value or 0), ("bus__cyc", 1), ("bus__stb", 1)):
            s.poke(name, v)
        s.step(1)
        s.poke("bus__cyc", 0)
        s.poke("bus__stb", 0)
        data = s.peek("bus__dat_r")
        s.step(1)
        return data

    def load(self, net) -> None:
        load_images(self.sim, "top", net)
        self.net = net

    def status(self) -> int:
        return self.bus(4)

    def start(self, max_cycles: int = 2_000_000, chunk: int = 256) -> int:
        """START, wait for the sequencer to stop; the STATUS word."""
        from rtl.pulsedl.accel import CTRL_START
        self.bus(0, CTRL_START)
        waited = 0
        while self.sim.peek("busy"):
            if waited >= max_cycles:
                raise RampartError(f"the accelerator is still busy after {max_cycles} cycles")
            self.sim.step(chunk)
            waited += chunk
        return self.status()

    def infer(self, window: np.ndarray) -> tuple[np.ndarray, int]:
        """One window (the model's input dtype) -> (outputs, accelerator cycles)."""
        net = self.net
        self.sim.load_memory(self._banks[0], np.asarray(window).astype(np.int64).astype(np.uint16).astype(np.uint64))
        before = self.bus(8)
        status = self.start()
        if status & 8:
            raise RampartError(f"accelerator error {status >> 8 & 0xFF} at layer {status >> 16 & 0xFF}")
        raw = self.sim.read_memory(self._banks[net.output_bank], 0, net.output_count)
        return _signed16(raw).astype(net.output_dtype), (self.bus(8) - before) % (1 << 32)


_SOC_RUNNERS: dict = {}


def _soc_runner(config) -> SocRunner:
    from rtl.designs import get_design
    cfg = get_design("pulsedl").config(config)
    if cfg not in _SOC_RUNNERS:
        _SOC_RUNNERS[cfg] = SocRunner(cfg)
    return _SOC_RUNNERS[cfg]


def _stream_and_run(runner: SocRunner, samples: np.ndarray, max_cycles: int, chunk: int) -> tuple[bytes, int]:
    """Run the loaded firmware to its halt, feeding ``samples`` into the ADC stream as fast as the FIFO takes them
    (at each chunk start, as many as it has room for, one per cycle); the UART bytes and the cycles run."""
    sim, depth = runner.sim, runner.config.adc_fifo_depth
    levels, pos, cycles = [], 0, 0
    idle = np.ones(chunk, dtype=np.uint32)
    while cycles < max_cycles:
        n = min(depth - sim.peek("adc_level"), samples.size - pos, chunk)
        valid = np.zeros(chunk, np.uint32)
        data = np.zeros(chunk, np.uint32)
        valid[:n] = 1
        data[:n] = samples[pos:pos + n]
        pos += n
        out = sim.run_stimulus({"uart_rx": idle, "adc_valid": valid, "adc_data": data}, ["uart_tx", "halted"])
        levels.append(out["uart_tx"][:, 0].astype(np.uint8))
        cycles += chunk
        if out["halted"][-1, 0]:
            break
    else:
        raise RampartError(f"the firmware did not finish within {max_cycles} cycles")
    cycles_left = 12 * runner.config.uart_divisor
    tail = sim.run_stimulus({"uart_rx": np.ones(cycles_left, np.uint32), "adc_valid": np.zeros(cycles_left, np.uint32)},
                            ["uart_tx"])
    levels.append(tail["uart_tx"][:, 0].astype(np.uint8))
    return decode_uart(np.concatenate(levels), runner.config.uart_divisor), cycles


def infer_pulses(tflite_bytes: bytes, windows: np.ndarray, config="16k", threshold: int | None = None,
                 max_cycles: int | None = None, chunk: int = 2048, workdir: Path | None = None):
    """Run pulse windows through the SoC: the CPU's firmware (rtl/pulsedl/firmware/pulse.c) arms the ADC capture,
    the accelerator runs the network, the CPU prints the outputs over the UART, which are parsed here.

    ``windows`` (N, W) in the model's input dtype are streamed into the ADC input back to back. ``threshold``: use
    the threshold trigger instead of the CPU's: each capture then starts at the first sample >= ``threshold`` after
    the previous capture (so it may span two windows; the stream ends with one window of the type's minimum).
    The compiled images are preloaded into the accelerator (deployment), not written by the CPU.
    Returns (outputs (N, n_out) in the model's output dtype, stats): ``stats`` has cycles per pulse ``cpu``,
    ``accelerator``, ``adc_wait`` and ``total`` (averages over the batch, UART printing included in ``cpu``), the
    per-pulse arrays of the firmware's lines, and the clock cycles simulated."""
    import tempfile

    from drivers.pulsedl_compile import compile_tflite

    runner = _soc_runner(config)
    net = compile_tflite(bytes(tflite_bytes), runner.config)
    windows = np.asarray(windows)
    if windows.ndim != 2 or windows.shape[1] != net.input_len:
        raise RampartError(f"windows must have shape (N, {net.input_len}), not {windows.shape}")
    if windows.dtype != net.input_dtype:
        raise RampartError(f"windows must be {net.input_dtype} (the model's input type), not {windows.dtype}")
    n = len(windows)
    defines = {"NPULSES": n, "WINDOW": net.input_len, "OUT_BANK": net.output_bank, "NOUT": net.output_count,
               "THRESHOLD_MODE": int(threshold is not None), "THRESHOLD": int(threshold or 0)}
    with tempfile.TemporaryDirectory(prefix="rampart_pulsedl_") as tmp:
        elf = build_firmware("pulse.c", Path(workdir or tmp) / "pulse.elf", runner.config, defines)
        runner.load(elf)
    load_images(runner.sim, "top.accel", net)
    samples = windows.astype(np.int64).ravel()
    if threshold is not None:       # a window of the type's minimum after the last, so its capture can complete
        samples = np.concatenate([samples, np.full(net.input_len, np.iinfo(net.input_dtype).min)])
    samples = samples.astype(np.uint16).astype(np.uint32)
    text, cycles = _stream_and_run(runner, samples, max_cycles or 200_000 * (n + 1), chunk)
    return _parse_pulse_output(text.decode(errors="replace"), n, net, cycles)


def _parse_pulse_output(text: str, n: int, net, cycles: int):
    from rtl.pulsedl.nn_sequencer import ERRORS

    outs, per, total = [], [], None
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "E":
            status = int(fields[1], 16)
            code = status >> 8 & 0xFF
            raise RampartError(f"accelerator error {code} ({ERRORS.get(code, '?')}) at layer {status >> 16 & 0xFF}")
        if fields[0] == "O":
            raise RampartError("the ADC FIFO overflowed")
        if fields[0] == "P":
            values = [int(v) for v in fields[1:]]
            outs.append(values[:net.output_count])
            per.append(values[net.output_count:])
        elif fields[0] == "T":
            total = [int(v) for v in fields[1:]]
    if len(outs) != n or total is None:
        raise RampartError(f"the firmware printed {len(outs)} of {n} pulses (UART text: {text[-200:]!r})")
    per = np.asarray(per, np.int64)
    all_cycles, acc, wait = total
    stats = {"pulses": n, "total": all_cycles / n, "accelerator": acc / n, "adc_wait": wait / n,
             "cpu": (all_cycles - acc - wait) / n, "per_pulse": {"arm_to_read": per[:, 0], "accelerator": per[:, 1],
                                                                 "adc_wait": per[:, 2]},
             "macs_per_pulse": net.macs, "simulated_cycles": cycles}
    return np.asarray(outs, np.int64).astype(net.output_dtype), stats
