"""Workload side of the NPU: model builder, LiteRT reference, Vela raw compile, command-stream decoder.

Vela compiles are cached per session (``vela_cache``), so each (model, accelerator) pair is compiled once.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from ethosu import mlw_codec

from models.npu import cmdstream as cs
from models.npu.reference import ReferenceModel, ReferenceModelError, run_reference
from models.npu.tflite_builder import (
    Conv2D,
    DepthwiseConv2D,
    FullyConnected,
    ModelSpec,
    SpecError,
    build_model,
    layer_shapes,
    random_model_spec,
    single_layer,
)
from models.npu.vela import (
    ACCELERATORS,
    MACS,
    SCRATCH_REGION,
    WEIGHT_REGION,
    CpuFallbackError,
    VelaCompileError,
    compile_model,
    listing_commands,
)

# One model per op type (plus variants that exercise padding/stride/activation/zero points).
SINGLE = {
    "conv": lambda: single_layer(Conv2D(16, (3, 3), (1, 1), "SAME", "RELU"), (8, 8, 3), seed=1, input_zero_point=-3),
    "conv_s2_valid": lambda: single_layer(Conv2D(7, (5, 5), (2, 2), "VALID", "RELU6"), (11, 13, 5), seed=3),
    "depthwise": lambda: single_layer(DepthwiseConv2D((3, 3), (1, 1), "SAME"), (10, 10, 12), seed=6,
                                      input_zero_point=-1),
    "fully_connected": lambda: single_layer(FullyConnected(10), (64,), seed=8, input_zero_point=5),
}
KICK_OF = {"conv": "NPU_OP_CONV", "conv_s2_valid": "NPU_OP_CONV", "depthwise": "NPU_OP_DEPTHWISE",
           "fully_connected": "NPU_OP_CONV"}
MULTI_SPEC = ModelSpec((16, 16, 3), (Conv2D(16, (3, 3), (2, 2)), DepthwiseConv2D((3, 3), activation="RELU6"),
                                     Conv2D(32, (1, 1), activation="RELU"), FullyConnected(10)), seed=9,
                       input_scale=0.02, input_zero_point=-7)


@pytest.fixture(scope="session")
def vela_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("vela_cache")


@pytest.fixture(scope="session")
def models():
    return {name: make() for name, make in SINGLE.items()}


# ---------------------------------------------------------------------------------------------------------------
# Builder


def test_specs_validate():
    with pytest.raises(SpecError):
        Conv2D(8, padding="FULL")
    with pytest.raises(SpecError):
        Conv2D(8, activation="TANH")
    with pytest.raises(SpecError):
        Conv2D(0)
    with pytest.raises(SpecError):
        DepthwiseConv2D(kernel=(3,))
    with pytest.raises(SpecError):  # VALID kernel larger than the input
        ModelSpec((4, 4, 3), (Conv2D(8, (5, 5), padding="VALID"),))
    with pytest.raises(SpecError):  # conv after FC
        ModelSpec((4, 4, 3), (FullyConnected(8), Conv2D(8)))
    with pytest.raises(SpecError):
        ModelSpec((4, 4, 3), ())
    spec = ModelSpec((9, 7, 3), (Conv2D(8, (3, 2), (2, 2), "SAME"), DepthwiseConv2D((3, 3), (2, 1), "VALID"),
                                 FullyConnected(5)))
    assert layer_shapes(spec) == [(5, 4, 8), (2, 2, 8), (5,)]


def test_build_is_deterministic():
    spec = ModelSpec((6, 6, 4), (Conv2D(8), FullyConnected(3)), seed=5)
    a, b = build_model(spec), build_model(spec)
    assert a.data == b.data
    assert build_model(ModelSpec(spec.input_shape, spec.layers, seed=6)).data != a.data
    assert a.data[4:8] == b"TFL3"
    p = a.layers[0]
    assert p.weights.dtype == np.int8 and p.weights.shape == (8, 3, 3, 4)
    assert p.bias.dtype == np.int32 and p.weight_scales.shape == (8,)


def test_random_specs_are_valid_and_seeded():
    specs1 = [random_model_spec(np.random.default_rng(42)) for _ in range(2)]
    assert specs1[0] == specs1[1]
    rng = np.random.default_rng(7)
    for _ in range(25):
        spec = random_model_spec(rng, max_layers=4)
        for layer in spec.layers:
            if not isinstance(layer, FullyConnected):
                assert all(1 <= k <= 7 for k in layer.kernel) and all(1 <= s <= 2 for s in layer.stride)
        m = build_model(spec)
        ref = ReferenceModel(m)
        assert ref.output_shapes[0] == m.output_shape
        y = ref.run(ref.random_input(rng))
        assert y.dtype == np.int8


# ---------------------------------------------------------------------------------------------------------------
# LiteRT reference


@pytest.mark.parametrize("name", list(SINGLE))
def test_litert_runs_single_layer(models, name):
    m = models[name]
    ref = ReferenceModel(m)
    assert ref.input_shapes == [m.input_shape] and ref.output_shapes == [m.output_shape]
    rng = np.random.default_rng(0)
    x = ref.random_input(rng)
    y = ref.run(x)
    assert y.dtype == np.int8 and y.shape == m.output_shape
    assert len(np.unique(y)) > 3, "quantisation choice should give a spread of output codes"
    assert np.array_equal(run_reference(m.data, x), y)  # deterministic, fresh interpreter


def test_litert_runs_multi_layer():
    m = build_model(MULTI_SPEC)
    y = run_reference(m, np.random.default_rng(1).integers(-128, 128, size=m.input_shape, dtype=np.int8))
    assert y.shape == (1, 10) and y.dtype == np.int8


def test_reference_rejects_bad_input(models):
    ref = ReferenceModel(models["conv"])
    with pytest.raises(ReferenceModelError):
        ref.run(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ReferenceModelError):
        ref.run(np.zeros((1, 8, 8, 4), np.int8))
    with pytest.raises(ReferenceModelError):
        ReferenceModel(b"not a flatbuffer at all")


def _fc_by_hand(m, x):
    """Independent check of the builder's quantisation against LiteRT: int8 FC with TFLite double rounding."""
    p = m.layers[0]
    acc = (x.astype(np.int64).reshape(-1) - p.input_zero_point) @ p.weights.astype(np.int64).T + p.bias
    out = []
    for c, a in enumerate(acc):
        mult, e = math.frexp(float(np.float64(p.input_scale) * np.float64(p.weight_scales[c]) / p.output_scale))
        q = round(mult * 2**31)
        shift = -e  # right shift after the doubling high multiply
        t = (int(a) * q + (1 << 30)) >> 31
        r = (abs(t) + (1 << (shift - 1))) >> shift if shift > 0 else abs(t)
        out.append(max(-128, min(127, (r if t >= 0 else -r) + p.output_zero_point)))
    return np.array(out, np.int8).reshape(1, -1)


