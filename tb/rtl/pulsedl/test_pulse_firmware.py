"""The pulse firmware on the PulseDL-II SoC (drivers.pulsedl.infer_pulses): the CPU arms the ADC capture, the
accelerator runs the network, the outputs come back over the UART and equal LiteRT's reference kernels; the cycle
breakdown adds up and the accelerator's share equals the accelerator-alone run."""
import numpy as np
import pytest

from drivers.pulsedl_nets import pulse_windows, random_pulse_cnn
from models.npu.reference import ReferenceModel
from models.rv32.toolchain import PICOLIBC_SPECS, missing_tools

pytestmark = pytest.mark.skipif(bool(missing_tools()) or not PICOLIBC_SPECS.exists(),
                                reason="RISC-V cross toolchain missing (install with `make sysdeps`)")


@pytest.mark.parametrize("precision", ["int8", "16x8"])
def test_pulses_through_the_soc_match_litert(precision):
    from drivers.pulsedl import NnRunner, infer_pulses
    from drivers.pulsedl_compile import compile_tflite

    net = random_pulse_cnn(3, precision)
    windows = net.quantize(pulse_windows(4, seed=11))
    outputs, stats = infer_pulses(net.data, windows, config="16k")
    ref = ReferenceModel(net.data)
    want = np.stack([ref.run_all(x.reshape(1, 1, 64, 1))[0].ravel() for x in windows])
    assert outputs.dtype == want.dtype
    np.testing.assert_array_equal(outputs, want)

    alone = NnRunner("16k")
    alone.load(compile_tflite(net.data, alone.config))
    cycles = alone.infer(windows[0])[1]
    assert list(stats["per_pulse"]["accelerator"]) == [cycles] * len(windows)
    assert stats["accelerator"] == cycles
    assert stats["cpu"] > 0 and stats["total"] == pytest.approx(stats["cpu"] + stats["accelerator"] +
                                                                 stats["adc_wait"])


def test_wrong_window_dtype_is_refused():
    from base import RampartError
    from drivers.pulsedl import infer_pulses

    net = random_pulse_cnn(3, "int8", small=True)
    with pytest.raises(RampartError, match="must be int8"):
        infer_pulses(net.data, np.zeros((2, 64), np.int16))


def test_run_pulsedl_cli(tmp_path):
    from click.testing import CliRunner

    from rampart.cli import main

    out = tmp_path / "y.npy"
    result = CliRunner().invoke(main, ["run", "pulsedl", "-n", "3", "--precision", "16x8", "--seed", "2",
                                       "--save-output", str(out)])
    assert result.exit_code == 0, result.output
    assert "bit-exact with LiteRT's reference kernels: 3/3" in result.output
    assert "cycles per pulse: CPU" in result.output and "pulses/s at 100 MHz" in result.output
    assert np.load(out).shape == (3, 2) and np.load(out).dtype == np.int16


@pytest.mark.parametrize("args, message", [
    (["--model", "{tmp}/int8.tflite", "--windows", "{tmp}/missing.npy"], "cannot read --windows"),
    (["--model", "{tmp}/int8.tflite", "--windows", "{tmp}/bad_shape.npy"], "must hold one (N, 64) array"),
    (["--model", "{tmp}/int8.tflite", "--windows", "{tmp}/int16.npy"], "holds int16; give int8 samples"),
    (["--model", "{tmp}/junk.tflite"], "not a readable .tflite"),
])
def test_run_pulsedl_bad_input_is_one_error_line(tmp_path, args, message):
    from click.testing import CliRunner

    from rampart.cli import main

    np.save(tmp_path / "bad_shape.npy", np.zeros((2, 32), np.int8))
    np.save(tmp_path / "int16.npy", np.zeros((2, 64), np.int16))
    (tmp_path / "junk.tflite").write_bytes(b"not a flatbuffer at all")
    (tmp_path / "int8.tflite").write_bytes(random_pulse_cnn(1, "int8", small=True).data)
    result = CliRunner().invoke(main, ["run", "pulsedl", *[a.format(tmp=tmp_path) for a in args]])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rampart: error:") and message in lines[0], result.output


def test_threshold_trigger_aligns_the_windows():
    """With the threshold trigger each capture starts at the first sample >= the threshold after the previous
    capture; the expected windows are cut from the stream here and run through LiteRT."""
    from drivers.pulsedl import infer_pulses

    net = random_pulse_cnn(4, "int8", small=True)
    windows = net.quantize(pulse_windows(3, seed=21, noise=0.0))
    threshold = int(net.quantize(np.full((1, 64), 0.05))[0, 0])
    stream = np.concatenate([windows.ravel(), np.full(64, -128, np.int8)])
    cut, pos = [], 0
    for _ in range(3):
        start = pos + int(np.flatnonzero(stream[pos:] >= threshold)[0])
        cut.append(stream[start:start + 64])
        pos = start + 64
    assert any(c[0] != w[0] for c, w in zip(cut, windows, strict=True))     # the trigger really moved the windows
    outputs, _ = infer_pulses(net.data, windows, threshold=threshold)
    ref = ReferenceModel(net.data)
    want = np.stack([ref.run_all(c.reshape(1, 1, 64, 1))[0].ravel() for c in cut])
    np.testing.assert_array_equal(outputs, want)
