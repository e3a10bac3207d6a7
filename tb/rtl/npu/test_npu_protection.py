# amaranth: UnusedElaboratable=no
"""The NPU's protection hook: a plan over its blocks wraps the right instances, adds sm_error / sm_corrected, and a
fault in a replica is detected by a campaign on the protected NPU."""
import dataclasses

import numpy as np
import pytest
from amaranth.back import rtlil

from rtl.common.protect import Option
from rtl.npu import PRESETS, Npu
from rtl.npu.top import LOCKSTEP_UNITS, protection_paths


def test_plan_maps_blocks_to_instances_and_refuses_what_cannot_be_wrapped():
    assert protection_paths((("accumulators", "tmr"), ("dma", "dmr"), ("engine", "hardened"))) == {
        "compute.mac.acc": Option.TMR, "dma": Option.DMR}
    assert protection_paths((("ofm_writer", "dmr"),)) == {"compute.feed": Option.DMR, "compute.ofm_writer": Option.DMR}
    assert protection_paths((("*", "lockstep"),)) == dict.fromkeys(LOCKSTEP_UNITS, Option.DMR)
    assert protection_paths((("shram", "secded"), ("weight_buffer", "parity"))) == {
        "shram": Option.SECDED, "compute.wbuf": Option.PARITY}
    for plan, message in [({"mac": "dmr"}, "holds compute.mac.acc"), ({"controller": "tmr"}, "holds"),
                          ({"engine": "dmr"}, "holds"), ({"extmem": "dmr"}, "no NPU block"),
                          ({"dma": "lockstep"}, "does not apply"), ({"controller": "secded"}, "holds"),
                          ({"*": "lockstep", "dma": "dmr"}, "alone")]:
        with pytest.raises(ValueError, match=message):
            dataclasses.replace(PRESETS["u55-32"], protection=plan)


def test_hardened_npu_is_not_wrapped():
    # hardened changes no logic: no wrapper, no error ports (the MAC array's test compares the netlists)
    config = dataclasses.replace(PRESETS["u55-32"], protection={"dma": "hardened", "top": "hardened"})
    assert protection_paths(config.protection) == {}
    assert "sm_error" not in Npu(config).signature.members


def test_protected_npu_wraps_the_planned_instances():
    stub = dataclasses.replace(PRESETS["u55-32"], stub_compute=True, ext_mem_kib=4,
                               protection={"dma": "dmr", "config_regs": "tmr"})
    npu = Npu(stub)
    assert {"sm_error", "sm_corrected"} <= set(npu.signature.members)
    text = rtlil.convert(npu, name="top")
    for module in ("top.dma.protect_copy1", "top.controller.registers.protect_copy2", "top.protect_errors"):
        assert f"module \\{module}\n" in text


def test_memory_protection_codes_the_blocks_memories():
    stub = dataclasses.replace(PRESETS["u55-32"], stub_compute=True, ext_mem_kib=4, protection={"dma": "secded"})
    npu = Npu(stub)
    assert {"sm_error", "sm_corrected"} <= set(npu.signature.members)
    text = rtlil.convert(npu, name="top")
    # the DMA's read queue (64-bit words written whole): SECDED adds 7 Hamming bits and the overall parity
    assert "module \\top.dma.rdq.storage\n" in text
    dma = text.split("module \\top.dma.rdq.storage\n", 1)[1].split("\nend\n", 1)[0]
    assert "memory width 72 " in dma and "scrub_addr" in dma


@pytest.mark.slow
def test_fault_in_a_replica_of_the_protected_npu_is_detected():
    from faultinj.engine import GoldenRun
    from faultinj.outcomes import Outcome
    from faultinj.workload import make_workload
    from sim.build import build

    # the plan BENCHMARKS.md verifies (its build is shared)
    config = dataclasses.replace(PRESETS["u55-32"], protection={"ifm_stager": "dmr", "issue": "hardened",
                                                                 "top": "hardened"})
    result = build("npu", config)
    wl = make_workload("npu_conv", config)
    golden = GoldenRun(result, wl)
    try:
        blocks = np.array([e.block for e in result.state])
        replicas = [i for i, e in enumerate(result.state) if "protect_copy1" in e.var]
        assert replicas and set(blocks[replicas]) == {"ifm_stager"}
        rng = np.random.default_rng(0)
        offsets = golden.sim.site_offsets
        sites = [offsets[i] + int(rng.integers(result.state[i].bits)) for i in rng.choice(replicas, 400)]
        cycles = rng.integers(0, wl.cycles, len(sites))
        outcomes = [Outcome(o) for o in golden.inject(sites, cycles)[0]]
        # a replica never drives the NPU: its faults are masked, latent or detected, never SDC
        assert Outcome.SDC not in outcomes and Outcome.DETECTED_UNRECOVERABLE in outcomes
    finally:
        golden.close()


@pytest.mark.slow
@pytest.mark.parametrize("option", ["parity", "secded"])
def test_memory_faults_of_a_coded_npu_are_detected_or_corrected(option):
    """Flips in the coded SHRAM and weight buffer (check bits included) never corrupt an output or stay latent
    when the run goes on for one scrub pass after the second inference (the study's campaign); the fault-free run
    raises no flag (GoldenRun refuses otherwise)."""
    from faultinj.engine import GoldenRun
    from faultinj.outcomes import Outcome
    from faultinj.study import scrub_tail
    from faultinj.workload import make_workload
    from sim.build import build

    config = dataclasses.replace(PRESETS["u55-32"], protection={"shram": option, "weight_buffer": option})
    result = build("npu", config)
    cycles = make_workload("npu_conv", config, args={"second": True}).cycles + scrub_tail("npu", config)
    wl = make_workload("npu_conv", config, cycles=cycles, args={"second": True})
    golden = GoldenRun(result, wl)
    try:
        coded = [i for i, e in enumerate(result.state) if e.kind == "mem" and e.block in ("shram", "weight_buffer")]
        assert coded
        rng = np.random.default_rng(3)
        offsets = golden.sim.site_offsets
        sites = [offsets[i] + int(rng.integers(result.state[i].bits)) for i in rng.choice(coded, 300)]
        fault_cycles = rng.integers(0, wl.fault_cycles, len(sites))
        outcomes = {Outcome(o) for o in golden.inject(sites, fault_cycles)[0]}
        assert not outcomes & {Outcome.SDC, Outcome.DELAYED, Outcome.LATENT, Outcome.HANG}, outcomes
        found = Outcome.DETECTED_UNRECOVERABLE if option == "parity" else Outcome.DETECTED_RECOVERABLE
        assert found in outcomes
    finally:
        golden.close()
