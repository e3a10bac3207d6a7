"""The NeuroCore engine: N LIF neurons, M inputs, an (N+M) x N int8 weight matrix with on-chip trace STDP.

Bit-exact with :class:`models.snn.golden.GoldenCore`; the per-step semantics are specified in
:mod:`models.snn.params` and implemented here phase by phase.

Memories
--------
* ``w_mem_<b>`` (P banks, ``b = s mod P``): the weights of source ``s`` live in bank ``s mod P``, row ``s div P``;
  word ``row*K + k`` of a bank = weights ``W[s, k*P + l]`` (int8, lane ``l`` at bits ``8l..8l+7``) then their P
  plasticity-mask bits (K = N/P). Each bank has one synchronous read port (all banks share the read address; the
  read register is ``w_word_<b>``) and one write port, so a read-modify-write of P synapses per bank completes
  every cycle. Banking by source lets a potentiation column pass rewrite P sources (P words) per cycle; with P > 1,
  K must be a power of two so that the host's word index ``s*K + k`` splits into bank and row by wiring alone.
* per lane ``l`` (neuron ``i = k*P + l`` at address ``k``), LUT RAMs of depth K with separate read and write
  addresses: parameters ``theta``, ``v_reset``, ``v_rest``, ``bias``, ``d_v``, ``d_i``, ``t_ref`` and state
  ``i_syn``, ``v``, ``ref``, ``y`` (post trace), ``acc`` (exact per-step input sum; own addresses), ``count``
  (16-bit saturating spike counter), ``a`` (16-bit saturating adaptive threshold; kept by a soft reset).
* per lane ``l``: ``x`` (pre trace of source ``s = j*P + l`` at address ``j``), depth ceil((N+M)/P).
* registers: the global learning/synapse registers (including the homeostasis registers and ``tick``, the
  learning-step counter modulo ``2^theta_period``, kept by a soft reset), ``pending`` (sources that spiked in the
  previous step), ``now`` (this step's source spikes), ``next_in`` (host-written inputs of the next step), status
  flags, counters.

Step sequencer (one FSM; :func:`rtl.neurocore.config.step_cycles` gives the exact cycle count)
-------------------------------------------------------------------------------------------------
START latches ``next_in`` into the input part of ``now``. INTEGRATE walks ``pending`` 32 sources at a time: one
cycle loads a 32-bit chunk, a priority encoder picks its lowest spiking source, whose row is read in K cycles,
P weights per cycle; one cycle later ``acc += w << w_exp`` per lane. NEURON is a three-stage pipeline over the
groups of P neurons (read + decay products + ``theta_eff = theta + a``, current/membrane sums with saturation and
``theta_eff - v_reset``, threshold/reset/write-back).
With learning on, POTENTIATE makes one column pass per group of P neurons that has a spike, reading word
``(row, k)`` of every bank at once (P sources per cycle) and rewriting it with ``clamp(w - ceil(w / 2^w_decay) +
dw)`` in the spiking, plastic lanes (no leak term when ``w_decay`` is 0), ``dw = clamp((A+ * (decay(x[s]) -
x_tar)) >>> s+, -255, 255)`` (the cap changes nothing: ``w`` minus its leak is an int8, so any step of 255 or more
either way clamps it to a bound). DEPRESS walks ``now`` like INTEGRATE and rewrites the rows of spiking sources
with ``clamp(w - dw)``, ``dw = min((A- * decay(y[i])) >> s-, 255)``, in the plastic lanes; both STDP passes are
pipelined read (stage 0, with the trace decay and ``- x_tar``) / ``dw`` and the leaked weights (stage 1) / write
(stage 2). The rows DEPRESS rewrites are exactly the sources the next step integrates, so stage 3 of DEPRESS adds
the new weights into ``acc``: the next step then skips INTEGRATE (flag ``acc_ok``, cleared by any host write other
than an input word or a RUN command; INTEGRATE's first row overwrites ``acc`` rather than adding to it, which
discards such a stale sum, and with nothing pending that sum was empty, i.e. zero). TRACE updates x and y, P of each
per cycle, and with learning on also ``a <- min(ad + theta_plus * spike, 65535)``, ``ad = decay(a, d_theta)`` in
steps that start with ``tick == 0``.
END moves ``now`` to ``pending``, advances ``tick`` (learning on) and presents the raster.
Every pass touches each weight word at most once, and a pass's last write lands before the next pass reads.

Host interface (parallel; the UART front end wraps it)
------------------------------------------------------
``bus``: ``addr`` (:class:`~rtl.neurocore.config.Region` in the top 3 bits), ``wdata``, ``we``, ``re``;
``rdata``/``rvalid`` one cycle after ``re``. Every read is answered; writes and memory-region reads are only
meaningful while ``busy`` is low (writes while busy are ignored). Signed fields are written as their two's
complement low bits and read back zero-extended; the ACC field between steps of a learning run holds the next
step's input sum. ``raster`` is a stream of the N spike bits of every step; the core does not start a step while a
raster is pending (``raster.ready`` low), so the host can pace a run.
"""
from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from models.snn.params import ADAPT_BITS, DECAY_ONE, DECAY_SHIFT, STATE_BITS, StdpParams
from rtl.neurocore.config import CHUNK, Command, GlobalReg, NeuroCoreConfig, NeuronField, Region

