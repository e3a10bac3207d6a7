"""Hand-worked cases for the bit-exact SNN golden model (every expected number is derived in a comment)."""


import numpy as np
import pytest

from models.snn.golden import GoldenCore, Status, decay
from models.snn.params import (
    CoreConfig,
    FixedScale,
    NeuronParams,
    PhysNeuron,
    PhysStdp,
    ResetMode,
    StdpParams,
    SynapseParams,
    TraceMode,
    decay_code,
    decode_neurons,
    decode_stdp,
    encode_neurons,
    encode_stdp,
    encode_weights,
    tau_from_decay,
)

V_MAX = (1 << 23) - 1


def lone_neuron(**neuron) -> GoldenCore:
    core = GoldenCore(CoreConfig(n_neurons=1, n_inputs=0, lanes=1), neurons=NeuronParams(**neuron))
    core.set_probe([0])
    return core


# -- neuron -----------------------------------------------------------------------------------------------------


def test_threshold_step_and_refractory_by_hand():
    # v_rest = 0, bias = 300, d_v = 1024 (factor 3/4 per step), theta = 1000, t_ref = 2.
    # v[t] = trunc(3/4 v[t-1]) + 300:
    #   t=0: 0 + 300 = 300          t=1: 225 + 300 = 525       t=2: trunc(393.75) + 300 = 693
    #   t=3: trunc(519.75) = 519 + 300 = 819   t=4: trunc(614.25) = 614 + 300 = 914
    #   t=5: trunc(685.5) = 685 + 300 = 985    t=6: trunc(738.75) = 738 + 300 = 1038 >= 1000: spike, v <- 0
    # (float: 1200 (1 - 0.75^(t+1)) = 986.2 at t=5, 1039.8 at t=6: the same step.)
    # t=7, t=8: held at 0 (t_ref = 2); t=9 integrates again: 300, ... so the cycle repeats every 9 steps.
    core = lone_neuron(theta=1000, v_rest=0, v_reset=0, bias=300, d_v=1024, t_ref=2)
    raster = core.run(30)
    assert np.flatnonzero(raster[:, 0]).tolist() == [6, 15, 24]
    cycle = [300, 525, 693, 819, 914, 985, 0, 0, 0]
    assert core.last_probe.v[:, 0].tolist() == (cycle * 4)[:30]
    assert core.counts().tolist() == [3]


def test_refractory_holds_a_neuron_above_threshold():
    # v_reset = 2000 >= theta = 1000 and no leak: the neuron would fire every step, but t_ref = 3 holds it for 3
    # steps after each spike, so it fires at t = 0, 4, 8, ... (v = 2000 + 0 bias stays >= theta).
    core = lone_neuron(theta=1000, v_rest=2000, v_reset=2000, bias=0, d_v=0, t_ref=3)
    raster = core.run(13)
    assert np.flatnonzero(raster[:, 0]).tolist() == [0, 4, 8, 12]
    assert core.last_probe.v[:, 0].tolist() == [2000] * 13


def test_subtract_reset_keeps_the_overshoot():
    # bias 300, theta 1000, v_reset 0, no leak, SUBTRACT: v -= 1000 on a spike.
    # 300 600 900 1200->200 | 500 800 1100->100 | 400 700 1000->0 | 300 600 900 1200->200 ...
    # spikes at 3, 6, 9, 13, 16, 19 (three spikes per 10 steps = 300/1000).
    core = lone_neuron(theta=1000, v_rest=0, v_reset=0, bias=300, reset_mode=ResetMode.SUBTRACT)
    raster = core.run(20)
    assert np.flatnonzero(raster[:, 0]).tolist() == [3, 6, 9, 13, 16, 19]
    assert core.last_probe.v[:4, 0].tolist() == [300, 600, 900, 200]


