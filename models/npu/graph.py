"""What a model's graph says about an NPU run of it: useful MACs per layer, and which kicks of Vela's command stream
make up which of Vela's layers.

MAC utilisation = useful MACs (from the LiteRT graph's layer shapes: CONV_2D ``OH*OW*OC*KH*KW*IC``, DEPTHWISE
``OH*OW*C*KH*KW``, FULLY_CONNECTED ``units*in``) / (cycles x the configuration's MACs per cycle). Kicks are grouped
into layers (consecutive kicks of one operator kind reading the same IFM) and paired with Vela's per-layer estimate
by :mod:`drivers.npu` when the counts agree.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from base import RampartError

from . import cmdstream as cs
from . import vela
from .tflite_builder import model_bytes

#: Graph operators whose MACs count as useful work.
MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")

__all__ = ["MAC_OPS", "graph_macs", "group_kicks", "interpreter", "vela_layers"]


def interpreter(data: bytes):
    """A LiteRT interpreter (reference kernels, one thread) of the .tflite bytes ``data``, tensors allocated;
    a model LiteRT rejects is a one-line RampartError."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        it = Interpreter(model_content=data, num_threads=1, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e).strip() else type(e).__name__
        raise RampartError(f"not a valid .tflite model: {first}") from e
    return it


def graph_macs(model) -> list[tuple[str, str, int]]:
    """(op, output tensor name, useful MACs) of every CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED, in graph order."""
    it = interpreter(model_bytes(model))
    shapes = {t["index"]: tuple(int(s) for s in t["shape"]) for t in it.get_tensor_details()}
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    out = []
    for op in it._get_ops_details():  # private, but LiteRT has no public op listing
        name = op["op_name"]
        if name not in MAC_OPS:
            continue
        ofm, weights = shapes[int(op["outputs"][0])], shapes[int(op["inputs"][1])]
        n_out = int(np.prod(ofm))
        if name == "CONV_2D":          # weights OHWI
            macs = n_out * int(np.prod(weights[1:]))
        elif name == "DEPTHWISE_CONV_2D":  # weights 1HWC
            macs = n_out * weights[1] * weights[2]
        else:                          # FULLY_CONNECTED: weights OI
            macs = n_out * weights[-1]
        out.append((name, names[int(op["outputs"][0])], int(macs)))
    return out


def group_kicks(kernel_kicks: list[cs.Kick]) -> list[list[int]]:
    """Indices of ``kernel_kicks`` per layer: consecutive kicks of the same operator kind and mode (the command's
    param: the pooling or elementwise function) that read the same IFM, or that continue the previous kick's OFM
    (Vela's depth slices and height stripes of one layer: the OFM base moves forward by less than the previous
    kick's OFM extent, or to its end; the IFM base does not move back; same kernel) without reading the OFM
    written so far."""
    groups: list[list[int]] = []
    for i, k in enumerate(kernel_kicks):
        members = [kernel_kicks[j] for j in groups[-1]] if groups else []
        if not members or not (_same_kind(members[-1], k)
                               and (_same_ifm(members[-1], k) or _continues_ofm(members, k))):
            groups.append([])
        groups[-1].append(i)
    return groups


def _same_kind(a: cs.Kick, b: cs.Kick) -> bool:
    return (a.name, a.command.param) == (b.name, b.command.param)


def _same_ifm(a: cs.Kick, b: cs.Kick) -> bool:
    return all(a.reg(r, 0) == b.reg(r, 0) for r in ("IFM_REGION", "IFM_BASE0"))


def _ofm_span(k: cs.Kick) -> tuple[int, int]:
    base = k.reg("OFM_BASE0", 0)
    return base, base + k.reg("OFM_STRIDE_Y", 0) * (k.reg("OFM_HEIGHT_M1", 0) + 1)


#: Registers that the slices and stripes of one layer share.
_SLICE_INVARIANT = ("IFM_REGION", "OFM_REGION", "KERNEL_HEIGHT_M1", "KERNEL_WIDTH_M1", "KERNEL_STRIDE")


def _continues_ofm(members: list[cs.Kick], b: cs.Kick) -> bool:
    a = members[-1]
    if any(a.reg(r, 0) != b.reg(r, 0) for r in _SLICE_INVARIANT) or b.reg("IFM_BASE0", 0) < a.reg("IFM_BASE0", 0):
        return False
    if any(lo <= b.reg("IFM_BASE0", 0) < hi for lo, hi in map(_ofm_span, members)):
        return False    # b reads what this group wrote: the next layer
    lo, hi = _ofm_span(a)
    return lo < b.reg("OFM_BASE0", 0) <= hi


def vela_layers(perf: vela.PerfEstimate | None) -> list[vela.LayerPerf]:
    """Vela's NPU layers; rows of one output tensor (an op and its fused activation) merged into the first."""
    out: list[vela.LayerPerf] = []
    for lp in (perf.layers if perf else ()):
        if lp.target != "NPU":
            continue
        if out and out[-1].name == lp.name:
            prev = out[-1]
            out[-1] = replace(prev, op_cycles=prev.op_cycles + lp.op_cycles, npu_cycles=prev.npu_cycles + lp.npu_cycles,
                              mac_count=prev.mac_count + lp.mac_count)
        else:
            out.append(lp)
    return out
