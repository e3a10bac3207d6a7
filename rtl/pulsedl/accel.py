"""The PulseDL-II 1-D CNN accelerator on the SoC bus: three levels, arithmetic unit (MAC) -> processing element
(:class:`rtl.pulsedl.nn_units.ConvLane`) -> network (:class:`rtl.pulsedl.nn_sequencer.LayerSequencer` with the
activation banks, line buffer, descriptor and quantisation tables), plus the ADC stream capture.

The bus window (offsets from :data:`rtl.pulsedl.config.ACCEL_BASE`, all 32-bit word accesses) is documented in
:mod:`rtl.pulsedl.config`. Every access is acknowledged one cycle after it is issued. The tables and kernel
registers are write-only from the bus (reads give 0); activation banks read and write. A bus write into a buffer while
the sequencer runs is not blocked (firmware must not do it).
"""
from amaranth import Cat, Const, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.pulsedl.bus import BUS
from rtl.pulsedl.nn_buffers import ActivationBank, AdcCapture, LineBuffer, QuantTable, Table
from rtl.pulsedl.nn_sequencer import DESC_WORDS, LayerSequencer
from rtl.pulsedl.nn_units import ConvLane

__all__ = ["ACCEL_BLOCKS", "CSR", "NnAccelerator"]

#: CSR word index -> name (offset 4 * index).
CSR = {"CTRL": 0, "STATUS": 1, "CYCLES": 2, "THRESHOLD": 3, "CAPTURE_LEN": 4, "FIFO_LEVEL": 5, "HWCONFIG": 6,
       "CAPTURE_WAIT": 7}
CTRL_START, CTRL_ARM, CTRL_AUTOSTART, CTRL_THRESHOLD, CTRL_CLEAR = 1, 2, 4, 8, 16

#: Functional blocks of the accelerator, relative to its instance (``accel``); see rtl/pulsedl/soc.py.
ACCEL_BLOCKS = {"": "nn_control", "sequencer": "nn_sequencer",  # the requantiser is combinational
                "sequencer.pool_divider": "nn_pool", "act0": "nn_buffers", "act1": "nn_buffers",
                "line_buffer": "nn_buffers", "descriptors": "nn_buffers", "quant": "nn_buffers",
                "capture": "adc_capture",
                # each PE (its kernel registers are the PE's) and each of its AUs, up to the configurable maximum
                **{f"pe{p}": "nn_pe" for p in range(8)},
                **{f"pe{p}.au{a}": "nn_au" for p in range(8) for a in range(4)}}


