"""One grammar for every command: -c/--config wherever a design is taken, -o/--output always a folder, --cycles and
--samples never sharing -n, --version, the workload list, and tables not cut to 80 columns when piped."""
import importlib.metadata

import pytest
from click.testing import CliRunner

from rampart.cli import main

#: Every command that takes a design (or runs one whose shape a config chooses).
DESIGN_COMMANDS = (["build"], ["sim"], ["synth"], ["fi", "sites"], ["fi", "run"], ["run", "npu"], ["snn", "demo"])
#: Every command that writes several files: its -o/--output is a folder.
FOLDER_COMMANDS = (["synth"], ["fi", "report"], ["demo"], ["snn", "demo"])


def _help(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", DESIGN_COMMANDS, ids=" ".join)
def test_config_option_everywhere(command):
    assert "-c, --config NAME|FILE.toml" in _help(command)


@pytest.mark.parametrize("command", FOLDER_COMMANDS, ids=" ".join)
def test_output_is_a_folder(command):
    text = _help(command)
    assert "-o, --output PATH" in text
    assert "--out " not in text and "--out," not in text     # the old spelling works but is not advertised


def test_single_files_have_their_own_names():
    text = _help(["run", "npu"])
    assert "--save-output FILE" in text and "--trace FILE.fst" in text and "--export FILE.tflite" in text
    assert "-o," not in text and "--output" not in text
    assert "--db FILE" in _help(["fi", "run"])


def test_cycles_and_samples_do_not_share_n():
    sim = _help(["sim"])
    assert "--cycles" in sim and "-n," not in sim
    fi_run = _help(["fi", "run"])
    assert "-n, --samples" in fi_run and "--cycles" in fi_run
    result = CliRunner().invoke(main, ["sim", "mac_array", "-n", "5"])
    assert result.exit_code == 2 and result.output.startswith("rampart: error: No such option '-n'")


def test_old_folder_spelling_still_works(tmp_path):
    """`--out` is a hidden alias of -o/--output (the old long name)."""
    result = CliRunner().invoke(main, ["snn", "demo", "pattern", "--out", str(tmp_path / "f"), "-c", "16x16"])
    # the config is refused (16 inputs), but only after --out was accepted as the folder option
    assert result.exit_code == 2 and "pattern demo needs at least 24 inputs" in result.output, result.output
    assert not (tmp_path / "f").exists()      # nothing is created for a run that is refused


def test_version_from_package_metadata():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"rampart {importlib.metadata.version('rampart')}\n"


def test_fi_workloads_lists_every_workload_with_its_design():
    from faultinj.workload import workloads

    result = CliRunner().invoke(main, ["fi", "workloads"])
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in result.output.splitlines()
            if line.startswith("│") and line.split("│")[1].strip()}
    assert {name: design for name, (design, _) in workloads().items()} == rows
    assert {"mac_array_matmul": "mac_array", "npu_conv": "npu"}.items() <= rows.items()


def test_tables_are_not_cut_to_80_columns_when_piped():
    """CliRunner's output is not a terminal, like `| tee` or a CI log: rows stay whole and wider than 80."""
    text = CliRunner().invoke(main, ["fi", "workloads"]).output
    line = next(line for line in text.splitlines() if "mac_array_matmul" in line)
    assert len(line) > 80
    assert "Back-to-back int8 matrix products C = A @ W (A: rows x k, W: k x cols, k random in 4..32 per tile)." \
        in line
    designs = CliRunner().invoke(main, ["designs"]).output
    assert max(len(line) for line in designs.splitlines()) > 80
    assert "…" not in designs


def test_designs_lists_accelerators_first_with_default_preset_first():
    text = CliRunner().invoke(main, ["designs"]).output
    sections = [text.index(title) for title in ("accelerators", "reference designs", "functional units and test")]
    assert sections == sorted(sections)
    npu = next(line for line in text.splitlines() if line.startswith("│ npu "))
    assert "│ u55-128, u55-32, u55-64, u55-256 " in npu
    assert text.index("│ mac_array ") > sections[1]


def test_usage_errors_are_one_line():
    runner = CliRunner()
    for args in (["sim"], ["fi", "run", "mac_array", "--bogus"], ["bogus"], ["run", "npu", "x.tflite", "--image"]):
        result = runner.invoke(main, args)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2, (args, result.output)
        assert len(lines) == 1 and lines[0].startswith("rampart: error: "), (args, result.output)
