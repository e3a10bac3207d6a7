"""Time and energy resolution of every estimator vs SNR, on the same seeded pulses, beside the Cramer-Rao bound.

Resolution: the standard deviation of ``t_hat - t0`` (reported in ps at 125 MS/s) and of ``E_hat / E - 1`` (in %),
over pulses with uniform arrival phases and the amplitude spectrum of :mod:`models.pulse.frontend`; FWHM is the
Gaussian-equivalent ``2 sqrt(2 ln 2) sigma`` = 2.355 sigma. Estimators:

* ``cnn_rtl``: the quantised CNN on the RTL SoC (``drivers.pulsedl.infer_pulses``, the CPU firmware driving the
  accelerator, passed in by the caller) -- only when that function exists in this build; otherwise the row says
  "not available in this build";
* ``cnn_float``: the float CNN (numpy, the weights the .tflite was quantised from);
* ``cnn_litert``: the quantised .tflite under LiteRT's reference kernels;
* ``ls``: least-squares template fit; ``cfd``: digital CFD (+ integral for energy); ``crlb``: the bound.
"""
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from models.pulse.crlb import crlb
from models.pulse.estimators import cfd, ls_fit
from models.pulse.frontend import generate, sample_ps

__all__ = ["DATA", "ESTIMATORS", "FWHM", "MODEL", "PAPER", "PAPER_SNR_DB", "Row", "evaluate", "plot"]

DATA = Path(__file__).resolve().parent / "data"
MODEL = DATA / "pulse_cnn.tflite"
FLOAT_WEIGHTS = DATA / "pulse_cnn_float.npz"
FWHM = 2.0 * np.sqrt(2.0 * np.log(2.0))
PAPER_SNR_DB = 47.4
PAPER = {"time_fwhm_ps": 60.0, "energy_fwhm_pct": 0.40}
ESTIMATORS = {
    "cnn_rtl": "CNN on RTL (SoC firmware + accelerator)",
    "cnn_float": "CNN float (numpy)",
    "cnn_litert": "CNN quantised, LiteRT reference kernels",
    "ls": "least-squares template fit",
    "cfd": "digital CFD (+ integral)",
    "crlb": "Cramer-Rao lower bound",
}
NOT_AVAILABLE = "not available in this build"


@dataclass
class Row:
    snr_db: float
    estimator: str
    pulses: int
    time_sigma_ps: float | None = None
    time_fwhm_ps: float | None = None
    energy_sigma_pct: float | None = None
    energy_fwhm_pct: float | None = None
    time_bias_ps: float | None = None
    energy_bias_pct: float | None = None
    failed: int = 0             # pulses without an estimate (CFD: no crossing)
    note: str = ""

    def to_json(self) -> dict:
        return asdict(self)


def _row(snr: float, name: str, t_err: np.ndarray, e_rel: np.ndarray, note: str = "") -> Row:
    ok = np.isfinite(t_err) & np.isfinite(e_rel)
    t_ps, e_pct = t_err[ok] * sample_ps(), e_rel[ok] * 100.0
    return Row(snr, name, int(ok.sum()), float(t_ps.std()), float(FWHM * t_ps.std()), float(e_pct.std()),
               float(FWHM * e_pct.std()), float(t_ps.mean()), float(e_pct.mean()), int((~ok).sum()), note)


def _scalar_stats(stats) -> dict:
    """The batch totals of ``infer``'s stats (cycles per pulse and the like); per-pulse arrays stay out of the table."""
    return {key: float(v) if isinstance(v, (float, np.floating)) else int(v)
            for key, v in dict(stats).items() if isinstance(v, (int, float, np.integer, np.floating))}


def evaluate(snrs, pulses: int, seed: int = 0, *, model_path: Path = MODEL, float_path: Path = FLOAT_WEIGHTS,
             infer=None, rtl_pulses: int | None = None, progress=None) -> tuple[list[Row], dict]:
    """Rows (SNR-major, estimators in :data:`ESTIMATORS` order) and run information (RTL cycles when it ran).

    ``infer``: the RTL path, ``infer(tflite_bytes, windows) -> (outputs, stats)`` (``drivers.pulsedl.infer_pulses``
    when the build has it); None: the ``cnn_rtl`` rows say "not available in this build"."""
    from models.pulse.cnn import Network
    from models.pulse.export import load_model, run_litert

    model = load_model(model_path)
    net = Network.load(float_path)
    info = {"model": str(model_path), "scheme": model.scheme, "rtl": infer is not None, "rtl_stats": {}}
    rows = []
    for k, snr in enumerate(snrs):
        p = generate(pulses, snr, seed + k)
        x = p.samples
        ints = model.quantise(x)

        def errors(y, p=p):
            n = len(y)
            return y[:, 0] - p.t0[:n], y[:, 1] / p.amplitude[:n] - 1.0

        if infer is None:
            rows.append(Row(snr, "cnn_rtl", 0, note=NOT_AVAILABLE))
        else:
            out, stats = infer(model.data, ints[:rtl_pulses])
            info["rtl_stats"][str(snr)] = _scalar_stats(stats)
            rows.append(_row(snr, "cnn_rtl", *errors(model.dequantise(out))))
        rows.append(_row(snr, "cnn_float", *errors(net.forward(x))))
        rows.append(_row(snr, "cnn_litert", *errors(model.dequantise(run_litert(model, ints))),
                         note=f"{model.scheme} .tflite"))
        t0, amp, _ = ls_fit(x)
        rows.append(_row(snr, "ls", t0 - p.t0, amp / p.amplitude - 1.0))
        t0, amp = cfd(x)
        rows.append(_row(snr, "cfd", t0 - p.t0, amp / p.amplitude - 1.0))
        bound_t, bound_e = crlb(snr)
        rows.append(Row(snr, "crlb", pulses, bound_t * sample_ps(), FWHM * bound_t * sample_ps(), 100 * bound_e,
                        FWHM * 100 * bound_e, note="bound, averaged over arrival phase"))
        if progress is not None:
            progress(k + 1, len(snrs))
    return rows, info


def plot(rows: list[Row], path: Path) -> Path:
    """Time (ps) and energy (%) sigma vs SNR of every estimator that ran, log scale, into ``path`` (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, label in ESTIMATORS.items():
        mine = [r for r in rows if r.estimator == name and r.time_sigma_ps is not None]
        if not mine:
            continue
        style = {"crlb": dict(color="k", ls="--", marker="_"), "cfd": dict(marker="v"), "ls": dict(marker="s"),
                 "cnn_float": dict(marker="o"), "cnn_litert": dict(marker="x"), "cnn_rtl": dict(marker="*")}[name]
        snr = [r.snr_db for r in mine]
        axes[0].plot(snr, [r.time_sigma_ps for r in mine], label=label, **style)
        axes[1].plot(snr, [r.energy_sigma_pct for r in mine], label=label, **style)
    for ax, what in zip(axes, ("time resolution sigma (ps)", "energy resolution sigma (%)"), strict=True):
        ax.set_yscale("log")
        ax.set_xlabel("SNR = 20 log10(A / sigma) (dB)")
        ax.set_ylabel(what)
        ax.axvline(PAPER_SNR_DB, color="0.7", lw=0.8)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("PulseDL-II front end: CR-RC^4 (tau 8 ns), 14-bit 125 MS/s ADC, 64-sample windows")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