def test_current_decays_with_truncation_toward_zero():
    # Input 0 -> neuron 0 with w = +100, -> neuron 1 with w = -100, w_exp = 3 (x8); d_i = 2048 halves I each step.
    # The input spikes at t=0, so acc = +-800 at t=1 (one-step delay), then I = trunc(I / 2):
    #   +: 0, 800, 400, 200, 100, 50, 25, 12, 6, 3, 1, 0
    #   -: 0, -800, ..., -25, -12 (floor would give -13), -6, -3, -1 (floor: -2), 0
    # With d_v = 4096 (v relaxes fully to v_rest = 0 each step) v equals the new I in the same step.
    core = GoldenCore(CoreConfig(n_neurons=2, n_inputs=1, lanes=1),
                      neurons=NeuronParams(theta=V_MAX, d_i=2048, d_v=4096), synapses=SynapseParams(w_exp=3))
    core.set_weights([[100, -100]], src0=2)
    core.set_probe([0, 1])
    inputs = np.zeros((12, 1), dtype=bool)
    inputs[0] = True
    core.run(12, inputs)
    expected = [0, 800, 400, 200, 100, 50, 25, 12, 6, 3, 1, 0]
    assert core.last_probe.i[:, 0].tolist() == expected
    assert core.last_probe.i[:, 1].tolist() == [-e for e in expected]
    assert core.last_probe.v[:, 1].tolist() == [-e for e in expected]
    # and the formula itself, on a few signs and codes
    x = np.array([1000, -1000, 7, -7, 0])
    assert decay(x, 1024).tolist() == [750, -750, 5, -5, 0]  # 5.25 -> 5, -5.25 -> -5
    assert decay(x, 0).tolist() == x.tolist() and decay(x, 4096).tolist() == [0] * 5


def test_decay_never_stalls():
    # snn.md's form x - ((x*d) >> 12) would leave x = 15 unchanged for d = 256; ours strictly shrinks |x|.
    x = np.arange(1, 1 << 10)[:, None]
    d = np.arange(1, 4097)[None, :]
    assert np.all(decay(x, d) < x) and np.all(decay(-x, d) > -x)


def test_recurrent_spike_arrives_one_step_later():
    # Neuron 0 fires at t=0 (bias >= theta); W[0 -> 1] = 50: neuron 1's I is 50 at t=1, not at t=0.
    core = GoldenCore(CoreConfig(n_neurons=2, n_inputs=0, lanes=1),
                      neurons=NeuronParams(theta=[1000, V_MAX], bias=[1000, 0], t_ref=255))
    core.set_weights([[0, 50], [0, 0]])
    core.set_probe([1])
    core.run(3)
    assert core.last_probe.i[:, 0].tolist() == [0, 50, 50]  # d_i = 0: no decay


def test_saturation_sets_sticky_flags():
    # v: 5e6 + 5e6 = 1e7 saturates to 2^23 - 1 at t=1 (== theta, so it also spikes).
    core = lone_neuron(theta=V_MAX, bias=5_000_000)
    raster = core.run(2)
    assert core.last_probe.v[0, 0] == 5_000_000 and raster[:, 0].tolist() == [False, True]
    assert core.status == Status.OVF_V
    # I: 600 inputs x 127 << 7 = 9,753,600 > 2^23 - 1; the 25-bit accumulator holds it exactly.
    cfg = CoreConfig(n_neurons=1, n_inputs=600, lanes=1)
    assert cfg.acc_bits == 25
    core = GoldenCore(cfg, neurons=NeuronParams(theta=V_MAX, d_v=4096), synapses=SynapseParams(w_exp=7))
    core.set_weights(np.full((600, 1), 127), src0=1)
    core.set_probe([0])
    core.run(2, np.ones((2, 600), dtype=bool))
    # v = v_rest + 0 + I = 2^23 - 1 exactly: no v overflow, only the current's flag
    assert core.last_probe.i[1, 0] == V_MAX and core.status == Status.OVF_I
    core.reset_state()
    assert core.status == Status.OK


def test_accumulator_width_covers_the_worst_case():
    cfg = CoreConfig()  # 256 + 256 sources
    assert cfg.acc_bits == 24
    assert -(1 << 23) <= cfg.n_sources * -128 * 128 and cfg.n_sources * 127 * 128 <= (1 << 23) - 1


