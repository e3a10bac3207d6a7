"""`rampart snn`: application demos of the NeuroCoreX-like SNN core (golden model or RTL through the host API)."""
import dataclasses
from pathlib import Path

import click

from base import RampartError
from rampart.options import config_option, output_file_option, output_folder, output_folder_option, seed_option

#: Input lines each demo drives (pattern: at least the pattern's; digits: one per pixel of the 8x8 images).
_DIGITS_INPUTS = 64


@click.group("snn")
def snn():
    """Spiking-core workloads.  Every demo runs on the bit-exact golden model (fast) or on the Verilated
    `neurocore_uart` RTL through its UART pins (`--backend rtl`, same host API, much slower, smaller sizes)."""


def _demo_config(name: str, cfg, config):
    """The demo's sizes ``cfg`` with the core shape of the NeuroCore config ``config`` (a preset of design
    `neurocore` or a TOML file); ``None`` keeps the demo's own 64 x 64 core."""
    if config is None:
        return cfg
    from rtl.designs import get_design
    from rtl.neurocore.config import NeuroCoreConfig

    core = get_design("neurocore").config(config)
    n, m = core.n_neurons, core.n_inputs
    built = {f.name: f.default for f in dataclasses.fields(NeuroCoreConfig) if f.name in ("lanes", "trace_bits")}
    if {k: getattr(core, k) for k in built} != built:
        raise RampartError(f"-c {config}: the demos build the core with lanes={built['lanes']} and "
                           f"trace_bits={built['trace_bits']}, not lanes={core.lanes}, trace_bits={core.trace_bits}")
    if name == "pattern":
        if m < cfg.n_pat or n < cfg.n_active:
            raise RampartError(f"-c {config}: the pattern demo needs at least {cfg.n_pat} inputs and {cfg.n_active} "
                               f"neuron(s); this core has {n} neurons x {m} inputs")
        return dataclasses.replace(cfg, n_core=n, n_inputs=m)
    if m != _DIGITS_INPUTS or n < 10:
        raise RampartError(f"-c {config}: the digits demo needs {_DIGITS_INPUTS} inputs (one per pixel) and at least "
                           f"10 neurons; this core has {n} neurons x {m} inputs")
    return dataclasses.replace(cfg, n_core=n)


@snn.command("demo")
@click.argument("name", type=click.Choice(["pattern", "digits"]))
@config_option("The core's shape: a preset of design `neurocore` (e.g. 64x64, 256x256) or a TOML file; the pattern "
               "demo uses its neurons and inputs, the digits demo its neurons (it needs 64 inputs); default: the "
               "demos' 64x64.")
@click.option("--backend", type=click.Choice(["golden", "rtl"]), default="golden", show_default=True,
              help="golden: numpy bit-exact model; rtl: Verilated design over the simulated UART (cached build).")
@output_folder_option("Folder for the PNG plots (created if missing).", default="snn_demo")
@seed_option("Seed of stimuli, initial weights, split.")
@click.option("--check", is_flag=True,
              help="Also rerun the demo on the other backend and assert identical output spikes (bit-exactness).")
@click.option("--learning", type=click.Choice(["onchip", "host-assisted"]), default="onchip", show_default=True,
              help="digits, unsupervised variant: onchip = the core's own STDP + homeostasis (adaptive "
                   "thresholds, weight leak); host-assisted = STDP with host-side weight normalisation and "
                   "threshold adaptation after every training image.")
