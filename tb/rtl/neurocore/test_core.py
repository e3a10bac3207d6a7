# amaranth: UnusedElaboratable=no
"""NeuroCore RTL against the bit-exact golden model: spikes, membranes, currents, traces and weights, every step.

The native (Verilator) tests drive the parallel host bus with one ``run_stimulus`` call per step: write the input
bitmap, ``RUN 1``, idle for exactly the predicted number of cycles (:func:`step_cycles`), then read status, the
cycle counter and the raster over the bus. So every step also checks the cycle model.
"""
import numpy as np
import pytest
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from drivers.neurocore import decode_words, signed, weight_words
from models.snn.golden import GoldenCore
from models.snn.params import NeuronParams, ResetMode, StdpParams, SynapseParams, TraceMode
from rtl.neurocore.config import PRESETS, Command, GlobalReg, NeuroCoreConfig, NeuronField, Region, step_cycles
from rtl.neurocore.core import NeuroCore
from sim.build import build
from sim.harness import NativeSim

# -- host-side encoding of the register map ----------------------------------------------------------------------


def setup_writes(cfg: NeuroCoreConfig, golden: GoldenCore) -> list[tuple[int, int]]:
    """(address, data) bus writes that load the golden core's weights, mask and all registers."""
    writes = [(cfg.address(Region.WEIGHT, i), int(word))
              for i, word in enumerate(weight_words(cfg, golden.weights(), golden.plastic()))]
    writes += param_writes(cfg, golden)
    return writes


def param_writes(cfg: NeuroCoreConfig, golden: GoldenCore) -> list[tuple[int, int]]:
    nb = cfg.neuron_bits
    p = golden.neuron_params()
    writes = []
    for field, values in ((NeuronField.THETA, p.theta), (NeuronField.V_RESET, p.v_reset),
                          (NeuronField.V_REST, p.v_rest), (NeuronField.BIAS, p.bias), (NeuronField.D_V, p.d_v),
                          (NeuronField.D_I, p.d_i), (NeuronField.T_REF, p.t_ref)):
        bits = cfg.field_width(field)[0]
        writes += [(cfg.address(Region.NEURON, (field << nb) | i), int(v) & ((1 << bits) - 1))
                   for i, v in enumerate(values)]
    s = golden.stdp_params()
    regs = {GlobalReg.W_EXP: golden.synapse_params().w_exp, GlobalReg.D_X: s.d_x, GlobalReg.D_Y: s.d_y,
            GlobalReg.A_PRE: s.a_pre, GlobalReg.A_POST: s.a_post, GlobalReg.A_PLUS: s.a_plus,
            GlobalReg.A_MINUS: s.a_minus, GlobalReg.S_PLUS: s.s_plus, GlobalReg.S_MINUS: s.s_minus,
            GlobalReg.W_MIN: s.w_min & 0xFF, GlobalReg.W_MAX: s.w_max & 0xFF, GlobalReg.TRACE_MODE: s.trace_mode,
            GlobalReg.RESET_MODE: p.reset_mode, GlobalReg.LEARN: int(golden.learning), GlobalReg.X_TAR: s.x_tar,
            GlobalReg.W_DECAY: s.w_decay, GlobalReg.THETA_PLUS: s.theta_plus, GlobalReg.D_THETA: s.d_theta,
            GlobalReg.THETA_PERIOD: s.theta_period}
    writes += [(cfg.address(Region.GLOBAL, r), int(v)) for r, v in regs.items()]
    return writes


