"""Which NPU command-stream features and which TFLite operators the NPU tests run bit-exactly, per tier and config.

Not a measurement of the NPU: an audit of the tests. It imports the model tables the NPU tests run (their own lists:
``tb/rtl/npu/test_*``, ``tb/models/npu/test_networks.py`` / ``test_digits.py``), Vela-compiles every model for every
config its test runs it on (cached under ``$RAMPART_CACHE/vela``) and classifies every kick of the stream:
operation kind and mode, IFM / IFM2 / OFM precision, IFM2 form (tensor, broadcast, scalar), ADD / SUB scale mode,
round mode, activation function, resampling, feature-map layout, tiles, accumulator format, DMA direction. The
TFLite operators (and their input type) come from the model flatbuffers. Tests that patch a stream (Vela never emits
what they test) are listed by hand in :data:`PATCHED`, with the feature they add. Which configs a test runs in which
tier is written here as the test files parametrise it (:func:`sources`): keep the two in step by hand when a test's
configs change.

``python benchmarks/npu_op_tiers.py [--write BENCHMARKS.md]`` (about 10 s with Vela's compiles cached; about 3 min
without).
"""
from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ethosu.vela.tflite.BuiltinOperator import BuiltinOperator  # noqa: E402
from ethosu.vela.tflite.Model import Model  # noqa: E402
from ethosu.vela.tflite.TensorType import TensorType  # noqa: E402

from base import cache_root  # noqa: E402
from benchmarks.report import write_section  # noqa: E402
from models.npu import cmdstream as cs  # noqa: E402
from models.npu import vela  # noqa: E402
from models.npu.tflite_builder import model_bytes  # noqa: E402

CONFIGS = ("u55-32", "u55-64", "u55-128", "u55-256")
ALL = CONFIGS
_OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if k.isupper()}
_TYPE_NAMES = {v: k.lower() for k, v in vars(TensorType).items() if k.isupper()}
_POOL = {0: "MAX", 1: "AVERAGE", 2: "REDUCE_SUM"}
_EW = {0: "MUL", 1: "ADD", 2: "SUB", 3: "MIN", 4: "MAX", 5: "LRELU", 6: "ABS", 7: "CLZ", 8: "SHR", 9: "SHL"}
_ROUND = {0: "TFL", 1: "TRUNCATE", 2: "NATURAL", 3: "reserved"}


@dataclass(frozen=True)
class Source:
    """A test and the models it runs: ``models(config)`` yields (tflite bytes, extra Vela arguments) or (bytes,
    arguments, patch), ``patch(art)`` giving the stream words the test runs instead of Vela's (its own helper);
    ``fast`` / ``slow``: the configs its default-tier / slow-tier cases run them on."""
    test: str
    fast: tuple[str, ...]
    slow: tuple[str, ...]
    models: Callable[[str], Iterable[tuple[bytes, tuple[str, ...]]]]


def _plain(builders: Iterable[Callable[[int], bytes]], seed: int = 0):
    return lambda config: [(b(seed), ()) for b in builders]


