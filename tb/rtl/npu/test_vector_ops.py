"""NPU vector unit end to end: Vela-compiled MAX_POOL_2D / AVERAGE_POOL_2D, ADD / SUB / MUL / MINIMUM / MAXIMUM /
ABS, LEAKY_RELU / TANH / LOGISTIC / HARD_SWISH (table lookups), int16 pooling / ADD / SUB / MUL / MAXIMUM /
LEAKY_RELU / ABS and uint8 pooling / ADD / SUB / MUL models run on the whole NPU under Verilator; the OFM read back
from external memory must equal LiteRT's reference kernels exactly (and the golden model ``models.npu.vector_ref``).
RESIZE_BILINEAR (a 2x2 AVERAGE POOL on the IFM upscaled by NEAREST) too. Two configs in the default tier (u55-128 and
u55-256, one build each), the other two (u55-32, u55-64) in the slow tier; an illegal pooling mode, an unsupported
precision, an unimplemented elementwise mode and IFM upscaling the vector unit does not define (TRANSPOSE on a POOL,
NEAREST on an ELEMENTWISE) must stop the stream with ``COMPUTE_FAULT`` / ``UNSUPPORTED``. U16 feature maps (no
TFLite type maps to them) run on streams patched to unsigned, against the golden model."""
import numpy as np
import pytest
from ethosu.vela.ethos_u55_regs.ethos_u55_regs import cmd0, elementwise_mode, pooling_mode

from drivers import npu as npu_driver
from drivers.npu import EXT_MEMORY, read_bytes
from drivers.transport import SimDevice
from models.npu import cmdstream as cs
from models.npu import op_models as om
from models.npu import vela
from models.npu.op_matrix import rows_by_name
from models.npu.reference import ReferenceModel
from rtl.npu.compute import ComputeError
from rtl.npu.config import PRESETS
from rtl.npu.controller import ErrorCode
from sim.build import build
from sim.harness import NativeSim
from tb.models.npu.test_vector_ref import (
    EW_MODELS,
    I16_MODELS,
    LUT_MODELS,
    POOL_MODELS,
    SOFTMAX_MODELS,
    U8_MODELS,
    run_golden,
)

CONFIGS = ("u55-128", "u55-256")   # u55-128: the build test_compute.py / test_dma.py use too
SLOW_CONFIGS = ("u55-32", "u55-64")
#: The ``npu`` fixture's configs: the default tier's two, then the slow tier's (every test here on all four).
ALL_CONFIG_PARAMS = [*CONFIGS, *(pytest.param(c, marks=pytest.mark.slow) for c in SLOW_CONFIGS)]


def load(sim, cfg, art, xs):
    """Reset, then load the artifact and its inputs ``xs`` (one array per graph input, int8 or int16)."""
    lay = npu_driver.layout(art, cfg.ext_mem_bytes)
    sim.reset()
    sim.clear(EXT_MEMORY)
    segments = [(lay.cmd_addr, art.cmd_data), (lay.weight_addr, art.weight_data)]
    segments += [(lay.address(t), np.ascontiguousarray(x).tobytes()) for t, x in zip(art.inputs, xs, strict=True)]
    for addr, payload in segments:
        if payload:
            npu_driver.load_bytes(sim, addr, payload)
    return lay


def run_model(sim, cfg, art, xs, max_cycles=300_000):
    """Load, run to done; (status, OFM, cycles)."""
    lay = load(sim, cfg, art, xs)
    (out,) = art.outputs
    npu_driver.start(sim, lay.cmd_addr + art.header.stream_offset, 4 * len(art.command_stream), lay.basep)
    assert npu_driver.wait_done(sim, max_cycles, chunk=64) is not None, "NPU did not finish"
    status = (sim.peek("error"), sim.peek("error_code"), sim.peek("ext_fault"), sim.peek("compute_error"))
    ofm = np.frombuffer(read_bytes(sim, lay.address(out), out.nbytes), dtype={1: np.int8, 2: np.int16}[out.elem_size])
    return status, ofm, sim.peek("cycles")


@pytest.fixture(scope="module", params=ALL_CONFIG_PARAMS)
def npu(request):
    return request.param, build("npu", request.param)


