"""`rampart model`: the SimPy system model (models/system/): predicted NPU latency and throughput from a .tflite
model, sweeps over NPU configs and memory bandwidth, and NeuroCore steps/s over a UART."""
import json
from pathlib import Path

import click

from base import RampartError
from rampart.console import console as make_console
from rampart.options import config_option, output_file_option, output_folder, output_folder_option

SWEEP_AXES = ("configs", "bandwidth")
DEFAULT_SWEEP_BANDWIDTHS = "1,2,3,4,6,8"


@click.group("model")
def model():
    """Predict with the SimPy system model (calibrated against the RTL; thousands of times faster than it)."""


def _cost_model():
    from models.system.npu_cost import COEFFS_PATH, NpuCostModel

    try:
        return NpuCostModel.load()
    except (OSError, ValueError, KeyError) as e:
        raise RampartError(f"cannot load the NPU cost model {COEFFS_PATH}: {e}; refit it with "
                           "`python benchmarks/system_model.py`") from None


def _preset_of(spec, cost) -> tuple[str, int, int]:
    """(calibrated preset name, bandwidth, latency) of ``-c``: the preset whose MAC array the config has."""
    from models.system.npu_ops import GEOMETRIES
    from rtl.designs import get_design

    cfg = get_design("npu").config(spec)
    for name, geo in GEOMETRIES.items():
        if (geo.macs, geo.ublock_h, geo.ublock_w, geo.ublock_d) == (cfg.macs, cfg.ublock_h, cfg.ublock_w,
                                                                     cfg.ublock_d):
            if name not in cost.configs:
                break
            return name, cfg.ext_bandwidth, cfg.ext_latency
    raise RampartError(f"no calibrated cost model for an NPU with {cfg.macs} MACs/cycle and ublock "
                       f"{cfg.ublock_h}x{cfg.ublock_w}x{cfg.ublock_d}; calibrated: {', '.join(cost.configs)}")


def _model_bytes(model_arg: str) -> tuple[bytes, str]:
    if model_arg == "digits":
        from models.npu.digits import digits_model

        return digits_model().data, "digits CNN"
    from models.npu.networks import NETWORKS, network

    if model_arg in NETWORKS:
        return network(model_arg).data, model_arg
    from drivers.npu import read_model_file

    return read_model_file(model_arg), Path(model_arg).name


def _ops(data: bytes, config: str):
    from models.npu import vela
    from models.system.npu import ops_from_artifact

    ops = ops_from_artifact(vela.compile_cached(data, config))
    if not any(op.is_kernel for op in ops):
        raise RampartError("Vela produced no NPU kernel op for this model")
    return ops


def _float_list(text: str, what: str, lo: float = 0.0) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise RampartError(f"{what} must be a comma-separated list of numbers, not {text!r}") from None
    if not values or any(not v > lo for v in values):
        raise RampartError(f"{what} must be numbers above {lo:g}, not {text!r}")
    return values


def _sweep_axes(text: str) -> set[str]:
    axes = {a.strip() for a in text.split(",") if a.strip()}
    unknown = axes - set(SWEEP_AXES)
    if not axes or unknown:
        raise RampartError(f"--sweep takes a comma-separated list of {', '.join(SWEEP_AXES)}, not {text!r}")
    return axes


def _positive(name: str, value, allow_zero: bool = False):
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise RampartError(f"{name} must be {'>= 0' if allow_zero else 'positive'}, not {value:g}")


@model.command("npu")
@click.argument("model_arg", metavar="MODEL", type=click.Path(dir_okay=False))
@config_option("An NPU preset (u55-32, u55-64, u55-128, u55-256) or a TOML file with one of their MAC arrays "
               "(its ext_bandwidth / ext_latency are the memory defaults); default: u55-128.")
@click.option("--bandwidth", type=float, default=None,
              help="External memory bandwidth in bytes per cycle (default: the config's ext_bandwidth, 8).")
@click.option("--latency", type=float, default=None,
              help="External memory latency in cycles (default: the config's ext_latency, 8).")
@click.option("--inflight", type=click.IntRange(1), default=1, show_default=True,
              help="Inferences in flight at once (the host sets up the next while the NPU runs one).")
@click.option("--inferences", type=click.IntRange(1), default=None,
              help="Inferences to simulate for throughput (default: 8 x --inflight).")
@click.option("--setup-cycles", type=float, default=0.0, show_default=True,
              help="Host CPU cycles per inference to set up the command stream and registers.")
@click.option("--interval", type=float, default=None,
              help="Issue an inference every this many cycles (default: back to back).")
@click.option("--clock-mhz", type=float, default=100.0, show_default=True,
              help="NPU clock, to turn cycles into time.")
@click.option("--sweep", "sweep", default=None, metavar="AXES",
              help="Sweep `configs`, `bandwidth` or `configs,bandwidth` and plot latency (with --plot or -o).")
