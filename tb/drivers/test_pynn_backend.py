"""The NeuroCore PyNN backend (drivers.pynn): mapping to registers, connectors, sources, recording, STDP, refusals.

Expected register values are computed here from the documented conversion formulas (drivers/pynn/mapping.py
docstring), independently of the backend's code, and the expected spikes come from a GoldenCore loaded by hand.
"""
import math

import neo
import numpy as np
import pytest

import drivers.pynn as sim
from drivers.pynn import simulator
from models.snn.golden import GoldenCore
from models.snn.params import CoreConfig, NeuronParams, SynapseParams

DT = 1.0
LSB = 2.0 ** -10   # mV: the finest voltage LSB, chosen when the weights allow it


def decay(tau):
    return round(4096 * (1 - math.exp(-DT / tau)))


@pytest.fixture(autouse=True)
def _end():
    yield
    sim.end()


def test_dc_neurons_equal_a_hand_loaded_golden_core():
    sim.setup(timestep=DT)
    i_off = np.array([0.6, 0.9, 1.2])
    pop = sim.Population(3, sim.IF_curr_exp(tau_m=20.0, cm=0.5, i_offset=i_off, v_thresh=-52.0, v_reset=-70.0,
                                            v_rest=-65.0, tau_refrac=3.0), label="dc")
    pop.record(["spikes", "v"])
    sim.run(200.0)
    seg = pop.get_data().segments[0]

    d_v = decay(20.0)
    bias = np.rint(i_off / 0.5 * 20.0 * d_v / 4096 / LSB).astype(np.int64)
    core = GoldenCore(CoreConfig(4, 4, 2))       # the 4x4 preset: the smallest that holds 3 neurons
    core.set_neuron_params(NeuronParams(theta=[round(-52 / LSB)] * 3 + [2 ** 23 - 1], v_reset=[round(-70 / LSB)] * 3
                                        + [0], v_rest=[round(-65 / LSB)] * 3 + [0], bias=list(bias) + [0],
                                        d_v=[d_v] * 3 + [0], d_i=[decay(5.0)] * 3 + [4096], t_ref=[2] * 3 + [0]))
    core.reset_state()
    raster = np.zeros((200, 4), dtype=bool)
    v = np.zeros((200, 4))
    for t in range(200):
        raster[t] = core.run(1)[0]
        v[t] = core.membrane() * LSB
    for j, train in enumerate(seg.spiketrains):
        np.testing.assert_array_equal(train.magnitude, np.flatnonzero(raster[:, j]) * DT)
    sig = seg.analogsignals[0]
    assert sig.shape == (201, 3) and str(sig.units.dimensionality) == "mV"
    np.testing.assert_array_equal(sig.magnitude[0], [-65.0] * 3)
    np.testing.assert_allclose(sig.magnitude[1:], v[:, :3], atol=1e-12)
    assert raster[:, :3].sum(0).min() > 3, "every neuron should fire"


def test_delta_synapse_moves_v_one_step_after_the_input_spike():
    sim.setup(timestep=DT)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[10.0]), label="in")
    pop = sim.Population(1, sim.IF_curr_delta(tau_m=10.0), label="delta")
    sim.Projection(src, pop, sim.AllToAllConnector(), sim.StaticSynapse(weight=2.0, delay=DT))
    pop.record("v")
    sim.run(20.0)
    v = pop.get_data().segments[0].analogsignals[0].magnitude[:, 0]
    np.testing.assert_array_equal(v[:12], -65.0)          # samples 0..11: before and during the spike step + 1
    assert v[12] == pytest.approx(-63.0, abs=1e-12)        # 2 mV = 2048 LSB = 64 << 5, exact
    a = 1 - decay(10.0) / 4096
    assert v[13] == pytest.approx(-65.0 + 2.0 * a, abs=2 * LSB)
    report = sim.mapping_report()
    assert report.w_exp == 5 and report.v_lsb == LSB


def _core_weights():
    st = simulator.state
    return np.asarray(st.core.weights(), dtype=np.int64), st.config.n_neurons


