"""Feature-map tiles (NPU_SET_{IFM,OFM}_BASE0-3 / HEIGHT0/1 / WIDTH0) on the vector unit (POOL, ELEMENTWISE).

**OFM tiles, from Vela**: a conv-conv-MAX_POOL-conv chain on 24x16x16 with a 12,000-byte arena: Vela cascades the
pool into the last conv through a rolling buffer and the pool writes across its end (OFM tile 2). Bit-exact vs
LiteRT's reference kernels on the whole NPU; the test asserts Vela's stream really has such a POOL.

**IFM tiles, hand-patched**: Vela 5.2 does not emit a tiled IFM for a vector op. In every cascade tried (pools and
LUT activations after one or two convs, arenas of 6,000-20,000 bytes) the vector op's IFM box never crosses the end
of a rolling buffer, and an elementwise op's IFM2 is never in one (``cascade_builder.elementwise_cascadable``
needs a constant or scalar IFM2); the test asserts the first of these for the model above. So a POOL and an ELEMENTWISE
stream get IFM tiles 1-3 patched in (tiles that read other rows / columns of the input than the plain layout
would) and must equal the golden model (:mod:`models.npu.vector_ref`), which must differ from the untiled result.

Both on u55-128 and u55-256 in the default tier, u55-32 and u55-64 in the slow tier.
"""
import numpy as np
import pytest

from base import cache_root
from drivers.transport import SimDevice
from models.npu import cmdstream as cs
from models.npu import vela
from models.npu.tflite_graph import Graph
from rtl.npu.config import PRESETS
from sim.build import build
from sim.harness import NativeSim
from tb.models.npu.test_vector_ref import EW_MODELS, POOL_MODELS, run_golden
from tb.rtl.npu.test_resample import run_checked
from tb.rtl.npu.test_vector_ops import ALL_CONFIG_PARAMS, run_words

VECTOR_OPS = ("NPU_OP_POOL", "NPU_OP_ELEMENTWISE")


@pytest.fixture(scope="module", params=ALL_CONFIG_PARAMS)
def npu(request):
    return request.param, build("npu", request.param)


def pool_cascade_model():
    """conv 3x3 (RELU) x2, MAX_POOL 3x3 SAME, conv 3x3 on 24x16x16."""
    g = Graph("pool_cascade", 9)
    y = g.input((24, 16, 16))
    y = g.conv2d(y, 16, (3, 3), activation="RELU")
    y = g.conv2d(y, 16, (3, 3), activation="RELU")
    y = g.max_pool(y, (3, 3), (1, 1), "SAME")
    g.output(g.conv2d(y, 8, (3, 3)))
    return g.build()


def _ofm_tiled(kick) -> bool:
    r = kick.reg
    return r("OFM_HEIGHT0_M1") < r("OFM_HEIGHT_M1") and r("OFM_BASE2", 0) != r("OFM_BASE0")


def _ifm_tiled(kick) -> bool:
    """The vector op reads IFM rows or columns past tile 0."""
    r = kick.reg
    if kick.name == "NPU_OP_ELEMENTWISE":
        need_h, need_w = r("OFM_HEIGHT_M1") + 1, r("OFM_WIDTH_M1") + 1
    else:
        ks = r("KERNEL_STRIDE")
        sy, sx = 1 + (ks >> 1 & 1) + 2 * (ks >> 9 & 1), 1 + (ks & 1) + 2 * (ks >> 6 & 1)
        need_h = r("OFM_HEIGHT_M1") * sy + r("KERNEL_HEIGHT_M1") + 1 - r("IFM_PAD_TOP") - r("IFM_PAD_BOTTOM")
        need_w = r("OFM_WIDTH_M1") * sx + r("KERNEL_WIDTH_M1") + 1 - r("IFM_PAD_LEFT") - r("IFM_PAD_RIGHT")
    return need_h > r("IFM_HEIGHT0_M1") + 1 or need_w > r("IFM_WIDTH0_M1") + 1


def test_pool_writing_ofm_tiles_in_a_vela_cascade_bit_exact(npu):
    check_pool_cascade(*npu)


