"""The NPU's work as the system model sees it: one :class:`NpuOp` per kick of a Vela command stream.

Read from the register state at each kick (:func:`models.npu.cmdstream.kicks`): a kernel op's IFM / OFM / kernel
shape, its weight and scale-record stream lengths, and a DMA's length. :func:`op_features` turns one op into the
quantities the cost model is fitted on, for one NPU geometry (:class:`NpuGeometry`), following the loop nest of
``rtl/npu/compute.py`` (one MAC beat per OFM micro-block, IFM ublock of 8 channels and kernel element; one decoded
weight per cycle; one 8-byte memory word per request) -- the structure, not the cycle counts, which are fitted.
"""
from __future__ import annotations

from dataclasses import dataclass

from models.npu import cmdstream as cs

__all__ = ["GEOMETRIES", "NpuGeometry", "NpuOp", "OP_KINDS", "WORD_BYTES", "layer_of_ops", "op_features",
           "ops_from_commands", "ops_from_words"]

#: Bytes per external-memory request (every request moves one 64-bit word).
WORD_BYTES = 8
#: IFM channels per MAC beat (the brick's input depth).
IFM_UBLOCK = 8
#: Op kinds the cost model knows: kernel ops by what they compute, and the DMA.
OP_KINDS = ("conv", "fc", "depthwise", "pool", "dma")


@dataclass(frozen=True)
class NpuGeometry:
    """The MAC array shape of one NPU configuration (the four U55 presets: :data:`GEOMETRIES`)."""

    macs: int
    ublock_h: int
    ublock_w: int
    ublock_d: int


#: The U55 presets' geometry (``rtl.npu.config.PRESETS``; Vela's ``accelerator_configs``).
GEOMETRIES = {
    "u55-32": NpuGeometry(32, 1, 1, 4),
    "u55-64": NpuGeometry(64, 1, 1, 8),
    "u55-128": NpuGeometry(128, 1, 2, 8),
    "u55-256": NpuGeometry(256, 2, 2, 8),
}


@dataclass(frozen=True)
class NpuOp:
    """One kick. ``kind`` is one of :data:`OP_KINDS`; shapes are (H, W, C); ``dma_bytes`` only for a DMA."""

    index: int
    kind: str
    ifm: tuple[int, int, int] = (0, 0, 0)
    ofm: tuple[int, int, int] = (0, 0, 0)
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    weight_bytes: int = 0
    scale_bytes: int = 0
    dma_bytes: int = 0
    ifm_key: tuple[int, int] = (0, 0)     # (region, base): kicks of one layer read the same IFM
    part_kernel_first: bool = False       # KERNEL_STRIDE weight order (else depth first)
    ofm_block: tuple[int, int, int] = (1, 1, 1)   # OFM_BLK_HEIGHT/WIDTH/DEPTH: the weight stream is per block

    @property
    def is_kernel(self) -> bool:
        return self.kind != "dma"


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _pad(a: int, b: int) -> int:
    return _ceil(a, b) * b


def _kernel_op(index: int, k) -> NpuOp:
    ifm = (k.reg("IFM_HEIGHT0_M1", 0) + 1, k.reg("IFM_WIDTH0_M1", 0) + 1, k.reg("IFM_DEPTH_M1", 0) + 1)
    ofm = (k.reg("OFM_HEIGHT_M1", 0) + 1, k.reg("OFM_WIDTH_M1", 0) + 1, k.reg("OFM_DEPTH_M1", 0) + 1)
    kernel = (k.reg("KERNEL_HEIGHT_M1", 0) + 1, k.reg("KERNEL_WIDTH_M1", 0) + 1)
    st = cs.kernel_stride(k.reg("KERNEL_STRIDE", 0))
    if k.name == "NPU_OP_DEPTHWISE":
        kind = "depthwise"
    elif k.name == "NPU_OP_POOL":
        kind = "pool"
    elif k.name == "NPU_OP_CONV":
        kind = "fc" if ifm[:2] == (1, 1) and ofm[:2] == (1, 1) and kernel == (1, 1) else "conv"
    else:
        kind = k.name.removeprefix("NPU_OP_").lower()
    pool = kind == "pool"
    return NpuOp(index, kind, ifm, ofm, kernel, (st["stride_y"], st["stride_x"]),
                 weight_bytes=0 if pool else k.reg("WEIGHT_LENGTH", 0),
                 scale_bytes=0 if pool else k.reg("SCALE_LENGTH", 0),
                 ifm_key=(k.reg("IFM_REGION", 0), k.reg("IFM_BASE0", 0)),
                 part_kernel_first=st["weight_order"] == "PART_KERNEL_FIRST",
                 ofm_block=(k.reg("OFM_BLK_HEIGHT_M1", 0) + 1, k.reg("OFM_BLK_WIDTH_M1", 0) + 1,
                            k.reg("OFM_BLK_DEPTH_M1", 0) + 1))


