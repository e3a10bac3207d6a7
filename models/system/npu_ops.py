"""The NPU's work as the system model sees it: one :class:`NpuOp` per kick of a Vela command stream.

Read from the register state at each kick (:func:`models.npu.cmdstream.kicks`): a kernel op's IFM / OFM / kernel
shape, its weight and scale-record stream lengths, and a DMA's length. :func:`op_features` turns one op into the
quantities the cost model is fitted on, for one NPU geometry (:class:`NpuGeometry`), following the loop nest of
``rtl/npu/compute.py`` (one MAC beat per OFM micro-block, IFM ublock of 8 channels and kernel element; one decoded
weight per cycle; one 8-byte memory word per request) -- the structure, not the cycle counts, which are fitted.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from models.npu import cmdstream as cs

__all__ = ["GEOMETRIES", "NpuGeometry", "NpuOp", "OP_KINDS", "WORD_BYTES", "layer_of_ops", "op_features",
           "ops_from_commands", "ops_from_words"]

#: Bytes per external-memory request (every request moves one 64-bit word).
WORD_BYTES = 8
#: IFM channels per MAC beat (the brick's input depth).
IFM_UBLOCK = 8
#: Op kinds the cost model knows: kernel ops by what they compute, and the DMA. A "pool" is the identity form the
#: MAC datapath runs unless ``vector``; "elementwise" ops and every other pool run on the vector unit.
OP_KINDS = ("conv", "fc", "depthwise", "pool", "elementwise", "dma")
#: The vector unit (``rtl/npu/vector_unit.py``): taps its walker keeps queued (reads in flight at most) and OFM
#: elements it may have in flight (its result credits).
VECTOR_PENDING, VECTOR_RESULTS = 16, 8
_POOL_AVERAGE, _POOL_REDUCE_SUM = 1, 2
_EW_UNARY = (5, 6, 7)      # LRELU, ABS, CLZ: one operand


@dataclass(frozen=True)
class NpuGeometry:
    """The MAC array shape of one NPU configuration (the four U55 presets: :data:`GEOMETRIES`)."""

    macs: int
    ublock_h: int
    ublock_w: int
    ublock_d: int
    shram_bytes: int = 16 * 1024     # the IFM stager's line buffer


#: The U55 presets' geometry (``rtl.npu.config.PRESETS``; Vela's ``accelerator_configs``).
GEOMETRIES = {
    "u55-32": NpuGeometry(32, 1, 1, 4, 16 * 1024),
    "u55-64": NpuGeometry(64, 1, 1, 8, 16 * 1024),
    "u55-128": NpuGeometry(128, 1, 2, 8, 24 * 1024),
    "u55-256": NpuGeometry(256, 2, 2, 8, 48 * 1024),
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
    ifm_strides: tuple[int, int, int] = (0, 0, 0)  # IFM_STRIDE_Y/X/C (bytes)
    ifm_nhcwb16: bool = False
    ofm_base: int = 0
    ofm_strides: tuple[int, int, int] = (0, 0, 0)  # OFM_STRIDE_Y/X/C (bytes)
    ofm_nhcwb16: bool = False
    ofm_bytes: int = 1                    # OFM element bytes (OFM_PRECISION[2:1]: 8, 16 or 32 bit)
    dma_to_shram: bool = False            # a DMA into the SHRAM (DMA0_DST_REGION internal: a lookup table)
    vector: bool = False                  # runs on the vector unit (not the MAC datapath)
    mode: int = 0                         # the kick's pooling / elementwise mode
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)   # IFM_PAD_TOP/LEFT/BOTTOM/RIGHT
    ifm2_scalar: bool = False             # elementwise: the second operand is IFM2_SCALAR (no reads)
    cmd_words: int = 0                    # command words the controller parses after the previous kick, this one's too
    kernel_wait: int = -1                 # n of an NPU_OP_KERNEL_WAIT among those words (-1: none): the controller
                                          # parses on once at most n kernel ops are outstanding

    @property
    def is_kernel(self) -> bool:
        return self.kind != "dma"


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _pad(a: int, b: int) -> int:
    return _ceil(a, b) * b


def _is_identity_pool(k, mode: int) -> bool:
    """The POOL form the MAC datapath runs (``rtl/npu/vector_unit.py`` ``is_identity_pool``): AVERAGE 1x1, stride 1,
    no padding, int8, global scale 1 / shift 0, round TFL, no activation; every other POOL goes to the vector unit."""
    pads = (k.reg(f"IFM_PAD_{side}", 0) for side in ("TOP", "LEFT", "BOTTOM", "RIGHT"))
    ofm_prec = k.reg("OFM_PRECISION", 0)
    return (mode == _POOL_AVERAGE and k.reg("KERNEL_HEIGHT_M1", 0) == 0 and k.reg("KERNEL_WIDTH_M1", 0) == 0
            and k.reg("KERNEL_STRIDE", 0) & 0x243 == 0 and not any(pads) and (ofm_prec >> 8) & 1
            and k.reg("OFM_SCALE", 0) == 1 and k.reg("OFM_SCALE_SHIFT", 0) == 0 and (ofm_prec >> 14) & 3 == 0
            and k.reg("IFM_PRECISION", 0) & 15 == 1 and ofm_prec & 7 == 1 and k.reg("ACTIVATION", 0) & 0xFFF == 0)


def _kernel_op(index: int, k) -> NpuOp:
    ifm = (k.reg("IFM_HEIGHT0_M1", 0) + 1, k.reg("IFM_WIDTH0_M1", 0) + 1, k.reg("IFM_DEPTH_M1", 0) + 1)
    ofm = (k.reg("OFM_HEIGHT_M1", 0) + 1, k.reg("OFM_WIDTH_M1", 0) + 1, k.reg("OFM_DEPTH_M1", 0) + 1)
    st = cs.kernel_stride(k.reg("KERNEL_STRIDE", 0))
    # the kernel's taps: with dilation 2 KERNEL_*_M1 is the dilated extent - 1 (rtl/npu/kernel_op.py)
    kernel = ((k.reg("KERNEL_HEIGHT_M1", 0) >> (st["dilation_y"] - 1)) + 1,
              (k.reg("KERNEL_WIDTH_M1", 0) >> (st["dilation_x"] - 1)) + 1)
    if k.name == "NPU_OP_DEPTHWISE":
        kind = "depthwise"
    elif k.name == "NPU_OP_POOL":
        kind = "pool"
    elif k.name == "NPU_OP_CONV":
        kind = "fc" if ifm[:2] == (1, 1) and ofm[:2] == (1, 1) and kernel == (1, 1) else "conv"
    else:
        kind = k.name.removeprefix("NPU_OP_").lower()
    mode = k.param
    vector = kind == "elementwise" or (kind == "pool" and not _is_identity_pool(k, mode))
    no_weights = kind in ("pool", "elementwise")
    return NpuOp(index, kind, ifm, ofm, kernel, (st["stride_y"], st["stride_x"]),
                 weight_bytes=0 if no_weights else k.reg("WEIGHT_LENGTH", 0),
                 scale_bytes=0 if no_weights else k.reg("SCALE_LENGTH", 0),
                 ifm_key=(k.reg("IFM_REGION", 0), k.reg("IFM_BASE0", 0)),
                 part_kernel_first=st["weight_order"] == "PART_KERNEL_FIRST",
                 ofm_block=(k.reg("OFM_BLK_HEIGHT_M1", 0) + 1, k.reg("OFM_BLK_WIDTH_M1", 0) + 1,
                            k.reg("OFM_BLK_DEPTH_M1", 0) + 1),
                 ifm_strides=(k.reg("IFM_STRIDE_Y", 0), k.reg("IFM_STRIDE_X", 0), k.reg("IFM_STRIDE_C", 0)),
                 ifm_nhcwb16=(k.reg("IFM_PRECISION", 0) >> 6) & 3 == 1, ofm_base=k.reg("OFM_BASE0", 0),
                 ofm_strides=(k.reg("OFM_STRIDE_Y", 0), k.reg("OFM_STRIDE_X", 0), k.reg("OFM_STRIDE_C", 0)),
                 ofm_nhcwb16=(k.reg("OFM_PRECISION", 0) >> 6) & 3 == 1,
                 ofm_bytes=1 << ((k.reg("OFM_PRECISION", 0) >> 1) & 3), vector=vector, mode=mode,
                 pads=tuple(k.reg(f"IFM_PAD_{side}", 0) for side in ("TOP", "LEFT", "BOTTOM", "RIGHT")),
                 ifm2_scalar=bool((k.reg("IFM2_BROADCAST", 0) >> 7) & 1))


def _dma_op(index: int, k) -> NpuOp:
    # DMA0_DST_REGION bit 8 (``internal``): the destination is the SHRAM, so only the reads use external memory
    internal = bool((k.reg("DMA0_DST_REGION", 0) >> 8) & 1)
    return NpuOp(index, "dma", dma_bytes=k.reg("DMA0_LEN", 0), dma_to_shram=internal)


def ops_from_commands(commands) -> tuple[NpuOp, ...]:
    """Every kernel op and DMA of a decoded command stream, in stream order."""
    ops = []
    after = 0     # word offset after the previous kick
    waits = {c.offset: c.param for c in commands if c.name == "NPU_OP_KERNEL_WAIT"}
    for k in cs.kicks(commands):
        words = k.command.offset // 4 + 1 - after
        wait = max((n for at, n in waits.items() if after <= at // 4 < after + words), default=-1)
        if k.name in cs.KERNEL_OPS:
            shift = {"OFM_SCALE_SHIFT": k.params["OFM_SCALE"]} if "OFM_SCALE" in k.params else {}
            op = _kernel_op(len(ops), _Registers(k.name, k.registers | shift, k.command.param))
        elif k.name in cs.DMA_OPS:
            op = _dma_op(len(ops), k)
        else:
            continue
        ops.append(replace(op, cmd_words=words, kernel_wait=wait))
        after = k.command.offset // 4 + 1
    return tuple(ops)


class _Registers:
    """The register state at one kick (the part of :class:`models.npu.cmdstream.Kick` this module reads)."""

    def __init__(self, name: str, registers: dict[str, int], param: int = 0):
        self.name, self.registers, self.param = name, registers, param

    def reg(self, short: str, default: int) -> int:
        return self.registers.get(short, default)


_SHORT0 = {op: name[len("NPU_SET_"):] for op, name in cs.CMD0_NAMES.items() if name.startswith("NPU_SET_")}
_SHORT1 = {op: name[len("NPU_SET_"):] for op, name in cs.CMD1_NAMES.items() if name.startswith("NPU_SET_")}
_KICKS = {op: name for op, name in cs.CMD0_NAMES.items() if name in cs.KERNEL_OPS or name in cs.DMA_OPS}
_STOP = next(op for op, name in cs.CMD0_NAMES.items() if name == "NPU_OP_STOP")
_KERNEL_WAIT = next(op for op, name in cs.CMD0_NAMES.items() if name == "NPU_OP_KERNEL_WAIT")


def ops_from_words(words) -> tuple[NpuOp, ...]:
    """:func:`ops_from_commands` straight from the uint32 command words (one pass, no decoded command list: the
    system model's fast path). Raises ValueError on a word :func:`models.npu.cmdstream.decode_stream` would
    refuse to decode (unknown opcode, bad payload mode, a stream without STOP)."""
    w = words.tolist() if hasattr(words, "tolist") else [int(x) for x in words]
    regs: dict[str, int] = {}
    ops: list[NpuOp] = []
    i = after = 0
    wait = -1
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
                if _SHORT1[opcode] == "OFM_SCALE":
                    regs["OFM_SCALE_SHIFT"] = param
            i += 2
            continue
        i += 1
        if opcode in _SHORT0:
            regs[_SHORT0[opcode]] = param
        elif opcode in _KICKS:
            name = _KICKS[opcode]
            view = _Registers(name, dict(regs), param)
            if name in cs.KERNEL_OPS:
                op = _kernel_op(len(ops), view)
            else:
                op = _dma_op(len(ops), view)
            ops.append(replace(op, cmd_words=i - after, kernel_wait=wait))
            after, wait = i, -1
        elif opcode == _KERNEL_WAIT:
            wait = max(wait, param)
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


def _residues(h: int, w: int, sy: int, sx: int) -> list[int]:
    """How many pixels ``(y, x)`` of an ``h x w`` map have ``(y * sy + x * sx) mod 8`` = 0..7."""
    def along(n, stride):
        out = [0] * WORD_BYTES
        for j in range(min(n, WORD_BYTES)):      # y = j mod 8: (n - j + 7) // 8 of them, all with one residue
            out[(j * stride) % WORD_BYTES] += (n - j + WORD_BYTES - 1) // WORD_BYTES
        return out
    hy, hx = along(h, sy), along(w, sx)
    out = [0] * WORD_BYTES
    for a, na in enumerate(hy):
        if na:
            for b, nb in enumerate(hx):
                out[(a + b) % WORD_BYTES] += na * nb
    return out


def _offset(base: int, channel: int, stride_c: int, nhcwb16: bool, elem: int = 1) -> int:
    """Byte offset mod 8 of ``channel`` at pixel (0, 0) for ``elem``-byte elements (SPEC.md section 4; an NHCWB16
    pixel's x stride is 16 elements)."""
    if nhcwb16:
        return (base + (channel >> 4) * stride_c + (channel & 15) * elem) % WORD_BYTES
    return (base + channel * elem) % WORD_BYTES


def _conv_passes(op: NpuOp, geo: NpuGeometry) -> int:
    """How many times the IFM stager sweeps a conv's whole IFM: once if it fits the line buffer, else once per OFM
    ublock (:func:`ifm_reads`)."""
    (ih, iw, idp), od = op.ifm, op.ofm[2]
    return 1 if ih * iw * _ceil(idp, IFM_UBLOCK) * WORD_BYTES <= geo.shram_bytes else _ceil(od, geo.ublock_d)


def ifm_reads(op: NpuOp, geo: NpuGeometry) -> int:
    """External reads of the IFM stager (``rtl/npu/ifm_stager.py``) for ``op``: one per pixel and line-buffer word
    (8 channels; a depthwise / pool: one per pixel and OFM ublock), two when the 8 bytes are not word aligned; the
    IFM is swept once if it fits the line buffer (a conv), else once per OFM ublock (a depthwise or pool: the next
    ``OUB`` channels each time)."""
    (ih, iw, idp), od = op.ifm, op.ofm[2]
    sy, sx, sc = op.ifm_strides
    n_oub = _ceil(od, geo.ublock_d)
    if op.kind in ("conv", "fc"):
        passes, channels = _conv_passes(op, geo), [u * IFM_UBLOCK for u in range(_ceil(idp, IFM_UBLOCK))]
    else:
        passes, channels = 1, [p * geo.ublock_d for p in range(n_oub)]
    hist = _residues(ih, iw, sy, 0 if op.ifm_nhcwb16 else sx)
    aligned = sum(hist[-_offset(op.ifm_key[1], c, sc, op.ifm_nhcwb16) % WORD_BYTES] for c in channels)
    return passes * (len(channels) * ih * iw * 2 - aligned)


def ofm_writes(op: NpuOp, geo: NpuGeometry) -> int:
    """External writes of the OFM writer (``rtl/npu/ofm_writer.py``): per position and OFM ublock, one per 8-byte
    word its ``OUB`` elements (the channels left, in the last ublock) touch: int8 one or two; a 32-bit OFM (MEAN's
    depthwise) 4 bytes an element, up to five words, written one a cycle."""
    oh, ow, od = op.ofm
    sy, sx, sc = op.ofm_strides
    eb = op.ofm_bytes
    hist = _residues(oh, ow, sy, 0 if op.ofm_nhcwb16 else sx)
    writes = 0
    for c0 in range(0, od, geo.ublock_d):
        off, nbytes = _offset(op.ofm_base, c0, sc, op.ofm_nhcwb16, eb), min(geo.ublock_d, od - c0) * eb
        writes += sum(n * _ceil((r + off) % WORD_BYTES + nbytes, WORD_BYTES) for r, n in enumerate(hist))
    return writes


def _tail_share(op: NpuOp, micro: int, oublocks: int) -> float:
    """The share of an op's MAC work that can only run once its last weight is decoded. The weight stream has one
    part per OFM depth block (``OFM_BLK_DEPTH``), reused by every micro-block of that depth; inside a part the
    bricks come per IFM block, then per OFM ublock (``rtl/npu/compute.py``). With one IFM block, an OFM ublock's
    micro-blocks need only its own bricks: what is left is the last ublock's micro-blocks but its first (which
    consumes the bricks as they come); with several, every ublock of the last depth block waits for its bricks
    of the last IFM block, near the end of the part: the last depth block's micro-blocks but the first."""
    if op.kind == "pool":
        return 0.0
    if op.kind == "depthwise":
        ifm_blocks = 1
    else:
        ifm_blocks = _ceil(op.ifm[2], 16 if op.part_kernel_first else 32)
    share = 1.0 / oublocks if ifm_blocks == 1 else 1.0 / _ceil(op.ofm[2], op.ofm_block[2])
    return max(share - 1.0 / max(micro, 1), 0.0)


def _valid_taps(n_out: int, k: int, stride: int, pad: int, n_in: int) -> int:
    """Kernel taps inside the IFM, summed over the ``n_out`` output positions along one axis."""
    return sum(sum(0 <= o * stride + t - pad < n_in for t in range(k)) for o in range(n_out))


def vector_features(op: NpuOp) -> dict[str, float]:
    """What the vector unit (``rtl/npu/vector_unit.py``) does for ``op``: its walker steps one tap a cycle (a pool:
    every kernel tap of every OFM element, padding taps without a read; REDUCE_SUM across depth: every IFM channel;
    elementwise: one tap per operand, the IFM2 scalar without a read) and reads one memory word per valid tap; one
    strobed word write per OFM element, which goes before the walker's next read; at most ``VECTOR_PENDING`` reads
    and ``VECTOR_RESULTS`` elements in flight."""
    oh, ow, oc = op.ofm
    elements = oh * ow * oc
    if op.kind == "elementwise":
        taps = 1 if op.mode in _EW_UNARY else 2
        reads = elements * (1 if taps == 1 or op.ifm2_scalar else 2)
    else:
        (kh, kw), (sy, sx) = op.kernel, op.stride
        depth = op.ifm[2] if op.mode == _POOL_REDUCE_SUM and oc == 1 and op.ifm[2] > 1 else 1
        taps = kh * kw * depth
        pt, pl = op.pads[0], op.pads[1]
        reads = (_valid_taps(oh, kh, sy, pt, op.ifm[0]) * _valid_taps(ow, kw, sx, pl, op.ifm[1]) * oc * depth)
    return {"vector_steps": float(elements * taps), "read_words": float(reads), "write_words": float(elements),
            "vector_inflight": float(min(VECTOR_PENDING, VECTOR_RESULTS * taps))}


def op_features(op: NpuOp, geo: NpuGeometry) -> dict[str, float]:
    """The quantities one op's cycles are fitted on, for the MAC array ``geo``:

    ``beats`` engine cycles of the MAC block: per OFM micro-block, one beat per IFM ublock and kernel element, or
    its positions through the output unit if that is more; ``weights`` decoded weights (padding included; the wide
    decoder's rate per weight is fitted: :mod:`models.system.npu_cost`); ``ofm_positions`` output positions x OFM
    ublocks (one output-unit cycle and one memory word each); ``scale_bytes`` the scale records (one byte a cycle
    through the loader's byte serialiser); ``blocks`` OFM blocks; ``tail`` the share of the engine's work left when
    the last weight is decoded (:func:`_tail_share`); ``stream_words`` the words the loader reads (scale records and
    the weight stream; a DMA: its source); ``read_words`` / ``write_words`` the engine's IFM reads and OFM writes
    (:func:`ifm_reads`, :func:`ofm_writes`; a DMA: its writes to external memory, none into the SHRAM);
    ``fill_words`` the IFM reads before the first MAC beat can go (the first ``KERNEL_HEIGHT`` rows of the first
    sweep: the stager reads row by row; ``rtl/npu/compute.py`` ``_connect_stager``); ``resident_after`` the share
    of the MAC work that can only start once the whole IFM is staged (a resident IFM is staged during the first OFM
    ublock's sweep only).
    """
    if op.vector:
        return {"beats": 0.0, "weights": 0.0, "ofm_positions": 0.0, "stream_words": 0.0, "scale_bytes": 0.0,
                "blocks": 1.0, "tail": 0.0, "fill_words": 0.0, "resident_after": 0.0} | vector_features(op)
    if op.kind == "dma":
        words = _ceil(op.dma_bytes, WORD_BYTES)
        return {"beats": 0.0, "weights": 0.0, "ofm_positions": 0.0, "stream_words": float(words),
                "read_words": 0.0, "write_words": 0.0 if op.dma_to_shram else float(words), "scale_bytes": 0.0,
                "blocks": 1.0,
                "tail": 0.0, "fill_words": 0.0, "resident_after": 0.0}
    idp, (oh, ow, od), (kh, kw) = op.ifm[2], op.ofm, op.kernel
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
    reads = ifm_reads(op, geo)
    # the stager sweeps a conv's IFM all channels at once, a depthwise's / pool's one OFM ublock per sweep
    sweeps = _conv_passes(op, geo) if op.kind in ("conv", "fc") else oblocks
    fill = reads / sweeps * min(kh, op.ifm[0]) / max(op.ifm[0], 1)
    # a resident IFM (a conv's that fits the line buffer) is staged once, during the first OFM ublock's sweep of the
    # OFM; the other ublocks' sweeps (``rtl/npu/issue.py``: depth block, ublock, micro-blocks) read it as staged
    resident_after = 1.0 - 1.0 / oblocks if op.kind in ("conv", "fc") and sweeps == 1 else 0.0
    return {"beats": float(beats), "weights": float(weights), "ofm_positions": float(positions),
            "stream_words": float(stream), "read_words": float(reads), "fill_words": fill,
            "resident_after": resident_after,
            "write_words": float(ofm_writes(op, geo)), "scale_bytes": float(op.scale_bytes),
            "blocks": float(_ceil(oh, op.ofm_block[0]) * _ceil(ow, op.ofm_block[1])
                            * _ceil(od, op.ofm_block[2])),
            "tail": _tail_share(op, micro, oblocks)}
