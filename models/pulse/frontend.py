"""DDS + ADC model of a detector bench: a CR-RC^4 pulse, sampled by a 14-bit 125 MS/s ADC, in white Gaussian noise.

Conventions (fixed here, used by every estimator and the CNN):

* the pulse is ``A * s(t - t0) + b`` with ``s`` the CR-RC^4 shaper's response to a step of charge,
  ``s(u) = (u / tau)^4 exp(-u / tau) / (4^4 exp(-4))`` for ``u > 0`` (0 before), normalised to a peak of 1 at
  ``u = 4 tau``; ``tau`` = :data:`TAU_NS` (8 ns, so a 32 ns peaking time = 4 samples);
* amplitudes and baselines are fractions of the ADC full scale; the "energy" is ``A``;
* a window is :data:`WINDOW` = 64 samples at :data:`SAMPLE_RATE_HZ` = 125 MS/s; the arrival time ``t0`` (in
  samples from the window's first sample) is uniform in ``[T_TRIGGER, T_TRIGGER + 1)`` -- the DDS phase is random
  against the ADC clock, the trigger places the pulse to within one sample;
* noise is white Gaussian with ``sigma = A * 10^(-SNR / 20)`` (SNR := 20 log10(A / sigma), per pulse);
* the ADC rounds to :data:`ADC_BITS` bits over ``[0, 1)`` full scale and clips; the baseline (pedestal) is uniform in
  :data:`BASELINE_RANGE`, the amplitude spectrum uniform in :data:`AMPLITUDE_RANGE`.
"""
from dataclasses import dataclass

import numpy as np

__all__ = ["ADC_BITS", "AMPLITUDE_RANGE", "BASELINE_RANGE", "SAMPLE_RATE_HZ", "TAU_NS", "T_TRIGGER", "WINDOW",
           "Pulses", "adc", "generate", "sample_ps", "shape", "shape_derivative", "sigma_for_snr"]

SAMPLE_RATE_HZ = 125e6
TAU_NS = 8.0
ADC_BITS = 14
WINDOW = 64
T_TRIGGER = 12.0
AMPLITUDE_RANGE = (0.2, 0.8)
BASELINE_RANGE = (0.08, 0.12)
ORDER = 4

TAU = TAU_NS * 1e-9 * SAMPLE_RATE_HZ            # tau in samples (1.0)
_NORM = ORDER ** ORDER * np.exp(-ORDER)


def sample_ps() -> float:
    """One ADC sample period in picoseconds."""
    return 1e12 / SAMPLE_RATE_HZ


def shape(u: np.ndarray) -> np.ndarray:
    """Unit-peak CR-RC^4 response at ``u`` samples after the arrival (0 for ``u <= 0``)."""
    x = np.maximum(np.asarray(u, np.float64), 0.0) / TAU
    return x ** ORDER * np.exp(-x) / _NORM


def shape_derivative(u: np.ndarray) -> np.ndarray:
    """d shape / du (per sample)."""
    x = np.maximum(np.asarray(u, np.float64), 0.0) / TAU
    return (ORDER * x ** (ORDER - 1) - x ** ORDER) * np.exp(-x) / (_NORM * TAU)


def sigma_for_snr(amplitude, snr_db):
    return np.asarray(amplitude) * 10.0 ** (-np.asarray(snr_db) / 20.0)


def adc(x: np.ndarray, bits: int = ADC_BITS) -> np.ndarray:
    """Integer ADC codes of the analogue values ``x`` (fractions of full scale): round, clip to ``[0, 2^bits - 1]``."""
    top = 2 ** bits - 1
    return np.clip(np.rint(x * 2 ** bits), 0, top).astype(np.int32)


@dataclass
class Pulses:
    """A batch: ``codes`` (N, 64) ADC codes, and the truth of each pulse."""

    codes: np.ndarray
    t0: np.ndarray          # samples from the window start
    amplitude: np.ndarray   # fraction of full scale
    baseline: np.ndarray
    snr_db: np.ndarray
    bits: int = ADC_BITS

    @property
    def samples(self) -> np.ndarray:
        """The codes as fractions of full scale (what the float estimators and the CNN see)."""
        return self.codes / 2.0 ** self.bits

    @property
    def sigma(self) -> np.ndarray:
        return sigma_for_snr(self.amplitude, self.snr_db)

    def __len__(self):
        return len(self.t0)


def generate(n: int, snr_db, seed: int, *, amplitude=None, bits: int = ADC_BITS) -> Pulses:
    """``n`` pulses at ``snr_db`` (a number, or a (lo, hi) range drawn uniformly per pulse), seeded.

    ``amplitude``: a fixed amplitude instead of the spectrum."""
    rng = np.random.default_rng(seed)
    t0 = T_TRIGGER + rng.uniform(0.0, 1.0, n)
    amp = rng.uniform(*AMPLITUDE_RANGE, n) if amplitude is None else np.full(n, float(amplitude))
    base = rng.uniform(*BASELINE_RANGE, n)
    snr = rng.uniform(*snr_db, n) if np.ndim(snr_db) else np.full(n, float(snr_db))
    t = np.arange(WINDOW)
    clean = amp[:, None] * shape(t[None, :] - t0[:, None]) + base[:, None]
    noisy = clean + sigma_for_snr(amp, snr)[:, None] * rng.standard_normal((n, WINDOW))
    return Pulses(adc(noisy, bits), t0, amp, base, snr, bits)
