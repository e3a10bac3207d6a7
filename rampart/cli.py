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


if __name__ == "__main__":
    main()
