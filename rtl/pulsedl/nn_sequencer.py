"""The network level of the PulseDL-II accelerator: the layer sequencer that walks the descriptor table.

A descriptor is :data:`DESC_WORDS` 32-bit words (layout in the docstring of :mod:`rtl.pulsedl.config`); ops:

* ``END`` stops the network (``done``);
* ``CONV`` a 1-D convolution (a fully connected layer is one with ``in_w = out_w = k = 1`` and ``in_c`` inputs):
  for each output position the line buffer is topped up with the window's new operands (one per cycle; padding
  reads as 0, every operand is value + ``in_off``), then each group of P output channels runs on the P PEs,
  ``ceil(k * in_c / A)`` cycles of A MACs each (kernel rows and operands are read into registers, so the MACs
  trail the issue by one cycle: one SETTLE cycle) plus one HANDOFF cycle that passes the P sums to the output drain;
  the drain requantises and writes one output per cycle while the next group computes (HANDOFF waits for it when
  a group has fewer rows than outputs), and the layer ends when the drain is empty;
* ``MAXPOOL`` / ``AVGPOOL`` a 1 x k window per output position and channel (one tap per cycle; the average rounds
  half away from zero as TFLite's kernels do, by a 20-cycle divider).

Outputs go to the destination bank at consecutive addresses (``[w][c]`` order). A descriptor that breaks a limit
sets ``error`` with a code (:data:`ERRORS`) and the failing layer, and the sequencer stops; every loop is bounded by
fields checked before the layer starts, so it never hangs.
"""
import enum

from amaranth import Array, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.pulsedl.nn_units import ACT_BITS, SUM_BITS, PoolDivider, Requantizer

__all__ = ["DESC_WORDS", "ERRORS", "LayerSequencer", "NnOp"]

DESC_WORDS = 8


class NnOp(enum.IntEnum):
    END = 0
    CONV = 1
    MAXPOOL = 2
    AVGPOOL = 3


#: Error codes in the status register.
ERRORS = {1: "unknown op", 2: "bad shape (a zero size, pool window > 8, or pool channels differ)",
          3: "input larger than an activation bank", 4: "output larger than an activation bank",
          5: "convolution window larger than the line buffer", 6: "weights beyond the kernel registers",
          7: "channels beyond the quantisation table", 8: "source and destination bank are the same",
          9: "no END in the descriptor table"}