# -- STDP -------------------------------------------------------------------------------------------------------
# One neuron, two inputs: row 0 = the neuron (self), row 1 = input 0 (the plastic "pre" synapse, w = 10),
# row 2 = input 1 (the "driver", w = 127, not plastic).  d_v = d_i = 4096 make v equal this step's input, so the
# neuron fires exactly one step after the driver: 127 << 3 = 1016 >= theta = 1000, while the pre synapse alone
# gives 10 << 3 = 80 < 1000.
PAIR_STDP = StdpParams(d_x=1024, d_y=2048, a_pre=200, a_post=100, a_plus=3, s_plus=4, a_minus=5, s_minus=2)


def pair_core(stdp=PAIR_STDP, learn=True) -> GoldenCore:
    core = GoldenCore(CoreConfig(n_neurons=1, n_inputs=2, lanes=1),
                      neurons=NeuronParams(theta=1000, d_v=4096, d_i=4096), synapses=SynapseParams(w_exp=3),
                      stdp=stdp)
    core.set_weights([[0], [10], [127]])
    mask = np.array([[False], [True], [False]])
    if learn:
        core.enable_stdp(mask=mask)
    else:
        core.set_plastic(mask)
    return core


def spikes(steps, pre=(), driver=()):
    inp = np.zeros((steps, 2), dtype=bool)
    inp[list(pre), 0] = True
    inp[list(driver), 1] = True
    return inp


def test_stdp_pre_before_post_then_post_before_pre():
    # Pre at t=2, driver at t=4 -> post spike at t=5; pre again at t=8.
    # pre trace x (d_x = 1024: x3/4): t2: 0 -> 200;  t3: 150;  t4: trunc(112.5) = 112;  t5: decayed 84, and the
    #   post spike potentiates by (A+ * 84) >> s+ = (3 * 84) >> 4 = 252 >> 4 = 15:  w = 10 + 15 = 25.
    # post trace y (d_y = 2048: x1/2): t5: 0 -> 100;  t6: 50;  t7: 25;  t8: decayed trunc(12.5) = 12, and the
    #   pre spike depresses by (A- * 12) >> s- = 60 >> 2 = 15:  w = 25 - 15 = 10.
    # (The pre spike at t=2 also runs the depression pass, with y = 0: no change.)
    core = pair_core()
    raster = core.run(6, spikes(6, pre=[2], driver=[4]))
    assert np.flatnonzero(raster[:, 0]).tolist() == [5]
    assert core.weights()[:, 0].tolist() == [0, 25, 127]
    # x after t5: the neuron as a source spiked at t5 (0 + 200), the pre input 84, the driver (t4: 200) 150
    assert core.traces()[0].tolist() == [200, 84, 150]
    raster = core.run(4, spikes(4, pre=[2]))  # global t = 6..9, pre at t = 8
    assert not raster.any()
    assert core.weights()[:, 0].tolist() == [0, 10, 127]


def test_stdp_clamps_at_w_max_and_w_min():
    # Same spikes with w_min = 18, w_max = 20.  t2: the pre spike's depression pass touches the masked weight with
    # a zero change and clamps it: 10 -> 18.  t5: 18 + 15 = 33 -> 20 (w_max).  t8: 20 - 15 = 5 -> 18 (w_min).
    core = pair_core(StdpParams(**{**PAIR_STDP.__dict__, "w_min": 18, "w_max": 20}))
    core.run(3, spikes(3, pre=[2]))
    assert core.weights()[1, 0] == 18
    core.run(3, spikes(3, driver=[1]))
    assert core.weights()[1, 0] == 20
    core.run(4, spikes(4, pre=[2]))
    assert core.weights()[1, 0] == 18


def test_same_step_pre_and_post_do_not_pair():
    # Pre at t=5 together with the post spike (driver at 4): the traces used exclude this step's spikes, both are 0.
    core = pair_core()
    core.run(6, spikes(6, pre=[5], driver=[4]))
    assert core.weights()[1, 0] == 10


