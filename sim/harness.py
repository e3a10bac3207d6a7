"""The native harness: a Verilated model behind a small C ABI (sim/native/harness.cpp), driven through ctypes.

One Python call runs many cycles; Python is never inside the per-cycle loop of a workload. Ports and state elements
are resolved by name once, at construction. State sites are addressed three ways:

* a state element index (into ``build.state``) plus word and bit: :meth:`NativeSim.flip_bit`;
* a global site index over all state bits, in state-map order: :meth:`NativeSim.flip` (what fault injection samples);
* the digest input (:meth:`NativeSim.state_bytes`): each element's storage bytes in state-map order, ``ent_bytes``
  per word, little-endian -- :meth:`NativeSim.digest_bit_offset` says where a site's bit lives in it.
"""
import ctypes
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from base import RampartError
from sim.build import Build

_u32p = ctypes.POINTER(ctypes.c_uint32)
_SIGNATURES = {
    "rp_create": ([], ctypes.c_void_p),
    "rp_destroy": ([ctypes.c_void_p], None),
    "rp_var_count": ([ctypes.c_void_p], ctypes.c_int),
    "rp_var_info": ([ctypes.c_void_p, ctypes.c_int, _u32p, _u32p, _u32p], ctypes.c_char_p),
    "rp_set_state": ([ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)], None),
    "rp_poke": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, _u32p], None),
    "rp_peek": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, _u32p], None),
    "rp_load_mem": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_uint32, _u32p], None),
    "rp_read_mem": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_uint32, _u32p], None),
    "rp_step": ([ctypes.c_void_p, ctypes.c_uint64], None),
    "rp_reset": ([ctypes.c_void_p, ctypes.c_uint32], None),
    "rp_run_stimulus": ([ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                         ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p], None),
    "rp_state_bytes": ([ctypes.c_void_p], ctypes.c_uint64),
    "rp_state_dump": ([ctypes.c_void_p, ctypes.c_char_p], None),
    "rp_state_digest": ([ctypes.c_void_p], ctypes.c_uint64),
    "rp_flip": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_uint32], ctypes.c_int),
    "rp_get_bit": ([ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_uint32], ctypes.c_int),
    "rp_snapshot_size": ([], ctypes.c_uint64),
    "rp_snapshot": ([ctypes.c_void_p, ctypes.c_char_p], None),
    "rp_restore": ([ctypes.c_void_p, ctypes.c_char_p], None),
    "rp_checkpoint_count": ([ctypes.c_uint64, ctypes.c_uint64], ctypes.c_uint64),
    "rp_golden_run_ex": ([ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                          ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p,
                          ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                          ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int,
                          ctypes.c_void_p, ctypes.c_void_p], ctypes.c_int),
    "rp_inject_batch_ex": ([ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64,
                            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_void_p,
                            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                            ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64, ctypes.c_uint64,
                            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p], ctypes.c_int),
    "rp_trace_open": ([ctypes.c_void_p, ctypes.c_char_p], ctypes.c_int),
    "rp_hostmem_attach": ([ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int],
                          ctypes.c_int),
    "rp_hostmem_attached": ([ctypes.c_void_p], ctypes.c_int),
    "rp_hostmem_load": ([ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p], None),
    "rp_hostmem_read": ([ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint64, ctypes.c_void_p], None),
    "rp_hostmem_clear": ([ctypes.c_void_p], None),
}
#: Top-level ports of a host memory (``rp_hostmem_attach`` in sim/native/harness.cpp): word address, byte write
#: strobes and write data (outputs), read data (input). A design that has them gets a host memory of
#: ``2 ** width(addr)`` 64-bit words, attached when the :class:`NativeSim` is made.
HOST_MEMORY_PORTS = ("hostmem__addr", "hostmem__wen", "hostmem__wdata", "hostmem__rdata")
_libraries: dict[Path, ctypes.CDLL] = {}


def load_library(path: Path) -> ctypes.CDLL:
    """Load (once per process) a harness library and declare its C signatures."""
    if path not in _libraries:
        lib = ctypes.CDLL(str(path), mode=ctypes.RTLD_LOCAL)
        for name, (argtypes, restype) in _SIGNATURES.items():
            func = getattr(lib, name)
            func.argtypes = argtypes
            func.restype = restype
        _libraries[path] = lib
    return _libraries[path]


def _words(width: int) -> int:
    return (width + 31) // 32