def check_models(npu, models, kick, kicks=None):
    config, design = npu
    cfg = PRESETS[config]
    rng = np.random.default_rng(99)
    with SimDevice(NativeSim(design)) as sim:
        for name, make in models.items():
            model = make(0)
            art = vela.compile_model(model, f"ethos-u55-{cfg.macs}")
            if kick is not None or kicks is not None:
                assert {k.name for k in cs.kicks(art.commands())} == (kicks or {kick})
            ref = ReferenceModel(model)
            xs = [ref.random_input(rng, i) for i in range(len(ref.inputs))]
            want = ref.run_all(*xs)[0].reshape(-1)
            status, got, cycles = run_model(sim, cfg, art, xs)
            assert status == (0, ErrorCode.OK, 0, 0), (name, status)
            got = got.view(want.dtype)   # int8 / int16 as read; uint8 models compare as uint8
            np.testing.assert_array_equal(got, want, err_msg=name)
            np.testing.assert_array_equal(run_golden(art, xs, cfg.shram_bytes), want, err_msg=f"golden {name}")
            print(f"{config} {name}: bit-exact, {cycles} NPU cycles (Vela estimate {art.perf.npu_cycles})")


def test_pool_bit_exact(npu):
    check_models(npu, POOL_MODELS, "NPU_OP_POOL")


def test_elementwise_bit_exact(npu):
    check_models(npu, EW_MODELS, "NPU_OP_ELEMENTWISE")


def test_int16_bit_exact(npu):
    """int16 activations: MAX / AVERAGE pooling, ADD, SUB, MUL, MAXIMUM, LEAKY_RELU (ELEMENTWISE LRELU), ABS."""
    check_models(npu, I16_MODELS, None, None)


def test_uint8_bit_exact(npu):
    """uint8 activations: AVERAGE / MAX pooling, ADD (broadcast), SUB, MUL."""
    check_models(npu, U8_MODELS, None, None)


def test_lut_activations_bit_exact(npu):
    """LEAKY_RELU, TANH, LOGISTIC: a table DMA'd into the SHRAM, then an identity POOL with ACTIVATION TABLE_0."""
    check_models(npu, LUT_MODELS, None, {"NPU_OP_DMA_START", "NPU_OP_POOL"})


def test_softmax_bit_exact(npu):
    """int8 SOFTMAX as Vela decomposes it: 32-bit intermediates, CLZ / SHL / SHR, scale mode 0 SUB, a 32-bit exp
    table, REDUCE_SUM across depth."""
    check_models(npu, SOFTMAX_MODELS, None, {"NPU_OP_DMA_START", "NPU_OP_POOL", "NPU_OP_ELEMENTWISE"})


def sub_scale_mode_1(seed: int) -> bytes:
    """An int8 SUB whose quantisation (model seed ``seed + 2``) makes Vela write IFM scale mode 1."""
    return om.binary("SUB", (1, 4, 5, 6), (1, 4, 5, 6), seed=seed + 2)


def test_sub_scale_mode_1_bit_exact(npu):
    """SUB whose first operand has the larger scale: Vela's IFM scale mode 1 (the SUB models above are mode 2, or 0
    inside SOFTMAX; ADD has all three)."""
    config, _ = npu
    art = vela.compile_cached(sub_scale_mode_1(0), config)
    (kick,) = cs.kicks(art.commands())
    assert kick.reg("IFM_PRECISION") >> 8 & 3 == 1, "Vela wrote another scale mode"
    check_models(npu, {"sub_scale_mode1_4x5x6": sub_scale_mode_1}, "NPU_OP_ELEMENTWISE")


def test_nearest_upscaled_pool_bit_exact(npu):
    """RESIZE_BILINEAR x2 (no half-pixel centres): Vela's one POOL reads the IFM through IFM_UPSCALE NEAREST."""
    row = rows_by_name()["resize_bilinear_int8_2x"]
    check_models(npu, {row.name: row.builder}, "NPU_OP_POOL")


def _patched(art, fn):
    """The artifact's stream with ``fn(word)`` applied to every word (returns the new word list)."""
    return [fn(int(w)) for w in art.command_stream]