def test_connectors_place_weights_where_pynn_says():
    sim.setup(timestep=DT)
    a = sim.Population(4, sim.SpikeSourceArray(spike_times=[[]] * 4), label="a")
    b = sim.Population(6, sim.SpikeSourceArray(spike_times=[[]] * 6), label="b")
    x = sim.Population(4, sim.IF_curr_delta(), label="x")
    y = sim.Population(6, sim.IF_curr_delta(), label="y")
    all2all = sim.Projection(a, y, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.5))
    one2one = sim.Projection(a, x, sim.OneToOneConnector(), sim.StaticSynapse(weight=1.0))
    rng = sim.NumpyRNG(seed=7)
    fixp = sim.Projection(b, y, sim.FixedProbabilityConnector(0.5, rng=rng), sim.StaticSynapse(weight=0.25))
    fromlist = sim.Projection(x, y, sim.FromListConnector([(0, 1, 0.75, DT), (3, 5, -1.0, DT)]),
                              receptor_type="inhibitory")
    sim.run(1.0)
    w, n = _core_weights()

    def code(mv):            # 1 mV = 1024 LSB -> w_exp 4
        return round(mv / LSB / 16)

    assert sim.mapping_report().w_exp == 4
    expect = np.zeros_like(w)
    # neurons: x at 0..3, y at 4..9; inputs: a at n+0..3, b at n+4..9
    expect[n:n + 4, 4:10] = code(0.5)
    expect[n + np.arange(4), np.arange(4)] = code(1.0)
    pairs = fixp.get("weight", format="list")
    assert 0 < len(pairs) < 36
    for i, j, _w in pairs:
        expect[n + 4 + i, 4 + j] = code(0.25)
    expect[0, 4 + 1] = code(0.75)
    expect[3, 4 + 5] = code(-1.0)
    np.testing.assert_array_equal(w, expect)
    assert len(all2all) == 24 and len(one2one) == 4 and len(fromlist) == 2


def test_poisson_sources_are_seeded_and_have_the_rate():
    def spikes(seed):
        sim.setup(timestep=DT, rng_seed=seed)
        src = sim.Population(100, sim.SpikeSourcePoisson(rate=50.0), label="p")
        src.record("spikes")
        sim.run(1000.0)
        trains = src.get_data().segments[0].spiketrains
        return [t.magnitude.copy() for t in trains]

    a, b, c = spikes(1), spikes(1), spikes(2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))
    total = sum(len(x) for x in a)
    assert abs(total - 5000) < 5 * math.sqrt(5000 * 0.95)      # Bernoulli(0.05) x 100 000 draws, 5 sigma


def test_poisson_start_and_duration():
    sim.setup(timestep=DT)
    src = sim.Population(50, sim.SpikeSourcePoisson(rate=200.0, start=20.0, duration=30.0), label="p")
    src.record("spikes")
    sim.run(100.0)
    times = np.concatenate([t.magnitude for t in src.get_data().segments[0].spiketrains])
    assert times.size > 100 and times.min() >= 20.0 and times.max() < 50.0


def test_stdp_pairing_potentiates_by_the_pynn_amount_and_reads_back():
    # pre (input 0) at 10 ms; the post neuron is driven to fire at 15 ms by input 1 (static, strong).  Weights up
    # to 6 mV: v_lsb 2^-10 mV, w_exp 6, one weight code = 1/16 mV, so the 0.078 mV change is about one code
    tau, a_plus, w_max = 20.0, 0.05, 2.0
    sim.setup(timestep=DT)
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[[10.0], [14.0]]), label="in")
    post = sim.Population(1, sim.IF_curr_delta(tau_m=20.0, v_thresh=-60.0), label="post")
    stdp = sim.STDPMechanism(timing_dependence=sim.SpikePairRule(tau_plus=tau, tau_minus=tau, A_plus=a_plus,
                                                                 A_minus=0.0),
                             weight_dependence=sim.AdditiveWeightDependence(w_min=0.0, w_max=w_max),
                             weight=0.5, delay=DT, dendritic_delay_fraction=0)
    plastic = sim.Projection(src[0:1], post, sim.AllToAllConnector(), stdp)
    sim.Projection(src[1:2], post, sim.AllToAllConnector(), sim.StaticSynapse(weight=6.0))
    post.record("spikes")
    sim.run(40.0)
    assert list(post.get_data().segments[0].spiketrains[0].magnitude) == [15.0]
    w_after = float(plastic.get("weight", format="array")[0, 0])
    dw_float = a_plus * w_max * math.exp(-5 * DT / tau)
    lsb_w = 1 / (1 / LSB / 2 ** sim.mapping_report().w_exp)    # mV per weight code
    # floor of the change (< 1 code), trace truncation (< (1 - (1-a)^5)/a of 127 trace units), gain rounding
    a = decay(tau) / 4096
    bound = lsb_w * (1 + (1 - (1 - a) ** 5) / a / 127 * a_plus * w_max / lsb_w) + 0.01 * dw_float
    assert 0 < w_after - 0.5 and abs((w_after - 0.5) - dw_float) <= bound, (w_after - 0.5, dw_float, bound)


