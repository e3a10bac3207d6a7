"""Storage of the PulseDL-II CNN accelerator: activation banks, the line buffer, the descriptor and quantisation
tables, and the ADC capture unit (sample FIFO + trigger). Each is a bus-free component with plain ports; the
accelerator top (:mod:`rtl.pulsedl.accel`) wires them to the sequencer and to its bus window."""
from amaranth import Cat, Module, Signal, signed
from amaranth.hdl import MemoryData
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.pulsedl.nn_units import ACT_BITS

__all__ = ["ActivationBank", "AdcCapture", "LineBuffer", "QuantTable", "Table"]


class ActivationBank(wiring.Component):
    """``words`` activations (16 bits signed; int8 values sign-extended), laid out ``[w][c]`` (TFLite's NHWC with
    H = 1, so RESHAPE to a vector is free). Two read ports: the sequencer's (``data`` is registered: the entry at the
    previous cycle's ``addr``, as block RAM reads) and the bus's (combinational; the bus registers it), one write
    port."""

    def __init__(self, words: int):
        self.storage = MemoryData(shape=signed(16), depth=words, init=[])
        super().__init__({"addr": In(range(words)), "data": Out(signed(16)),
                          "bus_addr": In(range(words)), "bus_data": Out(signed(16)),
                          "w_addr": In(range(words)), "w_data": In(signed(16)), "w_en": In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = memory = Memory(data=self.storage)
        read, bus_read, write = memory.read_port(domain="comb"), memory.read_port(domain="comb"), memory.write_port()
        m.d.sync += self.data.eq(read.data)
        m.d.comb += [read.addr.eq(self.addr), bus_read.addr.eq(self.bus_addr),
                     self.bus_data.eq(bus_read.data), write.addr.eq(self.w_addr), write.data.eq(self.w_data),
                     write.en.eq(self.w_en)]
        return m


class LineBuffer(wiring.Component):
    """The convolution window: ``depth`` (a power of two) activation operands (value + input offset, 0 in the
    padding), addressed modulo ``depth`` so the window slides along W without moving data. ``reads`` read ports at
    consecutive addresses from ``base`` (one per AU of a PE), registered: ``data`` is the window at the ``base`` of
    the previous cycle."""

    def __init__(self, depth: int, reads: int):
        self.depth, self.reads = depth, reads
        self.storage = MemoryData(shape=signed(ACT_BITS), depth=depth, init=[])
        super().__init__({"base": In(range(depth)), "data": Out(signed(ACT_BITS)).array(reads),
                          "w_addr": In(range(depth)), "w_data": In(signed(ACT_BITS)), "w_en": In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = memory = Memory(data=self.storage)
        write = memory.write_port()
        m.d.comb += [write.addr.eq(self.w_addr), write.data.eq(self.w_data), write.en.eq(self.w_en)]
        for i in range(self.reads):
            port = memory.read_port(domain="comb")
            m.d.comb += port.addr.eq(self.base + i)
            m.d.sync += self.data[i].eq(port.data)
        return m


class Table(wiring.Component):
    """A ``depth`` x 32-bit table written from the bus and read combinationally (the layer descriptors)."""

    def __init__(self, depth: int):
        self.storage = MemoryData(shape=32, depth=depth, init=[])
        super().__init__({"addr": In(range(depth)), "data": Out(32),
                          "w_addr": In(range(depth)), "w_data": In(32), "w_en": In(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = memory = Memory(data=self.storage)
        read, write = memory.read_port(domain="comb"), memory.write_port()
        m.d.comb += [read.addr.eq(self.addr), self.data.eq(read.data), write.addr.eq(self.w_addr),
                     write.data.eq(self.w_data), write.en.eq(self.w_en)]
        return m


#: The per-output-channel fields of the quantisation table, in bus order (word 0-3 of a channel).
QUANT_FIELDS = ("bias_lo", "bias_hi", "mult", "shift")


class QuantTable(wiring.Component):
    """Per output channel: the bias (48 bits: ``bias_lo`` 32 + ``bias_hi`` 16), the multiplier and the shift of
    :class:`rtl.pulsedl.nn_units.Requantizer`; one table per field, all read at ``channel``. Bus word ``4c + f``
    writes field ``f`` of channel ``c``."""

    def __init__(self, channels: int):
        self.channels = channels
        self.tables = {name: Table(channels) for name in QUANT_FIELDS}
        super().__init__({"channel": In(range(channels)), "bias": Out(signed(48)), "mult": Out(signed(32)),
                          "shift": Out(signed(8)),
                          "w_addr": In(range(4 * channels)), "w_data": In(32), "w_en": In(1)})

    def elaborate(self, platform):
        m = Module()
        for i, (name, table) in enumerate(self.tables.items()):
            m.submodules[f"{name}_table"] = table
            m.d.comb += [table.addr.eq(self.channel), table.w_addr.eq(self.w_addr[2:]), table.w_data.eq(self.w_data),
                         table.w_en.eq(self.w_en & (self.w_addr[:2] == i))]
        t = self.tables
        m.d.comb += [self.bias.eq(Cat(t["bias_lo"].data, t["bias_hi"].data[:16]).as_signed()),
                     self.mult.eq(t["mult"].data), self.shift.eq(t["shift"].data[:8])]
        return m


class AdcCapture(wiring.Component):
    """The ADC stream input: samples (``adc_valid``/``adc_data``, one per valid cycle, never stalled) enter a FIFO of
    ``depth``; a full FIFO drops the sample and sets ``overflow`` (sticky until ``clear``).

    ``arm`` starts a capture of ``length`` samples into activation bank 0 (``w_*``), entry 0 first. Trigger: with
    ``threshold_mode`` = 0 the capture takes the next samples in the FIFO (the CPU is the trigger); with 1 it drops
    samples below ``threshold`` (signed) and the first sample at or above it is entry 0. ``done`` pulses when the
    last sample is written; ``waiting`` counts the cycles a capture spent waiting for samples."""

    def __init__(self, depth: int, max_length: int):
        self.depth = depth
        super().__init__({"adc_valid": In(1), "adc_data": In(signed(16)),
                          "arm": In(1), "threshold_mode": In(1), "threshold": In(signed(16)),
                          "length": In(range(max_length + 1)), "clear": In(1),
                          "capturing": Out(1), "done": Out(1), "overflow": Out(1), "level": Out(range(depth + 1)),
                          "waiting": Out(32),
                          "w_addr": Out(range(max_length)), "w_data": Out(signed(16)), "w_en": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFO(width=16, depth=self.depth)
        m.d.comb += [fifo.w_data.eq(self.adc_data), fifo.w_en.eq(self.adc_valid), self.level.eq(fifo.r_level)]
        with m.If(self.clear):
            m.d.sync += self.overflow.eq(0)
        with m.Elif(self.adc_valid & ~fifo.w_rdy):
            m.d.sync += self.overflow.eq(1)
        triggered = Signal()
        count = Signal.like(self.w_addr)
        sample = fifo.r_data.as_signed()
        take = Signal()
        m.d.comb += [take.eq(self.capturing & fifo.r_rdy & (triggered | (sample >= self.threshold))),
                     fifo.r_en.eq(self.capturing & fifo.r_rdy),
                     self.w_en.eq(take), self.w_addr.eq(count), self.w_data.eq(sample)]
        m.d.sync += self.done.eq(0)
        with m.If(self.arm & ~self.capturing):
            m.d.sync += [self.capturing.eq(self.length != 0), triggered.eq(~self.threshold_mode), count.eq(0)]
        with m.If(self.capturing & ~take):
            m.d.sync += self.waiting.eq(self.waiting + 1)
        with m.If(take):
            m.d.sync += [triggered.eq(1), count.eq(count + 1)]
            with m.If(count == self.length - 1):
                m.d.sync += [self.capturing.eq(0), self.done.eq(1)]
        return m
