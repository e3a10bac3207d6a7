"""`rampart synth`: board harness, nextpnr result parsing, one real iCEBreaker build (and a slow ULX3S one)."""
import pytest
from amaranth import Module
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.wiring import In
from click.testing import CliRunner

import sim.synth
from base import RampartError
from rampart.cli import RampartGroup
from rampart.cmd_synth import synth as synth_cmd
from rtl.boards import BOARDS, SynthHarness, get_board, lfsr_layout, xor_stage_widths
from rtl.designs import get_design
from sim.synth import SynthResult, parse_nextpnr, synth


def _cli():
    """A stand-in for rampart.cli.main with only this command, so errors go through RampartGroup."""
    return RampartGroup("rampart", commands=[synth_cmd])


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "mac2x2.toml"
    path.write_text('base = "4x4"\nrows = 2\ncols = 2\n')
    return path


@pytest.fixture(scope="module")
def icebreaker_build(tmp_path_factory, small_config):
    """The one real build of the default test run (~40 s)."""
    return synth("mac_array", small_config, "icebreaker", tmp_path_factory.mktemp("ice"))


def test_boards_registry():
    assert set(BOARDS) == {"ulx3s-85f", "icebreaker"}
    assert BOARDS["ulx3s-85f"].clock_hz == 25e6
    assert BOARDS["icebreaker"].clock_hz == 12e6
    with pytest.raises(RampartError, match=r"unknown board 'nope' \(known: ulx3s-85f, icebreaker\)"):
        get_board("nope")


def test_lfsr_covers_inputs_and_xor_tree_shrinks():
    assert lfsr_layout(3) == (16, (16, 15, 13, 4))
    assert lfsr_layout(69) == (69, (64, 63, 61, 60))
    assert xor_stage_widths(16) == []
    assert xor_stage_widths(256) == [16]
    assert xor_stage_widths(257) == [17, 2]


def test_harness_elaborates_without_board_and_honours_adapter():
    entry = get_design("mac_array")
    design = entry.make(entry.config("4x4"))
    harness = SynthHarness(design)
    assert harness.lfsr_width == 4 * 8 + 4 * 8 + 1 + 1 + 2
    rtlil.convert(harness, ports=[])

    seen = []

    def adapter(m, platform, d):
        seen.append((platform, d))
        return [("en",), ("out",)]

    rtlil.convert(SynthHarness(entry.make(entry.config("4x4")), adapter=adapter), ports=[])
    assert len(seen) == 1 and seen[0][0] is None
    with pytest.raises(TypeError, match="adapter must be callable"):
        SynthHarness(design, adapter=42)


def test_harness_refuses_design_without_outputs():
    class Sink(wiring.Component):
        a: In(8)

        def elaborate(self, platform):
            return Module()

    sink = Sink()
    with pytest.raises(RampartError, match="Sink has no outputs"):
        SynthHarness(sink)
    rtlil.convert(sink)   # elaborated, so amaranth does not warn about an unused elaboratable


ICE40_LOG = """\
Info:      729 LCs used as LUT4 only
Info:      207 LCs used as LUT4 and DFF
Info:       68 LCs used as DFF only
Info: Device utilisation:
Info: \t         ICESTORM_LC:    1007/   5280    19%
Info: \t        ICESTORM_RAM:       0/     30     0%
Info: \t        ICESTORM_DSP:       2/      8    25%
Info: Max frequency for clock 'button_sync.clk': 31.63 MHz (PASS at 12.00 MHz)
Info: Max frequency for clock 'button_sync.clk': 29.35 MHz (PASS at 12.00 MHz)
"""


def test_parse_nextpnr_log_without_report(tmp_path):
    log = tmp_path / "top.tim"
    log.write_text(ICE40_LOG)
    resources, fmax, clock = parse_nextpnr(tmp_path / "report.json", log, "ice40")
    got = {r.name: (r.used, r.available) for r in resources}
    assert got == {"LUT": (936, 5280), "FF": (275, 5280), "BRAM": (0, 30), "DSP": (2, 8), "LC": (1007, 5280)}
    assert [r.name for r in resources][:4] == ["LUT", "FF", "BRAM", "DSP"]
    assert (fmax, clock) == (29.35, 12.0)   # the post-route figure is the last one


def test_unknown_board_is_one_line_exit_2(small_config, tmp_path):
    result = CliRunner().invoke(_cli(), ["synth", "mac_array", "--board", "de0-nano", "--config", str(small_config),
                                         "--out", str(tmp_path)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0] == "rampart: error: unknown board 'de0-nano' (known: ulx3s-85f, icebreaker)"


def test_tool_failure_names_the_log(small_config, tmp_path, monkeypatch):
    real_env = sim.synth._tool_env
    monkeypatch.setattr(sim.synth, "_tool_env", lambda board: real_env(board) | {"YOSYS": "false"})
    with pytest.raises(RampartError, match=r"^yosys failed for board icebreaker .*\(see .*synth\.log\)$"):
        synth("mac_array", small_config, "icebreaker", tmp_path)


def test_placement_overflow_says_it_does_not_fit(tmp_path):
    (tmp_path / "synth.log").write_text("ERROR: Unable to place cell 'x', no BELs remaining\n")
    (tmp_path / "top.json").write_text("{}")
    (tmp_path / "top.tim").write_text(ICE40_LOG.replace("1007/   5280    19%", "15763/   5280   298%"))
    message = sim.synth._failure(tmp_path, get_board("icebreaker"))
    assert message == (f"nextpnr-ice40 failed for board icebreaker: the design does not fit (ICESTORM_LC 15763/5280)"
                       f" (see {tmp_path / 'top.tim'})")


def test_icebreaker_build(icebreaker_build):
    r = icebreaker_build
    assert isinstance(r, SynthResult)
    assert r.bitstream.suffix == ".bin" and r.bitstream.stat().st_size > 0
    assert r.log.exists() and r.log.name == "top.tim"
    assert [u.name for u in r.resources[:4]] == ["LUT", "FF", "BRAM", "DSP"]
    assert 0 < r.lut.used < r.lut.available == 5280
    assert r.harness_ff < r.ff.used < r.ff.available
    assert r.bram.used == 0 and r.dsp.available == 8
    assert 0 < r.lut.percent < 100
    assert r.fmax_mhz > 0 and r.clock_mhz == 12.0
    assert r.seconds > 0


def test_cli_prints_table(icebreaker_build, small_config, tmp_path, monkeypatch):
    monkeypatch.setattr(sim.synth, "synth", lambda *args, **kwargs: icebreaker_build)
    result = CliRunner().invoke(_cli(), ["synth", "mac_array", "-b", "icebreaker", "-c", str(small_config),
                                         "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for text in ("LUT", "5280", "fmax", "12 MHz board clock", str(icebreaker_build.bitstream.name)):
        assert text in result.output


def test_help_lists_boards():
    result = CliRunner().invoke(synth_cmd, ["--help"])
    assert result.exit_code == 0
    assert "ulx3s-85f" in result.output and "icebreaker" in result.output


@pytest.mark.slow
def test_ulx3s_mac_array_4x4(tmp_path):
    r = synth("mac_array", "4x4", "ulx3s-85f", tmp_path)
    assert r.bitstream.suffix == ".bit" and r.bitstream.exists()
    assert r.dsp.used == 16            # one MULT18X18D per PE
    assert r.lut.used > 0 and r.ff.used > r.harness_ff
    assert r.fmax_mhz > 0 and r.clock_mhz == 25.0
