"""Fault-injection speed, measured in one run (ratios are what count).

    .venv/bin/python benchmarks/fi_speed.py [--config 4x4] [--faults 20000] [--naive-faults 20] [--write BENCHMARKS.md]

Rows, all on the same design and workload (the MAC array's matrix-multiply workload):
* the fast engine (golden run with snapshots every 64 cycles; per fault in C++: restore, replay to the cycle, flip,
  compare outputs and digests, stop early once the state has re-converged), one process;
* the reference path (a fresh model per fault, full replay, no snapshots or early stop) -- native, but naive;
* the NAIVE path of the issue: one cocotb process that, per fault, resets, replays the workload from cycle 0 with
  one await per cycle, flips the bit at its cycle and runs to the end -- under Verilator for the speed (its VPI
  cannot flip registers that are also output ports, so a few verdicts may differ) and under Icarus, the
  validation reference, for the agreement count;
* a campaign (fault plan, process pool, SQLite) with 1 and with 2 workers, for scaling.
The same faults go through every path and their SDC verdicts must agree.
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from report import write_section

from faultinj.campaign import run_campaign
from faultinj.engine import GoldenRun, ReferenceRun, cocotb_reference_outcomes
from faultinj.outcomes import Outcome
from faultinj.workload import make_workload
from rtl.designs import get_design
from sim.build import build


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="4x4")
    parser.add_argument("--faults", type=int, default=20000)
    parser.add_argument("--reference-faults", type=int, default=300)
    parser.add_argument("--naive-faults", type=int, default=20)
    parser.add_argument("--campaign-faults", type=int, default=100000)
    parser.add_argument("--write", metavar="BENCHMARKS.md")
    args = parser.parse_args()

    config = get_design("mac_array").config(args.config)
    result = build("mac_array", config)
    workload = make_workload("mac_array_matmul", config)
    rng = np.random.default_rng(11)
    sites = rng.integers(0, result.state_bits, args.faults)
    cycles = rng.integers(0, workload.cycles, args.faults)

    golden = GoldenRun(result, workload)
    start = time.perf_counter()
    outcomes, simulated = golden.inject(sites, cycles)
    fast = args.faults / (time.perf_counter() - start)

    reference = ReferenceRun(result, workload)
    start = time.perf_counter()
    ref = [reference.outcome(int(s), int(c)) for s, c in zip(sites[:args.reference_faults],
                                                            cycles[:args.reference_faults], strict=True)]
    ref_rate = args.reference_faults / (time.perf_counter() - start)
    assert list(outcomes[:args.reference_faults]) == [int(o) for o in ref], "fast and reference outcomes differ"

    naive_rate, naive_agree = naive_cocotb(result, workload, sites[:args.naive_faults], cycles[:args.naive_faults],
                                           outcomes[:args.naive_faults])

    scaling = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            start = time.perf_counter()
            run_campaign(Path(tmp) / f"w{workers}.db", "mac_array", config, "mac_array_matmul",
                         args.campaign_faults, seed=5, workers=workers)
            scaling[workers] = args.campaign_faults / (time.perf_counter() - start)

    mix = {o.name.lower(): int((outcomes == o).sum()) for o in Outcome if (outcomes == o).any()}
    report = "\n".join([
        f"## Fault injection: mac_array {args.config} ({result.state_bits} state bits), "
        f"{workload.cycles:,}-cycle matmul workload",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} in one run of `.venv/bin/python benchmarks/fi_speed.py "
        f"--config {args.config}`.",
        "",
        "| path | injections/s | fast engine is |",
        "|---|---:|---:|",
        f"| **fast engine** (snapshots, early stop, loop in C++), 1 process, {args.faults:,} faults | "
        f"**{fast:,.0f}** | 1 |",
        f"| reference path (native, fresh model, full replay), {args.reference_faults} faults | {ref_rate:,.1f} | "
        f"{fast / ref_rate:,.0f}x faster |",
        f"| naive path (cocotb + Verilator, reset + full replay per fault), {args.naive_faults} faults | "
        f"{naive_rate:,.2f} | **{fast / naive_rate:,.0f}x** faster |",
        f"| campaign (plan + pool + SQLite), 1 worker, {args.campaign_faults:,} faults | {scaling[1]:,.0f} | |",
        f"| campaign, 2 workers | {scaling[2]:,.0f} | {scaling[2] / scaling[1]:.2f}x the 1-worker rate |",
        "",
        f"* Outcomes agree: fast = reference on all {args.reference_faults} faults (exact class); fast = naive "
        f"cocotb + Icarus reference on {naive_agree} of {args.naive_faults} (exact class).",
        f"* Average cycles simulated per fault: {simulated.mean():,.0f} of {workload.cycles:,} (early stop).",
        f"* Outcome mix of the {args.faults:,} random faults: {mix}.",
        f"* Per core-hour: {fast * 3600:,.0f} injections on this workload.",
    ])
    print(report)
    if args.write:
        write_section(args.write, "fi_speed", report)


def naive_cocotb(result, workload, sites, cycles, fast_outcomes):
    """Injections/s of the naive cocotb path and how many of its outcomes equal the fast engine's."""
    _, seconds = cocotb_reference_outcomes(result, workload, sites, cycles, simulator="verilator")
    outcomes, _ = cocotb_reference_outcomes(result, workload, sites, cycles, simulator="icarus")
    return len(sites) / seconds, int((outcomes == fast_outcomes).sum())


if __name__ == "__main__":
    main()
