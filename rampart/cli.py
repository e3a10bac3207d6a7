"""The `rampart` command line. Subcommands only parse arguments and call into rtl/, sim/, faultinj/, reports/."""
import sys

import click

from sim.errors import RampartError


class RampartGroup(click.Group):
    """Turns any RampartError raised by a subcommand into one clear line on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except RampartError as e:
            click.echo(f"rampart: error: {e}", err=True)
            sys.exit(2)


@click.group(cls=RampartGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """rampart: cycle-accurate accelerator simulation with soft-error fault injection and ISO 26262 reports.

    Designs are Amaranth components; they are turned into Verilog, Verilated into a cached shared library and driven
    by a native harness (fast, for workloads and fault injection) or cocotb (testbenches).
    """


@main.command("designs")
def designs_cmd():
    """List the designs and their configuration presets."""
    from rich.console import Console
    from rich.table import Table

    from rtl.designs import designs

    table = Table("design", "presets (default first)", "what it is")
    for entry in designs().values():
        presets = [entry.default] + [p for p in entry.presets if p != entry.default]
        table.add_row(entry.name, ", ".join(presets), entry.summary)
    Console().print(table)


def _config_option(func):
    return click.option("--config", "-c", "config", metavar="NAME|FILE.toml",
                        help="A preset (see `rampart designs`) or a TOML file; default: the design's default.")(func)


@main.command("build")
@click.argument("design")
@_config_option
def build_cmd(design, config):
    """Build DESIGN: Verilog, state map and Verilated library (cached; a second call is instant).

    Prints the build's files and, per block (first-level submodule), its Yosys cells, flip-flop bits and memory
    bits: the fault sites a campaign samples from.
    """
    import time

    from rich.console import Console
    from rich.table import Table

    from sim.build import build

    start = time.monotonic()
    result = build(design, config)
    elapsed = time.monotonic() - start
    console = Console()
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
@_config_option
@click.option("--cycles", "-n", type=click.IntRange(1), default=10000, show_default=True, help="Cycles to simulate.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random input stimulus.")
@click.option("--trace", type=click.Path(dir_okay=False), help="Write an FST waveform of the run to this file.")
def sim_cmd(design, config, cycles, seed, trace):
    """Simulate DESIGN for N cycles of random input stimulus in the native harness.

    Every input port gets a uniformly random value each cycle (reproducible from --seed); prints the simulation
    speed, a digest of the final state, and the final output values.
    """
    import time

    from sim.build import build
    from sim.crosscheck import random_stimulus
    from sim.harness import NativeSim

    if trace and not trace.endswith(".fst"):
        raise RampartError(f"--trace writes FST; give a file name ending in .fst, not {trace!r}")
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


if __name__ == "__main__":
    main()
