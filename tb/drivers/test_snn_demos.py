"""Small, fast versions of the SNN demos (drivers/snn_demos.py) and the RTL-vs-golden check of their spikes."""
import numpy as np
import pytest

from drivers import snn_demos as demos

SMALL_PATTERN = demos.PatternConfig(train_steps=12000, test_steps=3000)


def test_pattern_stdp_potentiates_pattern_inputs(tmp_path):
    res = demos.pattern_demo("golden", seed=0, out=tmp_path, cfg=SMALL_PATTERN)
    m = res.metrics
    gap_before = m["w pattern inputs before"] - m["w other inputs before"]
    gap_after = m["w pattern inputs after"] - m["w other inputs after"]
    assert gap_after > gap_before + 10, m
    assert m["false alarms after (Hz)"] < m["false alarms before (Hz)"], m
    assert len(res.plots) == 3
    for p in res.plots:
        assert p.exists() and p.stat().st_size > 10_000
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_digits_supervised_int8():
    """64 -> 10 softmax trained offline, int8 on the core, spiking inference on a held-out stratified split."""
    cfg = demos.DigitsConfig(n_train=None, n_test=200, n_core=16, sup_steps=50)
    r = demos.digits_supervised("golden", seed=0, cfg=cfg)
    assert r["n_test"] == 200
    assert r["accuracy"] >= 0.85, r["accuracy"]
    assert np.abs(r["wq"]).max() <= 127


def test_digits_unsupervised_runs_small():
    cfg = demos.DigitsConfig(n_train=60, n_test=30, n_core=16, steps=30, theta_plus=500, w_exp=2, w_sum=600,
                             theta=5000, inhibit=-128, max_prob=0.2)
    r = demos.digits_unsupervised("golden", seed=0, cfg=cfg)
    assert not np.array_equal(r["w_init"], r["w_learned"]), "STDP must change the input weights"
    assert 0 <= r["accuracy"] <= 1


@pytest.mark.parametrize("which", ["pattern", "supervised", "unsupervised"])
def test_rtl_backend_matches_golden(which):
    """A short run of each demo on the Verilated RTL (16x16 core behind the UART) gives the golden spikes."""
    pytest.importorskip("amaranth")

    def run(backend):
        if which == "pattern":
            cfg = demos.PatternConfig(n_inputs=16, n_core=16, n_active=2, n_pat=8, theta=2000, w0=60,
                                      train_steps=600, test_steps=300, chunk=300)
            return demos.pattern_demo(backend, seed=3, cfg=cfg).spikes
        cfg = demos.DigitsConfig(pool=2, n_core=16, n_train=6, n_test=4, steps=20, w_sum=300, theta=1500,
                                 theta_plus=200, max_prob=0.5, sup_steps=20)
        if which == "supervised":
            return demos.digits_supervised(backend, seed=0, cfg=cfg)["spikes"]
        return demos.digits_unsupervised(backend, seed=0, cfg=cfg)["spikes"]

    gold = run("golden")
    assert sum(int(np.asarray(s).sum()) for s in _flat(gold)) > 0, "the golden run should spike"
    assert demos.same_spikes(run("rtl"), gold)


def _flat(x):
    if isinstance(x, np.ndarray):
        yield x
    else:
        for item in x:
            yield from _flat(item)


def test_digits_onchip_learns_without_the_host():
    """Small on-chip run: only images are presented, yet weights change, thresholds adapt, the weight leak keeps
    every neuron's input weights bounded, and the class vote beats the same network before learning."""
    cfg = demos.DigitsConfig(n_train=200, n_test=150, n_core=32, epochs=1, infer_steps=60)
    r = demos.digits_onchip("golden", seed=0, cfg=cfg)
    untrained = demos.digits_onchip("golden", seed=0, cfg=demos.DigitsConfig(
        n_train=200, n_test=150, n_core=32, epochs=0, infer_steps=60))
    assert not np.array_equal(r["w_init"], r["w_learned"])
    assert (r["adaptation"] > 0).mean() >= 0.9, r["adaptation"]
    oc = cfg.onchip
    # steady state: ceil(w / 2^k) = potentiation <= (A+ * 128) >> s+  =>  w <= 2^k * that
    w_bound = (1 << oc.w_decay) * ((oc.a_plus * 128) >> oc.s_plus)
    assert r["w_learned"].max() <= max(w_bound, oc.w0), r["w_learned"].max()
    assert r["accuracy"] >= untrained["accuracy"] + 0.15, (r["accuracy"], untrained["accuracy"])
    assert r["accuracy"] >= 0.5, r["accuracy"]


def test_digits_onchip_rtl_matches_golden():
    """The on-chip learning variant on the Verilated RTL (16 neurons, 16 inputs, 10 training images): every spike,
    the learned weights and the adaptive thresholds equal the golden model's."""
    pytest.importorskip("amaranth")
    # the 16-neuron, 16-input core of the other RTL demo tests (one cached build), a lower threshold for 4x4 images
    cfg = demos.DigitsConfig(pool=2, n_core=16, n_train=10, n_test=5, epochs=1, steps=40, infer_steps=30,
                             max_prob=0.5, onchip=demos.OnChipConfig(theta=1500, w0=60))
    gold = demos.digits_onchip("golden", seed=0, cfg=cfg)
    assert (gold["adaptation"] > 0).any(), "the thresholds should adapt"
    assert not np.array_equal(gold["w_init"], gold["w_learned"]), "STDP must change the input weights"
    rtl = demos.digits_onchip("rtl", seed=0, cfg=cfg)
    assert demos.same_spikes(rtl["spikes"], gold["spikes"])
    np.testing.assert_array_equal(rtl["w_learned"], gold["w_learned"])
    np.testing.assert_array_equal(rtl["adaptation"], gold["adaptation"])


def test_digits_demo_plots_every_variant(tmp_path):
    cfg = demos.DigitsConfig(n_train=40, n_test=20, n_core=16, epochs=1, infer_steps=30, sup_steps=20)
    res = demos.digits_demo("golden", 0, tmp_path, cfg, variants=demos.DIGIT_VARIANTS)
    names = sorted(p.name for p in res.plots)
    assert names == ["digits_int8.png", "digits_onchip_confusion.png", "digits_onchip_weights.png",
                     "digits_stdp_confusion.png", "digits_stdp_weights.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in res.plots)
    assert "on-chip: STDP acc (class vote)" in res.metrics and "host-assisted: STDP acc (class vote)" in res.metrics
    with pytest.raises(ValueError, match="bogus"):
        demos.digits_demo("golden", 0, None, cfg, variants=("bogus",))
