"""``neurocore_uart`` on a board: the registered UART adapter puts rx/tx on the board's serial pins."""
import json

import pytest
from amaranth.back import rtlil
from amaranth.build import ResourceError
from amaranth.hdl import Fragment

from rtl.boards import BOARDS, SynthHarness, get_adapter
from rtl.designs import get_design
from rtl.neurocore.board import baud_error, check_divisor, uart_adapter
from sim.synth import synth


def _design(preset="16x16"):
    entry = get_design("neurocore_uart")
    return entry.make(entry.config(preset))


def test_adapter_is_named_by_the_neurocore_uart_descriptor():
    assert get_adapter("neurocore_uart") is uart_adapter
    assert get_adapter("mac_array") is None


@pytest.mark.parametrize("preset", ["16x16", "64x64", "256x256"])
def test_presets_divisor_matches_ulx3s_clock(preset):
    entry = get_design("neurocore_uart")
    divisor = entry.config(preset).divisor
    assert divisor == 217
    assert check_divisor(divisor, BOARDS["ulx3s-85f"].clock_hz)
    assert baud_error(divisor, 25e6) < 0.001
    assert not check_divisor(divisor, BOARDS["icebreaker"].clock_hz)   # 12 MHz needs divisor 104


@pytest.mark.parametrize("board", ["ulx3s-85f", "icebreaker"])
def test_adapter_elaborates_on_board_platform(board):
    platform = BOARDS[board].platform()
    design = _design()
    handled = []

    def spy(m, plat, d):
        paths = uart_adapter(m, plat, d)
        handled.extend(paths)
        return paths

    harness = SynthHarness(design, adapter=spy)
    Fragment.get(harness, platform)
    assert handled == [("rx",), ("tx",)]
    for name in ("uart", "led"):   # taken by the adapter and the harness
        with pytest.raises(ResourceError, match="already been requested"):
            platform.request(name, 0)


def test_adapter_without_platform_leaves_ports_to_harness():
    design = _design()
    assert uart_adapter(None, None, design) == []
    rtlil.convert(SynthHarness(design, adapter=uart_adapter), ports=[])


@pytest.mark.slow
def test_ulx3s_build_uses_uart_pins(tmp_path):
    result = synth("neurocore_uart", "16x16", "ulx3s-85f", tmp_path)
    assert result.bitstream.exists()
    assert result.timing_met, f"fmax {result.fmax_mhz} MHz below the {result.clock_mhz} MHz board clock"
    lpf = (tmp_path / "top.lpf").read_text()
    assert 'LOCATE COMP "uart_0__rx__io" SITE "M1"' in lpf
    assert 'LOCATE COMP "uart_0__tx__io" SITE "L4"' in lpf
    # The pins survived synthesis and placement: both I/O cells are in the routed design.
    netlist = json.loads((tmp_path / "top.json").read_text())
    ports = set(netlist["modules"]["top"]["ports"])
    assert {"uart_0__rx__io", "uart_0__tx__io"} <= ports
    # the core's memories were not optimised away (at 16x16 its weight banks are small enough for LUT RAM)
    util = json.loads((tmp_path / "report.json").read_text())["utilization"]
    assert util["TRELLIS_RAMW"]["used"] > 0