@pytest.mark.parametrize("what", ["bad_pool_mode", "reserved_ifm_precision", "unsigned_32bit_ofm",
                                  "elementwise_mode_10", "pool_transpose_upscale", "elementwise_upscale"])
def test_unsupported_op_halts(npu, what):
    config, design = npu
    cfg = PRESETS[config]
    model = (EW_MODELS["mul_5x6x20"] if what.startswith("elementwise")
             else rows_by_name()["resize_bilinear_int8_2x"].builder if what == "pool_transpose_upscale"
             else POOL_MODELS["max2x2_s2_valid_8x8x16"])(0)
    art = vela.compile_model(model, f"ethos-u55-{cfg.macs}")
    if what == "bad_pool_mode":
        def fn(w):   # NPU_OP_POOL mode 7 (pooling_mode has 0..2)
            return w | (7 << 16) if w & 0xFFFF == 0x0005 else w
    elif what == "reserved_ifm_precision":
        def fn(w):   # IFM_PRECISION bits [3:2] = 3 (8, 16 and 32 bit are 0..2)
            return w | (3 << 18) if w & 0xFFFF == 0x0105 else w
    elif what == "unsigned_32bit_ofm":
        def fn(w):   # OFM_PRECISION: 32-bit unsigned (ofm_precision has S32 only)
            return 0x0114 | ((((w >> 16) & ~7) | 4) << 16) if w & 0xFFFF == 0x0114 else w
    elif what == "pool_transpose_upscale":
        def fn(w):   # IFM_UPSCALE NEAREST -> TRANSPOSE (transpose conv only)
            return 0x0107 | (2 << 16) if w == 0x00010107 else w
    elif what == "elementwise_upscale":
        def fn(w):   # IFM_UPSCALE NONE -> NEAREST on an elementwise op
            return 0x00010107 if w == 0x0107 else w
    else:
        def fn(w):   # NPU_OP_ELEMENTWISE MUL -> mode 10 (elementwise_mode has 0..9)
            return w | (10 << 16) if w == 0x0006 else w
    words = _patched(art, fn)
    assert words != [int(w) for w in art.command_stream]
    assert_stream_unsupported(design, cfg, art, words)


def assert_stream_unsupported(design, cfg, art, words):
    """Run ``art`` with its command stream replaced by ``words`` (zero inputs): the NPU must stop, not hang, with
    ``COMPUTE_FAULT`` / ``UNSUPPORTED``."""
    with SimDevice(NativeSim(design)) as sim:
        lay = load(sim, cfg, art, [np.zeros(t.nbytes, np.int8) for t in art.inputs])
        addr = lay.cmd_addr + art.header.stream_offset
        npu_driver.load_bytes(sim, addr, np.asarray(words, "<u4").tobytes())
        npu_driver.start(sim, addr, 4 * len(words), lay.basep)
        assert npu_driver.wait_done(sim, 20_000, chunk=16) is not None, "NPU hung"
        assert (sim.peek("error"), sim.peek("error_code"), sim.peek("compute_error")) == (
            1, ErrorCode.COMPUTE_FAULT, ComputeError.UNSUPPORTED.value)


def test_reduce_sum_matches_golden(npu):
    """REDUCE_SUM (no TFLite operator maps to it alone at int8): a padded AVERAGE pool's stream (OFM scale 1) with
    the kick's pooling mode patched to REDUCE_SUM; the RTL must equal the golden model's register semantics (sum of
    ``ifm - zp`` over the valid taps, no division), on small random inputs (so most sums are not clamped)."""
    config, design = npu
    cfg = PRESETS[config]
    model = POOL_MODELS["avg3x3_s1_same_6x6x8"](1)
    art = vela.compile_model(model, f"ethos-u55-{cfg.macs}")
    words = _patched(art, lambda w: (w & 0xFFFF) | (2 << 16) if w & 0xFFFF == 0x0005 else w)
    assert words != [int(w) for w in art.command_stream]
    commands = cs.decode_stream(words)
    rng = np.random.default_rng(5)
    with SimDevice(NativeSim(design)) as sim:
        for _ in range(2):
            x = rng.integers(-30, 10, size=art.inputs[0].nbytes, dtype=np.int8)
            lay = load(sim, cfg, art, [x])
            addr = lay.cmd_base
            npu_driver.load_bytes(sim, addr, np.asarray(words, "<u4").tobytes())
            npu_driver.start(sim, addr, 4 * len(words), lay.basep)
            assert npu_driver.wait_done(sim, 100_000, chunk=64) is not None, "NPU did not finish"
            assert (sim.peek("error"), sim.peek("compute_error")) == (0, 0)
            (out,) = art.outputs
            got = np.frombuffer(read_bytes(sim, lay.address(out), out.nbytes), np.int8)
            want = run_golden(art, [x], cfg.shram_bytes, commands)
            assert not np.array_equal(want, run_golden(art, [x], cfg.shram_bytes)), "the patch changed nothing"
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name,unsigned", [("avg3x3_s1_same_6x6x8", True), ("i16_avg3x3_s1_same_6x6x8", False),
                                           ("i16_avg3x3_s1_same_6x6x8", True)])
