"""The NPU in the system model: ops read from Vela streams, op features, the SimPy run against the fitted formula,
and the stored calibration against fresh RTL runs it was not fitted on."""
import numpy as np
import pytest

from models.npu import tflite_builder as tb
from models.npu import vela
from models.npu.digits import digits_model
from models.system import npu_cost
from models.system.npu import ops_from_artifact, predict_npu, prepare_npu
from models.system.npu_cost import NpuCostModel
from models.system.npu_ops import GEOMETRIES, layer_of_ops, op_features, ops_from_commands, ops_from_words

CONFIGS = tuple(GEOMETRIES)


@pytest.fixture(scope="module")
def digits():
    return digits_model().data


@pytest.fixture(scope="module")
def cost():
    return NpuCostModel.load()


@pytest.mark.parametrize("config", CONFIGS)
def test_fast_stream_reader_agrees_with_the_decoder(digits, config):
    layer = tb.single_layer(tb.Conv2D(24, (3, 3), (1, 1), "SAME", "RELU6"), (10, 10, 40), seed=3)
    for data in (digits, layer.data):
        art = vela.compile_cached(data, config)
        ops = ops_from_words(art.command_stream)
        assert ops == ops_from_commands(art.commands()) and ops
        layers = layer_of_ops(ops)
        assert len(layers) == len(ops) and layers == sorted(layers) and layers[0] == 0


def test_stream_reader_refuses_garbage():
    with pytest.raises(ValueError):
        ops_from_words(np.array([0x3C00], dtype=np.uint32))
    with pytest.raises(ValueError):
        ops_from_words(np.array([0x0002], dtype=np.uint32))      # a kick and no STOP


