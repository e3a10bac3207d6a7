"""`rampart ngpc`: the neural-graphics processing cluster's applications (issue 17)."""
from pathlib import Path

import click

from base import RampartError
from rampart.options import config_option, seed_option


@click.group("ngpc")
def ngpc():
    """Neural-graphics workloads on the NGPC engines (grid encoding + fused MLP)."""


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