def test_reduce_sum_other_precisions_match_golden(npu, name, unsigned):
    """REDUCE_SUM as in :func:`test_reduce_sum_matches_golden` on U8, S16 and U16 feature maps: the padded AVERAGE
    pool's stream patched to REDUCE_SUM, on small random ``ifm - zp``. Unsigned: the precisions patched to unsigned and
    the IFM zero point to the signed maximum (127 / 32767), the inputs just above it (so that reading them signed
    would make every sum negative); the result must differ from the same stream read signed."""
    config, design = npu
    cfg = PRESETS[config]
    make = {**POOL_MODELS, **I16_MODELS}[name]
    art = vela.compile_cached(make(1), config)
    size = art.inputs[0].elem_size
    bits = 8 * size
    signed = with_mode(art, _POOL.AVERAGE, _POOL.REDUCE_SUM)
    rng = np.random.default_rng(5)
    if unsigned:
        half = 1 << (bits - 1)
        signed = [(w & 0xFFFF) | (half - 1) << 16 if w & 0xFFFF == cmd0.NPU_SET_IFM_ZERO_POINT.value else w
                  for w in signed]
        words = _unsigned(art, bits, signed)
        dtype = {1: np.uint8, 2: np.uint16}[size]
        x = rng.integers(half, half + (28 if bits == 8 else 2000), size=art.inputs[0].numel, dtype=dtype)
        before = cs.decode_stream(signed)
    else:
        words, dtype, before = signed, np.int16, art.commands()
        x = rng.integers(-3000, 1000, size=art.inputs[0].numel, dtype=dtype)
    want = run_golden(art, [x], cfg.shram_bytes, cs.decode_stream(words))
    assert not np.array_equal(want, run_golden(art, [x], cfg.shram_bytes, before)), "the patch changed nothing"
    with SimDevice(NativeSim(design)) as sim:
        np.testing.assert_array_equal(run_words(sim, cfg, art, words, [x], dtype), want)


@pytest.mark.parametrize("round_mode", [0, 1])   # TFL, TRUNCATE (Vela's SOFTMAX itself uses NATURAL)
def test_shr_round_modes_match_golden(npu, round_mode):
    """ELEMENTWISE SHR with the other round modes: the int8 SOFTMAX stream with the round mode of every SHR kick's
    OFM_PRECISION write patched; the RTL must equal the golden model (``vector_ref.round_shift``), and the patch
    must change the golden result (TRUNCATE) or not (TFL: half up below a 32-bit shift, as NATURAL)."""
    config, design = npu
    cfg = PRESETS[config]
    art = vela.compile_model(SOFTMAX_MODELS["softmax_2x3x12_beta0.5"](0), f"ethos-u55-{cfg.macs}")
    words = [int(w) for w in art.command_stream]
    last_prec = None
    patched = 0
    for c in cs.decode_stream(words):
        if c.name == "NPU_SET_OFM_PRECISION":
            last_prec = c
        elif c.name == "NPU_OP_ELEMENTWISE" and c.param == 8:
            i = last_prec.offset // 4
            words[i] = (words[i] & 0xFFFF) | (((last_prec.param & 0x3FFF) | (round_mode << 14)) << 16)
            patched += 1
    assert patched == 2
    commands = cs.decode_stream(words)
    rng = np.random.default_rng(6)
    with SimDevice(NativeSim(design)) as sim:
        for _ in range(2):
            x = rng.integers(-128, 128, size=art.inputs[0].nbytes, dtype=np.int8)
            lay = load(sim, cfg, art, [x])
            npu_driver.load_bytes(sim, lay.cmd_base, np.asarray(words, "<u4").tobytes())
            npu_driver.start(sim, lay.cmd_base, 4 * len(words), lay.basep)
            assert npu_driver.wait_done(sim, 100_000, chunk=64) is not None, "NPU did not finish"
            assert (sim.peek("error"), sim.peek("compute_error")) == (0, 0)
            (out,) = art.outputs
            got = np.frombuffer(read_bytes(sim, lay.address(out), out.nbytes), np.int8)
            want = run_golden(art, [x], cfg.shram_bytes, commands)
            changed = not np.array_equal(want, run_golden(art, [x], cfg.shram_bytes))
            assert changed == (round_mode == 1)
            np.testing.assert_array_equal(got, want)