def test_builder_quantisation_matches_litert(models):
    m = models["fully_connected"]
    rng = np.random.default_rng(3)
    for _ in range(5):
        x = rng.integers(-128, 128, size=m.input_shape, dtype=np.int8)
        assert np.array_equal(run_reference(m, x), _fc_by_hand(m, x))


# ---------------------------------------------------------------------------------------------------------------
# Vela


def _replay_regions(art, upto_index: int, cmds) -> dict[int, bytearray]:
    """Region contents after replaying the DMAs before command ``upto_index`` (1-D external DMAs only)."""
    mem = {art.weight_region: bytearray(art.weight_data), art.scratch_region: bytearray(art.scratch_size)}
    for k in cs.kicks(cmds[:upto_index]):
        if k.name != "NPU_OP_DMA_START":
            continue
        src_r, dst_r = k.reg("DMA0_SRC_REGION"), k.reg("DMA0_DST_REGION")
        assert not (dst_r >> 8) & 1, "no SHRAM (LUT) DMAs expected for conv/dw/fc"
        src, dst, n = k.reg("DMA0_SRC"), k.reg("DMA0_DST"), k.reg("DMA0_LEN")
        mem[dst_r & 7][dst:dst + n] = mem[src_r & 7][src:src + n]
    return mem


def _check_artifact(art, m, accelerator):
    # COP1 header: the config word names the MAC count the weights were encoded for.
    assert art.header.macs_per_cc == MACS[accelerator]
    assert art.header.product == 0 and art.header.stream_offset % 16 == 0
    assert art.header.shram_kib == {32: 16, 64: 16, 128: 24, 256: 48}[MACS[accelerator]]
    # Region convention (see vela.py docstring).
    assert art.weight_region == WEIGHT_REGION and art.scratch_region == SCRATCH_REGION
    assert art.scratch_fast_size == 0
    (inp,), (out,) = art.inputs, art.outputs
    assert inp.region == out.region == SCRATCH_REGION
    assert inp.numel == int(np.prod(m.input_shape)) and out.numel == int(np.prod(m.output_shape))
    assert inp.offset + inp.nbytes <= art.scratch_size and out.offset + out.nbytes <= art.scratch_size
    assert inp.zero_point == (m.layers[0].input_zero_point,)
    assert out.zero_point == (m.layers[-1].output_zero_point,)
    assert math.isclose(out.scale[0], m.layers[-1].output_scale, rel_tol=1e-6)
    # Decoder: strict walk to the final STOP, consuming every word, agreeing with regor's own listing.
    cmds = art.commands()
    assert cmds[-1].name == "NPU_OP_STOP" and cmds[-1].param == 0xFFFF
    assert sum(c.size for c in cmds) == 4 * len(art.command_stream) == 4 * art.header.stream_words
    assert [(c.offset, c.name) for c in cmds] == listing_commands(art.listing)
    assert all(c.name in cs.CMD0_NAMES.values() or c.name in cs.CMD1_NAMES.values() for c in cmds)
    # Vela's own estimate is available.
    assert art.perf is not None and art.perf.total_cycles > 0 and art.perf.npu_cycles > 0
    assert any(lp.target == "NPU" and lp.op_cycles > 0 for lp in art.perf.layers)
    return cmds


