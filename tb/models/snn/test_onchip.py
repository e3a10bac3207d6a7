"""On-chip homeostasis of the golden model (adaptive threshold, weight-dependent depression, x_tar), by hand.

Every expected number below is worked out from the rules in the :mod:`models.snn.params` docstring, not taken
from a run of the model.
"""
import numpy as np
import pytest

from models.snn.golden import GoldenCore
from models.snn.params import CoreConfig, NeuronParams, StdpParams


def bias_neuron(stdp: StdpParams, *, theta=100, bias=30) -> GoldenCore:
    """One non-leaky neuron driven by ``bias`` per step, plus one silent input whose synapse is the only
    plastic one (its trace stays 0, so with a_minus = 0 the weights never change): learning on, nothing learned."""
    core = GoldenCore(CoreConfig(1, 1, 1), neurons=NeuronParams(theta=theta, bias=bias, t_ref=0))
    mask = np.array([[False], [True]])
    core.enable_stdp(stdp, mask)
    return core


def spike_steps(raster) -> list[int]:
    return [int(t) for t in np.flatnonzero(raster[:, 0])]


def test_adaptive_threshold_raises_the_threshold_per_spike():
    # v climbs 30 per step from 0.  theta 100: first spike at v=120 (step 3), a=50.  Then theta+a=150: v=150 at
    # the 5th step after the reset (step 8), a=100.  Then 200: v=210 at the 7th step (step 15), a=150.
    core = bias_neuron(StdpParams(a_plus=1, theta_plus=50))
    assert spike_steps(core.run(16)) == [3, 8, 15]
    assert core.adaptation().tolist() == [150]
    # without the raise: a spike every 4 steps
    plain = bias_neuron(StdpParams(a_plus=1))
    assert spike_steps(plain.run(16)) == [3, 7, 11, 15]
    assert plain.adaptation().tolist() == [0]


def test_adaptation_decays_once_per_period():
    # theta_period 2: decay in the steps that start with tick 0, i.e. steps 0, 4, 8, ...  One spike at step 3
    # (a = 40005); d_theta 2048 halves a, truncating: 20002 (step 4), 10001 (step 8), 5000 (step 12), 2500
    # (step 16).  The raised threshold keeps the neuron from firing again within 17 steps.
    core = bias_neuron(StdpParams(a_plus=1, theta_plus=40005, d_theta=2048, theta_period=2))
    seen = []
    for _ in range(17):
        core.run(1)
        seen.append(int(core.adaptation()[0]))
    assert seen == [0, 0, 0, 40005] + [20002] * 4 + [10001] * 4 + [5000] * 4 + [2500]
    assert core.tick == 17 % 4


def test_adaptation_is_frozen_without_learning_but_still_raises_the_threshold():
    core = bias_neuron(StdpParams(a_plus=1, theta_plus=60, d_theta=4096))
    core.run(4)                       # spike at step 3: a = 60 (full decay only hits from step 4 on)
    assert core.adaptation().tolist() == [60]
    core.disable_stdp()
    core.reset_state()                # the soft reset keeps a (learned state) ...
    assert core.adaptation().tolist() == [60]
    tick = core.tick
    # ... and the threshold is 100 + 60: v = 180 >= 160 at step 5, then again at step 11
    assert spike_steps(core.run(12)) == [5, 11]
    assert core.adaptation().tolist() == [60] and core.tick == tick
    core.clear_all()
    assert core.adaptation().tolist() == [0] and core.tick == 0


def test_adaptation_saturates_at_16_bits():
    core = bias_neuron(StdpParams(a_plus=1, theta_plus=40000), theta=-50000, bias=0)  # v = 0: fires twice
    core.run(2)
    assert core.adaptation().tolist() == [65535]


def test_subtract_reset_removes_the_effective_threshold():
    from models.snn.params import ResetMode

    core = GoldenCore(CoreConfig(1, 1, 1), neurons=NeuronParams(theta=100, bias=70, reset_mode=ResetMode.SUBTRACT))
    core.enable_stdp(StdpParams(a_plus=1, theta_plus=20), np.array([[False], [True]]))
    # v: 70, 140 >= 100 -> 140 - 100 = 40 (a = 20); 110 < 120; 180 >= 120 -> 180 - 120 = 60 (a = 40)
    assert spike_steps(core.run(4)) == [1, 3]
    assert core.membrane().tolist() == [60]


def post_spike_update(stdp: StdpParams, w_in) -> list[int]:
    """Weights of 3 inputs onto one always-firing neuron after one learning step in which input 0's trace is
    decay(100, 2048) = 50 and the others' are 0."""
    core = GoldenCore(CoreConfig(1, 3, 1), neurons=NeuronParams(theta=10, bias=10, t_ref=0))
    w = np.zeros((4, 1), dtype=np.int64)
    w[1:, 0] = w_in
    core.set_weights(w)
    core.set_plastic(np.array([[False], [True], [True], [True]]))
    core.set_stdp_params(stdp)
    core.run(1, np.array([[1, 0, 0]]))          # learning off: input 0 fires, x = 100
    core.enable_stdp()
    core.run(1, np.zeros((1, 3)))
    return core.weights()[1:, 0].tolist()


BASE = dict(d_x=2048, a_pre=100, a_plus=10, s_plus=2, w_min=-128, w_max=127)


def test_weight_dependent_depression_by_hand():
    # dw = ((10 * xd) >> 2) - ceil(w / 8): input 0: 500 >> 2 = 125, 40 -> 40 + 125 - 5 = 160 -> clamp 127;
    # input 1: 0 - ceil(100/8) = -13 -> 87; input 2: ceil(-9/8) = -1 -> -9 + 1 = -8
    assert post_spike_update(StdpParams(**BASE, w_decay=3), [40, 100, -9]) == [127, 87, -8]
    # w_decay 0 is off: only the potentiation of input 0
    assert post_spike_update(StdpParams(**BASE), [0, 100, -9]) == [125, 100, -9]


