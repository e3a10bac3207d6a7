"""`rampart snn compare` and the PyNN examples: both simulators, the gap metrics, the cost model, RTL == golden."""
import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from drivers.pynn import compare

pytestmark = pytest.mark.filterwarnings(r"ignore:.*deprecated.*use '\w+':DeprecationWarning")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "pynn"


def test_van_rossum_distance_known_values():
    tau = 10.0
    assert compare.van_rossum([5.0, 30.0], [5.0, 30.0], tau, 100.0, 1.0) == 0.0
    # one unmatched spike: (1/tau) * integral exp(-2t/tau) = 1/2
    assert compare.van_rossum([20.0], [], tau, 100.0, 1.0) == pytest.approx(math.sqrt(0.5), rel=1e-2)
    # one spike shifted by d: D^2 = 1 - exp(-d/tau)
    assert compare.van_rossum([20.0], [23.0], tau, 100.0, 1.0) == pytest.approx(math.sqrt(1 - math.exp(-0.3)),
                                                                              rel=2e-2)


def _cycles_by_hand(cfg, n_pending, n_now, groups, learn, integrated):
    """The formula of rtl.neurocore.config.step_cycles' docstring, written out again."""
    k, r, c = cfg.n_neurons // cfg.lanes, -(-cfg.n_sources // cfg.lanes), -(-cfg.n_sources // 32)
    cycles = 1 + (0 if integrated else c + k * n_pending + 1) + k + 2 + r + 1
    if learn:
        cycles += (k - groups) + r * groups + 1 + c + k * n_now + 1
    return cycles


def test_cost_model_counts_the_run_spikes_with_the_step_cycles_formula():
    import drivers.pynn as sim
    from drivers.pynn.simulator import state, step_cycle_counts

    sim.setup(timestep=1.0, config="16x16")
    src = sim.Population(3, sim.SpikeSourceArray(spike_times=[[1.0, 2.0], [2.0], [5.0]]), label="in")
    pop = sim.Population(5, sim.IF_curr_delta(v_thresh=-64.0), label="n")
    sim.Projection(src, pop, sim.AllToAllConnector(), sim.StaticSynapse(weight=2.0))
    pop.record("spikes")
    sim.run(8.0)
    raster = np.concatenate([h[1] for h in state.history])
    inputs = np.concatenate([h[0] for h in state.history])
    cycles = step_cycle_counts(state.config, state.history, learn=False)
    sim.end()
    # a 2 mV jump crosses the 1 mV threshold: every neuron fires in the step after each input step (1, 2, 5)
    np.testing.assert_array_equal(np.flatnonzero(raster.any(1)), [2, 3, 6])
    assert raster.sum() == 5 * 3
    now = raster.sum(1) + inputs.sum(1)
    for t in range(8):
        pending = now[t - 1] if t else 0
        groups = int(raster[t].reshape(-1, 4).any(1).sum())
        assert cycles[t] == _cycles_by_hand(state.config, pending, now[t], groups, False, False)
    cost = compare.cost_model(state, 25e6, 115_200)
    assert cost["mean_cycles_per_step"] == pytest.approx(cycles.mean())
    # 16 input bits + 16 raster bits per step; RUN commands of up to 255 steps (512-byte payloads) add 15 bytes
    assert cost["steps_per_run_command"] == 255
    assert cost["uart_bytes_per_step"] == pytest.approx(4 + 15 / 255, abs=1e-3)
    assert cost["steps_per_s_uart"] == pytest.approx(1 / (cycles.mean() / 25e6 + 10 * (4 + 15 / 255) / 115_200))


FEEDFORWARD = '''
import numpy as np
import drivers.pynn as sim

sim.setup(timestep=1.0)
rng = np.random.default_rng(5)
times = [np.flatnonzero(rng.random(150) < 0.04).astype(float) for _ in range(12)]
src = sim.Population(12, sim.SpikeSourceArray(spike_times=times), label="inputs")
layer = sim.Population(8, sim.IF_curr_exp(tau_m=20.0, tau_syn_E=5.0, v_thresh=-55.0, tau_refrac=2.0),
                       label="layer")
sim.Projection(src, layer, sim.AllToAllConnector(),
               sim.StaticSynapse(weight=sim.RandomDistribution("uniform", (0.5, 2.5), rng=sim.NumpyRNG(seed=1))))
layer.record(["spikes", "v"])
sim.run(150.0)
sim.end()
'''


def test_feedforward_gap_stays_inside_the_lsb_bound(tmp_path):
    """The quantisation part of the gap (golden vs float model of the same registers) is inside the bound of
    tb/models/snn/test_vs_brian2.py; the whole gap to pyNN.brian2 is reported with its metrics."""
    pytest.importorskip("brian2")
    script = tmp_path / "ff.py"
    script.write_text(FEEDFORWARD)
    res = compare.compare_script(script)
    (q,) = res.quantisation
    assert q["feedforward"] and q["within_bound"] is True, q
    assert q["max_dv_mV"] <= q["bound_mV"]
    (gap,) = res.populations
    assert gap["spikes_brian2"] > 8 and gap["spikes_core"] > 8
    # the rest of the gap is discretisation: the core's one-step lead per hop (first spikes 1 ms early) and
    # Euler vs exact integration; measured 251 vs 252 spikes, 7 of 8 trains identical once shifted by the lead
    assert gap["first_spike_diff_max"] is not None and gap["first_spike_diff_max"] <= 1
    assert abs(gap["spikes_core"] - gap["spikes_brian2"]) <= 0.05 * gap["spikes_brian2"]
    assert gap["identical_share"] < gap["identical_share_one_step_later"]
    assert gap["identical_share_one_step_later"] >= 0.5


