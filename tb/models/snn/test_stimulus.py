"""Stimulus generators: reproducible from a seed, right shapes and rates."""

import numpy as np
import pytest

from models.snn.params import FixedScale
from models.snn.stimulus import constant_current, poisson_spikes, rate_code, regular_spikes


def test_poisson_is_seeded_and_has_the_rate():
    a = poisson_spikes(np.random.default_rng(3), 20000, [10.0, 100.0], 1e-3)
    b = poisson_spikes(3, 20000, [10.0, 100.0], 1e-3)
    assert a.shape == (20000, 2) and a.dtype == bool and np.array_equal(a, b)
    # counts are binomial(20000, p): 200 +- 14 and 2000 +- 42 (1 sigma); allow 5 sigma
    assert abs(a[:, 0].sum() - 200) < 5 * 14 and abs(a[:, 1].sum() - 2000) < 5 * 42
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        poisson_spikes(0, 10, 2000.0, 1e-3, n=1)


def test_regular_and_constant():
    r = regular_spikes(10, [3, 0, 4], [1, 0, 2])
    assert [np.flatnonzero(r[:, k]).tolist() for k in range(3)] == [[1, 4, 7], [], [2, 6]]
    assert constant_current([1.0, -0.5], FixedScale()).tolist() == [1024, -512]  # 1 V/s * 1 ms = 1 mV


def test_rate_code_images():
    images = np.array([[[0, 16], [8, 16]]])  # one 2x2 image, sklearn digits scale
    spikes = rate_code(np.random.default_rng(0), images, 4000, max_prob=0.5, vmax=16)
    assert spikes.shape == (1, 4000, 4)
    rates = spikes[0].mean(0)
    assert rates[0] == 0 and abs(rates[1] - 0.5) < 0.04 and abs(rates[2] - 0.25) < 0.04
