"""Ops beyond the brick ring and kernels beyond 8x8 (issue 13 part 3), bit-exact vs LiteRT on the Verilated NPU.

* **Split ops**: an OFM block whose decoded weights do not fit the brick ring (``2 x WEIGHT_BUFFER_BYTES``) runs in
  IFM-depth passes with the block's partial sums kept in the accumulator buffer (:mod:`rtl.npu.issue`). Each case
  checks, from the command stream and the weight-order loop nest of ``npu-weights.md`` section 3 (not from the
  RTL), that Vela's block really is larger than the ring on that config. (The 5x5x120 -> 96 conv of
  ``test_sweep.LONG_STREAMS`` is split on u55-256 too.)
* **Large kernels**: kernels up to Vela's limits are walked as 8x8 sub-kernels (KWS DS-CNN's 10x4 stride-2 first
  conv, 9x9 part-kernel-first, a 3x17 depth-first conv, a 11x11 depthwise, a 20x2 VALID conv).

Fast tier: two configs each (configs the sweep builds anyway); ``slow``: all four.
"""
import numpy as np
import pytest

from drivers.transport import SimDevice
from models.npu import cmdstream as cs
from models.npu import tflite_builder as tb
from models.npu import vela
from rtl.npu.compute import WEIGHT_BUFFER_BYTES
from rtl.npu.config import PRESETS, NpuConfig
from tb.rtl.npu.test_sweep import CONFIGS, Case, run_case

SPLIT_CASES = (
    Case(tb.FullyConnected(128, activation="RELU"), (640,), 5, 3),     # the autoencoder's 640 -> 128 layer
    Case(tb.Conv2D(96, kernel=(3, 3)), (4, 4, 120), 4, 3),            # Vela: one 96-deep block, ~110 KB
    Case(tb.Conv2D(128, kernel=(5, 5), activation="RELU6"), (3, 3, 40), 6, -7),   # part-kernel-first
)

KERNEL_CASES = (
    Case(tb.Conv2D(64, kernel=(10, 4), stride=(2, 2), activation="RELU"), (49, 10, 1), 7, -3),   # KWS DS-CNN
    Case(tb.Conv2D(8, kernel=(9, 9)), (12, 12, 3), 8, 1),
    Case(tb.Conv2D(12, kernel=(3, 17), padding="SAME"), (6, 20, 40), 9, 0),
    Case(tb.DepthwiseConv2D((11, 11), activation="RELU6"), (13, 12, 10), 10, 4),
    Case(tb.Conv2D(6, kernel=(20, 2), stride=(1, 2), padding="VALID"), (24, 7, 5), 11, -20),
)


def _conv_kicks(case: Case, config: str) -> list[cs.Kick]:
    art = vela.compile_cached(case.model(), config)
    return [k for k in cs.kicks(art.commands()) if k.name in ("NPU_OP_CONV", "NPU_OP_DEPTHWISE")]


def split_ops(config: str) -> None:
    rng = np.random.default_rng(31)
    with SimDevice.open("npu", config) as sim:
        for case in SPLIT_CASES:
            kicks = [k for k in _conv_kicks(case, config) if k.name == "NPU_OP_CONV"]
            biggest = max(cs.block_weight_bytes(k, PRESETS[config].ublock_d) for k in kicks)
            assert biggest > 2 * WEIGHT_BUFFER_BYTES, (config, case, biggest)
            run_case(sim, config, case, rng)


def large_kernels(config: str) -> None:
    rng = np.random.default_rng(32)
    with SimDevice.open("npu", config) as sim:
        for case in KERNEL_CASES:
            k = _conv_kicks(case, config)[0]
            assert max(k.reg("KERNEL_HEIGHT_M1"), k.reg("KERNEL_WIDTH_M1")) >= 8, (config, case)
            run_case(sim, config, case, rng)


@pytest.mark.parametrize("config", ("u55-32", "u55-128"))
def test_split_ops(config):
    split_ops(config)


@pytest.mark.parametrize("config", ("u55-128", "u55-256"))
def test_large_kernels(config):
    large_kernels(config)


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
def test_big_ops_all_configs(config):
    split_ops(config)
    large_kernels(config)


#: u55-256 with a 3 KiB IFM line buffer: the 6x6x120 IFM (540 words) is not resident, so the split conv re-stages
#: it for every (group, OFM ublock) pass through a 4-row ring (90 words a row).
SMALL_LINE_BUFFER = NpuConfig(**{**PRESETS["u55-256"].__dict__, "shram_kib": 3})


@pytest.mark.slow
def test_split_op_ifm_not_resident():
    case = Case(tb.Conv2D(96, kernel=(3, 3)), (6, 6, 120), 12, 5)
    (kick,) = [k for k in _conv_kicks(case, "u55-256") if k.name == "NPU_OP_CONV"]
    assert cs.block_weight_bytes(kick, 8) > 2 * WEIGHT_BUFFER_BYTES
    with SimDevice.open("npu", SMALL_LINE_BUFFER) as sim:
        run_case(sim, "u55-256", case, np.random.default_rng(33), SMALL_LINE_BUFFER)
