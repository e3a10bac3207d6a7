"""The NeuroCore's neuron-state unit: the per-lane neuron memories and the three-stage LIF update pipeline."""
from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from models.snn.params import ADAPT_BITS, DECAY_ONE, STATE_BITS
from rtl.neurocore.arith import decay_product, decay_round, decay_unsigned, saturate
from rtl.neurocore.config import NeuroCoreConfig, NeuronField
from rtl.neurocore.host import RegionSignature
from rtl.neurocore.sequencer import Phase, bitmap_width, iterator_shape
from rtl.neurocore.synapse import AccumulateSignature

__all__ = ["LifDecay", "LifFire", "NeuronUnit", "neuron_fields"]


def neuron_fields(config: NeuroCoreConfig) -> dict[NeuronField, tuple[object, int]]:
    """(shape, reset value) of the fields the neuron unit stores (every field but the post trace ``Y``)."""
    s24 = signed(STATE_BITS)
    return {
        NeuronField.THETA: (s24, 1 << 10), NeuronField.V_RESET: (s24, 0), NeuronField.V_REST: (s24, 0),
        NeuronField.BIAS: (s24, 0), NeuronField.D_V: (unsigned(13), 0), NeuronField.D_I: (unsigned(13), 0),
        NeuronField.T_REF: (unsigned(8), 0), NeuronField.I_SYN: (s24, 0), NeuronField.V: (s24, 0),
        NeuronField.REF: (unsigned(8), 0), NeuronField.ACC: (signed(config.acc_bits), 0),
        NeuronField.COUNT: (unsigned(16), 0), NeuronField.A: (unsigned(ADAPT_BITS), 0),
    }


class DecayedSignature(wiring.Signature):
    """What the first LIF stage hands to the second, per lane (seen from the first): the decay products of I and
    ``V - v_rest``, ``acc``, ``v_rest + bias``, ``theta + a`` and the fields the last stage still needs."""

    def __init__(self, config: NeuroCoreConfig):
        p = config.lanes
        super().__init__({
            "valid": Out(1), "index": Out(range(config.groups)),
            **{name: Out(shape).array(p) for name, shape in _decayed_shapes(config).items()},
        })


def _decayed_shapes(config: NeuroCoreConfig) -> dict:
    s24 = signed(STATE_BITS)
    return {
        "iprod": signed(STATE_BITS + 14), "vprod": signed(STATE_BITS + 15), "acc": signed(config.acc_bits),
        "rb": signed(STATE_BITS + 1), "theff": signed(STATE_BITS + 1), "v": s24, "ref": unsigned(8),
        "v_reset": s24, "t_ref": unsigned(8), "count": unsigned(16),
    }


class LifDecay(wiring.Component):
    """LIF stage A: from the neuron fields read at ``index``, the decay products, ``v_rest + bias`` and the
    effective threshold ``theta + a``, registered (``decayed``)."""

    def __init__(self, config: NeuroCoreConfig):
        self._config = config
        p = config.lanes
        super().__init__({
            "valid": In(1), "index": In(range(config.groups)),
            **{f.name.lower(): In(shape).array(p) for f, (shape, _) in neuron_fields(config).items()},
            "decayed": Out(DecayedSignature(config)),
        })

    def elaborate(self, platform):
        c = self._config
        m = Module()
        out = self.decayed
        valid = Signal(name="valid")
        index = Signal(range(c.groups), name="index")
        m.d.sync += [valid.eq(self.valid), index.eq(self.index)]
        m.d.comb += [out.valid.eq(valid), out.index.eq(index)]
        for lane in range(c.lanes):
            v_diff = Signal(signed(STATE_BITS + 1), name=f"v_diff_{lane}")
            m.d.comb += v_diff.eq(self.v[lane] - self.v_rest[lane])
            values = {
                "iprod": decay_product(m, self.i_syn[lane], self.d_i[lane], f"i_dec_{lane}"),
                "vprod": decay_product(m, v_diff, self.d_v[lane], f"v_dec_{lane}"),
                "acc": self.acc[lane], "rb": self.v_rest[lane] + self.bias[lane],
                "theff": self.theta[lane] + self.a[lane],
                **{name: getattr(self, name)[lane] for name in ("v", "ref", "v_reset", "t_ref", "count")},
            }
            for name, shape in _decayed_shapes(c).items():
                reg = Signal(shape, name=f"{name}_{lane}")
                m.d.sync += reg.eq(values[name])
                m.d.comb += getattr(out, name)[lane].eq(reg)
        return m