def test_nearest_mode_sets_instead_of_adding():
    # Pre at t=1 and t=2, post at t=3 (driver at 2).
    # ADD:     x: t1 200; t2 150 + 200 = 350 -> saturates at 255; t3 decayed trunc(191.25) = 191 -> (3*191)>>4 = 35
    # NEAREST: x: t1 200; t2 set to 200;                         t3 decayed 150              -> (3*150)>>4 = 28
    for mode, dw in ((TraceMode.ADD, 35), (TraceMode.NEAREST, 28)):
        core = pair_core(StdpParams(**{**PAIR_STDP.__dict__, "trace_mode": mode}))
        core.run(4, spikes(4, pre=[1, 2], driver=[2]))
        assert core.weights()[1, 0] == 10 + dw, mode


def test_no_learning_without_mask_or_enable_but_traces_run():
    core = pair_core(learn=False)
    core.run(6, spikes(6, pre=[2], driver=[4]))
    assert core.weights()[1, 0] == 10
    assert core.traces()[0][1] == 84  # the traces evolved exactly as in the learning case
    with pytest.raises(ValueError, match="mask is all zero"):
        GoldenCore(CoreConfig(1, 2, 1), stdp=PAIR_STDP).enable_stdp()
    with pytest.raises(ValueError, match="both 0"):
        GoldenCore(CoreConfig(1, 2, 1)).enable_stdp(mask=np.ones((3, 1), dtype=bool))


def test_split_runs_equal_one_run():
    # The pending spike bitmap, counters and traces carry over: run(13) + run(17) == run(30), learning on.
    rng = np.random.default_rng(5)
    cfg = CoreConfig(n_neurons=16, n_inputs=8, lanes=4)
    w = rng.integers(-40, 90, (24, 16))
    inputs = rng.random((30, 8)) < 0.3

    def make():
        core = GoldenCore(cfg, neurons=NeuronParams(theta=3000, d_v=300, d_i=900, t_ref=1),
                          synapses=SynapseParams(w_exp=4),
                          stdp=StdpParams(a_plus=30, a_minus=20, s_plus=6, s_minus=6))
        core.set_weights(w)
        core.enable_stdp(mask=rng.random((24, 16)) < 0.5)
        return core

    a, b = make(), make()
    b.set_plastic(a.plastic())
    r_a = a.run(30, inputs)
    r_b = np.concatenate([b.run(13, inputs[:13]), b.run(17, inputs[13:])])
    assert r_a.any() and np.array_equal(r_a, r_b)
    assert np.array_equal(a.weights(), b.weights()) and not np.array_equal(a.weights(), w)
    assert np.array_equal(a.membrane(), b.membrane()) and np.array_equal(a.traces()[0], b.traces()[0])


def test_weights_read_back_in_loadable_form():
    core = GoldenCore(CoreConfig(4, 4, 2))
    w = np.arange(-16, 16).reshape(8, 4).astype(np.int8)
    core.set_weights(w)
    out = core.weights()
    assert out.dtype == np.int8 and np.array_equal(out, w)
    core.set_weights(out)
    with pytest.raises(ValueError, match="-128..127"):
        core.set_weights(np.full((1, 4), 128), src0=7)
    with pytest.raises(ValueError, match="exceed"):
        core.set_weights(np.zeros((2, 4), dtype=int), src0=7)


def test_golden_runs_at_full_size():
    rng = np.random.default_rng(0)
    core = GoldenCore(CoreConfig(256, 256, 4), neurons=NeuronParams(theta=15000, d_v=205, d_i=819, t_ref=2),
                      synapses=SynapseParams(w_exp=4), stdp=StdpParams(a_plus=10, a_minus=10))
    core.set_weights(rng.integers(-20, 60, (512, 256)))
    core.enable_stdp(mask=np.ones((512, 256), dtype=bool))
    inputs = rng.random((1000, 256)) < 0.05
    raster = core.run(1000, inputs)
    assert raster.shape == (1000, 256)
    assert raster.mean() > 0.01  # it is actually busy (learning, integrating); its speed is a benchmark matter


