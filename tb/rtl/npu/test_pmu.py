# amaranth: UnusedElaboratable=no
"""NPU PMU: register map and event numbers against Vela's ``ethos_u55_regs``, the counter semantics in pysim, and
the counters of a real run against the driver's per-layer accounting and the loop-nest arithmetic."""
import math

import numpy as np
import pytest
from ethosu.vela.ethos_u55_regs import ethos_u55_regs as regs

from drivers.npu import DEFAULT_CHUNK, PMU_EVENTS, run_on_npu
from models.npu import cmdstream as cs
from models.npu import vela
from models.npu.reference import ReferenceModel
from models.npu.tflite_builder import Conv2D, DepthwiseConv2D, ModelSpec, build_model
from rtl.common.stream import simulate
from rtl.npu.config import PRESETS
from rtl.npu.pmu import EVENT_SIGNALS, NUM_EVENT_COUNTERS, PMU_REGS, Pmu, PmuEvent


def test_register_map_and_events_are_vela_s():
    for name, offset in PMU_REGS.items():
        assert regs.PMU[name].value == offset, name
    for event in PmuEvent:
        assert regs.pmu_event_type[event.name].value == event.value, event.name
    assert set(EVENT_SIGNALS) == set(PmuEvent) - {PmuEvent.NO_EVENT}
    assert NUM_EVENT_COUNTERS == 4 and all(e in PmuEvent.__members__ for e in PMU_EVENTS)


def test_pmu_counting_pysim():
    dut = Pmu()
    seen = {}

    async def bench(ctx):
        async def write(reg, value):
            ctx.set(dut.addr, PMU_REGS[reg])
            ctx.set(dut.wdata, value)
            ctx.set(dut.we, 1)
            await ctx.tick()
            ctx.set(dut.we, 0)

        def read(reg):
            ctx.set(dut.addr, PMU_REGS[reg])
            return ctx.get(dut.rdata)

        assert read("PMCR") == 4 << 11                      # num_event_cnt
        await write("PMEVTYPER0", PmuEvent.MAC_ACTIVE)
        await write("PMEVTYPER1", PmuEvent.CYCLE)
        await write("PMEVTYPER2", PmuEvent.NPU_IDLE)
        await write("PMEVTYPER3", PmuEvent.AXI0_WR_DATA_BEAT_WRITTEN)
        await write("PMCNTENSET", 0b0111 | 1 << 31)           # counter 3 stays disabled
        await write("PMCR", 0b111)
        # 10 cycles: MAC active on even cycles, NPU active on the last 4, a write beat every cycle
        for c in range(10):
            ctx.set(dut.events.mac_active, c % 2 == 0)
            ctx.set(dut.events.npu_active, c >= 6)
            ctx.set(dut.events.wr_beat, 1)
            await ctx.tick()
        ctx.set(dut.events.mac_active, 0)
        await write("PMCR", 0)                              # stop counting (from the cycle after this write)
        seen["run"] = [read(f"PMEVCNTR{i}") for i in range(4)] + [read("PMCCNTR_LO")]
        # cycle counter gated by NPU_ACTIVE / NPU_IDLE; mask_en with the command stream's PMU_MASK
        await write("PMCCNTR_CFG", PmuEvent.NPU_ACTIVE | PmuEvent.NPU_IDLE << 16)
        await write("PMCR", 0b1111)
        for c in range(12):
            ctx.set(dut.events.npu_active, 3 <= c < 8)
            ctx.set(dut.cmd_mask, c < 6)
            await ctx.tick()
        seen["gated"] = read("PMCCNTR_LO")
        await write("PMEVCNTR0", 0xFFFF_FFFF)
        await write("PMINTSET", 1)
        await write("PMCR", 0b0001)
        ctx.set(dut.cmd_mask, 1)
        ctx.set(dut.events.mac_active, 1)
        await ctx.tick()
        ctx.set(dut.events.mac_active, 0)
        seen["wrap"] = (read("PMEVCNTR0"), read("PMOVSSET"), ctx.get(dut.irq))
        await write("PMOVSCLR", 1)
        seen["cleared"] = (read("PMOVSSET"), ctx.get(dut.irq))

    simulate(dut, bench, max_cycles=200)
    # 10 event cycles and the cycle of the disabling write (NPU active, MAC idle); counter 3 is disabled
    assert seen["run"] == [5, 11, 6, 0, 11]
    # active cycles 3..7 while the mask is on (cycles < 6): 3, 4, 5
    assert seen["gated"] == 3
    assert seen["wrap"] == (0, 1, 1)
    assert seen["cleared"] == (0, 0)