def _check_kick_geometry(k) -> bool:
    """The IFM extent is implicit: (OFM-1)*stride + kernel - pads (SPEC.md section 4). Tile 0 covers it all, except
    when a rolling buffer wraps: then tile 0 holds the first HEIGHT0 rows and tile 2 (IFM_BASE2) the rest.
    Returns whether tile 2 is used."""
    f = cs.kernel_stride(k.reg("KERNEL_STRIDE"))
    oh, ow = k.reg("OFM_HEIGHT_M1") + 1, k.reg("OFM_WIDTH_M1") + 1
    kh, kw = k.reg("KERNEL_HEIGHT_M1") + 1, k.reg("KERNEL_WIDTH_M1") + 1
    ih = (oh - 1) * f["stride_y"] + kh - k.reg("IFM_PAD_TOP") - k.reg("IFM_PAD_BOTTOM")
    iw = (ow - 1) * f["stride_x"] + kw - k.reg("IFM_PAD_LEFT") - k.reg("IFM_PAD_RIGHT")
    h0, w0 = k.reg("IFM_HEIGHT0_M1") + 1, k.reg("IFM_WIDTH0_M1") + 1
    assert w0 == iw and k.reg("IFM_BASE1") == 0 and k.reg("IFM_BASE3") == 0
    tile2 = k.reg("IFM_BASE2") != 0
    assert h0 < ih if tile2 else h0 == ih
    # the OFM is always a single tile
    assert (k.reg("OFM_HEIGHT0_M1"), k.reg("OFM_WIDTH0_M1")) == (k.reg("OFM_HEIGHT_M1"), k.reg("OFM_WIDTH_M1"))
    return tile2


