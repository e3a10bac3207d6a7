"""build(design, config): Amaranth component -> Verilog -> state map -> Verilated shared library, cached.

The cache has two levels. A build lives in a folder named after a hash of its *netlist* (the RTLIL text), the native
harness source, the tool versions and the C++ optimisation level (``opt``: its compiler flags are hashed, so a library
built with other flags is never reused), so Verilator only runs when the hardware itself changed. A second name, a
hash of the design sources (every file of the ``rtl`` package) and the configuration, is a symbolic link to that
folder: a hit on it only reads ``build.json`` without elaborating anything; a miss elaborates the design (seconds)
and reuses the netlist folder when an edit elsewhere in ``rtl`` left this design's netlist unchanged. The sources
key is the digest taken when ``rtl`` was imported (``rtl.SOURCES_AT_IMPORT``); a process whose ``rtl`` files changed
on disk since then cannot know which version it loaded, so it skips the link and names the build by its netlist
only (otherwise a stale netlist could be filed under the new sources' key). The cache
root is ``$RAMPART_CACHE`` or ``~/.cache/rampart``. Concurrent builders of the same key (pytest workers, FI
processes) serialise on a lock file and finished folders and links appear atomically by rename.
"""
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amaranth._toolchain.yosys import find_yosys
from amaranth.back import rtlil
from amaranth.lib import wiring

import rtl
from base import RampartError, cache_root
from rtl.designs import get_design
from sim import netlist
from sim.toolchain import VERILATED_MK_FIXES, tool_versions, verilator_env, verilator_executable, verilator_opt_flags

HARNESS_SOURCE = Path(__file__).parent / "native" / "harness.cpp"
TOP = "top"
PREFIX = "Vtop"
BUILD_FORMAT = 3


def default_opt(design: str) -> str:
    """The C++ optimisation level (a key of :data:`sim.toolchain.VERILATOR_OPT_LEVELS`) ``design`` is built at when
    ``build`` is given none: its descriptor's ``verilator_opt`` (-O3 unless measured slower, see BENCHMARKS.md)."""
    return get_design(design).verilator_opt


@dataclass(frozen=True)
class Port:
    name: str       # Verilog port name (Amaranth joins signature paths with "__")
    width: int
    direction: str  # "in" or "out"


@dataclass(frozen=True)
class Build:
    """A finished build: files, the ports, and the state map (flip-flops and memories, in a fixed order)."""
    design: str
    config: Any
    key: str
    directory: Path
    ports: tuple[Port, ...]
    state: tuple[netlist.StateElement, ...]   # every element's ``block`` from the design's block map
    stats: netlist.NetlistStats               # per functional block
    seconds: float          # how long the build took when it was made

    @property
    def verilog(self) -> Path:
        return self.directory / f"{TOP}.v"

    @property
    def library(self) -> Path:
        return self.directory / "librampart_sim.so"

    @property
    def trace_library(self) -> Path:
        return self.directory / "librampart_sim_trace.so"

    @property
    def state_bits(self) -> int:
        return sum(e.bits for e in self.state)

    def blocks(self) -> list[str]:
        return sorted({e.block for e in self.state})