def check_pool_cascade(config: str, design):
    cfg = PRESETS[config]
    model = pool_cascade_model()
    art = vela.compile_model(model, f"ethos-u55-{cfg.macs}", cache_dir=cache_root() / "vela",
                             extra_args=("--optimise", "Performance", "--arena-cache-size", "12000"))
    kicks = cs.kicks(art.commands())
    pools = [k for k in kicks if k.name == "NPU_OP_POOL"]
    assert sum(_ofm_tiled(k) for k in pools) >= 1, "Vela's stream has no POOL writing OFM tile 2"
    assert not any(_ifm_tiled(k) for k in kicks if k.name in VECTOR_OPS), "Vela now tiles a vector op's IFM"
    with SimDevice(NativeSim(design)) as sim:
        run_checked(sim, config, "pool_cascade_ofm_tiles", model, art)


def _cmd0(code: int, value: int) -> list[int]:
    return [code | value << 16]


def _cmd1(code: int, value: int) -> list[int]:
    return [0x4000 | code, value]


def _with_ifm_tiles(art, op: str, h0: int, h1: int, w0: int, at1, at2, at3) -> list[int]:
    """The artifact's stream with IFM tiles written before its (only) ``op`` kick: tile 0 = the top-left
    ``h0 x w0`` of the tensor as before; tiles 1 (columns ``>= w0``, rows ``< h1``), 2 (rows ``>= h0``, columns
    ``< w0``) and 3 start at the tensor's pixels ``at1``, ``at2``, ``at3`` (row, column)."""
    (kick,) = [k for k in cs.kicks(art.commands()) if k.name == op]
    r = kick.reg
    base, sy, sx = r("IFM_BASE0"), r("IFM_STRIDE_Y"), r("IFM_STRIDE_X")
    assert r("IFM_PRECISION") >> 6 & 3 == 0, "the patch assumes an NHWC IFM"
    words = [int(w) for w in art.command_stream]
    at = kick.command.offset // 4
    patch = (_cmd0(0x10B, h0 - 1) + _cmd0(0x10C, h1 - 1) + _cmd0(0x10A, w0 - 1)
             + sum((_cmd1(i, base + y * sy + x * sx) for i, (y, x) in enumerate((at1, at2, at3), 1)), []))
    return words[:at] + patch + words[at:]


#: name -> (model, kick, tiles (h0, h1, w0, at1, at2, at3) as :func:`_with_ifm_tiles`); every tile stays inside the
#: input tensor. Vela's ADD writes its OFM over its IFM (in place, element by element), so there every tile reads
#: pixels at or after the one being computed (raster order), never one already overwritten; its tile 3 is where it
#: would be untiled.
IFM_TILE_CASES = {
    "max3x3_s2_same_7x9x20": (POOL_MODELS["max3x3_s2_same_7x9x20"], "NPU_OP_POOL", (3, 4, 5, (1, 0), (0, 0), (0, 2))),
    "avg3x3_s1_same_6x6x8": (POOL_MODELS["avg3x3_s1_same_6x6x8"], "NPU_OP_POOL", (4, 2, 3, (3, 0), (1, 0), (0, 0))),
    "add_5x6x20": (EW_MODELS["add_5x6x20"], "NPU_OP_ELEMENTWISE", (2, 3, 3, (1, 0), (2, 2), (3, 3))),
}


@pytest.mark.parametrize("name", list(IFM_TILE_CASES))
def test_ifm_tiles_match_golden(npu, name):
    config, design = npu
    make, op, split = IFM_TILE_CASES[name]
    cfg = PRESETS[config]
    art = vela.compile_model(make(2), f"ethos-u55-{cfg.macs}")
    words = _with_ifm_tiles(art, op, *split)
    commands = cs.decode_stream(words)
    (kick,) = [k for k in cs.kicks(commands) if k.name == op]
    assert _ifm_tiled(kick)
    rng = np.random.default_rng(21)
    xs = [rng.integers(-128, 128, size=t.nbytes, dtype=np.int8) for t in art.inputs]
    want = run_golden(art, xs, cfg.shram_bytes, commands)
    assert not np.array_equal(want, run_golden(art, xs, cfg.shram_bytes)), "the tiles read the same pixels"
    with SimDevice(NativeSim(design)) as sim:
        np.testing.assert_array_equal(run_words(sim, cfg, art, words, xs, np.int8), want)
