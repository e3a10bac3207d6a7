"""Dilated CONV_2D / DEPTHWISE_CONV_2D on the NPU, bit-exact vs LiteRT: Vela writes dilation 2 as the NPU's own
KERNEL_STRIDE dilation bits (KERNEL_*_M1 the dilated extent, sub-kernels of 4 taps along a dilated axis), and a
larger even dilation as that with a kernel padded with zeros. The op-matrix rows (``tb/rtl/npu/test_op_coverage.py``)
run a 3x3 SAME stride 1 kernel, one sub-kernel; these add kernels of several sub-kernels (5x5: 4 + 1 taps per axis),
padding on every side, VALID, strides, dilation in one axis only and dilation 4."""
import pytest

from drivers.npu_coverage import run_row
from drivers.transport import SimDevice
from models.npu import vela
from models.npu.cmdstream import kicks
from models.npu.op_matrix import Row, _dilated

#: (name, kind, dilation (H, W), kernel, stride, padding, IFM H x W)
CASES = [
    ("dw_5x5_d2_same", "dw", (2, 2), (5, 5), (1, 1), "SAME", (12, 11)),
    ("conv_5x5_d2_valid", "conv", (2, 2), (5, 5), (1, 1), "VALID", (12, 13)),
    ("dw_3x3_d2_s2_same", "dw", (2, 2), (3, 3), (2, 2), "SAME", (11, 12)),
    ("conv_3x5_d2x1_s2_same", "conv", (2, 1), (3, 5), (2, 1), "SAME", (10, 9)),
    ("dw_3x3_d1x2_same", "dw", (1, 2), (3, 3), (1, 1), "SAME", (7, 10)),
    ("conv_3x3_d4_same", "conv", (4, 4), (3, 3), (1, 1), "SAME", (10, 9)),
]
ROWS = [Row("DILATED", "int8", name, _dilated(kind, d, kernel, stride, padding, hw))
        for name, kind, d, kernel, stride, padding, hw in CASES]


def test_cases_use_the_dilation_bits():
    """Every case's main kick has KERNEL_STRIDE dilation set on the axes dilated by an even factor (otherwise the
    case would not run the dilated tap addressing)."""
    for row, (_, _, (dh, dw), *_) in zip(ROWS, CASES, strict=True):
        art = vela.compile_cached(row.builder(0), "u55-128")
        ops = [k for k in kicks(art.commands()) if k.name in ("NPU_OP_CONV", "NPU_OP_DEPTHWISE")]
        assert len(ops) == 1, row.name
        ks = ops[0].reg("KERNEL_STRIDE")
        assert ((ks >> 4) & 1, (ks >> 3) & 1) == (int(dh % 2 == 0), int(dw % 2 == 0)), (row.name, hex(ks))


@pytest.mark.parametrize("config", ["u55-128"])
def test_dilated_convs(config):
    with SimDevice.open("npu", config) as dev:
        results = [run_row(dev, config, row) for row in ROWS]
    bad = [f"{r.row.name}: {r.result} {r.detail}" for r in results if not r.passed]
    assert not bad, "\n".join(bad)
