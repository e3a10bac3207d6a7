"""`rampart run`: run a workload on a simulated accelerator (`run npu`: a .tflite model, or the built-in digits CNN,
on the Ethos-U55-class NPU)."""
from pathlib import Path

import click

from base import RampartError
from rampart.console import console as make_console
from rampart.options import config_option, output_file_option, seed_option, trace_option

#: Built-in models that `rampart run npu` accepts instead of a .tflite path: the digits CNN (with its own options) and
#: the networks of models.npu.networks.
NETWORK_MODELS = ("kws-dscnn", "vww-mobilenetv1", "resnet8", "autoencoder", "mobilenetv2", "digits-pool")
BUILTIN_MODELS = ("digits", *NETWORK_MODELS)


@click.group("run")
def run():
    """Run a workload end to end on a simulated accelerator and check it against a reference."""



def _npu_config(spec):
    """The NPU config of ``-c`` (a preset name or TOML file), named by its preset when it equals one."""
    from rtl.designs import get_design

    entry = get_design("npu")
    cfg = entry.config(spec)
    for name, preset in entry.presets.items():
        if preset == cfg:
            return name
    return cfg


def _label(config) -> str:
    """A preset's name, or a custom config's fields that differ from the preset of its MACs per cycle."""
    from rtl.npu.config import PRESETS

    if isinstance(config, str):
        return config
    base = PRESETS[f"u55-{config.macs}"] if f"u55-{config.macs}" in PRESETS else None
    changed = [f"{k}={v}" for k, v in vars(config).items() if base is None or getattr(base, k) != v]
    return f"u55-{config.macs} ({', '.join(changed)})"


def _print_cycles(console, title: str, config: str, result) -> None:
    """The per-layer (or per-kernel-op) cycle table of one NPU run, Vela's estimate beside it."""
    from rich.table import Table

    from drivers.npu import DEFAULT_CHUNK

    vela = result.vela
    console.print(f"[bold]{title}[/] on npu {_label(config)} ({result.macs_per_cycle} MACs/cycle): "
                  f"{len(result.kicks)} kernel op(s), output {tuple(result.output.shape)}")
    per_layer = bool(result.layers)
    table = Table("layer" if per_layer else "kernel op", "op", "NPU cycles", "MACs", "MAC util.", "MAC active",
                  "AXI rd/wr beats", "Vela cycles", "Vela util.",
                  title="cycles per layer" if per_layer else "cycles per kernel op")

    def counters(pmu, cycles):
        """MAC_ACTIVE as a share of the cycles, and the memory beats (PMU counter deltas)."""
        if not pmu:
            return "-", "-"
        active = f"{pmu['MAC_ACTIVE'] / cycles:.1%}" if cycles else "-"
        return active, f"{pmu['AXI0_RD_DATA_BEAT_RECEIVED']:,} / {pmu['AXI0_WR_DATA_BEAT_WRITTEN']:,}"

    if per_layer:
        for layer in result.layers:
            util = layer.mac_utilisation(result.macs_per_cycle)
            kicks = f" ({len(layer.kicks)} kicks)" if len(layer.kicks) > 1 else ""
            table.add_row(layer.name + kicks, layer.op, f"{layer.cycles:,}",
                          "-" if layer.macs is None else f"{layer.macs:,}", "-" if util is None else f"{util:.1%}",
                          *counters(layer.pmu, layer.cycles),
                          "-" if layer.vela_cycles is None else f"{layer.vela_cycles:,}",
                          "-" if layer.vela_mac_util is None else f"{layer.vela_mac_util / 100:.1%}")
    else:
        for kick in result.kicks:
            table.add_row(f"#{kick.index}", kick.op, f"{kick.cycles:,}", "-", "-", *counters(kick.pmu, kick.cycles),
                          "-", "-")
    table.add_row("[bold]total", "", f"{result.cycles:,}", f"{result.macs:,}", f"{result.mac_utilisation:.1%}",
                  *counters(result.pmu, result.cycles),
                  "-" if vela is None else f"{vela.total_cycles:,}",
                  "-" if vela is None or not vela.total_cycles else
                  f"{vela.macs / (vela.total_cycles * result.macs_per_cycle):.1%}")
    console.print(table)
    console.print(f"DMA busy {result.dma_cycles:,} cycles; a layer's cycles run from the previous kernel op's "
                  f"completion to its own last one's (resolution {DEFAULT_CHUNK} cycles; up to two kernel ops overlap)")
    if result.pmu:
        pmu = result.pmu
        console.print("PMU: " + ", ".join(f"{name} {value:,}" for name, value in pmu.items())
                      + " (MAC active: cycles the MAC array fired a beat; AXI beats: 8-byte words)")