def test_mapping_report_names_what_was_rounded():
    sim.setup(timestep=DT)
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[[1.3], [2.0, 2.2]]), label="in")
    pop = sim.Population(2, sim.IF_curr_exp(tau_m=15.0, tau_syn_E=3.0, tau_refrac=2.5), label="n")
    sim.Projection(src, pop, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.123))
    text = str(sim.mapping_report())
    assert "tau_m 15 ms" in text and "tau_refrac 2.5 ms" in text
    assert "2 moved to the 1 ms grid, 1 merged" in text
    kinds = {(item, kind) for item, kind, _ in sim.mapping_report().entries}
    assert ("in", "rounded") in kinds and ("in→n", "rounded") in kinds


def _build(construct):
    sim.setup(timestep=DT)
    src = sim.Population(2, sim.SpikeSourceArray(spike_times=[[1.0], [2.0]]), label="in")
    if construct == "delay":
        pop = sim.Population(2, sim.IF_curr_exp(), label="n")
        sim.Projection(src, pop, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1, delay=2.0))
    elif construct == "conductance":
        sim.Population(2, sim.IF_cond_exp(), label="n")
    elif construct == "alpha":
        sim.Population(2, sim.IF_curr_alpha(), label="n")
    elif construct == "size":
        sim.setup(timestep=DT, config="16x16")
        sim.Population(17, sim.IF_curr_exp(), label="n")
    elif construct == "too_big":
        sim.Population(300, sim.IF_curr_exp(), label="n")
    elif construct == "tau_syn":
        pop = sim.Population(2, sim.IF_curr_exp(tau_syn_E=5.0, tau_syn_I=10.0), label="n")
        sim.Projection(src, pop, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1))
        sim.Projection(src, pop, sim.AllToAllConnector(), sim.StaticSynapse(weight=-0.1),
                       receptor_type="inhibitory")
    elif construct == "two_rules":
        pop = sim.Population(2, sim.IF_curr_exp(), label="n")
        for a_plus in (0.01, 0.02):
            rule = sim.STDPMechanism(timing_dependence=sim.SpikePairRule(A_plus=a_plus),
                                     weight_dependence=sim.AdditiveWeightDependence(w_max=0.5), weight=0.1,
                                     dendritic_delay_fraction=0)
            sim.Projection(src, pop, sim.OneToOneConnector(), rule)
    elif construct == "initial_v":
        pop = sim.Population(2, sim.IF_curr_exp(v_rest=-60.0), label="n")
    elif construct == "after_run":
        sim.Population(2, sim.IF_curr_exp(), label="n")
        sim.run(1.0)
        sim.Population(2, sim.IF_curr_exp(), label="m")
    elif construct == "multiplicative":
        sim.MultiplicativeWeightDependence()
    elif construct == "current_source":
        sim.DCSource(amplitude=1.0)
    elif construct == "fast_poisson":
        sim.Population(2, sim.SpikeSourcePoisson(rate=2000.0), label="p")
    sim.run(5.0)


@pytest.mark.parametrize("construct, words", [
    ("delay", "delay 2 ms"), ("conductance", "IF_cond_exp: conductance-based"), ("alpha", "IF_curr_alpha"),
    ("size", "17 neurons"), ("too_big", "300 neurons"), ("tau_syn", "tau_syn_E (5 ms) != tau_syn_I (10 ms)"),
    ("two_rules", "2 different STDP rules"), ("initial_v", "initial v different from v_rest"),
    ("after_run", "creating a Population after run()"), ("multiplicative", "multiplicative STDP"),
    ("current_source", "DCSource"), ("fast_poisson", "2000 Hz"),
])
def test_unsupported_constructs_are_refused_by_name(construct, words):
    with pytest.raises(sim.UnsupportedConstruct, match=words.replace("(", r"\(").replace(")", r"\)")):
        _build(construct)


def test_get_data_is_a_neo_block_with_spikes_and_v_per_segment():
    sim.setup(timestep=DT)
    pop = sim.Population(2, sim.IF_curr_exp(i_offset=1.0), label="n")
    pop.record(["spikes", "v"])
    sim.run(50.0)
    sim.reset()
    sim.run(30.0)
    block = pop.get_data()
    assert isinstance(block, neo.Block) and len(block.segments) == 2
    first, second = block.segments
    assert len(first.spiketrains) == 2 and first.analogsignals[0].shape == (51, 2)
    assert second.analogsignals[0].shape == (31, 2)
    # after reset() the core restarts from rest: the second segment repeats the first one's first 30 ms
    np.testing.assert_array_equal(second.spiketrains[0].magnitude,
                                  first.spiketrains[0].magnitude[first.spiketrains[0].magnitude < 30])


def test_board_target_without_a_port_is_one_clear_error():
    from base import RampartError

    sim.setup(timestep=DT, target="board", port="/dev/nonexistent-neurocore")
    sim.Population(1, sim.IF_curr_exp(), label="n")
    with pytest.raises(RampartError, match="cannot open serial port '/dev/nonexistent-neurocore'"):
        sim.run(1.0)