@pytest.mark.parametrize("config", CONFIGS)
def test_beats_times_macs_is_the_layers_macs_when_shapes_divide(config):
    art = vela.compile_cached(tb.single_layer(tb.Conv2D(16), (16, 16, 16), seed=0).data, config)
    (conv,) = [op for op in ops_from_artifact(art) if op.is_kernel]
    f = op_features(conv, GEOMETRIES[config])
    assert f["beats"] * GEOMETRIES[config].macs == 16 * 16 * 16 * 16 * 9
    assert f["write_words"] == 16 * 16 * (16 // GEOMETRIES[config].ublock_d)


def test_simpy_run_alone_is_the_fitted_formula(digits, cost):
    from models.npu.networks import network

    kws = network("kws-dscnn").data       # weight DMAs behind KERNEL_WAITs, beside running ops
    for config, data in [(c, d) for c in cost.configs for d in (digits, kws)]:
        ops = ops_from_artifact(vela.compile_cached(data, config))
        x = npu_cost.op_matrix(ops, config)
        for bw, lat in ((8, 8), (3, 40), (1, 2)):
            want = npu_cost.total_cycles(cost.layout, cost.theta, x, config, bw, lat)
            for stages in (False, True):
                p = predict_npu(ops, config, bandwidth=bw, latency=lat, cost=cost, stage_processes=stages)
                assert p.cycles == pytest.approx(want, rel=1e-12)
                assert sum(p.layer_cycles) == pytest.approx(want - cost.start_cycles(config, lat), rel=1e-12)


def test_kernel_wait_is_read_from_the_stream():
    """Vela puts NPU_OP_KERNEL_WAIT 1 before the DMA of the next op's weights (the buffer an op in flight still
    reads; KERNEL_WAIT 0 before SOFTMAX's table DMA): both stream readers give it to that DMA, and only to DMAs
    here."""
    from models.npu.networks import network

    art = vela.compile_cached(network("kws-dscnn").data, "u55-64")
    ops = ops_from_words(art.command_stream)
    assert ops == ops_from_commands(art.commands())
    waits = [c.param for c in art.commands() if c.name == "NPU_OP_KERNEL_WAIT"]
    assert [op.kernel_wait for op in ops if op.kernel_wait >= 0] == waits
    assert {op.kind for op in ops if op.kernel_wait >= 0} == {"dma"} and waits.count(1) >= 4


def _sched(kinds, load, run, **kw):
    n = len(kinds)
    z = np.zeros(n)
    is_dma = np.array([k == "dma" for k in kinds])
    return npu_cost.schedule(is_dma, np.array(load, float), np.array(run, float), z, z, z, **kw)


def test_a_kernel_wait_holds_the_dma_until_the_op_before_is_done():
    """conv A (load 10, run 100), conv B (load 10, run 100), handed to the engine at once (engine: A 0-100, B
    100-200), then a DMA of 30 cycles after KERNEL_WAIT 1: without the wait the DMA starts when B starts loading
    (cycle 10) and is done at 40; with it the DMA waits for A (at most one kernel op outstanding) and is done at 130;
    with KERNEL_WAIT 0 it waits for B too."""
    kinds, load, run = ["conv", "conv", "dma"], [10, 10, 30], [100, 100, 0]
    assert _sched(kinds, load, run)[1][2] == 40
    assert _sched(kinds, load, run, kernel_wait=np.array([-1, -1, 1]))[1][2] == 130
    assert _sched(kinds, load, run, kernel_wait=np.array([-1, -1, 0]))[1][2] == 230


def test_a_dma_beside_a_running_op_delays_it_by_its_share():
    """conv A (load 10, run 100: engine 0-100), then a DMA of 40 cycles from cycle 0: A waits out its share of the
    overlap (40 cycles) while its IFM streams in, so at share 1 it is done at 140, at share 0.5 at 120; a DMA after A
    is done (KERNEL_WAIT 0) delays nothing."""
    kinds, load, run = ["conv", "dma"], [10, 40], [100, 0]
    for share, done in ((0.0, 100), (1.0, 140), (0.5, 120)):
        assert _sched(kinds, load, run, dma_stall=np.array([share, 0.0]))[1][0] == done
    late = _sched(["conv", "dma"], [10, 40], [100, 0], kernel_wait=np.array([-1, 0]), dma_stall=np.array([1.0, 0]))
    assert late[1] == [100, 140]
    # its IFM resident and staged for its last 80 cycles (no reads then): only 20 cycles of the DMA stall it
    assert _sched(kinds, load, run, dma_stall=np.array([1.0, 0.0]), staged=np.array([80.0, 0.0]))[1][0] == 120


def test_a_prepared_job_predicts_what_the_ops_do(digits, cost):
    """Parse once, predict many: the prepared job (its stage costs kept per latency) gives the same numbers."""
    ops = ops_from_artifact(vela.compile_cached(digits, "u55-64"))
    job = prepare_npu(ops, "u55-64", cost)
    for bw, lat in ((8, 8), (2, 40), (8, 8)):
        for kw in ({}, {"inferences": 3, "inflight": 2, "in_bytes": 4096}):
            want = predict_npu(ops, "u55-64", bandwidth=bw, latency=lat, cost=cost, **kw)
            assert predict_npu(job, "u55-64", bandwidth=bw, latency=lat, cost=cost, **kw) == want
    with pytest.raises(ValueError):
        predict_npu(job, "u55-128", cost=cost)


def test_a_second_master_on_the_memory_slows_the_npu(digits, cost):
    ops = ops_from_artifact(vela.compile_cached(digits, "u55-128"))
    alone = predict_npu(ops, "u55-128", bandwidth=1, cost=cost)
    shared = predict_npu(ops, "u55-128", bandwidth=1, cost=cost, inferences=4, inflight=2, in_bytes=1 << 14)
    assert shared.makespan > 4 * alone.cycles


_U55_128_MISS = pytest.mark.xfail(
    strict=True, reason="the digits CNN is under-predicted by -8.10% on u55-128 (3,893 vs 4,236 RTL cycles; "
    "BENCHMARKS.md, 'SimPy system model vs RTL', cost model form v19)")


@pytest.mark.parametrize("config, bandwidth, latency", [
    ("u55-32", 8, 8), ("u55-64", 8, 8), pytest.param("u55-128", 8, 8, marks=_U55_128_MISS)])
def test_prediction_within_5_percent_of_a_fresh_rtl_run(digits, cost, config, bandwidth, latency):
    """Held out: the digits CNN is never in the fit (random layers and stacks are); the RTL run is fresh."""
    from drivers.npu import run_on_npu
    from drivers.npu_calibration import npu_config

    rtl = run_on_npu(digits, npu_config(config, bandwidth, latency), seed=7).cycles
    ops = ops_from_artifact(vela.compile_cached(digits, config))
    model = predict_npu(ops, config, bandwidth=bandwidth, latency=latency, cost=cost).cycles
    assert abs(model - rtl) / rtl < 0.05, (model, rtl)


@pytest.mark.parametrize("config", ["u55-32", "u55-64", pytest.param("u55-128", marks=pytest.mark.xfail(
    strict=True, reason="v19 under-predicts the digits CNN on u55-128 by -8.10% (v18: -8.07%; BENCHMARKS.md)"))])
def test_prediction_of_the_digits_cnn_is_within_its_benchmarked_error(digits, cost, config):
    """The error BENCHMARKS.md states for the digits CNN on u55-32 and u55-64 (under 6% at the default memory:
    -1.16% / -4.39%) holds on a fresh RTL run, so a refit that gets worse fails here; on u55-128 (-8.10%) it does
    not hold any more (strict xfail)."""
    from drivers.npu import run_on_npu

    rtl = run_on_npu(digits, config, seed=7).cycles
    model = predict_npu(ops_from_artifact(vela.compile_cached(digits, config)), config, cost=cost).cycles
    assert abs(model - rtl) / rtl < 0.06, (model, rtl)


@pytest.mark.slow
@pytest.mark.parametrize("bandwidth, latency, benchmarked", [(2, 8, -3.38), (2, 40, -3.51)])
def test_bandwidth_latency_point_within_its_benchmarked_error(digits, cost, bandwidth, latency, benchmarked):
    """At a slower memory (each point its own Verilator build, hence slow) the digits CNN on u55-128 is within the
    error BENCHMARKS.md states for it there (bandwidth / latency table), on a fresh RTL run."""
    from drivers.npu import run_on_npu
    from drivers.npu_calibration import npu_config

    rtl = run_on_npu(digits, npu_config("u55-128", bandwidth, latency), seed=7).cycles
    ops = ops_from_artifact(vela.compile_cached(digits, "u55-128"))
    model = predict_npu(ops, "u55-128", bandwidth=bandwidth, latency=latency, cost=cost).cycles
    assert abs(model - rtl) / rtl < (abs(benchmarked) + 1) / 100, (model, rtl)


#: The RTL's memory arbiter now serves a compute port the engine waits for before the DMA (``rtl/npu/arbiter.py``,
#: ``urgent``); cost model v19 still models the DMA-first arbiter (``ds[k]``) and was fitted on runs of that RTL.
_DMA_FIRST_MODEL = pytest.mark.xfail(
    strict=True, reason="v19 models a DMA that stalls the op beside it, which the need-based arbiter removed: "
    "fresh RTL kws-dscnn u55-64 121,023 cycles (was 125,745), model 128,040 (+5.80%); mobilenetv2 u55-128 "
    "237,426 (was 239,231; model -0.54%, benchmarked -1.29%); needs the re-measure and refit "
    "of benchmarks/system_model.py")


@pytest.mark.parametrize("name, config, benchmarked", [("digits-pool", "u55-128", -3.10),
                                                       ("digits-pool", "u55-256", -3.20),
                                                       pytest.param("mobilenetv2", "u55-128", -1.29,
                                                                    marks=_DMA_FIRST_MODEL),
                                                       pytest.param("kws-dscnn", "u55-64", +1.83,
                                                                    marks=_DMA_FIRST_MODEL)])
def test_whole_network_with_vector_ops_is_within_5_percent_of_a_fresh_rtl_run(cost, name, config, benchmarked):
    """Held out: digits-pool whole (convs, max and average pool, FC and SOFTMAX's ELEMENTWISE decomposition on the
    vector unit), MobileNetV2 whole (table activations, MEAN as a 32-bit depthwise and MUL, ADDs, SOFTMAX) and KWS
    whole (each 1x1 conv's weight DMA, after a KERNEL_WAIT, beside the depthwise before it: v18 was -5.18% there) are
    never in the fit; the RTL run is fresh. BENCHMARKS.md states their error there."""
    from drivers.npu import run_on_npu
    from models.npu.networks import network

    data = network(name).data
    rtl = run_on_npu(data, config, seed=7).cycles
    model = predict_npu(ops_from_artifact(vela.compile_cached(data, config)), config, cost=cost).cycles
    assert abs(model - rtl) / rtl < 0.05, (model, rtl)
    assert 100 * (model - rtl) / rtl == pytest.approx(benchmarked, abs=0.5), (model, rtl)


@pytest.mark.parametrize("config", ["u55-32", "u55-128"])
def test_decoded_weight_count_is_the_streams(config):
    """The decoder-time feature counts exactly the weights Vela's stream decodes to (padding included)."""
    from ethosu import mlw_codec

    from models.npu import cmdstream as cs

    layers = [(tb.Conv2D(45, (1, 1), (2, 1), "VALID", "RELU6"), (18, 1, 6)), (tb.Conv2D(23, (2, 3)), (8, 5, 28)),
              (tb.Conv2D(33, (5, 4)), (4, 20, 23)), (tb.DepthwiseConv2D((5, 3)), (5, 13, 41)),
              (tb.FullyConnected(25), (11, 2, 46)), (tb.DepthwiseConv2D((5, 5)), (15, 11, 22))]
    checked = 0
    for layer, shape in layers:
        art = vela.compile_cached(tb.single_layer(layer, shape, seed=1).data, config)
        kernel = [k for k in cs.kicks(art.commands()) if k.name in ("NPU_OP_CONV", "NPU_OP_DEPTHWISE")]
        ops = [op for op in ops_from_artifact(art) if op.kind in ("conv", "fc", "depthwise")]
        for k, op in zip(kernel, ops, strict=True):
            if k.reg("WEIGHT_REGION") != art.weight_region:
                continue        # copied by a DMA first: the stream is elsewhere
            base = k.reg("WEIGHT_BASE")
            stream = bytearray(art.weight_data[base:base + k.reg("WEIGHT_LENGTH")])
            assert op_features(op, GEOMETRIES[config])["weights"] == len(mlw_codec.decode(stream))
            checked += 1
    assert checked >= 3


def test_a_dilated_kernel_costs_its_taps():
    """Dilation 2 (KERNEL_STRIDE bits 3 / 4): KERNEL_*_M1 is the dilated extent, the MAC walks the taps. The op's
    kernel is its taps and its decoded weights are the stream's (a 5x5 kernel dilated to 9x9: 25 taps, not 81)."""
    from ethosu import mlw_codec

    from models.npu import cmdstream as cs
    from models.npu.op_matrix import _dilated

    config = "u55-128"
    for kind, dilation, taps in (("dw", 2, (5, 5)), ("conv", (2, 1), (5, 5)), ("conv", 4, (5, 5))):
        art = vela.compile_cached(_dilated(kind, dilation, (5, 5) if dilation != 4 else (3, 3), in_hw=(12, 11))(0),
                                  config)
        (k,) = [k for k in cs.kicks(art.commands()) if k.name in ("NPU_OP_CONV", "NPU_OP_DEPTHWISE")]
        assert k.reg("KERNEL_STRIDE") & 0x18, (kind, dilation)
        (op,) = [op for op in ops_from_artifact(art) if op.kind in ("conv", "depthwise")]
        assert op.kernel == taps, (kind, dilation, op.kernel)
        if k.reg("WEIGHT_REGION") == art.weight_region:
            base = k.reg("WEIGHT_BASE")
            stream = bytearray(art.weight_data[base:base + k.reg("WEIGHT_LENGTH")])
            assert op_features(op, GEOMETRIES[config])["weights"] == len(mlw_codec.decode(stream)), (kind, dilation)


def _brute_ifm_reads(op, geo):
    """Every address the IFM stager reads, enumerated pixel by pixel (SPEC.md section 4), counted."""
    (ih, iw, idp), od = op.ifm, op.ofm[2]
    sy, sx, sc = op.ifm_strides
    if op.kind in ("conv", "fc"):
        ub = -(-idp // 8)
        passes = 1 if ih * iw * ub * 8 <= geo.shram_bytes else -(-od // geo.ublock_d)
        channels = [8 * u for u in range(ub)] * passes
    else:
        channels = list(range(0, od, geo.ublock_d))
    reads = 0
    for c in channels:
        for y in range(ih):
            for x in range(iw):
                if op.ifm_nhcwb16:
                    addr = op.ifm_key[1] + y * sy + x * 16 + (c >> 4) * sc + (c & 15)
                else:
                    addr = op.ifm_key[1] + y * sy + x * sx + c
                reads += 1 if addr % 8 == 0 else 2
    return reads


def _brute_ofm_writes(op, geo):
    """Every position's first byte address (``rtl/npu/ofm_writer.py`` ``_ofm_addr``), and the 8-byte words its
    ublock's elements touch, counted."""
    oh, ow, od = op.ofm
    sy, sx, sc = op.ofm_strides
    eb = op.ofm_bytes
    writes = 0
    for c in range(0, od, geo.ublock_d):
        for y in range(oh):
            for x in range(ow):
                if op.ofm_nhcwb16:
                    addr = op.ofm_base + y * sy + x * 16 * eb + (c >> 4) * sc + (c & 15) * eb
                else:
                    addr = op.ofm_base + y * sy + x * sx + c * eb
                first, last = addr // 8, (addr + min(geo.ublock_d, od - c) * eb - 1) // 8
                writes += last - first + 1
    return writes


@pytest.mark.parametrize("config", CONFIGS)
def test_engine_word_counts_match_an_address_by_address_count(digits, config):
    from models.system.npu_ops import ifm_reads, ofm_writes

    stack = tb.build_model(tb.random_model_spec(np.random.default_rng(9003), n_layers=4,
                                                kinds=("conv", "conv", "dw", "fc"), max_hw=20, max_channels=40,
                                                max_kernel=5)).data
    geo = GEOMETRIES[config]
    for data in (digits, stack):
        for op in ops_from_artifact(vela.compile_cached(data, config)):
            if op.is_kernel:
                assert ifm_reads(op, geo) == _brute_ifm_reads(op, geo), op
                assert ofm_writes(op, geo) == _brute_ofm_writes(op, geo), op


@pytest.mark.parametrize("config", CONFIGS)
def test_mean_is_a_depthwise_with_a_32_bit_ofm_then_a_mul_on_the_vector_unit(config):
    """Vela's MEAN: a depthwise on the MAC path writing 4-byte OFM elements (up to five words a position instead of
    one or two), then a 32-bit MUL on the vector unit (a word read per operand, a write per element)."""
    from models.npu.tflite_graph import Graph
    from models.system.npu_ops import ofm_writes, vector_features

    geo = GEOMETRIES[config]
    for shape in ((6, 6, 20), (5, 7, 13), (10, 10, 40)):
        g = Graph("mean", seed=1)
        g.output(g.mean(g.input(shape)))
        dw, mul = ops_from_artifact(vela.compile_cached(g.build().data, config))
        assert (dw.kind, dw.vector, dw.ofm, dw.ofm_bytes) == ("depthwise", False, (1, 1, shape[2]), 4)
        assert ofm_writes(dw, geo) == _brute_ofm_writes(dw, geo)
        assert ofm_writes(dw, geo) >= -(-shape[2] * 4 // 8) > -(-shape[2] // geo.ublock_d)
        assert (mul.kind, mul.vector, mul.mode) == ("elementwise", True, 0)
        f = vector_features(mul)
        assert (f["read_words"], f["write_words"]) == (2 * shape[2], shape[2])


def test_a_table_activation_costs_its_table_dma_only():
    """A table activation (TANH) runs in the output unit at no extra cycles on the MAC path: the conv's cost row is
    the one without it; the stream's DMA of the table into the SHRAM reads its words and writes none to memory."""
    from models.npu.tflite_graph import Graph

    def ops(act):
        g = Graph("t", seed=1)
        y = g.conv2d(g.input((10, 10, 16)), 24)
        g.output(g.tanh(y) if act else y)
        return ops_from_artifact(vela.compile_cached(g.build().data, "u55-128"))

    plain, table = ops(False), ops(True)
    (dma,) = [op for op in table if op.dma_to_shram]
    rest = [op for op in table if op is not dma]
    assert [op.kind for op in rest] == [op.kind for op in plain] and "conv" in [op.kind for op in plain]
    # every column but the command words parsed before the kick (the table's ACTIVATION and DMA registers)
    cmd_words = 14
    assert np.array_equal(np.delete(npu_cost.op_matrix(rest, "u55-128"), cmd_words, axis=1),
                          np.delete(npu_cost.op_matrix(plain, "u55-128"), cmd_words, axis=1))
    assert dma.kind == "dma" and dma.dma_bytes == 256
    f = op_features(dma, GEOMETRIES["u55-128"])
    assert (f["stream_words"], f["write_words"]) == (32, 0)


def _vector_ops(build, config="u55-128"):
    from models.npu.tflite_graph import Graph

    g = Graph("vector", seed=1)
    build(g)
    return [op for op in ops_from_artifact(vela.compile_cached(g.build().data, config)) if op.is_kernel]


def test_pools_and_elementwise_ops_go_to_the_vector_unit_with_their_taps():
    """A max pool with padding: one walker step per kernel tap of every OFM element, a read per tap inside the IFM
    (counted here tap by tap); an ADD of two tensors: two steps and two reads per element; a write per element."""
    from models.system.npu_ops import vector_features

    def pool(g):
        g.output(g.max_pool(g.input((7, 5, 12)), (3, 2), (2, 2), "SAME"))

    (op,) = _vector_ops(pool)
    assert op.kind == "pool" and op.vector
    (oh, ow, oc), (kh, kw), (sy, sx) = op.ofm, op.kernel, op.stride
    inside = sum(0 <= y * sy + ky - op.pads[0] < 7 and 0 <= x * sx + kx - op.pads[1] < 5
                 for y in range(oh) for x in range(ow) for ky in range(kh) for kx in range(kw))
    f = vector_features(op)
    assert (kh, kw) == (3, 2) and any(op.pads) and inside < oh * ow * kh * kw
    assert f["vector_steps"] == oh * ow * oc * kh * kw and f["read_words"] == inside * oc
    assert f["write_words"] == oh * ow * oc

    def add(g):
        g.output(g.add(g.input((3, 4, 10)), g.input((3, 4, 10))))

    (op,) = _vector_ops(add)
    f = vector_features(op)
    assert op.kind == "elementwise" and op.vector
    assert (f["vector_steps"], f["read_words"], f["write_words"]) == (240, 240, 120)


def test_a_vector_op_is_a_barrier_in_the_schedule():
    """The vector unit starts once the engine is done with the op before it and nothing loads while it runs: with
    each kernel op handed to the engine at the end of its load, the op after the vector op ends at the vector op's
    end plus its own load and run."""
    load, run = np.array([50.0, 30.0, 40.0]), np.array([80.0, 0.0, 60.0])
    zero = np.zeros(3)
    is_dma, is_vec = np.zeros(3, bool), np.array([False, True, False])
    total, finish = npu_cost.schedule(is_dma, load, run, load, zero, zero, zero, zero, is_vec)
    assert finish[1] == pytest.approx(50.0 + 80.0 + 30.0)
    assert finish[2] == pytest.approx(finish[1] + 40.0 + 60.0) and total == finish[2]
    # without the barrier the third op would have loaded during the first one's run
    _, overlapped = npu_cost.schedule(is_dma, load, run, load, zero, zero, zero, zero, np.zeros(3, bool))
    assert overlapped[2] < finish[2]
