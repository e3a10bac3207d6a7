"""Fault-injection speed, measured in one run (ratios are what count).

    .venv/bin/python benchmarks/fi_speed.py [--workload mac_array_matmul] [--config 4x4] [--faults N]
        [--reference-faults N] [--naive-faults N] [--campaign-faults N] [--write BENCHMARKS.md]

Rows, all on the same design and workload (``--workload``: any registered FI workload; the default is the MAC
array's matrix-multiply workload, ``npu_cnn`` is the NPU running a 3-layer CNN on u55-128). Faults are drawn
uniformly over the campaign fault space (state bits x cycles, scaffolding such as the NPU's memory model excluded):
* the fast engine (golden run with snapshots; per fault in C++: restore, replay to the cycle, flip, compare outputs
  and digests, stop early once the state has re-converged), one process;
* the reference path (a fresh model per fault, full replay, no snapshots or early stop) -- native, but naive;
* the NAIVE path of the issue: one cocotb process that, per fault, restores the power-on state, replays the workload
  from cycle 0, flips the bit at its cycle and runs to the end (faultinj.cocotb_reference) -- under Icarus, the
  validation reference, for its rate and the agreement count; for the MAC array also under Verilator for the speed
  (its VPI cannot flip registers that are also output ports, so a few verdicts may differ);
* a campaign (fault plan, process pool, SQLite) with 1 and with 2 workers, for scaling (alternated three times, the
  fastest of each kept: on a shared machine other work only slows a run down);
* the fast engine on the same RTL built at another C++ optimisation level than the design's default
  (``--compare-opt``; default: the other of Verilator's own -Os, the level every build used before, and -O3),
  alternated with the default build, same faults;
* with ``--baseline-rev REV``: the fast engine on the design as git revision REV built it (its RTL and flags),
  alternated with the default build on the faults whose state element exists in both builds.
The same faults go through every path and their verdicts must agree.
"""
import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

from baseline import build_at_revision, compare_opt, map_faults
from report import write_section

from faultinj.campaign import run_campaign
from faultinj.cocotb_reference import reference_outcomes
from faultinj.engine import GoldenRun, ReferenceRun
from faultinj.outcomes import Outcome
from faultinj.plan import fault_plan
from faultinj.workload import get_workload, make_workload
from rtl.designs import get_design
from sim.build import build, default_opt
from sim.toolchain import VERILATOR_OPT_LEVELS

DEFAULT_CONFIG = {"mac_array": "4x4", "npu": "u55-128"}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", default="mac_array_matmul")
    parser.add_argument("--config", default=None, help="design preset (default: 4x4 for the MAC array, u55-128 "
                                                      "for the NPU)")
    parser.add_argument("--faults", type=int, default=20000)
    parser.add_argument("--reference-faults", type=int, default=300)
    parser.add_argument("--naive-faults", type=int, default=20)
    parser.add_argument("--campaign-faults", type=int, default=100000)
    parser.add_argument("--compare-opt", choices=tuple(VERILATOR_OPT_LEVELS),
                        help="C++ optimisation level to compare the design's default build with (default: the other "
                             "of -Os, Verilator's default, and -O3)")
    parser.add_argument("--baseline-rev", metavar="REV", help="also compare with the build of this git revision")
    parser.add_argument("--write", metavar="BENCHMARKS.md")
    args = parser.parse_args()

    design = get_workload(args.workload)[0]
    opts = default_opt(design), compare_opt(design, args.compare_opt)
    preset = args.config or DEFAULT_CONFIG.get(design)
    config = get_design(design).config(preset)
    result = build(design, config)
    workload = make_workload(args.workload, config)
    plan = fault_plan(result, workload.cycles, args.faults, seed=11, strata="none")
    sites, cycles = plan.sites, plan.cycles

    start = time.perf_counter()
    golden = GoldenRun(result, workload)
    golden_seconds = time.perf_counter() - start
    engines = {"default": (golden, sites, cycles),
               "opt": (GoldenRun(build(design, config, opt=opts[1]), workload), sites, cycles)}
    if args.baseline_rev:
        before = build_at_revision(args.baseline_rev, design, preset)
        keep, before_sites, before_cycles = map_faults(result, before, sites, cycles)
        engines["before"] = (GoldenRun(before, workload), before_sites, before_cycles)
        engines["default_common"] = (golden, sites[keep], cycles[keep])
    rates, verdicts = fast_engines(engines)
    fast, (outcomes, simulated) = rates["default"], verdicts["default"]
    comparison = compare_builds(args, opts, rates, verdicts)

    reference = ReferenceRun(result, workload)
    n_ref = min(args.reference_faults, args.faults)
    start = time.perf_counter()
    ref = [reference.outcome(int(s), int(c)) for s, c in zip(sites[:n_ref], cycles[:n_ref], strict=True)]
    ref_rate = n_ref / (time.perf_counter() - start)
    assert list(outcomes[:n_ref]) == [int(o) for o in ref], "fast and reference outcomes differ"

    n_naive = min(args.naive_faults, args.faults)
    naive = naive_cocotb(result, workload, sites[:n_naive], cycles[:n_naive], outcomes[:n_naive])

    scaling = campaign_scaling(design, config, args.workload, args.campaign_faults)

    report = render(args, preset, result, workload, golden_seconds, fast, outcomes, simulated, n_ref, ref_rate,
                    n_naive, naive, scaling, comparison, opts[0])
    print(report)
    if args.write:
        name = "fi_speed" if args.workload == "mac_array_matmul" else f"fi_speed_{args.workload}"
        write_section(args.write, name, report)