def test_x_tar_rule_by_hand():
    # dw = (10 * (xd - 21)) >> 2 (floor): input 0: 290 >> 2 = 72; silent inputs: -210 >> 2 = -53 (not -52)
    # with w_decay 3 as well: 40 + 72 - 5 = 107; 100 - 53 - 13 = 34; -9 - 53 + 1 = -61
    assert post_spike_update(StdpParams(**BASE, x_tar=21), [40, 100, -9]) == [112, 47, -62]
    assert post_spike_update(StdpParams(**BASE, x_tar=21, w_decay=3), [40, 100, -9]) == [107, 34, -61]


def test_leak_keeps_a_neurons_input_weights_bounded():
    """Every post spike moves each weight towards 2^k x its potentiation: with potentiation p per spike the
    weight settles where ceil(w / 2^k) = p, whatever the start, instead of running to w_max."""
    core = GoldenCore(CoreConfig(1, 2, 1), neurons=NeuronParams(theta=10, bias=10, t_ref=0))
    core.set_weights(np.array([[0], [5], [120]]))
    # both inputs fire every step, NEAREST traces without decay (d_x = 0): xd = 64 from step 1 on;
    # p = (4 * 64) >> 6 = 4; w_decay 2: the fixed points are the w with ceil(w / 4) = 4, i.e. 13..16
    core.enable_stdp(StdpParams(d_x=0, a_pre=64, a_plus=4, s_plus=6, w_min=0, w_max=127, w_decay=2,
                                trace_mode=1), np.array([[False], [True], [True]]))
    core.run(60, np.ones((60, 2)))
    assert all(13 <= w <= 16 for w in core.weights()[1:, 0].tolist()), core.weights()


def test_defaults_switch_homeostasis_off():
    s = StdpParams(a_plus=1)
    assert s.onchip_homeostasis() == {}
    core = bias_neuron(s)
    core.run(50)
    assert core.adaptation().tolist() == [0] and core.tick == 0


@pytest.mark.parametrize("field, value", [("x_tar", 256), ("w_decay", 16), ("theta_plus", 1 << 16),
                                          ("d_theta", 4097), ("theta_period", 16), ("theta_plus", -1)])
def test_bad_homeostasis_registers_fail_clearly(field, value):
    with pytest.raises(ValueError, match=field):
        StdpParams(**{field: value}).check_trace_bits(8)


def test_adaptive_threshold_by_hand_on_the_rtl():
    """The hand-worked adaptive-threshold example above on the Verilated RTL behind the UART: neuron 0 of a 4x4
    core is the bias-driven neuron, the others never fire."""
    pytest.importorskip("amaranth")
    from drivers.neurocore import NeuroCoreHost
    from drivers.transport import SimTransport
    from rtl.neurocore.uart_top import PRESETS

    core = NeuroCoreHost(SimTransport(PRESETS["4x4-sim"]))
    try:
        silent = (1 << 23) - 1
        core.set_neuron_params(NeuronParams(theta=[100, silent, silent, silent], bias=[30, 0, 0, 0], t_ref=0))
        mask = np.zeros((8, 4), dtype=bool)
        mask[4, 0] = True   # the silent input 0 -> neuron 0: learning on, nothing learned
        core.enable_stdp(StdpParams(a_plus=1, theta_plus=50, d_theta=4096, theta_period=4), mask)
        assert spike_steps(core.run(16)) == [3, 8, 15]
        # theta_period 4: tick 0 at the start of step 16, so a = 150 decays fully (d_theta 4096) to 0 there
        assert core.adaptation().tolist() == [150, 0, 0, 0] and core.tick == 0
        core.run(1)
        assert core.adaptation().tolist() == [0, 0, 0, 0] and core.tick == 1
        core.disable_stdp()
        core.reset_state()
        assert core.tick == 1
    finally:
        core.transport.close()


def test_homeostasis_encodings_by_hand():
    from models.snn.params import FixedScale, PhysStdp, decode_stdp, encode_stdp

    scale = FixedScale(dt=1e-3)
    # pre_cap 2 -> a_pre = 255 // 2 = 127; x_tar 0.25 spike -> round(31.75) = 32; tau_theta = 32768 steps: the
    # codes round(4096 * 2^k / 32768) are 0 (k <= 2: 0.125, 0.25, 0.5 round to 0), 1, 2, ..., 256 at k = 11
    s = encode_stdp(PhysStdp(a_plus=scale.w_lsb, x_tar=0.25, w_leak=0.125, theta_plus=400 * scale.v_lsb,
                             tau_theta=32.768), scale)
    assert (s.a_pre, s.x_tar, s.w_decay, s.theta_plus, s.d_theta, s.theta_period) == (127, 32, 3, 400, 256, 11)
    back = decode_stdp(s, scale)
    assert back.tau_theta == pytest.approx(32.768)
    assert back.w_leak == 0.125 and back.x_tar == pytest.approx(32 / 127)
    assert back.theta_plus == pytest.approx(400 * scale.v_lsb)
    off = decode_stdp(StdpParams(), scale)
    assert (off.x_tar, off.w_leak, off.theta_plus, off.tau_theta) == (0.0, 0.0, 0.0, np.inf)
    with pytest.raises(ValueError, match="w_leak"):
        encode_stdp(PhysStdp(w_leak=0.3), scale)
