"""Workloads for fault injection: what a design runs while faults are injected, and which outputs are checked.

A :class:`Workload` is a design (registry name and config), per-cycle input port values (the format of
:meth:`sim.harness.NativeSim.run_stimulus`: one array per input port, ``cycles`` long), the observed output ports and,
optionally, a per-cycle ``observe`` mask: outputs are compared with the golden run only on cycles where it is true
(e.g. the cycles on which a result is read out), which is how a real consumer of the outputs would see them.

Workloads of memory-mapped accelerators (the NPU) add, all optional:

* ``memory``: an initial memory image, ``(state element hier name, first word, values)`` entries loaded into a
  fresh model before cycle 0 of the golden run and of every reference run (the golden run's snapshots carry it);
* ``regions``: observed memory regions ``(state element hier name, first word, count)``, compared with the golden
  run at the end of the run (a difference is SDC), in addition to or instead of per-cycle ``outputs``;
* ``complete``: a completion output port (e.g. ``done``). The golden run must have it high at its end (cycle
  ``cycles``); a faulty run ends at the first cycle ``>= cycles`` where it is high (the last cycle's inputs held
  from ``cycles`` on) and is a HANG if that has not happened by ``watchdog`` (default ``2 * cycles``);
* ``detect``: detection output ports (e.g. ``error``): non-zero on any cycle of a faulty run is
  DETECTED_UNRECOVERABLE (they must stay zero in the golden run);
* ``exclude_blocks``: simulation scaffolding (e.g. the NPU's ``extmem`` memory model): blocks that are not part of
  the chip, never sampled for faults (they stay in the state and its digest). :func:`register_workload` records
  them per design, so :mod:`faultinj.plan` leaves them out of every campaign of that design
  (:func:`scaffolding_blocks`).

Built-in workloads are registered by name (:func:`get_workload`, :func:`make_workload`); each takes
``(config, seed, cycles)``.
"""
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from base import RampartError

__all__ = ["Workload", "WORKLOADS", "register_workload", "get_workload", "make_workload", "scaffolding_blocks",
           "mac_array_matmul", "npu_conv", "npu_cnn", "npu_network"]


@dataclass(frozen=True, eq=False)
class Workload:
    """A fixed stimulus for ``design``/``config`` with the outputs fault injection compares."""

    name: str
    design: str
    config: Any
    inputs: dict[str, np.ndarray]
    outputs: tuple[str, ...]
    observe: np.ndarray | None = None      # bool per cycle; None = compare outputs on every cycle
    params: dict = field(default_factory=dict)
    memory: tuple = ()                     # (state element hier name, first word, values) loaded before cycle 0
    regions: tuple = ()                    # (state element hier name, first word, count) compared at the end
    complete: str | None = None            # completion output port; None: the run ends at ``cycles``
    detect: tuple[str, ...] = ()           # detection output ports (non-zero: DETECTED_UNRECOVERABLE)
    correct: tuple[str, ...] = ()          # correction ports (an ECC's ``corrected``: DETECTED_RECOVERABLE)
    watchdog: int | None = None            # with ``complete``: HANG if not complete by then (None: 2 * cycles)
    exclude_blocks: tuple[str, ...] = ()   # simulation scaffolding, never sampled

    def __post_init__(self):
        lengths = {len(v) for v in self.inputs.values()}
        if len(lengths) != 1:
            raise RampartError(f"workload {self.name}: input arrays differ in length ({sorted(lengths)})")
        if not self.outputs and not self.regions:
            raise RampartError(f"workload {self.name}: no observed outputs or memory regions")
        if self.observe is not None and len(self.observe) != self.cycles:
            raise RampartError(f"workload {self.name}: observe mask has {len(self.observe)} cycles, not {self.cycles}")
        if self.watchdog is not None and (self.complete is None or self.watchdog < self.cycles):
            raise RampartError(f"workload {self.name}: a watchdog needs a completion port and >= {self.cycles} cycles")
        object.__setattr__(self, "memory", tuple((str(n), int(f), np.asarray(v, dtype=np.uint64))
                                                 for n, f, v in self.memory))
        object.__setattr__(self, "regions", tuple((str(n), int(f), int(c)) for n, f, c in self.regions))
        object.__setattr__(self, "detect", tuple(self.detect))
        object.__setattr__(self, "exclude_blocks", tuple(self.exclude_blocks))

    @property
    def watchdog_cycles(self) -> int:
        """Cycles after which an incomplete faulty run is a HANG (``cycles`` without a completion port)."""
        if self.complete is None:
            return self.cycles
        return self.watchdog if self.watchdog is not None else 2 * self.cycles

    @property
    def cycles(self) -> int:
        return len(next(iter(self.inputs.values())))

    @property
    def key(self) -> str:
        """Content hash of the stimulus, outputs and mask: equal keys replay identically on the same build."""
        digest = hashlib.sha256()
        digest.update(repr((self.design, repr(self.config), self.outputs)).encode())
        for name in sorted(self.inputs):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(self.inputs[name], dtype=np.uint64).tobytes())
        if self.observe is not None:
            digest.update(np.asarray(self.observe, dtype=np.uint8).tobytes())
        if self.memory or self.regions or self.complete or self.detect or self.exclude_blocks:
            digest.update(repr((self.regions, self.complete, self.detect, self.watchdog_cycles,
                                self.exclude_blocks)).encode())
            for name, first, values in self.memory:
                digest.update(repr((name, first, len(values))).encode())
                digest.update(np.ascontiguousarray(values, dtype=np.uint64).tobytes())
        return digest.hexdigest()


