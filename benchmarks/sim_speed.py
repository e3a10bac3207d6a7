"""Simulation speed of the MAC array under every harness, measured in one run (ratios are what count); and of the
NPU in the native harness.

    .venv/bin/python benchmarks/sim_speed.py [--config 8x8] [--cycles 1000000] [--write BENCHMARKS.md]
    .venv/bin/python benchmarks/sim_speed.py --design npu [--config u55-128] [--write BENCHMARKS.md]

MAC array rows: Amaranth's Python simulator, cocotb+Verilator (one await per cycle, inputs set and output read every
cycle), the native harness (rp_run_stimulus: the loop in C++, stimulus from a buffer; the design's default C++
optimisation level), the same built at another level (``--compare-opt``; default: the other of Verilator's own -Os,
the level every build used before, and -O3), and a hand-written Verilator C++ main replaying the same buffer, built
twice: plain, and with the state elements public (the harness's build) -- that ratio is the cost of state access for
fault injection. Both sides are timed the same way: the main times its cycle loop over a stimulus already in memory,
recording the output trace, the harness one ``run_stimulus`` call on a stimulus packed beforehand
(``NativeSim.pack_inputs``). Also: snapshot + restore of the whole state, in cycles.

NPU rows (section ``npu_sim_speed``, next to the MAC array's): a real Vela-compiled conv on the full NPU (native
stepping in large chunks, and the whole ``drivers.npu.run_on_npu`` flow with its counter sampling), the
stub-compute build idle and streaming DMA copies, and the MAC array's native rate measured in the same run; every
native row also on the same RTL at the other C++ level, alternating, and with ``--baseline-rev REV`` the conv on the
build of git revision REV (its own RTL and flags; e.g. the commit before a speed change).
"""
import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from baseline import build_at_revision, compare_opt
from report import write_section

from base import RampartError
from drivers import npu as npu_driver
from drivers.transport import SimDevice
from models.npu import tflite_builder
from models.npu.reference import run_reference
from models.npu.vela import compile_cached
from rtl.designs import get_design
from rtl.npu.config import PRESETS as NPU_PRESETS
from rtl.npu.controller import CMD0, CMD1
from sim.build import build, default_opt, verilator_command
from sim.cocotb_glue import run_cocotb
from sim.crosscheck import pysim_trace
from sim.harness import NativeSim
from sim.toolchain import VERILATOR_OPT_LEVELS, verilator_env

HERE = Path(__file__).parent


