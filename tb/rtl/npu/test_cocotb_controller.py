"""cocotb + Verilator tests of the NPU controller (``cocotb_npu_controller.py``) on the stub-compute U55-128 build,
and one end-to-end conv through the real compute unit (``cocotb_npu_e2e.py``, slow: a cocotb build of the full NPU)."""
import pytest
from cocotb_npu_run import run_bench

from rtl.npu.config import PRESETS


def test_controller_cocotb():
    """Every test of the module; the random-stream test with 100 streams."""
    run_bench("cocotb_npu_controller", sweep=100)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [2, 3])
def test_controller_cocotb_random_sweep(seed):
    run_bench("cocotb_npu_controller", tests=("random_streams_match_the_model",), seed=seed, sweep=3000)


@pytest.mark.slow
def test_end_to_end_conv_cocotb():
    run_bench("cocotb_npu_e2e", PRESETS["u55-128"], env={"RAMPART_NPU_PRESET": "u55-128"})
