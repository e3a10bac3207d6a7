"""NGPC scaling study: calibrate the system model from the RTL, then speed-ups at N = 8..64 and FPS at 4k / 8k.

    .venv/bin/python benchmarks/ngpc_scaling.py --measure      # RTL runs -> models/system/ngpc_measurements.json
    .venv/bin/python benchmarks/ngpc_scaling.py [--write BENCHMARKS.md]

``--measure`` streams ``--queries`` random queries through the cluster presets hash2d-x1, -x2, -x4 in the native
harness (output always ready), checks every result bit-exact against the golden models, and stores the steady-state
batches per cycle (batches over the cycles from the first result to the last), the latency (first result minus
first accepted batch) and the table write rate (entries over the cycles of ``ClusterHost.load``'s table part).
The study itself is :func:`models.system.ngpc.scaling_study` (assumptions in its module docstring).
"""
import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np
from report import write_section

from drivers.ngpc import ClusterHost
from models.ngpc.golden import encode_fixed
from models.ngpc.mlp import mlp_fixed, random_weights
from models.system.ngpc import MEASUREMENTS_PATH, ScalingAssumptions, load_measurements, scaling_study
from rtl.designs import get_design
from sim.build import build
from sim.harness import NativeSim

PRESETS = ("hash2d-x1", "hash2d-x2", "hash2d-x4")


def measure(preset: str, queries: int, rng) -> dict:
    config = get_design("ngpc").config(preset)
    enc, mlp, n = config.nfp.encoder, config.nfp.mlp, config.lanes
    tables = [rng.integers(-4096, 4096, (lv.params, enc.features)) for lv in enc.level_geometry]
    weights = random_weights(mlp, rng)
    u = rng.integers(0, 1 << enc.pos_bits, (queries, enc.dims))
    with NativeSim(build("ngpc", preset)) as sim:
        host = ClusterHost(sim, config)
        table_cycles = host.encoder.load_tables(tables)
        host.mlp.load_weights(weights)
        result = host.run(u)
    features = encode_fixed(enc.grid_config, tables, u)
    want = mlp_fixed(mlp, weights, np.pad(features, ((0, 0), (0, mlp.inputs - features.shape[1]))))
    if not np.array_equal(result.features[:queries], want):
        sys.exit(f"{preset}: results differ from the golden models")
    entries = sum(lv.params for lv in enc.level_geometry)
    return {"preset": preset, "lanes": n, "queries": queries,
            "batches_per_cycle": len(result.accepted) / (result.last_output - result.first_output + 1),
            "latency": result.first_output - result.first_accept, "table_entries_per_cycle": entries / table_cycles}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--measure", action="store_true", help="re-measure the RTL calibration")
    ap.add_argument("--queries", type=int, default=20000)
    ap.add_argument("--write", metavar="BENCHMARKS.md")
    args = ap.parse_args()
    if args.measure:
        rng = np.random.default_rng(1)
        runs = [measure(p, args.queries, rng) for p in PRESETS]
        data = {"command": f".venv/bin/python benchmarks/ngpc_scaling.py --measure --queries {args.queries}",
                "date": time.strftime("%Y-%m-%d"), "runs": runs,
                "batches_per_cycle": min(r["batches_per_cycle"] for r in runs),
                "latency": max(r["latency"] for r in runs),
                "table_entries_per_cycle": min(r["table_entries_per_cycle"] for r in runs)}
        MEASUREMENTS_PATH.write_text(json.dumps(data, indent=2) + "\n")
        print(json.dumps(data, indent=2))
    study = scaling_study()
    fitted = ScalingAssumptions(**study["assumptions"])
    per_frame = scaling_study(a=replace(fitted, tables_per_frame=True), fit=False)
    body = report(study, per_frame, load_measurements())
    print(body)
    if args.write:
        write_section(args.write, "ngpc_scaling", body)


def report(study: dict, per_frame: dict, m: dict) -> str:
    a = study["assumptions"]
    runs = ", ".join(f"{r['preset']} {r['batches_per_cycle']:.3f} batches/cycle, latency {r['latency']}"
                     for r in m["runs"])
    lines = [
        "## NGPC scaling study (`rampart ngpc scaling`, `benchmarks/ngpc_scaling.py`)", "",
        f"RTL calibration (`{m['command']}`, {m['date']}; every result bit-exact vs the golden models): {runs}; "
        f"table writes {m['table_entries_per_cycle']:.3f} entries/cycle. Model: `models/system/ngpc.py` (SimPy; "
        "assumptions A1-A6 in its docstring). Reproduce: `.venv/bin/python benchmarks/ngpc_scaling.py "
        "--write BENCHMARKS.md` or `rampart ngpc scaling -o out/ --json`.", "",
        f"Calibrated (A2): the GPU's encoding + MLP throughput = {a['gpu_lanes']:.3f} NGPC lanes at "
        f"{a['clock_hz'] / 1e9:g} GHz, fitted to the paper's 12x mean at N = 8; N = 16 / 32 / 64 are predictions. "
        f"Amdahl bound with the fused rest ({a['fused_rest_speedup']}x) and {a['enc_mlp_share']:.2%} "
        f"encoding + MLP: {study['amdahl_bound']:.1f}x.", "",
        "| N | paper (mean of 4 apps) | model mean | NeRF (gap 55.5x) | light app (gap 1.51x) | NeRF FPS 4k / 8k "
        "| light FPS 4k / 8k | mean, tables written every frame (A6) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row, pf in zip(study["rows"], per_frame["rows"], strict=True):
        lines.append(
            f"| {row['lanes']} | {row['paper_speedup']:.0f}x | {row['speedup_mean']:.1f}x | {row['speedup_nerf']:.1f}x "
            f"| {row['speedup_light']:.1f}x | {row['fps_nerf_4k']:.1f} / {row['fps_nerf_8k']:.1f} "
            f"| {row['fps_light_4k']:.0f} / {row['fps_light_8k']:.0f} | {pf['speedup_mean']:.1f}x |")
    g = study["gpu_fps"]
    lines += ["", f"GPU alone (A4): NeRF {g['nerf_4k']:.2f} / {g['nerf_8k']:.2f} FPS, light app {g['light_4k']:.1f} "
              f"/ {g['light_8k']:.1f} FPS at 4k / 8k. Paper: 4k at 30 FPS for NeRF, 8k at 120 FPS for the others."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