def _to_words(value: int, width: int) -> ctypes.Array:
    value &= (1 << width) - 1
    n = _words(width)
    return (ctypes.c_uint32 * n)(*((value >> (32 * i)) & 0xFFFFFFFF for i in range(n)))


_STATE_SCOPE = "TOP.top"  # the flattened design's only module


def _from_words(words) -> int:
    return sum(int(w) << (32 * i) for i, w in enumerate(words))


class NativeSim:
    """One instance of a built design. ``trace`` (a path) dumps an FST waveform of everything this instance runs."""

    def __init__(self, build: Build, trace: str | Path | None = None, library: Path | None = None):
        self.build = build
        if library is not None and trace:
            raise RampartError("a probe library has no tracing variant")
        library = library or (build.trace_library if trace else build.library)
        if trace and not library.exists():
            raise RampartError("this build has no tracing variant; call sim.build.build(..., trace=True)")
        self._lib = load_library(library)
        self._h = self._lib.rp_create()
        self._vars: dict[tuple[str, str], tuple[int, int, int, int]] = {}
        width, depth, ent = ctypes.c_uint32(), ctypes.c_uint32(), ctypes.c_uint32()
        for i in range(self._lib.rp_var_count(self._h)):
            scope, name = self._lib.rp_var_info(self._h, i, width, depth, ent).decode().split("\t")
            if name.startswith("\\"):  # Verilator keeps escaped identifiers as written: "\\pe_0_0.acc "
                name = name[1:].rstrip(" ")
            self._vars[(scope, name)] = (i, width.value, depth.value, ent.value)
        self.ports = {p.name: p for p in build.ports}
        # Top-level ports live in Verilator's root scope "TOP.TOP"; "TOP.top.<port>" is the module's own copy.
        self._port_vars = {p.name: self._lookup("TOP.TOP", p.name, p.width, 1)[0] for p in build.ports}
        found = [self._lookup(_STATE_SCOPE, e.var, e.width, e.depth) for e in build.state]
        state_vars = [index for index, _ in found]
        self._ent_bytes = np.array([ent for _, ent in found], dtype=np.int64)
        ids = (ctypes.c_int * len(state_vars))(*state_vars)
        self._lib.rp_set_state(self._h, len(state_vars), ids)
        widths = np.array([e.width for e in build.state], dtype=np.int64)
        depths = np.array([e.depth for e in build.state], dtype=np.int64)
        self.site_offsets = np.concatenate([[0], np.cumsum(widths * depths)])    # site index of each element's bit 0
        self._digest_offsets = np.concatenate([[0], np.cumsum(self._ent_bytes * depths)])
        self._state_bytes = int(self._lib.rp_state_bytes(self._h))
        self._snapshot_size = int(self._lib.rp_snapshot_size())
        self.host_memory_words = 0
        if all(name in self.ports for name in HOST_MEMORY_PORTS):
            self._attach_host_memory()
        if trace:
            self._lib.rp_trace_open(self._h, str(trace).encode())

    def _attach_host_memory(self):
        words = 1 << self.ports[HOST_MEMORY_PORTS[0]].width
        ids = [self._port_vars[name] for name in HOST_MEMORY_PORTS]
        if self._lib.rp_hostmem_attach(self._h, words, *ids) != 0:
            raise RampartError("the host-memory ports have the wrong widths (need 8-bit strobes, 64-bit data)")
        self.host_memory_words = words

    def _lookup(self, scope: str, name: str, width: int, depth: int) -> tuple[int, int]:
        """(variable index, bytes per word) of a public variable, checked against the expected shape."""
        found = self._vars.get((scope, name))
        if found is None:
            raise RampartError(f"{scope}.{name} is not public in the Verilated model")
        index, var_width, var_depth, ent_bytes = found
        if (var_width, var_depth) != (width, depth):
            raise RampartError(f"{scope}.{name}: Verilator has {var_width}x{var_depth} bits, netlist {width}x{depth}")
        return index, ent_bytes

    def close(self):
        if self._h:
            self._lib.rp_destroy(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    # --- ports and clocking ----------------------------------------------------------------------------------

    def reset(self, cycles: int = 1):
        self._lib.rp_reset(self._h, cycles)

    def step(self, cycles: int = 1):
        self._lib.rp_step(self._h, cycles)

    def _port(self, name: str):
        try:
            return self.ports[name], self._port_vars[name]
        except KeyError:
            raise RampartError(f"no port {name!r} (ports: {', '.join(self.ports)})") from None

    def poke(self, name: str, value: int):
        port, var = self._port(name)
        if port.direction != "in":
            raise RampartError(f"port {name!r} is an output")
        self._lib.rp_poke(self._h, var, 0, _to_words(int(value), port.width))

    def peek(self, name: str) -> int:
        port, var = self._port(name)
        buf = (ctypes.c_uint32 * _words(port.width))()
        self._lib.rp_peek(self._h, var, 0, buf)
        return _from_words(buf)

    def run_stimulus(self, inputs: "dict[str, np.ndarray] | tuple[np.ndarray, np.ndarray]",
                     outputs: list[str]) -> dict[str, np.ndarray]:
        """Per cycle: apply ``inputs[name][cycle]``, record ``outputs`` (settled, before the edge), clock once.

        Inputs of up to 32 bits are numpy arrays of unsigned values; wider ones are arrays of shape (cycles, words).
        ``inputs`` may also be the output of :meth:`pack_inputs` (port ids and the per-cycle words), so a stimulus
        replayed many times is packed once. Outputs come back as uint32 arrays of shape (cycles, words).
        """
        in_ids, in_buf = inputs if isinstance(inputs, tuple) else self.pack_inputs(inputs)
        in_ids, in_buf = self._check_packed(in_ids, in_buf)
        out_ids, out_words = self.output_ids(outputs)
        cycles = in_buf.shape[0]
        out_buf = np.empty((cycles, out_words), dtype=np.uint32)
        self._lib.rp_run_stimulus(self._h, cycles, len(in_ids), in_ids.ctypes.data, in_buf.ctypes.data,
                                  len(out_ids), out_ids.ctypes.data, out_buf.ctypes.data)
        result, col = {}, 0
        for name in outputs:
            n = _words(self._port(name)[0].width)
            result[name] = out_buf[:, col:col + n]
            col += n
        return result

    def probe_ids(self, wires: dict[str, int]) -> dict[str, int]:
        """Variable ids of those internal wires (flat name -> width) that are public in this library (see
        :func:`sim.build.probe_library`) with the expected width."""
        found = {}
        for name, width in wires.items():
            entry = self._vars.get((_STATE_SCOPE, name))
            if entry is not None and entry[1] == width and entry[2] == 1:
                found[name] = entry[0]
        return found

    def run_probes(self, inputs: tuple[np.ndarray, np.ndarray], probes: dict[str, int],
                   widths: dict[str, int]) -> dict[str, np.ndarray]:
        """Like :meth:`run_stimulus`, recording public internal variables (``probes``: name -> id from
        :meth:`probe_ids`, ``widths``: name -> bits) instead of ports: uint32 arrays of shape (cycles, words)."""
        in_ids, in_buf = self._check_packed(*inputs)
        names = list(probes)
        out_ids = np.array([probes[n] for n in names], dtype=np.int32)
        counts = [_words(widths[n]) for n in names]
        cycles = in_buf.shape[0]
        out_buf = np.empty((cycles, max(sum(counts), 1)), dtype=np.uint32)
        self._lib.rp_run_stimulus(self._h, cycles, len(in_ids), in_ids.ctypes.data, in_buf.ctypes.data,
                                  len(out_ids), out_ids.ctypes.data, out_buf.ctypes.data)
        result, col = {}, 0
        for name, n in zip(names, counts, strict=True):
            result[name] = out_buf[:, col:col + n]
            col += n
        return result

    def _check_packed(self, in_ids, in_buf) -> tuple[np.ndarray, np.ndarray]:
        """Packed input as the C loop reads it: input port ids (int32) and C-contiguous uint32 words, one row per
        cycle with as many words as those ports have."""
        in_ids = np.ascontiguousarray(in_ids, dtype=np.int32)
        in_buf = np.ascontiguousarray(in_buf, dtype=np.uint32)
        inputs = {self._port_vars[p.name]: p for p in self.build.ports if p.direction == "in"}
        if not set(in_ids.tolist()) <= set(inputs):
            raise RampartError("packed stimulus names a variable that is not an input port")
        words = sum(_words(inputs[int(i)].width) for i in in_ids)
        if in_buf.ndim != 2 or in_buf.shape[1] != words:
            raise RampartError(f"packed stimulus has shape {in_buf.shape}; its ports need (cycles, {words})")
        return in_ids, in_buf

    # --- memories ----------------------------------------------------------------------------------------------

    def element_index(self, hier_name: str) -> int:
        for i, element in enumerate(self.build.state):
            if element.hier_name == hier_name:
                return i
        raise RampartError(f"no state element {hier_name!r}")

    def _state_var(self, element: int) -> int:
        e = self.build.state[element]
        return self._lookup(_STATE_SCOPE, e.var, e.width, e.depth)[0]

    def load_memory(self, element: int, values, first: int = 0):
        e = self.build.state[element]
        values = np.asarray(values, dtype=np.uint64)
        if first + len(values) > e.depth:
            raise RampartError(f"{e.hier_name} has {e.depth} words; cannot load {len(values)} at {first}")
        words = np.zeros((len(values), _words(e.width)), dtype=np.uint32)
        words[:, 0] = values & 0xFFFFFFFF
        if words.shape[1] > 1:
            words[:, 1] = values >> 32
        self._lib.rp_load_mem(self._h, self._state_var(element), first, len(values),
                              np.ascontiguousarray(words).ctypes.data_as(_u32p))

    def read_memory(self, element: int, first: int = 0, count: int | None = None) -> np.ndarray:
        e = self.build.state[element]
        count = e.depth - first if count is None else count
        words = np.zeros((count, _words(e.width)), dtype=np.uint32)
        self._lib.rp_read_mem(self._h, self._state_var(element), first, count, words.ctypes.data_as(_u32p))
        values = words[:, 0].astype(np.uint64)
        if words.shape[1] > 1:
            values |= words[:, 1].astype(np.uint64) << np.uint64(32)
        return values

    # --- host memory (simulation scaffolding outside the model; see HOST_MEMORY_PORTS) ----------------------------

    def _host_range(self, first: int, count: int):
        if not self.host_memory_words:
            raise RampartError("this design has no host memory")
        if first < 0 or count < 0 or first + count > self.host_memory_words:
            raise RampartError(f"the host memory has {self.host_memory_words} words; no {count} at {first}")

    def host_load(self, first: int, values) -> None:
        """Write 64-bit ``values`` into the host memory from word ``first``."""
        values = np.ascontiguousarray(values, dtype=np.uint64)
        self._host_range(first, len(values))
        self._lib.rp_hostmem_load(self._h, first, len(values), values.ctypes.data)

    def host_read(self, first: int, count: int) -> np.ndarray:
        """``count`` 64-bit words of the host memory from word ``first``."""
        self._host_range(first, count)
        out = np.zeros(count, dtype=np.uint64)
        self._lib.rp_hostmem_read(self._h, first, count, out.ctypes.data)
        return out

    def host_clear(self) -> None:
        """Zero the whole host memory."""
        self._host_range(0, 0)
        self._lib.rp_hostmem_clear(self._h)

    def _no_host_memory(self, what: str) -> None:
        if self.host_memory_words:
            raise RampartError(f"{what} does not cover the host memory (not model state); use a build without one")

    # --- state access for fault injection ---------------------------------------------------------------------

    @property
    def num_sites(self) -> int:
        return int(self.site_offsets[-1])

    def site(self, index: int) -> tuple[int, int, int]:
        """Global site index -> (state element, word, bit)."""
        if not 0 <= index < self.num_sites:
            raise RampartError(f"site {index} out of range (0..{self.num_sites - 1})")
        element = int(np.searchsorted(self.site_offsets, index, side="right") - 1)
        word, bit = divmod(index - int(self.site_offsets[element]), self.build.state[element].width)
        return element, word, bit

    def site_index(self, name: str, word: int, bit: int) -> int:
        """(state element, word, bit) -> global site index; ``name`` is the element's hierarchical name or a
        dotted suffix of exactly one element's name (the inverse of :meth:`site`)."""
        state = self.build.state
        found = [i for i, e in enumerate(state) if e.hier_name == name] or \
                [i for i, e in enumerate(state) if e.hier_name.endswith("." + name)]
        if len(found) != 1:
            raise RampartError(f"state element {name!r}: {len(found)} matches, need exactly one")
        element = state[found[0]]
        if not (0 <= word < element.depth and 0 <= bit < element.width):
            raise RampartError(f"{element.hier_name}: no bit {bit} of word {word} ({element.depth} x {element.width})")
        return int(self.site_offsets[found[0]]) + word * element.width + bit

    def flip(self, index: int) -> int:
        return self.flip_bit(*self.site(index))

    def flip_bit(self, element: int, word: int, bit: int) -> int:
        return self._lib.rp_flip(self._h, element, word, bit)

    def flip_upset(self, index: int, upset: int = 1):
        """Flip ``upset`` adjacent bits of the word holding global site ``index``: its bit and the ones above it,
        wrapping at the word's edge (``min(upset, width)`` distinct bits), one :meth:`flip_bit` each."""
        element, word, bit = self.site(index)
        width = self.build.state[element].width
        for b in sorted({(bit + j) % width for j in range(upset)}):
            self.flip_bit(element, word, b)

    def get_bit(self, element: int, word: int, bit: int) -> int:
        return self._lib.rp_get_bit(self._h, element, word, bit)

    def set_bit(self, element: int, word: int, bit: int, value: int):
        """Force one state bit (a no-op when it already holds ``value``)."""
        if self.get_bit(element, word, bit) != (value & 1):
            self.flip_bit(element, word, bit)

    def digest_bit_offset(self, index: int) -> int:
        element, word, bit = self.site(index)
        return int(self._digest_offsets[element] + word * self._ent_bytes[element]) * 8 + bit

    def state_bytes(self) -> bytes:
        buf = ctypes.create_string_buffer(self._state_bytes)
        self._lib.rp_state_dump(self._h, buf)
        return buf.raw

    def digest(self) -> int:
        return int(self._lib.rp_state_digest(self._h))

    def snapshot(self) -> bytes:
        self._no_host_memory("a snapshot")
        buf = ctypes.create_string_buffer(self._snapshot_size)
        self._lib.rp_snapshot(self._h, buf)
        return buf.raw

    def restore(self, snapshot: bytes):
        if len(snapshot) != self._snapshot_size:
            raise RampartError("snapshot does not belong to this design build")
        self._lib.rp_restore(self._h, snapshot)

    # --- batched fault injection (C inner loops; see rp_golden_run_ex / rp_inject_batch_ex in harness.cpp) -------

    @property
    def snapshot_size(self) -> int:
        return self._snapshot_size

    def pack_inputs(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(port variable ids as int32, per-cycle input words as a C-contiguous (cycles, words) uint32 array)."""
        names = list(inputs)
        cycles = len(next(iter(inputs.values()))) if inputs else 0
        widths = [_words(self._port(name)[0].width) for name in names]
        for name in names:
            if self._port(name)[0].direction != "in":
                raise RampartError(f"port {name!r} is an output")
        buf = np.empty((cycles, sum(widths)), dtype=np.uint32)
        col = 0
        for name, n in zip(names, widths, strict=True):
            buf[:, col:col + n] = np.asarray(inputs[name]).reshape(cycles, n)
            col += n
        return np.array([self._port(n)[1] for n in names], dtype=np.int32), buf

    def output_ids(self, outputs: list[str]) -> tuple[np.ndarray, int]:
        """(port variable ids as int32, words per cycle) of the observed outputs."""
        return (np.array([self._port(n)[1] for n in outputs], dtype=np.int32),
                sum(_words(self._port(n)[0].width) for n in outputs))

    def mem_regions(self, regions) -> "MemRegions":
        """Resolve observed memory regions ``(state element hier name or index, first word, count)``."""
        elems, first, count, nbytes = [], [], [], 0
        for element, lo, n in regions:
            index = self.element_index(element) if isinstance(element, str) else int(element)
            e = self.build.state[index]
            if not (0 <= lo and 0 < n and lo + n <= e.depth):
                raise RampartError(f"{e.hier_name} has {e.depth} words; no region of {n} at {lo}")
            elems.append(index)
            first.append(lo)
            count.append(n)
            nbytes += int(self._ent_bytes[index]) * n
        return MemRegions(np.array(elems, dtype=np.int32), np.array(first, dtype=np.uint32),
                          np.array(count, dtype=np.uint32), nbytes)

    def golden_run_ex(self, in_ids: np.ndarray, in_buf: np.ndarray, out_ids: np.ndarray, out_words: int,
                      interval: int, mem: "MemRegions | None" = None, detect_ids: np.ndarray | None = None,
                      complete_id: int = -1) -> "GoldenTrace":
        """Replay the whole stimulus from the current state with checkpoints every ``interval`` cycles: outputs as
        (cycles, out_words) uint32, snapshots as (n, snapshot_size) uint8, checkpoint digests (cycles // interval + 1
        entries, uint64) and the final digest (:class:`GoldenTrace`); also the end-of-run copy of the observed
        memory regions ``mem``, the first cycle a detection port (``detect_ids``) is non-zero (``None``: never; the
        end state at ``cycles`` counts as a cycle) and whether the completion port ``complete_id`` (-1: none) is high
        at the end."""
        self._no_host_memory("a golden run's checkpoints")
        cycles = in_buf.shape[0]
        if interval < 1:
            raise RampartError(f"checkpoint interval must be >= 1, not {interval}")
        outputs = np.zeros((cycles, out_words), dtype=np.uint32)
        snapshots = np.zeros((int(self._lib.rp_checkpoint_count(cycles, interval)), self._snapshot_size),
                             dtype=np.uint8)
        digests = np.zeros(cycles // interval + 1, dtype=np.uint64)
        final = ctypes.c_uint64()
        first_detect = ctypes.c_uint64()
        completed = ctypes.c_int()
        mem = mem or MemRegions.none()
        golden_mem = np.zeros(max(mem.nbytes, 1), dtype=np.uint8)
        detect_ids = np.zeros(0, dtype=np.int32) if detect_ids is None else np.asarray(detect_ids, dtype=np.int32)
        in_buf = np.ascontiguousarray(in_buf, dtype=np.uint32)
        self._lib.rp_golden_run_ex(self._h, cycles, len(in_ids), in_ids.ctypes.data, in_buf.ctypes.data,
                                   len(out_ids), out_ids.ctypes.data, outputs.ctypes.data, interval,
                                   snapshots.ctypes.data, digests.ctypes.data, ctypes.byref(final), len(mem.elems),
                                   mem.elems.ctypes.data, mem.first.ctypes.data, mem.count.ctypes.data,
                                   golden_mem.ctypes.data, len(detect_ids), detect_ids.ctypes.data, int(complete_id),
                                   ctypes.byref(first_detect), ctypes.byref(completed))
        detect = None if first_detect.value == 2**64 - 1 else int(first_detect.value)
        return GoldenTrace(outputs, snapshots, digests, int(final.value), golden_mem[:mem.nbytes], detect,
                           bool(completed.value))

    def inject_batch(self, in_ids: np.ndarray, in_buf: np.ndarray, out_ids: np.ndarray, golden_out: np.ndarray,
                     observe: np.ndarray | None, interval: int, snapshots: np.ndarray, digests: np.ndarray,
                     final_digest: int, elements, words, bits, cycles, *, mem: "MemRegions | None" = None,
                     golden_mem: np.ndarray | None = None, detect_ids: np.ndarray | None = None,
                     correct_ids: np.ndarray | None = None, complete_id: int = -1, watchdog: int = 0,
                     upset=1, region_outcomes=None, region_at=None, top1=None,
                     flags: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Inject bit flips (state element, word, bit, cycle); returns (outcome codes uint8, cycles run).

        ``upset`` (an int, or one per fault, 1..255) is the number of adjacent bits of the word flipped per fault,
        from ``bit`` upwards, wrapping at the word's edge (``rp_inject_batch_ex``): ``min(upset, width)`` distinct
        bits. Optional: observed memory regions ``mem`` compared with ``golden_mem`` at the end (SDC), detection
        ports ``detect_ids`` (non-zero on any cycle: DETECTED_UNRECOVERABLE), correction ports ``correct_ids``
        (non-zero on any cycle of a run that ends MASKED or LATENT: DETECTED_RECOVERABLE), and a completion port
        ``complete_id``: the run then ends once it is high at or after the workload's last cycle, HANG if not by
        ``watchdog`` cycles.
        Per region of ``mem`` (see ``rp_inject_batch_ex``): ``region_outcomes`` the outcome of a difference (default
        SDC), ``region_at`` the cycle it is checked at (``>= cycles``: at the end, the default), ``top1`` a
        classifier's scores in it as (byte offset, count), count 0 for none; ``flags`` (uint8, one per fault)
        receives bit 0 = the deciding region's top-1 changed.
        """
        self._no_host_memory("fault injection")
        elements = np.ascontiguousarray(elements, dtype=np.int32)
        words = np.ascontiguousarray(words, dtype=np.uint32)
        bits = np.ascontiguousarray(bits, dtype=np.uint32)
        cycles = np.ascontiguousarray(cycles, dtype=np.uint64)
        n = len(elements)
        if not len(words) == len(bits) == len(cycles) == n:
            raise RampartError("fault arrays differ in length")
        upset = np.broadcast_to(np.asarray(upset, dtype=np.int64), (n,))
        if n and (upset.min() < 1 or upset.max() > 255):
            raise RampartError(f"a multi-bit upset flips 1 to 255 bits, not {int(upset.min())}..{int(upset.max())}")
        upset = np.ascontiguousarray(upset, dtype=np.uint8)
        outcomes = np.zeros(n, dtype=np.uint8)
        simulated = np.zeros(n, dtype=np.uint64)
        if observe is not None:
            observe = np.ascontiguousarray(observe, dtype=np.uint8)
        mem = mem or MemRegions.none()
        if mem.nbytes:
            if golden_mem is None or len(golden_mem) != mem.nbytes:
                raise RampartError("observed memory regions need their golden copy")
            golden_mem = np.ascontiguousarray(golden_mem, dtype=np.uint8)
        else:
            golden_mem = np.zeros(1, dtype=np.uint8)
        detect_ids = np.zeros(0, dtype=np.int32) if detect_ids is None else np.asarray(detect_ids, dtype=np.int32)
        correct_ids = (np.zeros(0, dtype=np.int32) if correct_ids is None
                       else np.ascontiguousarray(correct_ids, dtype=np.int32))
        n_mem = len(mem.elems)
        region_outcomes = (None if region_outcomes is None
                           else np.ascontiguousarray(np.broadcast_to(region_outcomes, (n_mem,)), dtype=np.uint8))
        region_at = None if region_at is None else np.ascontiguousarray(np.broadcast_to(region_at, (n_mem,)),
                                                                        dtype=np.uint64)
        top1_off = top1_len = None
        if top1 is not None:
            pairs = np.asarray(top1, dtype=np.uint32).reshape(n_mem, 2)
            top1_off, top1_len = np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])
        if flags is not None and (flags.dtype != np.uint8 or len(flags) != n or not flags.flags.c_contiguous):
            raise RampartError("flags must be a contiguous uint8 array, one per fault")

        def ptr(a):
            return None if a is None else a.ctypes.data
        rc = self._lib.rp_inject_batch_ex(
            self._h, in_buf.shape[0], len(in_ids), in_ids.ctypes.data, in_buf.ctypes.data, len(out_ids),
            out_ids.ctypes.data, golden_out.ctypes.data, None if observe is None else observe.ctypes.data, interval,
            snapshots.ctypes.data, digests.ctypes.data, final_digest, len(mem.elems), mem.elems.ctypes.data,
            mem.first.ctypes.data, mem.count.ctypes.data, golden_mem.ctypes.data, ptr(region_outcomes),
            ptr(region_at), ptr(top1_off), ptr(top1_len), len(detect_ids),
            detect_ids.ctypes.data, len(correct_ids), correct_ids.ctypes.data, int(complete_id), int(watchdog), n,
            elements.ctypes.data, words.ctypes.data, bits.ctypes.data, upset.ctypes.data, cycles.ctypes.data,
            outcomes.ctypes.data, simulated.ctypes.data, ptr(flags))
        if rc < 0:
            i = -rc - 1
            raise RampartError(f"fault {i} (element {elements[i]}, word {words[i]}, bit {bits[i]}, cycle {cycles[i]}) "
                               "is outside the state map or the workload")
        return outcomes, simulated


@dataclass(frozen=True)
class MemRegions:
    """Observed memory regions resolved for the C loops: state element index, first word and count per region."""

    elems: np.ndarray
    first: np.ndarray
    count: np.ndarray
    nbytes: int           # storage bytes of all regions together (the golden copy's size)

    @staticmethod
    def none() -> "MemRegions":
        return MemRegions(np.zeros(0, np.int32), np.zeros(0, np.uint32), np.zeros(0, np.uint32), 0)


@dataclass(frozen=True)
class GoldenTrace:
    """What :meth:`NativeSim.golden_run_ex` records."""

    outputs: np.ndarray
    snapshots: np.ndarray
    digests: np.ndarray
    final_digest: int
    memory: np.ndarray          # the observed regions' storage bytes at the end
    first_detect: int | None    # first cycle a detection port was non-zero
    completed: bool             # the completion port is high at the end (True without one)
