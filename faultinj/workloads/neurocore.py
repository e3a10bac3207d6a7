"""Fault-injection workload of the NeuroCore engine: an STDP pattern-detection run driven over its host bus.

The host's whole conversation with the engine (design ``neurocore``, :mod:`rtl.neurocore.core`) is recorded into
the per-cycle stimulus of its parallel bus: configure the weights, the plasticity mask, the neuron and global
registers; then per step write the input bitmap, ``RUN 1``, wait exactly the step's cycle count and read the raster;
at the end read every weight word back. The step cycle counts depend on the activity, so the schedule comes from the
bit-exact golden model (:class:`models.snn.golden.GoldenCore`) and :func:`rtl.neurocore.config.step_cycles`.

Observed: ``bus__rdata`` on the cycles that answer a read (the host's view of the rasters and final weights). The
engine has no error or completion port (its ports: the bus, ``busy`` and the raster stream), so outcomes are
MASKED, SDC or LATENT: a hung or runaway sequencer shows up as wrong reads (SDC) or a different final state.
"""
import numpy as np

from base import RampartError
from drivers.neurocore import decode_words, global_values, neuron_field_values, weight_words
from faultinj.workload import Workload
from models.snn.golden import GoldenCore
from models.snn.params import NeuronParams, StdpParams, TraceMode
from rtl.neurocore.config import Command, GlobalReg, NeuroCoreConfig, Region, step_cycles

__all__ = ["SNN_STEPS", "host_view", "pattern_inputs", "snn_pattern"]

#: Steps of the default run (a few thousand cycles on preset 16x16).
SNN_STEPS = 300
PATTERN_LENGTH = 20        #: steps of one pattern presentation
INPUT_RATE = 0.05          #: background spike probability per input and step
THETA_PER_INPUT = 40       #: firing threshold = this x M (the drive grows with the number of inputs)
W0 = 40                    #: mean initial input weight (sd 10)


