"""NPU performance monitor unit (PMU): the Ethos-U55's cycle counter and event counters, host-readable.

Register map and fields: Vela 5.2.0 ``ethosu/vela/ethos_u55_regs/ethos_u55_regs.py`` (``class PMU``; ``pmcr_r``,
``pmcntenset_r``, ``pmccntr_cfg_r``, ``pmevtyper0_r``; event numbers ``class pmu_event_type``). Offsets are bytes
from the NPU base (the host port ``addr``):

======  ============  ==========================================================================================
0x180   PMCR          bit0 cnt_en (count at all), bit1 event_cnt_rst (write 1: clear PMEVCNTR0-3), bit2
                      cycle_cnt_rst (write 1: clear PMCCNTR), bit3 mask_en (count only while the command stream's
                      last NPU_OP_PMU_MASK enabled it), [15:11] num_event_cnt (read only: 4)
0x184   PMCNTENSET    bits 0-3 event counter enables, bit31 cycle counter enable (write 1 to set; reads the set)
0x188   PMCNTENCLR    the same bits, write 1 to clear
0x18C   PMOVSSET      overflow flags (same bit positions), write 1 to set
0x190   PMOVSCLR      write 1 to clear
0x194   PMINTSET      overflow interrupt enables (same bit positions); ``irq`` = any(flags & enables)
0x198   PMINTCLR
0x1A0   PMCCNTR_LO    cycle counter [31:0]; 0x1A4 PMCCNTR_HI: [47:32] (48 bits)
0x1A8   PMCCNTR_CFG   [9:0] start event, [25:16] stop event: when either is set the cycle counter runs from a cycle
                      with the start event (counted) until a cycle with the stop event (not counted)
0x1AC   PMCAXI_CHAN   stored only (one memory port: the AXI channel selection has nothing to select)
0x300   PMEVCNTR0-3   event counters (32 bits), 4 bytes apart
0x380   PMEVTYPER0-3  [9:0] the counted event (:class:`PmuEvent`)
======  ============  ==========================================================================================

Every register reads back through ``rdata`` combinationally from ``addr``; ``we`` writes ``wdata`` at the clock
edge. Events the design does not have (:data:`EVENT_SIGNALS` lists the ones it has) never count.
"""
import enum

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["EVENT_SIGNALS", "NUM_EVENT_COUNTERS", "PMU_REGS", "Pmu", "PmuEvent", "PmuEvents"]

NUM_EVENT_COUNTERS = 4
CYCLE_BITS = 48


class PmuEvent(enum.IntEnum):
    """The ``pmu_event_type`` numbers this NPU counts (Vela's names and values; checked by the tests)."""
    NO_EVENT = 0x00
    CYCLE = 0x11
    NPU_IDLE = 0x20
    CC_STALLED_ON_BLOCKDEP = 0x21
    NPU_ACTIVE = 0x23
    MAC_ACTIVE = 0x30
    MAC_ACTIVE_8BIT = 0x31
    MAC_STALLED_BY_WD = 0x35
    MAC_STALLED_BY_ACC = 0x36
    MAC_STALLED_BY_IB = 0x37
    AO_ACTIVE = 0x40
    AO_ACTIVE_8BIT = 0x41
    WD_ACTIVE = 0x50
    AXI0_RD_TRANS_ACCEPTED = 0x80
    AXI0_RD_TRANS_COMPLETED = 0x81
    AXI0_RD_DATA_BEAT_RECEIVED = 0x82
    AXI0_WR_TRANS_ACCEPTED = 0x84
    AXI0_WR_TRANS_COMPLETED_M = 0x85
    AXI0_WR_DATA_BEAT_WRITTEN = 0x87


class PmuEvents(data.Struct):
    """What happened in one cycle (the PMU's input; one bit per source).

    npu_active: the command stream controller is busy (a run is pending or in progress). blockdep: a kernel op is
    offered to the compute unit but not taken (it already holds ``max_outstanding_kernels`` ops). mac_active: the MAC
    block fires a beat (all operands are int8). mac_stall_wd / _ib / _acc: the engine runs and its next beat waits
    for its weights (brick not decoded yet) / its IFM rows (not staged yet) / room in the accumulator path.
    ao_active: the output unit hands one OFM position to the OFM writer. wd_active: the weight decoder hands a beat
    of weights to the weight buffer. rd_accept / rd_beat / wr_beat: an external-memory read is accepted / a read
    word (one beat) comes back / a write word is accepted (one 8-byte beat each; a write completes when accepted).
    """
    npu_active: 1
    blockdep: 1
    mac_active: 1
    mac_stall_wd: 1
    mac_stall_ib: 1
    mac_stall_acc: 1
    ao_active: 1
    wd_active: 1
    rd_accept: 1
    rd_beat: 1
    wr_beat: 1


