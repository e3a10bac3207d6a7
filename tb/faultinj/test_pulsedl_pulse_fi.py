"""Fault injection on the PulseDL-II SoC running pulses (workload ``pulse_batch``, design ``pulsedl``).

Checked: the fault-free run leaves in the observed region and prints over the UART what LiteRT's reference kernels
compute for the same windows; a flipped multiplier of the time output is a significant SDC, a flipped result word
after it was printed an SDC the judge calls insignificant; the fast engine agrees with the plain reference path on a
sample; a small CLI campaign records the judge's flag on its SDC rows."""
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
    return make_workload("pulse_batch", CONFIG)


@pytest.fixture(scope="module")
def golden(core, workload):
    return golden_run(core, workload)


def test_golden_outputs_are_litert(core, workload):
    from faultinj.workloads.pulsedl import PULSE_SNR_DB, _printed_outputs, _uart_text
    from models.pulse.export import load_model, run_litert
    from models.pulse.frontend import generate
    from models.pulse.resolution import MODEL
    from sim.harness import NativeSim

    model = load_model(MODEL)
    want = run_litert(model, model.quantise(generate(workload.params["pulses"], PULSE_SNR_DB,
                                                     workload.params["seed"]).samples))
    with NativeSim(core) as sim:
        for element, first, values in workload.memory:
            sim.load_memory(sim.element_index(element), values, first)
        trace = sim.run_stimulus(workload.inputs, ["halted", "trap"])
        (element, first, count), = workload.regions
        region = sim.read_memory(sim.element_index(element), first, count).astype(np.uint32).view(np.int32)
    assert trace["halted"][-1, 0] and not trace["trap"].any()
    assert region.reshape(want.shape).tolist() == np.asarray(want, np.int64).tolist()
    printed = _printed_outputs(workload, _uart_text(workload, core, None, 0, 0))
    assert printed.astype(np.int64).tolist() == np.asarray(want, np.int64).tolist()


def test_directed_faults_and_judge(core, workload, golden):
    """Bit 29 of the time output's requantisation multiplier flipped before the run moves every pulse's time far
    beyond one CRLB sigma (SDC, significant); the last result word flipped after the firmware printed it differs in
    the region (SDC) but not in the printed values (not significant)."""
    from faultinj.workloads.pulsedl import _pulse_net, pulse_error

    sim = golden.sim
    _, net = _pulse_net()
    (_, first, count), = workload.regions
    mult = sim.site_index("top.accel.quant.mult_table.storage", net.layers[-1].quant_base, 29)
    result = sim.site_index("top.dmem.storage", first + count - 1, 0)
    sites, cycles = np.array([mult, result]), np.array([0, workload.params["halt_cycle"] - 1])
    outcomes, _, _, flags = golden.inject_ex(sites, cycles)
    assert [Outcome(o) for o in outcomes] == [Outcome.SDC, Outcome.SDC]
    assert flags.tolist() == [1, 0]
    big = pulse_error(workload, core, mult, 0)
    assert big["significant"] and big["time_samples"] > 10 * workload.params["tolerance"]["time_samples"]
    small = pulse_error(workload, core, result, workload.params["halt_cycle"] - 1)
    assert not small["significant"] and small["time_samples"] == small["energy_relative"] == 0.0


def test_fast_engine_equals_reference(core, workload, golden):
    """Two faults in each of the 16 blocks (CPU, register file, bus, AU / PE / NN units, buffers, memories...)."""
    plan = fault_plan(core, workload.cycles, 32, seed=5, min_per_stratum=2)
    assert len(set(plan.block_ids.tolist())) == 16
    fast, _ = golden.inject(plan.sites, plan.cycles)
    reference = ReferenceRun(core, workload)
    ref = [reference.outcome(int(s), int(c)) for s, c in zip(plan.sites, plan.cycles, strict=True)]
    assert [Outcome(f) for f in fast] == ref
    counts = np.bincount(fast, minlength=len(Outcome))
    print("\npulse_batch outcome mix (2 per block):", {o.name: int(counts[o]) for o in Outcome if counts[o]})


def test_cli_campaign(tmp_path):
    """`rampart fi run pulsedl -w pulse_batch -n 20`: runs whole; SDC rows carry the judge's 0/1, others 0."""
    import sqlite3

    from click.testing import CliRunner

    from rampart.cli import main

    db = tmp_path / "p.db"
    run = CliRunner().invoke(main, ["fi", "run", "pulsedl", "-w", "pulse_batch", "-n", "20", "--workers", "1",
                                    "--db", str(db)])
    assert run.exit_code == 0, run.output
    assert "20 of 20 injections" in run.output
    rows = sqlite3.connect(db).execute("SELECT outcome, top1 FROM injections").fetchall()
    assert len(rows) == 20
    assert all(t in (0, 1) for o, t in rows if o == Outcome.SDC)
    assert all(t == 0 for o, t in rows if o != Outcome.SDC)