class NnAccelerator(wiring.Component):
    """Members: ``bus`` (a slave), ``adc_valid``/``adc_data`` (the ADC stream), ``adc_level`` (samples in the FIFO,
    for a test bench that paces the stream), ``busy`` and ``done`` (the sequencer's, also in STATUS)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.images = None      # deployed network as memory init (board builds), see preload(); None: all zero
        super().__init__({"bus": In(BUS), "adc_valid": In(1), "adc_data": In(signed(16)), "busy": Out(1),
                          "done": Out(1), "adc_level": Out(range(cfg.adc_fifo_depth + 1))})

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        pes = [ConvLane(cfg.accel_aus, cfg.accel_kernel_rows) for _ in range(cfg.accel_pes)]
        for p, pe in enumerate(pes):
            m.submodules[f"pe{p}"] = pe
        banks = [ActivationBank(cfg.act_words), ActivationBank(cfg.act_words)]
        m.submodules.act0, m.submodules.act1 = banks
        m.submodules.line_buffer = lb = LineBuffer(cfg.line_buffer_depth, cfg.accel_aus)
        m.submodules.descriptors = desc = Table(cfg.max_layers * DESC_WORDS)
        m.submodules.quant = quant = QuantTable(cfg.quant_channels)
        m.submodules.capture = cap = AdcCapture(cfg.adc_fifo_depth, cfg.act_words)
        m.submodules.sequencer = seq = LayerSequencer(cfg, pes, lb, banks, desc, quant)
        if self.images is not None:
            self._preload(pes, desc, quant)
        m.d.comb += [cap.adc_valid.eq(self.adc_valid), cap.adc_data.eq(self.adc_data), self.busy.eq(seq.busy),
                     self.done.eq(seq.done), self.adc_level.eq(cap.level)]

        bus = self.bus
        request = bus.cyc & bus.stb & ~bus.ack
        write = request & bus.we
        region = bus.adr[12:16]
        word = bus.adr[2:12]
        m.d.sync += bus.ack.eq(request)

        # writes into the buffers: the sequencer, then the capture unit (bank 0), then the bus
        for i, bank in enumerate(banks):
            with m.If(seq.w_en & (seq.w_bank == i)):
                m.d.comb += [bank.w_addr.eq(seq.w_addr), bank.w_data.eq(seq.w_data), bank.w_en.eq(1)]
            if i == 0:
                with m.Elif(cap.w_en):
                    m.d.comb += [bank.w_addr.eq(cap.w_addr), bank.w_data.eq(cap.w_data), bank.w_en.eq(1)]
            with m.Elif(write & (region == 4 + i)):
                m.d.comb += [bank.w_addr.eq(word), bank.w_data.eq(bus.dat_w[:16]), bank.w_en.eq(1)]
            m.d.comb += bank.bus_addr.eq(word)
        m.d.comb += [desc.w_addr.eq(word), desc.w_data.eq(bus.dat_w), desc.w_en.eq(write & (region == 1)),
                     quant.w_addr.eq(word), quant.w_data.eq(bus.dat_w), quant.w_en.eq(write & (region == 2))]
        row_bits = (cfg.accel_kernel_rows - 1).bit_length()
        weight_word = bus.adr[2:15]
        for p, pe in enumerate(pes):
            m.d.comb += [pe.w_row.eq(weight_word[:row_bits]), pe.w_data.eq(bus.dat_w),
                         pe.w_en.eq(write & bus.adr[15] & (weight_word[row_bits:] == p))]

        self._csrs(m, seq, cap, request, write, region, banks)
        return m

    def _preload(self, pes, desc, quant):
        """``images`` = (descriptor words, quantisation words (4 per channel, bus order), kernel rows per PE) become
        the initial contents of the tables and kernel registers, as the bus writes would leave them."""
        descriptors, quant_words, kernels = self.images
        desc.storage.init = [int(w) for w in descriptors]
        fields = [int(w) for w in quant_words]
        for f, table in enumerate(quant.tables.values()):
            table.storage.init = fields[f::4]
        for pe, rows in zip(pes, kernels, strict=True):
            pe.kernels.init = [int(r) for r in rows]

    def _csrs(self, m, seq, cap, request, write, region, banks):
        cfg, bus = self.cfg, self.bus
        threshold = Signal(signed(16))
        length = Signal(range(cfg.act_words + 1), init=64)
        autostart = Signal()
        done_seen = Signal()
        csr = bus.adr[2:5]
        ctrl = Signal(5)
        with m.If(write & (region == 0) & (csr == CSR["CTRL"])):
            m.d.comb += ctrl.eq(bus.dat_w[:5])
        idle = ~seq.busy & ~cap.capturing
        m.d.comb += [seq.start.eq((ctrl[0] & idle) | (cap.done & autostart)),
                     cap.arm.eq(ctrl[1] & idle), cap.threshold_mode.eq(ctrl[3]), cap.threshold.eq(threshold),
                     cap.length.eq(length), cap.clear.eq(ctrl[4])]
        with m.If(ctrl[1] & idle):
            m.d.sync += autostart.eq(ctrl[2])
        with m.If(seq.start | ctrl[4] | cap.arm):
            m.d.sync += done_seen.eq(0)
        with m.Elif(seq.done):
            m.d.sync += done_seen.eq(1)
        with m.If(write & (region == 0) & (csr == CSR["THRESHOLD"])):
            m.d.sync += threshold.eq(bus.dat_w[:16])
        with m.If(write & (region == 0) & (csr == CSR["CAPTURE_LEN"])):
            m.d.sync += length.eq(bus.dat_w)

        status = Cat(seq.busy, cap.capturing, done_seen, seq.error, cap.overflow, Const(0, 3), seq.error_code,
                     seq.error_layer)
        hwconfig = Cat(Const(cfg.accel_pes, 8), Const(cfg.accel_aus, 8), Const(cfg.accel_kernel_rows, 16))
        registers = {"STATUS": status, "CYCLES": seq.cycles, "THRESHOLD": threshold, "CAPTURE_LEN": length,
                     "FIFO_LEVEL": cap.level, "HWCONFIG": hwconfig, "CAPTURE_WAIT": cap.waiting}
        rdata = Signal(32)
        m.d.comb += bus.dat_r.eq(rdata)
        with m.If(request & ~bus.we):
            m.d.sync += rdata.eq(0)
            with m.Switch(region):
                with m.Case(0):
                    with m.Switch(csr):
                        for name, value in registers.items():
                            with m.Case(CSR[name]):
                                m.d.sync += rdata.eq(value)
                for i, bank in enumerate(banks):
                    with m.Case(4 + i):
                        m.d.sync += rdata.eq(bank.bus_data)
