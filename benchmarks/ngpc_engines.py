"""NGPC engines in the native harness: throughput (queries/cycle), latency, size and simulation speed, every run
checked bit-exact against the golden models.

    .venv/bin/python benchmarks/ngpc_engines.py [--queries 100000] [--write BENCHMARKS.md]

For each grid-encoder preset (the three encodings in 2-D and 3-D), the MLP engine (``ngpc_mlp`` w16 and w64) and the
neural-fields processor (``ngpc_nfp``): random integer tables / weights, ``--queries`` random positions streamed in one
``run_stimulus`` call with the output always ready, outputs compared with ``models.ngpc`` (golden). Builds are done
(and cached) before the clock starts; queries/cycle counts output transfers over the cycles from the first output to
the last.
"""
import argparse
import os
import sys
import time

import numpy as np
from report import write_section

from drivers.ngpc import EncoderHost, MlpHost, NfpHost
from models.ngpc.golden import encode_fixed
from models.ngpc.mlp import mlp_fixed, random_weights
from rtl.designs import get_design
from rtl.ngpc.encoder import LATENCY
from sim.build import build
from sim.harness import NativeSim

ENCODERS = ["hash2d-small", "hash3d-small", "dense2d-small", "dense3d-small", "lowres2d-small", "lowres3d-small"]


def _tables(config, rng):
    half = 1 << (config.feature_bits - 1)
    return [rng.integers(-half, half, (lv.params, config.features)) for lv in config.level_geometry]


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def encoder_row(preset, n, rng):
    cfg = get_design("ngpc_encoder").config(preset)
    b = build("ngpc_encoder", preset)
    tables = _tables(cfg, rng)
    u = rng.integers(0, 1 << cfg.pos_bits, (n, cfg.dims))
    with NativeSim(b) as sim:
        host = EncoderHost(sim, cfg)
        host.load_tables(tables)
        result, wall, cpu = _timed(lambda: host.encode(u))
    exact = np.array_equal(result.features, encode_fixed(cfg.grid_config, tables, u))
    hashed = sum(lv.hashed for lv in cfg.level_geometry)
    what = f"{cfg.grid} D={cfg.dims} L={cfg.levels} F={cfg.features} ({hashed} hashed)"
    return ("ngpc_encoder", preset, what, result, LATENCY, b, exact, wall, cpu, "-")


def mlp_row(preset, n, rng):
    cfg = get_design("ngpc_mlp").config(preset)
    b = build("ngpc_mlp", preset)
    weights = random_weights(cfg, rng)
    x = rng.integers(-(1 << 12), 1 << 12, (n, cfg.inputs))
    with NativeSim(b) as sim:
        host = MlpHost(sim, cfg)
        host.load_weights(weights)
        result, wall, cpu = _timed(lambda: host.run(x))
    exact = np.array_equal(result.features, mlp_fixed(cfg, weights, x))
    shape = " -> ".join([str(cfg.inputs)] + [str(o) for o, _ in cfg.layer_shapes])
    return ("ngpc_mlp", preset, shape, result, len(cfg.layer_shapes), b, exact, wall, cpu, cfg.macs)


def nfp_row(preset, n, rng):
    cfg = get_design("ngpc_nfp").config(preset)
    b = build("ngpc_nfp", preset)
    tables, weights = _tables(cfg.encoder, rng), random_weights(cfg.mlp, rng)
    u = rng.integers(0, 1 << cfg.encoder.pos_bits, (n, cfg.encoder.dims))
    with NativeSim(b) as sim:
        host = NfpHost(sim, cfg)
        host.load(tables, weights)
        result, wall, cpu = _timed(lambda: host.run(u))
    features = encode_fixed(cfg.encoder.grid_config, tables, u)
    features = np.pad(features, ((0, 0), (0, cfg.mlp.inputs - features.shape[1])))
    exact = np.array_equal(result.features, mlp_fixed(cfg.mlp, weights, features))
    return ("ngpc_nfp", preset, "encoder -> MLP", result, cfg.latency, b, exact, wall, cpu, cfg.mlp.macs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=100_000)
    parser.add_argument("--write", metavar="BENCHMARKS.md")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    designs = (("ngpc_encoder", ENCODERS), ("ngpc_mlp", ["w16", "w64"]), ("ngpc_nfp", ["hash2d-w16", "hash3d-w16"]))
    for design, presets in designs:
        for preset in presets:
            build(design, preset)
    rows = [encoder_row(p, args.queries, rng) for p in ENCODERS]
    rows += [mlp_row(p, args.queries, rng) for p in ("w16", "w64")]
    rows += [nfp_row(p, args.queries, rng) for p in ("hash2d-w16", "hash3d-w16")]
    lines = [
        "## NGPC engines (`benchmarks/ngpc_engines.py`)", "",
        f"Measured {time.strftime('%Y-%m-%d')} on {sys.platform}, one run of "
        f"`.venv/bin/python benchmarks/ngpc_engines.py --queries {args.queries}` (load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end; builds cached before timing). "
        f"{args.queries:,} random queries per row in one `run_stimulus` call, output always ready; "
        "bit-exact = every output equal to `models.ngpc` (golden).", "",
        "| design | preset | what | bit-exact | queries/cycle | latency (cycles) | MLP multipliers (MACs/query) "
        "| FF bits | memory bits | queries per wall s | CPU s |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for design, preset, what, result, latency, b, exact, wall, cpu, macs in rows:
        ff = sum(e.bits for e in b.state if e.kind == "ff")
        mem = sum(e.bits for e in b.state if e.kind == "mem")
        lines.append(f"| {design} | {preset} | {what} | {'yes' if exact else 'NO'} | {result.queries_per_cycle:.3f} "
                     f"| {latency} | {macs} | {ff:,} | {mem:,} | {len(result.features) / wall:,.0f} | {cpu:.2f} |")
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(args.write, "ngpc_engines", body)
    if not all(r[6] for r in rows):
        sys.exit("a run was not bit-exact")


if __name__ == "__main__":
    main()
