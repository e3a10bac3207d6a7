"""Host driver of the Ethos-U55-class NPU (:mod:`rtl.npu`): Vela output in external memory, start, wait, read back.

The NPU's one external-memory layout lives here (:class:`ExtMemLayout`, :func:`layout`) and serves every user:
``rampart run npu`` (:func:`run_on_npu`), the fault-injection workloads (:mod:`faultinj.workloads.npu` takes its
memory image and stimulus from it) and the testbenches. The host helpers (:func:`load_network`, :func:`start`,
:func:`wait_done`, :func:`load_bytes`, :func:`read_bytes`) talk to the NPU through a
:class:`~drivers.transport.SimDevice`, the only transport the NPU has.

Cycle accounting of :func:`run_on_npu`. The ``cycles`` counter (busy cycles of the run) is sampled every ``chunk``
cycles while the model is stepped natively; the kicks issued (``kernel_count``) and finished (``kernel_count`` minus
the controller's outstanding-op count, :data:`OUTSTANDING`, read through the simulator: a host has no register for
it) in that chunk are stamped with the sampled counter. Up to two kernel ops are in flight
(``max_outstanding_kernels``: the next op's weights stream in while the current one computes), so a kick's cycles are
counted from the previous kick's completion to its own (the first from the start, the last to ``done``): the kicks'
cycles add up to the run's, and a layer's are the cycles it was the oldest op in flight. Per-kick and per-layer
figures have a resolution of ``chunk`` cycles; the total is exact. Kicks are grouped into layers and paired with
Vela's per-layer estimate by :mod:`models.npu.graph`.

PMU (:mod:`rtl.npu.pmu`): :func:`pmu_setup` programs the performance counters before the run (the cycle counter
from the first NPU_ACTIVE cycle to the next NPU_IDLE one, the four event counters on :data:`PMU_EVENTS`), and
:func:`pmu_counters` reads them; :func:`run_on_npu` reads them with every ``cycles`` sample, so each kick and layer
also carries its counter deltas and the run its totals.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from base import RampartError
from drivers.transport import HOST_MEMORY, SimDevice
from models.npu import cmdstream as cs
from models.npu import vela
from models.npu.graph import graph_macs, group_kicks, interpreter, vela_layers
from models.npu.tflite_builder import model_bytes

#: The external-memory model's storage (64-bit words) in the ``npu`` design's state map.
EXT_MEMORY = "top.extmem.storage"
#: Cycles stepped between samples of the counters (the resolution of per-kick / per-layer cycles).
DEFAULT_CHUNK = 32
#: Alignment of the weights and of the scratch arena in external memory.
REGION_ALIGN = 4096

#: The controller's count of kernel ops kicked and not finished yet (state element of the ``npu`` design).
OUTSTANDING = "top.controller.kernels"

#: The events :func:`run_on_npu` counts on the PMU's four event counters (``pmu_event_type`` names).
PMU_EVENTS = ("MAC_ACTIVE", "AXI0_RD_DATA_BEAT_RECEIVED", "AXI0_WR_DATA_BEAT_WRITTEN", "CC_STALLED_ON_BLOCKDEP")

__all__ = ["DEFAULT_CHUNK", "EXT_MEMORY", "HOST_EXT_MEM_KIB", "OUTSTANDING", "PMU_EVENTS", "REGION_ALIGN",
           "ExtMemLayout", "KickCycles", "LayerCycles", "NpuRun", "ext_memory", "input_list", "layout", "load_bytes",
           "load_network", "memory_needed", "model_inputs", "pmu_counters", "pmu_read", "pmu_setup", "pmu_write",
           "read_bytes", "read_input_file", "read_model_file", "run_config", "run_on_npu", "start", "wait_done"]


# --- the external-memory layout ------------------------------------------------------------------------------------

def _align(n: int) -> int:
    return -(-n // REGION_ALIGN) * REGION_ALIGN


@dataclass(frozen=True)
class ExtMemLayout:
    """Where a Vela artifact lives in the NPU's external memory, and the host registers that point at it.

    The COP1 driver payload at ``cmd_addr`` (0), the weights at the next 4 KiB boundary, the scratch arena (input,
    intermediate tensors, output) at the next; ``basep[r]`` is the base address of the command stream's memory
    region ``r`` (the weight and scratch regions; the others 0). Made by :func:`layout`.
    """

    art: vela.VelaArtifact
    weight_addr: int
    scratch_addr: int
    basep: tuple[int, ...]
    cmd_addr: int = 0

    @property
    def cmd_base(self) -> int:
        """Byte address of the command stream (inside the payload)."""
        return self.cmd_addr + self.art.header.stream_offset

    @property
    def cmd_len(self) -> int:
        """Length of the command stream in bytes."""
        return 4 * len(self.art.command_stream)

    def address(self, tensor: vela.TensorInfo) -> int:
        """Byte address of one of the artifact's input or output tensors."""
        return self.basep[tensor.region] + tensor.offset

    def registers(self) -> dict[str, int]:
        """The host registers (input ports) a run of the stream needs: ``basep__0..7``, ``cmd_base``, ``cmd_len``."""
        regs = {f"basep__{i}": self.basep[i] for i in range(8)}
        regs["cmd_base"] = self.cmd_base
        regs["cmd_len"] = self.cmd_len
        return regs

    def image(self, x) -> tuple[tuple[int, bytes], ...]:
        """(byte address, bytes) of the payload, the weights and the inputs as int8: ``x`` is one array (a
        single-input model) or one array per graph input, in the artifact's input order. Every address is 8-byte
        aligned (the memory has 64-bit words), else a RampartError."""
        xs = input_list(x)
        if len(xs) != len(self.art.inputs):
            raise RampartError(f"the model has {len(self.art.inputs)} input(s); got {len(xs)} array(s)")
        segments = [(self.cmd_addr, self.art.cmd_data), (self.weight_addr, self.art.weight_data)]
        whats = ["command payload", "weights"]
        for i, (inp, xi) in enumerate(zip(self.art.inputs, xs, strict=True)):
            segments.append((self.address(inp), np.asarray(xi).astype(np.int8).tobytes()))
            whats.append("input" if len(xs) == 1 else f"input {i}")
        for (addr, _), what in zip(segments, whats, strict=True):
            if addr % 8:
                raise RampartError(f"the {what} at {addr:#x} is not 8-byte aligned")
        return tuple(segments)

    def stimulus(self, cycles: int, start_at: int = 1) -> dict[str, np.ndarray]:
        """Per-cycle inputs of one run from reset: :meth:`registers` held for ``cycles`` cycles, ``start`` high in
        cycle ``start_at`` only (never when ``start_at >= cycles``)."""
        inputs = {port: np.full(cycles, value, dtype=np.uint64) for port, value in self.registers().items()}
        pulse = np.zeros(cycles, dtype=np.uint64)
        if start_at < cycles:   # (a run cut before a later start, e.g. the first chunk of a two-inference run)
            pulse[start_at] = 1
        inputs["start"] = pulse
        return inputs