def run_words(sim, cfg, art, words, xs, dtype):
    """Load ``art`` with inputs ``xs``, run the stream ``words`` instead of its own; its OFM as ``dtype``."""
    lay = load(sim, cfg, art, xs)
    npu_driver.load_bytes(sim, lay.cmd_base, np.asarray(words, "<u4").tobytes())
    npu_driver.start(sim, lay.cmd_base, 4 * len(words), lay.basep)
    assert npu_driver.wait_done(sim, 100_000, chunk=64) is not None, "NPU did not finish"
    assert (sim.peek("error"), sim.peek("compute_error")) == (0, 0)
    (out,) = art.outputs
    return np.frombuffer(read_bytes(sim, lay.address(out), out.nbytes), dtype)


def _unsigned(art, bits: int, words: list[int] | None = None) -> list[int]:
    """``art``'s stream (or ``words``, a same-length patch of it) with every IFM / IFM2 / OFM precision made unsigned
    (bit 0 cleared) and ACTIVATION_MIN / MAX the unsigned ``bits``-bit range."""
    words = [int(w) for w in (art.command_stream if words is None else words)]
    for c in art.commands():
        i = c.offset // 4
        if c.name in ("NPU_SET_IFM_PRECISION", "NPU_SET_IFM2_PRECISION", "NPU_SET_OFM_PRECISION"):
            words[i] &= ~(1 << 16)
        elif c.name in ("NPU_SET_ACTIVATION_MIN", "NPU_SET_ACTIVATION_MAX"):
            words[i] = (words[i] & 0xFFFF) | (((1 << bits) - 1 if c.name.endswith("MAX") else 0) << 16)
    return words


#: name -> (model, element bits): the int16 models and int16 MINIMUM, and int8 ones whose kind no uint8 model runs
#: (ABS, MIN, MAX). (A 32-bit unsigned OFM is refused: test_unsupported_op_halts.)
UNSIGNED_CASES = {**{n: (make, 16) for n, make in I16_MODELS.items()},
                  "minimum_int16_tensor": (rows_by_name()["minimum_int16_tensor"].builder, 16),
                  **{n: (EW_MODELS[n], 8) for n in ("abs_4x5x12", "minimum_4x5x12", "maximum_bcast_4x5x12")}}