def sources() -> list[Source]:
    from models.npu.digits import digits_model
    from models.npu.networks import NETWORKS, network
    from models.npu.networks.mobilenetv2 import features as mobilenetv2_features
    from models.npu.op_matrix import ROWS
    from tb.models.npu.test_networks import FAST_CONFIG
    from tb.models.npu.test_vector_ref import (
        EW_MODELS,
        I16_MODELS,
        LUT_MODELS,
        POOL_MODELS,
        SOFTMAX_MODELS,
        U8_MODELS,
    )
    from tb.rtl.npu import (
        test_big_ops,
        test_compute,
        test_dilation,
        test_int16_mac,
        test_mac_activations,
        test_mac_uint8,
        test_op_coverage,
        test_resample,
        test_sweep,
        test_vector_ops,
        test_vector_tiles,
    )

    def sweep(config):
        cases = [c for op in test_sweep.OPS for c in test_sweep.draw_cases(config, op, test_sweep.FAST_CASES, 0)]
        return [(c.model().data, ()) for c in (*cases, *test_sweep.POOL_CASES, *test_sweep.LONG_STREAMS)]

    def resample(names):
        return lambda config: [(model_bytes(test_resample.RESAMPLE_MODELS[n][0]()), ()) for n in names] + [
            (model_bytes(test_resample.cascade_model()), test_resample.CASCADE_ARGS)]

    def mode_patch(art, old, new, unsigned: bool) -> list[int]:
        words = test_vector_ops.with_mode(art, old, new)
        return test_vector_ops._unsigned(art, 8 * art.inputs[0].elem_size, words) if unsigned else words

    def u32_patch(art, old, new) -> list[int]:
        words = test_vector_ops.with_mode(art, old, new, ifm32=True) if new else [int(w) for w in art.command_stream]
        return test_vector_ops.with_unsigned_ifm(art, words, old)

    def reduce_sum_patch(art, unsigned: bool) -> list[int]:
        return mode_patch(art, test_vector_ops._POOL.AVERAGE, test_vector_ops._POOL.REDUCE_SUM, unsigned)

    passing = [r.builder for r in test_op_coverage.PASSING]
    second = [r.builder for r in test_op_coverage.PASSING if r.name in test_op_coverage.SECOND_CONFIG_ROWS]
    vector = ("u55-128", "u55-256")
    other = ("u55-32", "u55-64")
    int16_slow = test_int16_mac.CASES  # the slow case list adds two more of the same kinds
    net_sources = [Source(f"test_networks::test_network_on_npu[{n}]", (FAST_CONFIG[n],),
                          tuple(c for c in CONFIGS if c != FAST_CONFIG[n]),
                          lambda config, n=n: [(model_bytes(network(n)), ())]) for n in NETWORKS]
    return [
        Source("test_compute::test_single_layer_bit_exact", ("u55-128",), ("u55-32", "u55-64", "u55-256"),
               _plain(test_compute.MODELS.values())),
        Source("test_sweep (fast cases, identity POOL, long streams)", ALL, (), sweep),
        Source("test_big_ops::test_split_ops", ("u55-32", "u55-128"), ALL,
               lambda config: [(c.model().data, ()) for c in test_big_ops.SPLIT_CASES]),
        Source("test_big_ops::test_large_kernels", ("u55-128", "u55-256"), ALL,
               lambda config: [(c.model().data, ()) for c in test_big_ops.KERNEL_CASES]),
        Source("test_int16_mac::test_int16x8_bit_exact", test_int16_mac.FAST_CONFIGS, ALL,
               _plain([r.builder for r in int16_slow])),
        Source("test_mac_uint8::test_uint8_mac_extreme_zero_points", ("u55-128",), (),
               _plain([r.builder for r in test_mac_uint8.CASES])),
        Source("test_dilation::test_dilated_convs", ("u55-128",), (), _plain([r.builder for r in test_dilation.ROWS])),
        Source("test_mac_activations::test_fused_table_activation_is_bit_exact", vector, other,
               lambda config: [(test_mac_activations.activation_model(la, act).data, ())
                               for la in test_mac_activations.LAYERS for act in test_mac_activations.ACTIVATIONS]),
        Source("test_vector_ops (pool / elementwise / int16 / uint8 / LUT / softmax / bilinear)", vector, other,
               _plain([*POOL_MODELS.values(), *EW_MODELS.values(), *I16_MODELS.values(), *U8_MODELS.values(),
                       *LUT_MODELS.values(), *SOFTMAX_MODELS.values(), test_vector_ops.sub_scale_mode_1])),
        Source("test_sigmoid_tanh::test_int16_tanh_logistic_bit_exact", vector, other,
               _plain(r.builder for r in ROWS if r.name in ("tanh_int16_4x5x6", "logistic_int16_4x5x6"))),
        Source("test_resample::test_resample_bit_exact", ("u55-128",), ("u55-32", "u55-64", "u55-256"),
               resample(tuple(test_resample.RESAMPLE_MODELS))),
        Source("test_resample::test_resample_bit_exact_second_config", ("u55-256",), (),
               resample(test_resample.SECOND_CONFIG_MODELS)),
        Source("test_vector_tiles::test_pool_writing_ofm_tiles_in_a_vela_cascade_bit_exact", vector, other,
               lambda config: [(model_bytes(test_vector_tiles.pool_cascade_model()), test_resample.CASCADE_ARGS)]),
        Source("test_op_coverage::test_coverage_fast / _other_configs (every passing op-matrix row)",
               test_op_coverage.FAST_CONFIGS, test_op_coverage.SLOW_CONFIGS, _plain(passing)),
        Source("test_op_coverage::test_coverage_fast_u55_32", ("u55-32",), (), _plain(second)),
        Source("test_vector_ops::test_unsigned_matches_golden (patched stream)", vector, other,
               lambda config: [(make(0), (), lambda art, bits=bits: test_vector_ops._unsigned(art, bits))
                               for make, bits in test_vector_ops.UNSIGNED_CASES.values()]),
        Source("test_vector_ops::test_elementwise_modes_at_other_precisions_match_golden (patched stream)", vector,
               other, lambda config: [
                   (make(0), (), lambda art, old=old, new=new, u=unsigned: mode_patch(art, old, new, u))
                   for name, (make, old, new) in test_vector_ops.MODE_CASES.items()
                   for unsigned in ((False, True) if not name.endswith("s32") else (False,))]),
        Source("test_vector_ops::test_unsigned_32bit_ifm_matches_golden (patched stream)", vector, other,
               lambda config: [(test_vector_ops._SOFTMAX(0), (), lambda art, old=old, new=new: u32_patch(art, old, new))
                               for old, new in test_vector_ops.U32_CASES.values()]),
        Source("test_vector_ops::test_reduce_sum_other_precisions_match_golden (patched stream)", vector, other,
               lambda config: [({**POOL_MODELS, **I16_MODELS}[n](1), (), lambda art, u=u: reduce_sum_patch(art, u))
                               for n, u in (("avg3x3_s1_same_6x6x8", True), ("i16_avg3x3_s1_same_6x6x8", False),
                                            ("i16_avg3x3_s1_same_6x6x8", True))]),
        Source("test_vector_tiles::test_ifm_tiles_match_golden (patched stream)", vector, other,
               lambda config: [(make(2), (), lambda art, op=op, split=split: test_vector_tiles._with_ifm_tiles(
                   art, op, *split)) for make, op, split in test_vector_tiles.IFM_TILE_CASES.values()]),
        Source("test_mac_activations::test_table_slot_1 / test_vector_unit_table_slot_3 (patched stream)", vector,
               other, lambda config: [
                   (model_bytes(test_mac_activations.activation_model("conv", "tanh")), (),
                    lambda art: test_mac_activations._patch(config, art, slot=1)),
                   (LUT_MODELS["tanh_4x5x12"](0), (), lambda art: test_mac_activations._patch(config, art, slot=3))]),
        Source("test_networks::test_mobilenetv2_features_on_npu", ("u55-128",), ("u55-32", "u55-64", "u55-256"),
               lambda config: [(model_bytes(mobilenetv2_features()), ())]),
        Source("test_digits::test_digits_on_npu_bit_exact", ALL, (), lambda config: [(digits_model(), ())]),
        *net_sources,
    ]


