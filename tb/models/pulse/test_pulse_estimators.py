"""models.pulse: the Cramer-Rao bound against finite differences and an efficient estimator; LS and CFD unbiased."""
import numpy as np
import pytest

from models.pulse.crlb import crlb, fisher, jacobian
from models.pulse.estimators import cfd, cfd_offset, ls_fit
from models.pulse.frontend import ADC_BITS, T_TRIGGER, WINDOW, adc, generate, shape


def _mean(t0, amplitude, base):
    return amplitude * shape(np.arange(WINDOW) - t0) + base


def test_jacobian_matches_finite_differences():
    theta = np.array([T_TRIGGER + 0.37, 0.45, 0.1])
    h = 1e-6
    numeric = np.stack([(_mean(*(theta + h * e)) - _mean(*(theta - h * e))) / (2 * h) for e in np.eye(3)], axis=1)
    np.testing.assert_allclose(jacobian(theta[0], theta[1]), numeric, atol=1e-7)


def test_bound_scales_with_sigma_over_amplitude():
    f = fisher(T_TRIGGER + 0.5, 0.5, 0.01)
    assert np.allclose(f, f.T) and np.all(np.linalg.eigvalsh(f) > 0)
    half = fisher(T_TRIGGER + 0.5, 0.25, 0.01)     # time information goes with A^2, amplitude/baseline do not
    assert f[0, 0] == pytest.approx(4 * half[0, 0]) and f[1, 1] == pytest.approx(half[1, 1])
    assert f[2, 2] == pytest.approx(WINDOW / 0.01 ** 2)
    t30, e30 = crlb(30.0)
    t50, e50 = crlb(50.0)
    assert t30 / t50 == pytest.approx(10.0, rel=1e-9) and e30 / e50 == pytest.approx(10.0, rel=1e-9)


def test_least_squares_fit_reaches_the_bound_at_high_snr():
    """The LS fit is the ML estimator; at 55 dB its spread over 4000 pulses equals the CRLB within sampling error
    (relative standard error of a standard deviation: 1 / sqrt(2 N) = 1.1%)."""
    snr = 55.0
    p = generate(4000, snr, seed=3)
    t0, amp, base = ls_fit(p.samples)
    bound_t, bound_e = crlb(snr)
    assert np.std(t0 - p.t0) / bound_t == pytest.approx(1.0, abs=0.05)
    assert np.std(amp / p.amplitude - 1) / bound_e == pytest.approx(1.0, abs=0.05)
    # unbiased: mean error within 4 standard errors
    assert abs(np.mean(t0 - p.t0)) < 4 * bound_t / np.sqrt(len(p))
    assert abs(np.mean(amp / p.amplitude - 1)) < 4 * bound_e / np.sqrt(len(p))
    assert abs(np.mean(base - p.baseline)) < 4 * np.std(base - p.baseline) / np.sqrt(len(p))


def test_bound_holds_for_the_empirical_variance_at_low_snr_too():
    """No estimator beats the bound (beyond sampling error) -- the LS fit at 35 dB included."""
    p = generate(3000, 35.0, seed=4)
    t0, amp, _ = ls_fit(p.samples)
    bound_t, bound_e = crlb(35.0)
    assert np.std(t0 - p.t0) > 0.94 * bound_t and np.std(amp / p.amplitude - 1) > 0.94 * bound_e


def test_cfd_crossing_offset_and_bias_at_high_snr():
    # the offset solves f s(u) = s(u - d) on the continuous shape
    u = cfd_offset(0.5, 2)
    assert 0.5 * shape(u) == pytest.approx(shape(u - 2), abs=1e-9)
    p = generate(3000, 60.0, seed=5)
    t0, amp = cfd(p.samples)
    assert np.all(np.isfinite(t0))
    err = t0 - p.t0
    # linear interpolation of the CFD signal between samples leaves a phase-dependent walk of a few hundredths
    # of a sample; its mean and spread stay below 0.03 samples (240 ps) with no outliers
    assert abs(np.mean(err)) < 0.03 and np.std(err) < 0.03 and np.max(np.abs(err)) < 0.1
    assert abs(np.mean(amp / p.amplitude - 1)) < 0.002


def test_adc_rounds_and_clips():
    codes = adc(np.array([-0.1, 0.0, 0.5, 1.2]))
    assert codes.tolist() == [0, 0, 2 ** (ADC_BITS - 1), 2 ** ADC_BITS - 1]


def test_dataset_is_seeded_and_within_its_ranges():
    a, b = generate(100, (30, 60), seed=9), generate(100, (30, 60), seed=9)
    assert np.array_equal(a.codes, b.codes) and not np.array_equal(a.codes, generate(100, (30, 60), seed=10).codes)
    assert np.all((a.t0 >= T_TRIGGER) & (a.t0 < T_TRIGGER + 1)) and np.all((a.snr_db >= 30) & (a.snr_db <= 60))
