r"""The state map: every flip-flop bit and memory bit of an elaborated design, and per-block netlist statistics.

We read the RTLIL that Yosys produces after ``proc`` from the same RTLIL from which we write the Verilog. The
Verilog is *flattened* (see sim/build.py), and Yosys's ``flatten`` names an inner wire ``<instance>.<wire>``, so a
flip-flop whose Q wire is ``acc`` in instance ``pe_0_0`` is the ``reg`` ``\pe_0_0.acc`` of the flat Verilog (and of
the Verilated model): :attr:`StateElement.var`. ``flat_names`` checks that against the flattened netlist itself.
A site's *block* (the unit of fault-injection analysis) is assigned by the design's descriptor from the element's
dotted name (:meth:`rtl.designs.Design.block_of`): a functional unit at any depth of the hierarchy; by default the
first-level submodule instance it lives in (``top`` for state of the top module itself).
"""
import re
from collections import Counter
from dataclasses import dataclass, field

from amaranth._toolchain.yosys import find_yosys

from base import RampartError

FF_CELLS = frozenset({"$dff", "$adff", "$dffe", "$adffe", "$sdff", "$sdffe", "$sdffce", "$aldff", "$aldffe",
                      "$dffsr", "$dffsre"})
MEM_CELLS = frozenset({"$mem_v2", "$mem"})


@dataclass(frozen=True)
class StateElement:
    """One register or memory of the design: ``depth`` words of ``width`` bits (depth 1 for a register)."""
    path: tuple[str, ...]    # instance path below the top module, e.g. ("pe_0_0",)
    module: str              # Verilog module name, e.g. "top.pe_0_0"
    name: str                # Verilog variable name (reg or memory)
    width: int
    depth: int
    kind: str                # "ff" or "mem"
    block: str = ""          # functional block (the descriptor's block map); default: first-level instance or top

    def __post_init__(self):
        if not self.block:
            object.__setattr__(self, "block", self.path[0] if self.path else "top")

    @property
    def var(self) -> str:
        """The variable's name in the flattened Verilog."""
        return ".".join((*self.path, self.name))

    @property
    def hier_name(self) -> str:
        return ".".join(("top", *self.path, self.name))

    @property
    def bits(self) -> int:
        return self.width * self.depth


@dataclass
class Module:
    name: str
    wires: dict[str, int] = field(default_factory=dict)
    cells: list[tuple[str, str, dict[str, str], dict[str, str]]] = field(default_factory=list)


def _unescape(ident: str) -> str:
    return ident[1:] if ident.startswith("\\") else ident


_CELL_RE = re.compile(r"^\s*cell\s+(\S+)\s+(\S+)\s*$")
_WIRE_RE = re.compile(r"^\s*wire\s+(.*?)(\S+)\s*$")
_PARAM_RE = re.compile(r"^\s*parameter\s+(?:signed\s+|real\s+)?(\S+)\s+(.*?)\s*$")
_CONNECT_RE = re.compile(r"^\s*connect\s+(\S+)\s+(.*?)\s*$")


def parse_rtlil(text: str) -> dict[str, Module]:
    """Modules with their wires (name -> width) and cells (type, name, parameters, connections)."""
    modules: dict[str, Module] = {}
    module = None
    cell = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("module "):
            module = modules.setdefault(_unescape(stripped.split()[1]), Module(_unescape(stripped.split()[1])))
        elif module is None:
            continue
        elif cell is not None:
            if stripped == "end":
                module.cells.append(cell)
                cell = None
            elif m := _PARAM_RE.match(line):
                cell[2][_unescape(m[1])] = m[2]
            elif m := _CONNECT_RE.match(line):
                cell[3][_unescape(m[1])] = m[2]
        elif m := _CELL_RE.match(line):
            cell = (m[1], _unescape(m[2]), {}, {})
        elif m := _WIRE_RE.match(line):
            attrs = m[1].split()
            width = int(attrs[attrs.index("width") + 1]) if "width" in attrs else 1
            module.wires[_unescape(m[2])] = width
        elif stripped == "end" and cell is None and not line.startswith(" "):
            module = None
    return modules


def _rtlil_string(value: str) -> str:
    """A quoted RTLIL string parameter, with its backslash escapes decoded."""
    value = value.strip()
    if value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    return re.sub(r"\\(.)", r"\1", value)