class LifFire(wiring.Component):
    """LIF stages B and C: B adds and saturates the current and the membrane (``i_new``, and ``theta_eff - v_reset``
    for the subtractive reset), registered; C thresholds, resets and counts refractory cycles, combinationally, for
    the write-back of the group ``index`` (``spikes``, ``i_new``, ``v_new``, ``ref_new``, the unchanged ``count``).
    ``i_ovf``/``v_ovf``: a lane saturated its current / membrane."""

    def __init__(self, config: NeuroCoreConfig):
        self._config = config
        p = config.lanes
        s24 = signed(STATE_BITS)
        super().__init__({
            "decayed": In(DecayedSignature(config)), "reset_mode": In(1),
            "valid": Out(1), "index": Out(range(config.groups)), "spikes": Out(p),
            "i_new": Out(s24).array(p), "v_new": Out(s24).array(p), "ref_new": Out(8).array(p),
            "count": Out(16).array(p), "i_ovf": Out(1), "v_ovf": Out(1),
        })

    def elaborate(self, platform):
        c = self._config
        m = Module()
        a = self.decayed
        valid = Signal(name="valid")
        index = Signal(range(c.groups), name="index")
        m.d.sync += [valid.eq(a.valid), index.eq(a.index)]
        m.d.comb += [self.valid.eq(valid), self.index.eq(index)]
        lane_ovf_i, lane_ovf_v = [], []

        for lane in range(c.lanes):
            def reg(name, shape, value, lane=lane):
                r = Signal(shape, name=f"{name}_{lane}")
                m.d.sync += r.eq(value)
                return r

            i_dec = decay_round(m, a.iprod[lane], STATE_BITS, f"i_dec_{lane}")
            i_new, i_ovf = saturate(m, i_dec + a.acc[lane], f"i_new_{lane}")
            v_dec = decay_round(m, a.vprod[lane], STATE_BITS + 1, f"v_dec_{lane}")
            v_int, v_int_ovf = saturate(m, a.rb[lane] + v_dec + i_new, f"v_int_{lane}")
            b_inew = reg("inew", signed(STATE_BITS), i_new)
            b_iovf = reg("iovf", 1, i_ovf)
            b_vint = reg("vint", signed(STATE_BITS), v_int)
            b_vovf = reg("vovf", 1, v_int_ovf)
            b_theff = reg("theff", signed(STATE_BITS + 1), a.theff[lane])
            b_tr = reg("tr", signed(STATE_BITS + 2), a.theff[lane] - a.v_reset[lane])
            b = {name: reg(name, shape, getattr(a, name)[lane])
                 for name, shape in _decayed_shapes(c).items() if name in ("v", "ref", "v_reset", "t_ref", "count")}

            held = Signal(name=f"held_{lane}")
            v1 = Signal(signed(STATE_BITS), name=f"v1_{lane}")
            spike = self.spikes[lane]
            v, ref = b["v"], b["ref"]
            m.d.comb += [held.eq(ref != 0), v1.eq(Mux(held, v, b_vint)), spike.eq(~held & (v1 >= b_theff))]
            v_sub, v_sub_ovf = saturate(m, v1 - b_tr, f"v_sub_{lane}")
            m.d.comb += [
                self.i_new[lane].eq(b_inew),
                self.v_new[lane].eq(Mux(spike, Mux(self.reset_mode, v_sub, b["v_reset"]), v1)),
                self.ref_new[lane].eq(Mux(spike, b["t_ref"], Mux(held, ref - 1, ref))),
                self.count[lane].eq(b["count"]),
            ]
            lane_ovf_i.append(b_iovf)
            lane_ovf_v.append((~held & b_vovf) | (spike & self.reset_mode & v_sub_ovf))
        m.d.comb += [self.i_ovf.eq(Cat(*lane_ovf_i).any()), self.v_ovf.eq(Cat(*lane_ovf_v).any())]
        return m


