"""The NeuroCore engine: N LIF neurons, M inputs, an (N+M) x N int8 weight matrix with on-chip trace STDP.

Bit-exact with :class:`models.snn.golden.GoldenCore`; the per-step semantics are specified in
:mod:`models.snn.params` and implemented here phase by phase.

Memories
--------
* ``w_mem``: (N+M)*K words of 9P bits (K = N/P), word ``s*K + k`` = weights ``W[s, k*P + l]`` (int8, lane ``l``
  at bits ``8l..8l+7``) then their P plasticity-mask bits. One synchronous read port and one write port (simple
  dual port block RAM; the read register is ``w_word``), so a read-modify-write of P synapses completes every cycle.
* per lane ``l`` (neuron ``i = k*P + l`` at address ``k``), asynchronous-read (LUT RAM) memories of depth K:
  parameters ``theta``, ``v_reset``, ``v_rest``, ``bias``, ``d_v``, ``d_i``, ``t_ref`` and state ``i_syn``, ``v``,
  ``ref``, ``y`` (post trace), ``acc`` (exact per-step input sum), ``count`` (16-bit saturating spike counter).
* per lane ``l``: ``x`` (pre trace of source ``s = j*P + l`` at address ``j``), depth ceil((N+M)/P).
* registers: the global learning/synapse registers, ``pending`` (sources that spiked in the previous step),
  ``now`` (this step's source spikes), ``next_in`` (host-written inputs of the next step), status flags, counters.

Step sequencer (one FSM; :func:`rtl.neurocore.config.step_cycles` gives the exact cycle count)
-------------------------------------------------------------------------------------------------
START latches ``next_in`` into the input part of ``now``. INTEGRATE walks ``pending`` (1 cycle per silent source,
K cycles per spiking one) reading P weights per cycle; one cycle later (pipeline stage 1) ``acc += w << w_exp``
per lane. NEURON visits P neurons per cycle: current decay + ``acc``, membrane, threshold, reset, refractory,
``acc <- 0``, the spike bit into ``now``. With learning on, POTENTIATE walks every group of P neurons that has a
spike and, for every source ``s``, rewrites word ``(s, k)`` with ``clamp(w + (A+ * decay(x[s])) >> s+)`` in the
spiking, plastic lanes; DEPRESS walks ``now`` and rewrites the rows of spiking sources with
``clamp(w - (A- * decay(y[i])) >> s-)`` in the plastic lanes. TRACE updates x and y, P of each per cycle.
END moves ``now`` to ``pending`` and presents the raster. Each read-modify-write pass is pipelined (read at
cycle c, write at c+1) and touches every word at most once, and the cycle that detects the end of a pass is the
one in which its last write happens, so passes follow each other without hazards or extra drain cycles.

Host interface (parallel; the UART front end wraps it)
------------------------------------------------------
``bus``: ``addr`` (:class:`~rtl.neurocore.config.Region` in the top 3 bits), ``wdata``, ``we``, ``re``;
``rdata``/``rvalid`` one cycle after ``re``. Every read is answered; writes and memory-region reads are only
meaningful while ``busy`` is low (writes while busy are ignored). Signed fields are written as their two's
complement low bits and read back zero-extended. ``raster`` is a stream of the N spike bits of every step; the
core does not start a step while a raster is pending (``raster.ready`` low), so the host can pace a run.
"""
from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from models.snn.params import DECAY_ONE, DECAY_SHIFT, STATE_BITS, StdpParams
from rtl.designs import DesignEntry, register
from rtl.neurocore.config import PRESETS, Command, GlobalReg, NeuroCoreConfig, NeuronField, Region

__all__ = ["HostBusSignature", "NeuroCore"]

_S_LO, _S_HI = -(1 << (STATE_BITS - 1)), (1 << (STATE_BITS - 1)) - 1


class HostBusSignature(wiring.Signature):
    """Host-side register bus (members seen from the host: it drives ``addr``/``wdata``/``we``/``re``)."""

    def __init__(self, addr_width: int, data_width: int):
        super().__init__({
            "addr": Out(addr_width), "wdata": Out(data_width), "we": Out(1), "re": Out(1),
            "rdata": In(data_width), "rvalid": In(1),
        })


