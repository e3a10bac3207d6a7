"""The NPU operator coverage matrix (``models/npu/op_matrix.py``, ``benchmarks/npu_op_coverage.py``) as tests: every
row not listed in :data:`OPEN` must run bit-exactly vs LiteRT on the Verilated NPU (two random inputs each).

Default tier: every passing row on u55-128 and u55-256 (the builds test_vector_ops uses; with Vela's compiles cached
about 6 s each), so every operator and precision of the matrix runs on two configs; on u55-32 too, the rows that
need 9-bit weights (ARG_MAX), a depthwise in sub-kernel passes (MEAN over 80x64) and a NEAREST-upscaled POOL
(RESIZE_BILINEAR). Slow tier: every passing row on u55-32 and u55-64, so ``make test-all`` runs them on all four."""
import pytest

from drivers.npu_coverage import run_row
from drivers.transport import SimDevice
from models.npu.op_matrix import ROWS
from rtl.npu.config import PRESETS

#: Rows LiteRT runs and Vela puts on the NPU whose stream asks for what the NPU does not implement, so it stops with
#: COMPUTE_FAULT (UNSUPPORTED) (test_not_implemented_rows_are_refused). None at present: the last ones, uint8 MAC ops
#: (IFM / OFM precision U8) and dilation 2 (KERNEL_STRIDE dilation bits), run (tb/rtl/npu/test_mac_uint8.py,
#: test_dilation.py).
NOT_IMPLEMENTED: dict[str, str] = {}

#: Rows that are not expected to pass, with why (another package's operator, or not runnable by LiteRT).
OPEN = {
    "relu_n1_to_1_int16_4x5x6": "LiteRT has no int16 RELU_N1_TO_1 kernel",
    "relu_0_to_1_int16_4x5x6": "LiteRT has no int16 RELU_0_TO_1 kernel",
    "transpose_conv_int8_-": "not built here (tb/rtl/npu/test_resample.py runs 8 TRANSPOSE_CONV models)",
    # LiteRT's int16 LSTM wants float biases (its integer LSTM is int8-only); on the NPU the lowered stream stops at
    # its first gate's int16 ELEMENTWISE ADD (SIGMOID activation, which runs now): scale mode 0 with OPA / OPB_SCALE
    # 16384, an operand scaling the vector unit does not implement
    "unidirectional_sequence_lstm_int16_3x8_8": "LiteRT has no int16 LSTM kernel; vector unit: int16 ADD scale mode 0 "
                                                "with non-unit operand scales",
    "shape_int32_-": "no NPU op",
    # Vela writes the 16-bit "reduced" scale for an int16 FC as for conv; LiteRT's int16 FC uses the 32-bit
    # multiplier: ~10% of outputs off by one (the stream, not the NPU; tb/rtl/npu/test_int16_mac.py)
    "fully_connected_int16_40x12_relu6": "Vela's int16 FC scale is not LiteRT's (off by one in ~10% of outputs)",
    # Vela writes the uint8 TRANSPOSE's identity POOL as S8 IFM / OFM, zero points 128, clamp 0..127: inputs >= 128
    # come out as 0 on the NPU and in the golden model alike (the stream, not the hardware, differs from LiteRT)
    "transpose_uint8_hw": "Vela's uint8 TRANSPOSE stream clamps inputs >= 128 to 0",
    **NOT_IMPLEMENTED,
}

#: Configs the default tier runs every passing row on; the slow tier runs them on the other two.
FAST_CONFIGS = ("u55-128", "u55-256")
SLOW_CONFIGS = ("u55-32", "u55-64")
#: Rows the default tier also runs on a third config (u55-32: the smallest SHRAM and micro-block).
SECOND_CONFIG_ROWS = ("arg_max_int8_c", "mean_int8_hw_80x64x2", "resize_bilinear_int8_2x")

PASSING = [r for r in ROWS if r.name not in OPEN]


def _check(config, rows):
    with SimDevice.open("npu", config) as dev:
        results = [run_row(dev, config, row) for row in rows]
    bad = [f"{r.row.name}: {r.result} {r.detail} [{r.npu_ops}]" for r in results if not r.passed]
    assert not bad, "\n".join(bad)


