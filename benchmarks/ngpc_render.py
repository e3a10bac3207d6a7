"""Scenes rendered through the Verilated NGPC neural-fields processor: PSNR per scene, bit-exactness, queries/s.

    .venv/bin/python benchmarks/ngpc_render.py [--size 128] [--scenes gia,nsdf,nerf] [--write BENCHMARKS.md]

Each scene with its CLI defaults (`rampart ngpc render SCENE --size N`: the scene's NFP preset and training steps;
networks trained on the CPU or loaded from ~/.cache/rampart/ngpc), every query of the render streamed through
``ngpc_nfp`` in the native harness. Builds are done (and cached) before the clock starts; queries/s is the wall time
inside the simulator's batch calls only.
"""
import argparse
import os
import sys
import time

from report import write_section

from drivers.ngpc_render import render_scene
from models.ngpc.scenes import SCENES
from rtl.designs import get_design
from sim.build import build


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--scenes", default="gia,nsdf,nerf")
    parser.add_argument("--write", metavar="BENCHMARKS.md")
    args = parser.parse_args()
    scenes = args.scenes.split(",")
    for scene in scenes:
        build("ngpc_nfp", SCENES[scene].preset)
    rows = []
    for scene in scenes:
        start = time.perf_counter()
        result = render_scene(scene, None, args.size, log=lambda line: None)
        rows.append((result, time.perf_counter() - start))
        print(scene, result.psnr, f"{result.queries_per_second:,.0f} q/s", flush=True)
    lines = [
        "## NGPC scenes rendered through the RTL (`benchmarks/ngpc_render.py`)", "",
        f"Measured {time.strftime('%Y-%m-%d')} on {sys.platform}, one run of "
        f"`.venv/bin/python benchmarks/ngpc_render.py --size {args.size}` (load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores at the end). Same as `rampart ngpc render SCENE --size {args.size}`: the network "
        "is trained on the CPU (numpy, Adam; or loaded from the cache), quantised to the NFP's formats and every "
        "query of the render streamed through the Verilated `ngpc_nfp`. PSNR over the RGB image in [0, 1]; "
        "'analytic' is the scene itself through the same renderer (for gia: the bilinear target image); "
        "bit-exact = RTL image and every raw output identical to the golden model's. Queries/s: wall time inside "
        "the simulator's batch calls.", "",
        "| scene | NFP preset | encoder | MLP | training (steps, CPU s) | activations | mean abs output error "
        "float-analytic / fixed-float | PSNR RTL vs float | RTL vs golden | float vs analytic | queries | "
        "queries/cycle | queries per wall s | render wall s |",
        "|---|---|---|---|---|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r, wall in rows:
        nfp = get_design("ngpc_nfp").config(r.preset)
        enc, mlp = nfp.encoder, nfp.mlp
        hashed = sum(lv.hashed for lv in enc.level_geometry)
        encoder = f"{enc.dims}-D hash L={enc.levels} F={enc.features} T=2^{enc.log2_table} ({hashed} hashed)"
        shape = " -> ".join([str(mlp.inputs)] + [str(o) for o, _ in mlp.layer_shapes])
        how = "cached" if r.train_cached else "trained now"
        p = r.psnr
        lines.append(
            f"| {r.scene} | {r.preset} | {encoder} | {shape}, {mlp.weight_bits}-bit weights | {r.train_steps}, "
            f"{r.train_cpu_seconds:.0f} ({how}) | Q.{r.act_frac} of {mlp.act_bits} bits | {r.field_error[0]:.4f} / "
            f"{r.field_error[1]:.5f} | {p['rtl_vs_float']:.2f} dB | "
            f"{'inf dB, identical' if r.rtl_equals_golden else 'NOT identical'} | {p['float_vs_truth']:.2f} dB | "
            f"{r.queries:,} | {r.queries_per_cycle:.3f} | {r.queries_per_second:,.0f} | {wall:.1f} |")
    lines += [
        "",
        "Formats: positions 16-bit unsigned fractions of the unit square / cube; tables, features, activations and "
        "outputs signed 16-bit on one scale (`Q.n` above, chosen per network by calibration); 12-bit weights with 10 "
        "fraction bits, each layer scaled by a power of two (undone when dequantising; `models/ngpc/quantize.py`). "
        "Output channels: the MLP engine's 16 outputs, one pass per query: RGB = outputs 0-2 (gia), SDF = output 0 "
        "(nsdf), occupancy - 0.05 and RGB = outputs 0-3 (nerf; density = 40 max(output 0, 0)). gia's image is "
        "scikit-learn's bundled `china.jpg` (central square, resized to 256 x 256; no network access). nsdf is "
        "sphere-traced (up to 64 steps, one batch per step of the rays still marching, normals from 6 more "
        "queries per hit); nerf is ray-marched with 48 samples per ray through the cube.",
    ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(args.write, "ngpc_render", body)
    if not all(r.rtl_equals_golden for r, _ in rows):
        sys.exit("a render was not bit-exact")


if __name__ == "__main__":
    main()
