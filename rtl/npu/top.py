"""``Npu``: simulation top of the rampart Ethos-U55-compatible NPU (design ``npu``).

Block diagram::

                 host ports (cmd_base/len, basep[8], start -> busy/done/error/error_code/counters)
                        |
                 +------v-------+  compute.kick (KernelOp stream)  +--------------------+
                 |  Controller  |--------------------------------->|  Compute           |
                 | fetch+decode |<---------------------------------|  (rtl.npu.compute) |
                 |  reg file    |  compute.done / compute.error    +--+------+------+---+
                 +--+--------+--+                                   |      |      |
            fetch   |        | DMA descriptor (DMA0_* registers)    | OFM  | rec. | IFM
                    |    +---v---+  SHRAM write port   +---------+  |writes| +wts | stager
                    |    |  Dma  |-------------------->|  SHRAM  |  |      | reads| reads
                    |    +---+---+                     +---------+  |      |      |
                    |        | reads + writes                       |      |      |
                 +--v--------v------------------------------------v------v------v--+
                 |   Arbiter: priority DMA > OFM > records/weights > IFM > fetch,  |
                 |   a compute port the engine waits for first (urgent); its owner |
                 |   FIFO (one entry per accepted read) routes the in-order        |
                 |   responses (rtl.npu.arbiter)                                   |
                 +------+----------------------------------------------------------+
                        |
                 +------v-------+
                 |    ExtMem    |  64-bit words, latency / bandwidth from NpuConfig (simulation model)
                 +--------------+

The compute unit (:class:`rtl.npu.compute.Compute`: weight decoder -> brick RAM, IFM stager -> line buffer, MAC
block -> output unit -> OFM writer, on three memory ports; two kernel ops in flight, the next one's weights loading
while the current one computes) executes CONV / DEPTHWISE kicks from external memory, and its vector unit
(:mod:`rtl.npu.vector_unit`, a fourth memory port and the SHRAM's lookup-table read port) the POOL / ELEMENTWISE kicks;
``compute_error`` holds its
:class:`~rtl.npu.compute.ComputeError` cause after a ``COMPUTE_FAULT``. With ``NpuConfig.stub_compute`` the NPU is
built with ``StubCompute`` instead, a documented test double (used by the controller tests): it accepts one kick at
a time, pulses ``compute.done`` ``stub_compute_cycles`` cycles later, writes nothing and latches the kick on
``last_kick``.

Host use (what a driver would do; :mod:`tb.rtl.npu.test_controller` does it through ``NativeSim``): load the
command stream (the driver payload without its 32-byte COP1 header), ``weight_data`` and the inputs into external
memory via ``load_memory`` on ``top.extmem.storage``; set ``basep[n]`` to each region's byte address, ``cmd_base``
to the stream's address and ``cmd_len`` to its length in bytes; pulse ``start``; run until ``done``.
"""
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from rtl.common.protect import LOGIC_OPTIONS, MEMORY_OPTIONS, Option, has_error_ports, protect_hierarchy
from rtl.npu.arbiter import Arbiter
from rtl.npu.compute import Compute
from rtl.npu.config import EXT_WORD_BYTES, NpuConfig
from rtl.npu.controller import ComputeSignature, Controller, KernelOp
from rtl.npu.dma import NUM_REGIONS, Dma
from rtl.npu.extmem import ADDR_WIDTH, WORD_BITS, ExtMem, HostStorageSignature
from rtl.npu.pmu import Pmu
from rtl.npu.shram import Shram

__all__ = ["BLOCK_MAP", "StubCompute", "Npu", "protection_paths", "LOCKSTEP_UNITS"]