__all__ = ["HostBusSignature", "NeuroCore"]

_S_LO, _S_HI = -(1 << (STATE_BITS - 1)), (1 << (STATE_BITS - 1)) - 1
_DW_MAX = 255
MODE_INT, MODE_POT, MODE_DEP = 0, 1, 2


class HostBusSignature(wiring.Signature):
    """Host-side register bus (members seen from the host: it drives ``addr``/``wdata``/``we``/``re``)."""

    def __init__(self, addr_width: int, data_width: int):
        super().__init__({
            "addr": Out(addr_width), "wdata": Out(data_width), "we": Out(1), "re": Out(1),
            "rdata": In(data_width), "rvalid": In(1),
        })


def _decay_product(m, x, d, name):
    """``x * (4096 - d)`` for a signed ``x``: the multiplier half of ``decay``."""
    mul = Signal(range(DECAY_ONE + 1), name=f"{name}_m")
    prod = Signal(signed(len(x) + 14), name=f"{name}_p")
    m.d.comb += [mul.eq(DECAY_ONE - d), prod.eq(x * mul)]
    return prod


def _decay_round(m, prod, width, name):
    """``prod / 4096`` truncated toward zero, ``width`` bits: the second half of ``decay``."""
    out = Signal(signed(width), name=name)
    m.d.comb += out.eq((prod + Mux(prod[-1], DECAY_ONE - 1, 0)) >> DECAY_SHIFT)
    return out


def _decay_unsigned(m, x, d, name):
    mul = Signal(range(DECAY_ONE + 1), name=f"{name}_m")
    out = Signal(len(x), name=name)
    m.d.comb += [mul.eq(DECAY_ONE - d), out.eq((x * mul) >> DECAY_SHIFT)]
    return out


def _stdp_step(m, gain, trace, shift, name):
    """``clamp((gain * trace) >>> shift, -255, 255)`` for a signed ``trace`` (floor shift)."""
    prod = Signal(signed(len(gain) + len(trace) + 1), name=f"{name}_p")
    out = Signal(signed(9), name=name)
    m.d.comb += [prod.eq((gain * trace) >> shift), out.eq(_clamp(prod, -_DW_MAX, _DW_MAX))]
    return out


def _leaked(m, w, k, name):
    """``w - ceil(w / 2^k)`` (``w`` when ``k`` is 0): a weight after the weight-dependent leak."""
    out = Signal(signed(9), name=name)
    m.d.comb += out.eq(Mux(k == 0, w, w + ((-w) >> k)))
    return out


def _saturate(m, x, name):
    """(sat24(x), overflowed)."""
    out = Signal(signed(STATE_BITS), name=name)
    ovf = Signal(name=f"{name}_ovf")
    m.d.comb += [
        ovf.eq((x > _S_HI) | (x < _S_LO)),
        out.eq(Mux(x > _S_HI, _S_HI, Mux(x < _S_LO, _S_LO, x))),
    ]
    return out, ovf


def _clamp(x, lo, hi):
    return Mux(x < lo, lo, Mux(x > hi, hi, x))


def _select(m, values, index, name):
    """``values[index]`` as a named signal (a plain value when there is only one)."""
    if len(values) == 1:
        return values[0]
    out = Signal(len(values[0]), name=name)
    with m.Switch(index):
        for i, v in enumerate(values):
            with m.Case(i):
                m.d.comb += out.eq(v)
    return out


def _lowest_bit(m, bits, name):
    """(index of the lowest set bit of ``bits``, that bit alone)."""
    low = Signal(len(bits), name=f"{name}_onehot")
    idx = Signal(max(1, (len(bits) - 1).bit_length()), name=name)
    m.d.comb += low.eq(bits & (~bits + 1))
    m.d.comb += idx.eq(Cat(*(Cat(*(low[i] for i in range(len(bits)) if i >> t & 1)).any()
                             for t in range(len(idx)))))
    return idx, low