def fast_engines(engines: dict, repeats: int = 3) -> tuple[dict, dict]:
    """Injections/s of each ``(golden run, sites, cycles)`` (the fastest of ``repeats``, alternated so machine noise
    hits each alike) and its (outcomes, cycles simulated)."""
    rates, verdicts = dict.fromkeys(engines, 0.0), {}
    for _ in range(repeats):
        for key, (golden, sites, cycles) in engines.items():
            start = time.perf_counter()
            verdicts[key] = golden.inject(sites, cycles)
            rates[key] = max(rates[key], len(sites) / (time.perf_counter() - start))
    return rates, verdicts


def compare_builds(args, opts: tuple[str, str], rates: dict, verdicts: dict) -> list[str]:
    """Report lines: the default build against the other C++ level (and the baseline revision's build)."""
    default = verdicts["default"][0]
    same = int((verdicts["opt"][0] == default).sum())
    lines = [f"* Default build (C++ -{opts[0]}) vs the same RTL at -{opts[1]}, same run, same {len(default):,} "
             f"faults: {rates['opt']:,.1f} injections/s at -{opts[1]}, the default "
             f"**{rates['default'] / rates['opt']:.2f}x** that; outcomes identical on {same:,} of {len(default):,}."]
    if "before" in verdicts:
        common = verdicts["default_common"][0]
        same = int((verdicts["before"][0] == common).sum())
        lines.append(
            f"* Default build vs the build of commit {args.baseline_rev} (its RTL and flags), same run, on the "
            f"{len(common):,} of those faults whose state element exists in both: {rates['before']:,.1f} "
            f"injections/s before, {rates['default_common']:,.1f} now, "
            f"**{rates['default_common'] / rates['before']:.2f}x**; outcomes identical on {same:,} of {len(common):,}.")
    return lines


def naive_cocotb(result, workload, sites, cycles, fast_outcomes) -> dict:
    """Rates (injections/s) of the naive cocotb path per simulator and the Icarus path's agreement count."""
    icarus, seconds = reference_outcomes(result, workload, sites, cycles, simulator="icarus")
    rates = {"icarus": len(sites) / seconds}
    if result.design == "mac_array":
        _, seconds = reference_outcomes(result, workload, sites, cycles, simulator="verilator")
        rates["verilator"] = len(sites) / seconds
    return {"rates": rates, "agree": int((icarus == fast_outcomes).sum())}


