"""Fault injection on the PulseDL-II SoC's core (workload ``rv32_program``, design ``pulsedl``).

Checked: the fault-free run leaves in the observed region what qemu-riscv32 computes for the same ELF; directed
faults classify as expected; the fast engine agrees with the plain reference path on a sample."""
import numpy as np
import pytest

from faultinj.engine import ReferenceRun, golden_run
from faultinj.outcomes import Outcome
from faultinj.plan import fault_plan
from faultinj.workload import make_workload
from models.rv32.toolchain import PICOLIBC_SPECS, missing_tools

CONFIG = "16k"
pytestmark = pytest.mark.skipif(bool(missing_tools()) or not PICOLIBC_SPECS.exists(),
                                reason="RISC-V cross toolchain / qemu-user missing (install with `make sysdeps`)")


@pytest.fixture(scope="module")
def core():
    from sim.build import build

    return build("pulsedl", CONFIG)


@pytest.fixture(scope="module")
def workload():
    return make_workload("rv32_program", CONFIG, seed=3)


@pytest.fixture(scope="module")
def golden(core, workload):
    return golden_run(core, workload)


def test_golden_region_is_qemus(core, workload, tmp_path):
    from models.rv32.random_program import random_program
    from models.rv32.toolchain import assemble, run_qemu
    from rtl.pulsedl.config import DMEM_BASE, IMEM_BASE
    from sim.harness import NativeSim

    elf = assemble({"p.S": random_program(3, workload.params["length"]).source}, IMEM_BASE, DMEM_BASE,
                   tmp_path / "p.elf")
    with NativeSim(core) as sim:
        for element, first, values in workload.memory:
            sim.load_memory(sim.element_index(element), values, first)
        trace = sim.run_stimulus(workload.inputs, ["halted", "trap"])
        (element, first, count), = workload.regions
        region = sim.read_memory(sim.element_index(element), first, count).astype("<u4").tobytes()
    assert trace["halted"][-1, 0] and not trace["trap"].any()
    assert region == run_qemu(elf)


def test_directed_faults_classify(core, workload, golden):
    """A dump word flipped at cycle 0 is overwritten by the epilogue (masked); the halting ECALL's opcode bit 0
    cleared makes it illegal (a trap: detected); the timer, never read, keeps its flip (latent); a data word the
    program never stores to, flipped at the end of the run, is read out (SDC)."""
    sim = golden.sim
    imem = next(v for e, _, v in workload.memory if e == "top.imem.storage")
    dmem_init = next(v for e, _, v in workload.memory if e == "top.dmem.storage")
    ecall = int(np.flatnonzero(imem == 0x73)[0])
    final = sim.read_memory(sim.element_index("top.dmem.storage"), 0, 64)
    untouched = int(np.flatnonzero(final == dmem_init[:64])[0])
    last = workload.params["halt_cycle"] - 1
    cases = [
        (sim.site_index("top.dmem.storage", 64 + 4, 7), 0, Outcome.MASKED),
        (sim.site_index("top.imem.storage", ecall, 0), 0, Outcome.DETECTED_UNRECOVERABLE),
        (sim.site_index("top.timer.count", 0, 40), 5, Outcome.LATENT),
        (sim.site_index("top.dmem.storage", untouched, 2), last, Outcome.SDC),
    ]
    got, _ = golden.inject(np.array([c[0] for c in cases]), np.array([c[1] for c in cases]))
    assert [Outcome(g) for g in got] == [c[2] for c in cases]


def test_fast_engine_equals_reference(core, workload, golden):
    plan = fault_plan(core, workload.cycles, 60, seed=5, strata="none")
    fast, _ = golden.inject(plan.sites, plan.cycles)
    reference = ReferenceRun(core, workload)
    ref = [reference.outcome(int(s), int(c)) for s, c in zip(plan.sites, plan.cycles, strict=True)]
    assert [Outcome(f) for f in fast] == ref
    counts = np.bincount(fast, minlength=len(Outcome))
    print("\nrv32_program outcome mix (60 uniform):", {o.name: int(counts[o]) for o in Outcome if counts[o]})