def _mac_beats(kick: cs.Kick, cfg) -> int:
    """MAC beats of one kernel op from its registers: every OFM ublock x micro-block x kernel element x IFM ublock
    (depthwise / pooling: one per kernel element)."""
    o, i = kick.reg("OFM_DEPTH_M1") + 1, kick.reg("IFM_DEPTH_M1") + 1
    oh, ow = kick.reg("OFM_HEIGHT_M1") + 1, kick.reg("OFM_WIDTH_M1") + 1
    kh, kw = kick.reg("KERNEL_HEIGHT_M1") + 1, kick.reg("KERNEL_WIDTH_M1") + 1
    per_element = 1 if kick.name in ("NPU_OP_DEPTHWISE", "NPU_OP_POOL") else math.ceil(i / 8)
    return (math.ceil(o / cfg.ublock_d) * math.ceil(oh / cfg.ublock_h) * math.ceil(ow / cfg.ublock_w) * kh * kw
            * per_element)


#: Kernel ops of ResNet-8 that run on the MAC block (it has no identity POOL).
_MAC_PATH = ("NPU_OP_CONV", "NPU_OP_DEPTHWISE")


@pytest.mark.parametrize("config", ["u55-128"])
def test_counters_match_the_run(config):
    cfg = PRESETS[config]
    spec = ModelSpec((8, 8, 8), (Conv2D(16, (3, 3), (1, 1), "SAME", "RELU"), DepthwiseConv2D((3, 3), (1, 1), "SAME"),
                                 Conv2D(16, (1, 1), (1, 1), "SAME")), seed=3)
    model = build_model(spec)
    run = run_on_npu(model, config, seed=2)
    np.testing.assert_array_equal(run.output, ReferenceModel(model).run(run.input))
    # the cycle counter counts exactly the busy cycles the driver's cycle accounting adds up
    assert run.pmu["CYCLES"] == run.cycles == sum(k.cycles for k in run.kicks)
    assert len(run.layers) == 3
    for name in run.pmu:
        assert sum(layer.pmu[name] for layer in run.layers) == sum(k.pmu[name] for k in run.kicks)
    assert sum(layer.pmu["CYCLES"] for layer in run.layers) == sum(layer.cycles for layer in run.layers)
    # MAC_ACTIVE is the loop nest's beat count, all of which fall inside the kicks' intervals
    art = vela.compile_cached(model.data, config)
    kernel = [k for k in cs.kicks(art.commands()) if k.name in cs.KERNEL_OPS]
    assert run.pmu["MAC_ACTIVE"] == sum(_mac_beats(k, cfg) for k in kernel)
    assert run.pmu["MAC_ACTIVE"] == sum(k.pmu["MAC_ACTIVE"] for k in run.kicks)
    assert run.pmu["MAC_ACTIVE"] * cfg.macs >= run.macs
    # memory beats: at least the weight streams and the command stream are read, every OFM word is written
    weights = sum(k.reg("WEIGHT_LENGTH", 0) for k in kernel)
    assert run.pmu["AXI0_RD_DATA_BEAT_RECEIVED"] >= weights // 8 + len(art.command_stream) // 2
    ofm_words = sum((k.reg("OFM_HEIGHT_M1") + 1) * (k.reg("OFM_WIDTH_M1") + 1)
                    * math.ceil((k.reg("OFM_DEPTH_M1") + 1) / cfg.ublock_d) for k in kernel)
    assert run.pmu["AXI0_WR_DATA_BEAT_WRITTEN"] >= ofm_words
    assert 0 <= run.pmu["CC_STALLED_ON_BLOCKDEP"] < run.cycles