def campaign_scaling(design, config, workload: str, faults: int, repeats: int = 3) -> dict[int, tuple[float, float]]:
    """Campaign (injections/s, CPU seconds of this process and its workers per 1,000 injections) with 1 and 2 local
    workers, alternated ``repeats`` times in this run; the fastest run of each is kept (other work on a shared machine
    only slows runs down). The CPU per injection shows the overhead the second worker adds (equal: none)."""
    scaling: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(repeats):
            for workers in (1, 2):
                cpu = _cpu_seconds()
                start = time.perf_counter()
                run_campaign(Path(tmp) / f"w{workers}_{run}.db", design, config, workload, faults, seed=5,
                             workers=workers)
                wall = time.perf_counter() - start
                rate = (faults / wall, 1000 * (_cpu_seconds() - cpu) / faults)
                if workers not in scaling or rate[0] > scaling[workers][0]:
                    scaling[workers] = rate
    return scaling


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its finished (joined) children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def render(args, preset, result, workload, golden_seconds, fast, outcomes, simulated, n_ref, ref_rate, n_naive,
           naive, scaling, comparison, opt) -> str:
    space_bits = sum(e.bits for e in result.state if e.block not in workload.exclude_blocks)
    mix = {o.name.lower(): int((outcomes == o).sum()) for o in Outcome if (outcomes == o).any()}
    rows = [
        "| path | injections/s | fast engine is |",
        "|---|---:|---:|",
        f"| **fast engine** (snapshots, early stop, loop in C++; C++ -{opt}), 1 process, {args.faults:,} "
        f"faults, best of 3 | "
        f"**{fast:,.0f}** | 1 |",
        f"| reference path (native, fresh model, full replay), {n_ref} faults | {ref_rate:,.1f} | "
        f"{fast / ref_rate:,.0f}x faster |",
    ]
    for simulator, rate in sorted(naive["rates"].items(), key=lambda kv: kv[0] != "verilator"):
        name = "Verilator" if simulator == "verilator" else "Icarus"
        rows.append(f"| naive path (cocotb + {name}, power-on state + full replay per fault), {n_naive} faults | "
                    f"{rate:,.2f} | **{fast / rate:,.0f}x** faster |")
    rows += [
        f"| campaign (plan + pool + SQLite), 1 worker, {args.campaign_faults:,} faults, best of 3 | "
        f"{scaling[1][0]:,.0f} | |",
        f"| campaign, 2 workers, best of 3 (alternating with the 1-worker runs) | {scaling[2][0]:,.0f} | "
        f"**{scaling[2][0] / scaling[1][0]:.2f}x** the 1-worker rate |",
    ]
    command = (f"benchmarks/fi_speed.py --workload {args.workload} --config {preset} --faults {args.faults} "
               f"--reference-faults {args.reference_faults} --naive-faults {args.naive_faults} "
               f"--campaign-faults {args.campaign_faults}"
               + (f" --compare-opt {args.compare_opt}" if args.compare_opt else "")
               + (f" --baseline-rev {args.baseline_rev}" if args.baseline_rev else ""))
    return "\n".join([
        f"## Fault injection: {result.design} {preset} ({space_bits:,} sampled state bits), "
        f"{workload.cycles:,}-cycle {workload.name} workload",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} (machine loaded by other work, load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores at the end: compare ratios within this run) in one run of "
        f"`.venv/bin/python {command}`.",
        "",
        *rows,
        "",
        f"* Outcomes agree: fast = reference on all {n_ref} faults (exact class); fast = naive cocotb + Icarus "
        f"reference on {naive['agree']} of {n_naive} (exact class).",
        *comparison,
        f"* Golden run (once per process, with snapshots): {golden_seconds:.2f} s.",
        f"* Campaign CPU (parent + workers) per 1,000 injections: {scaling[1][1]:.2f} s with 1 worker, "
        f"{scaling[2][1]:.2f} s with 2 ({scaling[2][1] / scaling[1][1]:.2f}x: the work the second worker adds).",
        f"* Average cycles simulated per fault: {simulated.mean():,.0f} of {workload.cycles:,} (early stop).",
        f"* Outcome mix of the {args.faults:,} random faults: {mix}.",
        f"* Per core-hour: {fast * 3600:,.0f} injections on this workload (fast engine, one process).",
    ])


if __name__ == "__main__":
    main()