@pytest.mark.parametrize("example, argv", [
    ("balanced_network.py", ["--neurons", "40", "--time", "100"]),
    ("stdp_pattern.py", ["--time", "300"]),
    ("digits.py", ["--images", "2", "--steps", "20"]),
])
def test_examples_run_on_brian2_and_neurocore(example, argv):
    pytest.importorskip("brian2")
    res = compare.compare_script(EXAMPLES / example, argv=argv)
    assert res.populations
    for gap in res.populations:
        assert gap["spikes_brian2"] > 0 and gap["spikes_core"] > 0, gap
        assert np.isfinite(gap["van_rossum_mean"])
    assert res.cost["steps"] > 0 and res.cost["steps_per_s_clock"] > res.cost["steps_per_s_uart"]


def test_balanced_example_golden_and_rtl_identical_spike_for_spike():
    """The example unmodified, scaled down to the 16x16 core (the RTL build the other fast tests use)."""
    pytest.importorskip("amaranth")
    argv = ["--neurons", "15", "--external", "8", "--time", "60"]
    gold = compare.run_script(EXAMPLES / "balanced_network.py", "neurocore", target="golden", config="16x16",
                              argv=argv)
    rtl = compare.run_script(EXAMPLES / "balanced_network.py", "neurocore", target="rtl", config="16x16", argv=argv)
    assert gold.state.config.n_neurons == 16
    assert "RTL through the simulated UART" in str(rtl.state.mapping.report)
    pops = [(g, r) for g, r in zip(gold.pops, rtl.pops, strict=True) if g["spikes"] is not None]
    assert len(pops) == 2 and sum(len(t) for g, _ in pops for t in g["spikes"]) > 0
    for g, r in pops:
        assert all(np.array_equal(a, b) for a, b in zip(g["spikes"], r["spikes"], strict=True))
        if g["v"] is not None:
            np.testing.assert_array_equal(g["v"], r["v"])


def test_cli_compare_writes_plots_and_json(tmp_path):
    pytest.importorskip("brian2")
    from rampart.cli import main

    script = tmp_path / "ff.py"
    script.write_text(FEEDFORWARD)
    out = tmp_path / "gap"
    result = CliRunner().invoke(main, ["snn", "compare", str(script), "-o", str(out), "--json",
                                       str(tmp_path / "gap.json"), "--baud", "1000000"])
    assert result.exit_code == 0, result.output
    assert "van Rossum" in result.output and "steps/s" in result.output and "NeuroCore mapping" in result.output
    assert (out / "raster_layer.png").stat().st_size > 0 and (out / "distance.png").stat().st_size > 0
    data = json.loads((tmp_path / "gap.json").read_text())
    assert data["cost_model"]["baud"] == 1_000_000 and data["populations"][0]["label"] == "layer"


def test_cli_compare_refuses_an_unsupported_script_in_one_line(tmp_path):
    from rampart.cli import main

    script = tmp_path / "cond.py"
    script.write_text(textwrap.dedent('''
        import pyNN.brian2 as sim
        sim.setup(timestep=1.0)
        sim.Population(2, sim.IF_cond_exp())
        sim.run(10.0)
    '''))
    result = CliRunner().invoke(main, ["snn", "compare", str(script), "-o", str(tmp_path / "o")])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("rampart: error: ") and "IF_cond_exp" in lines[0], lines


def test_cli_compare_missing_script_is_one_line(tmp_path):
    from rampart.cli import main

    result = CliRunner().invoke(main, ["snn", "compare", str(tmp_path / "nope.py")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("rampart: error: ") and len(result.output.strip().splitlines()) == 1


@pytest.mark.slow
@pytest.mark.parametrize("example, argv, marker", [
    ("balanced_network.py", ["--neurons", "60", "--time", "200"], "excitatory: 48 neurons, mean rate"),
    ("stdp_pattern.py", ["--time", "1000"], "weights: pattern inputs"),
    ("digits.py", ["--images", "3", "--steps", "16"], "digits: "),
])
def test_examples_run_as_plain_scripts_with_only_the_import_line_changed(tmp_path, example, argv, marker):
    import os
    import subprocess
    import sys

    pytest.importorskip("brian2")
    text = (EXAMPLES / example).read_text()
    line = "import drivers.pynn as sim  # or: import pyNN.brian2 as sim"
    assert line in text
    outputs = {}
    for name, new in (("neurocore", line), ("brian2", "import pyNN.brian2 as sim")):
        script = tmp_path / f"{name}_{example}"
        script.write_text(text.replace(line, new))
        env = {**os.environ, "PYTHONPATH": str(EXAMPLES.parents[1])}
        proc = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, env=env,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        outputs[name] = proc.stdout
    assert marker in outputs["neurocore"] and marker in outputs["brian2"]
