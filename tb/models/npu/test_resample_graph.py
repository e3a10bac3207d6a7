"""The float semantics of :mod:`models.npu.tflite_graph`'s RESIZE_* and TRANSPOSE_CONV (what calibration runs):
LiteRT's int8 reference kernels, dequantised, must follow them (a wrong tap placement, padding or weight layout is
off by a whole activation range, not by rounding)."""
import numpy as np
import pytest

from models.npu.reference import ReferenceModel
from models.npu.tflite_graph import Graph


def _models():
    def one(shape, layer, seed):
        g = Graph("r", seed)
        g.output(layer(g, g.input(shape)))
        return g
    return {
        "nearest_x2": one((5, 6, 4), lambda g, x: g.resize(x, (10, 12)), 1),
        "nearest_x4_half_pixel": one((3, 4, 4), lambda g, x: g.resize(x, (12, 16), half_pixel_centers=True), 2),
        "nearest_align_corners": one((4, 5, 3), lambda g, x: g.resize(x, (7, 9), align_corners=True), 3),
        "bilinear_x2": one((4, 5, 3), lambda g, x: g.resize(x, (8, 10), bilinear=True), 4),
        "bilinear_x2_half_pixel": one((4, 5, 3), lambda g, x: g.resize(x, (8, 10), bilinear=True,
                                                                       half_pixel_centers=True), 5),
        "tconv3x3_same": one((4, 5, 6), lambda g, x: g.transpose_conv(x, 5, (3, 3), (2, 2), "SAME"), 6),
        "tconv3x3_valid": one((3, 4, 6), lambda g, x: g.transpose_conv(x, 5, (3, 3), (2, 2), "VALID"), 7),
        "tconv4x4_same": one((3, 3, 3), lambda g, x: g.transpose_conv(x, 4, (4, 4), (2, 2), "SAME"), 8),
    }


@pytest.mark.parametrize("name", list(_models()))
def test_int8_follows_float(name):
    g = _models()[name]
    model = g.build()
    ref = ReferenceModel(model.data)
    (x,) = g.calibration_inputs(1, seed=21)
    got = model.dequantize_outputs(ref.run_all(*model.quantize_inputs([x])))[0]
    want = g.float_outputs([x])[0]
    assert got.shape == want.shape
    step = model.output_quant[0][0]
    tol = 3 * step if name.startswith("tconv") else 1.01 * step   # resize: the input's rounding only
    assert np.abs(got - want).max() <= tol, np.abs(got - want).max() / step
