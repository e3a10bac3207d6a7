"""Decoder and pretty-printer for Ethos-U55 register command streams (tests and debugging only).

The NPU hardware decodes the stream on its own; this module exists so that tests can check what Vela emitted and so
that an engineer can read a stream. Sources for every number used here:

* Opcode values: the ``cmd0`` / ``cmd1`` enums of Vela's register definitions,
  ``ethosu/vela/ethos_u55_regs/ethos_u55_regs.py`` (``ARCH_VER = '1.0.6'``), imported directly below so the decoder can
  never drift from the compiler it decodes.
* Word format: the per-command ``npu_op_*_t`` / ``npu_set_*_t`` structures of the same file (cmd0: ``cmd_code`` [9:0],
  ``must_be_zero0`` [15:10], ``param`` [31:16]; cmd1: ``cmd_code`` [9:0], ``must_be_zero`` [13:10], ``payload_size``
  [15:14] = 1, ``param`` [31:16], then one 32-bit ``data`` word) and ``CmdMode`` in
  ``ethosu/vela/register_command_stream_generator.py`` (0x4000 = one 32-bit payload word, mask 0xC000, opcode mask
  0x03FF).
* Field layouts inside ``param``: the structures named above (``npu_set_ifm_precision_t``, ``npu_set_ofm_precision_t``,
  ``npu_set_activation_t``, ``npu_set_dma0_src_region_t``, ``npu_set_ofm_scale_t``, ...); KERNEL_STRIDE sub-fields,
  which the 1.0.6 Python header leaves as a plain ``param``, from Arm's driver header ``ethosu55_interface.h``
  (arch 1.1.0) and regor's own ``--verbose-register-command-stream`` listing (``stride_x_lsb``, ``stride_y_lsb``,
  ``weight_order``, ``dilation_x``, ``dilation_y``, ``decomposition``, ``stride_x_msb``, ``stride_y_msb``).
* Driver payload ("COP1") header: ``ethosu/vela/driver_actions.py`` (``DACommands``, ``make_da_tag``,
  ``emit_cmd_stream_header``) and ``config_r`` / ``id_r`` in ``ethos_u55_regs.py``.

Usage: ``python -m models.npu.cmdstream model_vela.npz`` prints the decoded stream.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from ethosu.vela.ethos_u55_regs.ethos_u55_regs import (
    acc_format,
    activation,
    cmd0,
    cmd1,
    data_format,
    elementwise_mode,
    ifm_precision,
    ofm_precision,
    pooling_mode,
    resampling_mode,
    rounding,
)

# Word-0 layout (CmdMode in register_command_stream_generator.py).
OPCODE_MASK = 0x03FF
RESERVED_MASK = 0x3C00  # bits [13:10], must be zero in both formats
MODE_MASK = 0xC000      # bits [15:14]: 0 = cmd0 (no payload), 1 = cmd1 (one 32-bit payload word)
MODE_CMD1 = 0x4000

CMD0_NAMES: dict[int, str] = {e.value: e.name for e in cmd0}
CMD1_NAMES: dict[int, str] = {e.value: e.name for e in cmd1}

# Kicks: the cmd0 operations that start work on a hardware unit.
KERNEL_OPS = frozenset({"NPU_OP_CONV", "NPU_OP_DEPTHWISE", "NPU_OP_POOL", "NPU_OP_ELEMENTWISE"})
DMA_OPS = frozenset({"NPU_OP_DMA_START"})

# Driver actions (driver_actions.py, DACommands).
DA_CONFIG = 0x01
DA_CMDSTREAM = 0x02
DA_READ_APB = 0x03
DA_DUMP_SHRAM = 0x04
DA_NOP = 0x05
COP1_FOURCC = 0x31504F43  # "COP1" little-endian


class CommandStreamError(ValueError):
    """The words are not a well-formed Ethos-U55 command stream (unknown opcode, reserved bits, truncation, no STOP)."""


# ---------------------------------------------------------------------------------------------------------------
# COP1 driver payload


@dataclass(frozen=True)
class Cop1Header:
    """The driver-action header in front of the register commands in Vela's ``cmd_data``."""

    config_word: int        # image of the CONFIG register the stream was compiled for
    id_word: int            # image of the ID register (arch version)
    release: int            # OPTIMIZER_CONFIG param [3:0]
    patch: int              # OPTIMIZER_CONFIG param [15:4]
    stream_offset: int      # byte offset of the first register command inside cmd_data (QBASE = base + this)
    stream_words: int       # number of 32-bit command words (QSIZE = 4 * this)

    @property
    def macs_per_cc(self) -> int:
        """MACs per cycle: 2 ** CONFIG.macs_per_cc (32/64/128/256 for U55-32..256)."""
        return 1 << (self.config_word & 0xF)

    @property
    def cmd_stream_version(self) -> int:
        return (self.config_word >> 4) & 0xF

    @property
    def shram_kib(self) -> int:
        return (self.config_word >> 8) & 0xFF

    @property
    def product(self) -> int:
        """0 = Ethos-U55, 1 = Ethos-U65."""
        return (self.config_word >> 28) & 0xF

    @property
    def arch_version(self) -> tuple[int, int, int]:
        """(major, minor, patch) from ID bits [31:28], [27:20], [19:16]."""
        w = self.id_word
        return (w >> 28) & 0xF, (w >> 20) & 0xFF, (w >> 16) & 0xF


