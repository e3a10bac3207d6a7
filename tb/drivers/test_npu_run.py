"""``drivers.npu.run_on_npu``: the whole flow (Vela -> NPU under Verilator -> OFM) equals LiteRT, with cycle
accounting; unsupported models are one-line RampartErrors. Shares the cached u55-128 build of design ``npu``."""
import numpy as np
import pytest

from base import RampartError
from drivers.npu import run_on_npu
from models.npu import tflite_builder as tb
from models.npu.graph import graph_macs
from models.npu.reference import ReferenceModel


def test_small_conv_equals_litert():
    model = tb.single_layer(tb.Conv2D(16, activation="RELU"), (8, 8, 3), seed=0, input_zero_point=-7)
    ref = ReferenceModel(model)
    x = ref.random_input(np.random.default_rng(3))
    run = run_on_npu(model, "u55-128", x)
    assert run.ok and run.error_code == 0 and run.output.dtype == np.int8
    assert run.output.shape == ref.output_shapes[0]
    np.testing.assert_array_equal(run.output, ref.run(x))
    assert run.macs == 8 * 8 * 16 * 3 * 3 * 3 == graph_macs(model)[0][2]
    assert 0 < run.mac_utilisation <= 1 and run.macs_per_cycle == 128
    assert run.vela is not None and run.vela.total_cycles > 0
    assert len(run.kicks) >= 1 and len(run.layers) == 1
    assert run.layers[0].macs == run.macs and run.layers[0].vela_cycles is not None
    assert run.kicks[0].issued_at + sum(k.cycles for k in run.kicks) == run.cycles
    # the same seed gives the same random input and output; a different one differs
    a, b = run_on_npu(model, seed=4), run_on_npu(model, seed=4)
    np.testing.assert_array_equal(a.input, b.input)
    np.testing.assert_array_equal(a.output, ref.run(a.input))


def test_multi_layer_is_split_into_layers():
    model = tb.build_model(tb.ModelSpec((12, 12, 8), (tb.Conv2D(16), tb.DepthwiseConv2D(),
                                                      tb.Conv2D(8, kernel=(1, 1))), 0, 0.05, 2))
    run = run_on_npu(model, seed=1)
    np.testing.assert_array_equal(run.output, ReferenceModel(model).run(run.input))
    assert [layer.op for layer in run.layers] == ["CONV", "DEPTHWISE", "CONV"]
    assert [layer.macs for layer in run.layers] == [165888, 20736, 18432]


def test_cpu_fallback_names_the_op():
    model = tb.single_layer(tb.DepthwiseConv2D((3, 3), (4, 4), "VALID"), (12, 12, 4), seed=1)
    with pytest.raises(RampartError, match="CPU.*DEPTHWISE_CONV_2D") as ei:
        run_on_npu(model)
    assert "\n" not in str(ei.value)


def test_watchdog_and_bad_input():
    model = tb.single_layer(tb.Conv2D(8, kernel=(1, 1)), (4, 4, 16), seed=0)
    with pytest.raises(RampartError, match="watchdog"):
        run_on_npu(model, max_cycles=40)
    with pytest.raises(RampartError, match="input shape"):
        run_on_npu(model, input=np.zeros((4, 4, 8), dtype=np.int8))
    with pytest.raises(RampartError, match="unknown NPU config"):
        run_on_npu(model, "u65-256")
