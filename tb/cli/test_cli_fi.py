"""`rampart fi`: a small campaign from the CLI, its status, report and replays, and bad input."""
import sqlite3

from click.testing import CliRunner

from rampart.cli import main


def test_campaign_status_report_and_replay(tmp_path):
    runner = CliRunner()
    db = tmp_path / "c.db"
    result = runner.invoke(main, ["fi", "run", "mac_array", "-c", "4x4", "--samples", "400", "--workers", "1",
                                  "--seed", "3", "--db", str(db), "--report", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    assert "400 of 400 injections" in result.output
    # unmasked, outcomes and derated FIT per block, and the flip-flop heat map
    assert (tmp_path / "rep" / "c.html").read_text().count("data:image/png;base64,") == 4
    result = runner.invoke(main, ["fi", "status", str(db)])
    assert result.exit_code == 0 and "400 of 400" in result.output
    with sqlite3.connect(db) as con:
        rows = {outcome: ident for ident, outcome in con.execute("SELECT id, outcome FROM injections")}
    assert {0, 1} <= set(rows), "the MAC array workload gives masked (0) and SDC (1) faults"
    # a replay from scratch agrees with the stored outcome
    masked = runner.invoke(main, ["fi", "replay", str(db), str(rows[0])])
    assert "stored outcome MASKED" in masked.output and "output difference: none" in masked.output
    assert "golden run again: after cycle" in masked.output
    sdc = runner.invoke(main, ["fi", "replay", str(db), str(rows[1]), "--trace", str(tmp_path / "sdc.fst")])
    assert sdc.exit_code == 0, sdc.output
    assert "stored outcome SDC" in sdc.output and "output difference: cycle" in sdc.output
    assert (tmp_path / "sdc.fst").stat().st_size > 0


def test_bad_campaign_input_is_one_line(tmp_path):
    runner = CliRunner()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00not sqlite" * 100)
    for args in (["fi", "status", str(garbage)], ["fi", "resume", str(garbage)],
                 ["fi", "run", "mac_array", "--db", str(tmp_path / "x.db")],
                 ["fi", "run", "mac_array", "--samples", "5", "--margin", "0.01", "--db", str(tmp_path / "x.db")],
                 ["fi", "sites", "nope"]):
        result = runner.invoke(main, args)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2, (args, result.output)
        assert len(lines) == 1 and lines[0].startswith("rampart: error:"), (args, result.output)
    assert garbage.read_bytes() == b"\x00not sqlite" * 100


def test_exhaustive_and_iterative_campaigns(tmp_path):
    runner = CliRunner()
    config = tmp_path / "small.toml"
    config.write_text('base = "4x4"\nrows = 2\ncols = 2\n')
    db = tmp_path / "exh.db"
    result = runner.invoke(main, ["fi", "run", "mac_array", "-c", str(config), "--cycles", "200", "--exhaustive",
                                  "--workers", "1", "--db", str(db), "--report", str(tmp_path / "rep")])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "51,200 of 51,200 injections" in text and "over the strata (exhaustive;" in text
    assert "--exhaustive" in (tmp_path / "rep" / "exh.html").read_text()
    db = tmp_path / "it.db"
    args = ["fi", "run", "mac_array", "-c", str(config), "--cycles", "300", "--iterative", "--margin", "0.04",
            "--confidence", "0.95", "--strata", "block,cycle", "--cycle-windows", "3", "--workers", "2",
            "--db", str(db)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "margin met" in text and "block x 3 cycle windows, iterative" in text
    status = runner.invoke(main, ["fi", "status", str(db)])
    assert status.exit_code == 0 and "margin met" in status.output
    assert runner.invoke(main, args).output.count("margin met") == 1     # rerun: nothing more to do
    help_text = runner.invoke(main, ["fi", "run", "--help"]).output
    for option in ("--iterative", "--exhaustive", "--scheduler", "--cycle-windows", "--per-block", "--cycles"):
        assert option in help_text


def test_bad_sampling_options_are_one_line(tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "x.db")
    for extra in (["--iterative", "--samples", "100"], ["--per-block", "--samples", "100"],
                  ["--exhaustive", "--samples", "100"], ["--samples", "100", "--cycle-windows", "4"],
                  ["--iterative", "--margin", "0.01", "--exhaustive"]):
        result = runner.invoke(main, ["fi", "run", "mac_array", "-c", "4x4", "--db", db, *extra])
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert result.exit_code == 2, (extra, result.output)
        assert len(lines) == 1 and lines[0].startswith("rampart: error:"), (extra, result.output)


def test_element_strata_multi_bit_upsets_and_stratified_rates(tmp_path):
    """`--strata element --mbu 2 --iterative`: status shows the upsets and the stratified overall rate of every
    outcome class (the strata's rates weighted by their populations), the report too; --rates needs --iterative."""
    runner = CliRunner()
    config = tmp_path / "small.toml"
    config.write_text('base = "4x4"\nrows = 2\ncols = 2\n')
    db = tmp_path / "el.db"
    args = ["fi", "run", "mac_array", "-c", str(config), "--cycles", "300", "--iterative", "--margin", "0.05",
            "--confidence", "0.95", "--strata", "element", "--mbu", "2", "--pilot", "10", "--rates", "unmasked,sdc",
            "--workers", "1", "--db", str(db), "--report", str(tmp_path / "rep")]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    from faultinj.campaign import campaign_status

    status = campaign_status(db)
    text = " ".join(runner.invoke(main, ["fi", "status", str(db)]).output.split())
    assert "2-bit upsets" in text and "13 strata weighted by their populations" in text
    for rate in ("unmasked", "sdc", "latent"):
        est = status.stratified[rate]
        assert f"{rate} {est.estimate:.2%} [{est.low:.2%}, {est.high:.2%}]" in text
    assert abs(status.stratified["unmasked"].estimate - status.overall.rates["unmasked"].estimate) > 1e-3
    page = (tmp_path / "rep" / "el.html").read_text()
    assert "Overall outcome rates" in page and "2-bit upsets" in page
    assert "--strata element" in page and "--mbu 2" in page and "--pilot 10 --rates unmasked,sdc" in page
    replay = runner.invoke(main, ["fi", "replay", str(db), "0"])
    assert replay.exit_code == 0 and "2 adjacent bits" in replay.output, replay.output
    bad = runner.invoke(main, ["fi", "run", "mac_array", "--samples", "10", "--rates", "sdc", "--db", str(db)])
    assert bad.exit_code == 2 and bad.output.strip() == "rampart: error: --rates only applies to --iterative"
