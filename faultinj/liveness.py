"""Liveness (ACE-style) analysis of memory words: classify a memory bit flip from the golden run, without simulating.

From one recorded golden run we know, for every memory (``$mem_v2`` of the flat netlist) and every cycle, which
word each read port addresses and which bits of which word each write port writes. A flip of bits ``B`` of word
``w`` of memory ``m`` at cycle ``t`` (in the state after ``t`` rising edges, see :mod:`faultinj.engine`) then is:

* **MASKED** if every bit of ``B`` is written (by write events at cycles ``>= t``) before the word is next read:
  nothing saw the wrong value and the write restores the golden one, so from that edge on the faulty state equals
  the golden state (the fast engine stops there with MASKED; the reference path ends with an equal state);
* **LATENT** if the word is never read again (through the end of the run, including the end-of-run settle that
  samples the detection and completion ports) and some bit of ``B`` is never written again: outputs, detection,
  correction and completion are those of the golden run, and the state differs at the end;
* otherwise unknown: it must be simulated.

A read is a read port *addressing* the word in a cycle: rampart's memories have combinational read ports only
(:func:`sim.netlist.state_map` refuses others), which read every cycle whether or not the data is used, so this
over-approximates reads and never calls a live word dead. A read in the same cycle as a write sees the old
(faulty) value and counts as a read first. Memories that are observed regions of the workload, and flip-flops, are
not classified here (always simulated).

How it is recorded: the flat netlist's memories name their port signals (``RD_ADDR``, ``WR_ADDR``, ``WR_EN``); a
probe variant of the build (:func:`sim.probe.probe_library`: same Verilog, those wires public) replays the
workload once and samples them every cycle, settled before the edge (the values the edge uses). A memory whose
port wires Verilator could not make public is simply not classified. The fast library is untouched.
"""
import json
import re
from dataclasses import dataclass

import numpy as np
from amaranth._toolchain.yosys import find_yosys

from faultinj.outcomes import Outcome
from faultinj.workload import Workload
from sim import netlist
from sim.build import Build

__all__ = ["SIMULATE", "MemoryPorts", "memory_ports", "Liveness"]

#: :meth:`Liveness.classify`'s code for "not classified: simulate it".
SIMULATE = 255
#: Write events looked at per fault (past that, a partly covered word is simulated).
MAX_WRITES = 16

Bit = tuple[str, int] | int      # (wire, bit) of the flat netlist, or a constant 0 / 1


@dataclass(frozen=True)
class MemoryPorts:
    """A memory of the flat netlist and the signals of its ports, LSB first."""

    var: str                                  # its flat name (StateElement.var)
    width: int
    depth: int
    offset: int                               # address of word 0
    read_addr: tuple[tuple[Bit, ...], ...]    # per read port
    write_addr: tuple[tuple[Bit, ...], ...]   # per write port
    write_en: tuple[tuple[Bit, ...], ...]     # per write port: one enable per data bit

    def wires(self) -> set[str]:
        return {b[0] for port in (*self.read_addr, *self.write_addr, *self.write_en) for b in port
                if isinstance(b, tuple)}


_TOKEN = re.compile(r"\{|\}|\[\d+(?::\d+)?\]|\d+'[01xzm-]*|[^\s{}\[]+")


