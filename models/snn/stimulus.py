"""Stimulus generators for the SNN core: constant currents, Poisson and regular spike trains, image rate coding.

Every random generator takes an explicit ``numpy.random.Generator`` (or an integer seed), never global state, so a
run is reproduced from its seed.  Spike trains are boolean rasters of shape (steps, n) on the core's step grid,
ready for ``GoldenCore.run`` and ``brian2_ref.simulate``.
"""

from __future__ import annotations

import numpy as np

from models.snn.params import STATE_BITS, FixedScale, int_range

__all__ = ["as_rng", "constant_current", "poisson_spikes", "rate_code", "regular_spikes"]


def as_rng(rng) -> np.random.Generator:
    """A Generator from a Generator (returned as is) or an integer seed."""
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be a numpy Generator or an integer seed, not {rng!r}")


def constant_current(i_bias, scale: FixedScale, n: int | None = None) -> np.ndarray:
    """Bias register codes for constant currents ``i_bias`` (V/s, i.e. current over capacitance).

    ``round(i_bias * dt / v_lsb)``: the per-step increment of ``v``; pass it as ``NeuronParams(bias=...)``.
    A scalar is broadcast to ``n`` neurons when ``n`` is given.
    """
    i = np.asarray(i_bias, dtype=float)
    if n is not None:
        i = np.broadcast_to(i, (n,))
    code = np.rint(i * scale.dt / scale.v_lsb)
    lo, hi = int_range(STATE_BITS)
    if np.any(~np.isfinite(code)) or np.any(code < lo) or np.any(code > hi):
        raise ValueError(f"current {i_bias!r} does not fit the {STATE_BITS}-bit bias register")
    return code.astype(np.int64)


def poisson_spikes(rng, steps: int, rates, dt: float, n: int | None = None) -> np.ndarray:
    """Bernoulli-per-step approximation of Poisson trains: P(spike in a step) = rate * dt.

    ``rates`` (Hz) is a scalar (then ``n`` lines), a per-line vector of shape (n,), or a per-step matrix of shape
    (steps, n).  Raises if any rate * dt exceeds 1 (the grid cannot carry two spikes per step).
    """
    gen = as_rng(rng)
    r = np.asarray(rates, dtype=float)
    if r.ndim == 0:
        if n is None:
            raise ValueError("a scalar rate needs n, the number of lines")
        r = np.full(n, float(r))
    p = r * dt
    if np.any(p < 0) or np.any(p > 1) or not np.all(np.isfinite(p)):
        raise ValueError(f"rates * dt must lie in [0, 1], got {float(p.min())}..{float(p.max())}")
    shape = (int(steps), p.shape[-1])
    p = np.broadcast_to(p, shape)
    return gen.random(shape) < p


def regular_spikes(steps: int, periods, phases=0) -> np.ndarray:
    """Deterministic trains: line ``k`` spikes at steps ``phase[k] + j * period[k]``; a period of 0 means silent."""
    per = np.atleast_1d(np.asarray(periods, dtype=np.int64))
    ph = np.broadcast_to(np.asarray(phases, dtype=np.int64), per.shape)
    if np.any(per < 0) or np.any(ph < 0):
        raise ValueError("periods and phases must be non-negative")
    t = np.arange(int(steps))[:, None]
    safe = np.where(per > 0, per, 1)
    return (per > 0) & (t >= ph) & ((t - ph) % safe == 0)


def rate_code(rng, images, steps: int, *, max_prob: float = 0.5, vmax: float | None = None) -> np.ndarray:
    """Rate-code images: pixel ``p`` spikes each step with probability ``max_prob * p / vmax`` (Bernoulli).

    ``images``: (n_images, ...) non-negative intensities, flattened per image; ``vmax`` defaults to the maximum
    over all images (16 for sklearn's ``load_digits``).  Returns bool of shape (n_images, steps, n_pixels).
    """
    gen = as_rng(rng)
    img = np.asarray(images, dtype=float)
    if img.ndim < 2:
        raise ValueError(f"images must have shape (n_images, ...), not {img.shape}")
    img = img.reshape(img.shape[0], -1)
    if np.any(img < 0):
        raise ValueError("pixel intensities must be non-negative")
    top = float(img.max()) if vmax is None else float(vmax)
    if not 0 <= max_prob <= 1:
        raise ValueError(f"max_prob must be in [0, 1], not {max_prob!r}")
    p = np.clip(img / top, 0, 1) * max_prob if top > 0 else np.zeros_like(img)
    return gen.random((img.shape[0], int(steps), img.shape[1])) < p[:, None, :]
