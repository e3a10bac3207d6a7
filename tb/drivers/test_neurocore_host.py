"""The host API over the simulated UART (NeuroCoreHost + SimTransport) against GoldenCore, bit for bit.

Only the public host API is used on both sides: the same calls go to the golden model and to the Verilated
``neurocore_uart`` design through its serial pins.
"""
import numpy as np
import pytest

from drivers.neurocore import NeuroCoreHost
from drivers.transport import SerialTransport, SimTransport
from models.snn.golden import GoldenCore
from models.snn.params import NeuronParams, ResetMode, StdpParams, SynapseParams, TraceMode
from rtl.neurocore.uart_top import PRESETS

CFG = PRESETS["16x16-sim"]


def configure(dev, rng):
    c = CFG.core
    n, s = c.n_neurons, c.n_sources
    dev.set_weights(rng.integers(-60, 100, size=(s, n)))
    dev.set_plastic(rng.random((s, n)) < 0.7)
    dev.set_neuron_params(NeuronParams(
        theta=rng.integers(600, 3000, n), v_reset=rng.integers(-400, 100, n), v_rest=rng.integers(-200, 50, n),
        bias=rng.integers(-20, 60, n), d_v=rng.integers(0, 700, n), d_i=rng.integers(200, 4097, n),
        t_ref=rng.integers(0, 4, n)))
    dev.set_synapse_params(SynapseParams(w_exp=3))
    dev.enable_stdp(StdpParams(d_x=300, d_y=500, a_pre=100, a_post=90, a_plus=60, a_minus=30, s_plus=6,
                               s_minus=7, w_min=-50, w_max=110))


def test_host_vs_golden_stdp():
    """Random 16x16 network, 250 steps with STDP (two runs, parameters changed between them), every spike of
    every step, then weights, membranes, currents, traces and counters."""
    t = SimTransport(CFG)
    core = NeuroCoreHost(t)
    golden = GoldenCore(CFG.core.core_config)
    for dev in (core, golden):
        configure(dev, np.random.default_rng(1))
    w0 = golden.weights()
    rng = np.random.default_rng(11)
    inputs = rng.random((150, CFG.core.n_inputs)) < 0.3
    start = t.cycles
    got = core.run(150, inputs)
    cycles = t.cycles - start
    np.testing.assert_array_equal(got, golden.run(150, inputs))
    np.testing.assert_array_equal(core.weights(), golden.weights())
    for dev in (core, golden):
        dev.set_neuron_params(reset_mode=ResetMode.SUBTRACT, theta=np.full(16, 1500))
        dev.set_stdp_params(StdpParams(d_x=900, d_y=0, a_pre=200, a_post=255, a_plus=200, a_minus=30, s_plus=4,
                                       s_minus=9, w_min=-128, w_max=127, trace_mode=TraceMode.NEAREST))
    inputs = rng.random((100, CFG.core.n_inputs)) < 0.5
    np.testing.assert_array_equal(core.run(100, inputs), golden.run(100, inputs))
    np.testing.assert_array_equal(core.weights(), golden.weights())
    np.testing.assert_array_equal(core.plastic(), golden.plastic())
    np.testing.assert_array_equal(core.membrane(), golden.membrane())
    np.testing.assert_array_equal(core.membrane([3, 0, 9]), golden.membrane()[[3, 0, 9]])
    np.testing.assert_array_equal(core.current(), golden.current())
    x, y = core.traces()
    gx, gy = golden.traces()
    np.testing.assert_array_equal(x, gx)
    np.testing.assert_array_equal(y, gy)
    np.testing.assert_array_equal(core.counts(), golden.counts())
    assert golden.counts().sum() > 300, "the network should be active"
    assert not np.array_equal(golden.weights(), w0), "STDP must have learned"
    status, steps, _ = core.status()
    assert (status & 3, steps) == (int(golden.status), 250)
    # learning off, no inputs, then a soft reset
    for dev in (core, golden):
        dev.disable_stdp()
    np.testing.assert_array_equal(core.run(20), golden.run(20))
    for dev in (core, golden):
        dev.reset_state()
    np.testing.assert_array_equal(core.membrane(), golden.membrane())
    np.testing.assert_array_equal(core.run(10, np.ones((10, 16), bool)), golden.run(10, np.ones((10, 16), bool)))
    np.testing.assert_array_equal(core.weights(), golden.weights())
    print(f"UART run of 150 steps: {cycles} cycles, {cycles / 150:.0f} cycles/step "
          f"(divisor {CFG.divisor}); at 25 MHz: {25e6 * 150 / cycles:.0f} steps/s")
    t.close()