def _reference_outputs(data: bytes, xs) -> list:
    from models.npu.reference import ReferenceModel, ReferenceModelError

    try:
        return ReferenceModel(data).run_all(*xs)
    except ReferenceModelError as e:
        raise RampartError(str(e).splitlines()[0]) from e


def _exactness(data: bytes, want, got) -> str:
    """The "bit-exact" line: yes, or how many values differ and by how much, and (for a model with
    FULLY_CONNECTED layers) the one known cause of off-by-one outputs."""
    import numpy as np

    from models.npu.reference import ReferenceModel

    exact = [w.shape == o.shape and np.array_equal(w, o) for w, o in zip(want, got, strict=True)]
    detail = "" if len(exact) == 1 else f" ({sum(exact)} of {len(exact)} outputs)"
    line = f"bit-exact: {'yes' if all(exact) else 'no'}{detail} (vs LiteRT reference kernels)"
    if all(exact) or any(w.shape != o.shape for w, o in zip(want, got, strict=True)):
        return line
    diff = [np.abs(w.astype(np.int64) - o.astype(np.int64)) for w, o in zip(want, got, strict=True)]
    line += (f": {sum(int(np.count_nonzero(d)) for d in diff)} of {sum(d.size for d in diff)} values differ, "
             f"by at most {max(int(d.max()) for d in diff)}")
    if "FULLY_CONNECTED" in ReferenceModel(data).operators:
        line += (". The model has FULLY_CONNECTED layers: the U55 command stream rounds them twice (Vela's TFL "
                 "rounding mode, as for convolutions) and LiteRT's reference kernel once, so about 0.15 % of their "
                 "outputs differ by one (models/npu/SPEC.md, section 4)")
    return line


def _check_output_path(path: str | None) -> None:
    if path is not None and Path(path).suffix not in (".npy", ".npz"):
        raise RampartError(f"--save-output {path}: give a .npy file (one per output: NAME_0.npy, NAME_1.npy, .. "
                           "for several) or one .npz")


def _save_outputs(path: str, outputs) -> list[str]:
    """Write the outputs: one .npz (``output_0``, ``output_1``, ..), or one .npy (several: ``<stem>_<i>.npy``);
    returns the files written."""
    import numpy as np

    out = Path(path)
    try:
        if out.suffix == ".npz":
            np.savez(out, **{f"output_{i}": o for i, o in enumerate(outputs)})
            return [str(out)]
        if len(outputs) == 1:
            np.save(out, outputs[0])
            return [str(out)]
        files = [out.with_name(f"{out.stem}_{i}.npy") for i in range(len(outputs))]
        for f, o in zip(files, outputs, strict=True):
            np.save(f, o)
        return [str(f) for f in files]
    except OSError as e:
        raise RampartError(f"cannot write --save-output {path}: {e.strerror or e}") from e


def _check_model_options(builtin: bool, image, images, export) -> None:
    if builtin:
        return
    for name, value in (("--image", image), ("--images", images), ("--export", export)):
        if value is not None:
            raise RampartError(f"{name} only applies to the built-in model digits")


def _digits_input(model, image: int | None, input_path: str | None):
    """(int8 input, true label or None, description) for a single digits run."""
    from drivers.npu import read_input_file

    if input_path is not None:
        return read_input_file(input_path, "--input"), None, input_path
    index = 0 if image is None else image
    if not 0 <= index < len(model.split.y_test):
        raise RampartError(f"--image must be a held-out image index in 0..{len(model.split.y_test) - 1}, got {index}")
    x, label = model.held_out_input(index)
    return x, label, f"held-out image {index}"


def _export_digits(console, model, path: str) -> None:
    out = Path(path)
    try:
        model.tflite.write(out)
    except OSError as e:
        raise RampartError(f"cannot write --export {path}: {e.strerror or e}") from e
    console.print(f"digits CNN written to {out} ({len(model.data):,} bytes; int8 input 1x8x8x1 = pixel - 128, "
                  f"output 1x1x1x10 logits)")
    console.print(f"held-out accuracy ({len(model.split.y_test)} images): float {model.float_accuracy():.2%}, "
                  f"int8 (LiteRT) {model.int8_accuracy():.2%}")


