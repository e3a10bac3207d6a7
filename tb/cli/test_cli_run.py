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
                                       str(tmp_path / "x.npy"), "--save-output", str(out)])
    assert result.exit_code == 0, result.output
    got = np.load(out)
    assert got.dtype == np.int8 and got.shape == (1, 6, 6, 8)
    np.testing.assert_array_equal(got, run_reference(tiny, x))
    text = result.output
    assert "cycles per layer" in text and "Vela cycles" in text and "MAC util" in text
    assert "MAC active" in text and "PMU: CYCLES" in text and "MAC_ACTIVE" in text
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
    _one_line_error(runner.invoke(main, ["run", "npu", str(tiny), "-c", "u55-99"]), "unknown config 'u55-99'")


def test_run_npu_help():
    result = CliRunner().invoke(main, ["run", "npu", "--help"])
    assert result.exit_code == 0
    assert "Vela" in result.output and "--trace" in result.output and "bit-exact" in result.output
    assert "digits" in result.output and "--images" in result.output and "--export" in result.output


# --- the built-in digits CNN -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    from models.npu.digits import digits_model

    return digits_model()


def test_run_npu_digits_held_out_image(digits, tmp_path):
    out = tmp_path / "logits.npy"
    result = CliRunner().invoke(main, ["run", "npu", "digits", "--image", "5", "--save-output", str(out)])
    assert result.exit_code == 0, result.output
    x, label = digits.held_out_input(5)
    want = run_reference(digits.data, x)
    np.testing.assert_array_equal(np.load(out), want)
    text = result.output
    assert "digits CNN (held-out image 5)" in text and "cycles per layer" in text and "bit-exact: yes" in text
    assert f"predicted class: {int(np.argmax(want))} (NPU), true label {label}; LiteRT int8 {int(np.argmax(want))}" \
        in text


def test_run_npu_digits_export_and_run_file(digits, tmp_path):
    path = tmp_path / "digits.tflite"
    result = CliRunner().invoke(main, ["run", "npu", "digits", "--export", str(path)])
    assert result.exit_code == 0, result.output
    assert path.read_bytes() == digits.data and "held-out accuracy" in result.output
    x, _ = digits.held_out_input(7)
    np.save(tmp_path / "x.npy", x)
    result = CliRunner().invoke(main, ["run", "npu", "-c", "u55-128", str(path), "--input", str(tmp_path / "x.npy")])
    assert result.exit_code == 0 and "bit-exact: yes" in result.output, result.output


