"""`rampart snn`: application demos of the NeuroCoreX-like SNN core (golden model or RTL through the host API)."""
from pathlib import Path

import click


@click.group("snn")
def snn():
    """Spiking-core workloads.  Every demo runs on the bit-exact golden model (fast) or on the Verilated
    `neurocore_uart` RTL through its UART pins (`--backend rtl`, same host API, much slower, smaller sizes)."""


@snn.command("demo")
@click.argument("name", type=click.Choice(["pattern", "digits"]))
@click.option("--backend", type=click.Choice(["golden", "rtl"]), default="golden", show_default=True,
              help="golden: numpy bit-exact model; rtl: Verilated design over the simulated UART (cached build).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("snn_demo"),
              show_default=True, help="Directory for the PNG plots.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of stimuli, initial weights, split.")
@click.option("--check", is_flag=True,
              help="Also rerun the demo on the other backend and assert identical output spikes (bit-exactness).")
@click.option("--learning", type=click.Choice(["onchip", "host-assisted"]), default="onchip", show_default=True,
              help="digits, unsupervised variant: onchip = the core's own STDP + homeostasis (adaptive "
                   "thresholds, weight leak); host-assisted = STDP with host-side weight normalisation and "
                   "threshold adaptation after every training image.")
def demo_cmd(name, backend, out, seed, check, learning):
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
        cfg = demos.PatternConfig() if backend == "golden" else demos.RTL_PATTERN
        run = lambda b, o: demos.pattern_demo(b, seed, o, cfg)  # noqa: E731
    else:
        cfg = demos.DigitsConfig() if backend == "golden" else demos.RTL_DIGITS
        variants = ("supervised", "onchip" if learning == "onchip" else "unsupervised")
        run = lambda b, o: demos.digits_demo(b, seed, o, cfg, variants)  # noqa: E731
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