def test_rtl_target_gives_the_golden_spikes_and_v():
    pytest.importorskip("amaranth")

    def run(target):
        sim.setup(timestep=DT, target=target, config="16x16")
        src = sim.Population(4, sim.SpikeSourceArray(spike_times=[[2.0, 9.0], [3.0], [5.0, 6.0, 7.0], [11.0]]),
                             label="in")
        pop = sim.Population(6, sim.IF_curr_exp(tau_m=10.0, i_offset=0.3, tau_refrac=2.0), label="n")
        sim.Projection(src, pop, sim.FixedProbabilityConnector(0.6, rng=sim.NumpyRNG(seed=3)),
                       sim.StaticSynapse(weight=sim.RandomDistribution("uniform", (0.5, 3.0),
                                                                       rng=sim.NumpyRNG(seed=4))))
        sim.Projection(pop, pop, sim.AllToAllConnector(allow_self_connections=False), sim.StaticSynapse(weight=-0.4),
                       receptor_type="inhibitory")
        pop.record(["spikes", "v"])
        sim.run(30.0)
        seg = pop.get_data().segments[0]
        out = [t.magnitude.copy() for t in seg.spiketrains], seg.analogsignals[0].magnitude.copy()
        sim.end()
        return out

    (sg, vg), (sr, vr) = run("golden"), run("rtl")
    assert sum(len(t) for t in sg) > 3
    assert all(np.array_equal(a, b) for a, b in zip(sg, sr, strict=True))
    np.testing.assert_array_equal(vg, vr)


def test_setup_refuses_unknown_targets_and_options():
    from base import RampartError

    with pytest.raises(RampartError, match="target='fpga'"):
        sim.setup(target="fpga")
    with pytest.raises(RampartError, match="unknown option"):
        sim.setup(speed=3)


def test_synapse_params_are_global():
    # weights of one projection share w_exp with every other one
    sim.setup(timestep=DT)
    src = sim.Population(1, sim.SpikeSourceArray(spike_times=[[1.0]]), label="in")
    pop = sim.Population(2, sim.IF_curr_delta(), label="n")
    sim.Projection(src, pop, sim.FromListConnector([(0, 0, 4.0, DT), (0, 1, 0.001, DT)]))
    report = sim.mapping_report()
    # 4 mV = 4096 LSB -> w_exp 6 (64 codes); 0.001 mV = 1 LSB rounds to code 0 and is reported
    assert report.w_exp == 6
    assert "1 rounded to 0" in str(report)
    core = GoldenCore(CoreConfig(4, 4, 2), synapses=SynapseParams(w_exp=6))
    assert core.synapse_params().w_exp == 6


@pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning")   # PyNN deprecates its procedural API
def test_procedural_api_and_assemblies():
    sim.setup(timestep=DT)
    src = sim.create(sim.SpikeSourceArray, {"spike_times": [3.0, 4.0]}, n=2)
    a = sim.Population(2, sim.IF_curr_delta(v_thresh=-64.0), label="a")
    b = sim.Population(2, sim.IF_curr_delta(v_thresh=-64.0), label="b")
    sim.connect(src, a, weight=2.0, p=1.0)
    sim.Projection(src, b, sim.OneToOneConnector(), sim.StaticSynapse(weight=2.0))
    both = a + b
    both.record("spikes")
    sim.run(10.0)
    trains = both.get_data().segments[0].spiketrains
    assert [list(t.magnitude) for t in trains] == [[4.0, 5.0]] * 4
    with pytest.raises(sim.UnsupportedConstruct, match="Assembly"):
        sim.setup(timestep=DT)
        x = sim.Population(2, sim.IF_curr_exp(), label="x")
        y = sim.Population(2, sim.IF_curr_exp(), label="y")
        sim.Projection(x + y, x, sim.AllToAllConnector(), sim.StaticSynapse(weight=0.1))
        sim.run(1.0)


def test_board_target_with_a_silent_port_is_one_clear_error(monkeypatch):
    """A port that opens but where no core answers (pyserial's loop:// echoes, it does not speak the protocol)."""
    from base import RampartError

    serial = pytest.importorskip("serial")
    monkeypatch.setattr(serial, "Serial", lambda port, baudrate, timeout: serial.serial_for_url(
        "loop://", baudrate=baudrate, timeout=timeout))
    sim.setup(timestep=DT, target="board", port="/dev/ttyUSB9", baud=1_000_000)
    sim.Population(1, sim.IF_curr_exp(), label="n")
    with pytest.raises(RampartError, match="no NeuroCore answers on '/dev/ttyUSB9' at 1000000 baud"):
        sim.run(1.0)
