"""PulseDL-II SoC: RV32IM instructions per second of the Verilated core in the native harness.

    .venv/bin/python benchmarks/pulsedl_cpu_speed.py [--config 16k] [--repeats 3] [--write BENCHMARKS.md]

The workload is rtl/pulsedl/firmware/bench.c (CRC-32, an 8x8 matrix product, an insertion sort; C with picolibc,
-Os) run to its ECALL; the rate is retired instructions (the core's ``instret``) over the wall time of the stepping
loop alone (``SocRunner.run``: 4096-cycle ``step`` calls, polling ``halted`` between them), best of ``--repeats``.
The build is made (or found in the cache) and the firmware loaded before timing. Target: >= 1 M instructions/s.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from report import write_section

from base import RampartError
from drivers.pulsedl import SocRunner, build_firmware, run_with_uart
from sim.build import default_opt

TARGET = 1e6


def measure(config: str, repeats: int):
    runner = SocRunner(config)
    with tempfile.TemporaryDirectory() as tmp:
        elf = build_firmware("bench.c", Path(tmp) / "bench.elf", config)
        runner.load(elf)
        _, text = run_with_uart(runner)                  # the output, once, for the record
        best = None
        for _ in range(repeats):
            runner.load(elf)
            start, cpu_start = time.perf_counter(), time.process_time()
            result = runner.run()
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            if not result.halted or result.trap:
                raise RampartError(f"bench firmware did not halt cleanly (trap={result.trap})")
            if best is None or seconds < best[0]:
                best = (seconds, cpu, result)
    return runner, text, best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="16k")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", metavar="BENCHMARKS.md", help="replace this benchmark's section of that file")
    args = parser.parse_args()
    runner, text, (seconds, cpu, result) = measure(args.config, args.repeats)
    ips, cps = result.instret / seconds, result.cycles / seconds
    body = "\n".join([
        f"## PulseDL-II CPU simulation speed: RV32IM core, {args.config} SoC in the native harness",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {sys.platform}, best of {args.repeats} runs of "
        f"`PYTHONPATH=$PWD .venv/bin/python benchmarks/pulsedl_cpu_speed.py --config {args.config} "
        f"--repeats {args.repeats}` (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end; "
        f"Verilator -{default_opt('pulsedl')} build, cached; {runner.build.state_bits:,} state bits).",
        "",
        "| workload | instructions | cycles | CPI | wall s | CPU s | instructions/s | cycles/s | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        f"| bench.c (CRC-32, 8x8 matmul, insertion sort) | {result.instret:,} | {result.cycles:,} | "
        f"{result.cycles / result.instret:.2f} | {seconds:.3f} | {cpu:.3f} | {ips / 1e6:.2f} M | {cps / 1e6:.2f} M | "
        f">= 1 M instr/s: {'met' if ips >= TARGET else 'NOT met'} |",
        "",
        f"* Per CPU second of this process (the machine is shared): {result.instret / cpu / 1e6:.2f} M "
        "instructions/s.",
        f"* The firmware printed `{text.decode().strip()}` over the UART (run once with the line recorded).",
        "* Cycles are stepped in 4096-cycle chunks, so the count is rounded up to the chunk; CPI is that over the "
        "retired instructions (the multi-cycle\n  core: 2 cycles per ALU/branch/jump, 3 per load/store, 34 per "
        "division).",
    ])
    print(body)
    if args.write:
        write_section(args.write, "pulsedl_cpu_speed", body)


if __name__ == "__main__":
    try:
        main()
    except RampartError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