#: Event -> the :class:`PmuEvents` field it counts (``None``: every cycle; ``"!npu_active"``: its complement).
EVENT_SIGNALS: dict[PmuEvent, str | None] = {
    PmuEvent.CYCLE: None,
    PmuEvent.NPU_IDLE: "!npu_active",
    PmuEvent.CC_STALLED_ON_BLOCKDEP: "blockdep",
    PmuEvent.NPU_ACTIVE: "npu_active",
    PmuEvent.MAC_ACTIVE: "mac_active",
    PmuEvent.MAC_ACTIVE_8BIT: "mac_active",
    PmuEvent.MAC_STALLED_BY_WD: "mac_stall_wd",
    PmuEvent.MAC_STALLED_BY_ACC: "mac_stall_acc",
    PmuEvent.MAC_STALLED_BY_IB: "mac_stall_ib",
    PmuEvent.AO_ACTIVE: "ao_active",
    PmuEvent.AO_ACTIVE_8BIT: "ao_active",
    PmuEvent.WD_ACTIVE: "wd_active",
    PmuEvent.AXI0_RD_TRANS_ACCEPTED: "rd_accept",
    PmuEvent.AXI0_RD_TRANS_COMPLETED: "rd_beat",
    PmuEvent.AXI0_RD_DATA_BEAT_RECEIVED: "rd_beat",
    PmuEvent.AXI0_WR_TRANS_ACCEPTED: "wr_beat",
    PmuEvent.AXI0_WR_TRANS_COMPLETED_M: "wr_beat",
    PmuEvent.AXI0_WR_DATA_BEAT_WRITTEN: "wr_beat",
}

#: Register byte offsets (``class PMU`` in ethos_u55_regs.py).
PMU_REGS = {"PMCR": 0x180, "PMCNTENSET": 0x184, "PMCNTENCLR": 0x188, "PMOVSSET": 0x18C, "PMOVSCLR": 0x190,
            "PMINTSET": 0x194, "PMINTCLR": 0x198, "PMCCNTR_LO": 0x1A0, "PMCCNTR_HI": 0x1A4, "PMCCNTR_CFG": 0x1A8,
            "PMCAXI_CHAN": 0x1AC,
            **{f"PMEVCNTR{i}": 0x300 + 4 * i for i in range(NUM_EVENT_COUNTERS)},
            **{f"PMEVTYPER{i}": 0x380 + 4 * i for i in range(NUM_EVENT_COUNTERS)}}

_CYCLE_BIT = 31   # the cycle counter's bit in PMCNTENSET/CLR, PMOVSSET/CLR, PMINTSET/CLR