#: The NPU's functional blocks for fault injection: a dotted hierarchical prefix of a state element's flat name
#: (``sim.netlist.StateElement.var``, e.g. ``compute.mac.acc.acc_3``, or ``shram.storage``) -> block name. An element
#: belongs to the block of the longest key ``k`` with ``var == k`` or ``var.startswith(k + ".")``; one no key
#: matches belongs to its first-level instance (or ``top``: the ``cycles`` / ``dma_cycles`` counters). ``extmem`` is
#: simulation scaffolding (the memory model), never sampled. The MAC array's multipliers are combinational, so the
#: ``mac`` block's state is its operand registers (``compute.operands``); the accumulators and the result register
#: they hand over are ``accumulators``.
BLOCK_MAP: dict[str, str] = {
    "controller": "controller",                     # command fetch queue, decode FSM, wait/kick bookkeeping
    "controller.registers": "config_regs",          # the register file written by NPU_SET_* commands
    "dma": "dma",
    "shram": "shram",                               # shared buffer (DMA destination) and its debug read register
    "arbiter": "arbiter",                           # external-memory arbiter with its owner FIFO
    "extmem": "extmem",
    "compute": "engine",                            # the running op's register snapshot and the engine FSM
    "compute.loader": "op_loader",                  # kick check, records, op hand-over, slot status, byte reader
    "compute.loader.decoder": "weight_decoder",
    "compute.wbuf": "weight_buffer",                # brick ring RAM and its pointers
    "compute.stager": "ifm_stager",                 # IFM line buffer and its fetcher
    "compute.issue": "issue",                       # loop-nest sequencer
    "compute.operands": "mac",
    "compute.mac": "mac",
    "compute.mac.acc": "accumulators",
    "compute.out": "output_unit",
    "compute.act_table": "output_unit",             # the output path's copy of the SHRAM's activation tables
    "compute.feed": "ofm_writer",                   # micro-block queue, position stepping, OFM addresses
    "compute.ofm_writer": "ofm_writer",             # address FIFO and the write path to external memory
    "compute.vector": "vector_unit",                # POOL / ELEMENTWISE op FSM and its register snapshot
    "compute.vector.walker": "vector_walker",       # OFM element / kernel tap walk, IFM read issue, tap queue
    "compute.vector.reducer": "vector_reducer",     # max / sum reduction of each element's taps
    "compute.vector.results": "vector_reducer",     # reduced elements waiting for the output stage
    "compute.vector.alu": "vector_alu",             # elementwise operation (ADD/SUB rescale, MUL, MIN, MAX, ABS)
    "compute.vector.out": "vector_output",          # reciprocal divide, OFM scale, rounding, zero point, clamp, LUT
    "compute.vector.writer": "vector_writer",       # OFM element addresses and byte writes
    "pmu": "pmu",                                   # performance counters and their configuration
}


#: The chip's first-level units: the plan ``{"*": "lockstep"}`` duplicates each and compares it at its ports.
LOCKSTEP_UNITS = ("controller", "dma", "compute", "shram", "arbiter")


def protection_paths(plan) -> dict[str, Option]:
    """A protection plan over blocks (``NpuConfig.protection``) as instance paths for
    :func:`rtl.common.protect.protect_hierarchy`. A block can be wrapped (``dmr``, ``tmr``) or have its memories
    coded (``parity``, ``secded``) only where no other block sits inside its instances (``hardened`` and ``none``
    apply to any block: they change no logic). Raises ValueError."""
    paths = {}
    for block, option in plan:
        option = Option(option)
        if block == "*":
            if option is not Option.LOCKSTEP or len(plan) > 1:
                raise ValueError("'*' takes only 'lockstep', alone in the plan")
            return dict.fromkeys(LOCKSTEP_UNITS, Option.DMR)
        instances = [k for k, v in BLOCK_MAP.items() if v == block]
        if block not in BLOCK_MAP.values() and block != "top" or block == "extmem":
            raise ValueError(f"no NPU block {block!r} to protect")
        if option not in LOGIC_OPTIONS + MEMORY_OPTIONS:
            raise ValueError(f"block {block}: option {option.value!r} does not apply to NPU blocks")
        if option in (Option.NONE, Option.HARDENED):
            continue
        nested = [k for k in BLOCK_MAP for p in instances if k.startswith(p + ".")]
        if block == "top" or nested:
            raise ValueError(f"block {block} cannot be wrapped ({'it holds ' + nested[0] if nested else 'top'}); "
                             "protect the blocks inside it")
        paths.update(dict.fromkeys(instances, option))
    return paths


class StubCompute(wiring.Component):
    """TEST DOUBLE for the compute datapath: completes every kernel op after ``cycles`` cycles, one at a time.

    Members
    -------
    port : ``In(ComputeSignature)``
    last_kick : ``Out(KernelOp)``
        The payload of the most recently accepted kick.
    """

    def __init__(self, *, cycles: int):
        self.cycles = cycles
        super().__init__({"port": In(ComputeSignature), "last_kick": Out(KernelOp)})

    def elaborate(self, platform):
        m = Module()
        remaining = Signal(range(self.cycles + 1))
        kick = self.port.kick
        m.d.comb += [kick.ready.eq(remaining == 0), self.port.done.eq(remaining == 1), self.port.error.eq(0)]
        with m.If(kick.valid & kick.ready):
            m.d.sync += [remaining.eq(self.cycles), self.last_kick.eq(kick.payload)]
        with m.Elif(remaining != 0):
            m.d.sync += remaining.eq(remaining - 1)
        return m