WORKLOADS: dict[str, tuple[str, Callable[..., Workload], str]] = {}
_SCAFFOLDING: dict[str, set[str]] = {}


def register_workload(name: str, design: str, make: Callable[..., Workload], summary: str,
                      exclude_blocks: tuple[str, ...] = ()):
    """Register a workload factory; ``exclude_blocks`` (simulation scaffolding of ``design``) are recorded for the
    design, see :func:`scaffolding_blocks`."""
    WORKLOADS[name] = (design, make, summary)
    if exclude_blocks:
        _SCAFFOLDING.setdefault(design, set()).update(exclude_blocks)


def scaffolding_blocks(design: str) -> tuple[str, ...]:
    """Blocks of ``design`` that are simulation scaffolding (declared by its registered workloads), never sampled."""
    return tuple(sorted(_SCAFFOLDING.get(design, ())))


def get_workload(name: str) -> tuple[str, Callable[..., Workload], str]:
    """(design, factory, summary) of a registered workload."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise RampartError(f"no workload {name!r} (known: {', '.join(sorted(WORKLOADS))})") from None


def make_workload(name: str, config: Any = None, seed: int = 0, cycles: int | None = None) -> Workload:
    """Instantiate the registered workload ``name``; ``config`` may be a config object, preset name or None."""
    from rtl.designs import get_design

    design, make, _ = get_workload(name)
    entry = get_design(design)
    if not isinstance(config, entry.config_type):
        config = entry.config(config)
    kwargs = {"seed": seed} if cycles is None else {"seed": seed, "cycles": cycles}
    return make(config, **kwargs)


# --------------------------------------------------------------------------------------------------------------------
# MAC array: tiled matrix products

def mac_array_matmul(config, seed: int = 0, cycles: int = 4000) -> Workload:
    """Back-to-back int8 matrix products ``C = A @ W`` (A: rows x k, W: k x cols, k random in 4..32 per tile).

    Per tile: ``clear`` with the first operands, skewed feed (``a_in[r]`` at cycle s is ``A[r, s-r]``, ``w_in[c]``
    is ``W[s-c, c]``, zero outside) for ``k + rows + cols - 2`` enabled cycles, so PE (r, c) accumulates
    ``A[r, :] @ W[:, c]`` and the pipelines drain to zero; then ``en`` low and ``rsel`` walks the rows, each row
    appearing on ``out`` one cycle later. Outputs are observed only on those readout cycles. The stimulus is cut at
    exactly ``cycles`` (the last tile may be partial). ``tiles`` (in ``params``) lists (start, A, W) for checking.
    """
    rows, cols = config.rows, config.cols
    if cycles < 1:
        raise RampartError(f"cycles must be >= 1, not {cycles}")
    rng = np.random.default_rng(seed)
    a = np.zeros((cycles, rows), dtype=np.int64)
    w = np.zeros((cycles, cols), dtype=np.int64)
    en = np.zeros(cycles, dtype=np.uint64)
    clear = np.zeros(cycles, dtype=np.uint64)
    rsel = np.zeros(cycles, dtype=np.uint64)
    observe = np.zeros(cycles, dtype=bool)
    tiles = []
    start = 0
    while start < cycles:
        k = int(rng.integers(4, 33))
        A = rng.integers(-128, 128, size=(rows, k))
        W = rng.integers(-128, 128, size=(k, cols))
        compute = k + rows + cols - 2
        end = min(start + compute, cycles)
        en[start:end] = 1
        clear[start] = 1
        for s in range(end - start):
            for r in range(rows):
                if 0 <= s - r < k:
                    a[start + s, r] = A[r, s - r]
            for c in range(cols):
                if 0 <= s - c < k:
                    w[start + s, c] = W[s - c, c]
        tiles.append((start, A, W))
        for r in range(rows + 1):
            cyc = start + compute + r
            if cyc >= cycles:
                break
            rsel[cyc] = min(r, rows - 1)
            observe[cyc] = r > 0
        start += compute + rows + 1
    inputs = {f"a_in__{r}": (a[:, r] & 0xFF).astype(np.uint64) for r in range(rows)}
    inputs.update({f"w_in__{c}": (w[:, c] & 0xFF).astype(np.uint64) for c in range(cols)})
    inputs.update({"en": en, "clear": clear, "rsel": rsel})
    return Workload("mac_array_matmul", "mac_array", config, inputs, ("out",), observe,
                    {"seed": seed, "cycles": cycles, "tiles": tiles})


register_workload("mac_array_matmul", "mac_array", mac_array_matmul,
                  "back-to-back int8 tiled matrix products with row readout (outputs observed at readout)")


# --------------------------------------------------------------------------------------------------------------------
# NPU: Vela-compiled networks from external memory

NPU_EXTMEM = "top.extmem.storage"
#: Cycles the golden run goes on after ``done`` rises (the end state then has ``done`` high).
NPU_DONE_MARGIN = 4
_NPU_CACHE: dict = {}


def _npu_conv_model(seed: int):
    from models.npu import tflite_builder as tb

    return tb.single_layer(tb.Conv2D(8), (8, 8, 8), seed=seed)


def _npu_cnn_model(seed: int):
    from models.npu import tflite_builder as tb

    layers = (tb.Conv2D(16, (3, 3), (2, 2), activation="RELU"), tb.DepthwiseConv2D((3, 3), activation="RELU"),
              tb.Conv2D(8, (1, 1)))
    return tb.build_model(tb.ModelSpec((16, 16, 8), layers, seed))


def _npu_artifact(config, model):
    """The Vela artifact of ``model`` for ``config``'s accelerator (Vela output cached)."""
    from base import cache_root
    from models.npu import vela

    return vela.compile_model(model, f"ethos-u55-{config.macs}", cache_dir=cache_root() / "vela")