def test_run_npu_digits_accuracy_mode(digits):
    result = CliRunner().invoke(main, ["run", "npu", "digits", "--images", "3"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "3 held-out digit(s)" in text and "bit-exact: 3/3" in text
    want = sum(int(np.argmax(run_reference(digits.data, digits.held_out_input(i)[0]))) == digits.split.y_test[i]
               for i in range(3))
    assert f"accuracy NPU          {want / 3:7.2%}  ({want}/3)" in text
    assert f"accuracy LiteRT int8  {want / 3:7.2%}  ({want}/3)" in text
    assert "accuracy float" in text


def test_run_npu_digits_bad_input_is_one_line(digits, tiny, tmp_path):
    runner = CliRunner()
    n = len(digits.split.y_test)
    _one_line_error(runner.invoke(main, ["run", "npu", "digits", "--image", str(n)]), "--image", str(n - 1))
    _one_line_error(runner.invoke(main, ["run", "npu", "digits", "--images", "0"]), "--images")
    _one_line_error(runner.invoke(main, ["run", "npu", "digits", "--images", "2", "--image", "1"]), "--images")
    _one_line_error(runner.invoke(main, ["run", "npu", "digits", "--export", str(tmp_path / "d.bin")]), ".tflite")
    _one_line_error(runner.invoke(main, ["run", "npu", str(tiny), "--images", "2"]), "built-in model")
    _one_line_error(runner.invoke(main, ["run", "npu", str(tiny), "--export", str(tmp_path / "x.tflite")]),
                    "built-in model")
    np.save(tmp_path / "f.npy", np.zeros((8, 8, 1), dtype=np.float32))
    _one_line_error(runner.invoke(main, ["run", "npu", "digits", "--input", str(tmp_path / "f.npy")]), "int8")


def test_run_npu_two_inputs_two_outputs(tmp_path):
    """--input once per model input (model order); outputs as one .npz, or one .npy each; wrong count, shape or
    dtype and a bad output suffix are one-line errors."""
    from models.npu.reference import ReferenceModel
    from models.npu.tflite_graph import Graph

    g = Graph("two-branch", seed=4)
    a, b = g.input((4, 4, 8)), g.input((6, 6, 2))
    g.output(g.conv2d(a, 4, (1, 1)), g.conv2d(b, 8, activation="RELU"))
    path = tmp_path / "two.tflite"
    path.write_bytes(g.build().data)
    ref = ReferenceModel(path.read_bytes())
    rng = np.random.default_rng(1)
    xs = [ref.random_input(rng, 0), ref.random_input(rng, 1)]
    for i, x in enumerate(xs):
        np.save(tmp_path / f"x{i}.npy", x)
    want = ref.run_all(*xs)
    runner = CliRunner()
    args = ["run", "npu", str(path), "-i", str(tmp_path / "x0.npy"), "-i", str(tmp_path / "x1.npy")]
    result = runner.invoke(main, [*args, "--save-output", str(tmp_path / "out.npz")])
    assert result.exit_code == 0, result.output
    assert "bit-exact: yes (2 of 2 outputs)" in result.output
    with np.load(tmp_path / "out.npz") as got:
        assert sorted(got) == ["output_0", "output_1"]
        for i in range(2):
            np.testing.assert_array_equal(got[f"output_{i}"], want[i])
    result = runner.invoke(main, [*args, "--save-output", str(tmp_path / "y.npy")])
    assert result.exit_code == 0, result.output
    for i in range(2):
        np.testing.assert_array_equal(np.load(tmp_path / f"y_{i}.npy"), want[i])
    _one_line_error(runner.invoke(main, args[:-2]), "2 input(s)", "got 1")
    _one_line_error(runner.invoke(main, [*args[:3], "-i", str(tmp_path / "x1.npy"), "-i", str(tmp_path / "x0.npy")]),
                    "input 0 shape")
    np.save(tmp_path / "f.npy", xs[1].astype(np.float32))
    _one_line_error(runner.invoke(main, [*args[:-1], str(tmp_path / "f.npy")]), "int8")
    _one_line_error(runner.invoke(main, [*args, "--save-output", str(tmp_path / "out.txt")]), ".npz")


def test_run_npu_builtin_network(tmp_path):
    """A built-in network by name (random input from --seed): ResNet-8 runs whole (its pooling, residual ADDs and
    SOFTMAX on the vector unit): a cycle table and bit-exact."""
    result = CliRunner().invoke(main, ["run", "npu", "resnet8", "--seed", "1", "--save-output",
                                       str(tmp_path / "y.npy")])
    assert result.exit_code == 0, result.output
    assert "bit-exact: yes" in result.output and (tmp_path / "y.npy").exists()
    _one_line_error(CliRunner().invoke(main, ["run", "npu", "resnet8", "--images", "2"]), "digits")


def test_run_npu_mobilenetv2():
    """MobileNetV2 runs whole from the CLI (its HARD_SWISH stem and head fused into convs as table lookups, MEAN as a
    depthwise with a 32-bit OFM): bit-exact, no UNSUPPORTED stop."""
    result = CliRunner().invoke(main, ["run", "npu", "mobilenetv2", "-c", "u55-128", "--seed", "0"])
    assert result.exit_code == 0, result.output
    assert "bit-exact: yes" in result.output


def test_exactness_line_counts_differences_and_names_the_fc_rounding(tiny):
    """The "bit-exact" line of `rampart run npu`: how many values differ and by how much; for a model with
    FULLY_CONNECTED layers also the known double- vs single-rounding cause, for a conv-only model not."""
    from models.npu.int16x8 import fully_connected
    from rampart.cmd_run import _exactness

    want = [np.array([[1, 2, 3, 4]], dtype=np.int8), np.array([5, 6], dtype=np.int8)]
    same = [w.copy() for w in want]
    assert _exactness(tiny.read_bytes(), want, same) == "bit-exact: yes (2 of 2 outputs) (vs LiteRT reference kernels)"
    off = [np.array([[1, 3, 3, 4]], dtype=np.int8), np.array([5, 4], dtype=np.int8)]
    conv_line = _exactness(tiny.read_bytes(), want, off)
    assert conv_line.startswith("bit-exact: no (0 of 2 outputs)") and "2 of 6 values differ, by at most 2" in conv_line
    assert "FULLY_CONNECTED" not in conv_line
    assert "rounds them twice" in _exactness(fully_connected(8, 4), want, off)
