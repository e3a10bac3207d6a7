# amaranth: UnusedElaboratable=no
"""rtl.common.protect: each transform detects or corrects a flipped state bit in one copy (Amaranth simulator)."""
import dataclasses
import json

import numpy as np
import pytest
from amaranth import Module, ResetInserter
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from rtl.common.mac_array import MacArray, MacArrayConfig, MacPE
from rtl.common.protect import Option, Protected, is_copy_name, normalise_plan, protect_hierarchy
from rtl.designs import get_design

CYCLES = 24
FLIP_CYCLE = 6


def _stimulus(seed=1):
    rng = np.random.default_rng(seed)
    return {"a_in": rng.integers(-128, 128, CYCLES), "w_in": rng.integers(-128, 128, CYCLES),
            "en": np.ones(CYCLES, dtype=int), "clear": (np.arange(CYCLES) % 10 == 0).astype(int)}


def _run(dut, flip=None):
    """Drive the PE stimulus into ``dut`` (a MacPE or a wrapped one); just before the inputs of cycle
    :data:`FLIP_CYCLE` invert bit ``flip[1]`` of register ``flip[0]``. Per-cycle samples of acc and the flags."""
    stim = _stimulus()
    names = ["acc"] + [n for n in ("sm_error", "sm_corrected") if hasattr(dut, n)]
    trace = {n: [] for n in names}

    async def bench(ctx):
        for cycle in range(CYCLES):
            if flip is not None and cycle == FLIP_CYCLE:
                reg, bit = flip
                ctx.set(reg, ctx.get(reg) ^ (1 << bit))
            for name, values in stim.items():
                ctx.set(getattr(dut, name), int(values[cycle]))
            await ctx.delay(1e-9)
            for name in names:
                trace[name].append(ctx.get(getattr(dut, name)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return {k: np.array(v) for k, v in trace.items()}


def _signed(acc, width=32):
    return (acc.astype(np.int64) + (1 << (width - 1))) % (1 << width) - (1 << (width - 1))


def test_unprotected_flip_corrupts_the_output():
    golden = _run(MacPE(32))
    pe = MacPE(32)
    trace = _run(pe, flip=(pe.acc, 5))
    assert (trace["acc"] != golden["acc"]).any()


@pytest.mark.parametrize("copy", [0, 1])
def test_dmr_detects_a_flip_in_either_copy(copy):
    golden = _run(MacPE(32))
    dut = Protected(MacPE(32), "dmr")
    trace = _run(dut, flip=(dut._copies[copy].acc, 5))
    first_error = np.flatnonzero(trace["sm_error"])
    assert len(first_error) and not trace["sm_corrected"].any()
    bad = np.flatnonzero(trace["acc"] != golden["acc"])
    if copy == 1:
        assert len(bad) == 0           # the replica never drives the outputs
    else:
        assert len(bad) and first_error[0] <= bad[0]   # flagged no later than the wrong output appears


@pytest.mark.parametrize("copy", [0, 1, 2])
def test_tmr_corrects_a_flip_in_any_copy_and_flags_it(copy):
    golden = _run(MacPE(32))
    dut = Protected(MacPE(32), "tmr")
    trace = _run(dut, flip=(dut._copies[copy].acc, 9))
    assert (trace["acc"] == golden["acc"]).all()
    assert trace["sm_corrected"].any() and not trace["sm_error"].any()
    # the fault-free TMR block raises nothing and matches too
    clean = _run(Protected(MacPE(32), "tmr"))
    assert (clean["acc"] == golden["acc"]).all() and not clean["sm_corrected"].any()


def test_wrapper_keeps_the_signature_and_adds_the_flags():
    pe = MacPE(32)
    dut = Protected(pe, "dmr")
    assert dut.acc is pe.acc and dut.a_in is pe.a_in
    assert set(dut.signature.members) == set(pe.signature.members) | {"sm_error", "sm_corrected"}
    assert dut._copies[1].acc is not pe.acc
    with pytest.raises(ValueError, match="not a logic protection"):
        Protected(MacPE(32), "secded")


class _Counter(wiring.Component):
    count: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.count.eq(self.count + 1)
        return m


class _Outer(wiring.Component):
    """Two levels: ``unit.counter`` (behind ResetInserter) is protected from the top by protect_hierarchy."""

    clear: In(1)
    count: Out(8)
    sm_error: Out(1)
    sm_corrected: Out(1)

    def __init__(self, plan):
        self.plan = plan
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.unit = unit = _Unit(self.clear)
        m.d.comb += self.count.eq(unit.count)
        protect_hierarchy(m, self.plan, self.sm_error, self.sm_corrected)
        return m


class _Unit(wiring.Component):
    count: Out(8)

    def __init__(self, clear):
        self._clear = clear
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        self.counter = _Counter()
        m.submodules.counter = ResetInserter(self._clear)(self.counter)
        m.d.comb += self.count.eq(self.counter.count)
        return m


def test_protect_hierarchy_reaches_nested_instances_and_keeps_transform_controls_shared():
    dut = _Outer({"unit.counter": "tmr"})
    seen = []

    async def bench(ctx):
        for cycle in range(12):
            ctx.set(dut.clear, cycle == 5)
            await ctx.delay(1e-9)
            seen.append((ctx.get(dut.count), ctx.get(dut.sm_corrected), ctx.get(dut.sm_error)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    # every replica is reset by the shared clear (cycle 5), so they agree: the vote equals one plain counter
    assert [c for c, _, _ in seen] == [0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5]
    assert not any(f or e for _, f, e in seen)
    text = rtlil.convert(_Outer({"unit.counter": "dmr"}))
    assert "protect_copy1" in text
    with pytest.raises(ValueError, match="no instance"):
        rtlil.convert(_Outer({"unit.nothing": "dmr"}))


def test_hardened_and_none_leave_the_netlist_unchanged():
    plain = rtlil.convert(MacArray(MacArrayConfig(2, 2)))
    for plan in ({"pe_0_0": "hardened", "top": "hardened"}, {"pe_1_1": "none"}):
        assert rtlil.convert(MacArray(MacArrayConfig(2, 2, protection=plan))) == plain


def test_plan_in_the_config_is_normalised_and_checked():
    config = MacArrayConfig(2, 2, protection={"pe_1_0": "tmr", "pe_0_0": Option.DMR, "pe_0_1": "none"})
    assert config.protection == (("pe_0_0", "dmr"), ("pe_1_0", "tmr"))
    assert config.protected
    # a campaign stores the config as JSON and rebuilds it from lists
    again = MacArrayConfig(**json.loads(json.dumps(dataclasses.asdict(config))))
    assert again == config and hash(again) == hash(config)
    assert normalise_plan([("b", "hardened"), ("a", "none")]) == (("b", "hardened"),)
    for bad, message in [({"pe_0_0": "quad"}, "unknown protection option"), ({"pe_9_0": "dmr"}, "no protectable"),
                         ({"pe_0_0": "secded"}, "does not apply"), ({"*": "lockstep", "pe_0_0": "dmr"}, "alone"),
                         ({"top": "dmr"}, "no protectable")]:
        with pytest.raises(ValueError, match=message):
            MacArrayConfig(2, 2, protection=bad)


def test_block_map_skips_the_copies():
    design = get_design("mac_array")
    assert is_copy_name("protect_copy12") and not is_copy_name("protect_copy")
    assert design.block_of("pe_0_1.protect_copy1.acc") == "pe_0_1"
    assert design.block_of("protect_copy1.pe_0_1.acc") == "pe_0_1"
    assert design.block_of("protect_copy0.readout") == "top"
    npu = get_design("npu")
    assert npu.block_of("compute.mac.acc.protect_copy2.acc_3") == "accumulators"


