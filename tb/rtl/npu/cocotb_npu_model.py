"""Reference model for the NPU cocotb benches: command-stream words in, what the controller and DMA must do out.

Written from the specifications (``models/npu/SPEC.md`` sections 2, 3 and 7, the docstrings of
``rtl/npu/controller.py`` and ``rtl/npu/dma.py``), not from the RTL: opcodes come from Vela's own enums, and only
the documented interface constants (``ErrorCode``, ``DmaError``) are taken from ``rtl/``. Pure Python, so both the
cocotb test modules and pytest can import it.

:class:`NpuModel` keeps what survives between runs without a reset (the register file, external memory, the shared
buffer) and :meth:`NpuModel.run` executes one stream: register writes in order, kicks with the register snapshot,
DMA descriptors checked and copied in stream order (one channel, so copies never overlap each other in time).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ethosu.vela.ethos_u55_regs.ethos_u55_regs import cmd0, cmd1

from rtl.npu.controller import ErrorCode
from rtl.npu.dma import DmaError

CMD0_BY_CODE = {e.value: e.name.removeprefix("NPU_") for e in cmd0}
CMD1_BY_CODE = {e.value: e.name.removeprefix("NPU_") for e in cmd1}
OP = {e.name.removeprefix("NPU_"): e.value for e in cmd0}
SET1 = {e.name.removeprefix("NPU_SET_"): e.value for e in cmd1}
SET0 = {e.name.removeprefix("NPU_SET_"): e.value for e in cmd0 if e.name.startswith("NPU_SET_")}
KERNEL_OPS = ("OP_CONV", "OP_DEPTHWISE", "OP_POOL", "OP_ELEMENTWISE")
STOP = OP["OP_STOP"] | 0xFFFF << 16
NUM_REGIONS = 8
INTERNAL = 0x100           # *_REGION param bit 8: the shared buffer
DECODE_ERRORS = frozenset({ErrorCode.RESERVED_BITS, ErrorCode.UNKNOWN_CMD0, ErrorCode.UNKNOWN_CMD1,
                           ErrorCode.TRUNCATED, ErrorCode.BAD_MODE, ErrorCode.NO_STOP})


# --- encoding -------------------------------------------------------------------------------------------------------

def op(name: str, param: int = 0) -> list[int]:
    """A cmd0 operation, e.g. ``op("OP_KERNEL_WAIT", 1)``."""
    return [OP[name] | (param & 0xFFFF) << 16]


def set0(name: str, value: int) -> list[int]:
    """A cmd0 register write (value = the 16-bit param)."""
    return [SET0[name] | (value & 0xFFFF) << 16]


def set1(name: str, value: int, param: int = 0) -> list[int]:
    """A cmd1 register write: word 0 with mode 1, then the 32-bit payload."""
    return [SET1[name] | 0x4000 | (param & 0xFFFF) << 16, value & 0xFFFF_FFFF]


def dma(src_region: int, src: int, dst_region: int, dst: int, length: int) -> list[int]:
    """Program the DMA0 registers and start the copy."""
    return (set0("DMA0_SRC_REGION", src_region) + set0("DMA0_DST_REGION", dst_region) + set1("DMA0_SRC", src)
            + set1("DMA0_DST", dst) + set1("DMA0_LEN", length) + op("OP_DMA_START"))


def to_bytes(words) -> bytes:
    return b"".join(int(w).to_bytes(4, "little") for w in words)


# --- results --------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kick:
    opcode: int
    param: int
    regs: dict[str, int]     # every register as last written (cmd0: 16-bit param, cmd1: 32-bit word), 0 if never


@dataclass(frozen=True)
class Desc:
    src_region: int
    src: int
    dst_region: int
    dst: int
    length: int


@dataclass(frozen=True)
class Outcome:
    code: int                # ErrorCode value (DMA_DESCRIPTOR | DmaError for a rejected descriptor)
    offset: int | None       # byte offset of the failing command (None when the run ends at STOP)
    kicks: tuple[Kick, ...]
    dmas: tuple[Desc, ...]   # descriptors started, in order

    @property
    def error(self) -> int:
        return int(self.code != ErrorCode.OK)


# --- the model ------------------------------------------------------------------------------------------------------

@dataclass
class NpuModel:
    ext_size: int
    shram_size: int
    ext: bytearray = field(init=False)
    shram: bytearray = field(init=False)
    regs: dict[str, int] = field(init=False)

    def __post_init__(self):
        self.reset()

    def reset(self):
        self.ext, self.shram, self.regs = bytearray(self.ext_size), bytearray(self.shram_size), {}

    def run(self, words, cmd_base: int, basep, cmd_len: int | None = None) -> Outcome:
        """Execute the stream ``words`` placed at ``cmd_base``, ``cmd_len`` bytes long (default: all of it)."""
        cmd_len = 4 * len(words) if cmd_len is None else cmd_len
        if cmd_base % 4 or cmd_len % 4 or cmd_len == 0 or cmd_base + cmd_len > self.ext_size:
            return Outcome(ErrorCode.BAD_STREAM, 0, (), ())
        return self._execute([int(w) for w in words[:cmd_len // 4]], basep)

    def _execute(self, words, basep) -> Outcome:
        kicks, dmas = [], []

        def end(code, offset):
            return Outcome(code, offset, tuple(kicks), tuple(dmas))

        i = 0
        while i < len(words):
            word, offset = words[i], 4 * i
            i += 1
            code, reserved, mode, param = word & 0x3FF, (word >> 10) & 0xF, (word >> 14) & 3, word >> 16
            if reserved:
                return end(ErrorCode.RESERVED_BITS, offset)
            if mode == 1:
                name = CMD1_BY_CODE.get(code)
                if name is None:
                    return end(ErrorCode.UNKNOWN_CMD1, offset)
                if i == len(words):
                    return end(ErrorCode.TRUNCATED, offset)
                self._write1(name.removeprefix("SET_"), words[i], param)
                i += 1
                continue
            if mode != 0:
                return end(ErrorCode.BAD_MODE, offset)
            name = CMD0_BY_CODE.get(code)
            if name is None:
                return end(ErrorCode.UNKNOWN_CMD0, offset)
            if name == "OP_STOP":
                return end(ErrorCode.OK, None)
            if name.startswith("SET_"):
                self.regs[name.removeprefix("SET_")] = param
            elif name in KERNEL_OPS:
                kicks.append(Kick(code, param, dict(self.regs)))
            elif name == "OP_DMA_START":
                desc = self._descriptor()
                error = dma_error(desc, basep, self.ext_size, self.shram_size)
                if error:
                    return end(ErrorCode.DMA_DESCRIPTOR | error, offset)
                self.copy(desc, basep)
                dmas.append(desc)
        return end(ErrorCode.NO_STOP, 4 * len(words))

    def _write1(self, name: str, value: int, param: int):
        self.regs[name] = value
        if name in ("OFM_SCALE", "OPA_SCALE"):
            self.regs[f"{name}_SHIFT"] = param & 0x3F

    def _descriptor(self) -> Desc:
        r = self.regs
        return Desc(r.get("DMA0_SRC_REGION", 0), r.get("DMA0_SRC", 0), r.get("DMA0_DST_REGION", 0),
                    r.get("DMA0_DST", 0), r.get("DMA0_LEN", 0))

    def copy(self, d: Desc, basep):
        a = basep[d.src_region & 0xFF] + d.src
        chunk = bytes(self.ext[a:a + d.length])
        if d.dst_region & INTERNAL:
            self.shram[d.dst:d.dst + d.length] = chunk
        else:
            b = basep[d.dst_region & 0xFF] + d.dst
            self.ext[b:b + d.length] = chunk


def dma_error(d: Desc, basep, ext_size: int, shram_size: int) -> int:
    """The DMA's descriptor check, first match wins (``rtl/npu/dma.py`` docstring)."""
    src_index, dst_index = d.src_region & 0xFF, d.dst_region & 0xFF
    if d.length == 0:
        return DmaError.LENGTH_ZERO
    if d.src_region & INTERNAL or src_index >= NUM_REGIONS:
        return DmaError.SRC_REGION
    if not d.dst_region & INTERNAL and dst_index >= NUM_REGIONS:
        return DmaError.DST_REGION
    if (d.src_region >> 9) & 3 or (d.dst_region >> 9) & 3:
        return DmaError.STRIDE_MODE
    if basep[src_index] + d.src + d.length > ext_size:
        return DmaError.SRC_RANGE
    if d.dst_region & INTERNAL:
        if d.dst + d.length > shram_size:
            return DmaError.DST_RANGE
    elif basep[dst_index] + d.dst + d.length > ext_size:
        return DmaError.DST_RANGE
    return DmaError.OK


def ranges_overlap(a: int, b: int, length: int) -> bool:
    return abs(a - b) < length