def _bytes_to_words(payload: bytes) -> np.ndarray:
    padded = bytes(payload) + bytes(-len(payload) % 8)
    return np.frombuffer(padded, dtype="<u8").astype(np.uint64)


def npu_conv(config, seed: int = 0, cycles: int | None = None) -> Workload:
    """A Vela-compiled 3x3 int8 convolution 8x8x8 -> 8 (``tflite_builder.single_layer(Conv2D(8), (8, 8, 8))``,
    weights from ``seed``) on a seeded random input, run once by the NPU from external memory.

    Memory image (``top.extmem.storage``, 64-bit words): the COP1 payload at 0, the weights and the scratch region
    (input and OFM) each at the next 4 KiB boundary. Stimulus: ``basep__0..7``, ``cmd_base`` and ``cmd_len`` held
    constant, ``start`` pulsed at cycle 1. Observed: the OFM words at the end; ``error`` is a detection port, ``done``
    the completion port. ``cycles`` defaults to the cycle ``done`` first rises plus :data:`NPU_DONE_MARGIN` (found by
    a plain run of the build, cached per process). ``params``: ``model``, ``artifact``, ``input`` (int8 NHWC),
    ``ofm`` (byte address, bytes), ``done_cycle``.
    """
    return npu_network("npu_conv", config, _npu_conv_model(seed), seed, cycles)


def npu_cnn(config, seed: int = 0, cycles: int | None = None) -> Workload:
    """A Vela-compiled 3-layer int8 CNN on a 16x16x8 input: 3x3 stride-2 conv to 16 channels + ReLU, 3x3 depthwise
    + ReLU, 1x1 conv to 8 channels (weights from ``seed``); memory image, stimulus and observation as
    :func:`npu_conv` (the OFM is the 8x8x8 output; the intermediate tensors live in the scratch region)."""
    return npu_network("npu_cnn", config, _npu_cnn_model(seed), seed, cycles)


