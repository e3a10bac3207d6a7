"""PulseDL-II resolution vs SNR: every estimator against the Cramer-Rao bound, and int8 vs 16x8 quantisation.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/pulsedl_resolution.py [--pulses 3000] [--rtl-pulses 300] \
        [--write BENCHMARKS.md]

The same table as `rampart pulsedl resolution --snr 30:60:3` (plus 47.4 dB), with each estimator's sigma over the
CRLB; the target: at 47.4 dB the CNN within 1.5x of the CRLB in time and energy. Then the checked-in float network
exported both ways (same calibration as models/pulse/train.py) under LiteRT at a few SNRs: why 16x8 is used.
``--rtl-pulses N``: the RTL column over the first N pulses of each SNR (the RTL SoC simulates ~22k cycles a pulse);
its outputs are compared with LiteRT's on the same windows and the count of identical pulses is reported.
"""
import argparse
import os
import sys
import time

import numpy as np
from report import write_section

TARGET = 1.5


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulses", type=int, default=3000)
    parser.add_argument("--rtl-pulses", type=int, default=None, help="pulses per SNR through the RTL (default: all)")
    parser.add_argument("--write", metavar="BENCHMARKS.md", help="replace this benchmark's section of that file")
    args = parser.parse_args()

    import drivers.pulsedl
    from models.pulse.cnn import Network
    from models.pulse.crlb import crlb
    from models.pulse.export import export, load_model, run_litert
    from models.pulse.frontend import generate
    from models.pulse.resolution import ESTIMATORS, FLOAT_WEIGHTS, MODEL, PAPER, PAPER_SNR_DB, evaluate
    from models.pulse.train import CALIBRATION

    start = time.time()
    snrs = sorted([30.0 + 3 * i for i in range(11)] + [PAPER_SNR_DB])
    infer_rtl = getattr(drivers.pulsedl, "infer_pulses", None)
    exact = {"pulses": 0, "identical": 0}

    def infer(data, windows):
        outputs, stats = infer_rtl(data, windows)
        exact["pulses"] += len(windows)
        exact["identical"] += int(np.all(outputs == run_litert(data, windows), axis=1).sum())
        return outputs, stats

    rtl_pulses = args.pulses if args.rtl_pulses is None else min(args.rtl_pulses, args.pulses)
    rows, info = evaluate(snrs, args.pulses, seed=0, infer=None if infer_rtl is None else infer,
                          rtl_pulses=rtl_pulses)
    bound = {r.snr_db: r for r in rows if r.estimator == "crlb"}
    names = [n for n in ESTIMATORS if n != "crlb"]
    table = ["| SNR dB | CRLB time ps / energy % | " + " | ".join(names) + " |",
             "|---:|---|" + "---|" * len(names)]
    for snr in snrs:
        cells = []
        for name in names:
            r = next(r for r in rows if r.snr_db == snr and r.estimator == name)
            if r.time_sigma_ps is None:
                cells.append(r.note)
            else:
                b = bound[snr]
                cells.append(f"{r.time_sigma_ps:.1f} ps ({r.time_sigma_ps / b.time_sigma_ps:.2f}x) / "
                             f"{r.energy_sigma_pct:.3f}% ({r.energy_sigma_pct / b.energy_sigma_pct:.2f}x)")
        b = bound[snr]
        table.append(f"| {snr:g} | {b.time_sigma_ps:.1f} / {b.energy_sigma_pct:.3f} | " + " | ".join(cells) + " |")

    at = {r.estimator: r for r in rows if r.snr_db == PAPER_SNR_DB}
    verdicts = []
    for name in ("cnn_rtl", "cnn_litert", "cnn_float"):
        r = at[name]
        if r.time_sigma_ps is None:
            verdicts.append(f"{name}: {r.note}")
            continue
        ratio_t, ratio_e = r.time_sigma_ps / at["crlb"].time_sigma_ps, r.energy_sigma_pct / at["crlb"].energy_sigma_pct
        met = "met" if max(ratio_t, ratio_e) <= TARGET else "NOT met"
        verdicts.append(f"{name}: time {ratio_t:.2f}x, energy {ratio_e:.2f}x the CRLB ({met})")

    # int8 vs 16x8: the same float network, exported both ways
    net = Network.load(FLOAT_WEIGHTS)
    cal = generate(CALIBRATION["n"], CALIBRATION["snr_db"], CALIBRATION["seed"]).samples
    schemes = ["| SNR dB | scheme | output step (time samples / energy FS) | time sigma / CRLB | energy sigma / CRLB |",
               "|---:|---|---|---:|---:|"]
    for scheme in ("int8", "16x8"):
        model = export(net, cal, scheme)
        for snr in (30.0, PAPER_SNR_DB, 60.0):
            p = generate(min(args.pulses, 2000), snr, seed=50)
            y = model.dequantise(run_litert(model, model.quantise(p.samples)))
            bt, be = crlb(snr)
            schemes.append(f"| {snr:g} | {scheme} | {model.output_quant[0]:.2e} | "
                           f"{np.std(y[:, 0] - p.t0) / bt:.2f} | {np.std(y[:, 1] / p.amplitude - 1) / be:.2f} |")
    checked_in = load_model(MODEL).scheme

    body = "\n".join([
        "## PulseDL-II: time and energy resolution vs SNR against the Cramer-Rao bound",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} with `PYTHONPATH=$PWD .venv/bin/python benchmarks/pulsedl_resolution.py "
        f"--pulses {args.pulses}" + (f" --rtl-pulses {args.rtl_pulses}" if args.rtl_pulses else "")
        + f"` ({time.time() - start:.0f} s, load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores). Same table as `rampart pulsedl resolution --snr 30:60:3 --pulses {args.pulses}`"
        + (f" (RTL column: `--rtl-pulses {args.rtl_pulses}`)." if args.rtl_pulses else "."),
        "Pulses: CR-RC^4, tau = 8 ns (32 ns peaking), 14-bit ADC at 125 MS/s, 64-sample windows, arrival uniform "
        "within one sample, amplitude uniform 0.2-0.8 of full scale, baseline 0.08-0.12, white Gaussian noise with "
        "SNR := 20 log10(A / sigma) per pulse. sigma of t_hat - t0 (ps) and of E_hat / E - 1 (%); in brackets: over "
        "the CRLB (unknown t0, A, baseline; averaged over the arrival phase). FWHM = 2.355 sigma.",
        "",
        *table,
        "",
        f"Target at {PAPER_SNR_DB} dB (CNN within {TARGET}x of the CRLB): " + "; ".join(verdicts) + ".",
        "",
        f"Paper (PulseDL-II, FWHM at {PAPER_SNR_DB} dB): {PAPER['time_fwhm_ps']:g} ps / "
        f"{PAPER['energy_fwhm_pct']:.2f}%. Ours (FWHM): CRLB {at['crlb'].time_fwhm_ps:.0f} ps / "
        f"{at['crlb'].energy_fwhm_pct:.2f}%, LS {at['ls'].time_fwhm_ps:.0f} ps / {at['ls'].energy_fwhm_pct:.2f}%, "
        f"CNN ({checked_in}, LiteRT) {at['cnn_litert'].time_fwhm_ps:.0f} ps / {at['cnn_litert'].energy_fwhm_pct:.2f}%. "
        "Even our bound is above the paper's time figure: the paper's pulse shape, shaping time, ADC rate and bits "
        "are not public, and ours puts only ~4 samples of 8 ns on a 32 ns leading edge; the time bound falls with "
        "the slope and the number of samples on the edge (a faster ADC or a longer, steeper edge), and their SNR "
        "definition is not stated.",
        "",
        "Quantisation scheme (the checked-in float network exported both ways, LiteRT reference kernels):",
        "",
        *schemes,
        "",
        f"* The checked-in model is **{checked_in}**: int8 activations quantise the input to 1/255 of full scale "
        "(4.6x the noise sigma of a 0.2 FS pulse at 47.4 dB, against 2^-15 = an exact 14-bit code in 16x8), and "
        "TFLite's one per-tensor output scale must cover time (12-13 samples) and energy (0.2-0.8) together, so an "
        "int8 output step is 0.05 sample and 0.05 FS -- far above the bound.",
        "* The RTL column comes from `drivers.pulsedl.infer_pulses` (the SoC firmware driving the accelerator) when "
        "that exists in the build; never substituted"
        + (f"; over the first {rtl_pulses} pulses of each SNR (the other columns over all {args.pulses}; sigma's "
           f"relative statistical error ~1/sqrt(2N) = {1 / np.sqrt(2 * rtl_pulses):.1%}); "
           f"{exact['identical']:,} of {exact['pulses']:,} RTL pulses give LiteRT's outputs bit for bit."
           if infer_rtl is not None else "."),
        "* CFD (fraction 0.5, delay 2 samples, linear interpolation) levels off near 120 ps at high SNR: the walk of "
        "the linear interpolation over the arrival phase; its energy is an integral (3.5x the bound throughout). "
        "The CNN's excess at 57-60 dB is partly the 16x8 output step (energy 4e-4 FS, vs a bound of 1.1e-4 FS at "
        "60 dB for a 0.2 FS pulse).",
    ])
    print(body)
    if args.write:
        write_section(args.write, "pulsedl_resolution", body)


if __name__ == "__main__":
    sys.exit(main())