def parse_driver_payload(cmd_data: bytes) -> tuple[Cop1Header, np.ndarray]:
    """Split Vela's ``cmd_data`` (COP1 payload) into its header and the register command words (uint32)."""
    if len(cmd_data) % 4 or len(cmd_data) < 8:
        raise CommandStreamError(f"cmd_data length {len(cmd_data)} is not a positive multiple of 4")
    words = np.frombuffer(cmd_data, dtype="<u4")
    if int(words[0]) != COP1_FOURCC:
        raise CommandStreamError(f"cmd_data does not start with 'COP1' (word 0 = {int(words[0]):#010x})")
    config_word = id_word = None
    release = patch = 0
    i = 1
    while i < len(words):
        tag = int(words[i])
        action, reserved, param = tag & 0xFF, (tag >> 8) & 0xFF, tag >> 16
        if action == DA_CONFIG:
            if i + 2 >= len(words):
                raise CommandStreamError("truncated OPTIMIZER_CONFIG driver action")
            release, patch = param & 0xF, param >> 4
            config_word, id_word = int(words[i + 1]), int(words[i + 2])
            i += 3
        elif action == DA_NOP:
            i += 1
        elif action == DA_CMDSTREAM:
            n = param | (reserved << 16)
            start = i + 1
            if start + n > len(words):
                raise CommandStreamError(f"COMMAND_STREAM says {n} words but only {len(words) - start} follow")
            if config_word is None:
                raise CommandStreamError("COMMAND_STREAM before OPTIMIZER_CONFIG")
            hdr = Cop1Header(config_word, id_word, release, patch, 4 * start, n)
            return hdr, words[start:start + n].astype(np.uint32)
        elif action in (DA_READ_APB, DA_DUMP_SHRAM):
            i += 1  # single-word requests to the driver (emit_reg_read / emit_dump_shram)
        else:
            raise CommandStreamError(f"unknown driver action {action:#x} at word {i}")
    raise CommandStreamError("no COMMAND_STREAM driver action in cmd_data")


# ---------------------------------------------------------------------------------------------------------------
# Commands


def signed16(v: int) -> int:
    """A 16-bit param as a signed value (zero points, clip bounds)."""
    return v - 0x10000 if v & 0x8000 else v


def kernel_stride(p: int) -> dict[str, object]:
    """Sub-fields of NPU_SET_KERNEL_STRIDE (ethosu55_interface.h, arch 1.1.0; regor listing field names)."""
    return {"stride_x": 1 + ((p & 1) | (((p >> 6) & 1) << 1)),
            "stride_y": 1 + (((p >> 1) & 1) | (((p >> 9) & 1) << 1)),
            "weight_order": "PART_KERNEL_FIRST" if p & 4 else "DEPTH_FIRST",
            "dilation_x": 1 + ((p >> 3) & 1), "dilation_y": 1 + ((p >> 4) & 1),
            "decomposition": "D4X4" if p & 0x20 else "D8X8"}


def _enum_name(enum, value: int) -> str:
    try:
        return enum(value).name
    except ValueError:
        return f"?{value}"


def _activation_name(v: int) -> str:
    if 16 <= v <= 23:
        return f"TABLE_{v - 16}"
    return _enum_name(activation, v)


_CLIP_RANGE = {0: "OFM_PRECISION", 2: "FORCE_UINT8", 3: "FORCE_INT8", 5: "FORCE_INT16"}  # clip_range enum