#: Tests whose streams are patched inline (no helper to call): (test, fast configs, slow configs, features added).
PATCHED = [
    ("test_vector_ops::test_reduce_sum_matches_golden", ("u55-128", "u55-256"), ("u55-32", "u55-64"),
     ["POOL REDUCE_SUM", "POOL REDUCE_SUM S8->S8", "POOL REDUCE_SUM with IFM S8", "POOL REDUCE_SUM padded"]),
    ("test_vector_ops::test_shr_round_modes_match_golden", ("u55-128", "u55-256"), ("u55-32", "u55-64"),
     ["round TFL on ELEMENTWISE SHR", "round TRUNCATE on ELEMENTWISE SHR"]),
    ("test_compute::test_pool_variants_run_on_the_vector_unit", ("u55-128",), (),
     ["POOL MAX", "POOL MAX S8->S8", "POOL AVERAGE padded"]),
]


#: What the CHECK states of rtl/npu/op_loader.py (MAC path) and rtl/npu/vector_unit.py take, by kind and IFM
#: precision (read from their ``_unsupported``): the MAC path U8 / S8 / S16 IFMs; the vector unit 8 / 16 / 32-bit IFMs,
#: signed or unsigned (ADD / SUB with an operand scale: 8 / 16 bit only; a U32 OFM is refused, a U32 IFM is not).
IMPLEMENTED = [f"{kind} with IFM {p}" for kind in ("CONV", "CONV (FC)", "DEPTHWISE") for p in ("U8", "S8", "S16")] + [
    f"{kind} with IFM {p}" for kind in [*(f"POOL {m}" for m in _POOL.values()),
                                        *(f"ELEMENTWISE {m}" for m in _EW.values())]
    for p in ("U8", "S8", "U16", "S16", "U32", "S32")]


def _prec(p: int, ofm: bool = False) -> str:
    bits = 8 << ((p >> 1) & 3 if ofm else (p >> 2) & 3)
    return f"{'S' if p & 1 else 'U'}{bits}"


