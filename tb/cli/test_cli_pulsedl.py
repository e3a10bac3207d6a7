"""`rampart pulsedl resolution`: one SNR with few pulses end to end (table, plot, JSON); bad input is one line."""
import json

import pytest
from click.testing import CliRunner

import drivers.pulsedl
from rampart.cli import main
from rampart.cmd_pulsedl import parse_snrs


def _one_line_error(result, *words):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("rampart: error:"), result.output
    for word in words:
        assert word in lines[0], result.output


def test_resolution_at_one_snr(tmp_path):
    result = CliRunner().invoke(main, ["pulsedl", "resolution", "--snr", "47.4", "--pulses", "60", "--rtl-pulses",
                                       "4", "-o", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    rows = {r["estimator"]: r for r in doc["rows"]}
    assert list(rows) == ["cnn_rtl", "cnn_float", "cnn_litert", "ls", "cfd", "crlb"]
    assert {r["snr_db"] for r in doc["rows"]} == {47.4}
    if not hasattr(drivers.pulsedl, "infer_pulses"):
        # never a substitute under the RTL label
        assert rows["cnn_rtl"]["note"] == "not available in this build" and rows["cnn_rtl"]["time_sigma_ps"] is None
    for name in ("cnn_float", "cnn_litert", "ls", "cfd"):
        r = rows[name]
        assert r["pulses"] == 60 and r["time_sigma_ps"] > 0 and r["energy_sigma_pct"] > 0
        assert r["time_fwhm_ps"] == pytest.approx(2.3548 * r["time_sigma_ps"], rel=1e-4)
        # 60 pulses: a sigma estimate scatters by ~10%, so "not better than the bound" holds with margin
        assert r["time_sigma_ps"] > 0.7 * rows["crlb"]["time_sigma_ps"]
    assert doc["comparison"]["paper"] == {"time_fwhm_ps": 60.0, "energy_fwhm_pct": 0.40}
    for name in ("resolution.png", "resolution.json", "resolution.csv"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "resolution.png").read_bytes()[:4] == b"\x89PNG"


def test_table_output_names_the_paper_point(tmp_path):
    result = CliRunner().invoke(main, ["pulsedl", "resolution", "--snr", "50", "--pulses", "20", "--rtl-pulses", "2",
                                       "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "47.4" in result.output and "60 ps / 0.40%" in result.output     # the paper's point is always added


def test_snr_grammar():
    assert parse_snrs("30:60:3") == [30 + 3 * i for i in range(11)]
    assert parse_snrs("40,47.4") == [40.0, 47.4]
    assert parse_snrs("55") == [55.0]


@pytest.mark.parametrize("args, words", [
    (["--snr", "60:30:3"], ["--snr", "START:STOP:STEP"]),
    (["--snr", "30:60:0"], ["--snr"]),
    (["--snr", "abc"], ["--snr"]),
    (["--snr", "30:a:3"], ["--snr"]),
    (["--snr", "150"], ["between 0 and 100"]),
    (["--pulses", "0"], ["--pulses"]),
])
def test_bad_input_is_one_line(tmp_path, args, words):
    result = CliRunner().invoke(main, ["pulsedl", "resolution", *args, "-o", str(tmp_path)])
    _one_line_error(result, *words)


def test_rtl_column_comes_from_infer_pulses(tmp_path, monkeypatch):
    """With ``drivers.pulsedl.infer_pulses`` in the build the CLI hands it the .tflite bytes and the model's integer
    windows and reports what it returns under the RTL label (a stand-in here: LiteRT, shifted so it is told apart)."""
    import numpy as np

    from models.pulse.export import run_litert
    from models.pulse.resolution import MODEL

    calls = []

    def fake_infer(tflite, windows):
        calls.append((tflite, windows.dtype, windows.shape))
        out = run_litert(tflite, windows)
        out[:, 0] -= 1000                       # -1000 output steps in time: a visible bias (no int16 overflow)
        return out, {"pulses": len(windows), "total": 1234.0, "per_pulse": {"accelerator": np.full(len(windows), 9)}}

    monkeypatch.setattr(drivers.pulsedl, "infer_pulses", fake_infer, raising=False)
    result = CliRunner().invoke(main, ["pulsedl", "resolution", "--snr", "47.4", "--pulses", "30", "--rtl-pulses",
                                       "5", "-o", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    rows = {r["estimator"]: r for r in doc["rows"]}
    assert calls == [(MODEL.read_bytes(), np.int16, (5, 64))]
    assert rows["cnn_rtl"]["pulses"] == 5 and rows["cnn_rtl"]["note"] == ""
    assert rows["cnn_rtl"]["time_bias_ps"] < -1000 and abs(rows["cnn_litert"]["time_bias_ps"]) < 100
    assert doc["rtl"] is True and doc["rtl_stats"]["47.4"] == {"pulses": 5, "total": 1234.0}
