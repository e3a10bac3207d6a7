"""The NeuroCore's synapses: the banked weight memory and the STDP read-modify-write pipeline over it.

Layout of the banks: :mod:`rtl.neurocore.core`. The pipeline takes one request per cycle from the sequencer
(:class:`IssueSignature`): stage 0 reads the addressed word of every bank (and latches the decayed trace the
weight step needs), stage 1 computes the step and the leaked weights, stage 2 writes back, stage 3 (depression
only) hands the rewritten row to the neuron unit's ``acc``. An INTEGRATE request only borrows stages 0 and 1:
its word goes to ``acc`` (``integrate``) and nothing is written.
"""
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.neurocore.arith import clamp, leaked, select, stdp_step
from rtl.neurocore.config import NeuroCoreConfig
from rtl.neurocore.host import RegionSignature

__all__ = ["AccumulateSignature", "IssueSignature", "MODE_DEP", "MODE_INT", "MODE_POT", "StdpUnit", "SynapseMemory",
           "WeightWriteSignature"]

MODE_INT, MODE_POT, MODE_DEP = 0, 1, 2  #: what a weight-word request is for: integrate, potentiate, depress


def _bank_bits(config: NeuroCoreConfig) -> int:
    return max(1, config.lane_bits)


def _bank_depth(config: NeuroCoreConfig) -> int:
    return config.src_groups * config.groups


class IssueSignature(wiring.Signature):
    """A weight-word request, seen from the sequencer: word ``addr`` of every bank, for ``mode``.

    ``k``: the word's index in its row (the neuron group it holds); ``bank``: the bank of the walked source
    (INTEGRATE, DEPRESS); ``lanes``: the spiking neurons of the group (POTENTIATE); ``last_row``: the column pass
    reads its last row, in which the banks beyond the last source hold no synapses; ``first``: INTEGRATE's first row,
    which overwrites ``acc`` instead of adding to it.
    """

    def __init__(self, config: NeuroCoreConfig):
        super().__init__({
            "valid": Out(1), "mode": Out(2), "addr": Out(range(_bank_depth(config))), "k": Out(range(config.groups)),
            "bank": Out(_bank_bits(config)), "lanes": Out(config.lanes), "last_row": Out(1), "first": Out(1),
        })


class WeightWriteSignature(wiring.Signature):
    """Write-back of the STDP pipeline, seen from it: ``data[b]`` into word ``addr`` of every bank ``b`` in ``en``."""

    def __init__(self, config: NeuroCoreConfig):
        super().__init__({
            "valid": Out(1), "addr": Out(range(_bank_depth(config))), "en": Out(config.lanes),
            "data": Out(config.weight_word_bits).array(config.lanes),
        })


class AccumulateSignature(wiring.Signature):
    """P weights (int8, lane ``l`` at bits ``8l..8l+7``) to add into ``acc`` word ``k``, seen from their source;
    ``first``: overwrite instead of adding."""

    def __init__(self, config: NeuroCoreConfig):
        super().__init__({
            "valid": Out(1), "first": Out(1), "k": Out(range(config.groups)), "weights": Out(8 * config.lanes),
        })


class SynapseMemory(wiring.Component):
    """The P weight banks ``w_mem_<b>`` with their read registers ``w_word_<b>`` (``words``) and the WEIGHT region.

    Each bank has an asynchronous read port plus an explicit register (a named fault site, merged into the block
    RAM by synthesis), as in rtl/common/sram.py: together a synchronous read with one cycle of latency. All banks
    share the read address: the host's word while ``idle``, else the sequencer's request (``issue``). Writes come
    from the host (idle) or from the STDP pipeline (``write``).
    """

    def __init__(self, config: NeuroCoreConfig):
        self._config = config
        super().__init__({
            "host": In(RegionSignature(config)),
            "idle": In(1),
            "issue": In(IssueSignature(config)),
            "write": In(WeightWriteSignature(config)),
            "words": Out(config.weight_word_bits).array(config.lanes),
        })

    def elaborate(self, platform):
        c = self._config
        m = Module()
        p, lp = c.lanes, c.lane_bits
        kb = (c.groups - 1).bit_length()
        host = self.host
        # the host's word index s*K + k: bank s mod P, row s div P (K is a power of two when P > 1)
        h_bank = host.index[kb:kb + lp] if lp else Const(0, 1)
        h_waddr = Cat(host.index[:kb], host.index[kb + lp:]) if lp else host.index
        rd_bank = Signal(_bank_bits(c), name="rd_bank")   # bank of the word the registers hold for the host
        m.d.sync += rd_bank.eq(h_bank)
        raddr = Signal(range(_bank_depth(c)), name="w_raddr")
        waddr = Signal(range(_bank_depth(c)), name="w_waddr")
        with m.If(self.idle):
            m.d.comb += [raddr.eq(h_waddr), waddr.eq(h_waddr)]
        with m.Else():
            with m.If(self.issue.valid):
                m.d.comb += raddr.eq(self.issue.addr)
            with m.If(self.write.valid):
                m.d.comb += waddr.eq(self.write.addr)

        words = []
        for b in range(p):
            mem = Memory(shape=c.weight_word_bits, depth=_bank_depth(c), init=[])
            m.submodules[f"w_mem_{b}"] = mem
            rp, wp = mem.read_port(domain="comb"), mem.write_port()
            word = Signal(c.weight_word_bits, name=f"w_word_{b}")
            m.d.comb += [rp.addr.eq(raddr), wp.addr.eq(waddr), self.words[b].eq(word)]
            m.d.sync += word.eq(rp.data)
            with m.If(host.we):
                m.d.comb += [wp.en.eq(h_bank == b), wp.data.eq(host.wdata)]
            with m.Else():
                m.d.comb += [wp.en.eq(self.write.en[b]), wp.data.eq(self.write.data[b])]
            words.append(word)

        m.d.comb += host.rdata.eq(select(m, words, rd_bank, "rd_word"))
        return m