def pattern_inputs(config: NeuroCoreConfig, seed: int, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(input raster (steps, M) bool, pattern (L, n_pat) bool, onsets) of the pattern task.

    Inputs fire Bernoulli noise (:data:`INPUT_RATE`); a frozen pattern (each of the first ``n_pat = 3M/8`` inputs
    fires once at a fixed offset in an L-step window) is pasted over them at onsets separated by gaps of 30-90
    steps. Step by step from two generators, so the raster of ``steps`` steps is the prefix of every longer one.
    """
    m = config.n_inputs
    rng = np.random.default_rng([seed, 0])
    n_pat = max(1, 3 * m // 8)
    pattern = np.zeros((PATTERN_LENGTH, n_pat), dtype=bool)
    pattern[rng.integers(0, PATTERN_LENGTH, n_pat), np.arange(n_pat)] = True
    noise = np.random.default_rng([seed, 1])
    raster = np.zeros((steps, m), dtype=bool)
    for t in range(steps):
        raster[t] = noise.random(m) < INPUT_RATE
    gaps = np.random.default_rng([seed, 2])
    onsets = []
    t = int(gaps.integers(PATTERN_LENGTH, 3 * PATTERN_LENGTH))
    while t < steps:
        onsets.append(t)
        end = min(t + PATTERN_LENGTH, steps)
        raster[t:end, :n_pat] = pattern[:end - t]
        t += PATTERN_LENGTH + int(gaps.integers(30, 91))
    return raster, pattern, np.array(onsets, dtype=np.int64)


def _pattern_core(config: NeuroCoreConfig, seed: int) -> GoldenCore:
    """The golden core set up for the task: the first ``max(1, N/4)`` neurons learn from every input (initial
    weights ~ N(40, 10)) and inhibit each other (-100); nearest-spike STDP, LTP slightly above LTD."""
    n, m = config.n_neurons, config.n_inputs
    k = max(1, n // 4)
    rng = np.random.default_rng([seed, 3])
    w = np.zeros((n + m, n), dtype=np.int64)
    w[n:, :k] = np.clip(np.rint(rng.normal(W0, 10, (m, k))), 0, 127)
    w[:k, :k] = np.where(np.eye(k, dtype=bool), 0, -100)
    mask = np.zeros((n + m, n), dtype=bool)
    mask[n:, :k] = True
    trace = min(128, (1 << config.trace_bits) - 1)
    core = GoldenCore(config.core_config)
    core.set_weights(w)
    core.set_neuron_params(NeuronParams(theta=THETA_PER_INPUT * m, d_v=205, d_i=819, t_ref=5))
    core.enable_stdp(StdpParams(d_x=205, d_y=205, a_pre=trace, a_post=trace, a_plus=40, a_minus=30, s_plus=8,
                                s_minus=8, w_min=0, w_max=127, trace_mode=TraceMode.NEAREST), mask=mask)
    return core


# -- host-bus encodings of the register map (rtl.neurocore.config) ---------------------------------------------------

def _register_writes(config: NeuroCoreConfig, core: GoldenCore) -> list[tuple[int, int]]:
    """(address, data) of every neuron parameter and global register (the driver's encodings); LEARN last."""
    params = core.neuron_params()
    writes = [(config.address(Region.NEURON, field << config.neuron_bits | i), int(v))
              for field, values in neuron_field_values(config, params).items() for i, v in enumerate(values)]
    regs = global_values(core.stdp_params(), core.synapse_params(), params.reset_mode, core.learning)
    learn = regs.pop(GlobalReg.LEARN)
    return writes + [(config.address(Region.GLOBAL, r), int(v)) for r, v in (*regs.items(), (GlobalReg.LEARN, learn))]


def _input_words(config: NeuroCoreConfig, bits: np.ndarray) -> list[int]:
    padded = np.zeros(-(-config.n_inputs // 32) * 32, dtype=bool)
    padded[:config.n_inputs] = bits
    return [int(w) for w in np.packbits(padded.reshape(-1, 32), axis=1, bitorder="little").view("<u4").reshape(-1)]


class _BusProgram:
    """The host side of the bus, one operation per cycle: writes, reads (answered one cycle later: those answer
    cycles are observed) and idle cycles."""

    def __init__(self, config: NeuroCoreConfig):
        self.config = config
        self.ops: list[tuple[int, int, int]] = []     # (kind: 0 idle, 1 write, 2 read, address, data)

    @property
    def cycle(self) -> int:
        return len(self.ops)

    def write(self, address: int, data: int):
        self.ops.append((1, address, data))

    def read(self, address: int) -> int:
        """Queue a read; returns the cycle its answer is on ``bus__rdata``."""
        self.ops.append((2, address, 0))
        return len(self.ops)

    def idle(self, cycles: int):
        self.ops += [(0, 0, 0)] * cycles

    def stimulus(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(per-cycle inputs, observe mask): the answer cycles of the reads."""
        cycles = len(self.ops)
        kind = np.array([op[0] for op in self.ops], dtype=np.uint64)
        words = -(-self.config.data_width // 32)
        wdata = np.zeros((cycles, words), dtype=np.uint32)
        for w in range(words):
            wdata[:, w] = [(op[2] >> (32 * w)) & 0xFFFFFFFF for op in self.ops]
        observe = np.zeros(cycles, dtype=bool)
        answers = np.flatnonzero(kind == 2) + 1
        if len(answers) and answers[-1] >= cycles:
            raise RampartError("the last read has no answer cycle in the stimulus")
        observe[answers] = True
        inputs = {"bus__addr": np.array([op[1] for op in self.ops], dtype=np.uint64),
                  "bus__wdata": wdata if words > 1 else wdata[:, 0].astype(np.uint64),
                  "bus__we": (kind == 1).astype(np.uint64), "bus__re": (kind == 2).astype(np.uint64),
                  "raster__ready": np.ones(cycles, dtype=np.uint64)}
        return inputs, observe


def _step_cost(config: NeuroCoreConfig, busy: int) -> int:
    """Bus cycles of one step: input words, RUN, ``busy`` cycles, raster reads."""
    return -(-config.n_inputs // 32) + 1 + busy + -(-config.n_neurons // 32)


def snn_pattern(config: NeuroCoreConfig, seed: int = 0, cycles: int | None = None) -> Workload:
    """STDP pattern detection on the NeuroCore engine over its host bus, :data:`SNN_STEPS` steps by default.

    Network (:func:`_pattern_core`) and input raster (:func:`pattern_inputs`) from ``seed``; the host writes every
    weight word, every neuron parameter and global register (learning on last), then per step the input words,
    ``RUN 1``, waits the step's exact cycle count and reads the raster words (SPIKES), and at the end reads every
    weight word. The engine learns throughout; after the first step every step has its input already summed by
    the previous step's depression pass (``integrated`` in :func:`~rtl.neurocore.config.step_cycles`).

    ``cycles``: a budget instead of the step count: as many steps as fit, idle cycles after the final reads to
    exactly ``cycles`` (the same budget always gives the same workload). Observed: ``bus__rdata`` on the answer
    cycles of the raster and weight reads (:func:`host_view` decodes them). ``params``: ``seed``, ``steps``,
    ``inputs`` (steps, M), ``raster`` (steps, N) and final ``weights``/``mask`` of the golden model,
    ``initial_weights``, ``pattern``, ``onsets``, ``step_cycles``, ``spike_reads`` (steps, words) and
    ``weight_reads`` (answer cycles).
    """
    if not isinstance(config, NeuroCoreConfig):
        raise RampartError(f"snn_pattern needs a NeuroCoreConfig, not {config!r}")
    core = _pattern_core(config, seed)
    initial_weights = core.weights().astype(np.int64)
    setup = [(config.address(Region.WEIGHT, i), word)
             for i, word in enumerate(weight_words(config, initial_weights, core.plastic()))]
    setup += _register_writes(config, core)
    readout = config.n_sources * config.groups + 1
    idle_step = step_cycles(config, 0, 0, 0, True, integrated=True)
    if cycles is None:
        max_steps = SNN_STEPS
    else:
        max_steps = (cycles - len(setup) - readout) // _step_cost(config, idle_step)
        if max_steps < 1:
            raise RampartError(f"snn_pattern on {config} needs more than {cycles} cycles for one step")
    inputs, pattern, onsets = pattern_inputs(config, seed, max_steps)

    # the schedule, step by step from the golden model, as far as the budget goes
    spent = len(setup) + readout
    pending = np.zeros(config.n_sources, dtype=bool)
    raster, busy = [], []
    for t in range(max_steps):
        spikes = core.run(1, inputs[t:t + 1])[0]
        now = np.concatenate([spikes, inputs[t]])
        groups = int(spikes.reshape(config.groups, config.lanes).any(axis=1).sum())
        n = step_cycles(config, int(pending.sum()), int(now.sum()), groups, True, integrated=t > 0)
        if cycles is not None and spent + _step_cost(config, n) > cycles:
            break
        spent += _step_cost(config, n)
        raster.append(spikes)
        busy.append(n)
        pending = now
    steps = len(raster)
    if steps == 0:
        raise RampartError(f"snn_pattern on {config} needs more than {cycles} cycles for one step")
    if steps < max_steps:   # the golden core ran one step past the budget: redo it up to the last kept step
        core = _pattern_core(config, seed)
        core.run(steps, inputs[:steps])

    bus = _BusProgram(config)
    for address, data in setup:
        bus.write(address, data)
    spike_reads = []
    for t in range(steps):
        for c, word in enumerate(_input_words(config, inputs[t])):
            bus.write(config.address(Region.INPUT, c), word)
        bus.write(config.address(Region.CTRL, 0), Command.RUN | 1 << 8)
        bus.idle(busy[t])
        spike_reads.append([bus.read(config.address(Region.SPIKES, c)) for c in range(-(-config.n_neurons // 32))])
    weight_reads = [bus.read(config.address(Region.WEIGHT, i)) for i in range(config.n_sources * config.groups)]
    bus.idle(1 if cycles is None else cycles - bus.cycle)
    stimulus, observe = bus.stimulus()
    params = {"seed": seed, "steps": steps, "inputs": inputs[:steps], "raster": np.array(raster, dtype=bool),
              "weights": core.weights().astype(np.int64), "mask": core.plastic(), "initial_weights": initial_weights,
              "pattern": pattern, "onsets": onsets[onsets < steps], "step_cycles": np.array(busy, dtype=np.int64),
              "spike_reads": np.array(spike_reads, dtype=np.int64), "weight_reads": np.array(weight_reads)}
    return Workload("snn_pattern", "neurocore", config, stimulus, ("bus__rdata",), observe, params)


def host_view(workload: Workload, rdata: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What the host read in a run of :func:`snn_pattern`: (raster (steps, N) bool, weights (N+M, N), mask),
    from the per-cycle ``bus__rdata`` trace (uint32 words, shape (cycles, words), as ``run_stimulus`` returns)."""
    config = workload.config
    rdata = np.asarray(rdata, dtype=np.uint64).reshape(len(rdata), -1)
    value = rdata[:, 0] | (rdata[:, 1] << np.uint64(32) if rdata.shape[1] > 1 else np.uint64(0))
    words = value[workload.params["spike_reads"]].astype(np.uint32)         # (steps, raster words)
    bits = np.unpackbits(words.astype("<u4").view(np.uint8).reshape(len(words), -1), axis=1, bitorder="little")
    raster = bits[:, :config.n_neurons].astype(bool)
    weights, mask = decode_words(config, value[workload.params["weight_reads"]])
    return raster, weights, mask