class Npu(wiring.Component):
    """The NPU with its external memory model (see the module docstring).

    Members (host ports)
    --------------------
    cmd_base, cmd_len : ``In(32)``   command stream byte address (QBASE) and length (QSIZE)
    basep : ``In(32).array(8)``      region base pointers BASEP0..7 (Verilog ports ``basep__0`` ..)
    start : ``In(1)``                pulse
    busy, done, error : ``Out(1)``; error_code : ``Out(8)`` (``ErrorCode``); error_offset : ``Out(32)``
    cycles : ``Out(32)``             cycles the last/current run has been busy (cleared by ``start``)
    dma_cycles : ``Out(32)``         cycles the DMA was busy in that run
    kernel_count, dma_count : ``Out(16)``
    ext_fault : ``Out(1)``           the memory model saw an out-of-range request (sticky)
    shram_raddr / shram_rdata        debug read port of the shared buffer (one cycle latency)
    last_kick : ``Out(KernelOp)``    the last kernel op's payload (``param`` only from the test double)
    compute_error : ``Out(3)``       :class:`~rtl.npu.compute.ComputeError` of the last failed kernel op
    hostmem : ``Out(HostStorageSignature)``  only with ``config.ext_host_memory``: the external memory's words are
                                     kept by the harness (``sim.harness.HOST_MEMORY_PORTS``), not in ``extmem.storage``
    pmu_addr : ``In(12)``; pmu_wdata : ``In(32)``; pmu_we : ``In(1)``; pmu_rdata : ``Out(32)``; pmu_irq : ``Out(1)``
                                     the PMU's registers (:mod:`rtl.npu.pmu`; byte offsets 0x180-0x38C, reads
                                     combinational, a write at the clock edge)
    sm_error, sm_corrected : ``Out(1)``  only with a protection plan that wraps a block (``NpuConfig.protection``):
                                     a DMR comparator saw a mismatch / a TMR voter outvoted a copy (this cycle)
    """

    def __init__(self, config: NpuConfig):
        if not isinstance(config, NpuConfig):
            raise TypeError(f"config must be an NpuConfig, not {config!r}")
        self.config = config
        self.shram_depth = config.shram_bytes // EXT_WORD_BYTES
        members = {
            "cmd_base": In(ADDR_WIDTH), "cmd_len": In(ADDR_WIDTH),
            "basep": In(ADDR_WIDTH).array(NUM_REGIONS), "start": In(1),
            "busy": Out(1), "done": Out(1), "error": Out(1), "error_code": Out(8), "error_offset": Out(ADDR_WIDTH),
            "cycles": Out(32), "dma_cycles": Out(32), "kernel_count": Out(16), "dma_count": Out(16),
            "ext_fault": Out(1),
            "shram_raddr": In(range(self.shram_depth)), "shram_rdata": Out(WORD_BITS),
            "last_kick": Out(KernelOp), "compute_error": Out(3),
            "pmu_addr": In(12), "pmu_wdata": In(32), "pmu_we": In(1), "pmu_rdata": Out(32), "pmu_irq": Out(1),
            **({"sm_error": Out(1), "sm_corrected": Out(1)} if has_error_ports(config.protection) else {}),
        }
        if config.ext_host_memory:   # the external memory's words, kept by the harness (sim.harness)
            members["hostmem"] = Out(HostStorageSignature(config.ext_mem_bytes // EXT_WORD_BYTES))
        super().__init__(members)

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        queue_depth = cfg.ext_latency + 3   # issue-to-free round trip: one read per cycle
        m.submodules.extmem = extmem = ExtMem(size=cfg.ext_mem_bytes, latency=cfg.ext_latency,
                                              bandwidth=cfg.ext_bandwidth, host_storage=cfg.ext_host_memory)
        if cfg.ext_host_memory:
            connect(m, flipped(self.hostmem), extmem.host)
        m.submodules.controller = ctrl = Controller(mem_size=cfg.ext_mem_bytes, queue_depth=queue_depth,
                                                    max_kernels=cfg.max_outstanding_kernels)
        m.submodules.dma = dma = Dma(ext_size=cfg.ext_mem_bytes, shram_size=cfg.shram_bytes, queue_depth=queue_depth)
        if cfg.stub_compute:
            m.submodules.compute = compute = StubCompute(cycles=cfg.stub_compute_cycles)
        else:
            m.submodules.compute = compute = Compute(cfg)
            for i in range(NUM_REGIONS):
                m.d.comb += compute.basep[i].eq(self.basep[i])
            m.d.comb += self.compute_error.eq(compute.error_code)
        m.submodules.shram = shram = Shram(depth=self.shram_depth)
        self.shram_data = shram.data
        if not cfg.stub_compute:
            m.d.comb += [shram.lut_raddr.eq(compute.lut_raddr), compute.lut_rdata.eq(shram.lut_rdata),
                         *(getattr(compute.lut_write, f).eq(getattr(dma.shram, f)) for f in ("addr", "data", "en"))]

        # Host side.
        m.d.comb += [
            ctrl.cmd_base.eq(self.cmd_base), ctrl.cmd_len.eq(self.cmd_len), ctrl.start.eq(self.start),
            self.busy.eq(ctrl.busy), self.done.eq(ctrl.done), self.error.eq(ctrl.error),
            self.error_code.eq(ctrl.error_code), self.error_offset.eq(ctrl.error_offset),
            self.kernel_count.eq(ctrl.kernel_count), self.dma_count.eq(ctrl.dma_count),
            self.ext_fault.eq(extmem.fault), self.last_kick.eq(compute.last_kick),
        ]
        with m.If(self.start):
            m.d.sync += [self.cycles.eq(0), self.dma_cycles.eq(0)]
        with m.Else():
            with m.If(ctrl.busy):
                m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(dma.busy):
                m.d.sync += self.dma_cycles.eq(self.dma_cycles + 1)
        for i in range(NUM_REGIONS):
            m.d.comb += dma.basep[i].eq(self.basep[i])

        # Controller <-> DMA and compute.
        connect(m, ctrl.compute, compute.port)
        m.d.comb += [
            dma.desc.valid.eq(ctrl.dma.desc.valid), dma.desc.payload.eq(ctrl.dma.desc.payload),
            ctrl.dma.desc.ready.eq(dma.desc.ready), ctrl.dma.desc_error.eq(dma.desc_error),
            ctrl.dma.busy.eq(dma.busy), ctrl.dma.fault.eq(dma.fault),
        ]

        # DMA -> SHRAM; debug read port.
        connect(m, dma.shram, shram.write)
        m.d.comb += [shram.raddr.eq(self.shram_raddr), self.shram_rdata.eq(shram.rdata)]

        # Arbiter: priority DMA > compute (OFM writes > records/weights > IFM stager > vector unit) > command fetch,
        # except that a compute port the engine is waiting for goes first (Compute's ``*_urgent``): a DMA or a
        # read-ahead for the next op never holds up the op that is running.
        if cfg.stub_compute:
            requesters = [dma.bus, ctrl.bus]
        else:
            requesters = [dma.bus, compute.ofm_bus, compute.bus, compute.ifm_bus, compute.vec_bus, ctrl.bus]
        m.submodules.arbiter = arbiter = Arbiter(requesters=len(requesters), queue_depth=extmem.queue_depth + 1)
        for n, bus in enumerate(requesters):
            connect(m, bus, getattr(arbiter, f"req_{n}"))
        if not cfg.stub_compute:   # a compute port goes first while the engine waits for what it reads
            for bus, urgent in ((compute.bus, compute.bus_urgent), (compute.ifm_bus, compute.ifm_urgent),
                                (compute.ofm_bus, compute.ofm_urgent)):
                m.d.comb += arbiter.urgent[requesters.index(bus)].eq(urgent)
        connect(m, arbiter.mem, extmem.bus)

        # PMU: events from the controller, the compute unit and the memory port.
        m.submodules.pmu = pmu = Pmu()
        mem = extmem.bus
        if not cfg.stub_compute:
            m.d.comb += pmu.events.eq(compute.pmu_events)
        m.d.comb += [
            pmu.events.npu_active.eq(ctrl.busy),
            pmu.events.blockdep.eq(ctrl.compute.kick.valid & ~ctrl.compute.kick.ready),
            pmu.events.rd_accept.eq(mem.req.valid & mem.req.ready & ~mem.req.payload.write),
            pmu.events.rd_beat.eq(mem.resp.valid),
            pmu.events.wr_beat.eq(mem.req.valid & mem.req.ready & mem.req.payload.write),
            pmu.cmd_mask.eq(ctrl.pmu_mask),
            pmu.addr.eq(self.pmu_addr), pmu.wdata.eq(self.pmu_wdata), pmu.we.eq(self.pmu_we),
            self.pmu_rdata.eq(pmu.rdata), self.pmu_irq.eq(pmu.irq),
        ]

        if has_error_ports(cfg.protection):   # the protection plan's one hook (rtl/common/protect)
            protect_hierarchy(m, protection_paths(cfg.protection), self.sm_error, self.sm_corrected)
        return m