def _source_digest() -> str:
    digest = hashlib.sha256(rtl.SOURCES_AT_IMPORT.encode())
    for path in (HARNESS_SOURCE, Path(netlist.__file__), Path(__file__)):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build_key(design: str, config: Any, opt: str = "O3") -> str:
    payload = json.dumps({"design": design, "config": repr(config), "tools": tool_versions(),
                          "sources": _source_digest(), "format": BUILD_FORMAT, "opt": verilator_opt_flags(opt)},
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def netlist_key(rtlil_text: str, opt: str = "O3") -> str:
    """Hash of what the Verilated library is made of: the netlist, the harness and build code, the tools and flags."""
    digest = hashlib.sha256(rtlil_text.encode())
    for path in (HARNESS_SOURCE, Path(netlist.__file__), Path(__file__)):
        digest.update(path.read_bytes())
    digest.update(json.dumps({"tools": tool_versions(), "format": BUILD_FORMAT, "opt": verilator_opt_flags(opt)},
                             sort_keys=True).encode())
    return digest.hexdigest()


def build(design: str, config: Any = None, *, trace: bool = False, opt: str | None = None) -> Build:
    """Build (or fetch from the cache) ``design`` with ``config`` (a config object, preset name, TOML path or None),
    compiled at C++ optimisation level ``opt`` (default: :func:`default_opt`)."""
    opt = opt or default_opt(design)
    verilator_opt_flags(opt)  # an unknown level fails here, before anything is elaborated
    entry = get_design(design)
    if not isinstance(config, entry.config_type):
        config = entry.config(config)
    cache_root().mkdir(parents=True, exist_ok=True)
    if rtl.source_digest() != rtl.SOURCES_AT_IMPORT:
        # rtl/ was edited after this process imported it: the loaded modules may be of either version, so only
        # the netlist (what was actually elaborated) can name the build
        result = _build_by_netlist(entry, config, None, opt)
    else:
        key = build_key(design, config, opt)
        link = cache_root() / f"{design}-{key[:20]}"
        result = _load(link, config)
        if result is None:
            with _locked(cache_root() / f".{design}-{key[:20]}.lock"):
                result = _load(link, config) or _build_by_netlist(entry, config, link, opt)
    if trace and not result.trace_library.exists():
        with _locked(cache_root() / f".{result.directory.resolve().name}.lock"):
            if not result.trace_library.exists():
                _verilate(result.directory, trace=True, opt=opt)
    return result


def _build_by_netlist(entry, config, link: Path | None, opt: str) -> Build:
    """Elaborate, then build into (or reuse) the netlist-keyed folder and point ``link`` (if any) at it."""
    component = entry.make(config)
    rtlil_text = rtlil.convert(component, name=TOP)
    key = netlist_key(rtlil_text, opt)
    directory = cache_root() / f"{entry.name}-n{key[:20]}"
    with _locked(cache_root() / f".{directory.name}.lock"):
        if _load(directory, config) is None:
            _build_fresh(entry, config, key, directory, component, rtlil_text, opt)
    if link is None:
        return _load(directory, config)
    staging = link.with_name(link.name + f".tmp{os.getpid()}")
    staging.unlink(missing_ok=True)
    staging.symlink_to(directory.name)
    if link.is_dir() and not link.is_symlink():   # a folder left by an older cache layout
        shutil.rmtree(link, ignore_errors=True)
    os.replace(staging, link)
    return _load(link, config)


class _locked:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.file = open(self.path, "w")
        fcntl.flock(self.file, fcntl.LOCK_EX)

    def __exit__(self, *exc):
        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


def _load(directory: Path, config: Any) -> Build | None:
    """The build in ``directory``, its state elements assigned to blocks by the design's current block map (so an
    edit of the map never needs a rebuild)."""
    manifest = directory / "build.json"
    if not manifest.exists():
        return None
    data = json.loads(manifest.read_text())
    entry = get_design(data["design"])
    state = []
    for e in data["state"]:
        var = ".".join((*e["path"], e["name"]))
        state.append(netlist.StateElement(tuple(e["path"]), e["module"], e["name"], e["width"], e["depth"], e["kind"],
                                          entry.block_of(var)))
    return Build(
        design=data["design"], config=config, key=data["key"], directory=directory,
        ports=tuple(Port(**p) for p in data["ports"]), state=tuple(state),
        # builds of format 2 (older revisions, read by benchmarks/baseline.py) counted cells per first-level instance
        stats=netlist.block_stats(state, data.get("instance_cells") or data["stats"]["cells"], entry.block_of),
        seconds=data["seconds"],
    )


def ports_of(component: wiring.Component) -> list[Port]:
    ports = []
    for path, member, value in component.signature.flatten(component):
        name = "__".join(str(p) for p in path)
        direction = "in" if member.flow == wiring.In else "out"
        ports.append(Port(name, len(value.as_value()) if hasattr(value, "as_value") else len(value), direction))
    return ports


def verilog_of(rtlil_text: str) -> str:
    """Amaranth's own ``back.verilog`` script plus ``flatten``: one module, every register a variable of it.

    Flat, because in a hierarchical model Verilator may keep a register's canonical storage in a parent's alias
    and expose only a copy (then a flipped bit is silently overwritten); in the flat model the ``reg`` is the
    storage, which lets state be ``public_flat_rd`` and keeps state access nearly free (see BENCHMARKS.md).
    """
    yosys = find_yosys(lambda version: version >= (0, 40))
    script = (f"read_rtlil <<rtlil\n{rtlil_text}\nrtlil\nproc -nomux -norom\nflatten\nmemory_collect\n"
              "write_verilog -norename\n")
    return yosys.run(["-q", "-"], script, ignore_warnings=True)


def _build_fresh(entry, config, key: str, directory: Path, component, rtlil_text: str, opt: str) -> None:
    start = time.monotonic()
    staging = directory.with_name(directory.name + f".tmp{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    (staging / f"{TOP}.il").write_text(rtlil_text)
    (staging / f"{TOP}.v").write_text(verilog_of(rtlil_text))
    hierarchical, flat = netlist.netlist_of(rtlil_text)
    state, instance_cells = netlist.state_map(hierarchical, TOP)
    missing = sorted({e.var for e in state} - netlist.flat_names(flat, TOP))
    if missing:
        raise RampartError(f"state elements not found in the flattened netlist: {', '.join(missing[:5])}")
    ports = ports_of(component)
    (staging / "public.vlt").write_text(_public_config(state, ports))
    _verilate(staging, trace=False, opt=opt)
    manifest = {
        "design": entry.name, "config": repr(config), "key": key, "tools": tool_versions(), "opt": opt,
        "ports": [dataclasses.asdict(p) for p in ports],
        "state": [{k: v for k, v in dataclasses.asdict(e).items() if k != "block"} for e in state],
        "instance_cells": instance_cells,
        "seconds": round(time.monotonic() - start, 2),
    }
    (staging / "build.json").write_text(json.dumps(manifest, indent=1))
    shutil.rmtree(directory, ignore_errors=True)
    staging.rename(directory)


def _vlt_quote(name: str) -> str:
    # Verilator matches -var against the plain identifier; escape glob metacharacters Amaranth names may carry.
    return name.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?").replace('"', '\\"')


def _public_config(state, ports) -> str:
    """A Verilator config file that makes only the ports (read/write) and the state elements (read-only) public.

    Not ``--public-flat-rw`` on everything (2.5x slower), and state not even ``_rw``: a read/write public variable
    makes Verilator re-evaluate everything that depends on it on every eval (1.8x slower on the MAC array). We write
    state only between cycles (flips, memory loads) and then re-settle all combinational logic ourselves
    (harness.cpp), which is what ``_rw`` would buy. This is sound only because the Verilog is flat (see
    :func:`verilog_of`); tb/sim/test_harness.py checks every flipped bit persists and reaches the outputs.
    """
    lines = ["`verilator_config"]
    for element in state:
        lines.append(f'public_flat_rd -module "{TOP}" -var "{_vlt_quote(element.var)}"')
    for port in ports:
        lines.append(f'public_flat_rw -module "{TOP}" -var "{_vlt_quote(port.name)}"')
    return "\n".join(lines) + "\n"


def verilator_command(obj: Path, output: Path, sources: list[Path], *, cflags: str = "", ldflags: str = "",
                      trace: bool = False, opt: str = "O3") -> list[str]:
    """The one Verilator invocation every rampart build uses (also the benchmarks' baseline), so flags match;
    ``opt``: the C++ optimisation level (sim.toolchain.VERILATOR_OPT_LEVELS)."""
    args = [
        verilator_executable(), "--cc", "--exe", "--build", "--build-jobs", "2",
        "--top-module", TOP, "--prefix", PREFIX, "-Mdir", str(obj),
        "-Wno-fatal", "-Wno-lint", "-Wno-style", "--x-assign", "0", "--x-initial", "0",
        "-MAKEFLAGS", " ".join(VERILATED_MK_FIXES + verilator_opt_flags(opt)), "-o", str(output),
    ]
    if cflags:
        args += ["-CFLAGS", cflags]
    if ldflags:
        args += ["-LDFLAGS", ldflags]
    if trace:
        args.append("--trace-fst")
    return args + [str(source) for source in sources]


def _verilate(directory: Path, *, trace: bool, opt: str = "O3") -> None:
    obj = directory / ("obj_trace" if trace else "obj")
    library = directory / ("librampart_sim_trace.so" if trace else "librampart_sim.so")
    args = verilator_command(
        obj, library.resolve(), [HARNESS_SOURCE, directory / f"{TOP}.v", directory / "public.vlt"],
        cflags=f"-fPIC -DRP_TOP={PREFIX}" + (" -DRP_TRACE" if trace else ""),
        ldflags="-shared -pthread -Wl,-Bsymbolic", trace=trace, opt=opt)
    log = directory / ("verilator_trace.log" if trace else "verilator.log")
    with open(log, "w") as out:
        proc = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, env=verilator_env(), cwd=directory)
    if proc.returncode != 0 or not library.exists():
        first_error = next((line.strip() for line in log.read_text().splitlines()
                            if "%Error" in line or "error:" in line), "see the log")
        raise RampartError(f"Verilator build failed: {first_error} (log: {log})")
    shutil.rmtree(obj, ignore_errors=True)