def _digits_accuracy(console, model, config: str, n: int, max_cycles) -> None:
    """Run the first ``n`` held-out digits on the NPU; compare its accuracy with LiteRT int8 and the float model."""
    import numpy as np

    from drivers.npu import run_on_npu
    from models.npu.reference import ReferenceModel

    total = len(model.split.y_test)
    if not 1 <= n <= total:
        raise RampartError(f"--images must be in 1..{total} (the held-out digits), got {n}")
    ref = ReferenceModel(model.data)
    labels = model.split.y_test[:n]
    npu_pred, ref_pred, exact, cycles = [], [], 0, []
    with console.status(f"running {n} held-out digits on npu {_label(config)}") as status:
        for i in range(n):
            x, _ = model.held_out_input(i)
            result = run_on_npu(model.data, config, x, max_cycles=max_cycles)
            want = ref.run(x)
            exact += int(np.array_equal(want, result.output))
            npu_pred.append(int(np.argmax(result.output)))
            ref_pred.append(int(np.argmax(want)))
            cycles.append(result.cycles)
            status.update(f"running held-out digits on npu {_label(config)}: {i + 1}/{n}")
    float_pred = model.float_predictions(model.split.x_test[:n])
    console.print(f"[bold]digits CNN[/] on npu {_label(config)}: {n} held-out digit(s), "
                  f"{np.mean(cycles):,.0f} NPU cycles per image (min {min(cycles):,}, max {max(cycles):,})")
    for name, pred in (("NPU", npu_pred), ("LiteRT int8", ref_pred), ("float", float_pred)):
        acc = float(np.mean(np.asarray(pred) == labels))
        console.print(f"  accuracy {name:<12} {acc:7.2%}  ({int(round(acc * n))}/{n})")
    console.print(f"  all {total} held-out digits: float {model.float_accuracy():.2%}, "
                  f"int8 (LiteRT) {model.int8_accuracy():.2%}")
    console.print(f"bit-exact: {exact}/{n} outputs equal LiteRT's reference kernels; "
                  f"{sum(a == b for a, b in zip(npu_pred, ref_pred, strict=True))}/{n} same class")


def _run_one(console, data: bytes, title: str, config: str, x, *, trace, seed, max_cycles, output_path):
    """One NPU run with the cycle table; returns (NPU outputs, LiteRT outputs)."""

    from drivers.npu import run_on_npu

    result = run_on_npu(data, config, x, trace=trace, seed=seed, max_cycles=max_cycles)
    want = _reference_outputs(data, result.inputs)
    written = _save_outputs(output_path, result.outputs) if output_path else []
    _print_cycles(console, title, config, result)
    if result.ext_mem_bytes > _config_mem_bytes(config):
        console.print(f"external memory: {result.ext_mem_bytes // 1024**2} MiB host memory (the model does not fit "
                      f"the config's {_config_mem_bytes(config) // 1024:,} KiB)")
    if written:
        console.print(f"output{'s' if len(written) > 1 else ''}: {', '.join(written)}")
    if trace:
        console.print(f"waveform: {trace}")
    console.print(_exactness(data, want, result.outputs))
    return result.outputs, want


def _config_mem_bytes(config) -> int:
    from rtl.npu.config import PRESETS

    return (PRESETS[config] if isinstance(config, str) else config).ext_mem_bytes


@run.command("npu")
@click.argument("model", type=click.Path(dir_okay=False))
@config_option("An NPU preset (u55-32, u55-64, u55-128, u55-256) or a TOML file (`base = \"u55-64\"` plus field "
               "overrides, e.g. `ext_latency = 20`); Vela compiles for its MACs/cycle; default: u55-128.")
@click.option("--input", "-i", "input_paths", type=click.Path(dir_okay=False), multiple=True,
              help="Input tensor as an int8 .npy of the model's input shape (batch axis optional); repeat it once per "
                   "input of a multi-input model, in the model's input order; default: uniformly random from --seed "
                   "(digits: held-out image --image).")
@output_file_option("--save-output", "output_path", "Write the NPU's output tensors (int8, LiteRT's output shapes): "
                    "a .npy file (several outputs: NAME_0.npy, NAME_1.npy, .. in the model's output order) or one "
                    ".npz (arrays output_0, output_1, ..).")
@trace_option("Write an FST waveform of the whole run to this file (builds the tracing variant).")
@seed_option("Seed of the random input.")
@click.option("--max-cycles", type=click.IntRange(1), default=None,
              help="Watchdog: fail if the NPU is not done after this many cycles (default: 50x Vela's estimate, "
                   "at least 200,000).")
@click.option("--image", type=int, default=None,
              help="digits: run this held-out image (default 0) and print the predicted class and true label.")
