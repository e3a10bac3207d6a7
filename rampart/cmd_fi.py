"""`rampart fi`: statistical soft-error fault-injection campaigns (sites, run, resume, status, report, replay)."""
import time
from pathlib import Path

import click

from base import RampartError


@click.group("fi")
def fi():
    """Single-event-upset fault injection: sample (site, cycle) faults over every flip-flop and memory bit of a
    design running a workload, classify each (masked, SDC, detected, hang, latent), and report rates with
    confidence intervals and ISO 26262 metrics.

    Campaigns stream into an SQLite file; a killed campaign resumes exactly where it stopped (`fi resume`).
    """


def _design_options(func):
    func = click.option("--workload", "-w", default=None, metavar="NAME",
                        help="Workload (see `rampart fi sites`); default: the design's first workload.")(func)
    return click.option("--config", "-c", "config", metavar="NAME|FILE.toml",
                        help="A preset (see `rampart designs`) or a TOML file.")(func)


def _sampled_bits(result) -> int:
    """State bits that campaigns sample: all but the design's simulation scaffolding (e.g. the NPU's extmem)."""
    from faultinj.workload import scaffolding_blocks

    skip = set(scaffolding_blocks(result.design))
    return sum(e.bits for e in result.state if e.block not in skip)


def _default_workload(design: str) -> str:
    from faultinj.workload import default_workload

    return default_workload(design)


@fi.command("sites")
@click.argument("design")
@_design_options
def sites_cmd(design, config, workload):
    """Count DESIGN's fault sites per block and the size of the fault space (sites x workload cycles)."""
    from rich.console import Console
    from rich.table import Table

    from faultinj.workload import make_workload, scaffolding_blocks
    from sim.build import build

    result = build(design, config)
    workload = workload or _default_workload(design)
    cycles = make_workload(workload, result.config).cycles
    skip = set(scaffolding_blocks(design))
    table = Table("block", "flip-flop bits", "memory bits", f"fault space (x {cycles:,} cycles)")
    per_block: dict[str, list[int]] = {}
    for element in result.state:
        per_block.setdefault(element.block, [0, 0])[element.kind == "mem"] += element.bits
    for block, (ff, mem) in sorted(per_block.items()):
        space = "simulation scaffolding, not sampled" if block in skip else f"{(ff + mem) * cycles:,}"
        table.add_row(block, f"{ff:,}", f"{mem:,}", space)
    table.add_row("[bold]total sampled", f"{sum(v[0] for b, v in per_block.items() if b not in skip):,}",
                  f"{sum(v[1] for b, v in per_block.items() if b not in skip):,}",
                  f"{_sampled_bits(result) * cycles:,}")
    Console().print(f"{design} {result.config}, workload {workload} ({cycles:,} cycles)")
    Console().print(table)