def test_serial_transport_without_pyserial(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_serial(name, *args, **kwargs):
        if name == "serial":
            raise ImportError("no module named serial")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_serial)
    with pytest.raises(ImportError, match="needs pyserial"):
        SerialTransport("/dev/null")


def test_host_vs_golden_4x4():
    """P = 2, 3-byte weight words, 1-byte inputs and rasters: 120 steps with STDP, runs longer than one frame."""
    cfg = PRESETS["4x4-sim"]
    t = SimTransport(cfg)
    core = NeuroCoreHost(t)
    core.max_payload = 64   # force RUN and weight writes to span several frames
    golden = GoldenCore(cfg.core.core_config)
    rng = np.random.default_rng(3)
    w = rng.integers(-30, 120, size=(8, 4))
    mask = rng.random((8, 4)) < 0.8
    for dev in (core, golden):
        dev.set_weights(w)
        dev.set_plastic(mask)
        dev.set_neuron_params(theta=700, t_ref=1, d_i=1000, d_v=200, bias=10)
        dev.set_synapse_params(SynapseParams(w_exp=2))
        dev.enable_stdp(StdpParams(a_plus=100, a_minus=30, s_plus=5, s_minus=8, w_min=-100, w_max=120))
    inputs = rng.random((120, 4)) < 0.5
    np.testing.assert_array_equal(core.run(120, inputs), golden.run(120, inputs))
    np.testing.assert_array_equal(core.weights(), golden.weights())
    np.testing.assert_array_equal(core.membrane([1, 3]), golden.membrane()[[1, 3]])
    assert golden.counts().sum() > 200
    assert (golden.weights() != w).sum() > 10, "STDP must have learned"
    t.close()


def test_host_vs_golden_homeostasis():
    """On-chip homeostasis over the UART: 200 learning steps with every homeostasis register on, then learning
    off and a soft reset (both keep ``a`` and ``tick``): spikes, weights, adaptive thresholds and the tick."""
    t = SimTransport(CFG)
    core = NeuroCoreHost(t)
    golden = GoldenCore(CFG.core.core_config)
    stdp = StdpParams(d_x=300, d_y=500, a_pre=100, a_post=90, a_plus=60, a_minus=30, s_plus=6, s_minus=7,
                      w_min=-50, w_max=110, x_tar=30, w_decay=2, theta_plus=400, d_theta=700, theta_period=3)
    for dev in (core, golden):
        configure(dev, np.random.default_rng(5))
        dev.enable_stdp(stdp)
    rng = np.random.default_rng(6)
    inputs = rng.random((200, CFG.core.n_inputs)) < 0.3
    np.testing.assert_array_equal(core.run(200, inputs), golden.run(200, inputs))
    np.testing.assert_array_equal(core.weights(), golden.weights())
    np.testing.assert_array_equal(core.adaptation(), golden.adaptation())
    np.testing.assert_array_equal(core.adaptation([2, 5]), golden.adaptation()[[2, 5]])
    assert core.tick == golden.tick
    assert golden.adaptation().max() > 0, "thresholds should have adapted"
    for dev in (core, golden):
        dev.disable_stdp()
        dev.reset_state()
    inputs = rng.random((50, CFG.core.n_inputs)) < 0.3
    np.testing.assert_array_equal(core.run(50, inputs), golden.run(50, inputs))
    np.testing.assert_array_equal(core.adaptation(), golden.adaptation())
    assert core.tick == golden.tick
    t.close()