def _fields_cmd0(name: str, p: int) -> dict[str, object]:
    """Decoded sub-fields of a cmd0 param (layouts: npu_*_t structures in ethos_u55_regs.py)."""
    if name in ("NPU_OP_STOP", "NPU_OP_IRQ"):
        return {"mask": p}
    if name == "NPU_OP_POOL":
        return {"mode": _enum_name(pooling_mode, p)}
    if name == "NPU_OP_ELEMENTWISE":
        return {"mode": _enum_name(elementwise_mode, p)}
    if name == "NPU_OP_DMA_START":
        return {"channel_mode": p}
    if name == "NPU_OP_DMA_WAIT":
        return {"k": p & 0xF}
    if name == "NPU_OP_KERNEL_WAIT":
        return {"n": p & 0x3}
    if name in ("NPU_OP_CONV", "NPU_OP_DEPTHWISE"):
        return {}
    if name.endswith("_M1"):
        return {"size": p + 1}
    if name.startswith("NPU_SET_IFM_PAD_"):
        return {"pad": p}
    if name in ("NPU_SET_IFM_PRECISION", "NPU_SET_IFM2_PRECISION"):
        f: dict[str, object] = {"precision": _enum_name(ifm_precision, p & 0xF),
                                "format": _enum_name(data_format, (p >> 6) & 0x3)}
        if name == "NPU_SET_IFM_PRECISION":
            f["scale_mode"] = (p >> 8) & 0x3
            f["round_mode"] = _enum_name(rounding, (p >> 14) & 0x3)
        return f
    if name == "NPU_SET_OFM_PRECISION":
        return {"precision": _enum_name(ofm_precision, p & 0x7), "format": _enum_name(data_format, (p >> 6) & 0x3),
                "scale_mode": "GLOBAL" if p & 0x100 else "PER_CHANNEL",
                "round_mode": _enum_name(rounding, (p >> 14) & 0x3)}
    if name == "NPU_SET_IFM_UPSCALE":
        return {"mode": _enum_name(resampling_mode, p & 0x3)}
    if name in ("NPU_SET_IFM_ZERO_POINT", "NPU_SET_OFM_ZERO_POINT", "NPU_SET_IFM2_ZERO_POINT"):
        return {"zero_point": signed16(p)}
    if name in ("NPU_SET_ACTIVATION_MIN", "NPU_SET_ACTIVATION_MAX"):
        return {"clip": signed16(p)}
    if name in ("NPU_SET_IFM_REGION", "NPU_SET_OFM_REGION", "NPU_SET_WEIGHT_REGION", "NPU_SET_SCALE_REGION",
                "NPU_SET_IFM2_REGION"):
        return {"region": p & 0x7}
    if name in ("NPU_SET_DMA0_SRC_REGION", "NPU_SET_DMA0_DST_REGION"):
        return {"region": p & 0xFF, "internal": (p >> 8) & 1, "stride_mode": (p >> 9) & 0x3}
    if name == "NPU_SET_KERNEL_STRIDE":
        return kernel_stride(p)
    if name == "NPU_SET_ACC_FORMAT":
        return {"acc_format": _enum_name(acc_format, p & 0x3)}
    if name == "NPU_SET_ACTIVATION":
        return {"function": _activation_name(p & 0xFFF), "clip_range": _CLIP_RANGE.get(p >> 12, f"?{p >> 12}")}
    if name in ("NPU_SET_IFM_IB_END", "NPU_SET_AB_START", "NPU_SET_IFM2_IB_START"):
        return {"kib": p & 0x3F}
    if name == "NPU_SET_BLOCKDEP":
        return {"blockdep": p & 0x3}
    if name == "NPU_SET_IFM2_BROADCAST":
        return {"h": p & 1, "w": (p >> 1) & 1, "c": (p >> 2) & 1, "operand_order": (p >> 6) & 1,
                "scalar": (p >> 7) & 1}
    if name == "NPU_SET_IFM2_SCALAR":
        return {"scalar": signed16(p)}
    return {"value": p}


def _fields_cmd1(name: str, p: int, d: int) -> dict[str, object]:
    if name in ("NPU_SET_OFM_SCALE", "NPU_SET_OPA_SCALE"):
        return {"scale": d, "shift": p & 0x3F}
    if name == "NPU_SET_OPB_SCALE":
        return {"scale": d & 0xFFFF}
    if "LENGTH" in name or name == "NPU_SET_DMA0_LEN":
        return {"length": d}
    if "STRIDE" in name or "SKIP" in name:
        return {"stride": d}
    return {"addr": d | (p << 32)}


