"""`rampart synth`: build a design's bitstream for an FPGA board and show its utilisation and fmax.

Attach with ``main.add_command(synth)``; errors are RampartError, which the rampart group turns into one line.
"""
from pathlib import Path

import click

from rampart.options import config_option, output_folder, output_folder_option
from rtl.boards import BOARDS

_HELP = """Synthesise, place and route DESIGN for an FPGA board and report its resource use and fmax.

The design sits in a harness: its inputs come from an LFSR and its outputs are XOR-reduced onto an LED, so nothing
is optimised away; the numbers include that harness (its flip-flops are shown). The flow is Yosys -> nextpnr ->
ecppack/icepack from the YoWASP wheels; expect 30 s to a few minutes. Nothing is programmed. fmax is nextpnr's
post-route estimate; the board clock stays the timing target.

Example: rampart synth mac_array --board ulx3s-85f -c 4x4 -o build/mac-ulx3s

\b
Boards:
""" + "\n".join(f"  {name:<12} {board.summary}" for name, board in BOARDS.items())


@click.command("synth", help=_HELP)
@click.argument("design")
@click.option("--board", "-b", "board_name", required=True, metavar="BOARD",
              help=f"Target board ({' | '.join(BOARDS)}).")
@config_option()
@output_folder_option("Build folder (default: build/synth/DESIGN-CONFIG-BOARD); earlier products there are replaced.")
def synth(design, board_name, config, out_dir):
    from rich.table import Table

    from rampart.console import console as make_console
    from rtl.boards import get_board
    from rtl.designs import get_design
    from sim.synth import synth as run_synth

    get_design(design).config(config)   # an unknown design, preset or board is refused before a folder is made
    get_board(board_name)
    if out_dir is None:
        config_name = Path(config).stem if config else "default"
        out_dir = Path("build") / "synth" / f"{design}-{config_name}-{board_name}"
    output_folder(out_dir, "--output")
    console = make_console()
    with console.status(f"building {design} for {board_name} in {out_dir} ..."):
        result = run_synth(design, config, board_name, out_dir)

    table = Table("resource", "used", "available", "%", title=f"{design} on {result.board}")
    for r in result.resources:
        table.add_row(r.name, str(r.used), str(r.available), f"{r.percent:.1f}")
    console.print(table)
    verdict = "[green]meets[/green]" if result.timing_met else "[red]misses[/red]"
    console.print(f"fmax {result.fmax_mhz:.2f} MHz: {verdict} the {result.clock_mhz:g} MHz board clock")
    console.print(f"harness adds {result.harness_ff} FFs (LFSR, XOR tree, LED, reset sync)")
    console.print(f"bitstream: {result.bitstream}", soft_wrap=True)
    console.print(f"log: {result.log}  ({result.seconds:.0f} s)", soft_wrap=True)