def read_model_file(path) -> bytes:
    """The bytes of the .tflite file ``path``: a missing, unreadable or empty file is one RampartError line."""
    path = Path(path)
    if not path.is_file():
        raise RampartError(f"no such model file: {path}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RampartError(f"cannot read model {path}: {e.strerror or e}") from None
    if not data:
        raise RampartError(f"model file {path} is empty, not a .tflite model")
    return data


def read_input_file(path, label: str = "input") -> np.ndarray:
    """The one int8 array in the .npy file ``path`` (the NPU runs int8 models only: another dtype is refused, not
    cast); ``label`` names it in the error line (e.g. ``--input``)."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise RampartError(f"cannot read {label} {path}: {str(e).splitlines()[0] if str(e) else 'not a .npy'}") \
            from None
    if not isinstance(x, np.ndarray):
        raise RampartError(f"{label} {path} holds several arrays (.npz); give one int8 array in a .npy file")
    if x.dtype != np.int8:
        raise RampartError(f"{label} {path} holds {x.dtype} values; the model's input is int8")
    return x


def input_list(x) -> list[np.ndarray]:
    """``x`` as a list of input arrays: one array (a single-input model) or a sequence of arrays."""
    if isinstance(x, np.ndarray):
        return [x]
    if isinstance(x, list | tuple):
        return [np.asarray(xi) for xi in x]
    return [np.asarray(x)]


def memory_needed(art: vela.VelaArtifact) -> int:
    """Bytes of external memory the :class:`ExtMemLayout` of ``art`` spans (payload, weights, scratch arena)."""
    return _align(len(art.cmd_data)) + _align(len(art.weight_data)) + art.scratch_size


def layout(art: vela.VelaArtifact, ext_mem_bytes: int) -> ExtMemLayout:
    """The :class:`ExtMemLayout` of ``art``; a RampartError if it does not fit ``ext_mem_bytes``."""
    weight_addr = _align(len(art.cmd_data))
    scratch_addr = weight_addr + _align(len(art.weight_data))
    if memory_needed(art) > ext_mem_bytes:
        raise RampartError(f"the model needs {memory_needed(art):,} bytes of external memory; the NPU "
                           f"model has {ext_mem_bytes:,}")
    basep = [0] * 8
    basep[art.weight_region] = weight_addr
    basep[art.scratch_region] = scratch_addr
    return ExtMemLayout(art, weight_addr, scratch_addr, tuple(basep))


# --- host helpers --------------------------------------------------------------------------------------------------

def ext_memory(dev: SimDevice) -> str:
    """The name of ``dev``'s external memory: :data:`EXT_MEMORY`, or the harness's host memory when the NPU was
    built with ``ext_host_memory``."""
    return HOST_MEMORY if dev.sim.host_memory_words else EXT_MEMORY


def load_bytes(dev: SimDevice, addr: int, payload: bytes, element: str | None = None) -> None:
    """Write ``payload`` at byte address ``addr`` (8-aligned) of external memory (or of memory ``element``)."""
    dev.load_bytes(element or ext_memory(dev), addr, payload)


def read_bytes(dev: SimDevice, addr: int, n: int, element: str | None = None) -> bytes:
    """``n`` bytes at byte address ``addr`` of external memory (or of memory ``element``)."""
    return dev.read_bytes(element or ext_memory(dev), addr, n)


def load_network(dev: SimDevice, art: vela.VelaArtifact, x, ext_mem_bytes: int) -> ExtMemLayout:
    """Reset the NPU, clear external memory and load ``art`` and its input(s) ``x`` (one array, or one per graph
    input, see :meth:`ExtMemLayout.image`); returns the layout."""
    lay = layout(art, ext_mem_bytes)
    memory = ext_memory(dev)
    dev.reset()
    dev.clear(memory)
    for addr, payload in lay.image(x):
        dev.load_bytes(memory, addr, payload)
    return lay


def start(dev: SimDevice, cmd_base: int, cmd_len: int, basep=()) -> None:
    """Set the host registers and pulse ``start`` (one cycle is stepped)."""
    for i in range(8):
        dev.poke(f"basep__{i}", basep[i] if i < len(basep) else 0)
    dev.poke("cmd_base", cmd_base)
    dev.poke("cmd_len", cmd_len)
    dev.poke("start", 1)
    dev.step(1)
    dev.poke("start", 0)


def wait_done(dev: SimDevice, max_cycles: int, chunk: int = 16, on_chunk=None) -> int | None:
    """Step in ``chunk``-cycle pieces until ``done``; returns the cycles stepped, or None past ``max_cycles``.
    ``on_chunk()`` is called after every chunk (e.g. to sample counters)."""
    stepped = 1
    while not dev.peek("done"):
        if stepped >= max_cycles:
            return None
        dev.step(chunk)
        stepped += chunk
        if on_chunk is not None:
            on_chunk()
    return stepped


def pmu_write(dev: SimDevice, reg: str, value: int) -> None:
    """Write PMU register ``reg`` (a name of :data:`rtl.npu.pmu.PMU_REGS`, e.g. ``"PMCR"``); one cycle is stepped."""
    from rtl.npu.pmu import PMU_REGS
    dev.poke("pmu_addr", PMU_REGS[reg])
    dev.poke("pmu_wdata", value)
    dev.poke("pmu_we", 1)
    dev.step(1)
    dev.poke("pmu_we", 0)


def pmu_read(dev: SimDevice, reg: str) -> int:
    """Read PMU register ``reg`` (no cycle is stepped: the read port is combinational)."""
    from rtl.npu.pmu import PMU_REGS
    dev.poke("pmu_addr", PMU_REGS[reg])
    return dev.peek("pmu_rdata")


def pmu_setup(dev: SimDevice, events=PMU_EVENTS) -> None:
    """Program the PMU for a run: event counter ``i`` counts ``events[i]`` (``pmu_event_type`` names, at most 4), the
    cycle counter counts NPU_ACTIVE cycles (start event NPU_ACTIVE, stop event NPU_IDLE); all counters cleared and
    enabled. Steps a few cycles (do it before :func:`start`)."""
    from rtl.npu.pmu import NUM_EVENT_COUNTERS, PmuEvent
    if len(events) > NUM_EVENT_COUNTERS:
        raise RampartError(f"the PMU has {NUM_EVENT_COUNTERS} event counters, not {len(events)}")
    for i, name in enumerate(events):
        pmu_write(dev, f"PMEVTYPER{i}", PmuEvent[name])
    pmu_write(dev, "PMCCNTR_CFG", PmuEvent.NPU_ACTIVE | PmuEvent.NPU_IDLE << 16)
    pmu_write(dev, "PMCNTENSET", (1 << len(events)) - 1 | 1 << 31)
    pmu_write(dev, "PMCR", 0b111)    # cnt_en, event_cnt_rst, cycle_cnt_rst


def pmu_counters(dev: SimDevice, events=PMU_EVENTS) -> dict[str, int]:
    """The cycle counter (``"CYCLES"``) and the event counters by event name, as programmed by :func:`pmu_setup`."""
    counters = {"CYCLES": pmu_read(dev, "PMCCNTR_LO") | pmu_read(dev, "PMCCNTR_HI") << 32}
    for i, name in enumerate(events):
        counters[name] = pmu_read(dev, f"PMEVCNTR{i}")
    return counters


# --- results -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KickCycles:
    """One kernel op of the command stream."""

    index: int          # 0-based kick number
    op: str             # "CONV", "DEPTHWISE", ...
    issued_at: int      # value of the ``cycles`` counter when the kick was seen (resolution: ``chunk``)
    done_at: int        # ... when it was seen finished (the run's total if it never finished)
    cycles: int         # done_at minus the previous kick's (the first: from 0; the last: to the run's total)
    pmu: dict[str, int] | None = None   # the PMU counters' increase over the same interval


@dataclass(frozen=True)
class LayerCycles:
    """One NPU layer: its kicks, measured cycles, useful MACs and Vela's estimate (None when not paired)."""

    name: str
    op: str
    kicks: tuple[int, ...]
    cycles: int
    macs: int | None
    vela_cycles: int | None
    vela_mac_util: float | None   # percent, Vela's own
    pmu: dict[str, int] | None = None   # the PMU counters' increase over the layer's kicks

    def mac_utilisation(self, macs_per_cycle: int) -> float | None:
        if self.macs is None or self.cycles <= 0:
            return None
        return self.macs / (self.cycles * macs_per_cycle)


@dataclass(frozen=True, eq=False)
class NpuRun:
    """The result of :func:`run_on_npu`."""

    config: str
    outputs: tuple[np.ndarray, ...]     # int8, one per graph output, LiteRT's output order and shapes
    inputs: tuple[np.ndarray, ...]      # the inputs that were run (int8, LiteRT's input order and shapes)
    cycles: int                         # NPU busy cycles (the ``cycles`` counter at ``done``)
    dma_cycles: int
    kicks: tuple[KickCycles, ...]
    layers: tuple[LayerCycles, ...]     # empty when kicks could not be grouped into Vela's layers
    macs: int                           # useful MACs of the whole graph
    macs_per_cycle: int
    vela: vela.PerfEstimate | None      # Vela's own estimate (``VelaArtifact.perf``)
    error: int                          # controller ``error`` (0 unless run with check=False)
    error_code: int                     # rtl.npu.controller.ErrorCode value
    compute_error: int                  # rtl.npu.compute.ComputeError value
    ext_fault: int
    timed_out: bool
    ext_mem_bytes: int = 0              # external memory of the NPU build that ran (see :func:`run_on_npu`)
    pmu: dict[str, int] | None = None   # the PMU counters at the end (:func:`pmu_counters`)

    @property
    def output(self) -> np.ndarray:
        """The first (for most models: the only) output."""
        return self.outputs[0]

    @property
    def input(self) -> np.ndarray:
        """The first (for most models: the only) input."""
        return self.inputs[0]

    @property
    def mac_utilisation(self) -> float:
        return self.macs / (self.cycles * self.macs_per_cycle) if self.cycles else 0.0

    @property
    def ok(self) -> bool:
        return not (self.error or self.ext_fault or self.timed_out)


# --- the flow ------------------------------------------------------------------------------------------------------

#: External memory (KiB) of the host-memory NPU build that :func:`run_on_npu` uses for a model too big for the
#: config's own memory (``NpuConfig.ext_host_memory``): 16 MiB, grown to the next power of two above that.
HOST_EXT_MEM_KIB = 16 * 1024


def _check_input(x, shape: tuple[int, ...], what: str = "input") -> np.ndarray:
    x = np.asarray(x)
    if x.shape != shape and (len(shape) < 1 or shape[0] != 1 or x.shape != shape[1:]):
        raise RampartError(f"{what} shape {x.shape} does not match the model's input {shape}")
    if x.dtype.kind not in "iu":
        raise RampartError(f"{what} must be an int8 array, got dtype {x.dtype}")
    if x.size and (x.min() < -128 or x.max() > 127):
        raise RampartError(f"{what} values must be in the int8 range -128..127")
    return x.astype(np.int8).reshape(shape)


def model_inputs(in_shapes: list[tuple[int, ...]], input=None, seed: int = 0) -> tuple[np.ndarray, ...]:
    """The int8 inputs of one run, checked against the model's ``in_shapes`` (graph order): ``input`` is None
    (uniformly random from ``seed``, drawn in input order), one array (a single-input model) or one array per input."""
    if input is None:
        rng = np.random.default_rng(seed)
        return tuple(rng.integers(-128, 128, size=shape, dtype=np.int8) for shape in in_shapes)
    xs = input_list(input)
    if len(xs) != len(in_shapes):
        raise RampartError(f"the model has {len(in_shapes)} input(s) (in order: "
                           f"{', '.join('x'.join(map(str, s)) for s in in_shapes)}); got {len(xs)} array(s)")
    return tuple(_check_input(x, shape, "input" if len(xs) == 1 else f"input {i}")
                 for i, (x, shape) in enumerate(zip(xs, in_shapes, strict=True)))


def run_config(cfg, art: vela.VelaArtifact):
    """``cfg``, or the same NPU with a host memory (:data:`HOST_EXT_MEM_KIB` or more) when ``art`` does not fit its
    external memory. Cycle timing does not depend on the memory's size or on where its words are kept."""
    from dataclasses import replace

    need = memory_needed(art)
    if need <= cfg.ext_mem_bytes or cfg.ext_host_memory:
        return cfg
    kib = HOST_EXT_MEM_KIB
    while kib * 1024 < need:
        kib *= 2
    if kib > 64 * 1024:
        raise RampartError(f"the model needs {need:,} bytes of external memory; at most 64 MiB can be simulated")
    return replace(cfg, ext_host_memory=True, ext_mem_kib=kib)


def _tensor_details(details) -> list[tuple[int, ...]]:
    if any(d["dtype"] != np.int8 for d in details):
        raise RampartError("only int8 inputs and outputs are supported (the model has "
                           + ", ".join(np.dtype(d["dtype"]).name for d in details) + ")")
    return [tuple(int(s) for s in d["shape"]) for d in details]


def run_on_npu(model, config="u55-128", input=None, *, trace: str | Path | None = None,
               seed: int = 0, chunk: int = DEFAULT_CHUNK, max_cycles: int | None = None, check: bool = True,
               pmu_events: tuple[str, ...] = PMU_EVENTS) -> NpuRun:
    """Compile ``model`` (.tflite bytes, path or TfliteModel) with Vela for ``config`` (a preset name or an
    :class:`~rtl.npu.config.NpuConfig`; Vela compiles for its MACs per cycle) and run it on the simulated NPU.

    ``input``: an int8 array of the model's input shape (the batch axis may be left out), or a list of them, one per
    graph input in the model's input order; None: uniformly random, from ``seed``. A model that does not fit the
    config's external memory runs on the same NPU with a host memory (:func:`run_config`; ``NpuRun.ext_mem_bytes``).
    ``trace``: write an FST waveform there (builds the tracing variant). ``max_cycles``: watchdog (default: 50x Vela's
    estimate, at least 200,000). ``check``: raise RampartError when the NPU reports an error or the watchdog fires
    (else the NpuRun carries the status). ``pmu_events``: what the PMU's four event counters count
    (``pmu_event_type`` names). Raises RampartError for unsupported models.
    """
    from rtl.npu.compute import ComputeError
    from rtl.npu.config import PRESETS, NpuConfig
    from rtl.npu.controller import ErrorCode

    if isinstance(config, NpuConfig):
        cfg = config
    elif config in PRESETS:
        cfg = PRESETS[config]
    else:
        raise RampartError(f"unknown NPU config {config!r}; one of: {', '.join(PRESETS)}")
    try:
        data = model_bytes(model)
    except OSError as e:
        raise RampartError(f"cannot read the model: {e}") from e
    it = interpreter(data)
    in_shapes = _tensor_details(it.get_input_details())
    out_shapes = _tensor_details(it.get_output_details())
    xs = model_inputs(in_shapes, input, seed)
    mac_layers = graph_macs(data)

    art = vela.compile_cached(data, f"u55-{cfg.macs}")
    if (len(art.inputs) != len(xs) or len(art.outputs) != len(out_shapes)
            or [t.nbytes for t in art.inputs] != [x.size for x in xs]
            or [t.nbytes for t in art.outputs] != [int(np.prod(s)) for s in out_shapes]):
        raise RampartError("Vela's input/output tensors do not match the model's (only int8 tensors are supported)")
    run_cfg = run_config(cfg, art)
    kernel_kicks = [k for k in cs.kicks(art.commands()) if k.name in cs.KERNEL_OPS]
    if max_cycles is None:
        estimate = art.perf.total_cycles if art.perf is not None else 0
        max_cycles = max(200_000, 50 * estimate)

    stamps: list[int] = []      # issue
    finished: list[int] = []    # completion
    pmu_stamps: list[dict[str, int]] = []   # at completion
    with SimDevice.open("npu", run_cfg, trace=trace or None) as dev:
        lay = load_network(dev, art, list(xs), run_cfg.ext_mem_bytes)
        pmu_setup(dev, pmu_events)
        start(dev, lay.cmd_base, lay.cmd_len, lay.basep)
        outstanding = dev.sim.element_index(OUTSTANDING)

        def sample():
            issued = dev.peek("kernel_count")
            done = issued - int(dev.sim.read_memory(outstanding, 0, 1)[0])
            if issued > len(stamps) or done > len(finished):
                now = dev.peek("cycles")
                stamps.extend([now] * (issued - len(stamps)))
                if done > len(finished):
                    pmu_stamps.extend([pmu_counters(dev, pmu_events)] * (done - len(finished)))
                    finished.extend([now] * (done - len(finished)))

        sample()
        stepped = wait_done(dev, max_cycles, chunk, sample)
        timed_out = stepped is None
        status = dict(error=dev.peek("error"), error_code=dev.peek("error_code"),
                      compute_error=dev.peek("compute_error"), ext_fault=dev.peek("ext_fault"))
        total, dma_cycles = dev.peek("cycles"), dev.peek("dma_cycles")
        pmu_total = pmu_counters(dev, pmu_events)
        error_offset = dev.peek("error_offset")
        ofms = tuple(np.frombuffer(read_bytes(dev, lay.address(out), out.nbytes), dtype=np.int8)
                     .reshape(shape).copy() for out, shape in zip(art.outputs, out_shapes, strict=True))

    if check:
        if timed_out:
            raise RampartError(f"watchdog: the NPU did not finish within {max_cycles:,} cycles "
                               f"({len(stamps)} of {len(kernel_kicks)} kernel ops issued)")
        if status["error"] or status["ext_fault"]:
            code = status["error_code"]
            name = ErrorCode(code).name if code in ErrorCode._value2member_map_ else f"{code:#x}"
            cause = ""
            if code == ErrorCode.COMPUTE_FAULT:
                cause = f" (compute: {ComputeError(status['compute_error']).name})"
            raise RampartError(f"the NPU stopped with error {name}{cause} at command-stream offset "
                               f"{error_offset:#x}" + (" and an external-memory fault" if status["ext_fault"] else ""))

    kicks = []
    n = len(stamps)
    done_at = (finished + [int(total)] * n)[:n - 1] + [int(total)] if n else []
    pmu_done = (pmu_stamps + [pmu_total] * n)[:n - 1] + [pmu_total] if n else []
    prev, pmu_prev = 0, dict.fromkeys(pmu_total, 0)
    for i, k in enumerate(kernel_kicks[:n]):
        kicks.append(KickCycles(i, k.name.removeprefix("NPU_OP_"), stamps[i], done_at[i], max(done_at[i] - prev, 0),
                                {name: pmu_done[i][name] - pmu_prev[name] for name in pmu_total}))
        prev, pmu_prev = max(prev, done_at[i]), pmu_done[i]

    layers: list[LayerCycles] = []
    npu_layers = vela_layers(art.perf)
    groups = group_kicks(kernel_kicks)
    if len(kicks) == len(kernel_kicks) and groups:
        paired = len(groups) == len(npu_layers)
        macs_paired = len(groups) == len(mac_layers)
        macs_by_name = {name: macs for _, name, macs in mac_layers}
        for g, idx in enumerate(groups):
            cycles = sum(kicks[i].cycles for i in idx)
            vl = npu_layers[g] if paired else None
            name = vl.name if vl else (mac_layers[g][1] if macs_paired else f"layer {g}")
            layers.append(LayerCycles(
                name=name, op=kicks[idx[0]].op, kicks=tuple(idx), cycles=cycles,
                macs=mac_layers[g][2] if macs_paired else macs_by_name.get(name),
                vela_cycles=vl.npu_cycles if vl else None, vela_mac_util=vl.mac_util_percent if vl else None,
                pmu={name: sum(kicks[i].pmu[name] for i in idx) for name in pmu_total}))

    return NpuRun(config=config, outputs=ofms, inputs=xs, cycles=int(total), ext_mem_bytes=run_cfg.ext_mem_bytes,
                  dma_cycles=int(dma_cycles), kicks=tuple(kicks), layers=tuple(layers),
                  macs=sum(m for _, _, m in mac_layers), macs_per_cycle=cfg.macs, vela=art.perf,
                  timed_out=timed_out, pmu=pmu_total, **{k: int(v) for k, v in status.items()})
