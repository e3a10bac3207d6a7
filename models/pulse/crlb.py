"""Cramer-Rao lower bound for the arrival time and amplitude of the known pulse shape in white Gaussian noise with
an unknown baseline (parameters theta = (t0, A, b); model mu_n = A s(n - t0) + b, noise N(0, sigma^2) i.i.d.).

Fisher information: ``I = J^T J / sigma^2`` with the Jacobian columns ``dmu/dt0 = -A s'(n - t0)``, ``dmu/dA = s``,
``dmu/db = 1``; the bound is the diagonal of ``I^-1``. ADC rounding (14 bits: LSB / sqrt(12) = 1.8e-5 of full
scale) is left out: it is below sigma by 25x even at 60 dB and the smallest amplitude. With SNR := 20 log10(A/sigma)
the bound on ``t0`` (samples) and on ``A / A`` depends only on the SNR and the phase of ``t0`` within a sample;
:func:`crlb` averages the variance over the phase (uniform arrival times), which is what a resolution measured over
such pulses is compared with.
"""
import numpy as np

from models.pulse.frontend import T_TRIGGER, WINDOW, shape, shape_derivative

__all__ = ["crlb", "fisher", "jacobian"]


def jacobian(t0: float, amplitude: float) -> np.ndarray:
    """(WINDOW, 3) derivatives of the noiseless samples with respect to (t0, A, b)."""
    u = np.arange(WINDOW) - t0
    return np.stack([-amplitude * shape_derivative(u), shape(u), np.ones(WINDOW)], axis=1)


def fisher(t0: float, amplitude: float, sigma: float) -> np.ndarray:
    jac = jacobian(t0, amplitude)
    return jac.T @ jac / sigma ** 2


def crlb(snr_db: float, phases: int = 64) -> tuple[float, float]:
    """(sigma_t in samples, sigma_A / A) bounds at ``snr_db``, root-mean variance over ``phases`` arrival phases."""
    var_t, var_a = [], []
    sigma = 10.0 ** (-snr_db / 20.0)      # A = 1: the relative bounds do not depend on A
    for phase in (np.arange(phases) + 0.5) / phases:
        cov = np.linalg.inv(fisher(T_TRIGGER + phase, 1.0, sigma))
        var_t.append(cov[0, 0])
        var_a.append(cov[1, 1])
    return float(np.sqrt(np.mean(var_t))), float(np.sqrt(np.mean(var_a)))
