"""cocotb + Verilator tests of the NPU DMA (``cocotb_npu_dma.py``) on the stub-compute U55-128 build."""
import pytest
from cocotb_npu_run import run_bench


def test_dma_cocotb():
    """Every test of the module; the random test with 8 DMA programs."""
    run_bench("cocotb_npu_dma", sweep=8)


@pytest.mark.slow
def test_dma_cocotb_random_sweep():
    run_bench("cocotb_npu_dma", tests=("random_copies_match_the_model",), seed=5, sweep=200)
