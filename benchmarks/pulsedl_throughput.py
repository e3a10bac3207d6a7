"""PulseDL-II throughput: pulses per second at the synthesised clock, from the cycles the RTL SoC spends per pulse.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/pulsedl_throughput.py --synth build/synth/pulsedl-default-ulx3s-85f \
        --pulses 16

Runs ``--pulses`` windows (SNR 47.4 dB, seeded) of the checked-in model through ``drivers.pulsedl.infer_pulses``
(the CPU firmware driving the accelerator) and takes its per-pulse cycle counts (CPU / accelerator / total); with
``f`` the clock (the synthesised fmax from ``synth.json`` of ``rampart synth pulsedl``, and the board clock):

    pulses/s = f / total cycles per pulse;   CPU share = cpu cycles / total cycles

Without the accelerator in the build the script says so and exits 1 (nothing is estimated in its place).
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np


def per_pulse(stats: dict, words: tuple[str, ...]) -> float | None:
    """Mean of the first stats entry whose key contains one of ``words`` (per-pulse arrays or numbers)."""
    for key, value in stats.items():
        if any(w in key.lower() for w in words):
            return float(np.mean(value))
    return None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--synth", type=Path, help="folder of `rampart synth pulsedl` (its synth.json gives fmax)")
    ap.add_argument("--pulses", type=int, default=16)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import drivers.pulsedl
    from models.pulse.export import load_model
    from models.pulse.frontend import generate
    from models.pulse.resolution import MODEL, PAPER_SNR_DB

    infer = getattr(drivers.pulsedl, "infer_pulses", None)
    if infer is None:
        print("drivers.pulsedl.infer_pulses is not in this build (no accelerator): no throughput to measure")
        return 1
    model = load_model(MODEL)
    windows = model.quantise(generate(args.pulses, PAPER_SNR_DB, seed=0).samples)
    _, stats = infer(model.data, windows)
    cycles = {name: per_pulse(stats, words) for name, words in
              (("total", ("total",)), ("cpu", ("cpu",)), ("accelerator", ("acc", "nn")))}
    if cycles["total"] is None:
        print(f"infer_pulses' stats have no total cycle count: {sorted(stats)}")
        return 1
    clocks = {"board 25 MHz": 25e6}
    if args.synth is not None:
        synth = json.loads((args.synth / "synth.json").read_text())
        clocks = {f"fmax {synth['fmax_mhz']} MHz": synth["fmax_mhz"] * 1e6,
                  f"board {synth['clock_mhz']} MHz": synth["clock_mhz"] * 1e6}
    result = {"pulses": args.pulses, "cycles_per_pulse": cycles,
              "pulses_per_s": {name: hz / cycles["total"] for name, hz in clocks.items()}}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"cycles per pulse: {cycles}")
        for name, rate in result["pulses_per_s"].items():
            print(f"{name}: {rate:,.0f} pulses/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
