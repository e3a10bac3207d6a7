"""Probe variants of a build: the same Verilog with some internal wires public (read-only) as well.

Fault injection's fast library exposes only ports and state (sim/build.py: anything more slows every cycle). An
analysis that needs to watch internal wires once per workload (memory port addresses and enables for
:mod:`faultinj.liveness`) builds this variant instead, beside the build: same Verilog, same harness, so it
simulates exactly as the build; the build itself and its key are untouched.
"""
import hashlib
import shutil
import subprocess
from pathlib import Path

from base import RampartError, cache_root
from sim.build import HARNESS_SOURCE, PREFIX, TOP, Build, _locked, _vlt_quote, default_opt, verilator_command
from sim.toolchain import verilator_env

__all__ = ["probe_library"]


def probe_library(result: Build, wires: dict[str, int], opt: str | None = None) -> Path:
    """The library of ``result`` with the internal wires ``wires`` (flat netlist name -> width) public, built once
    per set of wires into the build's folder (``librampart_sim_probe-<hash>.so``). Which of the wires Verilator
    kept public, the caller checks by name (:meth:`sim.harness.NativeSim.probe_ids`)."""
    names = sorted(wires)
    tag = hashlib.sha256("\n".join(names).encode()).hexdigest()[:12]
    directory = result.directory
    library = directory / f"librampart_sim_probe-{tag}.so"
    if library.exists():
        return library
    with _locked(cache_root() / f".{directory.resolve().name}.probe.lock"):
        if library.exists():
            return library
        vlt = directory / f"probe-{tag}.vlt"
        extra = [f'public_flat_rd -module "{TOP}" -var "{_vlt_quote(name)}"' for name in names]
        vlt.write_text((directory / "public.vlt").read_text() + "\n".join(extra) + "\n")
        staging = library.with_name(library.name + ".tmp")
        obj = directory / f"obj_probe-{tag}"
        args = verilator_command(obj, staging.resolve(), [HARNESS_SOURCE, directory / f"{TOP}.v", vlt],
                                 cflags=f"-fPIC -DRP_TOP={PREFIX}", ldflags="-shared -pthread -Wl,-Bsymbolic",
                                 opt=opt or default_opt(result.design))
        log = directory / f"verilator_probe-{tag}.log"
        with open(log, "w") as out:
            proc = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, env=verilator_env(), cwd=directory)
        if proc.returncode != 0 or not staging.exists():
            first_error = next((line.strip() for line in log.read_text().splitlines()
                                if "%Error" in line or "error:" in line), "see the log")
            raise RampartError(f"Verilator build of the probe variant failed: {first_error} (log: {log})")
        staging.rename(library)
        shutil.rmtree(obj, ignore_errors=True)
    return library