def input_writes(cfg: NeuroCoreConfig, bits: np.ndarray) -> list[tuple[int, int]]:
    padded = np.zeros(-(-cfg.n_inputs // 32) * 32, dtype=bool)
    padded[:cfg.n_inputs] = bits
    words = np.packbits(padded.reshape(-1, 32), axis=1, bitorder="little").view("<u4").reshape(-1)
    return [(cfg.address(Region.INPUT, c), int(word)) for c, word in enumerate(words)]


def run_command(cfg: NeuroCoreConfig, steps: int) -> tuple[int, int]:
    return cfg.address(Region.CTRL, 0), Command.RUN | steps << 8


# -- random networks -----------------------------------------------------------------------------------------------


HOMEOSTASIS = {"x_tar": 40, "w_decay": 3, "theta_plus": 700, "d_theta": 900, "theta_period": 2}


def random_golden(cfg: NeuroCoreConfig, seed: int, *, reset_mode=ResetMode.ABSOLUTE,
                  trace_mode=TraceMode.ADD, **homeostasis) -> GoldenCore:
    rng = np.random.default_rng(seed)
    n, s = cfg.n_neurons, cfg.n_sources
    golden = GoldenCore(cfg.core_config)
    golden.set_weights(rng.integers(-60, 100, size=(s, n)))
    golden.set_plastic(rng.random((s, n)) < 0.7)
    golden.set_neuron_params(NeuronParams(
        theta=rng.integers(600, 3000, n), v_reset=rng.integers(-400, 100, n), v_rest=rng.integers(-200, 50, n),
        bias=rng.integers(-20, 60, n), d_v=rng.integers(0, 700, n), d_i=rng.integers(200, 4097, n),
        t_ref=rng.integers(0, 4, n), reset_mode=reset_mode))
    golden.set_synapse_params(SynapseParams(w_exp=int(rng.integers(2, 5))))
    golden.enable_stdp(StdpParams(d_x=300, d_y=500, a_pre=100, a_post=90, a_plus=60, a_minus=30, s_plus=6,
                                  s_minus=7, w_min=-50, w_max=110, trace_mode=trace_mode, **homeostasis))
    return golden


class NativeCore:
    """Drives a Verilated NeuroCore over its bus, one ``run_stimulus`` call per step."""

    def __init__(self, cfg: NeuroCoreConfig, sim: NativeSim):
        self.cfg, self.sim = cfg, sim
        self.dwords = (cfg.data_width + 31) // 32
        sim.poke("raster__ready", 1)
        self.v_mems = [sim.element_index(f"top.neuron.v_{lane}") for lane in range(cfg.lanes)]
        self.i_mems = [sim.element_index(f"top.neuron.i_syn_{lane}") for lane in range(cfg.lanes)]
        self.y_mems = [sim.element_index(f"top.traces.y_{lane}") for lane in range(cfg.lanes)]
        self.x_mems = [sim.element_index(f"top.traces.x_{lane}") for lane in range(cfg.lanes)]
        self.count_mems = [sim.element_index(f"top.neuron.count_{lane}") for lane in range(cfg.lanes)]
        self.a_mems = [sim.element_index(f"top.neuron.a_{lane}") for lane in range(cfg.lanes)]
        self.w_banks = [sim.element_index(f"top.synapse.w_mem_{b}") for b in range(cfg.lanes)]

    def cycles(self, ops: list[tuple[str, int, int]], idle_after: int = 0):
        """Apply ``(kind, addr, data)`` bus operations ('w', 'r' or '-' idle), one per cycle; returns outputs."""
        total = len(ops) + idle_after + 1
        addr = np.zeros(total, dtype=np.uint32)
        data = np.zeros((total, self.dwords), dtype=np.uint32)
        we = np.zeros(total, dtype=np.uint32)
        re = np.zeros(total, dtype=np.uint32)
        for i, (kind, a, d) in enumerate(ops):
            addr[i] = a
            for w in range(self.dwords):
                data[i, w] = (d >> (32 * w)) & 0xFFFFFFFF
            we[i] = kind == "w"
            re[i] = kind == "r"
        return self.sim.run_stimulus({"bus__addr": addr, "bus__wdata": data, "bus__we": we, "bus__re": re},
                                     ["bus__rdata", "bus__rvalid", "busy"])

    def write(self, writes):
        self.cycles([("w", a, d) for a, d in writes])

    def read(self, addrs) -> list[int]:
        out = self.cycles([("r", a, 0) for a in addrs])
        rows = out["bus__rdata"][1:len(addrs) + 1]
        assert out["bus__rvalid"][1:len(addrs) + 1, 0].all()
        return [sum(int(x) << (32 * w) for w, x in enumerate(row)) for row in rows]

    def step(self, inputs: np.ndarray, predicted: int) -> tuple[np.ndarray, int, int]:
        """One step; returns (spikes, status, measured cycles). Asserts ``busy`` lasts exactly ``predicted``."""
        cfg = self.cfg
        ops = [("w", a, d) for a, d in input_writes(cfg, inputs)]
        ops.append(("w", *run_command(cfg, 1)))
        ops += [("-", 0, 0)] * predicted
        reads = [cfg.address(Region.CTRL, 0), cfg.address(Region.CTRL, 2)]
        reads += [cfg.address(Region.SPIKES, c) for c in range(-(-cfg.n_neurons // 32))]
        ops += [("r", a, 0) for a in reads]
        out = self.cycles(ops)
        start = len(ops) - predicted - len(reads)
        busy = out["busy"][:, 0]
        assert busy[start:start + predicted].all() and not busy[start + predicted:].any(), \
            f"busy for {int(busy.sum())} cycles, predicted {predicted}"
        vals = [int(x) for x in out["bus__rdata"][start + predicted + 1:start + predicted + 1 + len(reads), 0]]
        raster = np.unpackbits(np.array(vals[2:], dtype="<u4").view(np.uint8), bitorder="little")
        return raster[:cfg.n_neurons].astype(bool), vals[0], vals[1]

    def lanes_to_neurons(self, elements, bits) -> np.ndarray:
        per_lane = [np.array([signed(int(v), bits) for v in self.sim.read_memory(e)]) for e in elements]
        return np.stack(per_lane, axis=1).reshape(-1)

    def membrane(self):
        return self.lanes_to_neurons(self.v_mems, 24)

    def current(self):
        return self.lanes_to_neurons(self.i_mems, 24)

    def traces(self):
        y = np.stack([self.sim.read_memory(e) for e in self.y_mems], axis=1).reshape(-1).astype(np.int64)
        x = np.stack([self.sim.read_memory(e) for e in self.x_mems], axis=1).reshape(-1).astype(np.int64)
        return x[:self.cfg.n_sources], y

    def counts(self):
        return np.stack([self.sim.read_memory(e) for e in self.count_mems], axis=1).reshape(-1).astype(np.int64)

    def adaptation(self):
        return np.stack([self.sim.read_memory(e) for e in self.a_mems], axis=1).reshape(-1).astype(np.int64)

    def tick(self) -> int:
        return self.read([self.cfg.address(Region.GLOBAL, GlobalReg.TICK)])[0]

    def weights(self):
        """Weights and mask from the banks: source s is row s // P of bank s % P."""
        cfg, k = self.cfg, self.cfg.groups
        banks = [self.sim.read_memory(e) for e in self.w_banks]
        words = [int(banks[s % cfg.lanes][(s // cfg.lanes) * k + i]) for s in range(cfg.n_sources) for i in range(k)]
        return decode_words(cfg, words)


def predicted_cycles(cfg, pending: np.ndarray, now: np.ndarray, learn: bool, integrated: bool) -> int:
    groups = int(now[:cfg.n_neurons].reshape(cfg.groups, cfg.lanes).any(axis=1).sum())
    return step_cycles(cfg, int(pending.sum()), int(now.sum()), groups, learn, integrated=integrated)


def lockstep(core: NativeCore, golden: GoldenCore, inputs: np.ndarray, pending: np.ndarray, *,
             check_state_every: int = 1, check_weights_every: int = 50,
             integrated: bool = False) -> tuple[np.ndarray, list[int]]:
    """Run ``len(inputs)`` steps on both, comparing everything; returns the final pending bitmap and cycles.

    ``integrated``: the step before ran with learning on and only inputs were written since (see step_cycles).
    """
    cfg = core.cfg
    cycles = []
    for t, inp in enumerate(inputs):
        spikes_gold = golden.run(1, inp[None, :])[0]
        now = np.concatenate([spikes_gold, inp])
        predicted = predicted_cycles(cfg, pending, now, golden.learning, integrated)
        integrated = golden.learning
        spikes, status, measured = core.step(inp, predicted)
        assert measured == predicted
        cycles.append(measured)
        np.testing.assert_array_equal(spikes, spikes_gold, err_msg=f"spikes differ at step {golden.step - 1}")
        assert status & 3 == int(golden.status), f"status at step {golden.step - 1}"
        if t % check_state_every == 0 or t == len(inputs) - 1:
            np.testing.assert_array_equal(core.membrane(), golden.membrane(), err_msg=f"v at step {golden.step - 1}")
            np.testing.assert_array_equal(core.current(), golden.current(), err_msg=f"I at step {golden.step - 1}")
        if t % check_weights_every == 0 or t == len(inputs) - 1:
            x, y = core.traces()
            gx, gy = golden.traces()
            np.testing.assert_array_equal(x, gx, err_msg=f"x at step {golden.step - 1}")
            np.testing.assert_array_equal(y, gy, err_msg=f"y at step {golden.step - 1}")
            w, _ = core.weights()
            np.testing.assert_array_equal(w, golden.weights(), err_msg=f"weights at step {golden.step - 1}")
            np.testing.assert_array_equal(core.counts(), golden.counts(), err_msg=f"counts at step {golden.step - 1}")
            np.testing.assert_array_equal(core.adaptation(), golden.adaptation(),
                                          err_msg=f"a at step {golden.step - 1}")
            assert core.tick() == golden.tick, f"tick at step {golden.step - 1}"
        pending = now
    return pending, cycles


# -- tests ---------------------------------------------------------------------------------------------------------


def test_config():
    cfg = PRESETS["256x256"]
    assert (cfg.groups, cfg.src_groups, cfg.weight_word_bits) == (64, 128, 36)
    # S = 512 sources, K = 64 words per row, R = 128 trace/column cycles, C = 16 chunks of 32 sources
    start_end, neurons, trace = 2, 64 + 2, 128
    walk_all = 16 + 64 * 512 + 1
    worst = step_cycles(cfg, 512, 512, 64, True)
    assert worst == start_end + walk_all + neurons + (128 * 64 + 1) + walk_all + trace == 73_959
    assert worst <= 100_000
    assert step_cycles(cfg, 512, 512, 64, True, integrated=True) == worst - walk_all
    assert step_cycles(cfg, 0, 0, 0, False) == start_end + 17 + neurons + trace
    # 10% activity: 51 sources spiked in the previous step and 51 in this one, 26 neuron spikes in 22 groups
    ten = (16 + 64 * 51 + 1)
    assert step_cycles(cfg, 51, 51, 22, False) == start_end + ten + neurons + trace
    assert step_cycles(cfg, 51, 51, 22, True, integrated=True) == \
        start_end + neurons + (42 + 128 * 22 + 1) + ten + trace
    with pytest.raises(ValueError, match="n_neurons / lanes must be a power of two"):
        NeuroCoreConfig(12, 4, 4)
    with pytest.raises(ValueError, match="lanes must be a power of two"):
        NeuroCoreConfig(12, 4, 3)
    with pytest.raises(ValueError, match="n_inputs must be at least 1"):
        NeuroCoreConfig(4, 0, 2)
    with pytest.raises(TypeError, match="config must be a NeuroCoreConfig"):
        NeuroCore("16x16")
    Fragment.get(NeuroCore(PRESETS["4x4"]), None)


@pytest.fixture(scope="module")
def native16():
    return build("neurocore", PRESETS["16x16"])


@pytest.fixture(scope="module")
def native64():
    return build("neurocore", PRESETS["64x64"])


def test_native_16_stdp_1000_steps(native16):
    """N = M = 16, P = 4: 1,000 steps with STDP, ABSOLUTE/ADD then SUBTRACT/NEAREST, every state every step."""
    cfg = PRESETS["16x16"]
    golden = random_golden(cfg, seed=1)
    rng = np.random.default_rng(11)
    with NativeSim(native16) as sim:
        core = NativeCore(cfg, sim)
        core.write(setup_writes(cfg, golden))
        w, mask = core.weights()
        np.testing.assert_array_equal(w, golden.weights())
        np.testing.assert_array_equal(mask, golden.plastic())
        pending = np.zeros(cfg.n_sources, dtype=bool)
        inputs = rng.random((600, cfg.n_inputs)) < 0.3
        pending, cycles = lockstep(core, golden, inputs, pending)
        # change the modes and some parameters between runs, as the host would
        golden.set_neuron_params(reset_mode=ResetMode.SUBTRACT, theta=np.full(cfg.n_neurons, 1500))
        golden.set_stdp_params(StdpParams(d_x=900, d_y=0, a_pre=200, a_post=255, a_plus=200, a_minus=30,
                                          s_plus=4, s_minus=9, w_min=-128, w_max=127,
                                          trace_mode=TraceMode.NEAREST))
        core.write(param_writes(cfg, golden))
        inputs = rng.random((400, cfg.n_inputs)) < 0.5
        _, more = lockstep(core, golden, inputs, pending)
        assert golden.step == 1000
        raster_total = int(golden.counts().sum())
        assert raster_total > 500, "the network should be active"
        assert not np.array_equal(golden.weights(), random_golden(cfg, seed=1).weights()), "STDP must have learned"
        # readback through the bus: step counter, a few weight words and neuron fields
        nb = cfg.neuron_bits
        got = core.read([cfg.address(Region.CTRL, 1), cfg.address(Region.WEIGHT, 5),
                         cfg.address(Region.NEURON, (NeuronField.V << nb) | 7),
                         cfg.address(Region.GLOBAL, GlobalReg.A_MINUS)])
        assert got[0] == 1000
        assert got[1] == int(weight_words(cfg, golden.weights(), golden.plastic())[5])
        assert signed(got[2], 24) == golden.membrane()[7]
        assert got[3] == 30
        print(f"16x16 cycles per step: min {min(cycles + more)}, max {max(cycles + more)}")


def test_native_16_host_writes_between_learning_steps(native16):
    """A learning step sums the next step's input in its depression pass; a host write to the weights of the
    pending sources (or an input-only write) in between must leave the RTL bit-exact, with the cycles predicted."""
    cfg = PRESETS["16x16"]
    golden = random_golden(cfg, seed=7)
    rng = np.random.default_rng(8)
    with NativeSim(native16) as sim:
        core = NativeCore(cfg, sim)
        core.write(setup_writes(cfg, golden))
        pending, _ = lockstep(core, golden, rng.random((20, cfg.n_inputs)) < 0.4,
                              np.zeros(cfg.n_sources, dtype=bool), check_weights_every=1)
        assert pending.any()
        w = golden.weights().astype(np.int64)
        w[pending] = rng.integers(-128, 128, size=(int(pending.sum()), cfg.n_neurons))
        golden.set_weights(w)
        words = weight_words(cfg, golden.weights(), golden.plastic())
        rows = np.flatnonzero(pending)
        core.write([(cfg.address(Region.WEIGHT, s * cfg.groups + k), int(words[s * cfg.groups + k]))
                    for s in rows for k in range(cfg.groups)])
        # lockstep asserts the cycles: the first step after the write integrates again (integrated=False)
        lockstep(core, golden, rng.random((20, cfg.n_inputs)) < 0.4, pending, check_weights_every=1)


def test_native_16_saturation_and_soft_reset(native16):
    """Huge weights drive I and v into saturation (status flags); a soft reset clears state but not weights."""
    cfg = PRESETS["16x16"]
    golden = random_golden(cfg, seed=5)
    golden.set_weights(np.full((cfg.n_sources, cfg.n_neurons), 127))
    golden.set_synapse_params(SynapseParams(w_exp=7))
    golden.set_neuron_params(theta=np.full(cfg.n_neurons, (1 << 23) - 1), d_v=0, d_i=0)
    rng = np.random.default_rng(2)
    with NativeSim(native16) as sim:
        core = NativeCore(cfg, sim)
        core.write(setup_writes(cfg, golden))
        pending = np.zeros(cfg.n_sources, dtype=bool)
        pending, _ = lockstep(core, golden, np.ones((40, cfg.n_inputs), dtype=bool), pending)
        assert int(golden.status) == 3
        core.write([(cfg.address(Region.CTRL, 0), Command.SOFT_RESET)])
        core.cycles([], idle_after=max(cfg.groups, cfg.src_groups) + 2)
        golden.reset_state()
        np.testing.assert_array_equal(core.membrane(), golden.membrane())
        assert core.read([cfg.address(Region.CTRL, 0), cfg.address(Region.CTRL, 1)]) == [0, 0]
        lockstep(core, golden, rng.random((30, cfg.n_inputs)) < 0.5, np.zeros(cfg.n_sources, dtype=bool))


def test_native_64_stdp(native64):
    """N = M = 64, P = 4: 300 steps with STDP; includes an all-sources-spiking worst-case step."""
    cfg = PRESETS["64x64"]
    golden = random_golden(cfg, seed=3)
    rng = np.random.default_rng(4)
    with NativeSim(native64) as sim:
        core = NativeCore(cfg, sim)
        core.write(setup_writes(cfg, golden))
        inputs = rng.random((300, cfg.n_inputs)) < 0.2
        pending, cycles = lockstep(core, golden, inputs, np.zeros(cfg.n_sources, dtype=bool), check_state_every=5)
        # worst case: every neuron and input spikes every step (theta at the minimum, no refractory period)
        golden.set_neuron_params(theta=np.full(cfg.n_neurons, -(1 << 23)), t_ref=0)
        core.write(param_writes(cfg, golden))
        _, worst = lockstep(core, golden, np.ones((6, cfg.n_inputs), dtype=bool), pending, check_weights_every=1)
        assert worst[-1] == step_cycles(cfg, cfg.n_sources, cfg.n_sources, cfg.groups, True, integrated=True)
        print(f"64x64 cycles per step: min {min(cycles)}, max {max(cycles)}, worst case {worst[-1]}")


def test_native_16_homeostasis_1000_steps(native16):
    """N = M = 16, P = 4, every homeostasis register on: 1,000 steps (learning, then frozen adaptation, a soft
    reset that keeps ``a`` and ``tick``, SUBTRACT/NEAREST with other registers), every state compared."""
    cfg = PRESETS["16x16"]
    golden = random_golden(cfg, seed=21, **HOMEOSTASIS)
    rng = np.random.default_rng(22)
    with NativeSim(native16) as sim:
        core = NativeCore(cfg, sim)
        core.write(setup_writes(cfg, golden))
        pending, _ = lockstep(core, golden, rng.random((400, cfg.n_inputs)) < 0.3,
                              np.zeros(cfg.n_sources, dtype=bool), check_weights_every=10)
        assert golden.adaptation().max() > 0, "the threshold should have adapted"
        a_learned = golden.adaptation()
        # learning off: a and tick frozen, a still raises the threshold
        golden.disable_stdp()
        core.write(param_writes(cfg, golden))
        pending, _ = lockstep(core, golden, rng.random((150, cfg.n_inputs)) < 0.4, pending)
        np.testing.assert_array_equal(golden.adaptation(), a_learned)
        # soft reset leaves the learned state alone
        core.write([(cfg.address(Region.CTRL, 0), Command.SOFT_RESET)])
        core.cycles([], idle_after=max(cfg.groups, cfg.src_groups) + 2)
        golden.reset_state()
        np.testing.assert_array_equal(core.adaptation(), golden.adaptation())
        assert core.tick() == golden.tick
        # neurons 0-3 fire every step (lowest threshold, no refractory period): a saturates, v_sub overflows
        p = golden.neuron_params()
        golden.set_neuron_params(reset_mode=ResetMode.SUBTRACT, theta=np.where(np.arange(16) < 4, -(1 << 23), p.theta),
                                 t_ref=np.where(np.arange(16) < 4, 0, p.t_ref))
        golden.enable_stdp(StdpParams(d_x=900, d_y=100, a_pre=200, a_post=255, a_plus=200, a_minus=30, s_plus=5,
                                      s_minus=9, w_min=-128, w_max=127, trace_mode=TraceMode.NEAREST, x_tar=150,
                                      w_decay=1, theta_plus=30000, d_theta=4096, theta_period=15))
        core.write(param_writes(cfg, golden))
        lockstep(core, golden, rng.random((450, cfg.n_inputs)) < 0.5, np.zeros(cfg.n_sources, dtype=bool),
                 check_weights_every=10)
        assert golden.step == 450   # the soft reset restarted the step counter after 550 steps
        assert golden.adaptation().max() == (1 << 16) - 1, "theta_plus 30000 should saturate a"
        assert not np.array_equal(golden.weights(), random_golden(cfg, seed=21).weights())
        nb = cfg.neuron_bits
        got = core.read([cfg.address(Region.NEURON, (NeuronField.A << nb) | i) for i in range(cfg.n_neurons)])
        assert got == golden.adaptation().tolist()


def test_native_64_homeostasis(native64):
    """N = M = 64, P = 4: 300 steps with every homeostasis register on."""
    cfg = PRESETS["64x64"]
    golden = random_golden(cfg, seed=23, **HOMEOSTASIS)
    rng = np.random.default_rng(24)
    with NativeSim(native64) as sim:
        core = NativeCore(cfg, sim)
        core.write(setup_writes(cfg, golden))
        lockstep(core, golden, rng.random((300, cfg.n_inputs)) < 0.2, np.zeros(cfg.n_sources, dtype=bool),
                 check_state_every=5)
        assert golden.adaptation().max() > 0


# -- Amaranth simulator ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg, homeostasis", [
    (PRESETS["4x4"], {}), (NeuroCoreConfig(3, 5, 1), {}), (NeuroCoreConfig(8, 3, 8), {}),
    (PRESETS["4x4"], HOMEOSTASIS)], ids=["4x4-p2", "3x5-p1", "8x3-p8", "4x4-p2-homeostasis"])
def test_pysim(cfg, homeostasis):
    """Tiny cores in the Amaranth simulator (P = 1, 2 and P = N): 12 steps with STDP, every spike and membrane."""
    golden = random_golden(cfg, seed=9, **homeostasis)
    golden.set_neuron_params(theta=np.full(cfg.n_neurons, 700), t_ref=1, d_i=4096)
    rng = np.random.default_rng(10)
    inputs = rng.random((12, cfg.n_inputs)) < 0.6
    expected = GoldenCore(cfg.core_config)
    expected.set_weights(golden.weights())
    expected.set_plastic(golden.plastic())
    expected.set_neuron_params(golden.neuron_params())
    expected.set_synapse_params(golden.synapse_params())
    expected.enable_stdp(golden.stdp_params())
    dut = NeuroCore(cfg)
    nb = cfg.neuron_bits
    results = {}

    async def bus_write(ctx, addr, data):
        ctx.set(dut.bus.addr, addr)
        ctx.set(dut.bus.wdata, data)
        ctx.set(dut.bus.we, 1)
        await ctx.tick()
        ctx.set(dut.bus.we, 0)

    async def bus_read(ctx, addr):
        ctx.set(dut.bus.addr, addr)
        ctx.set(dut.bus.re, 1)
        await ctx.tick()
        ctx.set(dut.bus.re, 0)
        assert ctx.get(dut.bus.rvalid)
        return ctx.get(dut.bus.rdata)

    async def testbench(ctx):
        ctx.set(dut.raster.ready, 1)
        for addr, data in setup_writes(cfg, golden):
            await bus_write(ctx, addr, data)
        spikes, membranes = [], []
        for inp in inputs:
            for addr, data in input_writes(cfg, inp):
                await bus_write(ctx, addr, data)
            await bus_write(ctx, *run_command(cfg, 1))
            while ctx.get(dut.busy):
                await ctx.tick()
            spikes.append(ctx.get(dut.raster.payload))
            membranes.append([signed(await bus_read(ctx, cfg.address(Region.NEURON, (NeuronField.V << nb) | i)), 24)
                              for i in range(cfg.n_neurons)])
        results["spikes"], results["v"] = spikes, membranes
        results["w"] = [await bus_read(ctx, cfg.address(Region.WEIGHT, i))
                        for i in range(cfg.n_sources * cfg.groups)]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    for t, inp in enumerate(inputs):
        gold = expected.run(1, inp[None, :])[0]
        got = [(results["spikes"][t] >> i) & 1 for i in range(cfg.n_neurons)]
        assert got == gold.astype(int).tolist(), f"step {t}"
        assert results["v"][t] == expected.membrane().tolist(), f"step {t}"
    w, _ = decode_words(cfg, results["w"])
    np.testing.assert_array_equal(w, expected.weights())