@click.option("--images", type=int, default=None,
              help="digits: run the first N held-out images and report NPU accuracy vs LiteRT int8 vs float.")
@output_file_option("--export", "export", "digits: write the trained int8 model to this .tflite file (and its "
                    "held-out accuracy) and stop.", ".tflite", "a .tflite model")
def npu_cmd(model, config, input_paths, output_path, trace, seed, max_cycles, image, images, export):
    """Compile MODEL (.tflite, int8) with Vela, run it on the simulated NPU and compare with LiteRT.

    MODEL is a .tflite path or a built-in name (a file of that name is reached as ./NAME): `digits`, a 6-layer
    all-convolutional int8 CNN (strided convolutions, ReLU) for scikit-learn's 8x8 digits, trained in numpy on a fixed
    split and quantised post-training (trained once, then cached); or one of the networks of models.npu.networks:
    `kws-dscnn`, `vww-mobilenetv1`, `resnet8`, `autoencoder` (the MLPerf Tiny architectures, random weights),
    `mobilenetv2` (inverted residuals, RELU6, HARD_SWISH) and `digits-pool` (digits CNN with pooling and an FC +
    softmax head, trained); they take random inputs from --seed or --input.

    Vela's command stream, weights and the input are loaded into the NPU's external memory; the Verilated NPU runs
    to `done` (with a watchdog) and the output tensor is read back. Prints, per layer (or per kernel op), the
    measured cycles, useful MACs, MAC utilisation (useful MACs / (cycles x MACs per cycle)) and Vela's own estimate
    side by side, and whether the output is bit-exact with LiteRT's reference kernels. Models with operators that
    Vela leaves on the CPU are refused (the operators are named).
    """
    import numpy as np

    builtin = model == "digits"
    _check_model_options(builtin, image, images, export)
    _check_output_path(output_path)
    if builtin and len(input_paths) > 1:
        raise RampartError(f"the built-in model {model} has one input; got {len(input_paths)} --input files")
    input_path = input_paths[0] if input_paths else None
    if images is not None and (image is not None or input_path or output_path or trace):
        raise RampartError("--images runs many held-out digits; it cannot be combined with --image, --input, "
                           "--save-output or --trace")
    from drivers.npu import read_input_file, read_model_file

    config = _npu_config(config)
    console = make_console()
    if model in NETWORK_MODELS:
        from models.npu.networks import NETWORKS, network

        x = [read_input_file(p, "--input") for p in input_paths] if input_paths else None
        _run_one(console, network(model).data, NETWORKS[model].description, config, x, trace=trace, seed=seed,
                 max_cycles=max_cycles, output_path=output_path)
        return
    if not builtin:
        data = read_model_file(model)
        x = [read_input_file(p, "--input") for p in input_paths] if input_paths else None
        _run_one(console, data, Path(model).name, config, x, trace=trace, seed=seed, max_cycles=max_cycles,
                 output_path=output_path)
        return

    from models.npu.digits import digits_model

    digits = digits_model()
    if export is not None:
        _export_digits(console, digits, export)
        return
    if images is not None:
        _digits_accuracy(console, digits, config, images, max_cycles)
        return
    x, label, what = _digits_input(digits, image, input_path)
    (out,), (want,) = _run_one(console, digits.data, f"digits CNN ({what})", config, x, trace=trace, seed=seed,
                               max_cycles=max_cycles, output_path=output_path)
    from models.npu.digits import dequantize_input

    float_class = int(digits.float_predictions(dequantize_input(np.asarray(x).reshape(1, 8, 8, 1)))[0])
    truth = "" if label is None else f", true label {label}"
    console.print(f"predicted class: {int(np.argmax(out))} (NPU){truth}; LiteRT int8 {int(np.argmax(want))}, "
                  f"float {float_class}")


PULSE_MODEL = Path(__file__).resolve().parents[1] / "models" / "pulse" / "data" / "pulse_cnn.tflite"


def _pulse_windows_file(path: str, net):
    """The (N, W) windows of a .npy: the model's input dtype as is, floats quantised with its input scale."""
    import numpy as np

    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise RampartError(f"cannot read --windows {path}: {str(e).splitlines()[0] if str(e) else 'not a .npy'}") \
            from None
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.shape[1] != net.input_len:
        raise RampartError(f"--windows {path} must hold one (N, {net.input_len}) array")
    if x.dtype.kind == "f":
        scale, zp = net.input_quant
        info = np.iinfo(net.input_dtype)
        return np.clip(np.rint(x / scale) + zp, info.min, info.max).astype(net.input_dtype)
    if x.dtype != net.input_dtype:
        raise RampartError(f"--windows {path} holds {x.dtype}; give {np.dtype(net.input_dtype).name} samples (the "
                           f"model's input type) or floats to be quantised with its input scale")
    return x


