"""Host side of the NeuroCore engine: the bus decoder, the global register file, the input buffer and the raster
output (the register map is :class:`~rtl.neurocore.config.Region`; its meaning is described in
:mod:`rtl.neurocore.core`).

Naming note for all NeuroCore units: when a register drives an output port unchanged, the netlist names the
flip-flop after whichever of the two Amaranth meets first, and it walks a module's ``sync`` statements first if
the module's first statement is synchronous. The units therefore start with a register assignment, so that their
fault sites keep the registers' own names (``next_in``, ``w_word_<b>``, ...), not the ports'.
"""
from amaranth import Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from models.snn.params import ADAPT_BITS, DECAY_ONE, StdpParams
from rtl.neurocore.config import GlobalReg, NeuroCoreConfig, NeuronField, Region

__all__ = ["GlobalRegisters", "HostBusSignature", "HostInterface", "InputBuffer", "RasterOutput", "RegionSignature",
           "global_registers"]


class HostBusSignature(wiring.Signature):
    """Host-side register bus (members seen from the host: it drives ``addr``/``wdata``/``we``/``re``)."""

    def __init__(self, addr_width: int, data_width: int):
        super().__init__({
            "addr": Out(addr_width), "wdata": Out(data_width), "we": Out(1), "re": Out(1),
            "rdata": In(data_width), "rvalid": In(1),
        })


class RegionSignature(wiring.Signature):
    """One address region of the host bus, seen from the decoder (the unit that serves the region flips it).

    ``we`` is a write to this region (only ever while the engine is idle); ``rdata`` is the region's word at
    ``index``, combinational (the decoder registers it), except for the weight region, whose memory answers a cycle
    late (:class:`~rtl.neurocore.synapse.SynapseMemory`) and which the decoder passes straight to the bus.
    """

    def __init__(self, config: NeuroCoreConfig):
        super().__init__({
            "index": Out(config.index_bits), "wdata": Out(config.data_width), "we": Out(1),
            "rdata": In(config.data_width),
        })


def _word_index(index, words):
    """The bits of ``index`` that select one of ``words`` 32-bit words."""
    return index[:max(1, (words - 1).bit_length())]


class HostInterface(wiring.Component):
    """Bus decoder: splits the host bus into one :class:`RegionSignature` port per region and answers reads.

    Writes are passed on only while ``idle``. The NEURON region is served by two units: field ``Y`` (the post
    traces) by ``post_traces``, every other field by ``neurons``. ``config_write`` flags an idle write other than
    an input word (it invalidates the engine's pre-summed ``acc``, see :mod:`rtl.neurocore.core`).
    """

    def __init__(self, config: NeuroCoreConfig):
        self._config = config
        region = Out(RegionSignature(config))
        super().__init__({
            "bus": In(HostBusSignature(config.addr_width, config.data_width)),
            "idle": In(1),
            "ctrl": region, "registers": region, "weights": region, "neurons": region, "post_traces": region,
            "pre_traces": region, "inputs": region, "spikes": region,
            "config_write": Out(1),
        })

    def elaborate(self, platform):
        c = self._config
        m = Module()
        bus = self.bus
        region = bus.addr[c.index_bits:]
        index = bus.addr[:c.index_bits]
        is_y = index[c.neuron_bits:c.neuron_bits + 4] == NeuronField.Y
        host_we = Signal(name="host_we")
        m.d.comb += [host_we.eq(bus.we & self.idle), self.config_write.eq(host_we & (region != Region.INPUT))]

        selected = {
            self.ctrl: region == Region.CTRL, self.registers: region == Region.GLOBAL,
            self.weights: region == Region.WEIGHT, self.neurons: (region == Region.NEURON) & ~is_y,
            self.post_traces: (region == Region.NEURON) & is_y, self.pre_traces: region == Region.TRACE_X,
            self.inputs: region == Region.INPUT, self.spikes: region == Region.SPIKES,
        }
        for port, hit in selected.items():
            m.d.comb += [port.index.eq(index), port.wdata.eq(bus.wdata), port.we.eq(host_we & hit)]

        # reads: registered, answered one cycle after re (weights: the bank's own read register, see above)
        value = Signal(c.data_width, name="read_value")
        with m.Switch(region):
            for r, port in ((Region.CTRL, self.ctrl), (Region.GLOBAL, self.registers),
                            (Region.TRACE_X, self.pre_traces), (Region.INPUT, self.inputs),
                            (Region.SPIKES, self.spikes)):
                with m.Case(r):
                    m.d.comb += value.eq(port.rdata)
            with m.Case(Region.NEURON):
                m.d.comb += value.eq(Mux(is_y, self.post_traces.rdata, self.neurons.rdata))
        rdata_reg = Signal(c.data_width, name="rdata_reg")
        rd_weight = Signal(name="rd_weight")
        m.d.sync += [bus.rvalid.eq(bus.re), rd_weight.eq(region == Region.WEIGHT)]
        with m.If(bus.re):
            m.d.sync += rdata_reg.eq(value)
        m.d.comb += bus.rdata.eq(Mux(rd_weight, self.weights.rdata, rdata_reg))
        return m


