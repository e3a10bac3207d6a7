"""Train, quantise and export the checked-in pulse CNN (models/pulse/data): ``python -m models.pulse.train``.

Writes ``pulse_cnn_float.npz`` (the float weights, already rounded to their int8 values by the quantisation-aware
steps) and ``pulse_cnn.tflite`` (the :data:`SCHEME` model the SoC runs), calibrated on seeded pulses across the SNR
range; prints the float network's efficiency (sigma / CRLB) per SNR. Deterministic for a given seed and step count
(numpy, one thread recommended: ``OMP_NUM_THREADS=1``).
"""
import argparse
import time
from pathlib import Path

import numpy as np

from models.pulse.cnn import train
from models.pulse.crlb import crlb
from models.pulse.export import export
from models.pulse.frontend import generate
from models.pulse.resolution import FLOAT_WEIGHTS, MODEL

#: 16x8: int8 activations cannot hold a 14-bit ADC, nor time and energy in one int8 output tensor (BENCHMARKS.md).
SCHEME = "16x8"
CALIBRATION = dict(n=20_000, snr_db=(28.0, 62.0), seed=12345)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=40_000)
    ap.add_argument("--qat-steps", type=int, default=8_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=MODEL.parent, help="folder for the two files (default: %(default)s)")
    args = ap.parse_args(argv)
    weights_path, model_path = args.out / FLOAT_WEIGHTS.name, args.out / MODEL.name
    start = time.time()
    net = train(steps=args.steps, qat_steps=args.qat_steps, seed=args.seed,
                log=lambda step, loss: print(f"step {step} loss {loss:.2f} ({time.time() - start:.0f} s)", flush=True))
    net.save(weights_path)
    cal = generate(CALIBRATION["n"], CALIBRATION["snr_db"], CALIBRATION["seed"]).samples
    model_path.write_bytes(export(net, cal, SCHEME).data)
    for snr in (30, 40, 47.4, 55, 60):
        p = generate(5000, snr, 99)
        y = net.forward(p.samples)
        bound_t, bound_e = crlb(snr)
        print(f"{snr:5.1f} dB: time {np.std(y[:, 0] - p.t0) / bound_t:.2f} x CRLB, "
              f"energy {np.std(y[:, 1] / p.amplitude - 1) / bound_e:.2f} x CRLB")
    print(f"wrote {weights_path} and {model_path} in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