def stimulus_for(config, cycles: int, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    stim = {"en": (rng.random(cycles) < 0.95).astype(np.uint64),
            "clear": (rng.random(cycles) < 0.01).astype(np.uint64),
            "rsel": rng.integers(0, config.rows, cycles, dtype=np.uint64)}
    for r in range(config.rows):
        stim[f"a_in__{r}"] = rng.integers(0, 256, cycles, dtype=np.uint64)
    for c in range(config.cols):
        stim[f"w_in__{c}"] = rng.integers(0, 256, cycles, dtype=np.uint64)
    return stim


def build_handwritten(result, workdir: Path, public: bool, opt: str) -> Path:
    """The baseline main, Verilated with exactly the harness's flags (C++ optimisation level ``opt``, that of
    ``result``); ``public`` adds the harness's public.vlt."""
    obj = workdir / ("obj_public" if public else "obj_plain")
    sources = [HERE / "handwritten_main.cpp", result.verilog] + ([result.directory / "public.vlt"] if public else [])
    subprocess.run(verilator_command(obj, Path("main"), sources, opt=opt), check=True, env=verilator_env(),
                   capture_output=True)
    return obj / "main"


def run_handwritten(binary: Path, buffer: Path, cycles: int) -> float:
    out = subprocess.run([str(binary), str(buffer), str(cycles)], check=True, capture_output=True, text=True)
    return float(out.stdout.split()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--design", choices=("mac_array", "npu"), default="mac_array")
    parser.add_argument("--config", help="preset (default: 8x8 for mac_array, u55-128 for npu)")
    parser.add_argument("--cycles", type=int, default=1_000_000,
                        help="cycles for the native and C++ rows (npu: for the idle and MAC-array reference rows)")
    parser.add_argument("--cocotb-cycles", type=int, default=20_000)
    parser.add_argument("--pysim-cycles", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs per row, the best one counts")
    parser.add_argument("--compare-opt", choices=tuple(VERILATOR_OPT_LEVELS),
                        help="C++ optimisation level to compare each design's default build with (default: the "
                             "other of -Os, Verilator's default, and -O3)")
    parser.add_argument("--baseline-rev", metavar="REV",
                        help="also run the native rows on the build of this git revision (its RTL and flags)")
    parser.add_argument("--write", metavar="BENCHMARKS.md", help="replace this design's section of that file")
    args = parser.parse_args()
    if args.design == "npu":
        args.config = args.config or "u55-128"
        report, section = measure_npu(args), NPU_SECTION
    else:
        args.config = args.config or "8x8"
        report, section = measure_mac_array(args), "sim_speed"
    print(report)
    if args.write:
        write_section_after(args.write, section, report, after="sim_speed")


def measure_mac_array(args) -> str:
    entry = get_design("mac_array")
    config = entry.config(args.config)
    opt, other = default_opt("mac_array"), compare_opt("mac_array", args.compare_opt)
    result = build("mac_array", config)
    natives = {"native": result, "native_baseline": build("mac_array", config, opt=other)}
    if args.baseline_rev:
        natives["native_before"] = build_at_revision(args.baseline_rev, "mac_array", args.config)
    order = ["en", "clear", "rsel"] + [f"a_in__{r}" for r in range(config.rows)] + \
            [f"w_in__{c}" for c in range(config.cols)]
    stim = stimulus_for(config, args.cycles)
    rows = {}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        buffer = tmp / "stimulus.bin"
        np.stack([stim[name] for name in order], axis=1).astype(np.uint32).tofile(buffer)
        plain = build_handwritten(result, tmp, public=False, opt=opt)
        public = build_handwritten(result, tmp, public=True, opt=opt)
        # interleave repeats so machine noise hits every row alike; keep the best of each
        best = dict.fromkeys(["cpp", "cpp_public", *natives], 1e9)
        sims = {key: NativeSim(build_) for key, build_ in natives.items()}
        try:
            packed = {key: native.pack_inputs(stim) for key, native in sims.items()}
            for _ in range(args.repeats):
                best["cpp"] = min(best["cpp"], run_handwritten(plain, buffer, args.cycles))
                best["cpp_public"] = min(best["cpp_public"], run_handwritten(public, buffer, args.cycles))
                for key, native in sims.items():
                    start = time.perf_counter()
                    native.run_stimulus(packed[key], ["out"])
                    best[key] = min(best[key], time.perf_counter() - start)
            sim = sims["native"]
            snap = sim.snapshot()
            pairs = 20_000
            start = time.perf_counter()
            for _ in range(pairs):
                sim.restore(sim.snapshot())
            snapshot_seconds = (time.perf_counter() - start) / pairs
            sim.restore(snap)
        finally:
            for native in sims.values():
                native.close()
        for key in best:
            rows[key] = args.cycles / best[key]

        cocotb_stim = {k: v[:args.cocotb_cycles] for k, v in stim.items()}
        np.savez(tmp / "cocotb_stim.npz", **cocotb_stim)
        run_cocotb("mac_array", config, "sim.cocotb_trace", test_dir=tmp,
                   extra_env={"RAMPART_STIMULUS": str(tmp / "cocotb_stim.npz"), "RAMPART_OUTPUTS": "out",
                              "RAMPART_TRACE": str(tmp / "cocotb_trace.npz")})
        rows["cocotb"] = args.cocotb_cycles / float(np.load(tmp / "cocotb_trace.npz", allow_pickle=True)["_seconds"])

    pysim_stim = {k: v[:args.pysim_cycles] for k, v in stim.items()}
    start = time.perf_counter()
    pysim_trace(entry.make(config), pysim_stim, ["out"])
    rows["pysim"] = args.pysim_cycles / (time.perf_counter() - start)

    cycle_seconds = 1 / rows["native"]
    return render(args, (opt, other), result, rows, snapshot_seconds, cycle_seconds)


def render(args, opts, result, rows, snapshot_seconds, cycle_seconds) -> str:
    native, (opt, other) = rows["native"], opts
    options = (f" --compare-opt {args.compare_opt}" if args.compare_opt else "") + \
        (f" --baseline-rev {args.baseline_rev}" if args.baseline_rev else "")
    before = [f"| native harness, the build of commit {args.baseline_rev} (its RTL, harness and flags) | "
              f"{rows['native_before']:,.0f} | {native / rows['native_before']:.2f}x |"] if args.baseline_rev else []
    lines = [
        f"## Simulation speed: mac_array {args.config} ({result.state_bits} flip-flop bits)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {sys.platform}, one core, in one run of "
        f"`.venv/bin/python benchmarks/sim_speed.py --config {args.config} --cycles {args.cycles} --repeats "
        f"{args.repeats}{options}` (best of {args.repeats}, interleaved; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end).",
        "",
        "| harness | cycles/s | native harness is |",
        "|---|---:|---:|",
        f"| Amaranth pysim (async testbench, {args.pysim_cycles} cycles) | {rows['pysim']:,.0f} | "
        f"{native / rows['pysim']:,.0f}x faster |",
        f"| cocotb + Verilator (await per cycle, {args.cocotb_cycles} cycles) | {rows['cocotb']:,.0f} | "
        f"{native / rows['cocotb']:,.1f}x faster |",
        f"| **native harness** (ctypes, loop in C++, state public; C++ -{opt}) | **{native:,.0f}** | 1.00 |",
        f"| native harness, C++ -{other} | {rows['native_baseline']:,.0f} | {native / rows['native_baseline']:.2f}x |",
        *before,
        f"| hand-written Verilator C++ main, plain model (-{opt}) | {rows['cpp']:,.0f} | "
        f"{native / rows['cpp']:.2f}x |",
        f"| hand-written C++ main, state elements public | {rows['cpp_public']:,.0f} | "
        f"{native / rows['cpp_public']:.2f}x |",
        "",
        f"* State access (only flip-flops and memories public) costs {rows['cpp'] / rows['cpp_public']:.2f}x "
        f"(plain main vs public-state main; target <= 1.3x).",
        f"* Snapshot + restore of the whole model through ctypes: {snapshot_seconds * 1e6:.2f} us = "
        f"{snapshot_seconds / cycle_seconds:.2f} cycles (target < 10 cycles).",
        f"* Targets: native >= 0.9x the C++ main of the same (public-state) model ({native / rows['cpp_public']:.2f}), "
        f">= 30x cocotb "
        f"({native / rows['cocotb']:.0f}), >= 500x pysim ({native / rows['pysim']:.0f}).",
    ]
    return "\n".join(lines)




# --- NPU -----------------------------------------------------------------------------------------------------------

NPU_SECTION = "npu_sim_speed"
NPU_MODEL_NAME = "conv 3x3, 16x16x16 -> 16, ReLU"
NPU_CHUNK = 256             # cycles per native step call while polling ``done`` (overshoot < 4% of the conv)
CONV_RUNS = 20              # conv runs per stepping measurement (one run is only ~7,000 cycles)
DMA_COPY_BYTES = 16 * 1024
DMA_COPIES = 8


@dataclass(frozen=True)
class Row:
    """One measured row: ``cycles`` simulated in ``seconds`` of wall time (the best of the repeats), and the same on
    the baseline-flags build of the same RTL (``baseline_seconds``; None where not measured)."""

    label: str
    build: str
    cycles: int
    seconds: float
    baseline_seconds: float | None = None

    @property
    def rate(self) -> float:
        return self.cycles / self.seconds

    @property
    def baseline_rate(self) -> float | None:
        return None if self.baseline_seconds is None else self.cycles / self.baseline_seconds


def best_of(repeats: int, measure) -> tuple[int, float]:
    """Run ``measure() -> (cycles, seconds)`` ``repeats`` times; the run with the highest cycles/s."""
    return max((measure() for _ in range(repeats)), key=lambda r: r[0] / r[1])


def best_interleaved(repeats: int, measures: dict) -> dict:
    """``best_of`` for several ``measure`` callables at once, alternating them so machine noise hits each alike."""
    runs: dict = {key: [] for key in measures}
    for _ in range(repeats):
        for key, measure in measures.items():
            runs[key].append(measure())
    return {key: max(r, key=lambda x: x[0] / x[1]) for key, r in runs.items()}


def npu_model():
    return tflite_builder.single_layer(tflite_builder.Conv2D(16, activation="RELU"), (16, 16, 16), seed=1)


def step_until_done(sim) -> tuple[int, float]:
    """Step in NPU_CHUNK pieces until ``done``: (cycles stepped, seconds)."""
    begin = time.perf_counter()
    stepped = npu_driver.wait_done(sim, 50_000_000, NPU_CHUNK)
    seconds = time.perf_counter() - begin
    if stepped is None or sim.peek("error"):
        raise RampartError(f"the NPU run failed (error code {sim.peek('error_code'):#x})")
    return stepped, seconds


def conv_stepping(sim, art, x):
    """A measure: run the conv CONV_RUNS times, the host stepping the model natively in chunks (loading the image
    untimed)."""
    dev = SimDevice(sim)

    def once():
        total = seconds = 0
        for _ in range(CONV_RUNS):
            lay = npu_driver.load_network(dev, art, x, sim.build.config.ext_mem_bytes)
            npu_driver.start(dev, lay.cmd_base, lay.cmd_len, lay.basep)
            cycles, dt = step_until_done(dev)
            total, seconds = total + cycles, seconds + dt
        return total, seconds
    return once


def measure_conv_flow(model, config: str, x, repeats: int) -> tuple[Row, bool]:
    """The whole ``run_on_npu`` flow (default build); also whether its output equals LiteRT's reference kernels."""
    runs = []

    def once():
        begin = time.perf_counter()
        runs.append(npu_driver.run_on_npu(model, config, x))
        return runs[-1].cycles, time.perf_counter() - begin

    once()   # warm the Vela cache and the imports
    cycles, seconds = best_of(repeats, once)
    bit_exact = all(np.array_equal(run.output, run_reference(model, x)) for run in runs[-1:])
    return Row("same, whole `run_on_npu` flow (image load, 32-cycle chunks sampling the counters, LiteRT graph "
               "analysis; NPU busy cycles / wall time)", "full", cycles, seconds), bit_exact


def dma_stream() -> bytes:
    """DMA_COPIES copies of DMA_COPY_BYTES, alternately external -> SHRAM and external -> external, then STOP."""
    words = []
    for i in range(DMA_COPIES):
        dst_region, dst = (0x100, 0) if i % 2 == 0 else (1, 0)
        words += [CMD0.NPU_SET_DMA0_SRC_REGION, CMD0.NPU_SET_DMA0_DST_REGION | dst_region << 16,
                  CMD1.NPU_SET_DMA0_SRC | 0x4000, 0, CMD1.NPU_SET_DMA0_DST | 0x4000, dst,
                  CMD1.NPU_SET_DMA0_LEN | 0x4000, DMA_COPY_BYTES, CMD0.NPU_OP_DMA_START]
    words += [CMD0.NPU_OP_DMA_WAIT, 0xFFFF0000]
    return np.asarray(words, dtype="<u4").tobytes()


def stub_idle(sim, idle_cycles: int):
    def once():
        sim.reset()
        begin = time.perf_counter()
        sim.step(idle_cycles)
        return idle_cycles, time.perf_counter() - begin
    return once


def stub_streaming(sim):
    stream = dma_stream()
    basep = [0x10000, 0x20000] + [0] * 6
    dev = SimDevice(sim)

    def once():
        dev.reset()
        npu_driver.load_bytes(dev, 0x100, stream)
        npu_driver.start(dev, 0x100, len(stream), basep)
        return step_until_done(dev)
    return once


def mac_stimulus(sim, cycles: int):
    """The MAC array 8x8 native row of the sim_speed section, re-measured in this run (the same stimulus)."""
    packed = sim.pack_inputs(stimulus_for(sim.build.config, cycles))

    def once():
        begin = time.perf_counter()
        sim.run_stimulus(packed, ["out"])
        return cycles, time.perf_counter() - begin
    return once


def measure_npu(args) -> str:
    if args.config not in NPU_PRESETS:
        raise RampartError(f"unknown NPU config {args.config!r}; one of: {', '.join(NPU_PRESETS)}")
    stub_config = dataclasses.replace(NPU_PRESETS[args.config], stub_compute=True)
    opts = {"npu": (default_opt("npu"), compare_opt("npu", args.compare_opt)),
            "mac_array": (default_opt("mac_array"), compare_opt("mac_array", args.compare_opt))}
    builds = {}
    for kind, design, config in (("full", "npu", args.config), ("stub", "npu", stub_config),
                                 ("mac", "mac_array", "8x8")):
        for which, opt in zip(("default", "compare"), opts[design], strict=True):
            builds[(kind, which)] = build(design, config, opt=opt)
    if args.baseline_rev:
        builds[("full", "before")] = build_at_revision(args.baseline_rev, "npu", args.config)
    model = npu_model()
    art = compile_cached(model, args.config)
    x = np.random.default_rng(0).integers(-128, 128, size=(1, 16, 16, 16), dtype=np.int8)
    flow, bit_exact = measure_conv_flow(model, args.config, x, args.repeats)
    sims = {key: NativeSim(result) for key, result in builds.items()}
    try:
        measures = {("conv", key): conv_stepping(sim, art, x) for key, sim in sims.items() if key[0] == "full"}
        measures |= {("idle", key): stub_idle(sim, args.cycles) for key, sim in sims.items() if key[0] == "stub"}
        measures |= {("dma", key): stub_streaming(sim) for key, sim in sims.items() if key[0] == "stub"}
        measures |= {("mac", key): mac_stimulus(sim, args.cycles) for key, sim in sims.items() if key[0] == "mac"}
        best = best_interleaved(args.repeats, measures)
    finally:
        for sim in sims.values():
            sim.close()

    def row(label, what, kind):
        cycles, seconds = best[(what, (kind, "default"))]
        baseline_cycles, baseline_seconds = best[(what, (kind, "compare"))]
        if baseline_cycles != cycles:   # the same RTL must run the same cycles whatever the compiler flags
            raise RampartError(f"{what}: {baseline_cycles:,} cycles with the other flags, {cycles:,} by default")
        return Row(label, kind, cycles, seconds, baseline_seconds)

    rows = [
        row(f"{NPU_MODEL_NAME} (Vela), {CONV_RUNS} runs, native stepping in {NPU_CHUNK}-cycle chunks", "conv", "full"),
        flow,
        row("stub compute, idle (nothing started)", "idle", "stub"),
        row(f"stub compute, {DMA_COPIES} DMA copies of {DMA_COPY_BYTES // 1024} KiB (to SHRAM / to external memory)",
            "dma", "stub"),
        row("MAC array 8x8, native `run_stimulus` (the sim_speed section's native row)", "mac", "mac"),
    ]
    before = best.get(("conv", ("full", "before")))
    if before is not None and before[0] != rows[0].cycles:
        raise RampartError(f"the conv ran {before[0]:,} cycles on the build of {args.baseline_rev}, "
                           f"{rows[0].cycles:,} on this one")
    facts = NpuFacts(npu_cycles=flow.cycles, vela_cycles=art.perf.total_cycles if art.perf else None,
                     bit_exact=bit_exact, before=None if before is None else before[0] / before[1])
    return render_npu(args, rows, {kind: builds[(kind, "default")] for kind in ("full", "stub", "mac")}, facts,
                      opts)


@dataclass(frozen=True)
class NpuFacts:
    npu_cycles: int
    vela_cycles: int | None
    bit_exact: bool
    before: float | None     # the conv's cycles/s on the build of --baseline-rev


def build_label(kind: str, result, config: str, opt: str) -> str:
    name = {"full": f"npu {config}", "stub": f"npu {config} + stub_compute", "mac": "mac_array 8x8"}[kind]
    return f"{name} ({ff_bits(result):,} FF + {sum(result.stats.mem_bits.values()):,} memory bits; C++ -{opt})"


def ff_bits(result) -> int:
    return sum(result.stats.ff_bits.values())


def render_npu(args, rows: list[Row], builds: dict, facts: NpuFacts, opts: dict) -> str:
    conv, mac = rows[0], rows[-1]
    command = (f"benchmarks/sim_speed.py --design npu --config {args.config} --repeats {args.repeats}"
               + (f" --compare-opt {args.compare_opt}" if args.compare_opt else "")
               + (f" --baseline-rev {args.baseline_rev}" if args.baseline_rev else ""))
    design_opts = {"full": opts["npu"], "stub": opts["npu"], "mac": opts["mac_array"]}
    lines = [
        f"## NPU simulation speed: {args.config} in the native harness",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {sys.platform}, one core, best of {args.repeats} (interleaved), in "
        f"one run of `.venv/bin/python {command}` (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores "
        f"at the end; the MAC-array row is re-measured here so the ratio below is same-run). Each build at its "
        f"design's default C++ optimisation level; the last column is the same RTL at the other level.",
        "",
        "| workload | build | cycles | cycles/s | cycles/s, other C++ level |",
        "|---|---|---:|---:|---:|",
    ]
    for row in rows:
        opt, other = design_opts[row.build]
        baseline = "n/a" if row.baseline_rate is None else f"{row.baseline_rate:,.0f} (-{other})"
        lines.append(f"| {row.label} | {build_label(row.build, builds[row.build], args.config, opt)} | "
                     f"{row.cycles:,} | {row.rate:,.0f} | {baseline} |")
    vela = f"{facts.vela_cycles:,}" if facts.vela_cycles else "n/a"
    lines += [
        "",
        f"* The conv takes {facts.npu_cycles:,} NPU cycles (Vela's estimate: {vela}); its output is "
        f"{'bit-exact' if facts.bit_exact else 'NOT bit-exact'} against LiteRT's reference kernels.",
    ]
    if facts.before is not None:
        lines.append(f"* The conv, stepped natively, on the build of commit {args.baseline_rev} (its RTL and flags), "
                     f"same run: {facts.before:,.0f} cycles/s; the default build is "
                     f"**{conv.rate / facts.before:.2f}x** that (the -{opts['npu'][1]} build of the same RTL: "
                     f"{conv.baseline_rate / facts.before:.2f}x).")
    lines += [
        f"* Per simulated cycle the full {args.config} NPU running the conv costs {mac.rate / conv.rate:.1f}x the "
        f"8x8 MAC array ({ff_bits(builds['full']) / ff_bits(builds['mac']):.0f}x its flip-flop bits).",
        f"* Verilator builds (first time, cached afterwards): full NPU {builds['full'].seconds:.0f} s, stub "
        f"{builds['stub'].seconds:.0f} s.",
    ]
    return "\n".join(lines)


def write_section_after(path: str, name: str, body: str, after: str) -> None:
    """write_section, but a new section is placed right after section ``after`` rather than at the end."""
    target = Path(path)
    text = target.read_text() if target.exists() else ""
    begin, anchor = f"<!-- {name}:begin -->", f"<!-- {after}:end -->"
    if begin not in text and anchor in text and name != after:
        head, tail = text.split(anchor, 1)
        target.write_text(f"{head}{anchor}\n\n{begin}\n<!-- {name}:end -->{tail}")
    write_section(path, name, body)


if __name__ == "__main__":
    try:
        main()
    except RampartError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