class NeuronUnit(wiring.Component):
    """Per lane ``l`` (neuron ``i = k*P + l`` at address ``k``), a memory of depth K per field of
    :func:`neuron_fields` (``<field>_<l>``), with separate read and write addresses, and the LIF pipeline over them:
    ``decay`` (stage A) and ``fire`` (stages B and C).

    The addresses follow the sequencer (``phase``, ``j``, ``wk``): NEURON streams the groups through the pipeline
    and writes I, V, ref, count back (and clears ``acc``); ``acc`` takes the weight words of INTEGRATE
    (``integrate``) and of DEPRESS (``feedback``) at their own addresses; TRACE updates the adaptive threshold ``a``
    of learning steps (``a <- min(ad + theta_plus * spike, 65535)``, ``ad = decay(a, d_theta)`` when ``tick`` is 0);
    CLEAR (a soft reset) sets ``v <- v_rest`` and zeroes I, ref, acc and count. The host reaches every field but
    Y through the NEURON region (``host``).

    ``spike_valid``/``spike_group``/``spike_bits``: the spikes of a group leaving the pipeline;
    ``i_overflow``/``v_overflow``: such a group saturated a current / membrane.
    """

    def __init__(self, config: NeuroCoreConfig):
        self._config = config
        p, k_n = config.lanes, config.groups
        super().__init__({
            "phase": In(Phase), "j": In(iterator_shape(config)), "wk": In(range(k_n)),
            "now": In(bitmap_width(config)), "host": In(RegionSignature(config)),
            "integrate": In(AccumulateSignature(config)), "feedback": In(AccumulateSignature(config)),
            "w_exp": In(3), "reset_mode": In(1), "learn": In(1), "tick": In(15),
            "d_theta": In(range(DECAY_ONE + 1)), "theta_plus": In(ADAPT_BITS),
            "spike_valid": Out(1), "spike_group": Out(range(k_n)), "spike_bits": Out(p),
            "i_overflow": Out(1), "v_overflow": Out(1),
        })

    def elaborate(self, platform):
        c = self._config
        m = Module()
        p, k_n = c.lanes, c.groups
        m.submodules.decay = decay = LifDecay(c)
        m.submodules.fire = fire = LifFire(c)
        wiring.connect(m, decay.decayed, fire.decayed)
        rd, wr = self._memories(m, fire.index)

        on_neuron = self.phase == Phase.NEURON
        m.d.comb += [decay.valid.eq(on_neuron & (self.j < k_n)), decay.index.eq(self.j),
                     fire.reset_mode.eq(self.reset_mode)]
        for f in neuron_fields(c):
            m.d.comb += [getattr(decay, f.name.lower())[lane].eq(rd(f, lane)) for lane in range(p)]
        m.d.comb += [self.spike_valid.eq(on_neuron & fire.valid), self.spike_group.eq(fire.index),
                     self.spike_bits.eq(fire.spikes), self.i_overflow.eq(on_neuron & fire.valid & fire.i_ovf),
                     self.v_overflow.eq(on_neuron & fire.valid & fire.v_ovf)]

        def weights(acc):
            return [acc.weights[8 * lane:8 * lane + 8].as_signed() for lane in range(p)]

        adapted = [self._adapted(m, rd(NeuronField.A, lane), lane) for lane in range(p)]
        with m.If(self.integrate.valid):
            for lane, w in enumerate(weights(self.integrate)):
                wr(NeuronField.ACC, lane, Mux(self.integrate.first, 0, rd(NeuronField.ACC, lane)) + (w << self.w_exp))
        with m.If(self.feedback.valid):
            for lane, w in enumerate(weights(self.feedback)):
                wr(NeuronField.ACC, lane, rd(NeuronField.ACC, lane) + (w << self.w_exp))
        with m.Switch(self.phase):
            with m.Case(Phase.NEURON):
                with m.If(fire.valid):
                    for lane in range(p):
                        count = fire.count[lane]
                        wr(NeuronField.I_SYN, lane, fire.i_new[lane])
                        wr(NeuronField.V, lane, fire.v_new[lane])
                        wr(NeuronField.REF, lane, fire.ref_new[lane])
                        wr(NeuronField.ACC, lane, 0)
                        with m.If(fire.spikes[lane] & (count != 0xFFFF)):
                            wr(NeuronField.COUNT, lane, count + 1)
            with m.Case(Phase.TRACE):
                with m.If((self.j < k_n) & self.learn):
                    for lane in range(p):
                        wr(NeuronField.A, lane, adapted[lane])
            with m.Case(Phase.CLEAR):
                with m.If(self.j < k_n):
                    for lane in range(p):
                        wr(NeuronField.V, lane, rd(NeuronField.V_REST, lane))
                        for f in (NeuronField.I_SYN, NeuronField.REF, NeuronField.ACC, NeuronField.COUNT):
                            wr(f, lane, 0)
        self._host_access(m, rd, wr)
        return m

    def _memories(self, m, fire_index):
        """The field memories and their addresses; returns ``rd(field, lane)`` (read data) and
        ``wr(field, lane, value)`` (a write in the current context)."""
        c = self._config
        k_n = c.groups
        j = self.j
        n_raddr = Signal(range(k_n), name="n_raddr")   # read address of every field but acc
        n_waddr = Signal(range(k_n), name="n_waddr")
        acc_raddr = Signal(range(k_n), name="acc_raddr")
        acc_waddr = Signal(range(k_n), name="acc_waddr")
        host_addr = self.host.index[:c.neuron_bits] >> c.lane_bits
        m.d.comb += [acc_raddr.eq(self.feedback.k), acc_waddr.eq(self.feedback.k)]
        with m.Switch(self.phase):
            with m.Case(Phase.IDLE):
                m.d.comb += [n_raddr.eq(host_addr), n_waddr.eq(host_addr), acc_raddr.eq(host_addr),
                             acc_waddr.eq(host_addr)]
            with m.Case(Phase.INTEGRATE):
                m.d.comb += [acc_raddr.eq(self.integrate.k), acc_waddr.eq(self.integrate.k)]
            with m.Case(Phase.NEURON):
                m.d.comb += [n_raddr.eq(j), acc_raddr.eq(j), n_waddr.eq(fire_index), acc_waddr.eq(fire_index)]
            with m.Case(Phase.DEPRESS):
                m.d.comb += n_raddr.eq(self.wk)
            with m.Case(Phase.TRACE):
                m.d.comb += [n_raddr.eq(j), n_waddr.eq(j)]
            with m.Case(Phase.CLEAR):
                m.d.comb += [n_raddr.eq(j), n_waddr.eq(j), acc_raddr.eq(j), acc_waddr.eq(j)]

        nrd, nwr = {}, {}
        for f, (shape, init) in neuron_fields(c).items():
            nrd[f], nwr[f] = [], []
            for lane in range(c.lanes):
                mem = Memory(shape=shape, depth=k_n, init=[init] * k_n)
                m.submodules[f"{f.name.lower()}_{lane}"] = mem
                rp, wp = mem.read_port(domain="comb"), mem.write_port()
                if f == NeuronField.ACC:
                    m.d.comb += [rp.addr.eq(acc_raddr), wp.addr.eq(acc_waddr)]
                else:
                    m.d.comb += [rp.addr.eq(n_raddr), wp.addr.eq(n_waddr)]
                nrd[f].append(rp)
                nwr[f].append(wp)

        def rd(field, lane):
            return nrd[field][lane].data

        def wr(field, lane, value):
            m.d.comb += [nwr[field][lane].en.eq(1), nwr[field][lane].data.eq(value)]

        return rd, wr

    def _adapted(self, m, a_old, lane):
        """TRACE: the new adaptive threshold of neuron ``j*P + lane``."""
        c = self._config
        spiked = Signal(name=f"spiked_{lane}")
        m.d.comb += spiked.eq(self.now.bit_select(self.j * c.lanes + lane, 1) & (self.j < c.groups))
        a_dec = Mux(self.tick == 0, decay_unsigned(m, a_old, self.d_theta, f"ad_{lane}"), a_old)
        a_sum = Signal(ADAPT_BITS + 1, name=f"a_sum_{lane}")
        m.d.comb += a_sum.eq(a_dec + Mux(spiked, self.theta_plus, 0))
        return Mux(a_sum[-1], (1 << ADAPT_BITS) - 1, a_sum[:ADAPT_BITS])

    def _host_access(self, m, rd, wr):
        """Host reads and (idle) writes of field ``index >> clog2(N)`` of neuron ``index mod N``."""
        c = self._config
        host = self.host
        h_neuron = host.index[:c.neuron_bits]
        h_lane = h_neuron[:c.lane_bits] if c.lane_bits else 0
        with m.Switch(host.index[c.neuron_bits:c.neuron_bits + 4]):
            for f in neuron_fields(c):
                with m.Case(f):
                    for lane in range(c.lanes):
                        with m.If(h_lane == lane):
                            m.d.comb += host.rdata.eq(rd(f, lane).as_unsigned())
                            with m.If(host.we):
                                wr(f, lane, host.wdata)
