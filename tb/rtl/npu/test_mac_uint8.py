"""uint8 CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED on the NPU's MAC path, bit-exact vs LiteRT, with the IFM zero
point at both ends of its range. Vela writes IFM / OFM precision U8 for them: the MAC array zero-extends the
activations (``rtl.npu.mac.MacArray`` ``ifm_unsigned``) and the output unit clamps to 0..255. The op-matrix rows
(``tb/rtl/npu/test_op_coverage.py``) draw zero points near 128; here ``x - zp`` spans -255..0 (zero point 255) and
0..255 (zero point 0), the ends of the range the 17-bit centred operand must hold."""
import pytest

from drivers.npu_coverage import run_row
from drivers.transport import SimDevice
from models.npu.op_matrix import Row, _mac_uint8

CASES = [Row(op, "uint8", f"zp{zp}", _mac_uint8(kind, ifm_zero_point=zp))
         for op, kind in (("CONV_2D", "conv"), ("DEPTHWISE_CONV_2D", "dw"), ("FULLY_CONNECTED", "fc"))
         for zp in (0, 255)]


@pytest.mark.parametrize("config", ["u55-128"])
def test_uint8_mac_extreme_zero_points(config):
    with SimDevice.open("npu", config) as dev:
        results = [run_row(dev, config, row, seed=seed) for row in CASES for seed in (0, 1)]
    bad = [f"{r.row.name}: {r.result} {r.detail}" for r in results if not r.passed]
    assert not bad, "\n".join(bad)