def test_open_rows_exist():
    names = {r.name for r in ROWS}
    assert set(OPEN) <= names, set(OPEN) - names


@pytest.mark.parametrize("config", FAST_CONFIGS)
def test_coverage_fast(config):
    _check(config, PASSING)


def test_coverage_fast_u55_32():
    _check("u55-32", [r for r in PASSING if r.name in SECOND_CONFIG_ROWS])


@pytest.mark.slow
@pytest.mark.parametrize("config", SLOW_CONFIGS)
def test_coverage_other_configs(config):
    _check(config, PASSING)


def test_not_implemented_rows_are_refused():
    """The :data:`NOT_IMPLEMENTED` rows stop with COMPUTE_FAULT (UNSUPPORTED), never hang or write a wrong result
    silently. When the NPU implements one this fails: take it out of NOT_IMPLEMENTED."""
    if not NOT_IMPLEMENTED:
        pytest.skip("no op-matrix row is refused by the NPU")
    rows = [r for r in ROWS if r.name in NOT_IMPLEMENTED]
    assert len(rows) == len(NOT_IMPLEMENTED)
    with SimDevice.open("npu", "u55-128") as dev:
        results = [run_row(dev, "u55-128", row) for row in rows]
    assert [(r.result, r.detail.split(" at ")[0]) for r in results] == [
        ("UNSUPPORTED", "COMPUTE_FAULT (UNSUPPORTED)")] * len(rows), [(r.row.name, r.result, r.detail) for r in results]


def test_split_depthwise_over_the_accumulator_buffer_halts():
    """MEAN over 80x64's second depthwise (64x64 kernel: sub-kernel passes) with its OFM patched to 32x32: the partial
    sums of 1,024 positions do not fit u55-128's accumulator buffer (256 micro-blocks), so the op is refused with
    COMPUTE_FAULT / UNSUPPORTED and the NPU halts (no reads for it, no hang)."""
    import numpy as np

    from drivers import npu as npu_driver
    from models.npu import vela
    from rtl.npu.compute import ComputeError
    from rtl.npu.controller import ErrorCode
    from tb.rtl.npu.test_vector_ops import load

    config = "u55-128"
    row = next(r for r in ROWS if r.name == "mean_int8_hw_80x64x2")
    art = vela.compile_cached(row.builder(0), config)
    words = [int(w) for w in art.command_stream]
    second = [i for i, w in enumerate(words) if w == 0x0003][1]      # the second NPU_OP_DEPTHWISE
    words[second:second] = [0x001F0112, 0x001F0111]                   # OFM_HEIGHT_M1 / OFM_WIDTH_M1 = 31
    with SimDevice.open("npu", config) as sim:
        lay = load(sim, PRESETS[config], art, [np.zeros(t.nbytes, np.int8) for t in art.inputs])
        addr = lay.cmd_addr + art.header.stream_offset
        npu_driver.load_bytes(sim, addr, np.asarray(words, "<u4").tobytes())
        npu_driver.start(sim, addr, 4 * len(words), lay.basep)
        assert npu_driver.wait_done(sim, 200_000, chunk=64) is not None, "NPU hung"
        assert (sim.peek("error"), sim.peek("error_code"), sim.peek("compute_error")) == (
            1, ErrorCode.COMPUTE_FAULT, ComputeError.UNSUPPORTED.value)


@pytest.mark.slow
@pytest.mark.parametrize("config,shape", [("u55-128", (1, 80, 64, 20)), ("u55-32", (1, 80, 64, 40))],
                         ids=["u55-128-3-ublocks", "u55-32-2-blocks"])
def test_split_depthwise_ublocks_and_blocks(config, shape):
    """MEAN over 80x64 with more channels: the sub-kernel passes of its 64x64 depthwise over several OFM ublocks
    (u55-128: 3 of 8 channels) and two OFM blocks (u55-32: Vela's block depth 32 of 40), bit-exact vs LiteRT."""
    from models.npu.op_matrix import Row, _mean

    row = Row("MEAN", "int8", "x".join(map(str, shape[1:])), _mean("int8", shape, (1, 2)))
    with SimDevice.open("npu", config) as dev:
        result = run_row(dev, config, row, max_cycles=3_000_000)
    assert result.passed, f"{result.result} {result.detail}"
