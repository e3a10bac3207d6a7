"""Run a cocotb test module on any rtl design from pytest, under Verilator (default) or Icarus Verilog.

The Verilog comes from :func:`sim.build.build` (so cocotb sees exactly the RTL the native harness runs); each
(design build, simulator, cocotb installation) keeps its own cocotb build folder inside the build's cache folder
(the simulator's makefiles name files of the cocotb installation by absolute path, so a checkout with another
virtual environment sharing the cache must not reuse them); runs on the same folder (pytest-xdist workers, FI
processes) take turns on a lock file beside it, since the simulator build and the results file are shared.
"""
import contextlib
import fcntl
import hashlib
import os
import xml.etree.ElementTree as ET
from pathlib import Path

from cocotb_tools.runner import get_runner

from base import RampartError
from sim.build import TOP, build
from sim.toolchain import VERILATED_MK_FIXES, iverilog_executable, verilator_env

SIMULATORS = ("verilator", "icarus")


@contextlib.contextmanager
def _environment(updates: dict[str, str]):
    saved = {k: os.environ.get(k) for k in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def cocotb_build_dir(result, simulator: str) -> Path:
    """The cocotb simulator build folder of the design build ``result``: one per simulator and cocotb installation
    (the simulator's makefiles name cocotb's files by absolute path)."""
    import cocotb

    where = hashlib.sha256(str(Path(cocotb.__file__).resolve().parent).encode()).hexdigest()[:10]
    return result.directory / f"cocotb_{simulator}_{where}"


def run_cocotb(design: str, config, test_module: str, *, test_dir: Path, simulator: str = "verilator",
               extra_env: dict[str, str] | None = None, waves: bool = False) -> Path:
    """Build ``design`` for ``simulator`` (cached) and run ``test_module`` (a module in ``test_dir``) on it.

    Returns the results XML; raises :class:`RampartError` when any cocotb test failed.
    """
    if simulator not in SIMULATORS:
        raise RampartError(f"unknown simulator {simulator!r} (known: {', '.join(SIMULATORS)})")
    result = build(design, config)
    build_dir = cocotb_build_dir(result, simulator)
    env = {}
    build_args = []
    if simulator == "verilator":
        venv = verilator_env()
        env = {"VERILATOR_ROOT": venv["VERILATOR_ROOT"], "PATH": venv["PATH"],
               "MAKEFLAGS": " ".join(VERILATED_MK_FIXES)}
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0", "--x-initial", "0"]
    elif iverilog_executable() is None:
        raise RampartError("Icarus Verilog (iverilog) is not installed; run `make install`")
    results_xml = build_dir / f"results_{test_module}.xml"
    with open(result.directory / f".cocotb_{simulator}.lock", "w") as lock, _environment(env):
        fcntl.flock(lock, fcntl.LOCK_EX)
        runner = get_runner(simulator)
        runner.build(sources=[result.verilog], hdl_toplevel=TOP, build_dir=build_dir, build_args=build_args,
                     waves=waves, timescale=("1ns", "1ps"))
        runner.test(hdl_toplevel=TOP, test_module=test_module, test_dir=test_dir, build_dir=build_dir,
                    extra_env=extra_env or {}, results_xml=str(results_xml), waves=waves)
        _check_results(results_xml)
    return results_xml


def _check_results(results_xml: Path):
    failures = []
    cases = list(ET.parse(results_xml).getroot().iter("testcase"))
    if not cases:
        raise RampartError(f"cocotb ran no test ({results_xml})")
    for case in cases:
        for problem in list(case.findall("failure")) + list(case.findall("error")):
            failures.append(f"{case.get('name')}: {problem.get('message') or problem.text or 'failed'}")
    if failures:
        raise RampartError("cocotb test failed: " + "; ".join(failures))
