"""`rampart synth`: build a design's bitstream for an FPGA board and show its utilisation and fmax.

Attach with ``main.add_command(synth)``; errors are RampartError, which the rampart group turns into one line.
"""
from pathlib import Path

import click

from rtl.boards import BOARDS

_HELP = """Synthesise, place and route DESIGN for an FPGA board and report its resource use and fmax.

The design sits in a harness: its inputs come from an LFSR and its outputs are XOR-reduced onto an LED, so nothing
is optimised away; the numbers include that harness (its flip-flops are shown). The flow is Yosys -> nextpnr ->
ecppack/icepack from the YoWASP wheels; expect 30 s to a few minutes. Nothing is programmed. fmax is nextpnr's
post-route estimate; the board clock stays the timing target.

Example: rampart synth mac_array --board ulx3s-85f --config 4x4

\b
Boards:
""" + "\n".join(f"  {name:<12} {board.summary}" for name, board in BOARDS.items())


@click.command("synth", help=_HELP)
@click.argument("design")
@click.option("--board", "-b", "board_name", required=True, metavar="BOARD",
              help=f"Target board ({' | '.join(BOARDS)}).")
@click.option("--config", "-c", "config_spec", metavar="NAME|FILE.toml",
              help="A preset of the design or a TOML file (`base = \"<preset>\"` plus overrides); "
                   "default: the design's default preset.")
@click.option("--out", "-o", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Build folder (default: build/synth/DESIGN-CONFIG-BOARD); earlier products there are replaced.")
def synth(design, board_name, config_spec, out_dir):
    from rich.console import Console
    from rich.table import Table

    from sim.synth import synth as run_synth

    if out_dir is None:
        config_name = Path(config_spec).stem if config_spec else "default"
        out_dir = Path("build") / "synth" / f"{design}-{config_name}-{board_name}"
    console = Console()
    with console.status(f"building {design} for {board_name} in {out_dir} ..."):
        result = run_synth(design, config_spec, board_name, out_dir)

    table = Table("resource", "used", "available", "%", title=f"{design} on {result.board}")
    for r in result.resources:
        table.add_row(r.name, str(r.used), str(r.available), f"{r.percent:.1f}")
    console.print(table)
    verdict = "[green]meets[/green]" if result.timing_met else "[red]misses[/red]"
    console.print(f"fmax {result.fmax_mhz:.2f} MHz: {verdict} the {result.clock_mhz:g} MHz board clock")
    console.print(f"harness adds {result.harness_ff} FFs (LFSR, XOR tree, LED, reset sync)")
    console.print(f"bitstream: {result.bitstream}", soft_wrap=True)
    console.print(f"log: {result.log}  ({result.seconds:.0f} s)", soft_wrap=True)

