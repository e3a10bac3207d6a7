"""`rampart ngpc`: the neural-graphics processing cluster's application-level commands (the scaling study)."""
import json
from pathlib import Path

import click

from base import RampartError
from rampart.console import console as make_console
from rampart.options import output_file_option, output_folder, output_folder_option


@click.group("ngpc")
def ngpc():
    """NGPC: neural-graphics processing cluster (design `ngpc`)."""


@ngpc.command("scaling")
@click.option("--lanes", default="8,16,32,64", show_default=True, help="Scaling factors N (comma-separated).")
@click.option("--clock-ghz", type=float, default=1.0, show_default=True, help="NGPC clock (assumption A1).")
@click.option("--bandwidth", type=float, default=936.0, show_default=True,
              help="Memory bandwidth NGPC shares, GB/s (A5; RTX 3090 DRAM).")
@click.option("--tables-per-frame", is_flag=True, help="Write the tables every frame at the RTL's rate (A6).")
@output_file_option("--plot", "plot", "Write the speed-up plot to this .png file.", ".png", "a PNG image")
@output_folder_option("Folder for scaling.png and scaling.json.")
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
    if out_dir is not None and Path(out_dir).suffix.lower() == ".png":
        raise RampartError("-o/--output is a folder (scaling.png and scaling.json go into it); use --plot FILE.png "
                           "for a single plot file")
    base = ScalingAssumptions(clock_hz=clock_ghz * 1e9, bandwidth_gbs=bandwidth)
    study = scaling_study(tuple(ns), base)      # A2 fitted with the tables resident
    if tables_per_frame:
        study = scaling_study(tuple(ns), replace(ScalingAssumptions(**study["assumptions"]), tables_per_frame=True),
                              fit=False)
    written = []
    if out_dir is not None:
        folder = output_folder(out_dir, "-o/--output")
        (folder / "scaling.json").write_text(json.dumps(study, indent=1) + "\n")
        _plot(study, folder / "scaling.png")
        written += [folder / "scaling.png", folder / "scaling.json"]
    if plot:
        _plot(study, Path(plot))
        written.append(Path(plot))
    if as_json:
        click.echo(json.dumps({**study, "written": [str(p) for p in written]}, indent=1))
        return
    _table(study, written)


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
