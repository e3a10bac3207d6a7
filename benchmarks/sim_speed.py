"""Simulation speed of the MAC array under every harness, measured in one run (ratios are what count).

    .venv/bin/python benchmarks/sim_speed.py [--config 8x8] [--cycles 1000000] [--write BENCHMARKS.md]

Rows: Amaranth's Python simulator, cocotb+Verilator (one await per cycle, inputs set and output read every cycle),
the native harness (rp_run_stimulus: the loop in C++, stimulus from a buffer), and a hand-written Verilator C++ main
replaying the same buffer, built twice: plain, and with the state elements public (the harness's build) -- that
ratio is the cost of state access for fault injection. Also: snapshot + restore of the whole state, in cycles.
"""
import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from report import write_section

from rtl.designs import get_design
from sim.build import build, verilator_command
from sim.cocotb_glue import run_cocotb
from sim.crosscheck import pysim_trace
from sim.harness import NativeSim
from sim.toolchain import verilator_env

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


def build_handwritten(result, workdir: Path, public: bool) -> Path:
    """The baseline main, Verilated with exactly the harness's flags; ``public`` adds the harness's public.vlt."""
    obj = workdir / ("obj_public" if public else "obj_plain")
    sources = [HERE / "handwritten_main.cpp", result.verilog] + ([result.directory / "public.vlt"] if public else [])
    subprocess.run(verilator_command(obj, Path("main"), sources), check=True, env=verilator_env(),
                   capture_output=True)
    return obj / "main"


def run_handwritten(binary: Path, buffer: Path, cycles: int) -> float:
    out = subprocess.run([str(binary), str(buffer), str(cycles)], check=True, capture_output=True, text=True)
    return float(out.stdout.split()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="8x8")
    parser.add_argument("--cycles", type=int, default=1_000_000, help="cycles for the native and C++ rows")
    parser.add_argument("--cocotb-cycles", type=int, default=20_000)
    parser.add_argument("--pysim-cycles", type=int, default=2_000)
    parser.add_argument("--write", metavar="BENCHMARKS.md", help="replace the sim_speed section of this file")
    args = parser.parse_args()

    entry = get_design("mac_array")
    config = entry.config(args.config)
    result = build("mac_array", config)
    order = ["en", "clear", "rsel"] + [f"a_in__{r}" for r in range(config.rows)] + \
            [f"w_in__{c}" for c in range(config.cols)]
    stim = stimulus_for(config, args.cycles)
    rows = {}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        buffer = tmp / "stimulus.bin"
        np.stack([stim[name] for name in order], axis=1).astype(np.uint32).tofile(buffer)
        plain = build_handwritten(result, tmp, public=False)
        public = build_handwritten(result, tmp, public=True)
        # interleave repeats so machine noise hits every row alike; keep the best of each
        best = {"cpp": 1e9, "cpp_public": 1e9, "native": 1e9}
        with NativeSim(result) as sim:
            for _ in range(3):
                best["cpp"] = min(best["cpp"], run_handwritten(plain, buffer, args.cycles))
                best["cpp_public"] = min(best["cpp_public"], run_handwritten(public, buffer, args.cycles))
                start = time.perf_counter()
                sim.run_stimulus(stim, ["out"])
                best["native"] = min(best["native"], time.perf_counter() - start)
            snap = sim.snapshot()
            pairs = 20_000
            start = time.perf_counter()
            for _ in range(pairs):
                sim.restore(sim.snapshot())
            snapshot_seconds = (time.perf_counter() - start) / pairs
            sim.restore(snap)
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
    report = render(args, config, result, rows, snapshot_seconds, cycle_seconds)
    print(report)
    if args.write:
        write_section(args.write, "sim_speed", report)


def render(args, config, result, rows, snapshot_seconds, cycle_seconds) -> str:
    native = rows["native"]
    lines = [
        f"## Simulation speed: mac_array {args.config} ({result.state_bits} flip-flop bits)",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {sys.platform}, one core, in one run of "
        f"`.venv/bin/python benchmarks/sim_speed.py --config {args.config} --cycles {args.cycles}`.",
        "",
        "| harness | cycles/s | native harness is |",
        "|---|---:|---:|",
        f"| Amaranth pysim (async testbench, {args.pysim_cycles} cycles) | {rows['pysim']:,.0f} | "
        f"{native / rows['pysim']:,.0f}x faster |",
        f"| cocotb + Verilator (await per cycle, {args.cocotb_cycles} cycles) | {rows['cocotb']:,.0f} | "
        f"{native / rows['cocotb']:,.1f}x faster |",
        f"| **native harness** (ctypes, loop in C++, state public) | **{native:,.0f}** | 1.00 |",
        f"| hand-written Verilator C++ main, plain model | {rows['cpp']:,.0f} | {native / rows['cpp']:.2f}x |",
        f"| hand-written C++ main, state elements public | {rows['cpp_public']:,.0f} | "
        f"{native / rows['cpp_public']:.2f}x |",
        "",
        f"* State access (only flip-flops and memories public) costs {rows['cpp'] / rows['cpp_public']:.2f}x "
        f"(plain main vs public-state main; target <= 1.3x).",
        f"* Snapshot + restore of the whole model through ctypes: {snapshot_seconds * 1e6:.2f} us = "
        f"{snapshot_seconds / cycle_seconds:.2f} cycles (target < 10 cycles).",
        f"* Targets: native >= 0.9x C++ main ({native / rows['cpp']:.2f}), >= 30x cocotb "
        f"({native / rows['cocotb']:.0f}), >= 500x pysim ({native / rows['pysim']:.0f}).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
