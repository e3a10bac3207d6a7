"""Step control of the NeuroCore engine: the spike bitmaps and the step sequencer (phases: :mod:`rtl.neurocore.core`).
"""
import enum

from amaranth import Cat, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.neurocore.arith import lowest_bit
from rtl.neurocore.config import CHUNK, Command, NeuroCoreConfig
from rtl.neurocore.host import RegionSignature
from rtl.neurocore.synapse import MODE_DEP, MODE_INT, MODE_POT, IssueSignature

__all__ = ["Phase", "SpikeBitmaps", "StepSequencer", "bitmap_width"]


class Phase(enum.IntEnum):
    """The sequencer's state; every unit derives its memory addresses and writes from it."""

    IDLE = 0
    START = 1
    INTEGRATE = 2
    NEURON = 3
    POTENTIATE = 4
    DEPRESS = 5
    TRACE = 6
    END = 7
    CLEAR = 8


def bitmap_width(config: NeuroCoreConfig) -> int:
    """Bits of a source bitmap: the sources, padded with zero sources to whole chunks and whole lane groups."""
    return max(config.chunks * CHUNK, config.src_groups * config.lanes)


def iterator_shape(config: NeuroCoreConfig):
    """Shape of ``j``, the sequencer's group / row iterator."""
    return range(max(config.groups, config.src_groups) + 2)


class SpikeBitmaps(wiring.Component):
    """``pending`` (the sources that spiked in the previous step, S[t-1]) and ``now`` (this step's, S[t]).

    ``take`` loads the inputs part of ``now`` from ``inputs`` (the neuron part starts empty); the neuron pipeline
    writes a group of P neuron spikes at a time (``spike_valid``, ``spike_group``, ``spike_bits``); ``step_end``
    moves ``now`` to ``pending``; ``clear`` (the end of a soft reset) empties both.
    """

    def __init__(self, config: NeuroCoreConfig):
        self._config = config
        width = bitmap_width(config)
        super().__init__({
            "take": In(1), "inputs": In(config.n_inputs),
            "spike_valid": In(1), "spike_group": In(range(config.groups)), "spike_bits": In(config.lanes),
            "step_end": In(1), "clear": In(1),
            "pending": Out(width), "now": Out(width),
        })

    def elaborate(self, platform):
        c = self._config
        m = Module()
        with m.If(self.take):
            m.d.sync += self.now.eq(self.inputs << c.n_neurons)
        with m.If(self.spike_valid):
            m.d.sync += self.now.word_select(self.spike_group, c.lanes).eq(self.spike_bits)
        with m.If(self.step_end):
            m.d.sync += self.pending.eq(self.now)
        with m.If(self.clear):
            m.d.sync += [self.pending.eq(0), self.now.eq(0)]
        return m