@pytest.mark.parametrize("accelerator", ACCELERATORS)
@pytest.mark.parametrize("name", list(SINGLE))
def test_vela_compiles_every_op_for_every_config(models, vela_cache, name, accelerator):
    m = models[name]
    art = compile_model(m, accelerator, cache_dir=vela_cache)
    cmds = _check_artifact(art, m, accelerator)
    ks = [k for k in cs.kicks(cmds) if k.name != "NPU_OP_DMA_START"]
    assert ks[0].name == KICK_OF[name]
    main = ks[0]
    p = m.layers[0]
    _check_kick_geometry(main)
    # Zero points and the fused activation clamp.
    assert cs.signed16(main.reg("IFM_ZERO_POINT")) == p.input_zero_point
    assert cs.signed16(main.reg("OFM_ZERO_POINT")) == p.output_zero_point
    assert main.reg("OFM_PRECISION") & 0x100 == 0, "conv/dw/fc use the per-channel scale stream"
    if not isinstance(p.spec, FullyConnected):
        stride = cs.kernel_stride(main.reg("KERNEL_STRIDE"))
        assert (stride["stride_y"], stride["stride_x"]) == p.spec.stride
        assert (main.reg("KERNEL_HEIGHT_M1") + 1, main.reg("KERNEL_WIDTH_M1") + 1) == p.spec.kernel
    # Scale/bias records (10 bytes per OFM channel) and the weight stream, read where the op reads them.
    mem = _replay_regions(art, main.index, cmds)
    sb, sl = main.reg("SCALE_BASE"), main.reg("SCALE_LENGTH")
    rec = bytes(mem[main.reg("SCALE_REGION")][sb:sb + sl])
    n_out = len(p.bias)
    assert sl == -(-10 * n_out // 16) * 16
    for c in range(n_out):
        r = rec[10 * c:10 * c + 10]
        mult, e = math.frexp(float(np.float64(p.input_scale) * np.float64(p.weight_scales[c]) / p.output_scale))
        assert int.from_bytes(r[0:5], "little", signed=True) == p.bias[c]
        assert int.from_bytes(r[5:9], "little") == round(mult * 2**31)
        assert r[9] == 31 - e
    wb, wl = main.reg("WEIGHT_BASE"), main.reg("WEIGHT_LENGTH")
    assert wl % 16 == 0
    decoded = np.array(mlw_codec.decode(bytearray(mem[main.reg("WEIGHT_REGION")][wb:wb + wl])))
    nz = np.sort(decoded[decoded != 0])
    assert np.array_equal(nz, np.sort(p.weights[p.weights != 0].astype(np.int64)))


def test_multi_layer_compiles_on_every_config(vela_cache):
    m = build_model(MULTI_SPEC)
    for acc in ACCELERATORS:
        art = compile_model(m, acc, cache_dir=vela_cache)
        cmds = _check_artifact(art, m, acc)
        names = [k.name for k in cs.kicks(cmds)]
        assert names.count("NPU_OP_DEPTHWISE") == 1 and names.count("NPU_OP_CONV") == 3
        for k in cs.kicks(cmds):
            if k.name in ("NPU_OP_CONV", "NPU_OP_DEPTHWISE"):
                _check_kick_geometry(k)
            if k.name == "NPU_OP_DMA_START":  # weights copied from region 0 into the arena
                assert k.reg("DMA0_SRC_REGION") == WEIGHT_REGION and k.reg("DMA0_DST_REGION") == SCRATCH_REGION
        # every kernel op that reads DMA'd weights is preceded by a DMA_WAIT since the DMA
        pending = False
        for c in cmds:
            if c.name == "NPU_OP_DMA_START":
                pending = True
            elif c.name == "NPU_OP_DMA_WAIT":
                pending = False
            elif c.name in cs.KERNEL_OPS:
                assert not pending, f"{acc}: kernel op at {c.offset:#x} runs while a DMA may be outstanding"


@pytest.mark.parametrize("accelerator", ["ethos-u55-64", "ethos-u55-256"])
def test_cascaded_stream_uses_rolling_buffer_tiles(vela_cache, accelerator):
    """With --optimise Size Vela cascades layers row by row through a rolling buffer addressed with IFM tile 2."""
    m = build_model(ModelSpec((32, 32, 8), (Conv2D(16, (3, 3)), Conv2D(16, (3, 3))), seed=14))
    art = compile_model(m, accelerator, cache_dir=vela_cache, extra_args=("--optimise", "Size"))
    cmds = _check_artifact(art, m, accelerator)
    convs = [k for k in cs.kicks(cmds) if k.name == "NPU_OP_CONV"]
    assert len(convs) == 64  # one kick per OFM row of each layer
    uses_tile2 = [_check_kick_geometry(k) for k in convs]
    assert any(uses_tile2)
    assert {k.reg("BLOCKDEP") for k in convs} >= {0, 3}


def test_random_models_compile(vela_cache):
    rng = np.random.default_rng(2024)
    for i in range(4):
        spec = random_model_spec(rng, max_layers=3, max_hw=12, max_channels=24)
        m = build_model(spec)
        acc = ACCELERATORS[i % 4]
        art = compile_model(m, acc, cache_dir=vela_cache)
        for k in cs.kicks(_check_artifact(art, m, acc)):
            if k.name in ("NPU_OP_CONV", "NPU_OP_DEPTHWISE"):
                _check_kick_geometry(k)


def test_cpu_fallback_raises_clear_error(vela_cache):
    # Stride 4 depthwise is outside Vela's U55 constraints ("Kernel stride must be in the range (1,3)").
    m = single_layer(DepthwiseConv2D((3, 3), (4, 4), "VALID"), (12, 12, 4), seed=1)
    with pytest.raises(CpuFallbackError) as ei:
        compile_model(m, "ethos-u55-64", cache_dir=vela_cache)
    assert [o.op for o in ei.value.cpu_ops] == ["DEPTHWISE_CONV_2D"]
    assert any("stride" in r for r in ei.value.cpu_ops[0].reasons)
    assert "DEPTHWISE_CONV_2D" in str(ei.value)
    # The same op in the middle of an otherwise supported model.
    mixed = build_model(ModelSpec((12, 12, 4), (Conv2D(8), DepthwiseConv2D((3, 3), (4, 4), "VALID"),
                                                FullyConnected(5)), seed=2))
    with pytest.raises(CpuFallbackError) as ei:
        compile_model(mixed, "ethos-u55-256")
    assert len(ei.value.cpu_ops) == 1 and ei.value.cpu_ops[0].output.startswith("l1_")


def test_vela_rejects_garbage():
    with pytest.raises(VelaCompileError):
        compile_model(b"\x00" * 64, "ethos-u55-128")
    with pytest.raises(ValueError):
        compile_model(b"", "ethos-u65-256")


# ---------------------------------------------------------------------------------------------------------------
# Decoder on hand-made streams


def _w(opcode: int, param: int = 0, data: int | None = None) -> list[int]:
    if data is None:
        return [opcode | (param << 16)]
    return [opcode | cs.MODE_CMD1 | (param << 16), data]


def test_decoder_hand_made_stream():
    words = (_w(0x10F, 1) + _w(0x000, 0, 0x400) + _w(0x122, 0x47) + _w(0x024, 39, 0x4000_0000)
             + _w(0x012, 1) + _w(0x002) + _w(0x000, 0xFFFF))
    cmds = cs.decode_stream(np.array(words, np.uint32))
    assert [c.name for c in cmds] == ["NPU_SET_IFM_REGION", "NPU_SET_IFM_BASE0", "NPU_SET_KERNEL_STRIDE",
                                      "NPU_SET_OFM_SCALE", "NPU_OP_KERNEL_WAIT", "NPU_OP_CONV", "NPU_OP_STOP"]
    assert [c.offset for c in cmds] == [0, 4, 12, 16, 24, 28, 32]
    assert cmds[2].fields()["stride_x"] == 4 and cmds[2].fields()["stride_y"] == 2
    assert cmds[2].fields()["weight_order"] == "PART_KERNEL_FIRST"
    assert cmds[3].fields() == {"scale": 0x4000_0000, "shift": 39}
    assert cmds[4].fields() == {"n": 1}
    k = cs.kicks(cmds)[0]
    assert k.reg("IFM_BASE0") == 0x400 and k.params["OFM_SCALE"] == 39
    text = cs.format_stream(cmds)
    assert "NPU_OP_CONV" in text and "IFM_BASE0" in text and "stride_x=4" in text
    assert [w for c in cmds for w in c.words()] == words


@pytest.mark.parametrize("words, msg", [
    (_w(0x0FF) + _w(0x000, 0xFFFF), "unknown cmd0"),
    (_w(0x07F, 0, 1) + _w(0x000, 0xFFFF), "unknown cmd1"),
    ([0x0000_0400 | 0x10F] + _w(0x000, 0xFFFF), "reserved"),
    ([0x8000_0000 | 0x8000] + _w(0x000, 0xFFFF), "payload mode"),
    (_w(0x10F, 1) + _w(0x002), "without NPU_OP_STOP"),
    ([cs.MODE_CMD1 | 0x020], "missing its 32-bit payload"),
    (_w(0x000, 0xFFFF) + _w(0x002), "after NPU_OP_STOP"),
])
def test_decoder_rejects_malformed(words, msg):
    with pytest.raises(cs.CommandStreamError, match=msg):
        cs.decode_stream(np.array(words, np.uint32))


def test_cop1_header_parsing(models, vela_cache):
    art = compile_model(models["conv"], "ethos-u55-128", cache_dir=vela_cache)
    hdr, words = cs.parse_driver_payload(art.cmd_data)
    assert hdr == art.header and np.array_equal(words, art.command_stream)
    assert art.cmd_data[:4] == b"COP1" and hdr.arch_version == (1, 0, 6)
    with pytest.raises(cs.CommandStreamError):
        cs.parse_driver_payload(art.cmd_data[32:])  # raw register words are not a driver payload
    with pytest.raises(cs.CommandStreamError):
        cs.parse_driver_payload(art.cmd_data[:28])  # header without the command stream
    # The CLI prints the same listing.
    assert cs.main([str(art.npz_path)]) == 0
