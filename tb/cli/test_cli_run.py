"""`rampart run npu`: a tiny model end to end from the CLI (output .npy equals LiteRT, the cycle table), and bad input
exits 2 with one line. Shares the cached u55-128 build of design ``npu`` with the RTL tests."""
import numpy as np
import pytest
from click.testing import CliRunner

from models.npu import tflite_builder as tb
from models.npu.reference import run_reference
from rampart.cli import main
from rampart.cmd_run import run

if "run" not in main.commands:  # until rampart.cli registers it
    main.add_command(run)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "conv.tflite"
    return tb.single_layer(tb.Conv2D(8, activation="RELU"), (6, 6, 4), seed=2, input_zero_point=3).write(path)


def _one_line_error(result, *words):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("rampart: error:"), result.output
    for word in words:
        assert word in lines[0], result.output


def test_run_npu_writes_bit_exact_output(tiny, tmp_path):
    x = np.random.default_rng(5).integers(-128, 128, size=(1, 6, 6, 4), dtype=np.int8)
    np.save(tmp_path / "x.npy", x[0])  # the batch axis may be left out
    out = tmp_path / "out.npy"
    result = CliRunner().invoke(main, ["run", "npu", "--config", "u55-128", str(tiny), "--input",
                                       str(tmp_path / "x.npy"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    got = np.load(out)
    assert got.dtype == np.int8 and got.shape == (1, 6, 6, 8)
    np.testing.assert_array_equal(got, run_reference(tiny, x))
    text = result.output
    assert "cycles per layer" in text and "Vela cycles" in text and "MAC util" in text
    assert "total" in text and "bit-exact: yes" in text
    # random input (seeded) without --input
    result = CliRunner().invoke(main, ["run", "npu", str(tiny), "--seed", "3"])
    assert result.exit_code == 0 and "bit-exact: yes" in result.output, result.output


def test_run_npu_bad_input_is_one_line(tiny, tmp_path):
    runner = CliRunner()
    _one_line_error(runner.invoke(main, ["run", "npu", str(tmp_path / "missing.tflite")]), "no such model file")
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(np.random.default_rng(0).bytes(2000))
    _one_line_error(runner.invoke(main, ["run", "npu", str(garbage)]), "not a valid .tflite")
    cpu = tb.single_layer(tb.DepthwiseConv2D((3, 3), (4, 4), "VALID"), (12, 12, 4), seed=1)
    cpu = cpu.write(tmp_path / "s4.tflite")
    _one_line_error(runner.invoke(main, ["run", "npu", str(cpu)]), "CPU", "DEPTHWISE_CONV_2D")
    np.save(tmp_path / "bad.npy", np.zeros((5, 5, 4), dtype=np.int8))
    _one_line_error(runner.invoke(main, ["run", "npu", str(tiny), "--input", str(tmp_path / "bad.npy")]),
                    "input shape")
    _one_line_error(runner.invoke(main, ["run", "npu", str(tiny), "-c", "u55-99"]), "unknown NPU config")


def test_run_npu_help():
    result = CliRunner().invoke(main, ["run", "npu", "--help"])
    assert result.exit_code == 0
    assert "Vela" in result.output and "--trace" in result.output and "bit-exact" in result.output