def _decay_signed(m, x, d, name):
    """``trunc(x * (4096 - d) / 4096)`` toward zero, for a signed ``x``."""
    mul = Signal(range(DECAY_ONE + 1), name=f"{name}_m")
    prod = Signal(signed(len(x) + 14), name=f"{name}_p")
    out = Signal(signed(len(x)), name=name)
    m.d.comb += [
        mul.eq(DECAY_ONE - d),
        prod.eq(x * mul),
        out.eq((prod + Mux(prod[-1], DECAY_ONE - 1, 0)) >> DECAY_SHIFT),
    ]
    return out


def _decay_unsigned(m, x, d, name):
    mul = Signal(range(DECAY_ONE + 1), name=f"{name}_m")
    out = Signal(len(x), name=name)
    m.d.comb += [mul.eq(DECAY_ONE - d), out.eq((x * mul) >> DECAY_SHIFT)]
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
        }
        w_exp, d_x, d_y = regs[GlobalReg.W_EXP], regs[GlobalReg.D_X], regs[GlobalReg.D_Y]
        a_pre, a_post = regs[GlobalReg.A_PRE], regs[GlobalReg.A_POST]
        a_plus, a_minus = regs[GlobalReg.A_PLUS], regs[GlobalReg.A_MINUS]
        s_plus, s_minus = regs[GlobalReg.S_PLUS], regs[GlobalReg.S_MINUS]
        w_min, w_max = regs[GlobalReg.W_MIN], regs[GlobalReg.W_MAX]
        trace_mode, reset_mode, learn = regs[GlobalReg.TRACE_MODE], regs[GlobalReg.RESET_MODE], regs[GlobalReg.LEARN]

        ovf_i = Signal(name="ovf_i")
        ovf_v = Signal(name="ovf_v")
        step_count = Signal(32, name="step_count")
        step_cyc = Signal(32, name="step_cyc")
        last_cycles = Signal(32, name="last_cycles")
        remaining = Signal(24, name="remaining")

        n_pad = -(-n // 32) * 32
        m_pad = -(-c.n_inputs // 32) * 32
        pending = Signal(ks * p, name="pending")   # S[t-1] (padded with zero sources)
        now = Signal(ks * p, name="now")           # S[t]
        next_in = Signal(m_pad, name="next_in")
        last_spikes = Signal(n_pad, name="last_spikes")
        raster_valid = Signal(name="raster_valid")
        m.d.comb += [self.raster.payload.eq(last_spikes[:n]), self.raster.valid.eq(raster_valid)]
        with m.If(self.raster.ready):
            m.d.sync += raster_valid.eq(0)

        # -- memories --------------------------------------------------------------------------------------------
        m.submodules.w_mem = w_mem = Memory(shape=c.weight_word_bits, depth=s_n * k_n, init=[])
        # An asynchronous read port plus an explicit register (a named fault site, merged into the block RAM by
        # synthesis), as in rtl/common/sram.py: together a synchronous read with one cycle of latency.
        w_rd_comb = w_mem.read_port(domain="comb")
        w_wr = w_mem.write_port()
        w_word = Signal(c.weight_word_bits, name="w_word")
        m.d.sync += w_word.eq(w_rd_comb.data)

        field_shapes = {
            NeuronField.THETA: (signed(STATE_BITS), 1 << 10), NeuronField.V_RESET: (signed(STATE_BITS), 0),
            NeuronField.V_REST: (signed(STATE_BITS), 0), NeuronField.BIAS: (signed(STATE_BITS), 0),
            NeuronField.D_V: (unsigned(13), 0), NeuronField.D_I: (unsigned(13), 0),
            NeuronField.T_REF: (unsigned(8), 0), NeuronField.I_SYN: (signed(STATE_BITS), 0),
            NeuronField.V: (signed(STATE_BITS), 0), NeuronField.REF: (unsigned(8), 0),
            NeuronField.Y: (unsigned(tb), 0), NeuronField.ACC: (signed(c.acc_bits), 0),
            NeuronField.COUNT: (unsigned(16), 0),
        }
        naddr = Signal(range(max(k_n, ks)), name="naddr")   # address of every neuron memory this cycle
        xaddr = Signal(range(ks), name="xaddr")
        nrd, nwr = {}, {}
        for f, (shape, init) in field_shapes.items():
            nrd[f], nwr[f] = [], []
            for lane in range(p):
                mem = Memory(shape=shape, depth=k_n, init=[init] * k_n)
                m.submodules[f"{f.name.lower()}_{lane}"] = mem
                rp, wp = mem.read_port(domain="comb"), mem.write_port()
                m.d.comb += [rp.addr.eq(naddr), wp.addr.eq(naddr)]
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

        # -- sequencer iterators and the stage-1 (write-back) pipeline registers -------------------------------
        src = Signal(range(s_n + 1), name="src")
        grp = Signal(range(k_n + 1), name="grp")
        row_base = Signal(range(s_n * k_n + k_n + 1), name="row_base")
        j = Signal(range(max(k_n, ks) + 1), name="j")
        MODE_INT, MODE_POT, MODE_DEP = 0, 1, 2
        p_valid = Signal(name="p_valid")
        p_mode = Signal(2, name="p_mode")
        p_addr = Signal(range(s_n * k_n), name="p_addr")
        p_k = Signal(range(k_n), name="p_k")
        p_lanes = Signal(p, name="p_lanes")
        p_dw_pot = Signal(24, name="p_dw_pot")
        p_dw_dep = [Signal(24, name=f"p_dw_dep_{lane}") for lane in range(p)]
        m.d.sync += p_valid.eq(0)
        rd_addr = Signal(range(s_n * k_n), name="rd_addr")
        m.d.comb += w_rd_comb.addr.eq(rd_addr)

        # STDP increments computed at stage 0 from the traces read this cycle
        x_sel = Signal(tb, name="x_sel")
        m.d.comb += x_sel.eq(Cat(*(xrd[lane].data for lane in range(p))).word_select(src[:lp], tb) if lp
                             else xrd[0].data)
        xd_sel = _decay_unsigned(m, x_sel, d_x, "xd_sel")
        dw_pot = Signal(24, name="dw_pot")
        m.d.comb += dw_pot.eq((a_plus * xd_sel) >> s_plus)
        dw_dep = []
        for lane in range(p):
            yd = _decay_unsigned(m, rd(NeuronField.Y, lane), d_y, f"yd_{lane}")
            dw = Signal(24, name=f"dw_dep_{lane}")
            m.d.comb += dw.eq((a_minus * yd) >> s_minus)
            dw_dep.append(dw)

        def issue(mode, addr, k_val, lanes=None):
            m.d.comb += rd_addr.eq(addr)
            m.d.sync += [p_valid.eq(1), p_mode.eq(mode), p_addr.eq(addr), p_k.eq(k_val)]
            if lanes is not None:
                m.d.sync += p_lanes.eq(lanes)
            if mode == MODE_POT:
                m.d.sync += p_dw_pot.eq(dw_pot)
            if mode == MODE_DEP:
                m.d.sync += [p_dw_dep[lane].eq(dw_dep[lane]) for lane in range(p)]

        def row_walk(bitmap, mode, k_reg, done_state):
            """One row per set bit of ``bitmap``: K words each; one cycle per clear bit."""
            with m.If(src == s_n):
                m.d.sync += [src.eq(0), row_base.eq(0), k_reg.eq(0)]
                m.next = done_state
            with m.Elif(bitmap.bit_select(src, 1)):
                issue(mode, row_base + k_reg, k_reg)
                with m.If(k_reg == k_n - 1):
                    m.d.sync += [k_reg.eq(0), src.eq(src + 1), row_base.eq(row_base + k_n)]
                with m.Else():
                    m.d.sync += k_reg.eq(k_reg + 1)
            with m.Else():
                m.d.sync += [src.eq(src + 1), row_base.eq(row_base + k_n)]

        # stage 1: read-modify-write of the word read in the previous cycle
        word = w_word
        w_lane = [word[8 * lane:8 * lane + 8].as_signed() for lane in range(p)]
        mask = word[8 * p:9 * p]
        with m.If(p_valid):
            with m.Switch(p_mode):
                with m.Case(MODE_INT):
                    for lane in range(p):
                        wr(NeuronField.ACC, lane, rd(NeuronField.ACC, lane) + (w_lane[lane] << w_exp))
                with m.Case(MODE_POT):
                    new = [Mux(p_lanes[lane] & mask[lane], _clamp(w_lane[lane] + p_dw_pot, w_min, w_max)[:8],
                               w_lane[lane][:8]) for lane in range(p)]
                    m.d.comb += [w_wr.en.eq(1), w_wr.addr.eq(p_addr), w_wr.data.eq(Cat(*new, mask))]
                with m.Case(MODE_DEP):
                    new = [Mux(mask[lane], _clamp(w_lane[lane] - p_dw_dep[lane], w_min, w_max)[:8],
                               w_lane[lane][:8]) for lane in range(p)]
                    m.d.comb += [w_wr.en.eq(1), w_wr.addr.eq(p_addr), w_wr.data.eq(Cat(*new, mask))]

        # -- neuron datapath (P lanes, state of neurons naddr*P + lane) ------------------------------------------
        spikes = Signal(p, name="spikes")
        lane_ovf_i = []
        lane_ovf_v = []
        neuron_writes = []
        for lane in range(p):
            cur, v, ref = rd(NeuronField.I_SYN, lane), rd(NeuronField.V, lane), rd(NeuronField.REF, lane)
            theta, v_reset = rd(NeuronField.THETA, lane), rd(NeuronField.V_RESET, lane)
            v_rest, bias = rd(NeuronField.V_REST, lane), rd(NeuronField.BIAS, lane)
            i_dec = _decay_signed(m, cur, rd(NeuronField.D_I, lane), f"i_dec_{lane}")
            i_new, i_ovf = _saturate(m, i_dec + rd(NeuronField.ACC, lane), f"i_new_{lane}")
            v_diff = Signal(signed(STATE_BITS + 1), name=f"v_diff_{lane}")
            m.d.comb += v_diff.eq(v - v_rest)
            v_dec = _decay_signed(m, v_diff, rd(NeuronField.D_V, lane), f"v_dec_{lane}")
            v_int, v_int_ovf = _saturate(m, v_rest + v_dec + i_new + bias, f"v_int_{lane}")
            held = Signal(name=f"held_{lane}")
            v1 = Signal(signed(STATE_BITS), name=f"v1_{lane}")
            spike = spikes[lane]
            m.d.comb += [held.eq(ref != 0), v1.eq(Mux(held, v, v_int)), spike.eq(~held & (v1 >= theta))]
            v_sub, v_sub_ovf = _saturate(m, v1 - (theta - v_reset), f"v_sub_{lane}")
            v_after = Mux(spike, Mux(reset_mode, v_sub, v_reset), v1)
            ref_after = Mux(spike, rd(NeuronField.T_REF, lane), Mux(held, ref - 1, ref))
            lane_ovf_i.append(i_ovf)
            lane_ovf_v.append((~held & v_int_ovf) | (spike & reset_mode & v_sub_ovf))
            neuron_writes.append((i_new, v_after, ref_after))

        # -- trace datapath (x of sources j*P + lane, y of neurons j*P + lane) -----------------------------------
        trace_writes = []
        for lane in range(p):
            bit_x = now.bit_select(j * p + lane, 1)
            xd = _decay_unsigned(m, xrd[lane].data, d_x, f"xd_{lane}")
            yd = _decay_unsigned(m, rd(NeuronField.Y, lane), d_y, f"ydt_{lane}")
            bit_y = Signal(name=f"bit_y_{lane}")
            m.d.comb += bit_y.eq(bit_x & (j < k_n))

            def upd(dec, bit, amount):
                added = dec + Mux(bit, amount, 0)
                add_mode = Mux(added > tmax, tmax, added)
                return Mux(trace_mode, Mux(bit, amount, dec), add_mode)

            trace_writes.append((upd(xd, bit_x, a_pre), upd(yd, bit_y, a_post)))

        # -- the step sequencer ----------------------------------------------------------------------------------
        cmd_write = host_we & (region == Region.CTRL) & (index == 0)
        cmd_op = bus.wdata[:4]
        cmd_steps = bus.wdata[8:32]
        m.d.comb += self.busy.eq(~idle)
        with m.If(~idle):
            m.d.sync += step_cyc.eq(step_cyc + 1)
        with m.FSM(name="seq"):
            with m.State("IDLE"):
                m.d.comb += [idle.eq(1), naddr.eq(h_neuron >> lp), xaddr.eq(index >> lp),
                             rd_addr.eq(index)]
                with m.If(cmd_write & (cmd_op == Command.RUN) & (cmd_steps != 0)):
                    m.d.sync += remaining.eq(cmd_steps)
                    m.next = "START"
                with m.If(cmd_write & (cmd_op == Command.SOFT_RESET)):
                    m.d.sync += j.eq(0)
                    m.next = "CLEAR"
            with m.State("START"):
                with m.If(~raster_valid | self.raster.ready):
                    m.d.sync += [now.eq(next_in[:c.n_inputs] << n), next_in.eq(0),
                                 src.eq(0), row_base.eq(0), j.eq(0), grp.eq(0), step_cyc.eq(1)]
                    m.next = "INTEGRATE"
            with m.State("INTEGRATE"):
                m.d.comb += naddr.eq(p_k)
                row_walk(pending, MODE_INT, j, "NEURON")
            with m.State("NEURON"):
                m.d.comb += naddr.eq(j)
                for lane in range(p):
                    i_new, v_after, ref_after = neuron_writes[lane]
                    wr(NeuronField.I_SYN, lane, i_new)
                    wr(NeuronField.V, lane, v_after)
                    wr(NeuronField.REF, lane, ref_after)
                    wr(NeuronField.ACC, lane, 0)
                    count = rd(NeuronField.COUNT, lane)
                    with m.If(spikes[lane] & (count != 0xFFFF)):
                        wr(NeuronField.COUNT, lane, count + 1)
                m.d.sync += now.word_select(j, p).eq(spikes)
                with m.If(Cat(*lane_ovf_i).any()):
                    m.d.sync += ovf_i.eq(1)
                with m.If(Cat(*lane_ovf_v).any()):
                    m.d.sync += ovf_v.eq(1)
                with m.If(j == k_n - 1):
                    m.d.sync += j.eq(0)
                    with m.If(learn):
                        m.next = "POTENTIATE"
                    with m.Else():
                        m.next = "TRACE"
                with m.Else():
                    m.d.sync += j.eq(j + 1)
            with m.State("POTENTIATE"):
                m.d.comb += xaddr.eq(src >> lp)
                group_spikes = now.word_select(grp[:max(1, (k_n - 1).bit_length())], p)
                with m.If(grp == k_n):
                    m.d.sync += [grp.eq(0), src.eq(0), row_base.eq(0)]
                    m.next = "DEPRESS"
                with m.Elif(group_spikes.any()):
                    issue(MODE_POT, row_base + grp, 0, group_spikes)
                    with m.If(src == s_n - 1):
                        m.d.sync += [src.eq(0), row_base.eq(0), grp.eq(grp + 1)]
                    with m.Else():
                        m.d.sync += [src.eq(src + 1), row_base.eq(row_base + k_n)]
                with m.Else():
                    m.d.sync += grp.eq(grp + 1)
            with m.State("DEPRESS"):
                m.d.comb += naddr.eq(j)
                row_walk(now, MODE_DEP, j, "TRACE")
            with m.State("TRACE"):
                m.d.comb += [naddr.eq(j), xaddr.eq(j)]
                for lane in range(p):
                    x_new, y_new = trace_writes[lane]
                    m.d.comb += [xwr[lane].en.eq(1), xwr[lane].data.eq(x_new)]
                    with m.If(j < k_n):
                        wr(NeuronField.Y, lane, y_new)
                with m.If(j == ks - 1):
                    m.d.sync += j.eq(0)
                    m.next = "END"
                with m.Else():
                    m.d.sync += j.eq(j + 1)
            with m.State("END"):
                m.d.sync += [pending.eq(now), last_spikes.eq(now[:n]), raster_valid.eq(1),
                             step_count.eq(step_count + 1), last_cycles.eq(step_cyc + 1),
                             remaining.eq(remaining - 1)]
                with m.If(remaining == 1):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "START"
            with m.State("CLEAR"):
                m.d.comb += [naddr.eq(j), xaddr.eq(j)]
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
        with m.If(host_we):
            with m.Switch(region):
                with m.Case(Region.GLOBAL):
                    with m.Switch(index):
                        for reg_id, reg in regs.items():
                            with m.Case(reg_id):
                                m.d.sync += reg.eq(bus.wdata[:len(reg)])
                with m.Case(Region.WEIGHT):
                    m.d.comb += [w_wr.en.eq(1), w_wr.addr.eq(index), w_wr.data.eq(bus.wdata)]
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
        m.d.sync += [bus.rvalid.eq(bus.re), rd_weight.eq(region == Region.WEIGHT)]
        m.d.comb += bus.rdata.eq(Mux(rd_weight, w_word, rdata_reg))
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


register(DesignEntry(
    name="neurocore",
    summary="NeuroCoreX-like SNN core engine: LIF neurons, int8 all-to-all weights, trace STDP, P lanes",
    config_type=NeuroCoreConfig,
    presets=PRESETS,
    default="16x16",
    make=NeuroCore,
    blocks_doc="w_mem: weights + plasticity mask; <field>_<lane>: per-lane neuron memories; x_<lane>: pre traces; "
               "top: sequencer, global registers, spike bitmaps",
))