def sigspec_bits(spec: str, wires: dict[str, int]) -> list[Bit]:
    """The bits of an RTLIL signal spec (a wire, a slice, a constant, or a ``{ MSB ... LSB }`` concatenation),
    LSB first; x and z constants read as 0."""
    tokens = _TOKEN.findall(spec)
    chunks: list[list[Bit]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token in "{}":
            continue
        if m := re.fullmatch(r"(\d+)'([01xzm-]*)", token):
            chunks.append([1 if c == "1" else 0 for c in reversed(m[2])])
            continue
        name = token[1:] if token.startswith("\\") else token
        lo, hi = 0, wires[name] - 1
        if i < len(tokens) and tokens[i].startswith("["):
            sel = tokens[i][1:-1].split(":")
            hi, lo = int(sel[0]), int(sel[-1])
            i += 1
        chunks.append([(name, b) for b in range(lo, hi + 1)])
    return [b for chunk in reversed(chunks) for b in chunk]


def _flat_netlist(rtlil_text: str) -> tuple[dict[str, netlist.Module], dict[str, int]]:
    """The netlist exactly as the build's Verilog is made (:func:`sim.build.verilog_of`), and each memory's
    address offset (``memory ... offset N``)."""
    yosys = find_yosys(lambda version: version >= (0, 40))
    script = (f"read_rtlil <<rtlil\n{rtlil_text}\nrtlil\nproc -nomux -norom\nflatten\nmemory_collect\n"
              "write_rtlil\n")
    text = yosys.run(["-q", "-"], script, ignore_warnings=True)
    offsets = {}
    for m in re.finditer(r"^\s*memory\s+(.*?)(\S+)\s*$", text, re.MULTILINE):
        attrs = m[1].split()
        name = m[2][1:] if m[2].startswith("\\") else m[2]
        offsets[name] = int(attrs[attrs.index("offset") + 1]) if "offset" in attrs else 0
    return netlist.parse_rtlil(text), offsets


def memory_ports(result: Build) -> tuple[list[MemoryPorts], dict[str, int]]:
    """Every memory of ``result``'s flat netlist with its port signals, and the widths of the wires they name
    (cached beside the build). Memories appear as one ``$mem_v2`` cell or as ``$memrd_v2`` / ``$memwr_v2`` port
    cells, depending on the Yosys version."""
    cache = result.directory / "memory_ports.json"
    if cache.exists():
        data = json.loads(cache.read_text())
        return [_ports_from_json(d) for d in data["memories"]], data["wires"]
    modules, offsets = _flat_netlist((result.directory / "top.il").read_text())
    top = modules["top"]
    depth = {e.var: e.depth for e in result.state if e.kind == "mem"}
    found: dict[str, dict] = {}
    for cell_type, _, params, conns in top.cells:
        if cell_type not in (*netlist.MEM_CELLS, "$memrd_v2", "$memwr_v2"):
            continue
        name = netlist._rtlil_string(params["MEMID"])
        name = name[1:] if name.startswith("\\") else name
        width, abits = netlist._param_int(params["WIDTH"]), netlist._param_int(params["ABITS"])
        mem = found.setdefault(name, {"width": width, "rd": [], "wa": [], "we": []})
        if cell_type == "$memrd_v2":
            mem["rd"].append(tuple(sigspec_bits(conns["ADDR"], top.wires)))
        elif cell_type == "$memwr_v2":
            mem["wa"].append(tuple(sigspec_bits(conns["ADDR"], top.wires)))
            mem["we"].append(tuple(sigspec_bits(conns["EN"], top.wires)))
        else:
            n_rd, n_wr = netlist._param_int(params["RD_PORTS"]), netlist._param_int(params["WR_PORTS"])
            rd = sigspec_bits(conns["RD_ADDR"], top.wires)
            wa = sigspec_bits(conns["WR_ADDR"], top.wires)
            we = sigspec_bits(conns["WR_EN"], top.wires)
            mem["rd"] += [tuple(rd[p * abits:(p + 1) * abits]) for p in range(n_rd)]
            mem["wa"] += [tuple(wa[p * abits:(p + 1) * abits]) for p in range(n_wr)]
            mem["we"] += [tuple(we[p * width:(p + 1) * width]) for p in range(n_wr)]
    ports = [MemoryPorts(name, m["width"], depth[name], offsets.get(name, 0), tuple(m["rd"]), tuple(m["wa"]),
                         tuple(m["we"])) for name, m in found.items() if name in depth]
    widths = {name: top.wires[name] for p in ports for name in p.wires()}
    tmp = cache.with_name(cache.name + ".tmp")
    tmp.write_text(json.dumps({"memories": [_ports_to_json(p) for p in ports], "wires": widths}))
    tmp.replace(cache)
    return ports, widths


def _ports_to_json(p: MemoryPorts) -> dict:
    return {"var": p.var, "width": p.width, "depth": p.depth, "offset": p.offset,
            "read_addr": p.read_addr, "write_addr": p.write_addr, "write_en": p.write_en}


def _ports_from_json(d: dict) -> MemoryPorts:
    def bits(ports):
        return tuple(tuple(tuple(b) if isinstance(b, list) else b for b in port) for port in ports)

    return MemoryPorts(d["var"], d["width"], d["depth"], d["offset"], bits(d["read_addr"]),
                       bits(d["write_addr"]), bits(d["write_en"]))


@dataclass
class _Events:
    """One memory's recorded accesses, sorted by (word, cycle) as keys ``word * span + cycle``."""

    reads: np.ndarray        # int64 keys
    writes: np.ndarray       # int64 keys
    masks: np.ndarray        # (writes, ceil(width / 8)) uint8: the written bits (packed, little bit order)
    width: int


class Liveness:
    """The recorded memory accesses of ``workload``'s golden run on ``result``, and :meth:`classify`."""

    def __init__(self, result: Build, workload: Workload):
        from faultinj.engine import load_image
        from sim.harness import NativeSim
        from sim.probe import probe_library

        self.build = result
        observed = {name for name, _, _ in workload.regions}
        elements = {e.var: i for i, e in enumerate(result.state)}
        ports, widths = memory_ports(result)
        ports = [p for p in ports if p.var in elements and result.state[elements[p.var]].hier_name not in observed]
        wires = {name: widths[name] for p in ports for name in p.wires()}
        # a cycle past the stimulus (inputs held): the end-of-run settle that samples detection and completion
        self.span = workload.cycles + 1
        self.events: dict[int, _Events] = {}
        if not ports:
            return
        with NativeSim(result, library=probe_library(result, wires)) as sim:
            public = sim.probe_ids(wires)
            ports = [p for p in ports if p.wires() <= set(public)]
            needed = sorted({name for p in ports for name in p.wires()})
            load_image(sim, workload)
            in_ids, in_buf = sim.pack_inputs(workload.inputs)
            in_buf = np.concatenate([in_buf, in_buf[-1:]])
            trace = sim.run_probes((in_ids, in_buf), {n: public[n] for n in needed}, {n: wires[n] for n in needed})
        for p in ports:
            self.events[elements[p.var]] = self._events(p, trace)

    @property
    def elements(self) -> list[int]:
        """State element indices this analysis classifies."""
        return sorted(self.events)

    def _events(self, p: MemoryPorts, trace: dict[str, np.ndarray]) -> _Events:
        cycles = np.arange(self.span, dtype=np.int64)
        reads = []
        for port in p.read_addr:
            word = _value(port, trace, self.span) - p.offset
            ok = (word >= 0) & (word < p.depth)
            reads.append(word[ok] * self.span + cycles[ok])
        keys, masks = [], []
        for addr, enable in zip(p.write_addr, p.write_en, strict=True):
            word = _value(addr, trace, self.span) - p.offset
            en = _bits(enable, trace, self.span)
            ok = en.any(axis=1) & (word >= 0) & (word < p.depth)
            keys.append(word[ok] * self.span + cycles[ok])
            masks.append(np.packbits(en[ok], axis=1, bitorder="little"))
        reads = np.sort(np.concatenate(reads)) if reads else np.zeros(0, np.int64)
        keys = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        order = np.argsort(keys, kind="stable")
        masks = np.concatenate(masks)[order] if masks else np.zeros((0, (p.width + 7) // 8), np.uint8)
        return _Events(reads, keys[order], masks, p.width)

    def classify(self, elements, words, bits, cycles, upset: int = 1) -> np.ndarray:
        """Per fault (state element, word, bit, cycle; ``upset`` adjacent bits from ``bit``, wrapping as the
        engine does): an :class:`~faultinj.outcomes.Outcome` code (MASKED or LATENT) or :data:`SIMULATE`."""
        elements, words, bits, cycles = (np.asarray(a, dtype=np.int64) for a in (elements, words, bits, cycles))
        out = np.full(len(elements), SIMULATE, dtype=np.uint8)
        for element, ev in self.events.items():
            sel = np.flatnonzero(elements == element)
            if len(sel):
                out[sel] = self._classify(ev, words[sel], bits[sel], cycles[sel], upset)
        return out

    def _classify(self, ev: _Events, words, bits, cycles, upset: int) -> np.ndarray:
        span = self.span
        keys = words * span + cycles
        never = np.iinfo(np.int64).max
        ri = np.searchsorted(ev.reads, keys)
        nxt = ev.reads[np.minimum(ri, len(ev.reads) - 1)] if len(ev.reads) else np.zeros_like(keys)
        has_read = (ri < len(ev.reads)) & (nxt // span == words)
        read_at = np.where(has_read, nxt % span, never)
        flipped = (bits[:, None] + np.arange(min(upset, ev.width))[None, :]) % ev.width
        covered = np.zeros(flipped.shape, dtype=bool)
        wi = np.searchsorted(ev.writes, keys)
        exhausted = np.zeros(len(keys), dtype=bool)
        for _ in range(MAX_WRITES):
            inside = wi < len(ev.writes)
            at = np.minimum(wi, max(len(ev.writes) - 1, 0))
            key = ev.writes[at] if len(ev.writes) else np.zeros_like(keys)
            live = inside & (key // span == words) & (key % span < read_at)
            exhausted |= ~live
            if not live.any():
                break
            rows = np.flatnonzero(live)
            mask_bytes = ev.masks[at[rows][:, None], flipped[rows] // 8]
            covered[rows] |= ((mask_bytes >> (flipped[rows] % 8)) & 1).astype(bool)
            wi = np.where(live, wi + 1, wi)
        all_covered = covered.all(axis=1)
        out = np.full(len(keys), SIMULATE, dtype=np.uint8)
        out[all_covered] = Outcome.MASKED
        out[~all_covered & exhausted & ~has_read] = Outcome.LATENT
        return out


def _bits(refs, trace: dict[str, np.ndarray], cycles: int) -> np.ndarray:
    """(cycles, len(refs)) bool: each bit's value per cycle."""
    out = np.zeros((cycles, len(refs)), dtype=bool)
    for j, ref in enumerate(refs):
        if isinstance(ref, tuple):
            name, bit = ref
            out[:, j] = (trace[name][:, bit // 32] >> np.uint32(bit % 32)) & 1
        else:
            out[:, j] = bool(ref)
    return out


def _value(refs, trace: dict[str, np.ndarray], cycles: int) -> np.ndarray:
    """The unsigned value of ``refs`` (LSB first) per cycle, as int64."""
    bits = _bits(refs, trace, cycles).astype(np.int64)
    return (bits << np.arange(len(refs), dtype=np.int64)[None, :]).sum(axis=1)