def global_registers(config: NeuroCoreConfig) -> dict[GlobalReg, tuple[str, object, int]]:
    """(name, shape, reset value) of every global register; reset values are the golden model's defaults."""
    d0 = StdpParams()
    tb = config.trace_bits
    tmax = (1 << tb) - 1
    decay = range(DECAY_ONE + 1)
    return {
        GlobalReg.W_EXP: ("w_exp", 3, 0), GlobalReg.D_X: ("d_x", decay, d0.d_x),
        GlobalReg.D_Y: ("d_y", decay, d0.d_y), GlobalReg.A_PRE: ("a_pre", tb, min(d0.a_pre, tmax)),
        GlobalReg.A_POST: ("a_post", tb, min(d0.a_post, tmax)), GlobalReg.A_PLUS: ("a_plus", 8, 0),
        GlobalReg.A_MINUS: ("a_minus", 8, 0), GlobalReg.S_PLUS: ("s_plus", 4, d0.s_plus),
        GlobalReg.S_MINUS: ("s_minus", 4, d0.s_minus), GlobalReg.W_MIN: ("w_min", signed(8), d0.w_min),
        GlobalReg.W_MAX: ("w_max", signed(8), d0.w_max), GlobalReg.TRACE_MODE: ("trace_mode", 1, 0),
        GlobalReg.RESET_MODE: ("reset_mode", 1, 0), GlobalReg.LEARN: ("learn", 1, 0),
        GlobalReg.X_TAR: ("x_tar", tb, 0), GlobalReg.W_DECAY: ("w_decay", 4, 0),
        GlobalReg.THETA_PLUS: ("theta_plus", ADAPT_BITS, 0), GlobalReg.D_THETA: ("d_theta", decay, 0),
        GlobalReg.THETA_PERIOD: ("theta_period", 4, 0), GlobalReg.TICK: ("tick", 15, 0),
    }


class GlobalRegisters(wiring.Component):
    """The GLOBAL region: learning, synapse and homeostasis registers, each an output named as in
    :func:`global_registers`. ``tick`` (state, not a parameter) advances modulo ``2^theta_period`` at the end of
    every learning step (``step_end`` with ``learn`` set)."""

    def __init__(self, config: NeuroCoreConfig):
        self._config = config
        self._regs = global_registers(config)
        super().__init__({
            "host": In(RegionSignature(config)),
            "step_end": In(1),
            **{name: Out(shape, init=init) for name, shape, init in self._regs.values()},
        })

    def elaborate(self, platform):
        m = Module()
        regs = {reg_id: getattr(self, name) for reg_id, (name, _, _) in self._regs.items()}
        tick = self.tick
        tick_mask = Signal(15, name="tick_mask")
        m.d.comb += tick_mask.eq((Const(1, 16) << self.theta_period) - 1)
        with m.If(self.step_end & self.learn):
            m.d.sync += tick.eq((tick + 1) & tick_mask)
        host = self.host
        with m.Switch(host.index):
            for reg_id, reg in regs.items():
                with m.Case(reg_id):
                    m.d.comb += host.rdata.eq(reg.as_unsigned())
                    with m.If(host.we):
                        m.d.sync += reg.eq(host.wdata[:len(reg)])
        return m


class InputBuffer(wiring.Component):
    """The INPUT region: ``next_in``, the host-written input bitmap of the next step (``bits``), in 32-bit words.

    ``take`` (a step starts and latches ``bits``) and ``clear`` (the end of a soft reset) empty it.
    """

    def __init__(self, config: NeuroCoreConfig):
        self._config = config
        super().__init__({
            "host": In(RegionSignature(config)),
            "take": In(1), "clear": In(1),
            "bits": Out(config.n_inputs),
        })

    def elaborate(self, platform):
        c = self._config
        m = Module()
        m_pad = -(-c.n_inputs // 32) * 32
        next_in = Signal(m_pad, name="next_in")
        word = next_in.word_select(_word_index(self.host.index, m_pad // 32), 32)
        with m.If(self.take | self.clear):
            m.d.sync += next_in.eq(0)
        with m.If(self.host.we):
            m.d.sync += word.eq(self.host.wdata[:32])
        m.d.comb += [self.bits.eq(next_in[:c.n_inputs]), self.host.rdata.eq(word)]
        return m


class RasterOutput(wiring.Component):
    """The SPIKES region and the ``raster`` stream: the N spike bits of the last finished step.

    ``step_end`` latches ``spikes`` and offers them on ``raster`` until accepted; ``blocked`` (a raster is
    pending and not being accepted) holds the next step back. ``clear`` (the end of a soft reset) drops both.
    """

    def __init__(self, config: NeuroCoreConfig):
        self._config = config
        super().__init__({
            "host": In(RegionSignature(config)),
            "step_end": In(1), "spikes": In(config.n_neurons), "clear": In(1),
            "raster": Out(stream.Signature(config.n_neurons)),
            "blocked": Out(1),
        })

    def elaborate(self, platform):
        c = self._config
        m = Module()
        n_pad = -(-c.n_neurons // 32) * 32
        last_spikes = Signal(n_pad, name="last_spikes")
        raster_valid = Signal(name="raster_valid")
        with m.If(self.raster.ready):
            m.d.sync += raster_valid.eq(0)
        with m.If(self.step_end):
            m.d.sync += [last_spikes.eq(self.spikes), raster_valid.eq(1)]
        with m.If(self.clear):
            m.d.sync += [last_spikes.eq(0), raster_valid.eq(0)]
        m.d.comb += [
            self.raster.payload.eq(last_spikes[:c.n_neurons]), self.raster.valid.eq(raster_valid),
            self.blocked.eq(raster_valid & ~self.raster.ready),
            self.host.rdata.eq(last_spikes.word_select(_word_index(self.host.index, n_pad // 32), 32)),
        ]
        return m