def _param_int(value: str) -> int:
    value = value.strip()
    if re.fullmatch(r"-?\d+", value):
        return int(value)
    if m := re.fullmatch(r"(\d+)'([01xz]+)", value):
        return int(m[2].replace("x", "0").replace("z", "0"), 2)
    raise RampartError(f"cannot read RTLIL parameter value {value!r}")


def _ff_storage_name(module: Module, cell_name: str, q: str) -> str:
    ident = q.strip()
    if not ident.startswith(("\\", "$")) or " " in ident or "[" in ident:
        raise RampartError(f"flip-flop {cell_name} in {module.name} drives {ident!r}, not one whole wire")
    return _unescape(ident)


@dataclass(frozen=True)
class NetlistStats:
    """Per-block counts: coarse Yosys cells by type, flip-flop bits, memory bits."""
    cells: dict[str, Counter]
    ff_bits: dict[str, int]
    mem_bits: dict[str, int]


def block_stats(state, instance_cells: dict[str, dict[str, int]], block_of) -> NetlistStats:
    """Per-block statistics of a state map whose elements carry their block, and of the Yosys cell counts per
    dotted instance path (``""``: the top module), grouped by ``block_of(dotted name)``."""
    cells: dict[str, Counter] = {}
    for path, counts in instance_cells.items():
        cells.setdefault(block_of(f"{path}.$cells") if path else "top", Counter()).update(counts)
    ff_bits: Counter = Counter()
    mem_bits: Counter = Counter()
    for element in state:
        (ff_bits if element.kind == "ff" else mem_bits)[element.block] += element.bits
    return NetlistStats(cells, dict(ff_bits), dict(mem_bits))


def state_map(modules: dict[str, Module], top: str = "top") -> tuple[list[StateElement], dict[str, Counter]]:
    """Every flip-flop and memory below ``top`` (blocks by the default rule), and the Yosys cell counts by type per
    dotted instance path (``""`` for the top module)."""
    if top not in modules:
        raise RampartError(f"no module {top!r} in the netlist")
    elements: list[StateElement] = []
    cells: dict[str, Counter] = {}

    def walk(module_name: str, path: tuple[str, ...]):
        module = modules[module_name]
        counts = cells.setdefault(".".join(path), Counter())
        for cell_type, cell_name, params, conns in module.cells:
            if not cell_type.startswith("$"):
                walk(_unescape(cell_type), (*path, cell_name))
                continue
            counts[cell_type] += 1
            if cell_type in FF_CELLS:
                name = _ff_storage_name(module, cell_name, conns["Q"])
                element = StateElement(path, module_name, name, _param_int(params["WIDTH"]), 1, "ff")
            elif cell_type in MEM_CELLS:
                name = _unescape(_rtlil_string(params["MEMID"]))
                if _param_int(params.get("RD_CLK_ENABLE", "0")):
                    raise RampartError(
                        f"memory {'.'.join((*path, name))} has a synchronous read port, whose register would not be "
                        "a fault site; use read_port(domain='comb') and an explicit register (see rtl/common/sram.py)")
                element = StateElement(path, module_name, name, _param_int(params["WIDTH"]),
                                       _param_int(params["SIZE"]), "mem")
            else:
                continue
            elements.append(element)

    walk(top, ())
    return elements, cells


def flat_names(modules: dict[str, Module], top: str = "top") -> set[str]:
    """Names of the flip-flop Q wires and memories of a flattened netlist's top module."""
    names = set()
    for cell_type, cell_name, params, conns in modules[top].cells:
        if cell_type in FF_CELLS:
            names.add(_ff_storage_name(modules[top], cell_name, conns["Q"]))
        elif cell_type in MEM_CELLS:
            names.add(_unescape(_rtlil_string(params["MEMID"])))
    return names


def netlist_of(rtlil_text: str) -> tuple[dict[str, Module], dict[str, Module]]:
    """The netlist with processes lowered to cells, hierarchical and flattened (one Yosys run, two dumps)."""
    yosys = find_yosys(lambda version: version >= (0, 40))
    script = (f"read_rtlil <<rtlil\n{rtlil_text}\nrtlil\nproc\nmemory_collect\nwrite_rtlil\n"
              "flatten\nwrite_rtlil\n")
    output = yosys.run(["-q", "-"], script, ignore_warnings=True)
    marker = "# Generated by"
    parts = [marker + part for part in output.split(marker)[1:]]
    if len(parts) != 2:
        raise RampartError("unexpected Yosys output while reading the netlist")
    return parse_rtlil(parts[0]), parse_rtlil(parts[1])