def test_counters_match_the_layers_of_a_whole_network():
    """ResNet-8 (convs, residual ADDs, average pool, FC, the SOFTMAX's elementwise chain) on u55-128: the PMU's
    counters over the run equal the driver's per-layer accounting, layer by layer."""
    from models.npu.graph import vela_layers
    from models.npu.networks import network

    config, cfg = "u55-128", PRESETS["u55-128"]
    model = network("resnet8")
    run = run_on_npu(model.data, config, seed=1)
    assert run.ok
    art = vela.compile_cached(model.data, config)
    kernel = [k for k in cs.kicks(art.commands()) if k.name in cs.KERNEL_OPS]
    assert len(run.kicks) == len(kernel)
    # every kick in one layer, every layer paired with Vela's
    assert sorted(i for layer in run.layers for i in layer.kicks) == list(range(len(kernel)))
    assert [layer.name for layer in run.layers] == [lp.name for lp in vela_layers(art.perf)]
    # cycles: the layers add up to the run, which is the PMU's cycle counter (NPU_ACTIVE to NPU_IDLE)
    assert sum(layer.cycles for layer in run.layers) == run.cycles == run.pmu["CYCLES"]
    assert all(layer.pmu["CYCLES"] == layer.cycles for layer in run.layers)
    for name in PMU_EVENTS:
        assert sum(layer.pmu[name] for layer in run.layers) == run.pmu[name], name
    assert 0 < run.pmu["CC_STALLED_ON_BLOCKDEP"] < run.cycles
    # MAC_ACTIVE: the loop nests' beats of the MAC-path ops (pooling and elementwise ops run on the vector unit,
    # rtl/npu/compute.py); each layer's within its interval (give or take the beats of the sample chunk at either
    # end); enough beats for its useful MACs
    beats = [sum(_mac_beats(kernel[i], cfg) for i in layer.kicks if kernel[i].name in _MAC_PATH)
             for layer in run.layers]
    assert run.pmu["MAC_ACTIVE"] == sum(beats)
    diffs = {layer.name: layer.pmu["MAC_ACTIVE"] - b for layer, b in zip(run.layers, beats, strict=True)}
    assert all(abs(d) <= 2 * DEFAULT_CHUNK for d in diffs.values()), diffs
    for layer in run.layers:
        if layer.macs is not None:
            assert (layer.pmu["MAC_ACTIVE"] + 2 * DEFAULT_CHUNK) * cfg.macs >= layer.macs > 0, layer.name
    assert sum(layer.macs for layer in run.layers if layer.macs) == run.macs
    # memory: by the end of each layer, the weight streams of it and the layers before have been read (the next op's
    # weights stream in while the current one computes) and the OFM words of its convs written
    read = written = weights = ofm_words = 0
    for layer in run.layers:
        read += layer.pmu["AXI0_RD_DATA_BEAT_RECEIVED"]
        written += layer.pmu["AXI0_WR_DATA_BEAT_WRITTEN"]
        ks = [kernel[i] for i in layer.kicks if kernel[i].name in _MAC_PATH]
        weights += sum(k.reg("WEIGHT_LENGTH", 0) for k in ks)
        ofm_words += sum((k.reg("OFM_HEIGHT_M1") + 1) * (k.reg("OFM_WIDTH_M1") + 1)
                         * math.ceil((k.reg("OFM_DEPTH_M1") + 1) / cfg.ublock_d) for k in ks)
        assert read >= weights // 8 and written >= ofm_words, layer.name
    # NPU_ACTIVE counts the cycle counter's cycles; MAC stalls and weight-decoder beats stay inside them
    other = ("NPU_ACTIVE", "MAC_STALLED_BY_WD", "MAC_STALLED_BY_IB", "WD_ACTIVE")
    again = run_on_npu(model.data, config, seed=1, pmu_events=other)
    assert again.cycles == run.cycles and again.pmu["NPU_ACTIVE"] == again.pmu["CYCLES"] == run.cycles
    assert all(again.pmu[e] < run.cycles for e in other[1:])
    assert all(np.array_equal(a, b) for a, b in zip(again.outputs, run.outputs, strict=True))
