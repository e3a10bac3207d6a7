"""Per network x NPU config: NPU cycles, Vela's estimate, ratio, MAC utilisation, DMA bytes, simulation wall time.

    .venv/bin/python benchmarks/npu_networks.py [--configs u55-128,...] [--networks resnet8,...] [--write BENCHMARKS.md]

The networks are ``models.npu.networks`` (``rampart run npu NAME``), each run once on a seeded random input through
``drivers.npu.run_on_npu``; Vela's compile and the Verilated build are done (and cached) before the clock starts, so
the wall time is the run: LiteRT graph inspection, loading memory, stepping to ``done`` with counter sampling every 32
cycles, reading back. Columns:

* NPU cycles: the ``cycles`` counter at ``done``; Vela: the ``cycles_total`` of Vela's summary CSV
  (``--verbose-performance``; ``VelaArtifact.perf.total_cycles``), ratio = NPU / Vela;
* MAC util.: useful MACs of the graph's CONV/DEPTHWISE/FC layers / (NPU cycles x MACs per cycle);
* DMA bytes: bytes the command stream's DMA_START commands copy (``DMA0_LEN``: weights and LUTs into the arena);
* bit-exact: the outputs against LiteRT's reference kernels.

A network with an operator the NPU does not implement yet stops with ``COMPUTE_FAULT (compute: UNSUPPORTED)``; its
row says so, and its ``mac_body`` (the prefix up to the first operator other than CONV/DEPTHWISE/FC, quantised as in
the whole network; ``models.npu.networks.mac_body``) is measured instead, as ``NAME (body)``.
"""
import argparse
import time

import numpy as np
from report import write_section

from drivers.npu import run_config, run_on_npu
from models.npu import cmdstream as cs
from models.npu import vela
from models.npu.networks import NETWORKS, mac_body, network
from models.npu.reference import ReferenceModel
from rtl.npu.controller import ErrorCode
from rtl.npu.kernel_op import ComputeError

CONFIGS = ("u55-32", "u55-64", "u55-128", "u55-256")


def dma_bytes(data: bytes, config: str) -> int:
    art = vela.compile_cached(data, config)
    return sum(k.reg("DMA0_LEN", 0) for k in cs.kicks(art.commands()) if k.name == "NPU_OP_DMA_START")


def warm(model, config: str) -> None:
    """Compile with Vela and build the NPU the run will use, so the wall time below is the simulation's."""
    from rtl.npu.config import PRESETS
    from sim.build import build

    build("npu", run_config(PRESETS[config], vela.compile_cached(model.data, config)))


def measure(model, config: str) -> dict:
    warm(model, config)
    t = time.perf_counter()
    run = run_on_npu(model.data, config, seed=0, check=False)
    wall = time.perf_counter() - t
    row = {"cycles": run.cycles, "vela": run.vela.total_cycles if run.vela else None, "wall": wall,
           "util": run.mac_utilisation, "dma": dma_bytes(model.data, config), "kicks": len(run.kicks),
           "mem": run.ext_mem_bytes}
    if not run.ok:
        unsupported = (run.error_code == ErrorCode.COMPUTE_FAULT
                       and run.compute_error == ComputeError.UNSUPPORTED.value)
        op = run.kicks[-1].op if run.kicks else "?"
        row["status"] = (f"UNSUPPORTED at kernel op #{len(run.kicks)} ({op})" if unsupported
                         else f"error {run.error_code} / {run.compute_error}")
        return row
    want = ReferenceModel(model.data).run_all(*run.inputs)
    exact = all(np.array_equal(g, w) for g, w in zip(run.outputs, want, strict=True))
    row["status"] = "bit-exact" if exact else "MISMATCH vs LiteRT"
    return row


def table(rows) -> str:
    lines = ["| network | config | NPU cycles | Vela cycles | NPU / Vela | MAC util. | DMA bytes | kernel ops "
             "| wall (s) | result |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, cfg, r in rows:
        done = r["status"] in ("bit-exact", "MISMATCH vs LiteRT")
        vela_cycles = "-" if r["vela"] is None else f"{r['vela']:,}"
        ratio = f"{r['cycles'] / r['vela']:.2f}" if done and r["vela"] else "-"
        util = f"{r['util']:.1%}" if done else "-"
        cycles = f"{r['cycles']:,}" + ("" if done else " (stopped)")
        lines.append(f"| {name} | {cfg} | {cycles} | {vela_cycles} | {ratio} | {util} | {r['dma']:,} | "
                     f"{r['kicks']} | {r['wall']:.2f} | {r['status']} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--networks", default=",".join(NETWORKS))
    ap.add_argument("--write", metavar="BENCHMARKS.md")
    args = ap.parse_args()
    rows = []
    for name in args.networks.split(","):
        for cfg in args.configs.split(","):
            r = measure(network(name), cfg)
            rows.append((name, cfg, r))
            print(name, cfg, r, flush=True)
            if r["status"].startswith("UNSUPPORTED") and mac_body(name) is not network(name):
                rb = measure(mac_body(name), cfg)
                rows.append((f"{name} (body)", cfg, rb))
                print(f"{name} (body)", cfg, rb, flush=True)
    text = table(rows)
    print(text)
    if args.write:
        body = (f"## NPU networks (`benchmarks/npu_networks.py`)\n\n{__doc__.split(chr(10), 3)[3].strip()}\n\n"
                f"Reproduce: `PYTHONPATH=$PWD .venv/bin/python benchmarks/npu_networks.py --write BENCHMARKS.md`"
                f"\n\n{text}\n")
        write_section(args.write, "npu_networks", body)


if __name__ == "__main__":
    main()
