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