@run.command("pulsedl")
@click.option("--model", "model_path", type=click.Path(dir_okay=False), default=None,
              help="A pulse-CNN .tflite (the PulseDL op subset); default: models/pulse/data/pulse_cnn.tflite if "
                   "present, else a random int8 pulse CNN from --seed.")
@click.option("--windows", "windows_path", type=click.Path(dir_okay=False), default=None,
              help="A .npy of (N, 64) windows (the model's input type, or floats quantised with its input scale); "
                   "default: N random CR-RC^4 pulses from --seed.")
@click.option("-n", "--pulses", type=click.IntRange(1, 10_000), default=16, show_default=True,
              help="Random pulses when no --windows is given.")
@click.option("--precision", type=click.Choice(["int8", "16x8"]), default="int8", show_default=True,
              help="Activation precision of the random model (ignored with --model or the trained model).")
@config_option("A PulseDL-II preset (16k, 4k, 64k) or a TOML file (e.g. `accel_pes = 4`).")
@click.option("--clock-mhz", type=click.FloatRange(min=0, min_open=True), default=100.0, show_default=True,
              help="Clock for pulses per second (assumed: the paper's reported 100 MHz, not our synthesis).")
@seed_option("Seed of the random model and pulses.")
@output_file_option("--save-output", "output_path", "Write the (N, 2) outputs (model output type) to this .npy.",
                    ".npy", "the outputs")
def pulsedl_cmd(model_path, windows_path, pulses, precision, config, clock_mhz, seed, output_path):
    """Run one batch of pulses through the PulseDL-II SoC: the RV32 firmware arms the ADC capture, the CNN
    accelerator runs the network on each window, the CPU prints the outputs over the UART.

    Prints the outputs of the first pulses, whether all equal LiteRT's reference kernels, and the cycles per pulse:
    CPU (firmware, UART printing included), accelerator, waiting for ADC samples, total, and pulses per second at
    --clock-mhz.
    """
    import numpy as np

    from drivers.npu import read_model_file
    from drivers.pulsedl import infer_pulses
    from drivers.pulsedl_compile import compile_tflite
    from drivers.pulsedl_nets import pulse_windows, random_pulse_cnn

    console = make_console()
    if model_path is not None:
        data, label = read_model_file(model_path), Path(model_path).name
    elif PULSE_MODEL.is_file():
        data, label = PULSE_MODEL.read_bytes(), f"{PULSE_MODEL.name} (trained)"
    else:
        data, label = random_pulse_cnn(seed, precision).data, f"random {precision} pulse CNN (seed {seed})"
    net = compile_tflite(data)
    if windows_path is not None:
        windows = _pulse_windows_file(windows_path, net)
    else:
        scale, zp = net.input_quant
        info = np.iinfo(net.input_dtype)
        raw = pulse_windows(pulses, seed=seed)
        windows = np.clip(np.rint(raw / scale) + zp, info.min, info.max).astype(net.input_dtype)
    outputs, stats = infer_pulses(data, windows, config=config or "16k")
    want = np.stack([_reference_outputs(data, [w.reshape(1, 1, -1, 1)])[0].ravel() for w in windows])
    exact = int(np.sum(np.all(outputs == want, axis=1)))
    console.print(f"[bold]{label}[/]: {len(windows)} pulse(s), {' -> '.join(net.op_names)}, "
                  f"{stats['macs_per_pulse']} MACs per pulse")
    for i, row in enumerate(outputs[:5]):
        console.print(f"  pulse {i}: outputs {list(int(v) for v in row)}")
    console.print(f"bit-exact with LiteRT's reference kernels: {exact}/{len(windows)}")
    per = stats["total"]
    console.print(f"cycles per pulse: CPU {stats['cpu']:.0f}, accelerator {stats['accelerator']:.0f}, ADC wait "
                  f"{stats['adc_wait']:.0f}, total {per:.0f} -> {clock_mhz * 1e6 / per:,.0f} pulses/s at "
                  f"{clock_mhz:g} MHz")
    if output_path:
        np.save(output_path, outputs)
    if exact != len(windows):
        raise RampartError(f"{len(windows) - exact} pulse(s) differ from LiteRT")