def _tiled_ifm(k: cs.Kick) -> bool:
    r = k.reg
    if k.name == "NPU_OP_ELEMENTWISE":
        need_h, need_w = r("OFM_HEIGHT_M1") + 1, r("OFM_WIDTH_M1") + 1
    else:
        ks = r("KERNEL_STRIDE")
        up = 1 if r("IFM_UPSCALE", 0) & 3 else 0
        sy, sx = 1 + (ks >> 1 & 1) + 2 * (ks >> 9 & 1), 1 + (ks & 1) + 2 * (ks >> 6 & 1)
        need_h = (r("OFM_HEIGHT_M1") * sy + r("KERNEL_HEIGHT_M1") + 1 - r("IFM_PAD_TOP") - r("IFM_PAD_BOTTOM")
                  + up) >> up
        need_w = (r("OFM_WIDTH_M1") * sx + r("KERNEL_WIDTH_M1") + 1 - r("IFM_PAD_LEFT") - r("IFM_PAD_RIGHT")
                  + up) >> up
    return need_h > r("IFM_HEIGHT0_M1") + 1 or need_w > r("IFM_WIDTH0_M1") + 1


def _tiled_ofm(k: cs.Kick) -> bool:
    r = k.reg
    return (r("OFM_HEIGHT0_M1") < r("OFM_HEIGHT_M1") or r("OFM_WIDTH0_M1") < r("OFM_WIDTH_M1"))


def kick_features(k: cs.Kick) -> set[str]:
    """The feature keys of one kick (see the module docstring)."""
    r = k.reg
    if k.name == "NPU_OP_DMA_START":
        src, dst = r("DMA0_SRC_REGION"), r("DMA0_DST_REGION")
        where = {(0, 1): "external -> SHRAM", (0, 0): "external -> external"}.get(
            (src >> 8 & 1, dst >> 8 & 1), "other")
        return {"DMA_START", f"DMA_START {where}"}
    if k.name == "NPU_OP_CONV":
        fc = (r("IFM_HEIGHT0_M1"), r("IFM_WIDTH0_M1"), r("KERNEL_HEIGHT_M1"), r("KERNEL_WIDTH_M1")) == (0, 0, 0, 0)
        kind = "CONV (FC)" if fc else "CONV"
    elif k.name == "NPU_OP_DEPTHWISE":
        kind = "DEPTHWISE"
    elif k.name == "NPU_OP_POOL":
        kind = f"POOL {_POOL.get(k.command.param, k.command.param)}"
    else:
        kind = f"ELEMENTWISE {_EW.get(k.command.param, k.command.param)}"
    ifm, ofm = r("IFM_PRECISION"), r("OFM_PRECISION")
    ew = kind.startswith("ELEMENTWISE")
    unary = kind.split()[-1] in ("ABS", "LRELU", "CLZ")
    prec = _prec(ifm)
    if ew and not unary:
        prec += "," + _prec(r("IFM2_PRECISION"))
    f = {kind, f"{kind} {prec}->{_prec(ofm, ofm=True)}", f"{kind} with IFM {_prec(ifm)}"}
    if ew and not unary:
        b = r("IFM2_BROADCAST", 0)
        form = "scalar" if b & 0x80 else "broadcast " + "".join(d for d, bit in zip("HWC", (1, 2, 4), strict=True)
                                                                  if b & bit) if b & 7 else "tensor"
        f.add(f"{kind} IFM2 {form}" + (" (operands swapped)" if b & 0x40 else ""))
        if kind.split()[-1] in ("ADD", "SUB"):
            f.add(f"{kind} scale mode {ifm >> 8 & 3}")
    if kind.startswith("POOL"):
        ks = r("KERNEL_STRIDE")
        if any(r(f"IFM_PAD_{s}") for s in ("TOP", "LEFT", "BOTTOM", "RIGHT")):
            f.add(f"{kind} padded")
        if ks & 0x243:
            f.add(f"{kind} stride > 1")
        if (r("KERNEL_HEIGHT_M1"), r("KERNEL_WIDTH_M1")) == (0, 0) and kind == "POOL AVERAGE":
            f.add("POOL AVERAGE 1x1 (identity / requantise)")
    path = kind.split()[0]
    f.add(f"round {_ROUND[ofm >> 14 & 3]} on {path}")
    if ew and kind.endswith("SHR"):
        f.add(f"round {_ROUND[ofm >> 14 & 3]} on ELEMENTWISE SHR")
    act = r("ACTIVATION", 0) & 0xFFF
    # the table's slot (TABLE_0..7) follows Vela's SHRAM layout per config: slot 0 or another is the feature
    act_name = {0: "NONE", 3: "TANH", 4: "SIGMOID"}.get(act, "TABLE" if 16 <= act <= 23 else str(act))
    f.add(f"ACTIVATION {act_name} on {path}")
    if act_name == "TABLE":
        f.add(f"ACTIVATION TABLE with {_prec(ofm, ofm=True)} OFM on {path}")
        unit = "the MAC path (CONV / DEPTHWISE)" if path in ("CONV", "DEPTHWISE") else "the vector unit"
        f.add(f"ACTIVATION TABLE in slot {'0' if act == 16 else '1-7'} on {unit}")
    up = r("IFM_UPSCALE", 0) & 3
    if up:
        f.add(f"IFM_UPSCALE {({1: 'NEAREST', 2: 'TRANSPOSE'}).get(up, 'reserved')} on {path}")
    f.add(f"IFM {'NHCWB16' if ifm >> 6 & 3 else 'NHWC'} on {path}")
    f.add(f"OFM {'NHCWB16' if ofm >> 6 & 3 else 'NHWC'} on {path}")
    if path in ("CONV", "DEPTHWISE") and r("KERNEL_STRIDE") & 0x18:
        f.add(f"KERNEL_STRIDE dilation 2 on {path}")
    if path in ("CONV", "DEPTHWISE"):
        f.add(f"ACC_FORMAT {('INT32', 'INT40', 'FP_S5_10', '?')[r('ACC_FORMAT', 0) & 3]} on {path}")
    if _tiled_ifm(k):
        f.add(f"IFM read past tile 0 (tiles) on {path}")
    if _tiled_ofm(k):
        f.add(f"OFM written past tile 0 (tiles) on {path}")
    return f


