"""Fault-injection sampling efficiency: injections each sampling mode needs to reach the same margin.

    .venv/bin/python benchmarks/fi_sampling.py [--target mac_array:4x4:mac_array_matmul:2000,seeds=5] [--margin 0.01]
        [--confidence 0.99] [--rates unmasked,sdc] [--seed 1] [--pilot 30] [--workers 2] [--write BENCHMARKS.md]

Per target (``design:config:workload[:cycles][,margin=M][,seeds=S]``) every mode runs as a real iterative campaign
(:func:`faultinj.campaign.run_campaign`, ``iterative=True``) on the same workload and seed until the overall
stratified interval of every listed rate has a half-width within the margin; its count includes the pilot
injections. "Plain random" is the uniform mode (``strata="none"``) iterated the same way on the same rates; for
reference Leveugle's closed form is given at p = 0.5 (what a plan made before any injection uses) and at the rate
the uniform campaign measured (the best a one-shot plan could do knowing the answer). The ratio is stratified
injections / uniform injections (lower is better), averaged over ``seeds`` campaign seeds (seed, seed + 1, ...).
Nothing is cached between modes: each injects its own faults.
"""
import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from report import write_section

from faultinj.campaign import run_campaign
from faultinj.plan import fault_space
from faultinj.stats import leveugle_sample_size
from faultinj.workload import make_workload
from sim.build import build

#: (label, strata, cycle windows) of the modes compared; the first is the plain-random baseline.
MODES = (("uniform (plain random)", "none", 1), ("block", "block", 1), ("element", "element", 1),
         ("element x 4 cycle windows", "element,cycle", 4))
DEFAULT_TARGETS = ("mac_array:4x4:mac_array_matmul:2000,seeds=5", "npu:u55-32:npu_conv",
                   "npu:u55-32:npu_conv,margin=0.0025")


@dataclass(frozen=True)
class Target:
    design: str
    config: str
    workload: str
    cycles: int | None
    margin: float | None = None     # None: --margin
    seeds: int = 1

    @staticmethod
    def parse(text: str) -> "Target":
        head, *options = text.split(",")
        parts = head.split(":")
        if len(parts) not in (3, 4) or any("=" not in o for o in options):
            raise SystemExit(f"--target wants design:config:workload[:cycles][,margin=M][,seeds=S], not {text!r}")
        extra = dict(o.split("=", 1) for o in options)
        return Target(parts[0], parts[1], parts[2], int(parts[3]) if len(parts) == 4 else None,
                      float(extra["margin"]) if "margin" in extra else None, int(extra.get("seeds", 1)))


@dataclass(frozen=True)
class ModeResult:
    label: str
    strata: int
    injections: list[int]    # per seed
    rounds: list[int]
    estimates: dict          # rate -> StratifiedEstimate (first seed)
    seconds: float           # all seeds

    @property
    def mean(self) -> float:
        return sum(self.injections) / len(self.injections)


def run_mode(target: Target, label: str, strata: str, windows: int, args, tmp: Path) -> ModeResult:
    margin = target.margin or args.margin
    start = time.perf_counter()
    statuses = []
    for seed in range(args.seed, args.seed + target.seeds):
        status = run_campaign(tmp / f"{strata.replace(',', '_')}-{seed}.db", target.design, target.config,
                              target.workload, None, seed=seed, strata=strata, cycle_windows=windows,
                              workers=args.workers, workload_cycles=target.cycles, iterative=True, margin=margin,
                              confidence=args.confidence, rates=tuple(args.rates), pilot=args.pilot)
        assert status.complete and all(status.stratified[r].half_width <= margin for r in args.rates)
        statuses.append(status)
    seconds = time.perf_counter() - start
    n_strata = len(fault_space(build(target.design, target.config), statuses[0].meta["workload_cycles"], strata,
                               windows).sizes)
    return ModeResult(label, n_strata, [s.done for s in statuses], [len(s.rounds) for s in statuses],
                      {r: statuses[0].stratified[r] for r in args.rates}, seconds)


