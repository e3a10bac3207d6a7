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

#: infer_pulses' per-pulse cycle averages (its stats keys).
CYCLE_KEYS = ("cpu", "accelerator", "adc_wait", "total")


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
    missing = [key for key in CYCLE_KEYS if key not in stats]
    if missing:
        print(f"infer_pulses' stats lack {missing}: {sorted(stats)}")
        return 1
    cycles = {key: float(stats[key]) for key in CYCLE_KEYS}
    clocks = {"board 25 MHz": 25e6}
    if args.synth is not None:
        synth = json.loads((args.synth / "synth.json").read_text())
        clocks = {f"fmax {synth['fmax_mhz']} MHz": synth["fmax_mhz"] * 1e6,
                  f"board {synth['clock_mhz']} MHz": synth["clock_mhz"] * 1e6}
    result = {"pulses": int(stats["pulses"]), "cycles_per_pulse": cycles,
              "cpu_share": cycles["cpu"] / cycles["total"],
              "accelerator_share": cycles["accelerator"] / cycles["total"],
              "pulses_per_s": {name: hz / cycles["total"] for name, hz in clocks.items()}}
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print("cycles per pulse: " + ", ".join(f"{k} {v:,.0f}" for k, v in cycles.items())
              + f" (CPU {result['cpu_share']:.1%}, accelerator {result['accelerator_share']:.1%})")
        for name, rate in result["pulses_per_s"].items():
            print(f"{name}: {rate:,.0f} pulses/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
