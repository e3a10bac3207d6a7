"""`rampart run`: run a workload on a simulated accelerator (`run npu`: a .tflite model on the Ethos-U55-class NPU)."""
from pathlib import Path

import click

from sim.errors import RampartError


@click.group("run")
def run():
    """Run a workload end to end on a simulated accelerator and check it against a reference."""


def _load_input(path: str):
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise RampartError(f"cannot read --input {path}: {str(e).splitlines()[0] if str(e) else 'not a .npy'}") from e


@run.command("npu")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--config", "-c", "config", default="u55-128", show_default=True, metavar="PRESET",
              help="NPU preset: u55-32, u55-64, u55-128 or u55-256 (Vela compiles for the same MACs/cycle).")
@click.option("--input", "-i", "input_path", type=click.Path(dir_okay=False), default=None,
              help="Input tensor as an int8 .npy of the model's input shape (batch axis optional); default: "
                   "uniformly random from --seed.")
@click.option("--output", "-o", "output_path", type=click.Path(dir_okay=False), default=None,
              help="Write the NPU's output tensor (int8, LiteRT's output shape) to this .npy file.")
@click.option("--trace", type=click.Path(dir_okay=False), default=None,
              help="Write an FST waveform of the whole run to this file (builds the tracing variant).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random input.")
@click.option("--max-cycles", type=click.IntRange(1), default=None,
              help="Watchdog: fail if the NPU is not done after this many cycles (default: 50x Vela's estimate, "
                   "at least 200,000).")
def npu_cmd(model, config, input_path, output_path, trace, seed, max_cycles):
    """Compile MODEL (.tflite, int8) with Vela, run it on the simulated NPU and compare with LiteRT.

    Vela's command stream, weights and the input are loaded into the NPU's external memory; the Verilated NPU runs
    to `done` (with a watchdog) and the output tensor is read back. Prints, per layer (or per kernel op), the
    measured cycles, useful MACs, MAC utilisation (useful MACs / (cycles x MACs per cycle)) and Vela's own estimate
    side by side, and whether the output is bit-exact with LiteRT's reference kernels. Models with operators that
    Vela leaves on the CPU are refused (the operators are named).
    """
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from models.npu.reference import ReferenceModel, ReferenceModelError
    from models.npu.runner import DEFAULT_CHUNK, run_on_npu

    path = Path(model)
    if not path.is_file():
        raise RampartError(f"no such model file: {model}")
    if trace and not trace.endswith(".fst"):
        raise RampartError(f"--trace writes FST; give a file name ending in .fst, not {trace!r}")
    x = _load_input(input_path) if input_path else None
    data = path.read_bytes()
    result = run_on_npu(data, config, x, trace=trace, seed=seed, max_cycles=max_cycles)
    try:
        want = ReferenceModel(data).run(result.input)
    except ReferenceModelError as e:
        raise RampartError(str(e).splitlines()[0]) from e
    exact = want.shape == result.output.shape and np.array_equal(want, result.output)
    if output_path:
        np.save(output_path, result.output)

    console = Console()
    if not console.is_terminal:
        console = Console(width=120)
    vela = result.vela
    console.print(f"[bold]{path.name}[/] on npu {config} ({result.macs_per_cycle} MACs/cycle): "
                  f"{len(result.kicks)} kernel op(s), output {tuple(result.output.shape)}")
    per_layer = bool(result.layers)
    table = Table("layer" if per_layer else "kernel op", "op", "NPU cycles", "MACs", "MAC util.", "Vela cycles",
                  "Vela util.", title="cycles per layer" if per_layer else "cycles per kernel op")
    if per_layer:
        for layer in result.layers:
            util = layer.mac_utilisation(result.macs_per_cycle)
            kicks = f" ({len(layer.kicks)} kicks)" if len(layer.kicks) > 1 else ""
            table.add_row(layer.name + kicks, layer.op, f"{layer.cycles:,}",
                          "-" if layer.macs is None else f"{layer.macs:,}", "-" if util is None else f"{util:.1%}",
                          "-" if layer.vela_cycles is None else f"{layer.vela_cycles:,}",
                          "-" if layer.vela_mac_util is None else f"{layer.vela_mac_util / 100:.1%}")
    else:
        for kick in result.kicks:
            table.add_row(f"#{kick.index}", kick.op, f"{kick.cycles:,}", "-", "-", "-", "-")
    first = result.kicks[0].issued_at if result.kicks else result.cycles
    table.add_row("(before the first kick)", "", f"{first:,}", "", "", "", "")
    table.add_row("[bold]total", "", f"{result.cycles:,}", f"{result.macs:,}", f"{result.mac_utilisation:.1%}",
                  "-" if vela is None else f"{vela.total_cycles:,}",
                  "-" if vela is None or not vela.total_cycles else
                  f"{vela.macs / (vela.total_cycles * result.macs_per_cycle):.1%}")
    console.print(table)
    console.print(f"DMA busy {result.dma_cycles:,} cycles; per-layer cycles run from one kick to the next "
                  f"(resolution {DEFAULT_CHUNK} cycles; up to two kernel ops overlap)")
    if output_path:
        console.print(f"output: {output_path}")
    if trace:
        console.print(f"waveform: {trace}")
    console.print(f"bit-exact: {'yes' if exact else 'no'} (vs LiteRT reference kernels)")
