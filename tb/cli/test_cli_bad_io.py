"""Bad input and output, as a new user meets them: every one is a single `rampart: error: ...` line with exit code 2,
found before any simulation runs, and nothing half-written is left behind."""
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from rampart.cli import main


def _one_line(result, *words):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("rampart: error: "), result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in lines[0], result.output
    return lines[0]


@pytest.fixture
def no_build(monkeypatch):
    """Make any build (the first step of every simulation) fail the test."""
    import sim.build

    def refuse(*args, **kwargs):
        raise AssertionError("a design was built before the bad option was reported")
    monkeypatch.setattr(sim.build, "build", refuse)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from models.npu import tflite_builder as tb

    path = tmp_path_factory.mktemp("tiny") / "conv.tflite"
    return tb.single_layer(tb.Conv2D(8, activation="RELU"), (6, 6, 4), seed=2, input_zero_point=3).write(path)


# --- negative seeds --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["sim", "mac_array"], ["fi", "run", "mac_array", "--samples", "10", "--db", "x.db"],
                                  ["run", "npu", "digits"], ["snn", "demo", "pattern"]], ids=lambda a: " ".join(a[:2]))
def test_negative_seed(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _one_line(CliRunner().invoke(main, [*args, "--seed", "-1"]), "--seed", "-1")
    assert not (tmp_path / "x.db").exists()


# --- outputs into missing or unusable folders, reported before simulating -------------------------------------------

def test_sim_trace_into_missing_folder(tmp_path, no_build):
    runner = CliRunner()
    _one_line(runner.invoke(main, ["sim", "mac_array", "--trace", str(tmp_path / "no" / "run.fst")]),
              "--trace", "does not exist")
    (tmp_path / "file").write_text("")
    _one_line(runner.invoke(main, ["sim", "mac_array", "--trace", str(tmp_path / "file" / "run.fst")]),
              "--trace", "not a folder")
    _one_line(runner.invoke(main, ["sim", "mac_array", "--trace", str(tmp_path)]), "--trace", "FST")
    (tmp_path / "dir.fst").mkdir()
    _one_line(runner.invoke(main, ["sim", "mac_array", "--trace", str(tmp_path / "dir.fst")]), "is a folder")


def test_unwritable_folder_is_found_by_trying(tmp_path, no_build):
    """Permissions as they are (also for root, whom mode bits do not stop): a folder refusing new files."""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        (locked / "probe").write_text("")
    except OSError:
        pass
    else:
        pytest.skip("this user can write into a read-only folder (root); covered by the missing-folder cases")
    _one_line(CliRunner().invoke(main, ["sim", "mac_array", "--trace", str(locked / "run.fst")]),
              "--trace", "cannot write into")


def test_run_npu_outputs_checked_before_the_model_is_read(tmp_path):
    """The output files are checked when the command line is parsed: before the model is even opened."""
    runner = CliRunner()
    missing = str(tmp_path / "missing.tflite")
    _one_line(runner.invoke(main, ["run", "npu", missing, "--trace", str(tmp_path / "no" / "t.fst")]),
              "--trace", "does not exist")
    _one_line(runner.invoke(main, ["run", "npu", missing, "--save-output", str(tmp_path / "no" / "o.npy")]),
              "--save-output", "does not exist")
    _one_line(runner.invoke(main, ["run", "npu", missing, "--save-output", str(tmp_path / "o.txt")]),
              "--save-output", ".npy")
    _one_line(runner.invoke(main, ["run", "npu", "digits", "--export", str(tmp_path / "no" / "d.tflite")]),
              "--export", "does not exist")


def test_folder_outputs_that_are_files(tmp_path):
    runner = CliRunner()
    afile = tmp_path / "afile"
    afile.write_text("keep")
    for args in (["snn", "demo", "pattern", "-o", str(afile)], ["demo", "-o", str(afile)],
                 ["synth", "mac_array", "-b", "icebreaker", "-o", str(afile)],
                 ["snn", "demo", "digits", "-o", str(afile / "sub")]):
        _one_line(runner.invoke(main, args), "--output")
    assert afile.read_text() == "keep"


def test_fi_outputs_checked_before_the_campaign(tmp_path):
    runner = CliRunner()
    afile = tmp_path / "afile"
    afile.write_text("")
    db = tmp_path / "c.db"
    base = ["fi", "run", "mac_array", "-c", "4x4", "--samples", "50", "--workers", "1"]
    _one_line(runner.invoke(main, [*base, "--db", str(db), "--report", str(afile)]), "--report", "not a folder")
    assert not db.exists()
    _one_line(runner.invoke(main, [*base, "--db", str(tmp_path / "no" / "c.db")]), "--db", "does not exist")
    _one_line(runner.invoke(main, [*base, "--db", str(tmp_path)]), "--db", "is a folder")
    _one_line(runner.invoke(main, ["fi", "replay", str(db), "0", "--trace", str(tmp_path / "no" / "r.fst")]),
              "--trace")
    result = runner.invoke(main, [*base, "--db", str(db)])
    assert result.exit_code == 0, result.output
    _one_line(runner.invoke(main, ["fi", "report", str(db), "-o", str(afile)]), "--output", "not a folder")
    _one_line(runner.invoke(main, ["fi", "report", str(tmp_path / "none.db"), "-o", str(tmp_path / "r")]),
              "no such campaign database")
    assert not (tmp_path / "r").exists()
    result = runner.invoke(main, ["fi", "report", str(db), "-o", str(tmp_path / "new" / "rep")])
    assert result.exit_code == 0 and (tmp_path / "new" / "rep" / "c.html").stat().st_size > 0, result.output


# --- campaign databases ----------------------------------------------------------------------------------------------

def test_bad_campaign_size_leaves_no_database(tmp_path):
    runner = CliRunner()
    db = tmp_path / "c.db"
    base = ["fi", "run", "mac_array", "-c", "4x4", "--workers", "1", "--db", str(db)]
    _one_line(runner.invoke(main, [*base, "--samples", str(10**12)]), "samples must be between 1 and the population")
    _one_line(runner.invoke(main, [*base, "--samples", "3"]), "at least one sample per stratum")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    _one_line(runner.invoke(main, ["fi", "resume", str(db)]), "no such campaign database")
    result = runner.invoke(main, [*base, "--samples", "40"])      # the corrected run is accepted
    assert result.exit_code == 0 and "40 of 40 injections" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.db"]  # no lock file left behind


_HOLD_LOCK = textwrap.dedent("""
    import sys, time
    from faultinj.campaign import CampaignLock
    lock = CampaignLock(sys.argv[1])
    print("locked", flush=True)
    sys.stdin.readline()
    lock.release()
""")


def test_second_campaign_on_a_database_is_refused(tmp_path):
    runner = CliRunner()
    db = tmp_path / "c.db"
    args = ["fi", "run", "mac_array", "-c", "4x4", "--samples", "30", "--workers", "1", "--db", str(db)]
    assert runner.invoke(main, args).exit_code == 0
    with sqlite3.connect(db) as con:
        before = con.execute("SELECT COUNT(*) FROM injections").fetchone()[0]
    content = db.read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        _one_line(runner.invoke(main, args), "in use by another running campaign", f"process {holder.pid}")
        _one_line(runner.invoke(main, ["fi", "resume", str(db)]), "in use by another running campaign")
        status = runner.invoke(main, ["fi", "status", str(db)])      # readers are not locked out
        assert status.exit_code == 0 and f"{before} of 30" in status.output, status.output
    finally:
        holder.communicate("\n", timeout=30)
    assert db.read_bytes() == content
    result = runner.invoke(main, ["fi", "resume", str(db)])
    assert result.exit_code == 0 and "30 of 30" in result.output, result.output


def test_two_simultaneous_runs_never_crash(tmp_path):
    """Two real processes start the same campaign on one database: each one either runs it (or finds it done) or is
    refused with one line; never an sqlite3.IntegrityError, and the database ends with every injection once."""
    db = tmp_path / "c.db"
    cmd = [sys.executable, "-m", "rampart.cli", "fi", "run", "mac_array", "-c", "4x4", "--samples", "3000",
           "--workers", "1", "--db", str(db)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.returncode, out, err) for p in procs for out, err in [p.communicate(timeout=600)]]
    for code, out, err in results:
        assert code in (0, 2), err
        if code == 2:
            assert err.strip().count("\n") == 0 and "in use by another running campaign" in err, err
        else:
            assert "3,000 of 3,000 injections" in out, out
        assert "Traceback" not in err
    assert any(code == 0 for code, _, _ in results)
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM injections").fetchone() == (3000, 3000)