def tflite_ops(model: bytes) -> set[str]:
    """``OPERATOR dtype`` of every operator of the model (dtype: its first non-constant input's)."""
    m = Model.GetRootAsModel(model, 0)
    sg = m.Subgraphs(0)
    out = set()
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = m.OperatorCodes(op.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        data = [sg.Tensors(op.Inputs(j)) for j in range(op.InputsLength()) if op.Inputs(j) >= 0]
        variable = [t for t in data if not m.Buffers(t.Buffer()).DataLength()] or data
        dtype = _TYPE_NAMES.get(variable[0].Type(), "?") if variable else "-"
        out.add(f"{_OP_NAMES.get(builtin, builtin)} {dtype}")
    return out


def audit() -> tuple[dict, dict]:
    """(feature -> tier -> config -> tests, TFLite op -> tier -> config -> tests)."""
    feats: dict = defaultdict(lambda: {"fast": defaultdict(set), "slow": defaultdict(set)})
    ops: dict = defaultdict(lambda: {"fast": defaultdict(set), "slow": defaultdict(set)})
    for src in sources():
        for tier, configs in (("fast", src.fast), ("slow", src.slow)):
            for config in configs:
                for model, args, *patch in src.models(config):
                    model = model_bytes(model)
                    art = vela.compile_model(model, f"ethos-{config}", cache_dir=cache_root() / "vela",
                                             extra_args=args)
                    commands = cs.decode_stream(patch[0](art)) if patch else art.commands()
                    for k in cs.kicks(commands):
                        if k.name in cs.KERNEL_OPS or k.name in cs.DMA_OPS:
                            for key in kick_features(k):
                                feats[key][tier][config].add(src.test)
                    for key in tflite_ops(model):
                        ops[key][tier][config].add(src.test)
    for test, fast, slow, keys in PATCHED:
        for key in keys:
            for tier, configs in (("fast", fast), ("slow", slow)):
                for config in configs:
                    feats[key][tier][config].add(test + " (patched stream)")
    return feats, ops


def _short(config: str) -> str:
    return config.removeprefix("u55-")


def table(entries: dict, what: str) -> list[str]:
    lines = [f"| {what} | default tier: configs | default-tier tests | slow tier adds | all four in test-all |",
             "|---|---|---|---|---|"]
    for key in sorted(entries):
        fast, slow = entries[key]["fast"], entries[key]["slow"]
        fast_cfgs = [c for c in CONFIGS if fast.get(c)]
        slow_only = [c for c in CONFIGS if slow.get(c) and c not in fast_cfgs]
        tests = sorted({t for c in fast_cfgs for t in fast[c]})
        if len(tests) > 3:
            tests = tests[:3] + [f"+{len(tests) - 3} more"]
        flag = "" if len(fast_cfgs) >= 2 else " **(<2)**"
        every = "yes" if len(set(fast_cfgs) | set(slow_only)) == 4 else "**no**"
        lines.append(f"| {key} | {'/'.join(map(_short, fast_cfgs)) or '-'}{flag} | {'; '.join(tests) or '-'} | "
                     f"{'/'.join(map(_short, slow_only)) or '-'} | {every} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", metavar="BENCHMARKS.md")
    args = ap.parse_args()
    t0 = time.perf_counter()
    feats, ops = audit()
    few = [k for k, v in feats.items() if sum(bool(v["fast"].get(c)) for c in CONFIGS) < 2]
    few_ops = [k for k, v in ops.items() if sum(bool(v["fast"].get(c)) for c in CONFIGS) < 2]
    untested = [k for k in IMPLEMENTED if k not in feats]
    from tb.rtl.npu.test_op_coverage import NOT_IMPLEMENTED, OPEN
    body = "\n".join([
        "## NPU operation coverage by test tier (`npu_op_tiers`)", "",
        f"`python benchmarks/npu_op_tiers.py --write BENCHMARKS.md` ({time.perf_counter() - t0:.0f} s wall, Vela's "
        "compiles cached). An audit of the tests, not a run of them: every model the NPU's bit-exact tests run "
        "(their own model tables, imported) is Vela-compiled for each config its test runs it on, and every kick "
        "of the stream is classified (kind / mode, IFM[,IFM2]->OFM precision, IFM2 form, ADD / SUB scale mode, round "
        "mode, activation function, resampling, layouts, tiles, accumulator format, DMA direction); tests that patch "
        "a stream to what Vela never writes add their features by hand (`PATCHED`). Which configs each test runs in "
        "which tier is as the test files parametrise them (`sources()`, kept in step by hand). Every test listed "
        "compares with LiteRT's reference kernels or, for patched streams and FULLY_CONNECTED's double rounding, "
        "with the numpy golden model (`models.npu.vector_ref`, `models.npu.requant`). Configs: 32 / 64 / 128 / 256 "
        "= u55-32 ... u55-256.", "",
        f"Stream features: {len(feats)}; on fewer than two configs in the default tier: "
        f"{', '.join(sorted(few)) or 'none'}. TFLite operators x input type: {len(ops)}; on fewer than two: "
        f"{', '.join(sorted(few_ops)) or 'none'}.", "",
        "Kind x IFM precision that the NPU's CHECK accepts (`IMPLEMENTED`, read from `rtl/npu/op_loader.py` / "
        f"`vector_unit.py`) but no bit-exact test runs: {', '.join(untested) or 'none'}.", "",
        "Refused by the NPU (COMPUTE_FAULT / UNSUPPORTED, tested: `test_not_implemented_rows_are_refused`) though "
        "LiteRT runs them and Vela 5.2 maps them to the NPU: "
        + ("; ".join(f"`{k}` ({v})" for k, v in NOT_IMPLEMENTED.items()) or "none") + ". Other open op-matrix rows: "
        + "; ".join(f"`{k}` ({v})" for k, v in OPEN.items() if k not in NOT_IMPLEMENTED) + ".", "",
        "Memory moves: Vela 5.2 lowers RESHAPE, SQUEEZE, EXPAND_DIMS, CONCATENATION, PACK / UNPACK, SPLIT / SPLIT_V, "
        "SLICE / STRIDED_SLICE, PAD / MIRROR_PAD and TRANSPOSE to NPU_OP_POOL (AVERAGE 1x1 identity kicks writing at "
        "OFM offsets / strides; PAD: 5 of them), not to NPU_OP_DMA_START; its DMAs carry weights and constant tensors "
        "from the weight region into the arena (external -> external) and lookup tables into the SHRAM (external -> "
        "SHRAM). The DMA unit's own transfer modes are unit-tested against numpy in `tb/rtl/npu/test_dma.py` "
        "(u55-128 build).", "",
        "### Command-stream features", "", *table(feats, "feature"), "",
        "### TFLite operators (input type) in the tested models", "", *table(ops, "operator"),
    ])
    print(body)
    if args.write:
        write_section(args.write, "npu_op_tiers", body)


if __name__ == "__main__":
    main()