class StdpUnit(wiring.Component):
    """The weight pipeline of INTEGRATE, POTENTIATE and DEPRESS (see the module docstring).

    POTENTIATE rewrites word ``(row, k)`` of every bank with ``clamp(w - ceil(w / 2^w_decay) + dw)`` in the
    spiking, plastic lanes, ``dw = clamp((A+ * (decay(x[s]) - x_tar)) >>> s+, -255, 255)``; DEPRESS rewrites the
    walked source's word with ``clamp(w - dw)``, ``dw = min((A- * decay(y[i])) >> s-, 255)``, in the plastic lanes.

    Members
    -------
    issue : ``In(IssueSignature)``
    x_decayed, y_decayed : ``In(T).array(P)``
        ``decay(x)`` of the sources in bank order and ``decay(y)`` of the neurons in lane order, at the addresses
        of the current request (:class:`~rtl.neurocore.traces.TraceMemory`).
    words : ``In(9P).array(P)``
        The banks' read registers (:class:`SynapseMemory`).
    x_tar, a_plus, a_minus, s_plus, s_minus, w_decay, w_min, w_max : inputs
        The global registers of the same names.
    write : ``Out(WeightWriteSignature)``
    integrate, feedback : ``Out(AccumulateSignature)``
        The word an INTEGRATE request read (stage 1); the row DEPRESS rewrote (stage 3).
    """

    def __init__(self, config: NeuroCoreConfig):
        self._config = config
        p, tb = config.lanes, config.trace_bits
        super().__init__({
            "issue": In(IssueSignature(config)),
            "x_decayed": In(tb).array(p), "y_decayed": In(tb).array(p),
            "words": In(config.weight_word_bits).array(p),
            "x_tar": In(tb), "a_plus": In(8), "a_minus": In(8), "s_plus": In(4), "s_minus": In(4),
            "w_decay": In(4), "w_min": In(signed(8)), "w_max": In(signed(8)),
            "write": Out(WeightWriteSignature(config)),
            "integrate": Out(AccumulateSignature(config)),
            "feedback": Out(AccumulateSignature(config)),
        })

    def elaborate(self, platform):
        c = self._config
        m = Module()
        p = c.lanes
        words = list(self.words)
        p_regs = self._stage0(m)
        p_valid, p_mode, p_t = p_regs["valid"], p_regs["mode"], p_regs["t"]

        # stage 1: INTEGRATE passes its word on to acc; POTENTIATE / DEPRESS compute their weight step
        word1 = select(m, words, p_regs["bank"], "word1")
        m.d.comb += [self.integrate.valid.eq(p_valid & (p_mode == MODE_INT)), self.integrate.first.eq(p_regs["first"]),
                     self.integrate.k.eq(p_regs["k"]), self.integrate.weights.eq(word1[:8 * p])]
        gain = Mux(p_mode == MODE_POT, self.a_plus, self.a_minus)
        shift = Mux(p_mode == MODE_POT, self.s_plus, self.s_minus)
        dw = [stdp_step(m, gain, p_t[i], shift, f"dw_{i}") for i in range(p)]
        q = {
            "valid": Signal(name="q_valid"), "mode": Signal(2, name="q_mode"),
            "bank": Signal(_bank_bits(c), name="q_bank"), "waddr": Signal(range(_bank_depth(c)), name="q_waddr"),
            "k": Signal(range(c.groups), name="q_k"), "lanes": Signal(p, name="q_lanes"),
            "bvalid": Signal(p, name="q_bvalid"),
        }
        m.d.sync += q["valid"].eq(p_valid & (p_mode != MODE_INT))
        m.d.sync += [q[name].eq(p_regs[name]) for name in ("mode", "bank", "waddr", "k", "lanes", "bvalid")]
        q_word = [Signal(c.weight_word_bits, name=f"q_word_{b}") for b in range(p)]
        q_dw = [Signal(signed(9), name=f"q_dw_{i}") for i in range(p)]
        q_wl = [[Signal(signed(9), name=f"q_wl_{b}_{lane}") for lane in range(p)] for b in range(p)]
        m.d.sync += [q_word[b].eq(words[b]) for b in range(p)]
        m.d.sync += [q_dw[i].eq(dw[i]) for i in range(p)]
        for b in range(p):
            for lane in range(p):
                w = words[b][8 * lane:8 * lane + 8].as_signed()
                m.d.sync += q_wl[b][lane].eq(leaked(m, w, self.w_decay, f"wl_{b}_{lane}"))

        self._write_back(m, q, q_word, q_dw, q_wl)
        return m

    def _stage0(self, m):
        """The request registers ``p_*`` (and ``p_t_<i>``: the decayed trace of bank i minus x_tar (POTENTIATE) or
        of lane i (DEPRESS))."""
        c = self._config
        p, ks = c.lanes, c.src_groups
        regs = {
            "valid": Signal(name="p_valid"), "mode": Signal(2, name="p_mode"),
            "bank": Signal(_bank_bits(c), name="p_bank"), "waddr": Signal(range(_bank_depth(c)), name="p_waddr"),
            "k": Signal(range(c.groups), name="p_k"), "first": Signal(name="p_first"),
            "lanes": Signal(p, name="p_lanes"), "bvalid": Signal(p, name="p_bvalid"),
            "t": [Signal(signed(c.trace_bits + 1), name=f"p_t_{i}") for i in range(p)],
        }
        last_row_banks = Const(sum(1 << b for b in range(p) if (ks - 1) * p + b < c.n_sources), p)
        issue = self.issue
        m.d.sync += regs["valid"].eq(0)
        with m.If(issue.valid):
            m.d.sync += [regs["valid"].eq(1), regs["mode"].eq(issue.mode), regs["waddr"].eq(issue.addr),
                         regs["k"].eq(issue.k)]
            with m.Switch(issue.mode):
                with m.Case(MODE_INT):
                    m.d.sync += [regs["bank"].eq(issue.bank), regs["first"].eq(issue.first)]
                with m.Case(MODE_POT):
                    m.d.sync += [regs["lanes"].eq(issue.lanes),
                                 regs["bvalid"].eq(Mux(issue.last_row, last_row_banks, (1 << p) - 1))]
                    m.d.sync += [regs["t"][b].eq(self.x_decayed[b] - self.x_tar) for b in range(p)]
                with m.Case(MODE_DEP):
                    m.d.sync += regs["bank"].eq(issue.bank)
                    m.d.sync += [regs["t"][lane].eq(self.y_decayed[lane]) for lane in range(p)]
        return regs

    def _write_back(self, m, q, q_word, q_dw, q_wl):
        """Stage 2 writes back (POTENTIATE: every bank; DEPRESS: the walked source's bank, whose new weights stage 3
        passes on to acc)."""
        p = self._config.lanes
        write = self.write

        def lanes_of(word):
            return [word[8 * lane:8 * lane + 8].as_signed() for lane in range(p)], word[8 * p:9 * p]

        r_valid = Signal(name="r_valid")
        r_k = Signal(range(self._config.groups), name="r_k")
        r_new = Signal(8 * p, name="r_new")
        m.d.sync += r_valid.eq(0)
        m.d.comb += [self.feedback.valid.eq(r_valid), self.feedback.k.eq(r_k), self.feedback.weights.eq(r_new)]
        word2 = select(m, q_word, q["bank"], "word2")
        with m.If(q["valid"]):
            m.d.comb += [write.valid.eq(1), write.addr.eq(q["waddr"])]
            with m.If(q["mode"] == MODE_POT):
                for b in range(p):
                    w, mask = lanes_of(q_word[b])
                    new = [Mux(q["lanes"][lane] & mask[lane], clamp(q_wl[b][lane] + q_dw[b], self.w_min,
                                                                    self.w_max)[:8], w[lane][:8]) for lane in range(p)]
                    m.d.comb += [write.en[b].eq(q["bvalid"][b]), write.data[b].eq(Cat(*new, mask))]
            with m.Else():
                w, mask = lanes_of(word2)
                new = [Mux(mask[lane], clamp(w[lane] - q_dw[lane], self.w_min, self.w_max)[:8], w[lane][:8])
                       for lane in range(p)]
                for b in range(p):
                    m.d.comb += [write.en[b].eq(q["bank"] == b), write.data[b].eq(Cat(*new, mask))]
                m.d.sync += [r_valid.eq(1), r_k.eq(q["k"]), r_new.eq(Cat(*new))]