def ops_from_commands(commands) -> tuple[NpuOp, ...]:
    """Every kernel op and DMA of a decoded command stream, in stream order."""
    ops = []
    for k in cs.kicks(commands):
        if k.name in cs.KERNEL_OPS:
            ops.append(_kernel_op(len(ops), k))
        elif k.name in cs.DMA_OPS:
            ops.append(NpuOp(len(ops), "dma", dma_bytes=k.reg("DMA0_LEN", 0)))
    return tuple(ops)


class _Registers:
    """The register state at one kick (the part of :class:`models.npu.cmdstream.Kick` this module reads)."""

    def __init__(self, name: str, registers: dict[str, int]):
        self.name, self.registers = name, registers

    def reg(self, short: str, default: int) -> int:
        return self.registers.get(short, default)


_SHORT0 = {op: name[len("NPU_SET_"):] for op, name in cs.CMD0_NAMES.items() if name.startswith("NPU_SET_")}
_SHORT1 = {op: name[len("NPU_SET_"):] for op, name in cs.CMD1_NAMES.items() if name.startswith("NPU_SET_")}
_KICKS = {op: name for op, name in cs.CMD0_NAMES.items() if name in cs.KERNEL_OPS or name in cs.DMA_OPS}
_STOP = next(op for op, name in cs.CMD0_NAMES.items() if name == "NPU_OP_STOP")


def ops_from_words(words) -> tuple[NpuOp, ...]:
    """:func:`ops_from_commands` straight from the uint32 command words (one pass, no decoded command list: the
    system model's fast path). Raises ValueError on a word :func:`models.npu.cmdstream.decode_stream` would
    refuse to decode (unknown opcode, bad payload mode, a stream without STOP)."""
    w = words.tolist() if hasattr(words, "tolist") else [int(x) for x in words]
    regs: dict[str, int] = {}
    ops: list[NpuOp] = []
    i = 0
    while i < len(w):
        w0 = w[i]
        opcode, mode, param = w0 & cs.OPCODE_MASK, w0 & cs.MODE_MASK, w0 >> 16
        if w0 & cs.RESERVED_MASK or mode not in (0, cs.MODE_CMD1):
            raise ValueError(f"command word {w0:#010x} at {4 * i:#06x} is not a U55 register command")
        if mode == cs.MODE_CMD1:
            if opcode not in cs.CMD1_NAMES or i + 1 >= len(w):
                raise ValueError(f"bad cmd1 {w0:#010x} at {4 * i:#06x}")
            if opcode in _SHORT1:
                regs[_SHORT1[opcode]] = w[i + 1]
            i += 2
            continue
        i += 1
        if opcode in _SHORT0:
            regs[_SHORT0[opcode]] = param
        elif opcode in _KICKS:
            name = _KICKS[opcode]
            view = _Registers(name, dict(regs))
            if name in cs.KERNEL_OPS:
                ops.append(_kernel_op(len(ops), view))
            else:
                ops.append(NpuOp(len(ops), "dma", dma_bytes=view.reg("DMA0_LEN", 0)))
        elif opcode == _STOP:
            return tuple(ops)
        elif opcode not in cs.CMD0_NAMES:
            raise ValueError(f"unknown cmd0 opcode {opcode:#05x} at {4 * i - 4:#06x}")
    raise ValueError("command stream ends without NPU_OP_STOP")