# --- model inputs ----------------------------------------------------------------------------------------------------

def test_run_npu_refuses_other_dtypes_and_empty_models(tiny, tmp_path):
    runner = CliRunner()
    np.save(tmp_path / "x16.npy", np.zeros((1, 6, 6, 4), dtype=np.int16))
    _one_line(runner.invoke(main, ["run", "npu", str(tiny), "--input", str(tmp_path / "x16.npy")]),
              "int16", "int8")
    np.save(tmp_path / "u8.npy", np.zeros((1, 6, 6, 4), dtype=np.uint8))
    _one_line(runner.invoke(main, ["run", "npu", str(tiny), "--input", str(tmp_path / "u8.npy")]), "uint8")
    empty = tmp_path / "empty.tflite"
    empty.write_bytes(b"")
    _one_line(runner.invoke(main, ["run", "npu", str(empty)]), "empty")


def test_run_npu_config_is_a_preset_or_a_toml(tiny, tmp_path):
    runner = CliRunner()
    same = tmp_path / "same.toml"
    same.write_text('base = "u55-32"\n')
    result = runner.invoke(main, ["run", "npu", str(tiny), "-c", str(same)])
    assert result.exit_code == 0 and "on npu u55-32" in result.output and "bit-exact: yes" in result.output, \
        result.output
    slow = tmp_path / "slow.toml"     # any config: Vela compiles for its MACs/cycle, the NPU is built as configured
    slow.write_text('base = "u55-32"\next_latency = 20\n')
    result = runner.invoke(main, ["run", "npu", str(tiny), "-c", str(slow)])
    assert result.exit_code == 0 and "on npu u55-32 (ext_latency=20)" in result.output, result.output
    assert "bit-exact: yes" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "u55-64"\nmacz = 3\n')
    _one_line(runner.invoke(main, ["run", "npu", str(tiny), "-c", str(bad)]), "unknown config key(s) macz")