def npu_network(name: str, config, model, seed: int = 0, cycles: int | None = None) -> Workload:
    """The NPU running the Vela-compiled ``model`` (a ``tflite_builder.TfliteModel``) once from external memory, on
    a seeded random input; see :func:`npu_conv` for the memory image, stimulus, observation and ``params``."""
    if cycles is not None and cycles < 3:
        raise RampartError(f"cycles must be >= 3, not {cycles}")
    art = _npu_artifact(config, model)
    (inp,), (out,) = art.inputs, art.outputs
    if not inp.region == out.region == art.scratch_region:
        raise RampartError(f"{name}: the network's input and output are not in the scratch region")
    weight_addr = -(-len(art.cmd_data) // 4096) * 4096
    scratch_addr = weight_addr + -(-len(art.weight_data) // 4096) * 4096
    if scratch_addr + art.scratch_size > config.ext_mem_bytes:
        raise RampartError(f"{name}: the network does not fit the configured external memory")
    basep = [0] * 8
    basep[art.weight_region] = weight_addr
    basep[art.scratch_region] = scratch_addr
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=inp.numel, dtype=np.int8)
    in_addr, ofm_addr = scratch_addr + inp.offset, scratch_addr + out.offset
    if in_addr % 8:
        raise RampartError(f"{name}: the input is not 8-byte aligned")
    memory = ((NPU_EXTMEM, 0, _bytes_to_words(art.cmd_data)),
              (NPU_EXTMEM, weight_addr // 8, _bytes_to_words(art.weight_data)),
              (NPU_EXTMEM, in_addr // 8, _bytes_to_words(x.tobytes())))
    first, last = ofm_addr // 8, (ofm_addr + out.numel + 7) // 8
    regions = ((NPU_EXTMEM, first, last - first),)

    def stimulus(n: int) -> dict[str, np.ndarray]:
        inputs = {f"basep__{i}": np.full(n, basep[i], dtype=np.uint64) for i in range(8)}
        inputs["cmd_base"] = np.full(n, art.header.stream_offset, dtype=np.uint64)
        inputs["cmd_len"] = np.full(n, 4 * len(art.command_stream), dtype=np.uint64)
        start = np.zeros(n, dtype=np.uint64)
        start[1] = 1
        inputs["start"] = start
        return inputs

    key = (name, repr(config), seed)
    if key not in _NPU_CACHE:
        _NPU_CACHE[key] = _npu_done_cycle(name, config, memory, stimulus)
    done_cycle = _NPU_CACHE[key]
    if cycles is None:
        cycles = done_cycle + NPU_DONE_MARGIN
    elif cycles <= done_cycle:
        raise RampartError(f"{name} needs more than {done_cycle} cycles (done rises at {done_cycle}), not {cycles}")
    params = {"seed": seed, "model": model, "artifact": art, "input": x.reshape(inp.shape[-3:]),
              "ofm": (ofm_addr, out.numel), "done_cycle": done_cycle, "basep": basep}
    return Workload(name, "npu", config, stimulus(cycles), (), None, params, memory=memory, regions=regions,
                    complete="done", detect=("error",), exclude_blocks=("extmem",))


def _npu_done_cycle(name: str, config, memory, stimulus, limit: int = 1 << 20) -> int:
    """First cycle at which ``done`` is high (sampled before that cycle's edge) in a plain run of the workload."""
    from rtl.designs import get_design
    from sim.build import build
    from sim.harness import NativeSim

    get_design("npu")
    with NativeSim(build("npu", config)) as sim:
        for element, first, values in memory:
            sim.load_memory(sim.element_index(element), values, first)
        n, chunk = 0, 4096
        while n < limit:
            inputs = stimulus(n + chunk)
            trace = sim.run_stimulus({k: v[n:] for k, v in inputs.items()}, ["done", "error"])
            if trace["error"].any():
                code = sim.peek("error_code")
                raise RampartError(f"{name}: the NPU reported an error (code {code}) in the fault-free run")
            high = np.flatnonzero(trace["done"][:, 0])
            if len(high):
                return n + int(high[0])
            n += chunk
    raise RampartError(f"{name}: the NPU did not finish within {limit} cycles")


register_workload("npu_conv", "npu", npu_conv,
                  "Vela-compiled 3x3 conv 8x8x8 -> 8 from external memory; OFM compared at done, error detected",
                  exclude_blocks=("extmem",))
register_workload("npu_cnn", "npu", npu_cnn,
                  "Vela-compiled 3-layer CNN 16x16x8 (3x3 conv s2 -> 3x3 depthwise -> 1x1 conv) from external "
                  "memory; OFM compared at done, error detected", exclude_blocks=("extmem",))
