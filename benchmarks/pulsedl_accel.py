"""PulseDL-II CNN accelerator: cycles per pulse over the parallelism (PEs x AUs per PE), and the SoC's breakdown.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/pulsedl_accel.py [--pulses 32] [--write BENCHMARKS.md]

The network is the trained ``models/pulse/data/pulse_cnn.tflite`` when present, else a fixed reference pulse CNN
(random weights; conv 1->8 k7 SAME ReLU, maxpool 2, conv 8->16 k5 SAME ReLU, maxpool 2, conv 16->16 k3 SAME ReLU,
maxpool 2, FC 128->32 ReLU, FC 32->2), int8 and 16x8 (same schedule, so the same cycles). Per config the
accelerator alone (fixture ``pulsedl_nn``) runs the pulses (images preloaded, each window written into bank 0):
accelerator cycles per pulse, MACs per cycle and the MAC utilisation (MACs / (cycles x PEs x AUs)); every output is
checked against LiteRT's reference kernels. On the default SoC, ``infer_pulses`` gives the CPU / accelerator /
ADC-wait split per pulse (firmware with the UART printing of the outputs).
"""
import argparse
import os
import sys
import time
from dataclasses import replace

import numpy as np
from report import write_section

from base import RampartError
from drivers.pulsedl import NnRunner, infer_pulses
from drivers.pulsedl_compile import compile_tflite
from drivers.pulsedl_nets import pulse_windows, random_pulse_cnn
from models.npu.reference import ReferenceModel
from rampart.cmd_run import PULSE_MODEL
from rtl.pulsedl.config import PulseDlConfig

REFERENCE_LAYERS = [
    dict(kind="conv", filters=8, k=7, stride=1, padding="SAME", activation="RELU"),
    dict(kind="maxpool", k=2, padding="VALID"),
    dict(kind="conv", filters=16, k=5, stride=1, padding="SAME", activation="RELU"),
    dict(kind="maxpool", k=2, padding="VALID"),
    dict(kind="conv", filters=16, k=3, stride=1, padding="SAME", activation="RELU"),
    dict(kind="maxpool", k=2, padding="VALID"),
    dict(kind="fc", units=32, activation="RELU"),
    dict(kind="fc", units=2, activation="NONE"),
]
CONFIGS = [(1, 4, 8192), (2, 2, 4096), (2, 4, 4096), (4, 4, 2048), (8, 4, 1024)]


def models():
    if PULSE_MODEL.is_file():
        data = PULSE_MODEL.read_bytes()
        return [("trained pulse_cnn.tflite", data, None)]
    return [(f"reference CNN {p}", random_pulse_cnn(7, p, layers=REFERENCE_LAYERS).data, p) for p in ("int8", "16x8")]


def quantized_windows(net, n: int, seed: int) -> np.ndarray:
    scale, zp = net.input_quant
    info = np.iinfo(net.input_dtype)
    return np.clip(np.rint(pulse_windows(n, seed=seed) / scale) + zp, info.min, info.max).astype(net.input_dtype)


def sweep(pulses: int):
    rows = []
    for pes, aus, kernel_rows in CONFIGS:
        cfg = replace(PulseDlConfig(), accel_pes=pes, accel_aus=aus, accel_kernel_rows=kernel_rows)
        runner = NnRunner(cfg)
        for label, data, _ in models():
            net = compile_tflite(data, cfg)
            runner.load(net)
            ref = ReferenceModel(data)
            windows = quantized_windows(net, pulses, seed=3)
            cycles, exact = [], 0
            for w in windows:
                out, c = runner.infer(w)
                cycles.append(c)
                exact += np.array_equal(out, ref.run_all(w.reshape(1, 1, -1, 1))[0].ravel())
            if len(set(cycles)) != 1:
                raise RampartError(f"cycles differ between pulses: {sorted(set(cycles))}")
            rows.append((pes, aus, label, net.macs, cycles[0], exact, len(windows)))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulses", type=int, default=32)
    parser.add_argument("--clock-mhz", type=float, default=100.0)
    parser.add_argument("--write", metavar="BENCHMARKS.md", help="replace this benchmark's section of that file")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = sweep(args.pulses)
    soc = []
    for label, data, _ in models():
        net = compile_tflite(data)
        _, stats = infer_pulses(data, quantized_windows(net, args.pulses, seed=4))
        soc.append((label, stats))
    lines = [
        "## PulseDL-II CNN accelerator: cycles per pulse vs parallelism, and the SoC's cycle breakdown",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {sys.platform} with `PYTHONPATH=$PWD .venv/bin/python "
        f"benchmarks/pulsedl_accel.py --pulses {args.pulses}` ({time.perf_counter() - start:.0f} s wall, load "
        f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end). Network: see the script's "
        "docstring; outputs checked against LiteRT's reference kernels on every pulse.",
        "",
        "| PEs x AUs | model | MACs/pulse | accelerator cycles/pulse | MACs/cycle | MAC utilisation | bit-exact |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for pes, aus, label, macs, cycles, exact, n in rows:
        lines.append(f"| {pes} x {aus} | {label} | {macs:,} | {cycles:,} | {macs / cycles:.2f} | "
                     f"{macs / cycles / (pes * aus):.1%} | {exact}/{n} |")
    lines += ["", f"SoC (default 16k: 2 PEs x 4 AUs), {args.pulses} pulses through `infer_pulses` (firmware "
              "rtl/pulsedl/firmware/pulse.c; CPU cycles include printing the two outputs over the UART at 4 clocks "
              "per bit):", "",
              "| model | CPU cycles/pulse | accelerator | ADC wait | total | pulses/s at "
              f"{args.clock_mhz:g} MHz (assumed clock) |", "|---|---:|---:|---:|---:|---:|"]
    for label, s in soc:
        lines.append(f"| {label} | {s['cpu']:,.0f} | {s['accelerator']:,.0f} | {s['adc_wait']:,.0f} | "
                     f"{s['total']:,.0f} | {args.clock_mhz * 1e6 / s['total']:,.0f} |")
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(args.write, "pulsedl_accel", body)


if __name__ == "__main__":
    try:
        main()
    except RampartError as e:
        sys.exit(f"error: {e}")