@pytest.mark.parametrize("name", list(UNSIGNED_CASES))
def test_unsigned_matches_golden(npu, name):
    """U16 feature maps (the vector unit takes them; no TFLite type maps to them, so Vela never writes U16) and U8 for
    ABS / MIN / MAX: a signed model's stream with its precisions patched to unsigned (:func:`_unsigned`) on random
    unsigned inputs; the RTL must equal the golden model, whose result must differ from the signed stream's on the
    same bytes."""
    config, design = npu
    cfg = PRESETS[config]
    make, bits = UNSIGNED_CASES[name]
    art = vela.compile_cached(make(0), config)
    words = _unsigned(art, bits)
    commands = cs.decode_stream(words)
    assert sum(c.name.endswith("_PRECISION") for c in commands) >= 2
    udt, sdt = (np.uint16, np.int16) if bits == 16 else (np.uint8, np.int8)
    rng = np.random.default_rng(17)
    xs = [rng.integers(0, 1 << bits, size=t.nbytes * 8 // bits, dtype=udt) for t in art.inputs]
    want = run_golden(art, xs, cfg.shram_bytes, commands)
    signed = run_golden(art, [x.view(sdt) for x in xs], cfg.shram_bytes).view(udt)
    assert not np.array_equal(want, signed), "the patch changed nothing"
    with SimDevice(NativeSim(design)) as sim:
        np.testing.assert_array_equal(run_words(sim, cfg, art, words, xs, udt), want)


_EW, _POOL = elementwise_mode, pooling_mode
_SOFTMAX = SOFTMAX_MODELS["softmax_2x3x12_beta0.5"]
#: name -> (model, mode of the kick patched, mode written): ELEMENTWISE modes at precisions Vela 5.2 never writes them
#: at (CLZ / SHL / SHR only at 32 bit, LRELU at 16, ABS / MIN / MAX not at 32), and MAX / AVERAGE pooling of 32-bit
#: elements (SOFTMAX's REDUCE_SUM across depth patched: the OFM's one channel pools channel 0): the first kick of that
#: mode and no other is patched; in SOFTMAX's chain (32-bit intermediates) every later kick runs on its result.
MODE_CASES = {
    "clz_s8": (EW_MODELS["abs_4x5x12"], _EW.ABS, _EW.CLZ),
    "lrelu_s8": (EW_MODELS["abs_4x5x12"], _EW.ABS, _EW.LRELU),
    "shl_s8": (EW_MODELS["minimum_4x5x12"], _EW.MIN, _EW.SHL),
    "shr_s8": (EW_MODELS["minimum_4x5x12"], _EW.MIN, _EW.SHR),
    "clz_s16": (I16_MODELS["i16_abs_4x5x12"], _EW.ABS, _EW.CLZ),
    "shl_s16": (I16_MODELS["i16_maximum_4x5x12"], _EW.MAX, _EW.SHL),
    "shr_s16": (I16_MODELS["i16_maximum_4x5x12"], _EW.MAX, _EW.SHR),
    "abs_s32": (_SOFTMAX, _EW.CLZ, _EW.ABS),
    "lrelu_s32": (_SOFTMAX, _EW.CLZ, _EW.LRELU),
    "min_s32": (_SOFTMAX, _EW.ADD, _EW.MIN),
    "max_s32": (_SOFTMAX, _EW.ADD, _EW.MAX),
    "max_pool_s32": (_SOFTMAX, _POOL.REDUCE_SUM, _POOL.MAX),
    "average_pool_s32": (_SOFTMAX, _POOL.REDUCE_SUM, _POOL.AVERAGE),
}


def _first_kick(art, mode, ifm32: bool = False) -> cs.Kick:
    """The first kick of ``mode`` (an ``elementwise_mode`` or ``pooling_mode``; ``ifm32``: with a 32-bit IFM)."""
    op = "NPU_OP_ELEMENTWISE" if isinstance(mode, elementwise_mode) else "NPU_OP_POOL"
    return next(k for k in cs.kicks(art.commands()) if k.name == op and k.command.param == mode.value
                and (not ifm32 or k.reg("IFM_PRECISION") >> 2 & 3 == 2))


def with_mode(art, old, new, ifm32: bool = False) -> list[int]:
    """``art``'s stream with its first kick of mode ``old`` (:func:`_first_kick`) made mode ``new``."""
    words = [int(w) for w in art.command_stream]
    at = _first_kick(art, old, ifm32).command.offset // 4
    words[at] = (words[at] & 0xFFFF) | (new.value << 16)
    return words


def with_unsigned_ifm(art, words: list[int], mode) -> list[int]:
    """``words`` (a same-length patch of ``art``'s stream) with the IFM and IFM2 of the first kick of ``mode`` with a
    32-bit IFM read as unsigned: IFM_PRECISION / IFM2_PRECISION with bit 0 cleared written just before the kick, their
    values restored just after it (so no other kick changes)."""
    kick = _first_kick(art, mode, ifm32=True)
    at = kick.command.offset // 4
    regs = [(cmd0.NPU_SET_IFM_PRECISION.value, kick.reg("IFM_PRECISION")),
            (cmd0.NPU_SET_IFM2_PRECISION.value, kick.reg("IFM2_PRECISION", 0))]
    return (words[:at] + [code | (value & ~1) << 16 for code, value in regs] + [words[at]]
            + [code | value << 16 for code, value in regs] + words[at + 1:])


#: name -> (mode of SOFTMAX's first kick with a 32-bit IFM of that mode, mode written or None): that kick reads its
#: 32-bit IFM / IFM2 as U32 (:func:`with_unsigned_ifm`; a U32 OFM is refused, its OFM stays S32). Only the cases where
#: that changes SOFTMAX's output on these inputs: the other modes tried on these kicks (SUB, CLZ, SHL, SHR, ABS,
#: LRELU, MAX / AVERAGE pooling) give the same output read signed or unsigned, so they would test nothing.
U32_CASES = {"mul": (_EW.MUL, None), "add": (_EW.ADD, None), "min": (_EW.ADD, _EW.MIN), "max": (_EW.ADD, _EW.MAX)}


@pytest.mark.parametrize("name", list(U32_CASES))
def test_unsigned_32bit_ifm_matches_golden(npu, name):
    """U32 IFMs (no TFLite type maps to them): one kick of the int8 SOFTMAX stream (32-bit intermediates) reads its
    IFM / IFM2 unsigned, in its own mode or patched to another; the RTL must equal the golden model on random int8
    inputs, and reading the IFM unsigned must change the golden result (vs the same stream read signed)."""
    config, design = npu
    cfg = PRESETS[config]
    art = vela.compile_cached(_SOFTMAX(0), config)
    old, new = U32_CASES[name]
    signed = with_mode(art, old, new, ifm32=True) if new else [int(w) for w in art.command_stream]
    words = with_unsigned_ifm(art, signed, old)
    rng = np.random.default_rng(29)
    xs = [rng.integers(-128, 128, size=t.nbytes, dtype=np.int8) for t in art.inputs]
    want = run_golden(art, xs, cfg.shram_bytes, cs.decode_stream(words))
    assert not np.array_equal(want, run_golden(art, xs, cfg.shram_bytes, cs.decode_stream(signed))), \
        "reading the IFM unsigned changed nothing"
    with SimDevice(NativeSim(design)) as sim:
        np.testing.assert_array_equal(run_words(sim, cfg, art, words, xs, np.int8), want)


@pytest.mark.parametrize("name,unsigned", [(n, False) for n in MODE_CASES]
                         + [(n, True) for n in MODE_CASES if not n.endswith("s32")])
def test_elementwise_modes_at_other_precisions_match_golden(npu, name, unsigned):
    """The vector unit takes every ELEMENTWISE mode at 8, 16 and 32 bits, signed or not; :data:`MODE_CASES` patch a
    Vela stream so a mode runs at a precision no Vela stream uses it at (``unsigned``: its precisions made unsigned
    too, :func:`_unsigned`). The RTL must equal the golden model on random full-range inputs, and the patch must
    change the golden result (``unsigned``: vs the same mode read signed)."""
    config, design = npu
    cfg = PRESETS[config]
    make, old, new = MODE_CASES[name]
    art = vela.compile_cached(make(0), config)
    signed = with_mode(art, old, new)
    size = art.inputs[0].elem_size
    words = _unsigned(art, 8 * size, signed) if unsigned else signed
    dtype = {(1, False): np.int8, (2, False): np.int16, (1, True): np.uint8, (2, True): np.uint16}[size, unsigned]
    rng = np.random.default_rng(23)
    info = np.iinfo(dtype)
    xs = [rng.integers(info.min, info.max + 1, size=t.nbytes // t.elem_size, dtype=dtype) for t in art.inputs]
    want = run_golden(art, xs, cfg.shram_bytes, cs.decode_stream(words))
    before = cs.decode_stream(signed) if unsigned else art.commands()
    assert not np.array_equal(want, run_golden(art, xs, cfg.shram_bytes, before)), "the patch changed nothing"
    with SimDevice(NativeSim(design)) as sim:
        np.testing.assert_array_equal(run_words(sim, cfg, art, words, xs, want.dtype), want)
