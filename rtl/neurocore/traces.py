"""The NeuroCore's trace memories: pre traces ``x`` of the sources and post traces ``y`` of the neurons."""
from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from models.snn.params import DECAY_ONE
from rtl.neurocore.arith import decay_unsigned
from rtl.neurocore.config import NeuroCoreConfig
from rtl.neurocore.host import RegionSignature
from rtl.neurocore.sequencer import Phase, bitmap_width, iterator_shape

__all__ = ["TraceMemory"]


class TraceMemory(wiring.Component):
    """Per lane ``l``: ``x_<l>`` (the pre trace of source ``s = j*P + l`` at address ``j``, depth ceil((N+M)/P)) and
    ``y_<l>`` (the post trace of neuron ``i = k*P + l`` at address ``k``, depth K), and their update.

    The read addresses follow the sequencer (``phase``, ``j``, ``wk``): ``x_decayed``/``y_decayed`` are ``decay(x)``
    and ``decay(y)`` of the words read, for the STDP pipeline and the trace update. TRACE rewrites P sources and P
    neurons per cycle from the spike bitmap ``now`` (``x <- decay(x) + a_pre`` on a spike, saturating, or
    ``x <- a_pre`` in the replace mode; likewise ``y`` with ``a_post``); a soft reset (CLEAR) zeroes them. The host
    reads and writes ``x`` through the TRACE_X region (``pre_host``) and ``y`` as the neuron field Y
    (``post_host``).
    """

    def __init__(self, config: NeuroCoreConfig):
        self._config = config
        tb, p = config.trace_bits, config.lanes
        decay = range(DECAY_ONE + 1)
        super().__init__({
            "phase": In(Phase), "j": In(iterator_shape(config)), "wk": In(range(config.groups)),
            "now": In(bitmap_width(config)),
            "pre_host": In(RegionSignature(config)), "post_host": In(RegionSignature(config)),
            "d_x": In(decay), "d_y": In(decay), "a_pre": In(tb), "a_post": In(tb), "trace_mode": In(1),
            "x_decayed": Out(tb).array(p), "y_decayed": Out(tb).array(p),
        })

    def elaborate(self, platform):
        c = self._config
        m = Module()
        p, lp, k_n, ks = c.lanes, c.lane_bits, c.groups, c.src_groups
        j = self.j
        xaddr = Signal(range(ks), name="xaddr")
        y_raddr = Signal(range(k_n), name="y_raddr")
        y_waddr = Signal(range(k_n), name="y_waddr")
        post_neuron = self.post_host.index[:c.neuron_bits]
        with m.Switch(self.phase):
            with m.Case(Phase.IDLE):
                m.d.comb += [xaddr.eq(self.pre_host.index >> lp), y_raddr.eq(post_neuron >> lp),
                             y_waddr.eq(post_neuron >> lp)]
            with m.Case(Phase.NEURON):
                m.d.comb += y_raddr.eq(j)
            with m.Case(Phase.POTENTIATE):
                m.d.comb += xaddr.eq(j)
            with m.Case(Phase.DEPRESS):
                m.d.comb += y_raddr.eq(self.wk)
            with m.Case(Phase.TRACE, Phase.CLEAR):
                m.d.comb += [xaddr.eq(j), y_raddr.eq(j), y_waddr.eq(j)]

        xrd, xwr, yrd, ywr = [], [], [], []
        for lane in range(p):
            x_mem = Memory(shape=unsigned(c.trace_bits), depth=ks, init=[])
            y_mem = Memory(shape=unsigned(c.trace_bits), depth=k_n, init=[0] * k_n)
            m.submodules[f"x_{lane}"], m.submodules[f"y_{lane}"] = x_mem, y_mem
            xrd.append(x_mem.read_port(domain="comb"))
            xwr.append(x_mem.write_port())
            yrd.append(y_mem.read_port(domain="comb"))
            ywr.append(y_mem.write_port())
            m.d.comb += [xrd[lane].addr.eq(xaddr), xwr[lane].addr.eq(xaddr), yrd[lane].addr.eq(y_raddr),
                         ywr[lane].addr.eq(y_waddr)]
            m.d.comb += [
                self.x_decayed[lane].eq(decay_unsigned(m, xrd[lane].data, self.d_x, f"xd_{lane}")),
                self.y_decayed[lane].eq(decay_unsigned(m, yrd[lane].data, self.d_y, f"yd_{lane}")),
            ]

        updated = [self._updated(m, lane) for lane in range(p)]
        with m.Switch(self.phase):
            with m.Case(Phase.TRACE):
                for lane, (x_new, y_new) in enumerate(updated):
                    m.d.comb += [xwr[lane].en.eq(1), xwr[lane].data.eq(x_new)]
                    with m.If(j < k_n):
                        m.d.comb += [ywr[lane].en.eq(1), ywr[lane].data.eq(y_new)]
            with m.Case(Phase.CLEAR):
                for lane in range(p):
                    m.d.comb += [xwr[lane].en.eq(j < ks), xwr[lane].data.eq(0)]
                    with m.If(j < k_n):
                        m.d.comb += [ywr[lane].en.eq(1), ywr[lane].data.eq(0)]
        self._host_access(m, self.pre_host, self.pre_host.index, xrd, xwr)
        self._host_access(m, self.post_host, post_neuron, yrd, ywr)
        return m

    def _updated(self, m, lane):
        """TRACE: the new x of source ``j*P + lane`` and y of neuron ``j*P + lane`` (the neuron part only exists
        for ``j < K``)."""
        tmax = (1 << self._config.trace_bits) - 1
        bit_x = self.now.bit_select(self.j * self._config.lanes + lane, 1)
        bit_y = Signal(name=f"bit_y_{lane}")
        m.d.comb += bit_y.eq(bit_x & (self.j < self._config.groups))

        def upd(dec, bit, amount):
            added = dec + Mux(bit, amount, 0)
            add_mode = Mux(added > tmax, tmax, added)
            return Mux(self.trace_mode, Mux(bit, amount, dec), add_mode)

        return upd(self.x_decayed[lane], bit_x, self.a_pre), upd(self.y_decayed[lane], bit_y, self.a_post)

    def _host_access(self, m, host, index, rd, wr):
        """Host reads and (idle) writes of one trace per address ``index``: lane ``index mod P``."""
        lp = self._config.lane_bits
        for lane in range(len(rd)):
            with m.If((index[:lp] if lp else 0) == lane):
                m.d.comb += host.rdata.eq(rd[lane].data)
                with m.If(host.we):
                    m.d.comb += [wr[lane].en.eq(1), wr[lane].data.eq(host.wdata)]
