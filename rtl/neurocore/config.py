"""Elaboration-time configuration of :class:`rtl.neurocore.core.NeuroCore`, its host register map and cycle model.

The structure mirrors :class:`models.snn.params.CoreConfig` (``N`` neurons, ``M`` inputs, ``P`` lanes, trace
width ``T``) and is validated by it, so a configuration accepted here is one the golden model accepts too.

Host bus address: ``addr = (region << index_bits) | index`` (:class:`Region`); see :mod:`rtl.neurocore.core` for
the meaning of every region.
"""
import enum
import math
from dataclasses import dataclass

from models.snn.params import STATE_BITS, CoreConfig

__all__ = ["CHUNK", "Command", "GlobalReg", "NeuronField", "NeuroCoreConfig", "PRESETS", "Region", "step_cycles"]

CHUNK = 32  #: sources examined per cycle when a row walk looks for the next spiking source
NEURON_STAGES = 3  #: depth of the neuron pipeline (read + products, sums, threshold + write-back)


class Region(enum.IntEnum):
    """Top bits of a host bus address."""

    CTRL = 0    #: index 0: write :class:`Command` / read status; 1: step counter; 2: cycles of the last step
    GLOBAL = 1  #: :class:`GlobalReg` registers (read/write)
    WEIGHT = 2  #: index ``s*K + k``: int8 ``W[s, k*P .. k*P+P-1]`` (8 bits each), then their ``P`` mask bits
    NEURON = 3  #: index ``(field << clog2(N)) | neuron``: one :class:`NeuronField` of one neuron
    TRACE_X = 4  #: index ``s``: pre-synaptic trace of source ``s``
    INPUT = 5   #: index ``c``: bits ``32c .. 32c+31`` of the input bitmap of the next step (read/write)
    SPIKES = 6  #: index ``c``: bits ``32c .. 32c+31`` of the spike raster of the last step (read only)


class Command(enum.IntEnum):
    """``wdata[0:4]`` of a write to CTRL index 0; ``RUN`` takes the step count in ``wdata[8:32]``."""

    NOP = 0
    RUN = 1          #: run ``wdata[8:32]`` steps (0: nothing)
    SOFT_RESET = 2   #: ``v <- v_rest``; I, ref, acc, traces, pending/next input spikes, counters, status <- 0
    #: (weights, parameters, the adaptive thresholds ``a`` and ``tick`` are kept)


class GlobalReg(enum.IntEnum):
    """Index of a global register in :attr:`Region.GLOBAL` (reset values are the golden model's defaults)."""

    W_EXP = 0
    D_X = 1
    D_Y = 2
    A_PRE = 3
    A_POST = 4
    A_PLUS = 5
    A_MINUS = 6
    S_PLUS = 7
    S_MINUS = 8
    W_MIN = 9
    W_MAX = 10
    TRACE_MODE = 11
    RESET_MODE = 12
    LEARN = 13
    X_TAR = 14         #: potentiation target trace (T bits)
    W_DECAY = 15       #: weight leak shift on a post spike (0: off)
    THETA_PLUS = 16    #: raise of the adaptive threshold ``a`` per post spike
    D_THETA = 17       #: decay code of ``a`` (0..4096)
    THETA_PERIOD = 18  #: ``a`` decays in learning steps that start with ``TICK == 0``, TICK counts mod 2^this
    TICK = 19          #: learning-step counter (state, 15 bits; kept by a soft reset)


class NeuronField(enum.IntEnum):
    """Per-neuron quantities addressable in :attr:`Region.NEURON` (parameters 0-6, state 7-13)."""

    THETA = 0
    V_RESET = 1
    V_REST = 2
    BIAS = 3
    D_V = 4
    D_I = 5
    T_REF = 6
    I_SYN = 7  #: synaptic current I
    V = 8
    REF = 9
    Y = 10
    ACC = 11
    COUNT = 12  #: spike counter, 16-bit saturating (write 0 to clear)
    A = 13      #: adaptive threshold, 16-bit saturating (learned state: kept by a soft reset)