@dataclass(frozen=True)
class Command:
    """One decoded command. ``offset`` is the byte offset from QBASE (the first register command)."""

    offset: int
    opcode: int
    name: str
    param: int                 # 16-bit word-0 parameter
    data: int | None = None    # 32-bit payload word (cmd1 only)

    @property
    def is_cmd1(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        """Size in bytes (4 for cmd0, 8 for cmd1)."""
        return 8 if self.is_cmd1 else 4

    @property
    def is_kick(self) -> bool:
        return self.name in KERNEL_OPS or self.name in DMA_OPS

    @property
    def value(self) -> int:
        """The register value the command writes: ``data`` for cmd1, ``param`` for cmd0."""
        return self.param if self.data is None else self.data

    def fields(self) -> dict[str, object]:
        if self.data is None:
            return _fields_cmd0(self.name, self.param)
        return _fields_cmd1(self.name, self.param, self.data)

    def words(self) -> tuple[int, ...]:
        w0 = self.opcode | (self.param << 16) | (MODE_CMD1 if self.is_cmd1 else 0)
        return (w0,) if self.data is None else (w0, self.data)

    def __str__(self) -> str:
        return format_command(self)


def decode_stream(words: Iterable[int] | np.ndarray | bytes, *, allow_trailing: bool = False) -> list[Command]:
    """Walk the register command words (little-endian uint32) to the final NPU_OP_STOP.

    Raises :class:`CommandStreamError` on an unknown opcode, non-zero reserved bits, a payload mode other than 0/1,
    a cmd1 without its payload word, a stream that ends without STOP, or (unless ``allow_trailing``) words after STOP.
    """
    if isinstance(words, bytes | bytearray):
        if len(words) % 4:
            raise CommandStreamError("command stream byte length is not a multiple of 4")
        words = np.frombuffer(words, dtype="<u4")
    w = [int(x) for x in words]
    out: list[Command] = []
    i = 0
    while i < len(w):
        w0 = w[i]
        off = 4 * i
        opcode, mode, param = w0 & OPCODE_MASK, w0 & MODE_MASK, w0 >> 16
        if w0 & RESERVED_MASK:
            raise CommandStreamError(f"{off:#06x}: word {w0:#010x} has non-zero reserved bits [13:10]")
        if mode == 0:
            name = CMD0_NAMES.get(opcode)
            if name is None:
                raise CommandStreamError(f"{off:#06x}: unknown cmd0 opcode {opcode:#05x} (word {w0:#010x})")
            out.append(Command(off, opcode, name, param))
            i += 1
            if name == "NPU_OP_STOP":
                if i != len(w) and not allow_trailing:
                    raise CommandStreamError(f"{len(w) - i} word(s) after NPU_OP_STOP at {off:#06x}")
                return out
        elif mode == MODE_CMD1:
            name = CMD1_NAMES.get(opcode)
            if name is None:
                raise CommandStreamError(f"{off:#06x}: unknown cmd1 opcode {opcode:#05x} (word {w0:#010x})")
            if i + 1 >= len(w):
                raise CommandStreamError(f"{off:#06x}: {name} is missing its 32-bit payload word")
            out.append(Command(off, opcode, name, param, w[i + 1]))
            i += 2
        else:
            raise CommandStreamError(f"{off:#06x}: payload mode {mode >> 14} is not emitted for U55 (word {w0:#010x})")
    raise CommandStreamError("command stream ends without NPU_OP_STOP")


# ---------------------------------------------------------------------------------------------------------------
# Register state at each kick


@dataclass(frozen=True, eq=False)
class Kick:
    """A kick (compute op or DMA start) with the register state it sees (registers are sticky; see SPEC.md)."""

    command: Command
    index: int                                   # position in the decoded command list
    registers: dict[str, int] = field(repr=False)  # short register name -> value (cmd1: data)
    params: dict[str, int] = field(repr=False)     # short register name -> word-0 param (cmd1 only; e.g. scale shift)

    @property
    def name(self) -> str:
        return self.command.name

    def reg(self, short: str, default: int | None = None) -> int:
        """Register value by short name, e.g. ``reg('IFM_REGION')``; ``default`` if never written."""
        if short in self.registers:
            return self.registers[short]
        if default is None:
            raise KeyError(f"{short} was never written before {self.name} at {self.command.offset:#06x}")
        return default


def block_weight_bytes(kick: Kick, oub: int) -> int:
    """Decoded weight bytes of a CONV kick's first OFM block on a config with OFM ublock depth ``oub``
    (npu-weights.md section 3.2: 8x8 sub-kernels, 4 taps along a dilated axis, each one's elements rounded up to 4
    for part-kernel-first; depth-first IFM blocks always 32 deep)."""
    o, ob = kick.reg("OFM_DEPTH_M1") + 1, kick.reg("OFM_BLK_DEPTH_M1") + 1
    i = kick.reg("IFM_DEPTH_M1") + 1
    ks = kick.reg("KERNEL_STRIDE")
    dy, dx = ks >> 4 & 1, ks >> 3 & 1      # dilation 2: KERNEL_*_M1 is the dilated extent - 1
    kh, kw = (kick.reg("KERNEL_HEIGHT_M1") >> dy) + 1, (kick.reg("KERNEL_WIDTH_M1") >> dx) + 1
    pk = bool(ks & 4)
    elements = 0
    for sy in range(0, kh, 8 >> dy):
        for sx in range(0, kw, 8 >> dx):
            n = min(8 >> dy, kh - sy) * min(8 >> dx, kw - sx)
            elements += -(-n // 4) * 4 if pk else n
    depth = -(-i // 8) * 8 if pk else -(-i // 32) * 32
    return -(-min(o, ob) // oub) * oub * elements * depth


def kicks(commands: Iterable[Command]) -> list[Kick]:
    """Replay the register writes and return every kick with a snapshot of the state it uses."""
    regs: dict[str, int] = {}
    params: dict[str, int] = {}
    out = []
    for idx, c in enumerate(commands):
        if c.name.startswith("NPU_SET_"):
            short = c.name[len("NPU_SET_"):]
            regs[short] = c.value
            if c.is_cmd1:
                params[short] = c.param
        elif c.is_kick:
            out.append(Kick(c, idx, dict(regs), dict(params)))
    return out


# ---------------------------------------------------------------------------------------------------------------
# Pretty-printing


def _fmt_fields(f: dict[str, object]) -> str:
    parts = []
    for k, v in f.items():
        if k in ("addr", "length", "stride") and isinstance(v, int):
            parts.append(f"{k}={v:#x}" if k == "addr" else f"{k}={v}")
        else:
            parts.append(f"{k}={v}")
    return " ".join(parts)


def format_command(c: Command) -> str:
    words = " ".join(f"{x:08x}" for x in c.words())
    kind = "cmd1" if c.is_cmd1 else "cmd0"
    name = c.name.removeprefix("NPU_SET_") if c.name.startswith("NPU_SET_") else c.name
    return f"{c.offset:04x}  {words:<17} {kind} {c.opcode:03x}  {name:<22} {_fmt_fields(c.fields())}"


def format_stream(commands: Iterable[Command], header: Cop1Header | None = None) -> str:
    """A readable listing: one command per line, a blank line after each kick."""
    lines = []
    if header is not None:
        major, minor, patch = header.arch_version
        lines.append(f"# COP1: {header.macs_per_cc} MACs/cc, SHRAM {header.shram_kib} KiB, "
                     f"arch {major}.{minor}.{patch}, {header.stream_words} words at cmd_data+{header.stream_offset}")
    lines.append("off   word(s)           kind op   register               fields")
    for c in commands:
        lines.append(format_command(c))
        if c.is_kick:
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def load_npz_stream(path: str | Path) -> tuple[Cop1Header, np.ndarray]:
    """Header and command words of a Vela raw ``.npz`` (``cmd_data`` read with ``tobytes``; see vela.py)."""
    with np.load(path, allow_pickle=True) as d:
        cmd_data = np.asarray(d["cmd_data"]).tobytes()
    return parse_driver_payload(cmd_data)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m models.npu.cmdstream MODEL_vela.npz | STREAM.bin", file=sys.stderr)
        return 2
    path = Path(argv[0])
    try:
        if path.suffix == ".npz":
            hdr, words = load_npz_stream(path)
        else:
            hdr, words = None, np.frombuffer(path.read_bytes(), dtype="<u4")
        cmds = decode_stream(words)
    except (OSError, KeyError, CommandStreamError) as e:
        print(f"error: {path}: {e}", file=sys.stderr)
        return 2
    sys.stdout.write(format_stream(cmds, hdr))
    return 0


__all__ = [
    "CMD0_NAMES", "CMD1_NAMES", "Command", "CommandStreamError", "Cop1Header", "Kick", "block_weight_bytes",
    "decode_stream",
    "format_command", "format_stream", "kernel_stride", "kicks", "load_npz_stream", "parse_driver_payload",
    "signed16",
]

if __name__ == "__main__":
    sys.exit(main())
