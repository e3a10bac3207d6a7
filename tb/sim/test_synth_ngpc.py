"""``ngpc`` on the ULX3S-85F: the flow asks Yosys for LUT multipliers (-nodsp: a lane's 512 multipliers exceed the
FPGA's 156 DSPs) and the FPGA-sized cluster elaborates in the synthesis harness; the bitstream itself is slow."""
import pytest

from rtl.boards import BOARDS, SynthHarness
from rtl.designs import get_design


def test_fpga_preset_plan_has_lut_multipliers(tmp_path):
    entry = get_design("ngpc")
    harness = SynthHarness(entry.make(entry.config("fpga-x1")))
    plan = BOARDS["ulx3s-85f"].platform().build(harness, name="top", do_build=False, synth_opts=entry.synth_opts)
    plan.extract(str(tmp_path))
    assert "synth_ecp5 -nodsp" in (tmp_path / "top.ys").read_text()
    assert entry.config("fpga-x1").macs_per_lane == 512


@pytest.mark.slow
def test_fpga_x1_bitstream(tmp_path):
    from sim.synth import synth

    result = synth("ngpc", "fpga-x1", "ulx3s-85f", tmp_path)
    assert result.bitstream.exists() and result.lut.used <= result.lut.available
