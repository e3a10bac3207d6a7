"""The Debian bare-metal RISC-V toolchain (``gcc-riscv64-unknown-elf``) and qemu-user's ``qemu-riscv32``.

:func:`assemble` builds an RV32IM ELF (``-march=rv32im -mabi=ilp32``) linked at the SoC's addresses, so the same
file runs on the RTL (its ``PT_LOAD`` segments go into the memories, :func:`load_segments`) and under qemu-user
(as a static Linux binary whose ``ecall`` s are Linux system calls).
"""
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from base import RampartError

__all__ = ["GCC", "PICOLIBC_SPECS", "QEMU", "Segment", "assemble", "linker_script", "load_segments", "missing_tools",
           "run_qemu"]

GCC = "riscv64-unknown-elf-gcc"
QEMU = "qemu-riscv32"
ARCH = ("-march=rv32im", "-mabi=ilp32")
PICOLIBC_SPECS = Path("/usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs")  #: Debian picolibc-riscv64-unknown-elf


def missing_tools() -> list[str]:
    """The executables among :data:`GCC`, :data:`QEMU` not on PATH (``make sysdeps`` installs them)."""
    return [tool for tool in (GCC, QEMU) if shutil.which(tool) is None]


def linker_script(text_base: int, data_base: int, stack_top: int | None = None) -> str:
    """Text (``.text.start`` first) at ``text_base``; read-only data, data, TLS (``__tls_base``) and bss at
    ``data_base``; ``__stack_top`` defined when ``stack_top`` is given."""
    data = "*(.rodata*) *(.srodata*) *(.data*) *(.sdata*) . = ALIGN(8); __tls_base = .; *(.tdata*) *(.tbss*) " \
           "*(.sbss*) *(.bss*) *(COMMON)"
    script = (f"ENTRY(_start)\nSECTIONS {{\n  . = {text_base:#x};\n  .text : {{ *(.text.start) *(.text*) }}\n"
              f"  . = {data_base:#x};\n  .data : {{ {data} }}\n}}\n")
    if stack_top is not None:
        script += f"__stack_top = {stack_top:#x};\n"
    return script


def assemble(sources: dict[str, str], text_base: int, data_base: int, out: Path, *,
             flags: tuple[str, ...] = ("-nostdlib", "-nostartfiles"), stack_top: int | None = None) -> Path:
    """Compile/assemble ``sources`` (file name -> text) and link them to ``out`` (static, ``text_base`` /
    ``data_base``, see :func:`linker_script`) with gcc ``flags``."""
    if shutil.which(GCC) is None:
        raise RampartError(f"{GCC} not found (Debian package gcc-riscv64-unknown-elf; `make sysdeps`)")
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, text in sources.items():
            path = Path(tmp) / name
            path.write_text(text)
            paths.append(str(path))
        script = Path(tmp) / "link.ld"
        script.write_text(linker_script(text_base, data_base, stack_top))
        cmd = [GCC, *ARCH, "-static", *flags, "-T", str(script), "-o", str(out), *paths]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RampartError(f"{GCC} failed: {result.stderr.strip()}")
    return out


@dataclass(frozen=True)
class Segment:
    address: int
    data: bytes     # file bytes, zero-padded to the segment's memory size


def load_segments(elf: Path) -> tuple[int, list[Segment]]:
    """(entry point, loadable segments) of a 32-bit little-endian ELF."""
    raw = Path(elf).read_bytes()
    if raw[:4] != b"\x7fELF" or raw[4] != 1 or raw[5] != 1:
        raise RampartError(f"{elf}: not a 32-bit little-endian ELF")
    entry, phoff = struct.unpack_from("<II", raw, 24)
    phentsize, phnum = struct.unpack_from("<HH", raw, 42)
    segments = []
    for i in range(phnum):
        p_type, offset, vaddr, _, filesz, memsz = struct.unpack_from("<IIIIII", raw, phoff + i * phentsize)
        if p_type == 1 and memsz:
            segments.append(Segment(vaddr, raw[offset:offset + filesz] + bytes(memsz - filesz)))
    return entry, segments


def run_qemu(elf: Path, timeout: float = 30.0) -> bytes:
    """Run ``elf`` under qemu-riscv32 and return what it wrote to stdout (a non-zero exit is an error)."""
    if shutil.which(QEMU) is None:
        raise RampartError(f"{QEMU} not found (Debian package qemu-user; `make sysdeps`)")
    result = subprocess.run([QEMU, str(elf)], capture_output=True, timeout=timeout)
    if result.returncode != 0:
        raise RampartError(f"{QEMU} {elf} exited with {result.returncode}: {result.stderr.decode(errors='replace')}")
    return result.stdout