def demo_cmd(name, config, backend, out_dir, seed, check, learning):
    """Run demo NAME and write its plots.

    \b
    pattern  STDP finds a spatio-temporal pattern (24 of 64 inputs, 20 ms) repeated at random times in 20 Hz
             Poisson noise; one LIF neuron learns it.  Prints weights of pattern vs other inputs and the hit rate
             (presentations with a spike) vs false alarms, before and after training.
             Plots: pattern_weights.png, pattern_raster.png, pattern_selectivity.png.
    digits   sklearn 8x8 digits rate-coded on 64 inputs (stratified 70/30 split):
             supervised: softmax 64->10 trained offline in numpy, int8 weights, spiking inference;
             unsupervised: 64 hidden LIF neurons, STDP, lateral inhibition (negative recurrent weights),
             class-vote readout; --learning onchip (default): weight-dependent depression and adaptive
             thresholds run in the core, the host only presents images; --learning host-assisted: the host
             renormalises the weights and raises thresholds after every training image.
             Plots: digits_int8.png, digits_onchip_*.png or digits_stdp_*.png (weights, confusion).

    With --backend rtl the pattern demo is the full one (64x64 core, 40k training steps, about a minute); the
    digits demo shrinks to 60 training images (1 epoch) and 40 test images (every image crosses the simulated
    UART).  --check reruns the same sizes on the other backend and compares every output spike.
    """
    import time

    from drivers import snn_demos as demos

    start = time.monotonic()
    if name == "pattern":
        cfg = _demo_config(name, demos.PatternConfig() if backend == "golden" else demos.RTL_PATTERN, config)
        run = lambda b, o: demos.pattern_demo(b, seed, o, cfg)  # noqa: E731
    else:
        cfg = _demo_config(name, demos.DigitsConfig() if backend == "golden" else demos.RTL_DIGITS, config)
        variants = ("supervised", "onchip" if learning == "onchip" else "unsupervised")
        run = lambda b, o: demos.digits_demo(b, seed, o, cfg, variants)  # noqa: E731
    out = output_folder(out_dir, "--output")
    result = run(backend, out)
    click.echo(result.summary())
    if check:
        other = "rtl" if backend == "golden" else "golden"
        ref = run(other, None)
        same = demos.same_spikes(result.spikes, ref.spikes)
        click.echo(f"  {other} backend: {'identical' if same else 'DIFFERENT'} output spikes "
                   f"({ref.seconds:.1f} s)")
        if not same:
            raise SystemExit(1)
    click.echo(f"total {time.monotonic() - start:.1f} s")


@snn.command("compare", context_settings={"ignore_unknown_options": True})
@click.argument("script", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("script_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--target", type=click.Choice(["golden", "rtl"]), default="golden", show_default=True,
              help="NeuroCore target: the golden model or the Verilated RTL through its simulated UART.")
@click.option("--tau", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              help="van Rossum kernel time constant (ms).")
@click.option("--baud", type=click.IntRange(min=1), default=115_200, show_default=True,
              help="UART baud rate of the cost model.")
@click.option("--clock-mhz", type=click.FloatRange(min=0, min_open=True), default=25.0, show_default=True,
              help="Board clock of the cost model (the ULX3S runs the core at 25 MHz).")
@output_folder_option("Folder for the PNG plots (raster_<population>.png, distance.png).", default="snn_compare")
@output_file_option("--json", "json_file", "Also write the numbers as JSON to FILE.", suffix=".json", kind="JSON")
def compare_cmd(script, script_args, target, tau, baud, clock_mhz, out_dir, json_file):
    """Run the PyNN SCRIPT on pyNN.brian2 and on NeuroCore and report the gap.

    \b
    The script imports `pyNN.brian2` or `drivers.pynn` as its simulator (either works: both names point to the
    simulator being run); arguments after SCRIPT are passed to it.  NeuroCore runs first; Brian2 then gets the
    same Poisson spike trains.  Per population with recorded spikes: spike-count and first-spike-time
    differences, van Rossum distance per neuron, share of identical trains; the quantisation part of the gap
    (golden model vs the float model of the same registers, against the LSB error bound); the cycle cost model
    (step_cycles) in steps/s at the board clock and over the UART; the mapping report.
    """
    from drivers.pynn import compare

    out = output_folder(out_dir, "--output")
    result = compare.compare_script(script, target=target, tau=tau, clock_hz=clock_mhz * 1e6, baud=baud,
                                    argv=script_args)
    click.echo(result.summary())
    click.echo(result.mapping)
    for path in compare.plot_comparison(result, out):
        click.echo(f"  plot {path}")
    if json_file is not None:
        compare.write_json(result, Path(json_file))
        click.echo(f"  json {json_file}")
