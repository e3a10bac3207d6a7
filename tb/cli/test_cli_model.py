"""`rampart model npu|snn`: predictions, sweeps with plots and JSON from the CLI; bad input is one line, exit 2."""
import json

import pytest
from click.testing import CliRunner

from models.npu import tflite_builder as tb
from rampart.cli import main


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    path = tmp_path_factory.mktemp("net") / "net.tflite"
    spec = tb.ModelSpec((12, 12, 8), (tb.Conv2D(16, activation="RELU"), tb.DepthwiseConv2D(), tb.FullyConnected(10)),
                        seed=4)
    return tb.build_model(spec).write(path)


def _one_line_error(result, *words):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("rampart: error:"), result.output
    for word in words:
        assert word in lines[0], result.output


def _json(args):
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_model_npu_predicts_per_layer_and_per_inference(net):
    doc = _json(["model", "npu", "-c", "u55-64", "--bandwidth", "4", "--latency", "40", str(net)])
    assert doc["config"] == "u55-64" and doc["bandwidth"] == 4 and doc["latency"] == 40
    kinds = [layer["kind"] for layer in doc["layers"]]
    assert kinds == ["conv", "depthwise", "fc"]
    assert doc["cycles"] > sum(layer["cycles"] for layer in doc["layers"]) > 0
    # less bandwidth or more latency never makes it faster; more MACs never slower on the same memory
    slow = _json(["model", "npu", "-c", "u55-64", "--bandwidth", "1", "--latency", "40", str(net)])
    assert slow["cycles"] > doc["cycles"]
    wide = _json(["model", "npu", "-c", "u55-256", "--bandwidth", "4", "--latency", "40", str(net)])
    assert wide["cycles"] < doc["cycles"]
    text = CliRunner().invoke(main, ["model", "npu", "-c", "u55-64", str(net)])
    assert text.exit_code == 0 and "total" in text.output and "inferences/s" in text.output, text.output


def test_model_npu_takes_a_network_by_name_and_costs_its_vector_ops():
    """A whole network by name: its pools and SOFTMAX's ELEMENTWISE ops are layers the model costs."""
    doc = _json(["model", "npu", "-c", "u55-128", "digits-pool"])
    kinds = {layer["kind"] for layer in doc["layers"]}
    assert {"conv", "pool", "elementwise"} <= kinds, kinds
    assert all(layer["cycles"] >= 0 for layer in doc["layers"]) and doc["cycles"] > 1000


def test_model_npu_inflight_raises_throughput_when_the_host_set_up_overlaps(net):
    setup = round(_json(["model", "npu", str(net)])["cycles"])        # host set-up as long as an inference
    args = ["model", "npu", str(net), "--setup-cycles", str(setup), "--inferences", "8"]
    one = _json([*args, "--inflight", "1"])["throughput"]
    two = _json([*args, "--inflight", "2"])["throughput"]
    assert two["inferences_per_second"] > 1.2 * one["inferences_per_second"]
    assert two["mean_latency_cycles"] >= one["mean_latency_cycles"]


def test_model_npu_sweep_writes_plot_and_json(net, tmp_path):
    plot = tmp_path / "sweep.png"
    doc = _json(["model", "npu", "--sweep", "configs,bandwidth", "--bandwidths", "1,4,8", str(net), "--plot",
                 str(plot), "-o", str(tmp_path / "out")])
    assert len(doc["rows"]) == 4 * 3
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "out" / "sweep.png").exists()
    assert json.loads((tmp_path / "out" / "sweep.json").read_text()) == doc["rows"]
    by = {(r["config"], r["bandwidth"]): r["cycles"] for r in doc["rows"]}
    for c in ("u55-32", "u55-64", "u55-128", "u55-256"):
        assert by[(c, 1.0)] >= by[(c, 4.0)] >= by[(c, 8.0)]


def test_model_snn_steps_per_second():
    doc = _json(["model", "snn", "-c", "64x64", "--steps", "100", "--baud", "115200"])
    fast = _json(["model", "snn", "-c", "64x64", "--steps", "100", "--baud", "1000000"])
    assert 0 < doc["steps_per_second"] < fast["steps_per_second"] < doc["engine_steps_per_second"]
    text = CliRunner().invoke(main, ["model", "snn", "--learn"])
    assert text.exit_code == 0 and "steps/s" in text.output, text.output


def test_model_bad_input_is_one_line(net, tmp_path):
    runner = CliRunner()
    _one_line_error(runner.invoke(main, ["model", "npu", str(tmp_path / "none.tflite")]), "no such model file")
    _one_line_error(runner.invoke(main, ["model", "npu", "-c", "u55-99", str(net)]), "unknown config")
    _one_line_error(runner.invoke(main, ["model", "npu", "--bandwidth", "0", str(net)]), "--bandwidth")
    _one_line_error(runner.invoke(main, ["model", "npu", "--latency", "-3", str(net)]), "--latency")
    _one_line_error(runner.invoke(main, ["model", "npu", "--sweep", "colours", str(net)]), "--sweep")
    _one_line_error(runner.invoke(main, ["model", "npu", "--sweep", "bandwidth", "--bandwidths", "2,x", str(net)]),
                    "--bandwidths")
    _one_line_error(runner.invoke(main, ["model", "npu", "--sweep", "configs", "-o", str(tmp_path / "s.png"),
                                         str(net)]), "folder")
    _one_line_error(runner.invoke(main, ["model", "npu", "--plot", str(tmp_path / "s.png"), str(net)]), "--sweep")
    _one_line_error(runner.invoke(main, ["model", "npu", "--plot", str(tmp_path / "no" / "s.png"), "--sweep",
                                         "configs", str(net)]), "--plot")
    _one_line_error(runner.invoke(main, ["model", "snn", "-c", "3x3"]), "unknown NeuroCore preset")
    _one_line_error(runner.invoke(main, ["model", "snn", "--baud", "0"]), "--baud")
    _one_line_error(runner.invoke(main, ["model", "snn", "--baud", "20000000"]), "--baud")


def test_ngpc_scaling_json_and_plot(tmp_path):
    result = CliRunner().invoke(main, ["ngpc", "scaling", "--lanes", "8,64", "--json", "--plot",
                                       str(tmp_path / "s.png")])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert [r["lanes"] for r in doc["rows"]] == [8, 64] and doc["rows"][1]["paper_speedup"] == 39.0
    assert (tmp_path / "s.png").stat().st_size > 0


def test_ngpc_scaling_output_file_as_the_issue_spells_it(tmp_path):
    result = CliRunner().invoke(main, ["ngpc", "scaling", "--lanes", "8", "-o", str(tmp_path / "scaling.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "scaling.png").stat().st_size > 0
    assert json.loads((tmp_path / "scaling.json").read_text())["rows"][0]["lanes"] == 8


def test_ngpc_scaling_bad_input_is_one_line(tmp_path):
    for args in (["--lanes", "8,x"], ["-o", str(tmp_path / "missing" / "scaling.png")], ["--bandwidth", "0"]):
        result = CliRunner().invoke(main, ["ngpc", "scaling", *args])
        assert result.exit_code == 2 and result.output.startswith("rampart: error:"), result.output
        assert len(result.output.strip().splitlines()) == 1
