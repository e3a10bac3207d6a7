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
    assert sum(k.cycles for k in run.kicks) == run.cycles
    assert all(k.issued_at <= k.done_at for k in run.kicks) and run.kicks[-1].done_at == run.cycles
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


def _two_branch_model():
    """Two inputs (6x6x4, 5x5x3), each through its own convolution: two outputs of different shapes."""
    from models.npu.tflite_graph import Graph

    g = Graph("two-branch", seed=3)
    a, b = g.input((6, 6, 4)), g.input((5, 5, 3))
    g.output(g.conv2d(a, 8, activation="RELU"), g.depthwise(g.conv2d(b, 16, (1, 1)), (3, 3), (2, 2)))
    return g.build()


def test_multi_input_multi_output_equals_litert():
    model = _two_branch_model()
    ref = ReferenceModel(model.data)
    assert ref.input_shapes == [(1, 6, 6, 4), (1, 5, 5, 3)] and ref.output_shapes == [(1, 6, 6, 8), (1, 3, 3, 16)]
    rng = np.random.default_rng(5)
    xs = [ref.random_input(rng, 0), ref.random_input(rng, 1)]
    run = run_on_npu(model.data, "u55-128", xs)
    want = ref.run_all(*xs)
    assert len(run.outputs) == 2 and [o.shape for o in run.outputs] == [w.shape for w in want]
    for got, exp in zip(run.outputs, want, strict=True):
        np.testing.assert_array_equal(got, exp)
    assert run.output is run.outputs[0] and run.input is run.inputs[0]
    random_run = run_on_npu(model.data, "u55-128", seed=2)      # random inputs, one per graph input
    for got, exp in zip(random_run.outputs, ref.run_all(*random_run.inputs), strict=True):
        np.testing.assert_array_equal(got, exp)
    with pytest.raises(RampartError, match="2 input"):
        run_on_npu(model.data, "u55-128", xs[0])
    with pytest.raises(RampartError, match="input 1 shape"):
        run_on_npu(model.data, "u55-128", [xs[0], xs[0]])
    with pytest.raises(RampartError, match="int8"):
        run_on_npu(model.data, "u55-128", [xs[0], xs[1].astype(np.float32)])


def test_network_placed_above_8_mib_of_host_memory():
    """A model too big for the preset's 256 KiB runs on a host memory; the host memory holds (and the NPU reaches)
    data above 8 MiB: the small conv placed at 12 MiB gives LiteRT's output in the same cycles as at 0."""
    from dataclasses import replace

    from drivers.npu import ExtMemLayout, layout, read_bytes, start, wait_done
    from drivers.transport import HOST_MEMORY, SimDevice
    from models.npu import vela
    from rtl.npu.config import PRESETS

    model = tb.single_layer(tb.Conv2D(16, activation="RELU"), (8, 8, 3), seed=0, input_zero_point=-7)
    ref = ReferenceModel(model)
    x = ref.random_input(np.random.default_rng(3))
    base = run_on_npu(model, "u55-128", x)
    art = vela.compile_cached(model.data, "u55-128")
    cfg = replace(PRESETS["u55-128"], ext_host_memory=True, ext_mem_kib=16 * 1024)
    off = 12 * 1024 * 1024
    lay0 = layout(art, cfg.ext_mem_bytes)
    lay = ExtMemLayout(art, lay0.weight_addr + off, lay0.scratch_addr + off,
                       tuple(b + off if i in (art.weight_region, art.scratch_region) else 0
                             for i, b in enumerate(lay0.basep)), cmd_addr=off)
    with SimDevice.open("npu", cfg) as dev:
        assert dev.sim.host_memory_words * 8 == cfg.ext_mem_bytes
        dev.reset()
        dev.clear(HOST_MEMORY)
        dev.load_bytes(HOST_MEMORY, cfg.ext_mem_bytes - 8, b"\x5a" * 8)
        for addr, payload in lay.image(x):
            dev.load_bytes(HOST_MEMORY, addr, payload)
        start(dev, lay.cmd_base, lay.cmd_len, lay.basep)
        assert wait_done(dev, 100_000) is not None
        assert dev.peek("error") == 0 and dev.peek("ext_fault") == 0
        assert dev.peek("cycles") == base.cycles
        (out,) = art.outputs
        got = np.frombuffer(read_bytes(dev, lay.address(out), out.nbytes), dtype=np.int8)
        assert dev.read_bytes(HOST_MEMORY, cfg.ext_mem_bytes - 8, 8) == b"\x5a" * 8
        with pytest.raises(RampartError, match="host memory"):
            dev.sim.snapshot()
    np.testing.assert_array_equal(got.reshape(ref.output_shapes[0]), ref.run(x))