@click.option("--bandwidths", default=DEFAULT_SWEEP_BANDWIDTHS, show_default=True,
              help="Bandwidths (bytes/cycle) of a bandwidth sweep.")
@output_file_option("--plot", "plot", "Write the sweep's plot to this .png file.", ".png", "a PNG image")
@output_folder_option("Folder for the sweep's sweep.png and sweep.json.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
def npu_cmd(model_arg, config, bandwidth, latency, inflight, inferences, setup_cycles, interval, clock_mhz, sweep,
            bandwidths, plot, out_dir, as_json):
    """Predict cycles and latency of MODEL (.tflite, int8; `digits`; or a network name: kws-dscnn, vww-mobilenetv1,
    resnet8, autoencoder, mobilenetv2, digits-pool) on the NPU with the SimPy system model.

    The model is compiled with Vela for the config; each op of its command stream costs what the cost model,
    fitted on RTL cycle counts (`python benchmarks/system_model.py`; its error against the RTL is in
    BENCHMARKS.md), says at the given memory bandwidth and latency. Prints the cycles per layer and per inference
    and, with several inferences, the throughput with --inflight inferences in flight.
    """
    for name, value in (("--bandwidth", bandwidth), ("--clock-mhz", clock_mhz)):
        _positive(name, value)
    for name, value in (("--latency", latency), ("--setup-cycles", setup_cycles), ("--interval", interval)):
        _positive(name, value, allow_zero=True)
    if out_dir is not None and Path(out_dir).suffix.lower() == ".png":
        raise RampartError("-o/--output is a folder (sweep.png and sweep.json go into it); use --plot FILE.png "
                           "for a single plot file")
    if (plot or out_dir) and not sweep:
        raise RampartError("--plot and -o/--output write a sweep's plot; add --sweep configs,bandwidth")
    cost = _cost_model()
    preset, cfg_bw, cfg_lat = _preset_of(config, cost)
    bandwidth = float(cfg_bw if bandwidth is None else bandwidth)
    latency = float(cfg_lat if latency is None else latency)
    data, title = _model_bytes(model_arg)
    if sweep:
        _sweep(data, title, preset, _sweep_axes(sweep), bandwidth, latency,
               _float_list(bandwidths, "--bandwidths"), cost, plot, out_dir, as_json, clock_mhz)
        return
    from models.system.npu import predict_npu, prepare_npu

    inferences = inferences or 8 * inflight
    ops = prepare_npu(_ops(data, preset), preset, cost)     # read once, predicted twice
    one = predict_npu(ops, preset, bandwidth=bandwidth, latency=latency, cost=cost)
    many = predict_npu(ops, preset, bandwidth=bandwidth, latency=latency, cost=cost, inferences=inferences,
                       inflight=inflight, setup_cycles=setup_cycles, interval=interval)
    if as_json:
        doc = {"model": title, **one.to_json(), "clock_mhz": clock_mhz,
               "latency_us": one.cycles / clock_mhz,
               "throughput": {"inferences": inferences, "inflight": inflight, "setup_cycles": setup_cycles,
                              "interval": interval, "makespan_cycles": many.makespan,
                              "mean_latency_cycles": many.mean_latency,
                              "inferences_per_second": many.throughput * clock_mhz * 1e6},
               "calibration": cost.meta}
        click.echo(json.dumps(doc, indent=1))
        return
    _print_npu(make_console(), title, one, many, clock_mhz)


def _print_npu(console, title, one, many, clock_mhz):
    from rich.table import Table

    console.print(f"[bold]{title}[/] on npu {one.config}, memory {one.bandwidth:g} bytes/cycle, latency "
                  f"{one.latency:g} cycles (SimPy system model, calibrated against the RTL)")
    table = Table("layer", "op", "predicted cycles", "share", title="one inference")
    for i, (kind, c) in enumerate(zip(one.layer_kinds, one.layer_cycles, strict=True)):
        table.add_row(str(i), kind, f"{c:,.0f}", f"{c / one.cycles:.1%}")
    table.add_row("(start)", "", f"{one.cycles - sum(one.layer_cycles):,.0f}", "")
    table.add_row("[bold]total", "", f"{one.cycles:,.0f}", f"{one.cycles / clock_mhz:,.2f} us at {clock_mhz:g} MHz")
    console.print(table)
    console.print(f"{many.inferences} inferences, {many.inflight} in flight: {many.makespan:,.0f} cycles, "
                  f"mean latency {many.mean_latency:,.0f} cycles, "
                  f"{many.throughput * clock_mhz * 1e6:,.1f} inferences/s at {clock_mhz:g} MHz")


def _sweep(data, title, preset, axes, bandwidth, latency, bandwidths, cost, plot, out_dir, as_json, clock_mhz):
    from models.system.npu import sweep_npu

    configs = list(cost.configs) if "configs" in axes else [preset]
    configs.sort(key=lambda c: int(c.split("-")[1]))
    bws = bandwidths if "bandwidth" in axes else [bandwidth]
    rows = sweep_npu({title: {c: _ops(data, c) for c in configs}}, configs, bws, latency=latency, cost=cost)
    for r in rows:
        r["latency_us"] = r["cycles"] / clock_mhz
    written = []
    if out_dir is not None:
        folder = output_folder(out_dir, "-o/--output")
        (folder / "sweep.json").write_text(json.dumps(rows, indent=1) + "\n")
        written += [folder / "sweep.png", folder / "sweep.json"]
        _plot(rows, title, latency, clock_mhz, folder / "sweep.png")
    if plot:
        _plot(rows, title, latency, clock_mhz, Path(plot))
        written.append(Path(plot))
    if as_json:
        click.echo(json.dumps({"model": title, "rows": rows, "written": [str(p) for p in written]}, indent=1))
        return
    from rich.table import Table

    console = make_console()
    table = Table("config", *[f"{b:g} B/cycle" for b in bws],
                  title=f"{title}: predicted cycles per inference (latency {latency:g} cycles)")
    for c in configs:
        table.add_row(c, *[f"{r['cycles']:,.0f}" for r in rows if r["config"] == c])
    console.print(table)
    for p in written:
        console.print(f"written: {p}")


def _plot(rows, title, latency, clock_mhz, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    configs = list(dict.fromkeys(r["config"] for r in rows))
    bws = sorted({r["bandwidth"] for r in rows})
    if len(bws) > 1:
        for c in configs:
            pts = sorted((r["bandwidth"], r["latency_us"]) for r in rows if r["config"] == c)
            ax.plot(*zip(*pts, strict=True), marker="o", label=c)
        ax.set_xlabel("external memory bandwidth (bytes/cycle)")
        ax.legend(title="NPU config")
    else:
        ax.bar(configs, [r["latency_us"] for r in rows])
        ax.set_xlabel(f"NPU config (memory {bws[0]:g} bytes/cycle)")
    ax.set_ylabel(f"latency per inference (us at {clock_mhz:g} MHz)")
    ax.set_title(f"{title}: SimPy prediction, memory latency {latency:g} cycles", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)


@model.command("snn")
@config_option("A NeuroCore preset (4x4, 16x16, 64x64, 256x256); default: 256x256.", default="256x256")
@click.option("--steps", type=click.IntRange(1), default=1000, show_default=True, help="Time steps to run.")
@click.option("--activity", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Fraction of the neurons spiking per step.")
@click.option("--input-activity", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Fraction of the inputs spiking per step.")
@click.option("--learn/--no-learn", default=False, show_default=True, help="STDP on.")
@click.option("--no-inputs", is_flag=True, help="The host sends no input bitmaps in the RUN frames.")
@click.option("--baud", type=float, default=115_200, show_default=True, help="UART baud rate (8N1).")
@click.option("--clock-mhz", type=float, default=25.0, show_default=True, help="Core clock.")
@click.option("--max-payload", type=click.IntRange(8, 0xFFFF), default=512, show_default=True,
              help="Command frame payload bytes (the core's frame buffer).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
def snn_cmd(config, steps, activity, input_activity, learn, no_inputs, baud, clock_mhz, max_payload, as_json):
    """Predict steps/s of a NeuroCore workload driven over its UART at a baud rate (SimPy system model: the
    engine's exact cycles per step plus the framed UART protocol)."""
    from models.system.neurocore import PRESETS, SnnWorkload, predict_snn

    if config not in PRESETS:
        raise RampartError(f"unknown NeuroCore preset {config!r}; one of: {', '.join(PRESETS)}")
    for name, value in (("--baud", baud), ("--clock-mhz", clock_mhz)):
        _positive(name, value)
    shape = PRESETS[config]
    if clock_mhz * 1e6 / baud < 2:
        raise RampartError(f"--baud {baud:g} needs at least 2 clock cycles per bit at {clock_mhz:g} MHz")
    w = SnnWorkload(steps, activity * shape.n_neurons, input_activity * shape.n_inputs, learn=learn,
                    stream_inputs=not no_inputs)
    p = predict_snn(shape, w, baud=baud, clock_hz=clock_mhz * 1e6, max_payload=max_payload)
    if as_json:
        click.echo(json.dumps({"config": config, "activity": activity, "input_activity": input_activity,
                               "learn": learn, **p.to_json()}, indent=1))
        return
    console = make_console()
    console.print(f"[bold]NeuroCore {config}[/] over a {baud:,.0f} baud UART at {clock_mhz:g} MHz: {steps:,} steps, "
                  f"{activity:.1%} neurons / {input_activity:.1%} inputs spiking, STDP {'on' if learn else 'off'}")
    console.print(f"  {p.steps_per_second:,.1f} steps/s ({p.cycles / steps:,.0f} cycles per step: engine "
                  f"{p.engine_cycles / steps:,.0f}, UART {p.link_cycles / steps:,.0f})")
    console.print(f"  engine alone: {p.engine_steps_per_second:,.0f} steps/s; the UART is "
                  f"{p.link_cycles / p.cycles:.0%} of the time")
