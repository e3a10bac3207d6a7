"""The native harness, cocotb+Verilator, cocotb+Icarus and Amaranth's simulator give identical port traces."""
import numpy as np
import pytest

from rtl.designs import get_design
from sim.build import build
from sim.cocotb_glue import run_cocotb
from sim.crosscheck import native_trace, pysim_trace, random_stimulus
from sim.harness import NativeSim

DESIGN, CONFIG, CYCLES, SEED = "mac_array", "4x4", 2000, 7


@pytest.fixture(scope="module")
def setup():
    result = build(DESIGN, CONFIG)
    stimulus = random_stimulus(result.ports, CYCLES, SEED)
    # en mostly high and clear rare, so accumulators grow and the trace exercises the whole datapath
    rng = np.random.default_rng(SEED + 1)
    stimulus["en"] = (rng.random(CYCLES) < 0.9).astype(np.uint64)
    stimulus["clear"] = (rng.random(CYCLES) < 0.02).astype(np.uint64)
    outputs = [p.name for p in result.ports if p.direction == "out"]
    with NativeSim(result) as sim:
        reference = native_trace(sim, stimulus, outputs)
    return result, stimulus, outputs, reference


def test_trace_is_not_trivial(setup):
    _, _, _, reference = setup
    assert len(set(reference["out"])) > CYCLES // 4


def test_pysim_matches_native(setup):
    result, stimulus, outputs, reference = setup
    entry = get_design(DESIGN)
    assert pysim_trace(entry.make(entry.config(CONFIG)), stimulus, outputs) == reference


@pytest.mark.parametrize("simulator", ["verilator", "icarus"])
def test_cocotb_matches_native(setup, simulator, tmp_path):
    result, stimulus, outputs, reference = setup
    stim_file, trace_file = tmp_path / "stimulus.npz", tmp_path / "trace.npz"
    np.savez(stim_file, **stimulus)
    run_cocotb(DESIGN, CONFIG, "sim.cocotb_trace", test_dir=tmp_path, simulator=simulator,
               extra_env={"RAMPART_STIMULUS": str(stim_file), "RAMPART_OUTPUTS": ",".join(outputs),
                          "RAMPART_TRACE": str(trace_file)})
    trace = np.load(trace_file, allow_pickle=True)
    assert {name: [int(v) for v in trace[name]] for name in outputs} == reference