def layer_of_ops(ops) -> list[int]:
    """Layer number of every op: consecutive kernel ops of one kind reading the same IFM form a layer (as
    :func:`models.npu.graph.group_kicks` groups them); a DMA belongs to the kernel op after it."""
    layer, prev, out, pending = -1, None, [], 0
    for op in ops:
        if not op.is_kernel:
            pending += 1
            continue
        key = (op.kind, op.ifm_key)
        if key != prev:
            layer += 1
        prev = key
        out += [layer] * (pending + 1)
        pending = 0
    return out + [max(layer, 0)] * pending


def op_features(op: NpuOp, geo: NpuGeometry) -> dict[str, float]:
    """The quantities one op's cycles are fitted on, for the MAC array ``geo``:

    ``beats`` engine cycles of the MAC block: per OFM micro-block, one beat per IFM ublock and kernel element, or
    its positions through the output unit if that is more; ``weights`` decoded weights (one per cycle through the
    decoder, padding included); ``ofm_positions`` output positions x OFM ublocks (one output-unit cycle and one
    memory word each); ``scale_bytes`` the scale records (one byte a cycle through the loader's byte serialiser);
    ``blocks`` OFM blocks (the weight stream is ordered by block); ``stream_words`` the words the loader reads
    (scale records and the weight stream; a DMA: its source); ``read_words`` / ``write_words`` the engine's IFM
    reads and OFM writes (a DMA: its destination writes).
    """
    if op.kind == "dma":
        words = _ceil(op.dma_bytes, WORD_BYTES)
        return {"beats": 0.0, "weights": 0.0, "ofm_positions": 0.0, "stream_words": float(words),
                "read_words": 0.0, "write_words": float(words), "scale_bytes": 0.0, "blocks": 1.0}
    (ih, iw, idp), (oh, ow, od), (kh, kw) = op.ifm, op.ofm, op.kernel
    oub = geo.ublock_d
    oblocks = _ceil(od, oub)
    micro = oblocks * _ceil(oh, geo.ublock_h) * _ceil(ow, geo.ublock_w)
    taps = kh * kw
    # decoded weights = the stream Vela wrote (checked against mlw_codec.decode in tb/models/system): OFM depth
    # padded to the ublock; a conv's IFM depth padded to 32 (depth first) or to 8 with the kernel elements padded
    # to 4 (part-kernel first); a depthwise's kernel elements padded to 4
    if op.kind in ("conv", "fc"):
        if op.part_kernel_first:
            per_ofm = _pad(idp, IFM_UBLOCK) * _pad(taps, 4)
        else:
            per_ofm = _pad(idp, 32) * taps
        weights = oblocks * oub * per_ofm
        per_micro = _ceil(idp, IFM_UBLOCK) * taps
    elif op.kind == "depthwise":
        weights = oblocks * oub * _pad(taps, 4)
        per_micro = taps
    else:  # identity pool: a 1x1 depthwise with a constant brick
        per_micro, weights = taps, 0
    # a micro-block's positions leave through the output unit one per cycle while the next one accumulates
    beats = micro * max(per_micro, geo.ublock_h * geo.ublock_w)
    positions = oh * ow * oblocks
    stream = _ceil(op.weight_bytes, WORD_BYTES) + _ceil(op.scale_bytes, WORD_BYTES)
    return {"beats": float(beats), "weights": float(weights), "ofm_positions": float(positions),
            "stream_words": float(stream), "read_words": float(_ceil(ih * iw * idp, WORD_BYTES)),
            "write_words": float(positions), "scale_bytes": float(op.scale_bytes),
            "blocks": float(_ceil(oh, op.ofm_block[0]) * _ceil(ow, op.ofm_block[1])
                            * _ceil(od, op.ofm_block[2]))}
