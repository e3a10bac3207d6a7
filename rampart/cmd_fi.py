"""`rampart fi`: statistical soft-error fault-injection campaigns (workloads, sites, run, resume, status, report,
replay). Campaign assembly lives in faultinj.spec, report assembly in reports.campaign; this module parses and
prints."""
import re
import time
from pathlib import Path

import click

from base import RampartError
from rampart.console import console
from rampart.options import (
    config_option,
    output_file_option,
    output_folder,
    output_folder_option,
    seed_option,
    trace_option,
)


@click.group("fi")
def fi():
    """Single-event-upset fault injection: sample (site, cycle) faults over every flip-flop and memory bit of a
    design running a workload, classify each (masked, SDC, detected, hang, latent), and report rates with
    confidence intervals and ISO 26262 metrics.

    Campaigns stream into an SQLite file; a killed campaign resumes exactly where it stopped (`fi resume`).
    """


def _design_options(func):
    func = click.option("--workload", "-w", default=None, metavar="NAME",
                        help="Workload (see `rampart fi workloads`); default: the design's first workload.")(func)
    return config_option()(func)


@fi.command("workloads")
def workloads_cmd():
    """List the fault-injection workloads: name, the design it runs on, what it does."""
    from rich.table import Table

    from faultinj.workload import workloads

    table = Table("workload", "design", "what it runs")
    for name, (design, summary) in workloads().items():
        table.add_row(name, design, re.sub(r":\w+:`([^`]*)`", r"\1", summary).replace("``", ""))
    console().print(table)


@fi.command("sites")
@click.argument("design")
@_design_options
def sites_cmd(design, config, workload):
    """Count DESIGN's fault sites per functional block (the design descriptor's block map), each block's share of
    the sampled flip-flop bits and of all sampled bits, and the size of the fault space (sites x workload cycles)."""
    from rich.table import Table

    from faultinj.sites import fault_sites

    sites = fault_sites(design, config, workload)
    cycles = "no workload" if sites.cycles is None else f"x {sites.cycles:,} cycles"
    table = Table("block", "flip-flop bits", "% of sampled FF", "memory bits", "% of sampled bits",
                  f"fault space ({cycles})")
    for block in sites.blocks:
        if not block.sampled:
            space = "simulation scaffolding, not sampled"
        else:
            space = "-" if sites.cycles is None else f"{(block.ff_bits + block.mem_bits) * sites.cycles:,}"
        ff_share = f"{100 * sites.ff_share(block):.1f}" if block.sampled else "-"
        bit_share = f"{100 * sites.bit_share(block):.1f}" if block.sampled else "-"
        table.add_row(block.block, f"{block.ff_bits:,}", ff_share, f"{block.mem_bits:,}", bit_share, space)
    table.add_row("[bold]total sampled", f"{sites.sampled_ff_bits:,}", "100", f"{sites.sampled_mem_bits:,}", "100",
                  "-" if sites.fault_space is None else f"{sites.fault_space:,}")
    out = console()
    workload_text = "no fault-injection workload" if sites.workload is None else \
        f"workload {sites.workload} ({sites.cycles:,} cycles)"
    out.print(f"{design} {sites.config}, {workload_text}")
    out.print(table)


