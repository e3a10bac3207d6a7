"""Classified faults per core-hour with the liveness analysis against without, on NPU network workloads.

    .venv/bin/python benchmarks/fi_liveness.py [--config u55-128] [--workloads npu_cnn,npu_conv] [--faults N]
        [--write BENCHMARKS.md]

Per workload: N faults drawn uniformly over the campaign fault space (seed 11; state bits x cycles, the NPU's
memory model excluded), classified twice in one process: by the fast engine alone (every fault simulated) and with
the liveness analysis (:meth:`faultinj.engine.GoldenRun.inject_analysed`: memory faults decided from the golden
run's access record are not simulated). Rates are CPU seconds of this process (``time.process_time``), so other
work on the machine does not count; the one-off costs per workload (golden run, access record: the probe build's
replay) are reported apart and also amortised over the N faults. Every fault's two verdicts must be identical.
"""
import argparse
import os
import time

from report import write_section

from faultinj.engine import GoldenRun
from faultinj.outcomes import Outcome
from faultinj.plan import fault_plan
from faultinj.workload import make_workload
from rtl.designs import get_design
from sim.build import build


def measure(config, name: str, faults: int) -> dict:
    result = build("npu", config)
    workload = make_workload(name, config)
    plan = fault_plan(result, workload.cycles, faults, seed=11, strata="none")
    start = time.process_time()
    golden = GoldenRun(result, workload)
    golden_s = time.process_time() - start
    start = time.process_time()
    golden.liveness()
    record_s = time.process_time() - start
    start = time.process_time()
    full, _ = golden.inject(plan.sites, plan.cycles)
    full_s = time.process_time() - start
    start = time.process_time()
    fast, _, analytic = golden.inject_analysed(plan.sites, plan.cycles)
    live_s = time.process_time() - start
    mismatches = int((full != fast).sum())
    assert mismatches == 0, f"{name}: {mismatches} faults classified differently with the liveness analysis"
    mix = {o.name.lower(): int((full == o).sum()) for o in Outcome if (full == o).any()}
    return dict(name=name, cycles=workload.cycles, faults=faults, golden_s=golden_s, record_s=record_s,
                full_s=full_s, live_s=live_s, analytic=int(analytic.sum()), mismatches=mismatches, mix=mix)


def render(args, rows: list[dict]) -> str:
    lines = [f"## Fault injection with the liveness analysis: npu {args.config}", "",
             f"Measured {time.strftime('%Y-%m-%d')} in one process, CPU time (`time.process_time`), by "
             f"`.venv/bin/python benchmarks/fi_liveness.py --config {args.config} --workloads {args.workloads} "
             f"--faults {args.faults}` ({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end). "
             "Same uniform faults (seed 11) classified by the fast engine alone and with the liveness analysis "
             "(`rampart fi run --liveness`); every verdict identical.", "",
             "| workload | cycles | faults | analytic | without: faults/core-hour | with: faults/core-hour | "
             "speed-up | with, one-off costs amortised | one-off: golden run, access record |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        without = r["faults"] / r["full_s"] * 3600
        with_ = r["faults"] / r["live_s"] * 3600
        amortised = r["faults"] / (r["live_s"] + r["record_s"]) * 3600
        lines.append(f"| {r['name']} | {r['cycles']:,} | {r['faults']:,} | {r['analytic']:,} "
                     f"({r['analytic'] / r['faults']:.1%}) | {without:,.0f} | {with_:,.0f} | "
                     f"**{with_ / without:.1f}x** | {amortised:,.0f} | {r['golden_s']:.2f} s, {r['record_s']:.2f} s |")
    lines.append("")
    for r in rows:
        lines.append(f"* {r['name']}: mismatches {r['mismatches']} of {r['faults']:,}; outcome mix {r['mix']}.")
    lines.append("* The access record is one replay of the workload by the probe build (memory port wires public; "
                 "built once per design build, not counted here).")
    lines.append("* Issue 14's target: >= 10x the ~401k classified faults per core-hour of the fast engine alone on "
                 "U55-128 network workloads, with 0 mismatches against full injection.")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="u55-128")
    parser.add_argument("--workloads", default="npu_cnn,npu_conv")
    parser.add_argument("--faults", type=int, default=3000)
    parser.add_argument("--write", metavar="BENCHMARKS.md")
    args = parser.parse_args()
    config = get_design("npu").config(args.config)
    rows = [measure(config, name, args.faults) for name in args.workloads.split(",")]
    report = render(args, rows)
    print(report)
    if args.write:
        write_section(args.write, "fi_liveness", report)


if __name__ == "__main__":
    main()
