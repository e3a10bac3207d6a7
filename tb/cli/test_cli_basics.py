import subprocess
import sys

from click.testing import CliRunner

from rampart.cli import main


def test_help_lists_subcommands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "designs" in result.output


def test_designs_lists_mac_array():
    result = CliRunner().invoke(main, ["designs"])
    assert result.exit_code == 0, result.output
    assert "mac_array" in result.output


def test_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "rampart.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0


def _one_error_line(result):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("rampart: error:"), result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    runner = CliRunner()
    assert "unknown design" in _one_error_line(runner.invoke(main, ["build", "nope"]))
    assert "unknown config" in _one_error_line(runner.invoke(main, ["build", "mac_array", "-c", "3x3"]))
    bad = tmp_path / "bad.toml"
    bad.write_text("rows = [unclosed\n")
    assert "malformed TOML" in _one_error_line(runner.invoke(main, ["build", "mac_array", "-c", str(bad)]))
    unknown_key = tmp_path / "key.toml"
    unknown_key.write_text('base = "4x4"\nrowz = 2\n')
    assert "unknown config key(s) rowz" in _one_error_line(runner.invoke(main, ["sim", "mac_array", "-c",
                                                                                  str(unknown_key)]))
    out_of_range = tmp_path / "range.toml"
    out_of_range.write_text('base = "4x4"\nrows = 99\n')
    assert "rows must be an integer in 1..32" in _one_error_line(
        runner.invoke(main, ["build", "mac_array", "-c", str(out_of_range)]))
    assert "FST" in _one_error_line(runner.invoke(main, ["sim", "mac_array", "--trace", str(tmp_path / "x.vcd")]))


def test_toml_config_builds_and_simulates(tmp_path):
    config = tmp_path / "small.toml"
    config.write_text('base = "4x4"\nrows = 2\ncols = 3\n')
    result = CliRunner().invoke(main, ["build", "mac_array", "-c", str(config)])
    assert result.exit_code == 0, result.output
    # 2x3 PEs of 8+8+32 bits plus a 3x32-bit readout register
    assert str(2 * 3 * 48 + 3 * 32) in result.output
    trace = tmp_path / "run.fst"
    result = CliRunner().invoke(main, ["sim", "mac_array", "-c", str(config), "--cycles", "500", "--trace",
                                       str(trace)])
    assert result.exit_code == 0, result.output
    assert "cycles/s" in result.output and trace.stat().st_size > 0


def test_demo_runs_without_synthesis(tmp_path):
    result = CliRunner().invoke(main, ["demo", "--no-synth", "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "traces identical" in result.output
    assert (tmp_path / "mac_array.fst").stat().st_size > 0
    assert "300 of 300 injections" in result.output
    assert "SPFM" in (tmp_path / "campaign.html").read_text()
    assert "4x4 / mac_array_matmul: baseline SPFM" in result.output
    assert "| 4x4 | mac_array_matmul |" in (tmp_path / "study" / "study.md").read_text()