class _Progress:
    """A rich progress bar fed by the campaign's progress callback, with injections/s and ETA."""

    def __init__(self, db: Path):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.db = db
        self.progress = Progress(TextColumn("[bold]injecting"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[mix]}"), console=console())
        self.task = None
        self.start = time.monotonic()
        self.first_done = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.task is not None:
            self.progress.stop()

    def __call__(self, done: int, total: int):
        from faultinj.campaign import campaign_counts

        if self.task is None:    # the bar appears with the first batch, not before a refused campaign
            self.progress.start()
            self.task = self.progress.add_task("fi", total=total, completed=done, rate="", mix="")
            self.first_done, self.start = done, time.monotonic()
            return
        rate = (done - self.first_done) / max(time.monotonic() - self.start, 1e-9)
        counts = campaign_counts(self.db)
        mix = " ".join(f"{o.name.lower()} {n}" for o, n in counts.items() if n)
        self.progress.update(self.task, completed=done, total=total, rate=f"{rate:,.0f} inj/s", mix=mix)


def print_status(status):
    """Print a campaign's status: per-block outcome counts and unmasked rates, overall stratified rates, rounds."""
    from rich.table import Table

    from faultinj.outcomes import Outcome
    from faultinj.spec import describe_sampling, describe_upsets

    meta = status.meta
    out = console()
    out.print(f"{meta['design']} {meta['config_repr']}, workload {meta['workload']}, seed {meta['seed']}, "
              f"{describe_upsets(meta.get('mbu', 1))}: {status.done:,} of {status.planned:,} injections"
              + ("" if status.complete else " [yellow](incomplete: `rampart fi resume`)[/]"))
    short = {Outcome.MASKED: "masked", Outcome.SDC: "SDC", Outcome.DETECTED_RECOVERABLE: "det-rec",
             Outcome.DETECTED_UNRECOVERABLE: "det-unrec", Outcome.HANG: "hang", Outcome.LATENT: "latent",
             Outcome.DELAYED: "delayed"}
    level = f"{100 * status.confidence:g}%"
    table = Table("block", "inj.", *(short[o] for o in Outcome),
                  f"unmasked (stratified), {level} CI" if status.rates_stratified else f"unmasked, {level} CI")
    for block in [*status.blocks.values(), status.overall]:
        unmasked = status.unmasked(block)
        interval = "-" if unmasked is None else f"{unmasked.estimate:.1%} [{unmasked.low:.1%},{unmasked.high:.1%}]"
        name = "[bold]all" if block is status.overall else block.block
        table.add_row(name, f"{block.injections:,}", *(f"{block.counts[o]:,}" for o in Outcome), interval)
    out.print(table)
    if status.stratified and meta.get("strata") != "none":
        out.print(f"overall rates over the strata ({describe_sampling(meta)}; {status.strata} strata weighted by "
                  f"their populations), {level} intervals:")
        for name, est in status.stratified.items():
            out.print(f"  {name} {est.estimate:.2%} [{est.low:.2%}, {est.high:.2%}] (half-width {est.half_width:.2%})")
    elif status.is_stratified and status.done:
        out.print("overall stratified rates: not yet (a stratum has no injection)")
    if status.meta.get("liveness"):
        n = sum(status.analytic.values())
        mix = ", ".join(f"{o.name.lower()} {k:,}" for o, k in status.analytic.items() if k)
        out.print(f"liveness analysis: {n:,} of {status.done:,} injections classified without simulating"
                  + (f" ({mix})" if mix else ""))
    if status.rounds:
        last = status.rounds[-1]
        state = "margin met" if last.done else "in progress"
        out.print(f"iterative: {len(status.rounds)} rounds, {status.done:,} injections, {state} "
                  f"(target +/-{meta['margin']:g} at {100 * meta['confidence']:g}%)")
    timing = meta.get("timing")
    if timing:
        rate = status.done / timing["worker_seconds"] * 3600 if timing["worker_seconds"] > 0 else 0
        out.print(f"simulation time: {timing['wall_seconds']:,.1f} s wall, {timing['worker_seconds']:,.1f} "
                  f"worker-s ({rate:,.0f} injections per core-hour)")


def print_report_paths(paths: dict) -> None:
    click.echo(f"report: {paths['html']}  (JSON {paths['json'].name}, FMEDA CSV {paths['csv'].name})")


@fi.command("run")
@click.argument("design")
@_design_options
@output_file_option("--db", "db", "Campaign database (SQLite) to write; a campaign already in it is resumed.",
                    required=True)
@click.option("--model", metavar="NET.tflite", default=None,
              help="Inject into the NPU running this int8 .tflite network (Vela-compiled for the config) instead "
                   "of a built-in workload; its output tensor is what is compared.")
@click.option("--input", "model_input", metavar="X.npy", default=None,
              help="With --model: the network's int8 input (default: a seeded random input).")
@click.option("--second-inference", "second", is_flag=True,
              help="After the faulty inference, run the network again (the way the part runs in the field): a "
                   "fault whose corruption is overwritten before use is masked, one that corrupts the second "
                   "inference's output is DELAYED, only what neither shows nor is overwritten stays latent. Faults "
                   "are injected during the first inference only.")
@click.option("--second-input", metavar="X.npy", default=None,
              help="With --second-inference: the second inference's int8 input (default: the first one's).")
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
@click.option("--liveness", is_flag=True,
              help="Classify memory-bit faults without simulating them where the golden run decides them (the "
                   "word is overwritten before it is read: masked; never read again: latent); the database marks "
                   "them analytic. Memory ports are recorded once by a probe build of the design.")
@click.option("--cycles", "workload_cycles", type=click.IntRange(1), default=None,
              help="Workload length in cycles (default: the workload's own).")
@seed_option("Seed of the fault sample.")
@click.option("--workers", type=click.IntRange(1), default=None, help="Local worker processes (default: one per core).")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Run the batches on a Dask cluster (e.g. tcp://host:8786) instead of local processes; results "
                   "are still committed here, failed batches are retried.")
@click.option("--report", "report_dir", type=click.Path(path_type=Path), metavar="DIR",
              help="Also write the ASIL report into this folder (created if missing).")
def run_cmd(design, config, workload, db, model, model_input, second, second_input, samples, margin, confidence,
            iterative, pilot, rates, per_block, exhaustive, strata, mbu, liveness, cycle_windows, workload_cycles, seed,
            workers, scheduler, report_dir):
    """Run a fault-injection campaign on DESIGN into --db (resumes it if the same campaign is already there).

    Give exactly one of --samples N (fixed size), --margin M (Leveugle's size for M, or with --iterative: rounds
    until M is met) or --exhaustive. One campaign runs on a database at a time: a second one is refused.
    """
    from faultinj.spec import campaign_spec

    spec = campaign_spec(design, config, workload, samples=samples, margin=margin, confidence=confidence,
                         iterative=iterative, pilot=pilot, rates=rates, per_block=per_block, exhaustive=exhaustive,
                         strata=strata, cycle_windows=cycle_windows, workload_cycles=workload_cycles, mbu=mbu,
                         seed=seed, model=model, input=model_input, liveness=liveness, second=second,
                         second_input=second_input)
    if report_dir is not None:
        output_folder(report_dir, "--report")
    if spec.leveugle is not None:
        population, size = spec.leveugle
        click.echo(f"Leveugle sample size for +/-{margin:g} at {confidence:.0%} over {population:,} faults: {size:,}")
    with _Progress(Path(db)) as progress:
        status = spec.run(db, workers, progress, scheduler)
    print_status(status)
    if report_dir is not None:
        from reports.campaign import campaign_report

        print_report_paths(campaign_report(db, report_dir))


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
    print_status(status)


def _confidence_option(func):
    return click.option("--confidence", type=click.FloatRange(0.5, 1, max_open=True), default=None,
                        help="Confidence of every interval and verdict (default: the campaign's own: its "
                             "--confidence when sized by --margin or run --iterative, else 0.95).")(func)


def _fit_config_option(func):
    return click.option("--fit-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
                        metavar="FILE.toml",
                        help="FIT assumptions: technology, raw FIT per bit, per-block overrides, outcome -> ISO "
                             "class table, PMHF dual-point term (format: faultinj/fit.py); default: the "
                             "generic-1000fit-mbit technology.")(func)


@fi.command("status")
@click.argument("db", type=click.Path(dir_okay=False))
@_confidence_option
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON (schema: reports/SCHEMA.md).")
def status_cmd(db, confidence, as_json):
    """Per-block outcome counts and rates with Wilson intervals of the campaign in DB."""
    from faultinj.campaign import campaign_status

    status = campaign_status(db, confidence)
    if as_json:
        import json

        from reports.status import status_document

        click.echo(json.dumps(status_document(status), indent=1))
    else:
        print_status(status)


@fi.command("report")
@click.argument("db", type=click.Path(dir_okay=False))
@output_folder_option("Folder for the report (created if missing); its files are named after DB.", default=".")
@_confidence_option
@_fit_config_option
@click.option("--worst", type=click.IntRange(0), default=20, show_default=True,
              help="Worst injections (SDC, hang, detected-unrecoverable) to list, each with its replay command.")
@click.option("--extras", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="FILE.json",
              help="Study sections to add: a JSON object with \"protection_plan\" and/or \"pareto\" (shapes in "
                   "reports/SCHEMA.md).")
def report_cmd(db, out_dir, confidence, fit_config, worst, extras):
    """Write the ASIL report (HTML with figures, JSON, FMEDA CSV) of the campaign in DB."""
    from faultinj.campaign import campaign_meta
    from faultinj.fit import load_fit_config
    from reports.campaign import campaign_report, load_extras

    campaign_meta(db)   # a missing or foreign database is refused before the folder is made
    fit = load_fit_config(fit_config)
    sections = load_extras(extras) if extras is not None else None
    print_report_paths(campaign_report(db, output_folder(out_dir, "--output"), confidence=confidence, fit_config=fit,
                                       worst=worst, extras=sections))


@fi.command("replay")
@click.argument("db", type=click.Path(dir_okay=False))
@click.argument("injection_id", type=int)
@trace_option("FST waveform of the faulty run.")
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


@fi.command("study")
@click.argument("design", required=False, default=None)
@click.option("--configs", default=None, metavar="NAME[,NAME...]",
              help="Design configs (presets or .toml files), e.g. u55-32,u55-128.")
@click.option("--networks", default=None, metavar="NAME[,NAME...]",
              help="Workloads (`rampart fi workloads`), built-in NPU networks (`rampart run npu --help`) or "
                   ".tflite files; default: the design's first workload.")
@click.option("--model", default=None, metavar="X.tflite", help="Instead of --networks: one user network.")
@click.option("--target", default="ASIL-D", show_default=True, help="ASIL the protection plan must reach.")
@output_folder_option("Study folder (created if missing; an existing study in it is continued).", default="study")
@click.option("--samples", "-n", type=click.IntRange(1), default=None,
              help="Injections per campaign (baseline and each verification).")
@click.option("--margin", type=click.FloatRange(0, 0.5, min_open=True), default=None,
              help="Instead of --samples: size each campaign by Leveugle et al. for this error margin.")
@click.option("--confidence", type=click.FloatRange(0.5, 1, max_open=True), default=0.95, show_default=True,
              help="Confidence of the intervals, the conservative metrics and (with --margin) the sample size.")
@click.option("--liveness/--no-liveness", default=True, show_default=True,
              help="Classify memory faults the golden run decides without simulating them (`fi run --liveness`).")
@click.option("--second-inference/--single-inference", "second", default=None,
              help="Run a second inference after the faulty one (`fi run --second-inference`), so faults left in "
                   "the state are judged by the next inference; default: on for the NPU, off for other designs.")
@seed_option("Seed of the fault samples.")
@click.option("--workers", type=click.IntRange(1), default=None, help="Local worker processes (default: one per core).")
@click.option("--quick", is_flag=True, help="A small preset (mac_array 4x4 or npu u55-32 on its small conv, "
              "300 injections, no TMR, one verification round): what `rampart demo` runs.")
def study_cmd(design, configs, networks, model, target, out_dir, samples, margin, confidence, liveness, second, seed,
              workers, quick):
    """The ASIL study of DESIGN: per config x network, a baseline campaign, ISO 26262 metrics, an optimised
    protection plan, the protected rebuild and its verification by re-injection, and a report; one summary
    (study.json, study.md) in the output folder. A killed study continues where it stopped when run again.
    """
    from faultinj.study import (
        StudyRequest,
        check_request,
        describe,
        parse_list,
        quick_request,
        run_study,
        study_command,
    )
    from reports.campaign import campaign_report

    if model is not None and networks is not None:
        raise RampartError("give --networks or --model, not both")
    nets = (model,) if model is not None else (parse_list(networks, "--networks") if networks is not None else None)
    cfgs = parse_list(configs, "--configs") if configs is not None else None
    if samples is not None and margin is not None:
        raise RampartError("give --samples or --margin, not both")
    common = dict(target=target, confidence=confidence, liveness=liveness, second=second, seed=seed)
    if quick:
        req = quick_request(design or "mac_array", cfgs, nets, samples, margin, **common)
    else:
        if design is None:
            raise RampartError("give the DESIGN to study (e.g. npu), or --quick")
        if cfgs is None:
            raise RampartError("give --configs (e.g. u55-32,u55-128)")
        if nets is None:
            from faultinj.workload import default_workload

            nets = (default_workload(design),)
        if samples is None and margin is None:
            raise RampartError("give --samples N or --margin M")
        req = StudyRequest(design, cfgs, nets, samples=samples, margin=margin, **common)
    check_request(req)
    out = output_folder(out_dir, "--output")

    def report(db, folder, extras):
        return campaign_report(db, folder, confidence=confidence, extras=extras)

    doc = run_study(out, req, workers=workers, report=report, log=click.echo,
                    command=study_command(req, out))
    for line in describe(doc):
        click.echo(line)
    click.echo(f"summary: {out / 'study.json'}, {out / 'study.md'}")
