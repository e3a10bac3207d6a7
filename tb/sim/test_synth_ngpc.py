"""``ngpc`` on the ULX3S-85F: the flow asks Yosys for LUT multipliers (-nodsp: a lane's 512 multipliers exceed the
FPGA's 156 DSPs) and maps LUTs with classic ABC instead of ABC9 (too slow on these netlists); the bitstream itself
(fpga-w2-x1, the largest preset shown to fit, BENCHMARKS.md ngpc_synth) is slow."""
import pytest

from rtl.boards import BOARDS, SynthHarness
from rtl.designs import get_design


def test_fpga_preset_plan_has_lut_multipliers_and_classic_abc(tmp_path):
    entry = get_design("ngpc")
    harness = SynthHarness(entry.make(entry.config("fpga-w2-x1")))
    plan = BOARDS["ulx3s-85f"].platform().build(harness, name="top", do_build=False, synth_opts=entry.synth_opts,
                                                script_after_synth=entry.synth_after)
    plan.extract(str(tmp_path))
    script = [line.strip() for line in (tmp_path / "top.ys").read_text().splitlines()]
    start = script.index("synth_ecp5 -nodsp -run begin:map_luts -top top")
    assert script[start + 1:start + 5] == ["techmap -map +/lattice/latches_map.v", "abc -lut 4:7 -dress", "clean",
                                           "synth_ecp5 -top top -run map_cells:"]
    assert script[start + 5] == "write_json top.json"
    assert entry.config("fpga-x1").macs_per_lane == entry.config("fpga-w2-x1").macs_per_lane == 512


@pytest.mark.slow
def test_fpga_w2_x1_bitstream(tmp_path):
    from sim.synth import synth

    result = synth("ngpc", "fpga-w2-x1", "ulx3s-85f", tmp_path)
    assert result.bitstream.exists() and result.lut.used <= result.lut.available