class _Progress:
    """A rich progress bar fed by the campaign's progress callback, with injections/s and ETA."""

    def __init__(self, db: Path):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.db = db
        self.progress = Progress(TextColumn("[bold]injecting"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[mix]}"))
        self.task = None
        self.start = time.monotonic()
        self.first_done = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def __call__(self, done: int, total: int):
        from faultinj.campaign import campaign_counts

        if self.task is None:
            self.task = self.progress.add_task("fi", total=total, completed=done, rate="", mix="")
            self.first_done, self.start = done, time.monotonic()
            return
        rate = (done - self.first_done) / max(time.monotonic() - self.start, 1e-9)
        counts = campaign_counts(self.db)
        mix = " ".join(f"{o.name.lower()} {n}" for o, n in counts.items() if n)
        self.progress.update(self.task, completed=done, total=total, rate=f"{rate:,.0f} inj/s", mix=mix)


def _print_status(status):
    from rich.console import Console
    from rich.table import Table

    from faultinj.outcomes import Outcome

    meta = status.meta
    console = Console()
    console.print(f"{meta['design']} {meta['config_repr']}, workload {meta['workload']}, seed {meta['seed']}, "
                  f"{_upset_text(meta.get('mbu', 1))}: {status.done:,} of {status.planned:,} injections"
                  + ("" if status.complete else " [yellow](incomplete: `rampart fi resume`)[/]"))
    short = {Outcome.MASKED: "masked", Outcome.SDC: "SDC", Outcome.DETECTED_RECOVERABLE: "det-rec",
             Outcome.DETECTED_UNRECOVERABLE: "det-unrec", Outcome.HANG: "hang", Outcome.LATENT: "latent"}
    stratified = status.is_stratified and status.stratified
    table = Table("block", "inj.", *(short[o] for o in Outcome),
                  "unmasked (stratified), 95% CI" if stratified else "unmasked, 95% CI")
    for block in [*status.blocks.values(), status.overall]:
        unmasked = block.rates.get("unmasked")
        if stratified:
            est = status.stratified if block is status.overall else block.stratified
            unmasked = est["unmasked"].interval if "unmasked" in est else None
        interval = (f"{unmasked.estimate:.1%} [{unmasked.low:.1%},{unmasked.high:.1%}]"
                    if unmasked is not None and block.injections else "-")
        name = "[bold]all" if block is status.overall else block.block
        table.add_row(name, f"{block.injections:,}", *(f"{block.counts[o]:,}" for o in Outcome), interval)
    console.print(table)
    if status.stratified and meta.get("strata") != "none":
        level = next(iter(status.stratified.values())).interval.confidence
        strata = len(meta["space"]["groups"]) * meta.get("cycle_windows", 1)
        console.print(f"overall rates over the strata ({_sampling_text(meta)}; {strata} strata weighted by their "
                      f"populations), {level:.0%} intervals:")
        for name, est in status.stratified.items():
            console.print(f"  {name} {est.estimate:.2%} [{est.low:.2%}, {est.high:.2%}] "
                          f"(half-width {est.half_width:.2%})")
    elif status.is_stratified and status.done:
        console.print("overall stratified rates: not yet (a stratum has no injection)")
    if status.rounds:
        last = status.rounds[-1]
        state = "margin met" if last.done else "in progress"
        console.print(f"iterative: {len(status.rounds)} rounds, {status.done:,} injections, {state} "
                      f"(target +/-{meta['margin']:g} at {meta['confidence']:.0%})")


def _upset_text(mbu: int) -> str:
    return "single-bit upsets" if mbu == 1 else f"{mbu}-bit upsets (adjacent bits of one word, wrapping)"


def _sampling_text(meta) -> str:
    strata = meta.get("strata", "block")
    if strata == "exhaustive":
        return "exhaustive"
    if strata == "none":
        how = "uniform"
    else:
        k = meta.get("cycle_windows", 1)
        how = {"block": "stratified by block", "element": "stratified by state element",
               "cycle": f"stratified by {k} cycle windows",
               "block,cycle": f"stratified by block x {k} cycle windows",
               "element,cycle": f"stratified by state element x {k} cycle windows"}[strata]
    if meta.get("mode") == "iterative":
        return f"{how}, iterative (Neyman rounds to +/-{meta['margin']:g} at {meta['confidence']:.0%})"
    return how + ("" if strata == "none" else ", proportional")


def _reproduce(meta, db: Path) -> str:
    args = [f"rampart fi run {meta['design']} --workload {meta['workload']}"]
    if meta.get("strata") == "exhaustive":
        args.append("--exhaustive")
    else:
        if meta.get("mode") == "iterative":
            args.append(f"--iterative --margin {meta['margin']:g} --confidence {meta['confidence']:g}"
                        f" --pilot {meta.get('pilot', 30)} --rates {','.join(meta.get('rates', ['unmasked']))}"
                        + (" --per-block" if meta.get("per_block") else ""))
        else:
            args.append(f"--samples {meta['samples']}")
        args.append(f"--seed {meta['seed']} --strata {meta['strata']}")
        if "cycle" in meta["strata"]:
            args.append(f"--cycle-windows {meta.get('cycle_windows', 1)}")
    if meta.get("mbu", 1) != 1:
        args.append(f"--mbu {meta['mbu']}")
    args.append(f"--db {db.name}")
    return " ".join(args)


@fi.command("run")
@click.argument("design")
@_design_options
@click.option("--db", required=True, type=click.Path(dir_okay=False), help="Campaign database (SQLite) to write.")
@click.option("--samples", "-n", type=click.IntRange(1), help="Number of injections (a fixed-size campaign).")
@click.option("--margin", type=click.FloatRange(0, 0.5, min_open=True),
              help="Instead of --samples: size the sample by Leveugle et al. (DATE 2009) for this error margin; "
                   "with --iterative, the half-width every checked rate's interval must reach.")
@click.option("--confidence", type=click.FloatRange(0.5, 1, max_open=True), default=0.99, show_default=True,
              help="Confidence for --margin.")
@click.option("--iterative", is_flag=True,
              help="With --margin: inject in rounds (a pilot per stratum, then Neyman-allocated rounds) until "
                   "the overall stratified interval of every --rates rate is within --margin; fewer injections than "
                   "Leveugle's size when the strata's rates differ. Rounds are stored, so `fi resume` continues "
                   "exactly.")
@click.option("--pilot", type=click.IntRange(2), default=30, show_default=True,
              help="With --iterative: injections per stratum before the first Neyman round.")
@click.option("--rates", default=None, metavar="RATE[,RATE...]",
              help="With --iterative: the outcome rates that must meet --margin (unmasked, sdc, detected, hang, "
                   "latent; default unmasked).")
@click.option("--per-block", is_flag=True, help="With --iterative: also require each stratum's (block's, or "
              "block x window's) own unmasked rate to meet --margin (many more injections).")
@click.option("--exhaustive", is_flag=True, help="Inject every (site, cycle) of the fault space once (small designs "
              "and short workloads only; see `rampart fi sites` for the size).")
@click.option("--strata", type=click.Choice(["block", "element", "none", "cycle", "block,cycle", "element,cycle"]),
              default="block", show_default=True,
              help="Stratify the sample by block, by state element (small elements pooled per block), by cycle "
                   "window, by block or element x cycle window, or draw uniformly.")
@click.option("--mbu", type=click.IntRange(1, 64), default=1, show_default=True, metavar="K",
              help="Bits flipped per injection: K adjacent bits of one word of one state element (a register or a "
                   "memory row), from the sampled bit upwards, wrapping at the word's edge (so always min(K, width) "
                   "bits); 1 = single-event upsets.")
@click.option("--cycle-windows", type=click.IntRange(1), default=None, metavar="K",
              help="Number of equal cycle windows for --strata cycle or block,cycle (default 8).")
@click.option("--cycles", "workload_cycles", type=click.IntRange(1), default=None,
              help="Workload length in cycles (default: the workload's own).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fault sample.")
@click.option("--workers", type=click.IntRange(1), default=None, help="Local worker processes (default: one per core).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Run the batches on a Dask cluster (e.g. tcp://host:8786) instead of local processes; results "
                   "are still committed here, failed batches are retried.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), help="Also write the ASIL report here.")
def run_cmd(design, config, workload, db, samples, margin, confidence, iterative, pilot, rates, per_block, exhaustive,
            strata, mbu, cycle_windows, workload_cycles, seed, workers, scheduler, report_dir):
    """Run a fault-injection campaign on DESIGN into --db (resumes it if the same campaign is already there).

    Give exactly one of --samples N (fixed size), --margin M (Leveugle's size for M, or with --iterative: rounds
    until M is met) or --exhaustive.
    """
    from faultinj.campaign import run_campaign
    from faultinj.stats import leveugle_sample_size
    from faultinj.workload import make_workload
    from sim.build import build

    if sum((samples is not None, margin is not None, exhaustive)) != 1:
        raise RampartError("give exactly one of --samples, --margin and --exhaustive")
    if iterative and margin is None:
        raise RampartError("--iterative needs --margin")
    if per_block and not iterative:
        raise RampartError("--per-block only applies to --iterative")
    if rates is not None and not iterative:
        raise RampartError("--rates only applies to --iterative")
    rates = tuple(r.strip() for r in (rates or "unmasked").split(","))
    if cycle_windows is not None and "cycle" not in strata:
        raise RampartError("--cycle-windows needs --strata cycle or block,cycle")
    if Path(db).exists() and not Path(db).is_file():
        raise RampartError(f"--db {db} is not a file")
    workload = workload or _default_workload(design)
    if "cycle" in strata and cycle_windows is None:
        cycle_windows = 8
    if exhaustive:
        strata = "exhaustive"
    if margin is not None and not iterative:
        result = build(design, config)
        population = _sampled_bits(result) * make_workload(workload, result.config, cycles=workload_cycles).cycles
        samples = leveugle_sample_size(population, margin, confidence)
        click.echo(f"Leveugle sample size for +/-{margin:g} at {confidence:.0%} over {population:,} faults: "
                   f"{samples:,}")
    options = dict(cycle_windows=cycle_windows or 1, scheduler=scheduler, workload_cycles=workload_cycles, mbu=mbu)
    if iterative:
        options.update(iterative=True, margin=margin, confidence=confidence, per_block=per_block, pilot=pilot,
                       rates=rates)
    with _Progress(Path(db)) as progress:
        status = run_campaign(db, design, config, workload, samples, seed, strata, workers, progress, **options)
    _print_status(status)
    if report_dir:
        _write_report(Path(db), Path(report_dir))


@fi.command("resume")
@click.argument("db", type=click.Path(dir_okay=False))
@click.option("--workers", type=click.IntRange(1), default=None, help="Local worker processes (default: one per core).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Continue on a Dask cluster (e.g. tcp://host:8786) instead of local processes.")
def resume_cmd(db, workers, scheduler):
    """Continue the campaign in DB with its stored parameters; nothing is lost or injected twice."""
    from faultinj.campaign import resume_campaign

    with _Progress(Path(db)) as progress:
        status = resume_campaign(db, workers, progress, scheduler=scheduler)
    _print_status(status)


@fi.command("status")
@click.argument("db", type=click.Path(dir_okay=False))
def status_cmd(db):
    """Per-block outcome counts and rates with 95% Wilson intervals of the campaign in DB."""
    from faultinj.campaign import campaign_status

    _print_status(campaign_status(db))


def _write_report(db: Path, out: Path):
    from faultinj.campaign import _config_from_json, campaign_status
    from faultinj.safety import BlockResult
    from reports.campaign import CampaignSummary, render
    from sim.build import build

    status = campaign_status(db)
    meta = status.meta
    result = build(meta["design"], _config_from_json(meta["design"], meta["config"]))
    bits: dict[str, dict[str, int]] = {}
    for element in result.state:
        kinds = bits.setdefault(element.block, {"ff": 0, "mem": 0})
        kinds[element.kind] += element.bits
    # per-block fractions over the block's cells when every cell has an injection (else its pooled counts)
    blocks = tuple(BlockResult(name, bits[name], block.counts,
                               strata=block.cells if status.is_stratified and block.stratified else ())
                   for name, block in status.blocks.items() if block.injections)
    if status.stratified and status.is_stratified:
        rates = {name: est.interval for name, est in status.stratified.items()}
        strata = len(meta["space"]["groups"]) * meta.get("cycle_windows", 1)
        method = (f"Stratified estimates over the campaign's {strata} strata, each stratum's rate weighted by its "
                  "population (stratified Agresti-Coull interval); not the pooled counts, which over-weight "
                  "strata sampled more than their share.")
    else:
        rates, method = dict(status.overall.rates), "Pooled counts (uniform or exhaustive sample), Wilson interval."
    summary = CampaignSummary(
        design=meta["design"], config=meta["config_repr"], workload=meta["workload"], seed=meta["seed"],
        sampling=f"{_sampling_text(meta)}, {status.done:,} of {status.planned:,} planned",
        blocks=blocks, cycles_simulated=status.overall.cycles_simulated,
        fault_space=_sampled_bits(result) * meta["workload_cycles"],
        reproduce=_reproduce(meta, db), rates=rates, rates_method=method, mbu=meta.get("mbu", 1),
        notes=() if status.complete else ("This campaign is incomplete; figures cover the injections done so far.",))
    paths = render(summary, out, name=db.stem)
    click.echo(f"report: {paths['html']}  (JSON {paths['json'].name}, FMEDA CSV {paths['csv'].name})")


@fi.command("report")
@click.argument("db", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=".", show_default=True)
def report_cmd(db, out_dir):
    """Write the ASIL report (HTML with figures, JSON, FMEDA CSV) of the campaign in DB."""
    _write_report(Path(db), Path(out_dir))


@fi.command("replay")
@click.argument("db", type=click.Path(dir_okay=False))
@click.argument("injection_id", type=int)
@click.option("--trace", type=click.Path(dir_okay=False), help="FST waveform of the faulty run.")
def replay_cmd(db, injection_id, trace):
    """Re-run one stored injection from scratch through the reference injection path (optionally with a
    waveform): its outcome again, whether it agrees with the stored one, and where the run diverges."""
    from faultinj.replay import replay_injection

    r = replay_injection(db, injection_id, trace)
    click.echo(f"injection {r.injection}: flip {r.flipped} (block {r.block}) after cycle {r.cycle}; "
               f"stored outcome {r.stored.name}")
    verdict = "agrees with the stored outcome" if r.agrees else f"DIFFERS from the stored outcome {r.stored.name}"
    click.echo(f"  replayed outcome {r.outcome.name} (reference path): {verdict}")
    differs = f"cycle {r.first_difference}" if r.first_difference is not None else "none"
    click.echo(f"  first observed output difference: {differs}")
    if r.regions_differ is not None:
        click.echo(f"  observed memory regions at the end: {'differ' if r.regions_differ else 'equal'}")
    if r.first_detection is not None:
        click.echo(f"  first detection: cycle {r.first_detection}")
    if r.ended_by is not None:
        click.echo(f"  run ended at cycle {r.end} by {r.ended_by}")
    if r.converged is not None:
        again = f"after cycle {r.converged}"
    elif r.final_equal:
        again = f"at the end (cycle {r.end})"
    else:
        again = f"never (the state still differs at the end, cycle {r.end})"
    click.echo(f"  state equal to the golden run again: {again}")
    if r.trace is not None:
        click.echo(f"waveform: {r.trace}")
