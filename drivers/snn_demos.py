"""Application demos of the SNN core: STDP pattern detection and 8x8 digit classification, with plots.

Both demos drive the core only through the host API shared by :class:`~models.snn.golden.GoldenCore` and the
UART-attached RTL (:class:`~drivers.neurocore.NeuroCoreHost` over :class:`~drivers.transport.SimTransport`), so the
same code runs on either backend (:func:`make_core`) and, the golden model being bit-exact, gives identical spikes.

* :func:`pattern_demo` (Masquelier-style): ``M`` inputs fire Poisson noise; a frozen spatio-temporal pattern (each of
  ``n_pat`` inputs fires once at a fixed offset inside an ``L``-step window) is pasted in at random times.  One LIF
  neuron with on-chip STDP (LTD-dominated, nearest-spike traces) ends up potentiating the pattern inputs and
  depressing the others, and fires during pattern presentations while staying almost silent elsewhere.
* :func:`digits_demo`: sklearn's bundled 8x8 digits, rate-coded onto 64 inputs.

  - ``onchip`` (:func:`digits_onchip`, the default): a hidden layer of LIF neurons with lateral inhibition by
    negative all-to-all recurrent weights (winner-take-all) learns with the core's own rules only: STDP
    potentiation with weight-dependent depression (``w_decay``: each weight of a firing neuron relaxes towards its
    recent presynaptic activity, which bounds the weights) and adaptive thresholds (``theta_plus``, decaying).
    The host presents images (soft reset, run) and reads spike counts, nothing else.  Readout: each hidden
    neuron is labelled with the class it responds to most on the training set; a test image gets the class with
    the largest per-neuron-average response.  A logistic regression on the hidden spike counts is reported too.
  - ``unsupervised`` (:func:`digits_unsupervised`, *host-assisted*): the same layer with potentiation-only STDP;
    the host renormalises each neuron's input weights to a fixed sum and raises thresholds after every training
    image (Diehl & Cook-style; the weights are read back from and written to the core).  Same readout.
  - ``supervised``: softmax regression 64 -> 10 trained offline in numpy on the expected input rates, quantised
    to int8 core weights (biases to the bias register); inference as spikes with non-leaky integrate-and-fire
    output neurons (subtractive reset), class = most spikes (ties broken by the membrane, i.e. the residue).

Every split, seed and hyper-parameter is fixed in advance; the test split is only ever used for the final score.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.snn.golden import GoldenCore
from models.snn.params import CoreConfig, NeuronParams, ResetMode, StdpParams, SynapseParams, TraceMode

__all__ = ["BACKENDS", "DIGIT_VARIANTS", "DemoResult", "DigitsConfig", "OnChipConfig", "PatternConfig",
           "digits_demo", "digits_onchip", "digits_supervised", "digits_unsupervised", "load_digits_split",
           "make_core", "pattern_demo", "pattern_stimulus", "same_spikes", "selectivity", "train_softmax"]

BACKENDS = ("golden", "rtl")


@dataclass
class DemoResult:
    """Numbers (``metrics``), written plots (``plots``) and the raw output of the runs (``spikes``: every output
    raster of every neuron, plus the learned weights), which must be identical on both backends."""

    name: str
    backend: str
    metrics: dict = field(default_factory=dict)
    plots: list = field(default_factory=list)
    spikes: list = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        lines = [f"{self.name} demo on {self.backend}: {self.seconds:.1f} s"]
        for key, value in self.metrics.items():
            lines.append(f"  {key:32s} {value:.4g}" if isinstance(value, float) else f"  {key:32s} {value}")
        lines += [f"  plot {p}" for p in self.plots]
        return "\n".join(lines)


def make_core(backend: str, n_neurons: int, n_inputs: int, lanes: int = 4):
    """A fresh core of shape (N, M): the golden model, or the Verilated ``neurocore_uart`` design behind the host
    API (its library is built on first use and cached; the simulated UART runs 4 clocks per bit)."""
    if backend == "golden":
        return GoldenCore(CoreConfig(n_neurons, n_inputs, lanes))
    if backend == "rtl":
        from drivers.neurocore import NeuroCoreHost
        from drivers.transport import SimTransport
        from rtl.neurocore.config import NeuroCoreConfig
        from rtl.neurocore.uart_top import NeuroCoreUartConfig

        cfg = NeuroCoreUartConfig(NeuroCoreConfig(n_neurons, n_inputs, lanes), divisor=4, timeout_cycles=1500,
                                  max_payload=512)
        return NeuroCoreHost(SimTransport(cfg))
    raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")


def _close(core) -> None:
    transport = getattr(core, "transport", None)
    if transport is not None:
        transport.close()


def _figure(nrows: int, ncols: int, size):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


# -- (a) repeated-pattern detection ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatternConfig:
    """Sizes and registers of the pattern demo (dt = 1 ms per step)."""

    n_inputs: int = 64          #: M input lines
    n_core: int = 64            #: neurons of the core (only ``n_active`` get weights)
    n_active: int = 1           #: learning neurons
    n_pat: int = 24             #: inputs taking part in the pattern
    length: int = 20            #: pattern duration (steps)
    rate: float = 0.02          #: background spike probability per step and input (20 Hz)
    frac: float = 0.25          #: mean fraction of time covered by pattern presentations
    train_steps: int = 40000
    test_steps: int = 10000
    chunk: int = 1000           #: steps per run call during training (weight snapshots)
    theta: int = 5000
    w0: int = 40                #: mean initial weight (sd 10)
    a_plus: int = 40
    a_minus: int = 60


def pattern_stimulus(rng, steps: int, cfg: PatternConfig, pattern: np.ndarray):
    """Background Poisson raster of (steps, M) with ``pattern`` ((L, n_pat) bool) pasted onto inputs 0..n_pat-1 at
    random non-overlapping onsets (gaps uniform in [0.5, 1.5] x the mean gap).  Returns (raster, onsets)."""
    L = cfg.length
    raster = rng.random((steps, cfg.n_inputs)) < cfg.rate
    gap = L * (1 / cfg.frac - 1)
    onsets = []
    t = int(rng.integers(L, 3 * L))
    while t + L <= steps:
        onsets.append(t)
        t += L + int(rng.integers(int(0.5 * gap), int(1.5 * gap) + 1))
    for t0 in onsets:
        raster[t0:t0 + L, :cfg.n_pat] = pattern
    return raster, np.array(onsets, dtype=np.int64)


def _windows(steps: int, onsets: np.ndarray, length: int, lag: int) -> np.ndarray:
    """Steps belonging to a detection window: pattern onset .. onset + length + lag (output spikes come later)."""
    inside = np.zeros(steps, dtype=bool)
    for t0 in onsets:
        inside[t0:t0 + length + lag] = True
    return inside


def selectivity(spikes: np.ndarray, onsets: np.ndarray, length: int, lag: int = 5) -> dict:
    """Hit rate (presentations with >= 1 output spike in [onset, onset + L + lag)), false alarms (spikes per
    second outside those windows, dt = 1 ms, and the fraction of pattern-free L-step windows with a spike)."""
    steps = spikes.shape[0]
    inside = _windows(steps, onsets, length, lag)
    hits = np.array([spikes[t0:t0 + length + lag].any() for t0 in onsets]) if onsets.size else np.zeros(0)
    out_steps = int((~inside).sum())
    fa_spikes = int(spikes[~inside].sum())
    # pattern-free windows of the same length, tiled over the stretches outside detection windows
    blocks = [i for i in range(0, steps - length - lag + 1, length + lag) if not inside[i:i + length + lag].any()]
    fa_win = float(np.mean([spikes[i:i + length + lag].any() for i in blocks])) if blocks else 0.0
    return {"hit_rate": float(hits.mean()) if hits.size else 0.0, "fa_hz": 1000.0 * fa_spikes / max(out_steps, 1),
            "fa_window_rate": fa_win}


def pattern_demo(backend: str = "golden", seed: int = 0, out=None, cfg: PatternConfig | None = None) -> DemoResult:
    """Train one neuron with STDP on noise + hidden pattern, measure selectivity before and after, plot."""
    cfg = cfg if cfg is not None else PatternConfig()
    start = time.monotonic()
    rng = np.random.default_rng(seed)
    n, m, k = cfg.n_core, cfg.n_inputs, cfg.n_active
    pattern = np.zeros((cfg.length, cfg.n_pat), dtype=bool)
    pattern[rng.integers(0, cfg.length, cfg.n_pat), np.arange(cfg.n_pat)] = True
    train, train_on = pattern_stimulus(rng, cfg.train_steps, cfg, pattern)
    test, test_on = pattern_stimulus(rng, cfg.test_steps, cfg, pattern)

    w = np.zeros((n + m, n), dtype=np.int64)
    w[n:, :k] = np.clip(np.rint(rng.normal(cfg.w0, 10, (m, k))), 0, 127)
    # a few neurons: mutual inhibition so that they can pick different parts of the pattern
    w[:k, :k] = np.where(np.eye(k, dtype=bool), 0, -100)
    mask = np.zeros((n + m, n), dtype=bool)
    mask[n:, :k] = True
    stdp = StdpParams(d_x=205, d_y=205, a_pre=128, a_post=128, a_plus=cfg.a_plus, a_minus=cfg.a_minus, s_plus=8,
                      s_minus=8, w_min=0, w_max=127, trace_mode=TraceMode.NEAREST)

    core = make_core(backend, n, m)
    try:
        core.set_weights(w)
        core.set_neuron_params(NeuronParams(theta=cfg.theta, d_v=205, d_i=819, t_ref=5))
        core.set_synapse_params(SynapseParams(w_exp=0))
        core.set_plastic(mask)
        core.set_stdp_params(stdp)
        w_before = core.weights()[n:, :k].astype(np.int64)

        def frozen_test():
            core.disable_stdp()
            core.reset_state()
            return core.run(cfg.test_steps, test)

        before = frozen_test()
        core.reset_state()
        core.enable_stdp()
        chunks, snaps = [], [w_before[:, 0]]
        for t0 in range(0, cfg.train_steps, cfg.chunk):
            chunks.append(core.run(min(cfg.chunk, cfg.train_steps - t0), train[t0:t0 + cfg.chunk]))
            snaps.append(core.weights()[n:, 0].astype(np.int64))
        train_spikes = np.concatenate(chunks)
        w_after = core.weights()[n:, :k].astype(np.int64)
        after = frozen_test()
    finally:
        _close(core)

    res = DemoResult("pattern", backend, spikes=[before, train_spikes, after, w_after])
    before, train_spikes, after = before[:, :k], train_spikes[:, :k], after[:, :k]
    sel_before = selectivity(before.any(axis=1), test_on, cfg.length)
    sel_after = selectivity(after.any(axis=1), test_on, cfg.length)
    pat_in, other_in = w_after[:cfg.n_pat, 0], w_after[cfg.n_pat:, 0]
    res.metrics = {
        "inputs / pattern inputs": f"{m} / {cfg.n_pat}", "train steps (1 ms)": cfg.train_steps,
        "w pattern inputs before": float(w_before[:cfg.n_pat, 0].mean()),
        "w other inputs before": float(w_before[cfg.n_pat:, 0].mean()),
        "w pattern inputs after": float(pat_in.mean()), "w other inputs after": float(other_in.mean()),
        "hit rate before": sel_before["hit_rate"], "false alarms before (Hz)": sel_before["fa_hz"],
        "FA window rate before": sel_before["fa_window_rate"],
        "hit rate after": sel_after["hit_rate"], "false alarms after (Hz)": sel_after["fa_hz"],
        "FA window rate after": sel_after["fa_window_rate"],
        "selectivity before (hit - FA win)": sel_before["hit_rate"] - sel_before["fa_window_rate"],
        "selectivity after (hit - FA win)": sel_after["hit_rate"] - sel_after["fa_window_rate"],
        "strong (w>=100) pattern / other": f"{int((pat_in >= 100).sum())} / {int((other_in >= 100).sum())}",
    }
    if out is not None:
        res.plots = _plot_pattern(Path(out), cfg, pattern, w_before[:, 0], w_after[:, 0], np.array(snaps), test,
                                  test_on, after[:, 0], train_spikes[:, 0], train_on)
    res.seconds = time.monotonic() - start
    return res


def _latencies(spikes: np.ndarray, onsets: np.ndarray, length: int, lag: int = 5):
    """(onset, first-spike latency or NaN) of every presentation."""
    lat = []
    for t0 in onsets:
        idx = np.flatnonzero(spikes[t0:t0 + length + lag])
        lat.append(idx[0] if idx.size else np.nan)
    return np.array(lat, dtype=float)


def _plot_pattern(out: Path, cfg, pattern, w0, w1, snaps, test, test_on, after, train_spikes, train_on) -> list:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    npat = cfg.n_pat
    # 1. weights before / after and their evolution
    fig, ax = _figure(1, 2, (11, 3.8))
    x = np.arange(cfg.n_inputs)
    ax[0, 0].bar(x - 0.2, w0, 0.4, color="0.6", label="before")
    ax[0, 0].bar(x + 0.2, w1, 0.4, color=np.where(x < npat, "tab:red", "tab:blue"), label="after")
    ax[0, 0].axvline(npat - 0.5, color="k", lw=0.8, ls="--")
    ax[0, 0].set(xlabel=f"input (0..{npat - 1}: pattern, red)", ylabel="weight (int8)",
                 title="input weights before (grey) / after (colour)")
    steps = np.arange(snaps.shape[0]) * cfg.chunk
    ax[0, 1].plot(steps, snaps[:, :npat].mean(axis=1), color="tab:red", label="pattern inputs")
    ax[0, 1].plot(steps, snaps[:, npat:].mean(axis=1), color="tab:blue", label="other inputs")
    ax[0, 1].fill_between(steps, snaps[:, :npat].min(axis=1), snaps[:, :npat].max(axis=1), color="tab:red",
                          alpha=0.15)
    ax[0, 1].fill_between(steps, snaps[:, npat:].min(axis=1), snaps[:, npat:].max(axis=1), color="tab:blue",
                          alpha=0.15)
    ax[0, 1].set(xlabel="training step (ms)", ylabel="weight", title="mean (range) weight during STDP training")
    ax[0, 1].legend()
    paths.append(out / "pattern_weights.png")
    fig.savefig(paths[-1], dpi=110)

    # 2. raster after training, pattern windows shaded
    fig, ax = _figure(2, 1, (11, 5))
    seg = slice(0, min(1000, test.shape[0]))
    a0 = ax[0, 0]
    for t0 in test_on[test_on < seg.stop]:
        a0.axvspan(t0, t0 + cfg.length, color="gold", alpha=0.35, lw=0)
        ax[1, 0].axvspan(t0, t0 + cfg.length, color="gold", alpha=0.35, lw=0)
    tt, kk = np.nonzero(test[seg])
    a0.scatter(tt, kk, s=2, c=np.where(kk < npat, "tab:red", "k"), marker="|")
    a0.set(ylabel="input", title="test raster after training (gold: pattern presentations, red: pattern inputs)")
    ax[1, 0].eventplot([np.flatnonzero(after[seg])], colors="tab:green", lineoffsets=0.5, linelengths=0.8)
    ax[1, 0].set(xlabel="step (ms)", ylabel="output spikes", yticks=[], xlim=a0.get_xlim())
    paths.append(out / "pattern_raster.png")
    fig.savefig(paths[-1], dpi=110)

    # 3. latency and selectivity over training
    fig, ax = _figure(1, 2, (11, 3.8))
    lat = _latencies(train_spikes, train_on, cfg.length)
    ax[0, 0].plot(train_on, lat, ".", ms=3)
    ax[0, 0].set(xlabel="pattern onset during training (ms)", ylabel="first-spike latency (ms)",
                 title="post-spike latency after pattern onset (missing = no spike)")
    win = 2000
    hit, fa = [], []
    edges = np.arange(0, train_spikes.shape[0] - win + 1, win)
    for e in edges:
        on = train_on[(train_on >= e) & (train_on + cfg.length + 5 <= e + win)] - e
        s = selectivity(train_spikes[e:e + win], on, cfg.length)
        hit.append(s["hit_rate"])
        fa.append(s["fa_window_rate"])
    ax[0, 1].plot(edges + win / 2, hit, "-o", ms=3, label="hit rate (pattern windows)")
    ax[0, 1].plot(edges + win / 2, fa, "-o", ms=3, label="false-alarm rate (pattern-free windows)")
    ax[0, 1].set(xlabel="training step (ms)", ylabel="fraction of windows with a spike", ylim=(-0.02, 1.02),
                 title="selectivity during training")
    ax[0, 1].legend()
    paths.append(out / "pattern_selectivity.png")
    fig.savefig(paths[-1], dpi=110)
    return paths


# -- (b) digits -------------------------------------------------------------------------------------------------


def load_digits_split(seed: int = 0, test_size: float = 0.3, pool: int = 1):
    """sklearn's bundled 8x8 digits (no download), stratified train/test split; ``pool=2`` averages 2x2 blocks
    (4x4 = 16 inputs, for small cores).  Returns (x_train, y_train, x_test, y_test), intensities 0..16."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = d.images.astype(float)
    if pool > 1:
        x = x.reshape(-1, 8 // pool, pool, 8 // pool, pool).mean(axis=(2, 4))
    x = x.reshape(len(x), -1)
    xtr, xte, ytr, yte = train_test_split(x, d.target, test_size=test_size, random_state=seed, stratify=d.target)
    return xtr, ytr, xte, yte


@dataclass(frozen=True)
class OnChipConfig:
    """Registers of the on-chip learning variant (shares sizes, steps, epochs, inhibition and t_ref with
    :class:`DigitsConfig`); homeostasis runs in the core (:mod:`models.snn.params`, "On-chip homeostasis").
    Chosen on a validation split (a stratified 20 % of the training split: 81.4 / 85.7 / 79.4 % for seeds
    0 / 1 / 2), never on the test split (held out: 83.1 / 78.7 / 80.4 % on its 540 images)."""

    theta: int = 4000
    w_exp: int = 2
    w0: int = 20                 #: initial input weights uniform in 0..w0
    a_plus: int = 8
    s_plus: int = 8
    x_tar: int = 0
    w_decay: int = 3             #: weight-dependent depression ceil(w / 2^w_decay) per post spike
    theta_plus: int = 400        #: adaptive threshold: raise per training spike ...
    d_theta: int = 1             #: ... decay code ...
    theta_period: int = 3        #: ... applied every 2^theta_period learning steps

    def stdp(self) -> StdpParams:
        return StdpParams(d_x=205, d_y=205, a_pre=128, a_post=128, a_plus=self.a_plus, a_minus=0,
                          s_plus=self.s_plus, s_minus=8, w_min=0, w_max=127, trace_mode=TraceMode.NEAREST,
                          x_tar=self.x_tar, w_decay=self.w_decay, theta_plus=self.theta_plus,
                          d_theta=self.d_theta, theta_period=self.theta_period)


@dataclass(frozen=True)
class DigitsConfig:
    """Sizes and registers of the digits demo."""

    n_train: int | None = None   #: training images used (None: the whole training split)
    n_test: int | None = None    #: test images scored (None: the whole test split)
    pool: int = 1                #: 1: 64 inputs; 2: 4x4 = 16 inputs
    n_core: int = 64             #: neurons of the core (hidden layer size of the unsupervised variants)
    steps: int = 60              #: presentation steps per image
    max_prob: float = 0.2        #: spike probability per step of a white pixel (16)
    # host-assisted unsupervised (epochs, inhibit, t_ref, infer_steps also serve ``onchip``); all chosen on a
    # validation split of the training set, never on the test split
    epochs: int = 2
    w_sum: int = 600             #: each hidden neuron's input weights are renormalised to this sum
    theta: int = 4000
    inhibit: int = -128          #: recurrent weight between different hidden neurons (x 2^w_exp)
    a_plus: int = 8
    w_exp: int = 2
    t_ref: int = 3
    theta_plus: int = 400        #: host-side homeostasis: threshold raise per training spike ...
    theta_keep: float = 0.998    #: ... and the fraction of the raise kept after each training image
    infer_steps: int | None = 150   #: presentation steps when labelling / testing (None: ``steps``)
    # supervised
    sup_steps: int = 100         #: presentation steps per image
    sup_max_prob: float = 0.5    #: spike probability per step of a white pixel
    out_spikes: float = 20.0     #: theta is set so that a typical winner fires about this often
    onchip: OnChipConfig = field(default_factory=OnChipConfig)  #: the on-chip learning variant


def _present(core, images: np.ndarray, steps: int, rng, max_prob: float, learn_hook=None, log=None) -> np.ndarray:
    """Rate-code and present each image for ``steps`` steps from a soft reset; (n_images, N) spike counts.
    ``log`` (a list) receives every (steps, N) raster."""
    from models.snn.stimulus import rate_code

    counts = []
    for idx, img in enumerate(images):
        spikes = rate_code(rng, img[None], steps, max_prob=max_prob, vmax=16.0)[0]
        core.reset_state()
        raster = core.run(steps, spikes)
        if log is not None:
            log.append(raster)
        counts.append(raster.sum(axis=0))
        if learn_hook is not None:
            learn_hook(idx, counts[-1])
    return np.array(counts)


def _normalise(w_in: np.ndarray, total: int) -> np.ndarray:
    s = w_in.sum(axis=0, keepdims=True)
    return np.clip(np.rint(w_in * (total / np.maximum(s, 1))), 0, 127).astype(np.int64)


def _digits_data(cfg: DigitsConfig, seed: int, data=None):
    """The demo's train/test split (``data`` or :func:`load_digits_split`), cut to ``n_train`` / ``n_test``."""
    xtr, ytr, xte, yte = data if data is not None else load_digits_split(seed, pool=cfg.pool)
    return xtr[:cfg.n_train], ytr[:cfg.n_train], xte[:cfg.n_test], yte[:cfg.n_test]


def _hidden_layer(cfg: DigitsConfig, w_in: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Initial weights of the unsupervised layer (``cfg.inhibit`` between different hidden neurons, ``w_in`` from
    the inputs) and its plasticity mask (the input rows only)."""
    n = cfg.n_core
    w = np.zeros((n + len(w_in), n), dtype=np.int64)
    w[:n] = np.where(np.eye(n, dtype=bool), 0, cfg.inhibit)
    w[n:] = w_in
    mask = np.zeros(w.shape, dtype=bool)
    mask[n:] = True
    return w, mask


def digits_unsupervised(backend: str = "golden", seed: int = 0, cfg: DigitsConfig | None = None,
                        data=None) -> dict:
    """Host-assisted variant: STDP-trained hidden layer with lateral inhibition, the host renormalising weights and
    adapting thresholds after every training image, then class-assignment readout.  Returns a dict."""
    cfg = cfg if cfg is not None else DigitsConfig()
    xtr, ytr, xte, yte = _digits_data(cfg, seed, data)
    rng = np.random.default_rng(seed + 1)
    n, m = cfg.n_core, xtr.shape[1]
    w, mask = _hidden_layer(cfg, _normalise(rng.uniform(0.5, 1.5, (m, n)), cfg.w_sum))
    core = make_core(backend, n, m)
    spikes_log = []
    try:
        core.set_weights(w)
        core.set_neuron_params(NeuronParams(theta=cfg.theta, d_v=205, d_i=819, t_ref=cfg.t_ref))
        core.set_synapse_params(SynapseParams(w_exp=cfg.w_exp))
        core.set_plastic(mask)
        core.set_stdp_params(StdpParams(d_x=205, d_y=205, a_pre=128, a_post=128, a_plus=cfg.a_plus, a_minus=0,
                                        s_plus=8, s_minus=8, w_min=0, w_max=127, trace_mode=TraceMode.NEAREST))
        w_init = core.weights()[n:].astype(np.int64)

        adapt = np.zeros(n)

        def renorm(_idx, counts):
            core.set_weights(_normalise(core.weights()[n:].astype(np.int64), cfg.w_sum), n)
            if cfg.theta_plus:
                adapt[:] = adapt * cfg.theta_keep + cfg.theta_plus * counts
                core.set_neuron_params(theta=(cfg.theta + np.rint(adapt)).astype(np.int64))

        core.enable_stdp()
        for _ in range(cfg.epochs):
            order = rng.permutation(len(xtr))
            _present(core, xtr[order], cfg.steps, rng, cfg.max_prob, renorm, spikes_log)
        core.disable_stdp()
        w_learned = core.weights()[n:].astype(np.int64)
        spikes_log.append(w_learned)
        steps = cfg.infer_steps or cfg.steps
        c_tr = _present(core, xtr, steps, rng, cfg.max_prob, log=spikes_log)
        c_te = _present(core, xte, steps, rng, cfg.max_prob, log=spikes_log)
    finally:
        _close(core)

    return {**_class_vote(c_tr, ytr, c_te, yte), "w_init": w_init, "w_learned": w_learned, "spikes": spikes_log,
            "n_train": len(xtr), "n_test": len(xte), "n_hidden": n}


def _class_vote(c_tr: np.ndarray, ytr: np.ndarray, c_te: np.ndarray, yte: np.ndarray) -> dict:
    """Readout of hidden spike counts: each neuron is labelled (on the training set only) with the class it
    responds to most; a test image gets the class whose neurons respond most on average.  Also a logistic
    regression on the counts."""
    n = c_tr.shape[1]
    mean_resp = np.array([c_tr[ytr == c].mean(axis=0) if (ytr == c).any() else np.zeros(n)
                          for c in range(10)])                                     # (10, N)
    assign = mean_resp.argmax(axis=0)
    active = c_tr.sum(axis=0) > 0
    votes = np.zeros((len(c_te), 10))
    for c in range(10):
        sel = (assign == c) & active
        if sel.any():
            votes[:, c] = c_te[:, sel].mean(axis=1)
    pred = votes.argmax(axis=1)
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000, C=1.0).fit(c_tr, ytr)
    return {"accuracy": float((pred == yte).mean()), "accuracy_linear": float(clf.score(c_te, yte)),
            "assign": assign, "active": active, "pred": pred, "y_test": yte,
            "silent_test": float((c_te.sum(axis=1) == 0).mean()), "mean_spikes": float(c_te.sum(axis=1).mean())}


def digits_onchip(backend: str = "golden", seed: int = 0, cfg: DigitsConfig | None = None, data=None) -> dict:
    """Purely on-chip unsupervised learning: STDP with weight-dependent depression and adaptive thresholds run
    in the core; the host only presents images (soft reset, run) and reads spike counts for the class-vote
    readout.  Returns the same dict as :func:`digits_unsupervised` plus the final adaptive thresholds."""
    cfg = cfg if cfg is not None else DigitsConfig()
    oc = cfg.onchip
    stdp = oc.stdp()
    xtr, ytr, xte, yte = _digits_data(cfg, seed, data)
    rng = np.random.default_rng(seed + 1)
    n, m = cfg.n_core, xtr.shape[1]
    w, mask = _hidden_layer(cfg, rng.integers(0, oc.w0, (m, n), endpoint=True))
    core = make_core(backend, n, m)
    spikes_log = []
    try:
        core.set_weights(w)
        core.set_neuron_params(NeuronParams(theta=oc.theta, d_v=205, d_i=819, t_ref=cfg.t_ref))
        core.set_synapse_params(SynapseParams(w_exp=oc.w_exp))
        core.enable_stdp(stdp, mask)
        for _ in range(cfg.epochs):
            order = rng.permutation(len(xtr))
            _present(core, xtr[order], cfg.steps, rng, cfg.max_prob, log=spikes_log)
        core.disable_stdp()
        w_learned = core.weights()[n:].astype(np.int64)
        adapt = core.adaptation()
        spikes_log.append(w_learned)
        steps = cfg.infer_steps or cfg.steps
        c_tr = _present(core, xtr, steps, rng, cfg.max_prob, log=spikes_log)
        c_te = _present(core, xte, steps, rng, cfg.max_prob, log=spikes_log)
    finally:
        _close(core)
    return {**_class_vote(c_tr, ytr, c_te, yte), "w_init": w[n:], "w_learned": w_learned, "adaptation": adapt,
            "spikes": spikes_log, "n_train": len(xtr), "n_test": len(xte), "n_hidden": n}


def train_softmax(x: np.ndarray, y: np.ndarray, epochs: int = 1000, lr: float = 5.0, l2: float = 1e-3,
                  seed: int = 0):
    """Multinomial logistic regression by full-batch gradient descent (numpy): returns W (d, 10), b (10,)."""
    rng = np.random.default_rng(seed)
    d = x.shape[1]
    w = rng.normal(0, 0.01, (d, 10))
    b = np.zeros(10)
    onehot = np.eye(10)[y]
    for _ in range(epochs):
        z = x @ w + b
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        g = (p - onehot) / len(x)
        w -= lr * (x.T @ g + l2 * w)
        b -= lr * g.sum(axis=0)
    return w, b


def digits_supervised(backend: str = "golden", seed: int = 0, cfg: DigitsConfig | None = None, data=None) -> dict:
    """Offline softmax regression -> int8 weights -> spiking inference on the core.  Returns a dict."""
    cfg = cfg if cfg is not None else DigitsConfig()
    xtr, ytr, xte, yte = _digits_data(cfg, seed, data)
    rate = cfg.sup_max_prob / 16.0                      # expected spikes per step per intensity unit
    wf, bf = train_softmax(xtr * rate, ytr, seed=seed)
    float_acc = float(((xte * rate @ wf + bf).argmax(axis=1) == yte).mean())
    scale = 127.0 / np.abs(wf).max()
    wq = np.rint(wf * scale).astype(np.int64)
    bq = np.rint(bf * scale).astype(np.int64)
    quant_acc = float(((xte * rate @ wq + bq).argmax(axis=1) == yte).mean())
    n, m = cfg.n_core, xtr.shape[1]
    # threshold: a typical winner (median over training images of the top expected drive) fires ~out_spikes times
    drive = (xtr * rate @ wq + bq).max(axis=1)
    theta = int(max(1, np.rint(np.median(drive) * cfg.sup_steps / cfg.out_spikes)))
    w = np.zeros((n + m, n), dtype=np.int64)
    w[n:, :10] = wq
    bias = np.zeros(n, dtype=np.int64)
    bias[:10] = bq
    rng = np.random.default_rng(seed + 2)
    core = make_core(backend, n, m)
    from models.snn.stimulus import rate_code

    counts, resid, rasters = [], [], []
    try:
        core.set_weights(w)
        core.set_neuron_params(NeuronParams(theta=theta, bias=bias, d_v=0, d_i=4096, t_ref=0,
                                            reset_mode=ResetMode.SUBTRACT))
        core.set_synapse_params(SynapseParams(w_exp=0))
        for img in xte:
            spikes = rate_code(rng, img[None], cfg.sup_steps, max_prob=cfg.sup_max_prob, vmax=16.0)[0]
            core.reset_state()
            ras = core.run(cfg.sup_steps, spikes)
            rasters.append(ras)
            counts.append(ras.sum(axis=0)[:10])
            resid.append(np.asarray(core.membrane())[:10])
    finally:
        _close(core)
    counts, resid = np.array(counts), np.array(resid)
    score = counts * theta + resid           # subtractive reset: count * theta + v = the integrated drive
    pred = score.argmax(axis=1)
    pred_counts = counts.argmax(axis=1)
    return {"accuracy": float((pred == yte).mean()), "accuracy_counts_only": float((pred_counts == yte).mean()),
            "float_accuracy": float_acc, "int8_rate_accuracy": quant_acc, "theta": theta, "wq": wq, "bq": bq,
            "counts": counts, "pred": pred, "y_test": yte, "spikes": rasters, "n_train": len(xtr),
            "n_test": len(xte)}


#: digit variants: on-chip learning (the default), host-assisted STDP, offline-trained int8 weights
DIGIT_VARIANTS = ("supervised", "onchip", "unsupervised")


def _unsupervised_metrics(label: str, r: dict, seconds: float) -> dict:
    return {f"{label}: train / test / hidden": f"{r['n_train']} / {r['n_test']} / {r['n_hidden']}",
            f"{label}: STDP acc (class vote)": r["accuracy"],
            f"{label}: STDP + linear readout": r["accuracy_linear"],
            f"{label}: active hidden neurons": int(r["active"].sum()),
            f"{label}: silent test images": r["silent_test"],
            f"{label}: seconds": seconds}


def digits_demo(backend: str = "golden", seed: int = 0, out=None, cfg: DigitsConfig | None = None,
                variants=("supervised", "onchip")) -> DemoResult:
    """Digit variants on one split (:data:`DIGIT_VARIANTS`); plots the learned receptive fields, confusion
    matrices, int8 weights."""
    cfg = cfg if cfg is not None else DigitsConfig()
    unknown = set(variants) - set(DIGIT_VARIANTS)
    if unknown:
        raise ValueError(f"unknown digit variants {sorted(unknown)}; choose from {DIGIT_VARIANTS}")
    start = time.monotonic()
    data = load_digits_split(seed, pool=cfg.pool)
    res = DemoResult("digits", backend)
    sup = None
    learned = []
    for variant in variants:
        t0 = time.monotonic()
        if variant == "supervised":
            sup = digits_supervised(backend, seed, cfg, data)
            res.metrics.update({
                "supervised: train / test images": f"{sup['n_train']} / {sup['n_test']}",
                "supervised: float softmax acc": sup["float_accuracy"],
                "supervised: int8 (expected rates)": sup["int8_rate_accuracy"],
                "supervised: int8 spiking acc": sup["accuracy"],
                "supervised: spiking acc (counts only)": sup["accuracy_counts_only"],
                "supervised: seconds": time.monotonic() - t0})
            res.spikes.append(sup["spikes"])
        elif variant == "onchip":
            r = digits_onchip(backend, seed, cfg, data)
            res.metrics.update(_unsupervised_metrics("on-chip", r, time.monotonic() - t0))
            res.metrics["on-chip: median adaptation"] = int(np.median(r["adaptation"]))
            learned.append(("digits_onchip", "on-chip STDP + homeostasis", r))
            res.spikes.append(r["spikes"])
        else:
            r = digits_unsupervised(backend, seed, cfg, data)
            res.metrics.update(_unsupervised_metrics("host-assisted", r, time.monotonic() - t0))
            learned.append(("digits_stdp", "STDP + host normalisation", r))
            res.spikes.append(r["spikes"])
    if out is not None:
        res.plots = _plot_digits(Path(out), cfg, sup, learned)
    res.seconds = time.monotonic() - start
    return res


def _confusion(ax, y, pred, title):
    cm = np.zeros((10, 10), dtype=int)
    np.add.at(cm, (y, pred), 1)
    ax.imshow(cm, cmap="Blues")
    for i in range(10):
        for j in range(10):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=6,
                        color="w" if cm[i, j] > cm.max() / 2 else "k")
    ax.set(xlabel="predicted", ylabel="true", title=title, xticks=range(10), yticks=range(10))


def _plot_digits(out: Path, cfg, sup, learned) -> list:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for prefix, title, r in learned:
        paths += _plot_learned(out, cfg, prefix, title, r)
    side = 8 // cfg.pool
    if sup is not None:
        fig, ax = _figure(2, 6, (12, 4.4))
        lim = np.abs(sup["wq"]).max()
        for c in range(10):
            a = ax[c // 5, c % 5]
            a.imshow(sup["wq"][:, c].reshape(side, side), cmap="RdBu_r", vmin=-lim, vmax=lim)
            a.set_axis_off()
            a.set_title(f"class {c}", fontsize=8)
        _confusion(ax[0, 5], sup["y_test"], sup["pred"], f"int8 spiking: {sup['accuracy']:.1%}")
        ax[1, 5].hist(sup["counts"].max(axis=1), bins=20, color="tab:green")
        ax[1, 5].set(xlabel="winner spike count", ylabel="test images")
        fig.suptitle("offline-trained int8 weights (64 -> 10) and spiking inference")
        paths.append(out / "digits_int8.png")
        fig.savefig(paths[-1], dpi=100)
    return paths


def _plot_learned(out: Path, cfg, prefix: str, title: str, r: dict) -> list:
    """Receptive fields before / after learning and the confusion matrix of one unsupervised variant."""
    side = 8 // cfg.pool
    n = r["n_hidden"]
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, ax = _figure(rows, 2 * cols, (2 * cols * 0.9, rows * 1.0))
    for j in range(rows * cols):
        row, c = divmod(j, cols)
        for half, wmat in ((0, r["w_init"]), (1, r["w_learned"])):
            a = ax[row, c + half * cols]
            a.set_axis_off()
            if j < n:
                a.imshow(wmat[:, j].reshape(side, side), cmap="gray_r", vmin=0)
                if half:
                    a.set_title(str(r["assign"][j]) if r["active"][j] else "-", fontsize=7, pad=1)
    fig.suptitle(f"{title}: input weights before (left) / after (right, title = assigned class)")
    paths = [out / f"{prefix}_weights.png"]
    fig.savefig(paths[-1], dpi=100)
    fig, ax = _figure(1, 1, (4.5, 4.2))
    _confusion(ax[0, 0], r["y_test"], r["pred"], f"{title}: {r['accuracy']:.1%}")
    paths.append(out / f"{prefix}_confusion.png")
    fig.savefig(paths[-1], dpi=110)
    return paths


def same_spikes(a, b) -> bool:
    """Whether two nested lists of spike arrays (``DemoResult.spikes``) are identical."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_spikes(x, y) for x, y in zip(a, b, strict=True))
    return a == b


#: ``--backend rtl`` sizes: the same network, far fewer steps / images (the simulated UART is the bottleneck)
RTL_PATTERN = PatternConfig()
RTL_DIGITS = DigitsConfig(n_train=60, n_test=40, epochs=1)