class NeuroCore(wiring.Component):
    """NeuroCoreX-like SNN core engine (see the module docstring).

    Parameters
    ----------
    config : NeuroCoreConfig

    Members
    -------
    bus : ``In(HostBusSignature(config.addr_width, config.data_width))``
    busy : ``Out(1)``
        A run or soft reset is in progress.
    raster : ``Out(stream.Signature(N))``
        Spike bits of each finished step (bit i = neuron i).
    """

    def __init__(self, config: NeuroCoreConfig):
        if not isinstance(config, NeuroCoreConfig):
            raise TypeError(f"config must be a NeuroCoreConfig, not {config!r}")
        self._config = config
        super().__init__({
            "bus": In(HostBusSignature(config.addr_width, config.data_width)),
            "busy": Out(1),
            "raster": Out(stream.Signature(config.n_neurons)),
        })

    @property
    def config(self) -> NeuroCoreConfig:
        return self._config

    def elaborate(self, platform):
        c = self._config
        m = Module()
        n, p, k_n, s_n, ks = c.n_neurons, c.lanes, c.groups, c.n_sources, c.src_groups
        lp, tb = c.lane_bits, c.trace_bits
        kb = (k_n - 1).bit_length()        # K = 2**kb whenever P > 1
        n_chunks = c.chunks
        tmax = (1 << tb) - 1
        bus = self.bus
        d0 = StdpParams()

        # -- global registers (reset values: the golden model's power-on defaults) ------------------------------
        regs = {
            GlobalReg.W_EXP: Signal(3, name="w_exp"),
            GlobalReg.D_X: Signal(range(DECAY_ONE + 1), name="d_x", init=d0.d_x),
            GlobalReg.D_Y: Signal(range(DECAY_ONE + 1), name="d_y", init=d0.d_y),
            GlobalReg.A_PRE: Signal(tb, name="a_pre", init=min(d0.a_pre, tmax)),
            GlobalReg.A_POST: Signal(tb, name="a_post", init=min(d0.a_post, tmax)),
            GlobalReg.A_PLUS: Signal(8, name="a_plus"),
            GlobalReg.A_MINUS: Signal(8, name="a_minus"),
            GlobalReg.S_PLUS: Signal(4, name="s_plus", init=d0.s_plus),
            GlobalReg.S_MINUS: Signal(4, name="s_minus", init=d0.s_minus),
            GlobalReg.W_MIN: Signal(signed(8), name="w_min", init=d0.w_min),
            GlobalReg.W_MAX: Signal(signed(8), name="w_max", init=d0.w_max),
            GlobalReg.TRACE_MODE: Signal(1, name="trace_mode"),
            GlobalReg.RESET_MODE: Signal(1, name="reset_mode"),
            GlobalReg.LEARN: Signal(1, name="learn"),
            GlobalReg.X_TAR: Signal(tb, name="x_tar"),
            GlobalReg.W_DECAY: Signal(4, name="w_decay"),
            GlobalReg.THETA_PLUS: Signal(ADAPT_BITS, name="theta_plus"),
            GlobalReg.D_THETA: Signal(range(DECAY_ONE + 1), name="d_theta"),
            GlobalReg.THETA_PERIOD: Signal(4, name="theta_period"),
            GlobalReg.TICK: Signal(15, name="tick"),
        }
        w_exp, d_x, d_y = regs[GlobalReg.W_EXP], regs[GlobalReg.D_X], regs[GlobalReg.D_Y]
        a_pre, a_post = regs[GlobalReg.A_PRE], regs[GlobalReg.A_POST]
        a_plus, a_minus = regs[GlobalReg.A_PLUS], regs[GlobalReg.A_MINUS]
        s_plus, s_minus = regs[GlobalReg.S_PLUS], regs[GlobalReg.S_MINUS]
        w_min, w_max = regs[GlobalReg.W_MIN], regs[GlobalReg.W_MAX]
        trace_mode, reset_mode, learn = regs[GlobalReg.TRACE_MODE], regs[GlobalReg.RESET_MODE], regs[GlobalReg.LEARN]
        x_tar, w_decay, tick = regs[GlobalReg.X_TAR], regs[GlobalReg.W_DECAY], regs[GlobalReg.TICK]
        theta_plus, d_theta = regs[GlobalReg.THETA_PLUS], regs[GlobalReg.D_THETA]
        theta_period = regs[GlobalReg.THETA_PERIOD]

        ovf_i = Signal(name="ovf_i")
        ovf_v = Signal(name="ovf_v")
        step_count = Signal(32, name="step_count")
        step_cyc = Signal(32, name="step_cyc")
        last_cycles = Signal(32, name="last_cycles")
        remaining = Signal(24, name="remaining")
        acc_ok = Signal(name="acc_ok")     # acc already holds the sum over `pending` (see the module docstring)

        n_pad = -(-n // 32) * 32
        m_pad = -(-c.n_inputs // 32) * 32
        sw = max(n_chunks * CHUNK, ks * p)
        pending = Signal(sw, name="pending")   # S[t-1] (padded with zero sources)
        now = Signal(sw, name="now")           # S[t]
        next_in = Signal(m_pad, name="next_in")
        last_spikes = Signal(n_pad, name="last_spikes")
        raster_valid = Signal(name="raster_valid")
        m.d.comb += [self.raster.payload.eq(last_spikes[:n]), self.raster.valid.eq(raster_valid)]
        with m.If(self.raster.ready):
            m.d.sync += raster_valid.eq(0)

        # -- memories --------------------------------------------------------------------------------------------
        bank_depth = ks * k_n
        w_raddr = Signal(range(bank_depth), name="w_raddr")
        w_waddr = Signal(range(bank_depth), name="w_waddr")
        w_word, w_wen, w_wdata = [], [], []
        for b in range(p):
            mem = Memory(shape=c.weight_word_bits, depth=bank_depth, init=[])
            m.submodules[f"w_mem_{b}"] = mem
            # An asynchronous read port plus an explicit register (a named fault site, merged into the block RAM by
            # synthesis), as in rtl/common/sram.py: together a synchronous read with one cycle of latency.
            rp, wp = mem.read_port(domain="comb"), mem.write_port()
            word = Signal(c.weight_word_bits, name=f"w_word_{b}")
            m.d.comb += [rp.addr.eq(w_raddr), wp.addr.eq(w_waddr)]
            m.d.sync += word.eq(rp.data)
            w_word.append(word)
            w_wen.append(wp.en)
            w_wdata.append(wp.data)

        def bank_addr(row, k):
            return row * k_n + k if p == 1 else Cat(k[:kb], row)

        field_shapes = {
            NeuronField.THETA: (signed(STATE_BITS), 1 << 10), NeuronField.V_RESET: (signed(STATE_BITS), 0),
            NeuronField.V_REST: (signed(STATE_BITS), 0), NeuronField.BIAS: (signed(STATE_BITS), 0),
            NeuronField.D_V: (unsigned(13), 0), NeuronField.D_I: (unsigned(13), 0),
            NeuronField.T_REF: (unsigned(8), 0), NeuronField.I_SYN: (signed(STATE_BITS), 0),
            NeuronField.V: (signed(STATE_BITS), 0), NeuronField.REF: (unsigned(8), 0),
            NeuronField.Y: (unsigned(tb), 0), NeuronField.ACC: (signed(c.acc_bits), 0),
            NeuronField.COUNT: (unsigned(16), 0), NeuronField.A: (unsigned(ADAPT_BITS), 0),
        }
        n_raddr = Signal(range(k_n), name="n_raddr")   # read address of every neuron memory but acc
        n_waddr = Signal(range(k_n), name="n_waddr")
        acc_raddr = Signal(range(k_n), name="acc_raddr")
        acc_waddr = Signal(range(k_n), name="acc_waddr")
        xaddr = Signal(range(ks), name="xaddr")
        nrd, nwr = {}, {}
        for f, (shape, init) in field_shapes.items():
            nrd[f], nwr[f] = [], []
            for lane in range(p):
                mem = Memory(shape=shape, depth=k_n, init=[init] * k_n)
                m.submodules[f"{f.name.lower()}_{lane}"] = mem
                rp, wp = mem.read_port(domain="comb"), mem.write_port()
                if f == NeuronField.ACC:
                    m.d.comb += [rp.addr.eq(acc_raddr), wp.addr.eq(acc_waddr)]
                else:
                    m.d.comb += [rp.addr.eq(n_raddr), wp.addr.eq(n_waddr)]
                nrd[f].append(rp)
                nwr[f].append(wp)
        xrd, xwr = [], []
        for lane in range(p):
            mem = Memory(shape=unsigned(tb), depth=ks, init=[])
            m.submodules[f"x_{lane}"] = mem
            rp, wp = mem.read_port(domain="comb"), mem.write_port()
            m.d.comb += [rp.addr.eq(xaddr), wp.addr.eq(xaddr)]
            xrd.append(rp)
            xwr.append(wp)

        def rd(field, lane):
            return nrd[field][lane].data

        def wr(field, lane, value):
            m.d.comb += [nwr[field][lane].en.eq(1), nwr[field][lane].data.eq(value)]

        # -- host bus decode -------------------------------------------------------------------------------------
        region = bus.addr[c.index_bits:]
        index = bus.addr[:c.index_bits]
        idle = Signal(name="idle")
        host_we = Signal(name="host_we")
        m.d.comb += host_we.eq(bus.we & idle)
        nb = c.neuron_bits
        h_field = index[nb:nb + 4]
        h_neuron = index[:nb]
        h_lane = h_neuron[:lp] if lp else Const(0, 1)
        h_bank = index[kb:kb + lp] if lp else Const(0, 1)
        h_waddr = Cat(index[:kb], index[kb + lp:]) if lp else index

        # -- sequencer iterators ---------------------------------------------------------------------------------
        grp = Signal(range(k_n + 1), name="grp")
        j = Signal(range(max(k_n, ks) + 2), name="j")
        chunk = Signal(range(n_chunks + 1), name="chunk")        # next chunk of the bitmap to load
        cbase = Signal(range(max(n_chunks, 2)), name="cbase")     # chunk held in cb
        cb = Signal(CHUNK, name="cb")                            # its spiking sources not yet walked
        wk = Signal(range(k_n), name="wk")                       # word of the row being walked
        low_idx, low = _lowest_bit(m, cb, "low_idx")
        walk_src = Signal(range(n_chunks * CHUNK), name="walk_src")
        m.d.comb += walk_src.eq(Cat(low_idx, cbase))
        walk_bank = walk_src[:lp] if lp else Const(0, 1)
        walk_addr = bank_addr(walk_src[lp:], wk)

        # -- weight pipeline: stage 0 reads (and decays the trace), 1 computes dw, 2 writes, 3 accumulates --------
        bank_bits = max(1, lp)
        p_valid = Signal(name="p_valid")
        p_mode = Signal(2, name="p_mode")
        p_bank = Signal(bank_bits, name="p_bank")
        p_waddr = Signal(range(bank_depth), name="p_waddr")
        p_k = Signal(range(k_n), name="p_k")
        p_first = Signal(name="p_first")      # INT: the first walked row, which overwrites acc instead of adding
        int_first = Signal(name="int_first")
        p_lanes = Signal(p, name="p_lanes")
        p_bvalid = Signal(p, name="p_bvalid")
        # decayed x of bank i minus x_tar (POT) or decayed y of lane i (DEP)
        p_t = [Signal(signed(tb + 1), name=f"p_t_{i}") for i in range(p)]
        q_valid = Signal(name="q_valid")
        q_mode = Signal(2, name="q_mode")
        q_bank = Signal(bank_bits, name="q_bank")
        q_waddr = Signal(range(bank_depth), name="q_waddr")
        q_k = Signal(range(k_n), name="q_k")
        q_lanes = Signal(p, name="q_lanes")
        q_bvalid = Signal(p, name="q_bvalid")
        q_word = [Signal(c.weight_word_bits, name=f"q_word_{b}") for b in range(p)]
        q_dw = [Signal(signed(9), name=f"q_dw_{i}") for i in range(p)]
        q_wl = [[Signal(signed(9), name=f"q_wl_{b}_{lane}") for lane in range(p)] for b in range(p)]
        r_valid = Signal(name="r_valid")
        r_k = Signal(range(k_n), name="r_k")
        r_new = Signal(8 * p, name="r_new")
        m.d.sync += [p_valid.eq(0), r_valid.eq(0)]

        xd = [_decay_unsigned(m, xrd[lane].data, d_x, f"xd_{lane}") for lane in range(p)]
        yd = [_decay_unsigned(m, rd(NeuronField.Y, lane), d_y, f"yd_{lane}") for lane in range(p)]
        last_row_banks = Const(sum(1 << b for b in range(p) if (ks - 1) * p + b < s_n), p)

        def issue(mode, addr, k_val, bank=None, lanes=None, row=None):
            m.d.comb += w_raddr.eq(addr)
            m.d.sync += [p_valid.eq(1), p_mode.eq(mode), p_waddr.eq(addr), p_k.eq(k_val)]
            if bank is not None:
                m.d.sync += p_bank.eq(bank)
            if mode == MODE_INT:
                m.d.sync += p_first.eq(int_first)
            if mode == MODE_POT:
                m.d.sync += [p_lanes.eq(lanes), p_bvalid.eq(Mux(row == ks - 1, last_row_banks, (1 << p) - 1))]
                m.d.sync += [p_t[b].eq(xd[b] - x_tar) for b in range(p)]
            if mode == MODE_DEP:
                m.d.sync += [p_t[lane].eq(yd[lane]) for lane in range(p)]

        def row_walk(bitmap, mode, done_state):
            """Every set bit of ``bitmap``, lowest first: its row, K words; one cycle per 32-bit chunk loaded."""
            with m.If(cb == 0):
                with m.If(chunk == n_chunks):
                    m.d.sync += chunk.eq(0)
                    m.next = done_state
                with m.Else():
                    m.d.sync += [cb.eq(bitmap.word_select(chunk, CHUNK)), cbase.eq(chunk), chunk.eq(chunk + 1)]
            with m.Else():
                issue(mode, walk_addr, wk, bank=walk_bank)
                with m.If(wk == k_n - 1):
                    m.d.sync += [wk.eq(0), cb.eq(cb & ~low)]
                with m.Else():
                    m.d.sync += wk.eq(wk + 1)

        # stage 1: INT adds the word read in the previous cycle; POT/DEP compute their weight step
        word1 = _select(m, w_word, p_bank, "word1")
        with m.If(p_valid & (p_mode == MODE_INT)):
            for lane in range(p):
                w = word1[8 * lane:8 * lane + 8].as_signed()
                wr(NeuronField.ACC, lane, Mux(p_first, 0, rd(NeuronField.ACC, lane)) + (w << w_exp))
        gain = Mux(p_mode == MODE_POT, a_plus, a_minus)
        shift = Mux(p_mode == MODE_POT, s_plus, s_minus)
        dw = [_stdp_step(m, gain, p_t[i], shift, f"dw_{i}") for i in range(p)]
        m.d.sync += [q_valid.eq(p_valid & (p_mode != MODE_INT)), q_mode.eq(p_mode), q_bank.eq(p_bank),
                     q_waddr.eq(p_waddr), q_k.eq(p_k), q_lanes.eq(p_lanes), q_bvalid.eq(p_bvalid)]
        m.d.sync += [q_word[b].eq(w_word[b]) for b in range(p)]
        m.d.sync += [q_dw[i].eq(dw[i]) for i in range(p)]
        for b in range(p):
            for lane in range(p):
                w = w_word[b][8 * lane:8 * lane + 8].as_signed()
                m.d.sync += q_wl[b][lane].eq(_leaked(m, w, w_decay, f"wl_{b}_{lane}"))

        # stage 2: write back (POT: every bank; DEP: the walked source's bank, and pass its new weights on)
        def lanes_of(word):
            return [word[8 * lane:8 * lane + 8].as_signed() for lane in range(p)], word[8 * p:9 * p]

        word2 = _select(m, q_word, q_bank, "word2")
        with m.If(q_valid):
            m.d.comb += w_waddr.eq(q_waddr)
            with m.If(q_mode == MODE_POT):
                for b in range(p):
                    w, mask = lanes_of(q_word[b])
                    new = [Mux(q_lanes[lane] & mask[lane], _clamp(q_wl[b][lane] + q_dw[b], w_min, w_max)[:8],
                               w[lane][:8]) for lane in range(p)]
                    m.d.comb += [w_wen[b].eq(q_bvalid[b]), w_wdata[b].eq(Cat(*new, mask))]
            with m.Else():
                w, mask = lanes_of(word2)
                new = [Mux(mask[lane], _clamp(w[lane] - q_dw[lane], w_min, w_max)[:8], w[lane][:8])
                       for lane in range(p)]
                for b in range(p):
                    m.d.comb += [w_wen[b].eq(q_bank == b), w_wdata[b].eq(Cat(*new, mask))]
                m.d.sync += [r_valid.eq(1), r_k.eq(q_k), r_new.eq(Cat(*new))]

        # stage 3 (DEP): the rewritten row is a source of the next step, so its weights go into acc now
        m.d.comb += [acc_raddr.eq(r_k), acc_waddr.eq(r_k)]
        with m.If(r_valid):
            for lane in range(p):
                w = r_new[8 * lane:8 * lane + 8].as_signed()
                wr(NeuronField.ACC, lane, rd(NeuronField.ACC, lane) + (w << w_exp))

        # -- neuron pipeline: A reads and multiplies, B sums and saturates, C thresholds and writes back ----------
        na_valid = Signal(name="na_valid")
        nb_valid = Signal(name="nb_valid")
        na_j = Signal(range(k_n), name="na_j")
        nb_j = Signal(range(k_n), name="nb_j")
        m.d.sync += [na_valid.eq(0), nb_valid.eq(na_valid), na_j.eq(j), nb_j.eq(na_j)]
        spikes = Signal(p, name="spikes")
        neuron_writes, lane_ovf_i, lane_ovf_v = [], [], []

        def pipe(name, shape, value):
            r = Signal(shape, name=name)
            m.d.sync += r.eq(value)
            return r

        for lane in range(p):
            def reg(name, shape, value, stage="na", lane=lane):
                return pipe(f"{stage}_{name}_{lane}", shape, value)

            v_diff = Signal(signed(STATE_BITS + 1), name=f"v_diff_{lane}")
            m.d.comb += v_diff.eq(rd(NeuronField.V, lane) - rd(NeuronField.V_REST, lane))
            i_prod = _decay_product(m, rd(NeuronField.I_SYN, lane), rd(NeuronField.D_I, lane), f"i_dec_{lane}")
            v_prod = _decay_product(m, v_diff, rd(NeuronField.D_V, lane), f"v_dec_{lane}")
            a_iprod = reg("iprod", i_prod.shape(), i_prod)
            a_vprod = reg("vprod", v_prod.shape(), v_prod)
            a_acc = reg("acc", signed(c.acc_bits), rd(NeuronField.ACC, lane))
            a_rb = reg("rb", signed(STATE_BITS + 1), rd(NeuronField.V_REST, lane) + rd(NeuronField.BIAS, lane))
            a_theff = reg("theff", signed(STATE_BITS + 1), rd(NeuronField.THETA, lane) + rd(NeuronField.A, lane))
            a_fields = {f: reg(f.name.lower(), field_shapes[f][0], rd(f, lane))
                        for f in (NeuronField.V, NeuronField.REF, NeuronField.V_RESET, NeuronField.T_REF,
                                  NeuronField.COUNT)}

            i_dec = _decay_round(m, a_iprod, STATE_BITS, f"i_dec_{lane}")
            i_new, i_ovf = _saturate(m, i_dec + a_acc, f"i_new_{lane}")
            v_dec = _decay_round(m, a_vprod, STATE_BITS + 1, f"v_dec_{lane}")
            v_int, v_int_ovf = _saturate(m, a_rb + v_dec + i_new, f"v_int_{lane}")
            b_inew = reg("inew", signed(STATE_BITS), i_new, "nb")
            b_iovf = reg("iovf", 1, i_ovf, "nb")
            b_vint = reg("vint", signed(STATE_BITS), v_int, "nb")
            b_vovf = reg("vovf", 1, v_int_ovf, "nb")
            b_theff = reg("theff", signed(STATE_BITS + 1), a_theff, "nb")
            b_tr = reg("tr", signed(STATE_BITS + 2), a_theff - a_fields[NeuronField.V_RESET], "nb")
            b = {f: reg(f.name.lower(), field_shapes[f][0], r, "nb") for f, r in a_fields.items()}

            held = Signal(name=f"held_{lane}")
            v1 = Signal(signed(STATE_BITS), name=f"v1_{lane}")
            spike = spikes[lane]
            v, ref = b[NeuronField.V], b[NeuronField.REF]
            m.d.comb += [held.eq(ref != 0), v1.eq(Mux(held, v, b_vint)), spike.eq(~held & (v1 >= b_theff))]
            v_sub, v_sub_ovf = _saturate(m, v1 - b_tr, f"v_sub_{lane}")
            v_after = Mux(spike, Mux(reset_mode, v_sub, b[NeuronField.V_RESET]), v1)
            ref_after = Mux(spike, b[NeuronField.T_REF], Mux(held, ref - 1, ref))
            lane_ovf_i.append(b_iovf)
            lane_ovf_v.append((~held & b_vovf) | (spike & reset_mode & v_sub_ovf))
            neuron_writes.append((b_inew, v_after, ref_after, b[NeuronField.COUNT]))

        # -- trace datapath (x of sources j*P + lane, y of neurons j*P + lane) -----------------------------------
        trace_writes = []
        for lane in range(p):
            bit_x = now.bit_select(j * p + lane, 1)
            bit_y = Signal(name=f"bit_y_{lane}")
            m.d.comb += bit_y.eq(bit_x & (j < k_n))

            def upd(dec, bit, amount):
                added = dec + Mux(bit, amount, 0)
                add_mode = Mux(added > tmax, tmax, added)
                return Mux(trace_mode, Mux(bit, amount, dec), add_mode)

            a_old = rd(NeuronField.A, lane)
            a_dec = Mux(tick == 0, _decay_unsigned(m, a_old, d_theta, f"ad_{lane}"), a_old)
            a_sum = Signal(ADAPT_BITS + 1, name=f"a_sum_{lane}")
            m.d.comb += a_sum.eq(a_dec + Mux(bit_y, theta_plus, 0))
            a_new = Mux(a_sum[-1], (1 << ADAPT_BITS) - 1, a_sum[:ADAPT_BITS])
            trace_writes.append((upd(xd[lane], bit_x, a_pre), upd(yd[lane], bit_y, a_post), a_new))

        tick_mask = Signal(15, name="tick_mask")
        m.d.comb += tick_mask.eq((Const(1, 16) << theta_period) - 1)

        # -- the step sequencer ----------------------------------------------------------------------------------
        cmd_write = host_we & (region == Region.CTRL) & (index == 0)
        cmd_op = bus.wdata[:4]
        cmd_steps = bus.wdata[8:32]
        m.d.comb += self.busy.eq(~idle)
        with m.If(~idle):
            m.d.sync += step_cyc.eq(step_cyc + 1)
        with m.FSM(name="seq"):
            with m.State("IDLE"):
                m.d.comb += [idle.eq(1), n_raddr.eq(h_neuron >> lp), n_waddr.eq(h_neuron >> lp),
                             acc_raddr.eq(h_neuron >> lp), acc_waddr.eq(h_neuron >> lp), xaddr.eq(index >> lp),
                             w_raddr.eq(h_waddr), w_waddr.eq(h_waddr)]
                with m.If(cmd_write & (cmd_op == Command.RUN) & (cmd_steps != 0)):
                    m.d.sync += remaining.eq(cmd_steps)
                    m.next = "START"
                with m.If(cmd_write & (cmd_op == Command.SOFT_RESET)):
                    m.d.sync += j.eq(0)
                    m.next = "CLEAR"
            with m.State("START"):
                with m.If(~raster_valid | self.raster.ready):
                    m.d.sync += [now.eq(next_in[:c.n_inputs] << n), next_in.eq(0), j.eq(0), grp.eq(0),
                                 step_cyc.eq(1), int_first.eq(1)]
                    with m.If(acc_ok):
                        m.next = "NEURON"
                    with m.Else():
                        m.next = "INTEGRATE"
            with m.State("INTEGRATE"):
                m.d.comb += [acc_raddr.eq(p_k), acc_waddr.eq(p_k)]
                row_walk(pending, MODE_INT, "NEURON")
                with m.If((cb != 0) & (wk == k_n - 1)):
                    m.d.sync += int_first.eq(0)
            with m.State("NEURON"):
                m.d.comb += [n_raddr.eq(j), acc_raddr.eq(j), n_waddr.eq(nb_j), acc_waddr.eq(nb_j)]
                m.d.sync += na_valid.eq(j < k_n)
                with m.If(nb_valid):
                    for lane in range(p):
                        i_new, v_after, ref_after, count = neuron_writes[lane]
                        wr(NeuronField.I_SYN, lane, i_new)
                        wr(NeuronField.V, lane, v_after)
                        wr(NeuronField.REF, lane, ref_after)
                        wr(NeuronField.ACC, lane, 0)
                        with m.If(spikes[lane] & (count != 0xFFFF)):
                            wr(NeuronField.COUNT, lane, count + 1)
                    m.d.sync += now.word_select(nb_j, p).eq(spikes)
                    with m.If(Cat(*lane_ovf_i).any()):
                        m.d.sync += ovf_i.eq(1)
                    with m.If(Cat(*lane_ovf_v).any()):
                        m.d.sync += ovf_v.eq(1)
                with m.If(j == k_n + 1):
                    m.d.sync += j.eq(0)
                    with m.If(learn):
                        m.next = "POTENTIATE"
                    with m.Else():
                        m.next = "TRACE"
                with m.Else():
                    m.d.sync += j.eq(j + 1)
            with m.State("POTENTIATE"):
                m.d.comb += xaddr.eq(j)
                group_spikes = now.word_select(grp[:max(1, kb)], p)
                with m.If(grp == k_n):
                    m.d.sync += [grp.eq(0), j.eq(0)]
                    m.next = "DEPRESS"
                with m.Elif(group_spikes.any()):
                    issue(MODE_POT, bank_addr(j, grp), 0, lanes=group_spikes, row=j)
                    with m.If(j == ks - 1):
                        m.d.sync += [j.eq(0), grp.eq(grp + 1)]
                    with m.Else():
                        m.d.sync += j.eq(j + 1)
                with m.Else():
                    m.d.sync += grp.eq(grp + 1)
            with m.State("DEPRESS"):
                m.d.comb += n_raddr.eq(wk)
                row_walk(now, MODE_DEP, "TRACE")
            with m.State("TRACE"):
                m.d.comb += [n_raddr.eq(j), n_waddr.eq(j), xaddr.eq(j)]
                for lane in range(p):
                    x_new, y_new, a_new = trace_writes[lane]
                    m.d.comb += [xwr[lane].en.eq(1), xwr[lane].data.eq(x_new)]
                    with m.If(j < k_n):
                        wr(NeuronField.Y, lane, y_new)
                        with m.If(learn):
                            wr(NeuronField.A, lane, a_new)
                with m.If(j == ks - 1):
                    m.d.sync += j.eq(0)
                    m.next = "END"
                with m.Else():
                    m.d.sync += j.eq(j + 1)
            with m.State("END"):
                m.d.sync += [pending.eq(now), last_spikes.eq(now[:n]), raster_valid.eq(1), acc_ok.eq(learn),
                             step_count.eq(step_count + 1), last_cycles.eq(step_cyc + 1),
                             remaining.eq(remaining - 1)]
                with m.If(learn):
                    m.d.sync += tick.eq((tick + 1) & tick_mask)
                with m.If(remaining == 1):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "START"
            with m.State("CLEAR"):
                m.d.comb += [n_raddr.eq(j), n_waddr.eq(j), acc_raddr.eq(j), acc_waddr.eq(j), xaddr.eq(j)]
                for lane in range(p):
                    m.d.comb += [xwr[lane].en.eq(j < ks), xwr[lane].data.eq(0)]
                    with m.If(j < k_n):
                        wr(NeuronField.V, lane, rd(NeuronField.V_REST, lane))
                        for f in (NeuronField.I_SYN, NeuronField.REF, NeuronField.Y, NeuronField.ACC,
                                  NeuronField.COUNT):
                            wr(f, lane, 0)
                with m.If(j == max(k_n, ks) - 1):
                    m.d.sync += [j.eq(0), pending.eq(0), now.eq(0), next_in.eq(0), ovf_i.eq(0), ovf_v.eq(0),
                                 step_count.eq(0), last_spikes.eq(0), raster_valid.eq(0)]
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += j.eq(j + 1)
        # -- host writes (idle only) -----------------------------------------------------------------------------
        with m.If(host_we & (region != Region.INPUT) & ~(cmd_write & (cmd_op == Command.RUN))):
            m.d.sync += acc_ok.eq(0)
        with m.If(host_we):
            with m.Switch(region):
                with m.Case(Region.GLOBAL):
                    with m.Switch(index):
                        for reg_id, reg in regs.items():
                            with m.Case(reg_id):
                                m.d.sync += reg.eq(bus.wdata[:len(reg)])
                with m.Case(Region.WEIGHT):
                    for b in range(p):
                        m.d.comb += [w_wen[b].eq(h_bank == b), w_wdata[b].eq(bus.wdata)]
                with m.Case(Region.NEURON):
                    with m.Switch(h_field):
                        for f in NeuronField:
                            with m.Case(f):
                                for lane in range(p):
                                    with m.If(h_lane == lane):
                                        wr(f, lane, bus.wdata)
                with m.Case(Region.TRACE_X):
                    for lane in range(p):
                        with m.If((index[:lp] if lp else 0) == lane):
                            m.d.comb += [xwr[lane].en.eq(1), xwr[lane].data.eq(bus.wdata)]
                with m.Case(Region.INPUT):
                    m.d.sync += next_in.word_select(index[:max(1, (m_pad // 32 - 1).bit_length())], 32).eq(
                        bus.wdata[:32])

        # -- host reads: registered, answered one cycle after re -------------------------------------------------
        rdata_reg = Signal(c.data_width, name="rdata_reg")
        rd_weight = Signal(name="rd_weight")
        rd_bank = Signal(bank_bits, name="rd_bank")
        m.d.sync += [bus.rvalid.eq(bus.re), rd_weight.eq(region == Region.WEIGHT), rd_bank.eq(h_bank)]
        m.d.comb += bus.rdata.eq(Mux(rd_weight, _select(m, w_word, rd_bank, "rd_word"), rdata_reg))
        value = Signal(c.data_width, name="read_value")
        with m.Switch(region):
            with m.Case(Region.CTRL):
                with m.Switch(index):
                    with m.Case(0):
                        m.d.comb += value.eq(Cat(ovf_i, ovf_v, Const(0, 6), self.busy))
                    with m.Case(1):
                        m.d.comb += value.eq(step_count)
                    with m.Case(2):
                        m.d.comb += value.eq(last_cycles)
            with m.Case(Region.GLOBAL):
                with m.Switch(index):
                    for reg_id, reg in regs.items():
                        with m.Case(reg_id):
                            m.d.comb += value.eq(reg.as_unsigned())
            with m.Case(Region.NEURON):
                with m.Switch(h_field):
                    for f in NeuronField:
                        with m.Case(f):
                            for lane in range(p):
                                with m.If(h_lane == lane):
                                    m.d.comb += value.eq(rd(f, lane).as_unsigned())
            with m.Case(Region.TRACE_X):
                for lane in range(p):
                    with m.If((index[:lp] if lp else 0) == lane):
                        m.d.comb += value.eq(xrd[lane].data)
            with m.Case(Region.INPUT):
                m.d.comb += value.eq(next_in.word_select(index[:max(1, (m_pad // 32 - 1).bit_length())], 32))
            with m.Case(Region.SPIKES):
                m.d.comb += value.eq(last_spikes.word_select(index[:max(1, (n_pad // 32 - 1).bit_length())], 32))
        with m.If(bus.re):
            m.d.sync += rdata_reg.eq(value)
        return m
