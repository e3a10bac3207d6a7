"""`rampart ngpc`: the neural-graphics processing cluster's applications (issue 17): scenes rendered through the RTL
engines and the cluster's scaling study."""
import json
from pathlib import Path

import click

from base import RampartError
from rampart.console import console as make_console
from rampart.options import config_option, output_file_option, output_folder, seed_option


@click.group("ngpc")
def ngpc():
    """NGPC: neural-graphics processing cluster (design `ngpc`): rendering through the RTL engines (grid encoding +
    fused MLP) and the scaling study."""


def _output_paths(output: str, scene: str) -> dict[str, Path]:
    """``-o out.png``: the RTL image there, the others beside it (``out_float.png`` ...); ``-o DIR``: a folder with
    ``<scene>.png``, ``<scene>_float.png`` ... ."""
    from base.paths import output_folder, writable_file

    path = Path(output)
    if path.suffix.lower() == ".png":
        image = writable_file(path, "--output", ".png", "a PNG image")
    else:
        image = output_folder(path, "--output") / f"{scene}.png"
    return {kind: image if kind == "rtl" else image.with_name(f"{image.stem}_{kind}.png")
            for kind in ("rtl", "float", "truth", "diff", "side")}


def _write_images(result, paths: dict[str, Path], gain: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    def to8(image):
        return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)

    diff = np.clip(np.abs(result.rtl - result.float_) * gain, 0, 1)
    for kind, image in (("rtl", result.rtl), ("float", result.float_), ("truth", result.truth), ("diff", diff)):
        plt.imsave(paths[kind], to8(image))
    p = result.psnr
    panels = ((result.truth, "analytic / image"), (result.float_, f"float network\n{p['float_vs_truth']:.1f} dB"),
              (result.rtl, f"RTL (ngpc_nfp)\n{p['rtl_vs_float']:.1f} dB vs float"),
              (diff, f"|RTL - float| x {gain:g}"))
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
    for ax, (image, title) in zip(axes, panels, strict=True):
        ax.imshow(to8(image), interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.suptitle(f"{result.scene} {result.size}x{result.size}, preset {result.preset}; RTL == golden: "
                 f"{'yes' if result.rtl_equals_golden else 'NO'}", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    fig.savefig(paths["side"], dpi=100)
    plt.close(fig)


@ngpc.command("render")
@click.argument("scene", type=click.Choice(["gia", "nsdf", "nerf"]))
@click.option("-o", "--output", "output", required=True, metavar="FILE.png|DIR",
              help="The RTL image (FILE.png; the float reference, analytic, difference and side-by-side images are "
                   "written beside it as FILE_float.png, FILE_truth.png, FILE_diff.png, FILE_side.png) or a folder "
                   "for SCENE.png, SCENE_float.png, ...")
@click.option("--size", type=click.IntRange(4, 1024), default=128, show_default=True,
              help="Image width and height in pixels.")
@config_option("An `ngpc_nfp` preset (see `rampart designs`) or TOML file whose encoder has the scene's dimensions "
               "(gia: 2-D, nsdf / nerf: 3-D); default: gia2d-w64 for gia, scene3d-w32 for nsdf and nerf.")
@click.option("--steps", type=click.IntRange(1), default=None,
              help="Training steps (default: the scene's; trained networks are cached under ~/.cache/rampart/ngpc).")
@seed_option("Seed of the training (initial parameters and samples).")
@click.option("--diff-gain", type=click.FloatRange(min=1), default=10.0, show_default=True,
              help="Factor applied to |RTL - float| in the difference image.")
def render_cmd(scene, output, size, config, steps, seed, diff_gain):
    """Render SCENE through the Verilated neural-fields processor and compare with the float reference.

    \b
    gia   scikit-learn's china.jpg fitted by a 2-D hash grid + MLP (RGB = 3 of the MLP's 16 outputs);
    nsdf  a torus + rounded box SDF fitted by a 3-D hash grid + MLP, sphere-traced and shaded;
    nerf  a density + colour volume (three striped soft spheres) fitted by a 3-D hash grid + MLP, ray-marched.

    The network is trained on the CPU (numpy, Adam) or loaded from the cache, quantised to the NFP's fixed-point
    formats, and every query of the render is streamed through the NFP in the native harness, in batches. Prints
    PSNR of the RTL image vs the float network and vs the golden model (bit-exact: inf), and the query rate.
    """
    import time

    from drivers.ngpc_render import render_scene

    paths = _output_paths(output, scene)
    start = time.perf_counter()
    result = render_scene(scene, config, size, steps, seed, log=click.echo)
    p = result.psnr
    how = "loaded from the cache" if result.train_cached else "trained"
    click.echo(f"{scene}: network {how} ({result.train_steps} steps; loss {result.loss_first:.3g} -> "
               f"{result.loss_last:.3g}, {result.train_cpu_seconds:.1f} CPU s); activations Q.{result.act_frac}")
    click.echo(f"  outputs on sample points: mean |float - analytic| {result.field_error[0]:.4g}, "
               f"mean |fixed - float| {result.field_error[1]:.4g}")
    click.echo(f"  PSNR RTL vs float   {p['rtl_vs_float']:.2f} dB")
    click.echo(f"  PSNR RTL vs golden  {p['rtl_vs_golden']:.2f} dB ("
               f"{'bit-exact: identical images and raw outputs' if result.rtl_equals_golden else 'NOT bit-exact'})")
    click.echo(f"  PSNR float vs analytic {p['float_vs_truth']:.2f} dB, RTL vs analytic {p['rtl_vs_truth']:.2f} dB")
    click.echo(f"  RTL: {result.queries:,} queries in {result.sim_seconds:.2f} s simulated "
               f"({result.queries_per_second:,.0f} queries/s), {result.queries_per_cycle:.3f} queries/cycle "
               f"while streaming, {result.cycles:,} cycles; total {time.perf_counter() - start:.1f} s")
    _write_images(result, paths, diff_gain)
    for kind, path in paths.items():
        click.echo(f"  {kind:<5} {path}")
    if not result.rtl_equals_golden:
        raise RampartError("the RTL render differs from the golden model's")


@ngpc.command("scaling")
@click.option("--lanes", default="8,16,32,64", show_default=True, help="Scaling factors N (comma-separated).")
@click.option("--clock-ghz", type=float, default=1.0, show_default=True, help="NGPC clock (assumption A1).")
@click.option("--bandwidth", type=float, default=936.0, show_default=True,
              help="Memory bandwidth NGPC shares, GB/s (A5; RTX 3090 DRAM).")
@click.option("--tables-per-frame", is_flag=True, help="Write the tables every frame at the RTL's rate (A6).")
@output_file_option("--plot", "plot", "Write the speed-up plot to this .png file.", ".png", "a PNG image")
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), default=None, metavar="FILE.png|DIR",
              help="The speed-up plot FILE.png with FILE.json beside it, or a folder for scaling.png and scaling.json.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
def scaling(lanes, clock_ghz, bandwidth, tables_per_frame, plot, out_dir, as_json):
    """Speed-up of a GPU with an NGPC of N lanes over the GPU alone, next to the paper's 12/20/33/39x, and FPS at
    4k and 8k (SimPy model `models/system/ngpc.py`, calibrated from the RTL's cycle counts; every assumption is
    named in its docstring and in BENCHMARKS.md, section ngpc_scaling)."""
    from dataclasses import replace

    from models.system.ngpc import ScalingAssumptions, scaling_study

    try:
        ns = [int(v) for v in lanes.split(",") if v.strip()]
    except ValueError:
        raise RampartError(f"--lanes must be a comma-separated list of integers, not {lanes!r}") from None
    if not ns or any(not 1 <= n <= 4096 for n in ns):
        raise RampartError(f"--lanes must be integers in 1..4096, not {lanes!r}")
    for name, value in (("--clock-ghz", clock_ghz), ("--bandwidth", bandwidth)):
        if not value > 0:
            raise RampartError(f"{name} must be positive, not {value:g}")
    outputs = _scaling_outputs(out_dir)
    base = ScalingAssumptions(clock_hz=clock_ghz * 1e9, bandwidth_gbs=bandwidth)
    study = scaling_study(tuple(ns), base)      # A2 fitted with the tables resident
    if tables_per_frame:
        study = scaling_study(tuple(ns), replace(ScalingAssumptions(**study["assumptions"]), tables_per_frame=True),
                              fit=False)
    written = []
    if outputs is not None:
        png, doc = outputs
        doc.write_text(json.dumps(study, indent=1) + "\n")
        _plot(study, png)
        written += [png, doc]
    if plot:
        _plot(study, Path(plot))
        written.append(Path(plot))
    if as_json:
        click.echo(json.dumps({**study, "written": [str(p) for p in written]}, indent=1))
        return
    _table(study, written)


def _scaling_outputs(out_dir: Path | None) -> tuple[Path, Path] | None:
    """``-o scaling.png``: the plot there and ``scaling.json`` beside it; ``-o DIR``: both in that folder."""
    from base.paths import writable_file

    if out_dir is None:
        return None
    if out_dir.suffix.lower() == ".png":
        png = Path(writable_file(out_dir, "-o/--output", ".png", "a PNG image"))
        return png, png.with_suffix(".json")
    folder = output_folder(out_dir, "-o/--output")
    return folder / "scaling.png", folder / "scaling.json"


def _table(study, written):
    from rich.table import Table

    a = study["assumptions"]
    console = make_console()
    table = Table("N", "paper", "model mean", "NeRF", "light app", "NeRF FPS 4k / 8k", "light FPS 4k / 8k",
                  title=f"NGPC-N speed-up over the GPU (GPU enc+MLP = {a['gpu_lanes']:.3f} lanes, fitted at N = 8)")
    for r in study["rows"]:
        paper = "-" if r["paper_speedup"] is None else f"{r['paper_speedup']:.0f}x"
        table.add_row(str(r["lanes"]), paper, f"{r['speedup_mean']:.1f}x", f"{r['speedup_nerf']:.1f}x",
                      f"{r['speedup_light']:.1f}x", f"{r['fps_nerf_4k']:.1f} / {r['fps_nerf_8k']:.1f}",
                      f"{r['fps_light_4k']:.0f} / {r['fps_light_8k']:.0f}")
    console.print(table)
    console.print(f"Amdahl bound (fused rest {a['fused_rest_speedup']}x, enc+MLP {a['enc_mlp_share']:.2%}): "
                  f"{study['amdahl_bound']:.1f}x")
    for p in written:
        console.print(f"written: {p}")


def _plot(study, path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = study["rows"]
    ns = [r["lanes"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.plot(ns, [r["speedup_mean"] for r in rows], marker="o", label="model (SimPy, RTL-calibrated)")
    paper = [(r["lanes"], r["paper_speedup"]) for r in rows if r["paper_speedup"] is not None]
    if paper:
        ax.plot(*zip(*paper, strict=True), marker="s", linestyle="--", label="paper (mean of 4 apps)")
    ax.axhline(study["amdahl_bound"], color="grey", linewidth=0.8, label="Amdahl bound")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("scaling factor N (NFP lanes)")
    ax.set_ylabel("end-to-end speed-up over the GPU")
    ax.set_title("NGPC scaling (hash grid)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
