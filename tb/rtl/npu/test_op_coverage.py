"""The NPU operator coverage matrix (``models/npu/op_matrix.py``, ``benchmarks/npu_op_coverage.py``) as tests: every
row not listed in :data:`OPEN` must run bit-exactly vs LiteRT on the Verilated NPU (two random inputs each).

Default tier: on u55-128, the rows whose operator no other default-tier test runs (memory moves, QUANTIZE, the RELU
family, PRELU, EXP, RSQRT, SQUARED_DIFFERENCE, MEAN, ARG_MAX, RESIZE_BILINEAR); on u55-32 too, the rows that need
9-bit weights (ARG_MAX), a depthwise in sub-kernel passes (MEAN over 80x64) and a NEAREST-upscaled POOL
(RESIZE_BILINEAR). Slow tier: every passing row on all four configs."""
import pytest

from drivers.npu_coverage import run_row
from drivers.transport import SimDevice
from models.npu.op_matrix import ROWS

#: Rows that are not expected to pass, with why (another package's operator, or not runnable by LiteRT).
OPEN = {
    "relu_n1_to_1_int16_4x5x6": "LiteRT has no int16 RELU_N1_TO_1 kernel",
    "relu_0_to_1_int16_4x5x6": "LiteRT has no int16 RELU_0_TO_1 kernel",
    "transpose_conv_int8_-": "not built here (tb/rtl/npu/test_resample.py runs 8 TRANSPOSE_CONV models)",
    "unidirectional_sequence_lstm_int16_-": "not built",
    "shape_int32_-": "no NPU op",
    "mean_int16_hw_5x6x8": "open: a 16-bit IFM on the MAC path",
    # Vela writes the uint8 TRANSPOSE's identity POOL as S8 IFM / OFM, zero points 128, clamp 0..127: inputs >= 128
    # come out as 0 on the NPU and in the golden model alike (the stream, not the hardware, differs from LiteRT)
    "transpose_uint8_hw": "Vela's uint8 TRANSPOSE stream clamps inputs >= 128 to 0",
}

#: Operators that the default tier runs here (the others' default-tier tests are test_vector_ops / test_sweep).
FAST_OPS = {"PAD", "MIRROR_PAD", "CONCATENATION", "SLICE", "STRIDED_SLICE", "SPLIT", "SPLIT_V", "PACK", "UNPACK",
            "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "TRANSPOSE", "QUANTIZE", "RELU", "RELU6", "RELU_N1_TO_1",
            "RELU_0_TO_1", "PRELU", "EXP", "RSQRT", "SQUARED_DIFFERENCE", "MEAN", "ARG_MAX", "RESIZE_BILINEAR"}
#: Rows the default tier also runs on a second config (u55-32: the smallest SHRAM and micro-block).
SECOND_CONFIG_ROWS = ("arg_max_int8_c", "mean_int8_hw_80x64x2", "resize_bilinear_int8_2x")

PASSING = [r for r in ROWS if r.name not in OPEN]
FAST = [r for r in PASSING if r.op in FAST_OPS and (r.precision == "int8" or r.op in ("QUANTIZE", "MEAN"))]


def _check(config, rows):
    with SimDevice.open("npu", config) as dev:
        results = [run_row(dev, config, row) for row in rows]
    bad = [f"{r.row.name}: {r.result} {r.detail} [{r.npu_ops}]" for r in results if not r.passed]
    assert not bad, "\n".join(bad)


def test_open_rows_exist():
    names = {r.name for r in ROWS}
    assert set(OPEN) <= names, set(OPEN) - names


def test_coverage_fast_u55_128():
    _check("u55-128", FAST)


def test_coverage_fast_u55_32():
    _check("u55-32", [r for r in PASSING if r.name in SECOND_CONFIG_ROWS])


@pytest.mark.slow
@pytest.mark.parametrize("config", ["u55-32", "u55-64", "u55-128", "u55-256"])
def test_coverage_all_configs(config):
    _check(config, PASSING)