class LayerSequencer(wiring.Component):
    """Drives the units it is given (``pes``, ``line_buffer``, ``banks``, ``descriptors``, ``quant``); owns the
    requantiser and the pooling divider. ``start`` runs the table from descriptor 0; ``busy`` until ``done`` (one
    cycle) or ``error`` (sticky until the next ``start``). ``cycles`` counts busy cycles (wraps)."""

    def __init__(self, cfg, pes, line_buffer, banks, descriptors, quant):
        self.cfg = cfg
        self.pes, self.line_buffer, self.banks = pes, line_buffer, banks
        self.descriptors, self.quant = descriptors, quant
        super().__init__({
            "start": In(1), "busy": Out(1), "done": Out(1), "error": Out(1), "error_code": Out(8),
            "error_layer": Out(8), "cycles": Out(32),
            "w_bank": Out(1), "w_addr": Out(range(cfg.act_words)), "w_data": Out(signed(16)), "w_en": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        npe, aus = cfg.accel_pes, cfg.accel_aus
        m.submodules.requantizer = rq = Requantizer()
        m.submodules.pool_divider = div = PoolDivider()

        dw = [Signal(32, name=f"desc{i}") for i in range(DESC_WORDS)]
        op, wide, src, dst = dw[0][:4], dw[0][4], dw[0][5], dw[0][6]
        in_w, in_c, out_w, out_c = dw[1][:16], dw[1][16:], dw[2][:16], dw[2][16:]
        k, stride, pad = dw[3][:8], dw[3][8:16], dw[3][16:24]
        wbase, qbase = dw[4][:16], dw[4][16:]
        in_off = dw[5][:ACT_BITS].as_signed()
        act_min, act_max, out_zp = dw[6][:16].as_signed(), dw[6][16:].as_signed(), dw[7][:16].as_signed()

        layer = Signal(range(cfg.max_layers + 1))
        word = Signal(range(DESC_WORDS))
        in_size, out_size, win, step, padc = (Signal(32, name=n) for n in ("in_size", "out_size", "win", "step",
                                                                            "padc"))
        rows = Signal(16)
        m.d.comb += rows.eq((win + aus - 1) >> (aus.bit_length() - 1))

        # convolution loop state
        ow = Signal(16)
        win_start, fill_h, grow = Signal(32), Signal(32), Signal(32)
        oc_base, j = Signal(16), Signal(16)
        out_addr = Signal(range(cfg.act_words + 1))
        drain = self._drain(m, rq, qbase, out_addr)
        # pooling loop state
        chan, tap = Signal(16), Signal(8)
        w0 = Signal(signed(18))
        pool_acc = Signal(signed(24))
        pool_count = Signal(4)
        pool_value = Signal(signed(24))

        src_data = Mux(src, self.banks[1].data, self.banks[0].data)     # registered: the previous cycle's address
        fill_pending, fill_inside, fill_lb_addr = Signal(), Signal(), Signal(range(cfg.line_buffer_depth))
        pool_pending = Signal()
        m.d.sync += [fill_pending.eq(0), pool_pending.eq(0)]
        lb = self.line_buffer
        m.d.comb += [lb.w_addr.eq(fill_lb_addr), lb.w_data.eq(Mux(fill_inside, src_data + in_off, 0)),
                     lb.w_en.eq(fill_pending)]
        pool_next, count_next = Signal(signed(24)), Signal(4)
        m.d.comb += [pool_next.eq(pool_acc), count_next.eq(pool_count)]
        with m.If(pool_pending):
            m.d.comb += [count_next.eq(pool_count + 1),
                         pool_next.eq(Mux(op == NnOp.MAXPOOL, Mux(src_data > pool_acc, src_data, pool_acc),
                                          pool_acc + src_data))]
        for bank in self.banks:
            m.d.comb += bank.addr.eq(0)
        m.d.comb += [self.w_bank.eq(dst), self.w_addr.eq(out_addr), self.descriptors.addr.eq(layer * DESC_WORDS + word)]
        for pe in self.pes:            # the line buffer's registered window, one cycle after MAC issued its address
            m.d.comb += [pe.acts[i].eq(self.line_buffer.data[i]) for i in range(aus)]
        m.d.sync += self.done.eq(0)
        with m.If(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        def set_src_addr(addr):
            for bank in self.banks:
                m.d.comb += bank.addr.eq(addr)

        def fail(code):
            m.d.sync += [self.error.eq(1), self.error_code.eq(code), self.error_layer.eq(layer), self.busy.eq(0)]
            m.next = "IDLE"

        def next_layer():
            m.d.sync += [layer.eq(layer + 1), word.eq(0)]
            m.next = "LOAD"

        with m.FSM(name="state"):
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [self.busy.eq(1), self.error.eq(0), self.error_code.eq(0), layer.eq(0), word.eq(0)]
                    m.next = "LOAD"
            with m.State("LOAD"):
                with m.If(layer == cfg.max_layers):
                    fail(9)
                with m.Else():
                    with m.Switch(word):
                        for i in range(DESC_WORDS):
                            with m.Case(i):
                                m.d.sync += dw[i].eq(self.descriptors.data)
                    m.d.sync += word.eq(word + 1)
                    with m.If(word == DESC_WORDS - 1):
                        m.next = "SIZES"
            with m.State("SIZES"):
                m.d.sync += [in_size.eq(in_w * in_c), out_size.eq(out_w * out_c), win.eq(k * in_c),
                             step.eq(stride * in_c), padc.eq(pad * in_c)]
                m.next = "CHECK"
            with m.State("CHECK"):
                self._check(m, fail, op, in_w, in_c, out_w, out_c, k, stride, src, dst, qbase, in_size, out_size,
                            win)
                m.d.sync += [ow.eq(0), win_start.eq(0), fill_h.eq(0), out_addr.eq(0), chan.eq(0), tap.eq(0),
                             w0.eq(-pad), pool_count.eq(0), pool_acc.eq(Mux(op == NnOp.MAXPOOL, -(1 << 23), 0))]
            with m.State("FILL"):
                # issue one operand's bank read per cycle; the registered data is written one cycle later
                addr = Signal(signed(33))
                m.d.comb += addr.eq(fill_h - padc)
                set_src_addr(addr[:16])
                with m.If(fill_h < win_start + win):
                    m.d.sync += [fill_h.eq(fill_h + 1), fill_pending.eq(1), fill_inside.eq((addr >= 0) &
                                                                                          (addr < in_size)),
                                 fill_lb_addr.eq(fill_h)]
                with m.Else():
                    m.d.sync += [oc_base.eq(0), grow.eq(wbase), j.eq(0)]
                    m.next = "MAC"
            with m.State("MAC"):
                with m.If((j == 0) & (grow + rows > cfg.accel_kernel_rows)):
                    fail(6)
                m.d.comb += self.line_buffer.base.eq(win_start + (j << (aus.bit_length() - 1)))
                for pe in self.pes:
                    m.d.comb += [pe.row.eq(grow + j), pe.en.eq(1), pe.first.eq(j == 0)]
                m.d.sync += j.eq(j + 1)
                with m.If(j == rows - 1):
                    m.next = "SETTLE"
            with m.State("SETTLE"):         # the PEs accumulate the last row (read one cycle after its issue)
                m.next = "HANDOFF"
            with m.State("HANDOFF"):
                # the PEs' sums go to the drain (once it has taken the previous group's) while the next group MACs
                with m.If(drain["idle_for_next"]):
                    m.d.comb += drain["start"].eq(1)
                    for p, pe in enumerate(self.pes):
                        m.d.sync += drain["held"][p].eq(pe.sum)
                    m.d.comb += [drain["base"].eq(oc_base),
                                 drain["lanes"].eq(Mux(oc_base + npe > out_c, out_c - oc_base, npe))]
                    with m.If(oc_base + npe < out_c):
                        m.d.sync += [oc_base.eq(oc_base + npe), grow.eq(grow + rows), j.eq(0)]
                        m.next = "MAC"
                    with m.Elif(ow + 1 < out_w):
                        m.d.sync += [ow.eq(ow + 1), win_start.eq(win_start + step),
                                     fill_h.eq(Mux(fill_h > win_start + step, fill_h, win_start + step))]
                        m.next = "FILL"
                    with m.Else():
                        m.next = "LAYER_END"
            with m.State("LAYER_END"):
                with m.If(drain["idle"]):
                    next_layer()
            with m.State("POOL"):
                # issue tap ``tap``'s read; the registered data of the previous tap is folded in (pool_next)
                w = Signal(signed(18))
                m.d.comb += w.eq(w0 + tap)
                set_src_addr((w * in_c + chan)[:16])
                m.d.sync += [pool_acc.eq(pool_next), pool_count.eq(count_next)]
                with m.If(tap < k):
                    m.d.sync += [tap.eq(tap + 1), pool_pending.eq((w >= 0) & (w < in_w))]
                with m.Elif(op == NnOp.MAXPOOL):
                    m.d.sync += pool_value.eq(pool_next)
                    m.next = "POOL_WRITE"
                with m.Else():
                    magnitude = Mux(pool_next < 0, -pool_next, pool_next)
                    m.d.comb += [div.start.eq(1), div.dividend.eq(magnitude + (count_next >> 1)),
                                 div.divisor.eq(count_next)]
                    m.next = "POOL_DIVIDE"
            with m.State("POOL_DIVIDE"):
                with m.If(div.done):
                    m.d.sync += pool_value.eq(Mux(pool_acc < 0, -div.quotient, div.quotient))
                    m.next = "POOL_WRITE"
            with m.State("POOL_WRITE"):
                clamped = Mux(pool_value < act_min, act_min, Mux(pool_value > act_max, act_max, pool_value))
                m.d.comb += [self.w_data.eq(clamped), self.w_en.eq(1)]
                m.d.sync += [out_addr.eq(out_addr + 1), tap.eq(0), pool_count.eq(0),
                             pool_acc.eq(Mux(op == NnOp.MAXPOOL, -(1 << 23), 0))]
                with m.If(chan + 1 < in_c):
                    m.d.sync += chan.eq(chan + 1)
                    m.next = "POOL"
                with m.Elif(ow + 1 < out_w):
                    m.d.sync += [chan.eq(0), ow.eq(ow + 1), w0.eq(w0 + stride)]
                    m.next = "POOL"
                with m.Else():
                    next_layer()
        m.d.comb += [rq.wide.eq(wide), rq.out_zp.eq(out_zp), rq.act_min.eq(act_min), rq.act_max.eq(act_max)]
        return m

    def _drain(self, m, rq, qbase, out_addr) -> dict:
        """The output drain of a convolution: at ``start`` it takes the PEs' sums of one group (``held``, written by
        the caller in the same cycle) with ``lanes`` outputs from channel ``base``; they go one per cycle through a
        two-stage pipe (sum and quantisation parameters registered, then requantised and written at ``out_addr``)
        while the PEs compute the next group."""
        npe = self.cfg.accel_pes
        held = [Signal(signed(SUM_BITS), name=f"held{p}") for p in range(npe)]
        start, lanes, base_in = Signal(), Signal(range(npe + 1)), Signal(16)
        base = Signal(16)
        left = Signal(range(npe + 1))
        lane = Signal(range(max(npe, 2)))
        staged = Signal()                   # stage 1 holds an output for the requantiser
        staged_acc = Signal(signed(SUM_BITS))
        m.d.comb += self.quant.channel.eq(qbase + base + lane)
        m.d.sync += staged.eq(0)
        with m.If(left != 0):
            m.d.sync += [staged.eq(1), staged_acc.eq(Array(held)[lane]), rq.bias.eq(self.quant.bias),
                         rq.mult.eq(self.quant.mult), rq.shift.eq(self.quant.shift), lane.eq(lane + 1),
                         left.eq(left - 1)]
        with m.If(start):
            m.d.sync += [left.eq(lanes), lane.eq(0), base.eq(base_in)]
        with m.If(staged):
            m.d.comb += [rq.acc.eq(staged_acc), self.w_data.eq(rq.out), self.w_en.eq(1)]
            m.d.sync += out_addr.eq(out_addr + 1)
        return {"held": held, "start": start, "base": base_in, "lanes": lanes, "idle_for_next": left == 0,
                "idle": (left == 0) & ~staged}

    def _check(self, m, fail, op, in_w, in_c, out_w, out_c, k, stride, src, dst, qbase, in_size, out_size, win):
        cfg = self.cfg
        with m.If(op == NnOp.END):
            m.d.sync += [self.busy.eq(0), self.done.eq(1)]
            m.next = "IDLE"
        with m.Elif(op > NnOp.AVGPOOL):
            fail(1)
        with m.Elif((in_w == 0) | (in_c == 0) | (out_w == 0) | (out_c == 0) | (k == 0) | (stride == 0) |
                    ((op != NnOp.CONV) & ((k > 8) | (in_c != out_c)))):
            fail(2)
        with m.Elif(in_size > cfg.act_words):
            fail(3)
        with m.Elif(out_size > cfg.act_words):
            fail(4)
        with m.Elif((op == NnOp.CONV) & (win > cfg.line_buffer_depth)):
            fail(5)
        with m.Elif((op == NnOp.CONV) & (qbase + out_c > cfg.quant_channels)):
            fail(7)
        with m.Elif(src == dst):
            fail(8)
        with m.Elif(op == NnOp.CONV):
            m.next = "FILL"
        with m.Else():
            m.next = "POOL"