# -- parameters -------------------------------------------------------------------------------------------------


def test_encodings_by_hand():
    scale = FixedScale(dt=1e-3, v_lsb=1e-3 / 1024, w_exp=2)
    p = encode_neurons(PhysNeuron(tau_m=20e-3, tau_syn=5e-3, v_th=-50e-3, v_reset=-70e-3, v_rest=-65e-3,
                                  i_bias=1.0, t_ref=3e-3), scale)
    # d = round(4096 * 1/20) = round(204.8) = 205; round(4096/5) = round(819.2) = 819; -50 mV * 1024/mV = -51200;
    # bias = 1 V/s * 1 ms = 1 mV = 1024 LSB; t_ref = 3 ms / 1 ms - 1 = 2 held steps
    assert (p.d_v, p.d_i, p.theta, p.v_reset, p.v_rest, p.bias, p.t_ref) == (205, 819, -51200, -71680, -66560,
                                                                              1024, 2)
    back = decode_neurons(p, scale)
    assert back.tau_m == pytest.approx(4096e-3 / 205) and back.t_ref == pytest.approx(3e-3)
    assert decay_code(np.inf, 1e-3) == 0 and tau_from_decay(0, 1e-3) == np.inf
    # weights: w_lsb = 4 LSB = 4/1024 mV; 0.5 mV -> 128 -> out of int8
    assert encode_weights([0.25e-3, -0.25e-3], scale).tolist() == [64, -64]
    with pytest.raises(ValueError, match="outside int8"):
        encode_weights(0.5e-3, scale)
    # STDP: caps 2 spikes -> a_pre = 255 // 2 = 127; a_plus 1 weight LSB per pairing -> A/2^s = 1/127 ->
    # the largest shift with A <= 255 is s = 15: A = round(32768/127) = round(258.02) -> too big, s = 14: 129.
    s = encode_stdp(PhysStdp(tau_pre=16e-3, a_plus=scale.w_lsb, a_minus=0.0, w_min=-scale.w_lsb * 100,
                             w_max=scale.w_lsb * 100), scale)
    assert (s.d_x, s.a_pre, s.a_plus, s.s_plus, s.a_minus, s.w_min, s.w_max) == (256, 127, 129, 14, 0, -100, 100)
    assert decode_stdp(s, scale).a_plus == pytest.approx(129 * 127 / 2**14 * scale.w_lsb)


@pytest.mark.parametrize("make, error", [
    (lambda: CoreConfig(n_neurons=10, lanes=4), "multiple of lanes"),
    (lambda: CoreConfig(n_neurons=12, lanes=3), "power of two"),
    (lambda: NeuronParams(theta=1 << 23), r"-8388608..8388607"),
    (lambda: NeuronParams(d_v=4097), r"0..4096"),
    (lambda: NeuronParams(theta=1.5), "integer"),
    (lambda: NeuronParams(theta=[1, 2], bias=[1, 2, 3]), "different lengths"),
    (lambda: StdpParams(w_min=5, w_max=4), "must not exceed"),
    (lambda: StdpParams(s_plus=16), r"0..15"),
    (lambda: SynapseParams(w_exp=8), r"0..7"),
    (lambda: encode_neurons(PhysNeuron(tau_m=0.5e-3), FixedScale()), "shorter than dt"),
])
def test_bad_parameters_fail_clearly(make, error):
    with pytest.raises((ValueError, TypeError), match=error):
        make()


def test_wrong_shapes_fail_clearly():
    core = GoldenCore(CoreConfig(4, 2, 1))
    with pytest.raises(ValueError, match=r"shape \(5, 2\)"):
        core.run(5, np.zeros((5, 3), dtype=bool))
    with pytest.raises(ValueError, match="lengths"):
        core.set_neuron_params(theta=[1, 2, 3])
    with pytest.raises(ValueError, match="0..255"):
        core.set_stdp_params(StdpParams(a_pre=256))