def measure(target: Target, args) -> list[str]:
    result = build(target.design, target.config)
    wl = make_workload(target.workload, result.config, cycles=target.cycles)
    population = fault_space(result, wl.cycles, "none").total
    margin = target.margin or args.margin
    with tempfile.TemporaryDirectory() as tmp:
        results = [run_mode(target, label, strata, windows, args, Path(tmp)) for label, strata, windows in MODES]
    uniform = results[0]
    seeds = "" if target.seeds == 1 else f", mean of {target.seeds} seeds"
    lines = [f"### {target.design} {target.config}, workload {target.workload} ({wl.cycles:,} cycles, "
             f"fault space {population:,}): +/-{margin:g} at {args.confidence:.0%}{seeds}", "",
             "| mode | strata | injections to the margin (incl. pilot) | vs uniform | rounds | "
             + " | ".join(f"{r} (first seed: estimate +/- half-width)" for r in args.rates) + " | time |",
             "|---|---:|---:|---:|---:|" + "---:|" * len(args.rates) + "---:|"]
    for r in results:
        rates = " | ".join(f"{e.estimate:.2%} +/- {e.half_width:.2%}" for e in r.estimates.values())
        spread = f" ({min(r.injections):,}-{max(r.injections):,})" if len(r.injections) > 1 else ""
        counts = f"{r.mean:,.0f}{spread}"
        lines.append(f"| {r.label} | {r.strata} | {counts} | {r.mean / uniform.mean:.2f}x | "
                     f"{max(r.rounds)} | {rates} | {r.seconds:.0f} s |")
    worst_p = max((e.estimate for e in uniform.estimates.values()), key=lambda p: p * (1 - p))
    p = min(max(worst_p, 1e-6), 1 - 1e-6)
    lines += ["", f"* Leveugle's one-shot size for +/-{margin:g} at {args.confidence:.0%}: "
              f"{leveugle_sample_size(population, margin, args.confidence):,} at p = 0.5; "
              f"{leveugle_sample_size(population, margin, args.confidence, p):,} at the uniform campaign's "
              f"measured p = {p:.2%} (the rate of those checked nearest 50 %)."]
    best = min(results[1:], key=lambda r: r.mean)
    lines.append(f"* Best stratified mode: {best.label}, {best.mean:,.0f} injections = "
                 f"{best.mean / uniform.mean:.2f}x the uniform iterated campaign ({uniform.mean:,.0f}).")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", action="append", help="design:config:workload[:cycles] (repeatable)")
    parser.add_argument("--margin", type=float, default=0.01)
    parser.add_argument("--confidence", type=float, default=0.99)
    parser.add_argument("--rates", default="unmasked", type=lambda s: s.split(","))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--pilot", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write", metavar="BENCHMARKS.md")
    args = parser.parse_args()
    targets = [Target.parse(t) for t in (args.target or DEFAULT_TARGETS)]
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    body = ["## FI sampling efficiency", "",
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (commit {commit}, working tree with "
            f"uncommitted edits; machine shared) with `.venv/bin/python benchmarks/fi_sampling.py "
            + " ".join(f"--target {t}" for t in (args.target or DEFAULT_TARGETS))
            + f" --margin {args.margin:g} --confidence {args.confidence:g} --rates {','.join(args.rates)} "
            f"--seed {args.seed} --pilot {args.pilot}`. Every mode is an iterative campaign run to the same margin on "
            "the same rates, workload and seeds; counts include the pilot (see the script's docstring).", ""]
    for target in targets:
        lines = measure(target, args)
        print("\n".join(lines), flush=True)
        body += lines + [""]
    if args.write:
        write_section(args.write, "fi_sampling", "\n".join(body).rstrip())


if __name__ == "__main__":
    main()