class StepSequencer(wiring.Component):
    """The step FSM (one :class:`Phase` per pass), its iterators, the CTRL region (commands, status, counters).

    Members
    -------
    ctrl : ``In(RegionSignature)``
        Command writes (RUN, SOFT_RESET) and status reads.
    config_write, learn, raster_blocked, pending, now : inputs
        A host write other than an input word (clears ``acc_ok`` unless it is a RUN command); the LEARN register;
        the raster output still holds the last step; the spike bitmaps.
    i_overflow, v_overflow : ``In(1)``
        Saturation events of the neuron pipeline (sticky in the status word until a soft reset).
    phase, idle, j, wk : outputs
        The current pass; ``phase == IDLE``; the group / row iterator; the word of the row being walked.
    issue : ``Out(IssueSignature)``
        Weight-word requests to the STDP pipeline and the synapse memory.
    take, step_end, clear : ``Out(1)``
        A step starts (latch the inputs); a step ends; a soft reset ends.
    """

    def __init__(self, config: NeuroCoreConfig):
        self._config = config
        width = bitmap_width(config)
        super().__init__({
            "ctrl": In(RegionSignature(config)),
            "config_write": In(1), "learn": In(1), "raster_blocked": In(1),
            "pending": In(width), "now": In(width),
            "i_overflow": In(1), "v_overflow": In(1),
            "phase": Out(Phase), "idle": Out(1),
            "j": Out(iterator_shape(config)), "wk": Out(range(config.groups)),
            "issue": Out(IssueSignature(config)),
            "take": Out(1), "step_end": Out(1), "clear": Out(1),
        })

    def elaborate(self, platform):
        c = self._config
        m = Module()
        k_n, ks = c.groups, c.src_groups
        kb = (k_n - 1).bit_length()
        j = self.j
        grp = Signal(range(k_n + 1), name="grp")
        remaining = Signal(24, name="remaining")
        step_cyc = Signal(32, name="step_cyc")
        int_first = Signal(name="int_first")   # INTEGRATE: the first walked row overwrites acc instead of adding
        acc_ok = Signal(name="acc_ok")         # acc already holds the sum over `pending` (see rtl.neurocore.core)
        cmd_write = self.ctrl.we & (self.ctrl.index == 0)
        cmd_op = self.ctrl.wdata[:4]
        cmd_steps = self.ctrl.wdata[8:32]
        with m.If(~self.idle):
            m.d.sync += step_cyc.eq(step_cyc + 1)
        walk, row_done = self._row_walker(m)
        m.d.comb += self.issue.first.eq(int_first)
        with m.FSM(name="seq"):
            with m.State("IDLE"):
                m.d.comb += [self.phase.eq(Phase.IDLE), self.idle.eq(1)]
                with m.If(cmd_write & (cmd_op == Command.RUN) & (cmd_steps != 0)):
                    m.d.sync += remaining.eq(cmd_steps)
                    m.next = "START"
                with m.If(cmd_write & (cmd_op == Command.SOFT_RESET)):
                    m.d.sync += j.eq(0)
                    m.next = "CLEAR"
            with m.State("START"):
                m.d.comb += self.phase.eq(Phase.START)
                with m.If(~self.raster_blocked):
                    m.d.comb += self.take.eq(1)
                    m.d.sync += [j.eq(0), grp.eq(0), step_cyc.eq(1), int_first.eq(1)]
                    with m.If(acc_ok):
                        m.next = "NEURON"
                    with m.Else():
                        m.next = "INTEGRATE"
            with m.State("INTEGRATE"):
                m.d.comb += self.phase.eq(Phase.INTEGRATE)
                walk(self.pending, MODE_INT, "NEURON")
                with m.If(row_done):
                    m.d.sync += int_first.eq(0)
            with m.State("NEURON"):
                m.d.comb += self.phase.eq(Phase.NEURON)
                with m.If(j == k_n + 1):      # the last group has left the three-stage pipeline
                    m.d.sync += j.eq(0)
                    with m.If(self.learn):
                        m.next = "POTENTIATE"
                    with m.Else():
                        m.next = "TRACE"
                with m.Else():
                    m.d.sync += j.eq(j + 1)
            with m.State("POTENTIATE"):
                m.d.comb += self.phase.eq(Phase.POTENTIATE)
                self._column_pass(m, grp, kb)
            with m.State("DEPRESS"):
                m.d.comb += self.phase.eq(Phase.DEPRESS)
                walk(self.now, MODE_DEP, "TRACE")
            with m.State("TRACE"):
                m.d.comb += self.phase.eq(Phase.TRACE)
                with m.If(j == ks - 1):
                    m.d.sync += j.eq(0)
                    m.next = "END"
                with m.Else():
                    m.d.sync += j.eq(j + 1)
            with m.State("END"):
                m.d.comb += [self.phase.eq(Phase.END), self.step_end.eq(1)]
                m.d.sync += [acc_ok.eq(self.learn), remaining.eq(remaining - 1)]
                with m.If(remaining == 1):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "START"
            with m.State("CLEAR"):
                m.d.comb += self.phase.eq(Phase.CLEAR)
                with m.If(j == max(k_n, ks) - 1):
                    m.d.comb += self.clear.eq(1)
                    m.d.sync += j.eq(0)
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += j.eq(j + 1)
        with m.If(self.config_write & ~(cmd_write & (cmd_op == Command.RUN))):
            m.d.sync += acc_ok.eq(0)
        self._status(m, step_cyc)
        return m

    def _status(self, m, step_cyc):
        """The CTRL region's reads: status flags, the step counter, the cycles of the last step."""
        ovf_i = Signal(name="ovf_i")
        ovf_v = Signal(name="ovf_v")
        step_count = Signal(32, name="step_count")
        last_cycles = Signal(32, name="last_cycles")
        with m.If(self.i_overflow):
            m.d.sync += ovf_i.eq(1)
        with m.If(self.v_overflow):
            m.d.sync += ovf_v.eq(1)
        with m.If(self.step_end):
            m.d.sync += [step_count.eq(step_count + 1), last_cycles.eq(step_cyc + 1)]
        with m.If(self.clear):
            m.d.sync += [ovf_i.eq(0), ovf_v.eq(0), step_count.eq(0)]
        with m.Switch(self.ctrl.index):
            with m.Case(0):
                m.d.comb += self.ctrl.rdata.eq(Cat(ovf_i, ovf_v, Const(0, 6), ~self.idle))
            with m.Case(1):
                m.d.comb += self.ctrl.rdata.eq(step_count)
            with m.Case(2):
                m.d.comb += self.ctrl.rdata.eq(last_cycles)

    def _issue(self, m, mode, addr, k, bank=None, lanes=None, last_row=None):
        """Request the weight word at ``addr`` of every bank (``k``: its word in the row; ``bank``: the walked
        source's bank; ``lanes``: the potentiated neurons; ``last_row``: the column pass's last row)."""
        issue = self.issue
        m.d.comb += [issue.valid.eq(1), issue.mode.eq(mode), issue.addr.eq(addr), issue.k.eq(k)]
        if bank is not None:
            m.d.comb += issue.bank.eq(bank)
        if lanes is not None:
            m.d.comb += [issue.lanes.eq(lanes), issue.last_row.eq(last_row)]

    def _bank_addr(self, row, k):
        """Word ``k`` of bank row ``row`` (K = 2**kb whenever P > 1, so the address is wiring alone)."""
        c = self._config
        kb = (c.groups - 1).bit_length()
        return row * c.groups + k if c.lanes == 1 else Cat(k[:kb], row)

    def _column_pass(self, m, grp, kb):
        """POTENTIATE: for every group ``grp`` of P neurons with a spike, rows 0..R-1 (P sources per row)."""
        c = self._config
        j = self.j
        group_spikes = self.now.word_select(grp[:max(1, kb)], c.lanes)
        with m.If(grp == c.groups):
            m.d.sync += [grp.eq(0), j.eq(0)]
            m.next = "DEPRESS"
        with m.Elif(group_spikes.any()):
            self._issue(m, MODE_POT, self._bank_addr(j, grp), 0, lanes=group_spikes, last_row=j == c.src_groups - 1)
            with m.If(j == c.src_groups - 1):
                m.d.sync += [j.eq(0), grp.eq(grp + 1)]
            with m.Else():
                m.d.sync += j.eq(j + 1)
        with m.Else():
            m.d.sync += grp.eq(grp + 1)

    def _row_walker(self, m):
        """The row walker of INTEGRATE and DEPRESS: every set bit of a bitmap, lowest first, its row of K words;
        one cycle per 32-bit chunk loaded. Returns ``walk(bitmap, mode, done_state)``, which adds the walk to the
        current state, and the condition "the last word of a row is being requested"."""
        c = self._config
        k_n, lp, n_chunks = c.groups, c.lane_bits, c.chunks
        wk = self.wk
        chunk = Signal(range(n_chunks + 1), name="chunk")        # next chunk of the bitmap to load
        cbase = Signal(range(max(n_chunks, 2)), name="cbase")     # chunk held in cb
        cb = Signal(CHUNK, name="cb")                            # its spiking sources not yet walked
        low_idx, low = lowest_bit(m, cb, "low_idx")
        walk_src = Signal(range(n_chunks * CHUNK), name="walk_src")
        m.d.comb += walk_src.eq(Cat(low_idx, cbase))
        walk_bank = walk_src[:lp] if lp else Const(0, 1)
        walk_addr = self._bank_addr(walk_src[lp:], wk)

        def walk(bitmap, mode, done_state):
            with m.If(cb == 0):
                with m.If(chunk == n_chunks):
                    m.d.sync += chunk.eq(0)
                    m.next = done_state
                with m.Else():
                    m.d.sync += [cb.eq(bitmap.word_select(chunk, CHUNK)), cbase.eq(chunk), chunk.eq(chunk + 1)]
            with m.Else():
                self._issue(m, mode, walk_addr, wk, bank=walk_bank)
                with m.If(wk == k_n - 1):
                    m.d.sync += [wk.eq(0), cb.eq(cb & ~low)]
                with m.Else():
                    m.d.sync += wk.eq(wk + 1)

        return walk, (cb != 0) & (wk == k_n - 1)
