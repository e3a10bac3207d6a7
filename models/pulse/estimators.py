"""Classical estimators of (arrival time, amplitude) on the same windows the CNN sees (fractions of full scale).

* :func:`ls_fit`: least-squares template fit of ``A s(n - t0) + b`` -- Gauss-Newton on (t0, A, b), vectorised over
  the batch; the maximum-likelihood estimator under white Gaussian noise, so it approaches the CRLB at high SNR.
* :func:`cfd`: digital constant-fraction discriminator: baseline from the pre-trigger samples, ``y_n = f x_n -
  x_{n-d}``, linear interpolation of the first falling zero crossing after an arming threshold; the crossing's fixed
  offset from the arrival (the root of ``f s(u) = s(u - d)``) is subtracted. Its amplitude is the baseline-subtracted
  integral over the pulse divided by the shape's integral (what a charge-integrating channel beside a CFD gives).
"""
import numpy as np
from scipy.optimize import brentq

from models.pulse.frontend import T_TRIGGER, TAU, WINDOW, shape, shape_derivative

__all__ = ["CFD_DELAY", "CFD_FRACTION", "PRE_TRIGGER", "cfd", "cfd_offset", "ls_fit"]

PRE_TRIGGER = 10          # samples before the earliest arrival used as baseline
CFD_FRACTION = 0.5
CFD_DELAY = 2             # samples
ARM = 0.3                 # arm the CFD once the pulse exceeds this fraction of its highest sample
SHAPE_INTEGRAL = 24.0 * TAU / (4 ** 4 * np.exp(-4.0))     # integral of s(u) du in samples: tau Gamma(5) / norm
INTEGRAL_SPAN = (-3, 24)  # integration range around the CFD crossing, samples


def _initial(x: np.ndarray):
    base = x[:, :PRE_TRIGGER].mean(axis=1)
    peak = x.argmax(axis=1)
    amp = x[np.arange(len(x)), peak] - base
    return peak - 4.0 * TAU, amp, base


def ls_fit(x: np.ndarray, iterations: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t0, A, b) per row of ``x`` (N, WINDOW) minimising the squared residual."""
    x = np.asarray(x, np.float64)
    t0, amp, base = _initial(x)
    t0 = np.clip(t0, T_TRIGGER - 2, T_TRIGGER + 3)
    n = np.arange(WINDOW)[None, :]
    for _ in range(iterations):
        u = n - t0[:, None]
        s, ds = shape(u), shape_derivative(u)
        resid = x - (amp[:, None] * s + base[:, None])
        jac = np.stack([-amp[:, None] * ds, s, np.ones_like(s)], axis=2)          # (N, W, 3)
        step = np.linalg.solve(np.einsum("nwi,nwj->nij", jac, jac), np.einsum("nwi,nw->ni", jac, resid)[..., None])
        step = step[..., 0]
        t0 = t0 + np.clip(step[:, 0], -1.0, 1.0)
        amp, base = amp + step[:, 1], base + step[:, 2]
    return t0, amp, base


def cfd_offset(fraction: float = CFD_FRACTION, delay: int = CFD_DELAY) -> float:
    """Time after the arrival (samples) at which ``fraction * s(u) - s(u - delay)`` crosses zero."""
    return brentq(lambda u: fraction * shape(u) - shape(u - delay), delay + 1e-6, delay + 12 * TAU)


def cfd(x: np.ndarray, fraction: float = CFD_FRACTION, delay: int = CFD_DELAY) -> tuple[np.ndarray, np.ndarray]:
    """(t0, A) per row of ``x``; NaN where no crossing is found."""
    x = np.asarray(x, np.float64)
    rows = np.arange(len(x))
    base = x[:, :PRE_TRIGGER].mean(axis=1)
    v = x - base[:, None]
    y = fraction * v[:, delay:] - v[:, :-delay]                   # y[:, k] belongs to sample k + delay
    armed = np.maximum.accumulate(v >= ARM * v.max(axis=1, keepdims=True), axis=1)[:, delay:]
    falling = armed[:, :-1] & (y[:, :-1] > 0) & (y[:, 1:] <= 0)
    found = falling.any(axis=1)
    k = falling.argmax(axis=1)
    y0, y1 = y[rows, k], y[rows, k + 1]
    cross = k + delay + y0 / np.where(found, y0 - y1, 1.0)
    t0 = np.where(found, cross - cfd_offset(fraction, delay), np.nan)
    first = np.clip(np.floor(cross).astype(int) + INTEGRAL_SPAN[0], 0, WINDOW)
    last = np.clip(np.floor(cross).astype(int) + INTEGRAL_SPAN[1], 0, WINDOW)
    cumsum = np.concatenate([np.zeros((len(x), 1)), np.cumsum(v, axis=1)], axis=1)
    amp = (cumsum[rows, last] - cumsum[rows, first]) / SHAPE_INTEGRAL
    return t0, np.where(found, amp, np.nan)