class Pmu(wiring.Component):
    """The PMU (see the module docstring).

    Members
    -------
    events : ``In(PmuEvents)``       this cycle's events
    cmd_mask : ``In(1)``             the last NPU_OP_PMU_MASK's enable bit (used when PMCR.mask_en)
    addr : ``In(12)``; wdata : ``In(32)``; we : ``In(1)``; rdata : ``Out(32)``   host register access
    irq : ``Out(1)``                 an enabled overflow flag is set
    """

    def __init__(self):
        super().__init__({"events": In(PmuEvents), "cmd_mask": In(1), "addr": In(12), "wdata": In(32), "we": In(1),
                          "rdata": Out(32), "irq": Out(1)})

    def elaborate(self, platform):
        m = Module()
        n = NUM_EVENT_COUNTERS
        cnt_en = Signal()
        mask_en = Signal()
        enables = Signal(32)
        overflow = Signal(32)
        int_en = Signal(32)
        cycle_cfg = Signal(32)
        axi_chan = Signal(32)
        ccnt = Signal(CYCLE_BITS)
        evcnt = [Signal(32, name=f"evcnt{i}") for i in range(n)]
        evtype = [Signal(10, name=f"evtype{i}") for i in range(n)]
        cc_running = Signal()   # the cycle counter's start/stop state (PMCCNTR_CFG)
        counting = Signal()
        m.d.comb += [counting.eq(cnt_en & (~mask_en | self.cmd_mask)),
                     self.irq.eq((overflow & int_en).any())]

        # Event counters and the cycle counter.
        ovs_set = Signal(32)
        for i in range(n):
            hit = self._event(m, evtype[i], f"hit{i}")
            with m.If(counting & enables[i] & hit):
                m.d.sync += evcnt[i].eq(evcnt[i] + 1)
                m.d.comb += ovs_set[i].eq(evcnt[i] == 0xFFFF_FFFF)
        start_ev = self._event(m, cycle_cfg[0:10], "cc_start")
        stop_ev = self._event(m, cycle_cfg[16:26], "cc_stop")
        gated = (cycle_cfg[0:10] != 0) | (cycle_cfg[16:26] != 0)
        cc_count = Signal()
        m.d.comb += cc_count.eq(Mux(gated, (cc_running | start_ev) & ~stop_ev, 1))
        with m.If(gated):
            with m.If(stop_ev):
                m.d.sync += cc_running.eq(0)
            with m.Elif(start_ev):
                m.d.sync += cc_running.eq(1)
        with m.If(counting & enables[_CYCLE_BIT] & cc_count):
            m.d.sync += ccnt.eq(ccnt + 1)
            m.d.comb += ovs_set[_CYCLE_BIT].eq(ccnt == (1 << CYCLE_BITS) - 1)
        m.d.sync += overflow.eq(overflow | ovs_set)

        # Host reads.
        regs = {
            "PMCR": Cat(cnt_en, Const(0, 2), mask_en, Const(0, 7), Const(n, 5)),
            "PMCNTENSET": enables, "PMCNTENCLR": enables, "PMOVSSET": overflow, "PMOVSCLR": overflow,
            "PMINTSET": int_en, "PMINTCLR": int_en, "PMCCNTR_LO": ccnt[:32], "PMCCNTR_HI": ccnt[32:],
            "PMCCNTR_CFG": cycle_cfg, "PMCAXI_CHAN": axi_chan,
            **{f"PMEVCNTR{i}": evcnt[i] for i in range(n)}, **{f"PMEVTYPER{i}": evtype[i] for i in range(n)},
        }
        with m.Switch(self.addr):
            for name, value in regs.items():
                with m.Case(PMU_REGS[name]):
                    m.d.comb += self.rdata.eq(value)

        # Host writes (after the counting above, so a reset or a write wins over an increment).
        w = self.wdata
        valid_bits = Const((1 << n) - 1 | 1 << _CYCLE_BIT, 32)
        with m.If(self.we):
            with m.Switch(self.addr):
                with m.Case(PMU_REGS["PMCR"]):
                    m.d.sync += [cnt_en.eq(w[0]), mask_en.eq(w[3])]
                    with m.If(w[1]):
                        m.d.sync += [c.eq(0) for c in evcnt]
                    with m.If(w[2]):
                        m.d.sync += [ccnt.eq(0), cc_running.eq(0)]
                with m.Case(PMU_REGS["PMCNTENSET"]):
                    m.d.sync += enables.eq(enables | (w & valid_bits))
                with m.Case(PMU_REGS["PMCNTENCLR"]):
                    m.d.sync += enables.eq(enables & ~w)
                with m.Case(PMU_REGS["PMOVSSET"]):
                    m.d.sync += overflow.eq(overflow | ovs_set | (w & valid_bits))
                with m.Case(PMU_REGS["PMOVSCLR"]):
                    m.d.sync += overflow.eq((overflow | ovs_set) & ~w)
                with m.Case(PMU_REGS["PMINTSET"]):
                    m.d.sync += int_en.eq(int_en | (w & valid_bits))
                with m.Case(PMU_REGS["PMINTCLR"]):
                    m.d.sync += int_en.eq(int_en & ~w)
                with m.Case(PMU_REGS["PMCCNTR_LO"]):
                    m.d.sync += ccnt[:32].eq(w)
                with m.Case(PMU_REGS["PMCCNTR_HI"]):
                    m.d.sync += ccnt[32:].eq(w[:CYCLE_BITS - 32])
                with m.Case(PMU_REGS["PMCCNTR_CFG"]):
                    m.d.sync += cycle_cfg.eq(w & 0x03FF_03FF)
                with m.Case(PMU_REGS["PMCAXI_CHAN"]):
                    m.d.sync += axi_chan.eq(w & 0x7FF)
                for i in range(n):
                    with m.Case(PMU_REGS[f"PMEVCNTR{i}"]):
                        m.d.sync += evcnt[i].eq(w)
                    with m.Case(PMU_REGS[f"PMEVTYPER{i}"]):
                        m.d.sync += evtype[i].eq(w[:10])
        return m

    def _event(self, m, etype, name):
        """Whether event number ``etype`` happens this cycle."""
        hit = Signal(name=name)
        ev = self.events
        with m.Switch(etype):
            for event, field in EVENT_SIGNALS.items():
                with m.Case(int(event)):
                    if field is None:
                        m.d.comb += hit.eq(1)
                    elif field.startswith("!"):
                        m.d.comb += hit.eq(~getattr(ev, field[1:]))
                    else:
                        m.d.comb += hit.eq(getattr(ev, field))
        return hit