# --- snn demo: the core's shape from -c ------------------------------------------------------------------------------

def test_snn_demo_config_sets_the_core_shape(tmp_path):
    import dataclasses

    from rampart.cmd_snn import _demo_config

    @dataclasses.dataclass(frozen=True)
    class Sizes:          # the fields of the demos' size configs that a core shape sets or constrains
        n_core: int = 64
        n_inputs: int = 64
        n_pat: int = 24
        n_active: int = 1

    assert _demo_config("pattern", Sizes(), None) == Sizes()
    assert _demo_config("pattern", Sizes(), "256x256") == Sizes(n_core=256, n_inputs=256)
    toml = tmp_path / "wide.toml"
    toml.write_text('base = "64x64"\nn_neurons = 128\n')
    assert _demo_config("digits", Sizes(), str(toml)) == Sizes(n_core=128)
    runner = CliRunner()
    _one_line(runner.invoke(main, ["snn", "demo", "pattern", "-c", "16x16"]), "at least 24 inputs")
    _one_line(runner.invoke(main, ["snn", "demo", "digits", "-c", "256x256"]), "64 inputs")
    _one_line(runner.invoke(main, ["snn", "demo", "digits", "-c", "4x4"]), "lanes=4")
    _one_line(runner.invoke(main, ["snn", "demo", "digits", "-c", "9x9"]), "unknown config '9x9'")
