"""The NeuroCore engine: N LIF neurons, M inputs, an (N+M) x N int8 weight matrix with on-chip trace STDP.

Bit-exact with :class:`models.snn.golden.GoldenCore`; the per-step semantics are specified in
:mod:`models.snn.params` and implemented here phase by phase.

Units (sub-components; fault injection groups their state by :data:`BLOCK_MAP`)
-------------------------------------------------------------------------------
* ``host`` (:class:`~rtl.neurocore.host.HostInterface`): the bus decoder and the registered read data.
* ``regs`` (:class:`~rtl.neurocore.host.GlobalRegisters`): the global learning/synapse registers (including the
  homeostasis registers and ``tick``, the learning-step counter modulo ``2^theta_period``, kept by a soft reset).
* ``seq`` (:class:`~rtl.neurocore.sequencer.StepSequencer`): the step FSM, its iterators and row walker, status
  flags and counters.
* ``bitmaps`` (:class:`~rtl.neurocore.sequencer.SpikeBitmaps`): ``pending`` (sources that spiked in the previous
  step) and ``now`` (this step's source spikes).
* ``input_buffer`` (:class:`~rtl.neurocore.host.InputBuffer`): ``next_in``, the host-written inputs of the next step.
* ``raster_out`` (:class:`~rtl.neurocore.host.RasterOutput`): the spikes of the last step, on ``raster``.
* ``synapse`` (:class:`~rtl.neurocore.synapse.SynapseMemory`): ``w_mem_<b>`` (P banks, ``b = s mod P``): the
  weights of source ``s`` live in bank ``s mod P``, row ``s div P``; word ``row*K + k`` of a bank = weights
  ``W[s, k*P + l]`` (int8, lane ``l`` at bits ``8l..8l+7``) then their P plasticity-mask bits (K = N/P). Each bank
  has one synchronous read port (all banks share the read address; the read register is ``w_word_<b>``) and one
  write port, so a read-modify-write of P synapses per bank completes every cycle. Banking by source lets a
  potentiation column pass rewrite P sources (P words) per cycle; with P > 1, K must be a power of two so that the
  host's word index ``s*K + k`` splits into bank and row by wiring alone.
* ``stdp`` (:class:`~rtl.neurocore.synapse.StdpUnit`): the weight read-modify-write pipeline.
* ``neuron`` (:class:`~rtl.neurocore.neuron.NeuronUnit`): per lane ``l`` (neuron ``i = k*P + l`` at address ``k``),
  LUT RAMs of depth K with separate read and write addresses: parameters ``theta``, ``v_reset``, ``v_rest``,
  ``bias``, ``d_v``, ``d_i``, ``t_ref`` and state ``i_syn``, ``v``, ``ref``, ``acc`` (exact per-step input sum; own
  addresses), ``count`` (16-bit saturating spike counter), ``a`` (16-bit saturating adaptive threshold; kept by a
  soft reset); and the LIF pipeline: ``neuron.decay`` (stage A) and ``neuron.fire`` (stages B and C).
* ``traces`` (:class:`~rtl.neurocore.traces.TraceMemory`): per lane ``l``, ``x_<l>`` (pre trace of source
  ``s = j*P + l`` at address ``j``, depth ceil((N+M)/P)) and ``y_<l>`` (post trace of neuron ``k*P + l``, depth K).

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
from amaranth import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.neurocore.config import NeuroCoreConfig
from rtl.neurocore.host import GlobalRegisters, HostBusSignature, HostInterface, InputBuffer, RasterOutput
from rtl.neurocore.neuron import NeuronUnit
from rtl.neurocore.sequencer import SpikeBitmaps, StepSequencer
from rtl.neurocore.synapse import StdpUnit, SynapseMemory
from rtl.neurocore.traces import TraceMemory

__all__ = ["BLOCK_MAP", "HostBusSignature", "NeuroCore"]

#: Fault-injection blocks of the ``neurocore`` design: a dotted instance prefix -> block name. A state element
#: belongs to the block of the longest key that equals its dotted flat name or is a prefix of it followed by ".".
#: Every memory belongs to the unit that owns it (weight banks: ``synapse_memory``; neuron fields:
#: ``neuron_state``; pre and post traces: ``traces``). The LIF pipeline's two register stages are blocks of their
#: own, so that no block holds most of the flip-flops.
BLOCK_MAP: dict[str, str] = {
    "host": "host_interface",       # bus decoder, registered read data
    "regs": "global_registers",     # learning / synapse / homeostasis registers, tick
    "seq": "sequencer",             # step FSM, iterators, row walker, status flags and counters
    "bitmaps": "spike_bitmaps",     # pending (S[t-1]) and now (S[t])
    "input_buffer": "input_buffer",  # next_in
    "raster_out": "raster_output",  # last step's spikes, raster stream valid
    "synapse": "synapse_memory",    # weight banks w_mem_<b> and their read registers
    "stdp": "stdp",                 # weight read-modify-write pipeline (INTEGRATE reads, POTENTIATE, DEPRESS)
    "neuron": "neuron_state",       # per-lane neuron field memories
    "neuron.decay": "neuron_decay",  # LIF stage A: decay products, theta + a
    "neuron.fire": "neuron_fire",   # LIF stages B/C: sums, saturation, threshold and reset
    "traces": "traces",             # pre / post trace memories and their update
}


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
        m.submodules.host = host = HostInterface(c)
        m.submodules.regs = regs = GlobalRegisters(c)
        m.submodules.seq = seq = StepSequencer(c)
        m.submodules.bitmaps = spikes = SpikeBitmaps(c)
        m.submodules.input_buffer = inputs = InputBuffer(c)
        m.submodules.raster_out = raster_out = RasterOutput(c)
        m.submodules.synapse = synapse = SynapseMemory(c)
        m.submodules.stdp = stdp = StdpUnit(c)
        m.submodules.neuron = neuron = NeuronUnit(c)
        m.submodules.traces = traces = TraceMemory(c)

        wiring.connect(m, wiring.flipped(self.bus), host.bus)
        wiring.connect(m, raster_out.raster, wiring.flipped(self.raster))
        m.d.comb += [self.busy.eq(~seq.idle), host.idle.eq(seq.idle), synapse.idle.eq(seq.idle)]
        for region, unit_port in ((host.ctrl, seq.ctrl), (host.registers, regs.host), (host.weights, synapse.host),
                                  (host.neurons, neuron.host), (host.post_traces, traces.post_host),
                                  (host.pre_traces, traces.pre_host), (host.inputs, inputs.host),
                                  (host.spikes, raster_out.host)):
            wiring.connect(m, region, unit_port)

        # step control: the sequencer's phase and events, the bitmaps it walks
        m.d.comb += [
            seq.config_write.eq(host.config_write), seq.learn.eq(regs.learn),
            seq.raster_blocked.eq(raster_out.blocked), seq.pending.eq(spikes.pending), seq.now.eq(spikes.now),
            seq.i_overflow.eq(neuron.i_overflow), seq.v_overflow.eq(neuron.v_overflow),
            regs.step_end.eq(seq.step_end),
            spikes.take.eq(seq.take), spikes.inputs.eq(inputs.bits), spikes.step_end.eq(seq.step_end),
            spikes.clear.eq(seq.clear), spikes.spike_valid.eq(neuron.spike_valid),
            spikes.spike_group.eq(neuron.spike_group), spikes.spike_bits.eq(neuron.spike_bits),
            inputs.take.eq(seq.take), inputs.clear.eq(seq.clear),
            raster_out.step_end.eq(seq.step_end), raster_out.spikes.eq(spikes.now[:c.n_neurons]),
            raster_out.clear.eq(seq.clear),
        ]
        for unit in (neuron, traces):
            m.d.comb += [unit.phase.eq(seq.phase), unit.j.eq(seq.j), unit.wk.eq(seq.wk), unit.now.eq(spikes.now)]

        # the weight pipeline: requests, write-back, the words it hands to acc
        wiring.connect(m, seq.issue, stdp.issue, synapse.issue)
        wiring.connect(m, stdp.write, synapse.write)
        wiring.connect(m, stdp.integrate, neuron.integrate)
        wiring.connect(m, stdp.feedback, neuron.feedback)
        for lane in range(c.lanes):
            m.d.comb += [stdp.words[lane].eq(synapse.words[lane]), stdp.x_decayed[lane].eq(traces.x_decayed[lane]),
                         stdp.y_decayed[lane].eq(traces.y_decayed[lane])]

        _fan_out(m, regs, stdp, ("x_tar", "a_plus", "a_minus", "s_plus", "s_minus", "w_decay", "w_min", "w_max"))
        _fan_out(m, regs, neuron, ("w_exp", "reset_mode", "learn", "tick", "d_theta", "theta_plus"))
        _fan_out(m, regs, traces, ("d_x", "d_y", "a_pre", "a_post", "trace_mode"))
        return m


def _fan_out(m, regs, unit, names):
    """Drive ``unit``'s register inputs ``names`` from the global registers of the same names."""
    m.d.comb += [getattr(unit, name).eq(getattr(regs, name)) for name in names]