@dataclass(frozen=True)
class NeuroCoreConfig:
    """``n_neurons`` (N) LIF neurons, ``n_inputs`` (M >= 1) input lines, ``lanes`` (P), ``trace_bits`` (T).

    P must be a power of two dividing N (checked by :class:`models.snn.params.CoreConfig`); with P > 1 the
    RTL also needs K = N / P to be a power of two (its weight banks split the host's word index by wiring).
    """

    n_neurons: int = 256
    n_inputs: int = 256
    lanes: int = 4
    trace_bits: int = 8

    def __post_init__(self):
        CoreConfig(self.n_neurons, self.n_inputs, self.lanes, self.trace_bits)
        if self.n_inputs < 1:
            raise ValueError(f"n_inputs must be at least 1, not {self.n_inputs!r}")
        k = self.n_neurons // self.lanes
        if self.lanes > 1 and k & (k - 1):
            raise ValueError(f"n_neurons / lanes must be a power of two when lanes > 1, not {self.n_neurons!r} / "
                             f"{self.lanes!r} = {k}")

    @property
    def core_config(self) -> CoreConfig:
        """The golden model's configuration of the same core."""
        return CoreConfig(self.n_neurons, self.n_inputs, self.lanes, self.trace_bits)

    @property
    def n_sources(self) -> int:
        """S = N + M weight rows (neurons first, then inputs)."""
        return self.n_neurons + self.n_inputs

    @property
    def groups(self) -> int:
        """K = N / P: weight words per row, neuron-memory depth."""
        return self.n_neurons // self.lanes

    @property
    def src_groups(self) -> int:
        """ceil(S / P): depth of the per-lane pre-trace memories."""
        return -(-self.n_sources // self.lanes)

    @property
    def chunks(self) -> int:
        """ceil(S / 32): 32-source chunks of a spike bitmap (one cycle each in a row walk)."""
        return -(-self.n_sources // CHUNK)

    @property
    def acc_bits(self) -> int:
        return self.core_config.acc_bits

    @property
    def lane_bits(self) -> int:
        return self.lanes.bit_length() - 1

    @property
    def neuron_bits(self) -> int:
        return max(1, math.ceil(math.log2(self.n_neurons)))

    @property
    def weight_word_bits(self) -> int:
        """A weight-memory word: P int8 weights then P mask bits."""
        return 9 * self.lanes

    @property
    def data_width(self) -> int:
        return max(32, self.weight_word_bits, self.acc_bits)

    @property
    def index_bits(self) -> int:
        need = max(self.n_sources * self.groups, 16 << self.neuron_bits, self.src_groups * self.lanes,
                   -(-self.n_inputs // 32), -(-self.n_neurons // 32), len(GlobalReg))
        return max(1, math.ceil(math.log2(need)))

    @property
    def addr_width(self) -> int:
        return 3 + self.index_bits

    def address(self, region: Region, index: int = 0) -> int:
        return (int(region) << self.index_bits) | int(index)

    def field_width(self, field: NeuronField) -> tuple[int, bool]:
        """(bits, signed) of a neuron field as stored and returned on the bus (zero-extended)."""
        if field in (NeuronField.THETA, NeuronField.V_RESET, NeuronField.V_REST, NeuronField.BIAS,
                     NeuronField.I_SYN, NeuronField.V):
            return STATE_BITS, True
        if field in (NeuronField.D_V, NeuronField.D_I):
            return 13, False
        if field in (NeuronField.T_REF, NeuronField.REF):
            return 8, False
        if field == NeuronField.Y:
            return self.trace_bits, False
        if field in (NeuronField.COUNT, NeuronField.A):
            return 16, False
        return self.acc_bits, True

    def step_cycles(self, n_pending: int, n_now: int, n_post_groups: int, learn: bool, *,
                    integrated: bool = False) -> int:
        """See :func:`step_cycles`."""
        return step_cycles(self, n_pending, n_now, n_post_groups, learn, integrated=integrated)


def step_cycles(config: NeuroCoreConfig, n_pending: int, n_now: int, n_post_groups: int, learn: bool, *,
                integrated: bool = False) -> int:
    """Clock cycles of one step (from its first cycle to its last, excluding raster back-pressure stalls).

    ``n_pending``: sources that spiked in the previous step; ``n_now``: sources (neurons + inputs) spiking in this
    step; ``n_post_groups``: groups of P neurons ``k*P .. k*P+P-1`` with at least one spike in this step;
    ``integrated``: the previous step ran with learning on and the host wrote nothing since but input words and
    the RUN command, so its depression pass already summed this step's input (INTEGRATE is skipped).
    With S = N + M, K = N / P, R = ceil(S / P) and C = ceil(S / 32)::

        1                                    start (latch the input bitmap)
        + C + K*n_pending + 1                integrate (unless integrated): a cycle per 32-source chunk, K per
                                             spiking source
        + K + 2                              neurons, P per cycle through a three-stage pipeline
        + (K - g) + R*g + 1                  potentiation (learning only): a column pass of R cycles (P sources per
                                             cycle, one per weight bank) per spiking group
        + C + K*n_now + 1                    depression (learning only): like integrate, over this step's sources
        + R                                  trace update, P sources per cycle
        + 1                                  end (raster out)

    At N = M = 256, P = 4, with every source spiking and learning on: 73,959 cycles (41,174 when integrated).
    """
    k, r, ch = config.groups, config.src_groups, config.chunks
    cycles = 1 + k + NEURON_STAGES - 1 + r + 1
    if not integrated:
        cycles += ch + k * n_pending + 1
    if learn:
        cycles += (k - n_post_groups) + r * n_post_groups + 1 + ch + k * n_now + 1
    return cycles


PRESETS = {
    "4x4": NeuroCoreConfig(4, 4, 2),
    "16x16": NeuroCoreConfig(16, 16, 4),
    "64x64": NeuroCoreConfig(64, 64, 4),
    "256x256": NeuroCoreConfig(256, 256, 4),
}
