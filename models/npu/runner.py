"""Run a .tflite model on the simulated NPU: Vela compile -> external-memory image -> Verilated NPU -> OFM.

:func:`run_on_npu` is the whole flow; the host helpers below it (:func:`load_bytes`, :func:`read_bytes`,
:func:`layout`, :func:`load_image`, :func:`start`, :func:`wait_done`) are what a driver does through
:class:`sim.harness.NativeSim` and are shared with the RTL testbenches.

Cycle accounting. The ``cycles`` counter (busy cycles of the run) is sampled every ``chunk`` cycles while the model
is stepped natively; whenever ``kernel_count`` (kernel kicks issued) has advanced, the kicks issued in that chunk are
stamped with the sampled counter. A kick's cycles are the interval to the next kick (the last one: to ``done``), so
per-kick and per-layer figures have a resolution of ``chunk`` cycles, and up to two kernel ops overlap in the hardware
(``max_outstanding_kernels``); the total is exact. Kicks are grouped into layers (consecutive kicks of one operator
kind reading the same IFM) and paired with Vela's per-layer estimate when the counts agree.

MAC utilisation = useful MACs (from the LiteRT graph's layer shapes: CONV_2D ``OH*OW*OC*KH*KW*IC``, DEPTHWISE
``OH*OW*C*KH*KW``, FULLY_CONNECTED ``units*in``) / (cycles x the configuration's MACs per cycle).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from base import RampartError

from . import cmdstream as cs
from . import vela
from .tflite_builder import model_bytes

EXT_MEMORY = "top.extmem.storage"
#: Cycles stepped between samples of the counters (the resolution of per-kick / per-layer cycles).
DEFAULT_CHUNK = 32
#: Graph operators whose MACs count as useful work.
MAC_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")

__all__ = ["DEFAULT_CHUNK", "EXT_MEMORY", "KickCycles", "LayerCycles", "NpuRun", "load_bytes", "read_bytes", "layout",
           "load_image", "start", "wait_done", "graph_macs", "compile_cached", "model_digest", "run_on_npu"]


# --- host helpers (a driver's view of the NPU through NativeSim) -------------------------------------------------

def load_bytes(sim, addr: int, payload: bytes, element: str = EXT_MEMORY) -> None:
    """Write ``payload`` at byte address ``addr`` (8-aligned) of the 64-bit-word memory ``element``."""
    if addr % 8:
        raise ValueError(f"address {addr:#x} is not 8-byte aligned")
    padded = bytes(payload) + bytes(-len(payload) % 8)
    sim.load_memory(sim.element_index(element), np.frombuffer(padded, dtype="<u8"), addr // 8)


def read_bytes(sim, addr: int, n: int, element: str = EXT_MEMORY) -> bytes:
    """``n`` bytes at byte address ``addr`` of the 64-bit-word memory ``element``."""
    first, last = addr // 8, (addr + n + 7) // 8
    words = sim.read_memory(sim.element_index(element), first, last - first)
    return words.astype("<u8").tobytes()[addr - 8 * first:][:n]


def layout(art: vela.VelaArtifact, ext_mem_bytes: int) -> tuple[int, list[int]]:
    """(command payload address, basep[8]): the driver payload at 0, then weights, then the scratch arena
    (each 4 KiB aligned). Raises RampartError if it does not fit external memory."""
    weight_addr = -(-len(art.cmd_data) // 4096) * 4096
    scratch_addr = weight_addr + -(-len(art.weight_data) // 4096) * 4096
    if scratch_addr + art.scratch_size > ext_mem_bytes:
        raise RampartError(f"the model needs {scratch_addr + art.scratch_size:,} bytes of external memory; the NPU "
                           f"model has {ext_mem_bytes:,}")
    basep = [0] * 8
    basep[art.weight_region] = weight_addr
    basep[art.scratch_region] = scratch_addr
    return 0, basep


def load_image(sim, art: vela.VelaArtifact, x: np.ndarray, ext_mem_bytes: int) -> tuple[int, list[int]]:
    """Reset ``sim``, clear external memory and load the payload, weights and the (single) input ``x``."""
    cmd_addr, basep = layout(art, ext_mem_bytes)
    sim.reset()
    sim.load_memory(sim.element_index(EXT_MEMORY), np.zeros(ext_mem_bytes // 8, dtype=np.uint64))
    load_bytes(sim, cmd_addr, art.cmd_data)
    load_bytes(sim, basep[art.weight_region], art.weight_data)
    (inp,) = art.inputs
    load_bytes(sim, basep[inp.region] + inp.offset, np.asarray(x).astype(np.int8).tobytes())
    return cmd_addr, basep


def start(sim, cmd_base: int, cmd_len: int, basep=()) -> None:
    """Set the host registers and pulse ``start`` (one cycle is stepped)."""
    for i in range(8):
        sim.poke(f"basep__{i}", basep[i] if i < len(basep) else 0)
    sim.poke("cmd_base", cmd_base)
    sim.poke("cmd_len", cmd_len)
    sim.poke("start", 1)
    sim.step(1)
    sim.poke("start", 0)


def wait_done(sim, max_cycles: int, chunk: int = 16, on_chunk=None) -> int | None:
    """Step in ``chunk``-cycle pieces until ``done``; returns the cycles stepped, or None past ``max_cycles``.
    ``on_chunk()`` is called after every chunk (e.g. to sample counters)."""
    stepped = 1
    while not sim.peek("done"):
        if stepped >= max_cycles:
            return None
        sim.step(chunk)
        stepped += chunk
        if on_chunk is not None:
            on_chunk()
    return stepped


# --- results -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KickCycles:
    """One kernel op of the command stream."""

    index: int          # 0-based kick number
    op: str             # "CONV", "DEPTHWISE", ...
    issued_at: int      # value of the ``cycles`` counter when the kick was seen (resolution: ``chunk``)
    cycles: int         # issued_at of the next kick (or the run's total) minus this one's


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

    def mac_utilisation(self, macs_per_cycle: int) -> float | None:
        if self.macs is None or self.cycles <= 0:
            return None
        return self.macs / (self.cycles * macs_per_cycle)


@dataclass(frozen=True, eq=False)
class NpuRun:
    """The result of :func:`run_on_npu`."""

    config: str
    output: np.ndarray                  # int8, LiteRT's output shape
    input: np.ndarray                   # the input that was run (int8, LiteRT's input shape)
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

    @property
    def mac_utilisation(self) -> float:
        return self.macs / (self.cycles * self.macs_per_cycle) if self.cycles else 0.0

    @property
    def ok(self) -> bool:
        return not (self.error or self.ext_fault or self.timed_out)


# --- model analysis ------------------------------------------------------------------------------------------------

def _interpreter(data: bytes):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        it = Interpreter(model_content=data, num_threads=1, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
    except (ValueError, RuntimeError) as e:
        first = str(e).splitlines()[0] if str(e).strip() else type(e).__name__
        raise RampartError(f"not a valid .tflite model: {first}") from e
    return it


def graph_macs(model) -> list[tuple[str, str, int]]:
    """(op, output tensor name, useful MACs) of every CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED, in graph order."""
    it = _interpreter(model_bytes(model))
    shapes = {t["index"]: tuple(int(s) for s in t["shape"]) for t in it.get_tensor_details()}
    names = {t["index"]: t["name"] for t in it.get_tensor_details()}
    out = []
    for op in it._get_ops_details():  # private, but LiteRT has no public op listing
        name = op["op_name"]
        if name not in MAC_OPS:
            continue
        ofm, weights = shapes[int(op["outputs"][0])], shapes[int(op["inputs"][1])]
        n_out = int(np.prod(ofm))
        if name == "CONV_2D":          # weights OHWI
            macs = n_out * int(np.prod(weights[1:]))
        elif name == "DEPTHWISE_CONV_2D":  # weights 1HWC
            macs = n_out * weights[1] * weights[2]
        else:                          # FULLY_CONNECTED: weights OI
            macs = n_out * weights[-1]
        out.append((name, names[int(op["outputs"][0])], int(macs)))
    return out


def _group_layers(kernel_kicks: list[cs.Kick]) -> list[list[int]]:
    """Consecutive kicks of the same operator kind that read the same IFM belong to one layer."""
    groups: list[list[int]] = []
    key_prev = None
    for i, k in enumerate(kernel_kicks):
        key = (k.name, k.reg("IFM_REGION", 0), k.reg("IFM_BASE0", 0))
        if key != key_prev:
            groups.append([])
        groups[-1].append(i)
        key_prev = key
    return groups


def _vela_layers(perf: vela.PerfEstimate | None) -> list[vela.LayerPerf]:
    """Vela's NPU layers; rows of one output tensor (an op and its fused activation) merged into the first."""
    out: list[vela.LayerPerf] = []
    for lp in (perf.layers if perf else ()):
        if lp.target != "NPU":
            continue
        if out and out[-1].name == lp.name:
            prev = out[-1]
            out[-1] = replace(prev, op_cycles=prev.op_cycles + lp.op_cycles, npu_cycles=prev.npu_cycles + lp.npu_cycles,
                              mac_count=prev.mac_count + lp.mac_count)
        else:
            out.append(lp)
    return out


# --- the flow ------------------------------------------------------------------------------------------------------

def _vela_cache() -> Path:
    from base import cache_root

    return cache_root() / "vela"


def compile_cached(model, config: str = "u55-128") -> vela.VelaArtifact:
    """Vela-compile ``model`` for preset ``config`` (cached by model hash); errors -> RampartError (one line)."""
    accelerator = f"ethos-{config}"
    if accelerator not in vela.ACCELERATORS:
        raise RampartError(f"unknown NPU config {config!r}; one of: "
                           + ", ".join(a.removeprefix("ethos-") for a in vela.ACCELERATORS))
    try:
        return vela.compile_model(model_bytes(model), accelerator, cache_dir=_vela_cache())
    except vela.CpuFallbackError as e:
        ops = ", ".join(f"{o.op} ('{o.output}'" + (f": {o.reasons[0]}" if o.reasons else "") + ")"
                        for o in e.cpu_ops)
        raise RampartError(f"Vela leaves {len(e.cpu_ops)} operator(s) on the CPU for {accelerator}: {ops}") from e
    except vela.VelaCompileError as e:
        raise RampartError(str(e).splitlines()[0]) from e


def _check_input(x, shape: tuple[int, ...]) -> np.ndarray:
    x = np.asarray(x)
    if x.shape != shape and (len(shape) < 1 or shape[0] != 1 or x.shape != shape[1:]):
        raise RampartError(f"input shape {x.shape} does not match the model's input {shape}")
    if x.dtype.kind not in "iu":
        raise RampartError(f"input must be an int8 array, got dtype {x.dtype}")
    if x.size and (x.min() < -128 or x.max() > 127):
        raise RampartError("input values must be in the int8 range -128..127")
    return x.astype(np.int8).reshape(shape)


def run_on_npu(model, config: str = "u55-128", input: np.ndarray | None = None, *, trace: str | Path | None = None,
               seed: int = 0, chunk: int = DEFAULT_CHUNK, max_cycles: int | None = None, check: bool = True) -> NpuRun:
    """Compile ``model`` (.tflite bytes, path or TfliteModel) with Vela for ``config`` and run it on the simulated NPU.

    ``input``: an int8 array of the model's input shape (the batch axis may be left out); None: uniformly random,
    from ``seed``. ``trace``: write an FST waveform there (builds the tracing variant). ``max_cycles``: watchdog
    (default: 50x Vela's estimate, at least 200,000). ``check``: raise RampartError when the NPU reports an error
    or the watchdog fires (else the NpuRun carries the status). Raises RampartError for unsupported models.
    """
    from rtl.npu.compute import ComputeError
    from rtl.npu.config import PRESETS
    from rtl.npu.controller import ErrorCode
    from sim.build import build
    from sim.harness import NativeSim

    if config not in PRESETS:
        raise RampartError(f"unknown NPU config {config!r}; one of: {', '.join(PRESETS)}")
    cfg = PRESETS[config]
    try:
        data = model_bytes(model)
    except OSError as e:
        raise RampartError(f"cannot read the model: {e}") from e
    it = _interpreter(data)
    ins, outs = it.get_input_details(), it.get_output_details()
    if len(ins) != 1 or len(outs) != 1:
        raise RampartError(f"only single-input, single-output models are supported ({len(ins)} inputs, "
                           f"{len(outs)} outputs)")
    in_shape = tuple(int(s) for s in ins[0]["shape"])
    out_shape = tuple(int(s) for s in outs[0]["shape"])
    if ins[0]["dtype"] != np.int8 or outs[0]["dtype"] != np.int8:
        raise RampartError("only int8 inputs and outputs are supported")
    if input is None:
        x = np.random.default_rng(seed).integers(-128, 128, size=in_shape, dtype=np.int8)
    else:
        x = _check_input(input, in_shape)
    mac_layers = graph_macs(data)

    art = compile_cached(data, config)
    (inp,), (out,) = art.inputs, art.outputs
    if inp.nbytes != x.size or out.nbytes != int(np.prod(out_shape)):
        raise RampartError("Vela's input/output tensors do not match the model's (only int8 tensors are supported)")
    kernel_kicks = [k for k in cs.kicks(art.commands()) if k.name in cs.KERNEL_OPS]
    if max_cycles is None:
        estimate = art.perf.total_cycles if art.perf is not None else 0
        max_cycles = max(200_000, 50 * estimate)

    result = build("npu", config, trace=bool(trace))
    stamps: list[int] = []
    with NativeSim(result, trace=trace) as sim:
        cmd_addr, basep = load_image(sim, art, x, cfg.ext_mem_bytes)
        start(sim, cmd_addr + art.header.stream_offset, 4 * len(art.command_stream), basep)

        def sample():
            issued = sim.peek("kernel_count")
            if issued > len(stamps):
                now = sim.peek("cycles")
                stamps.extend([now] * (issued - len(stamps)))

        sample()
        stepped = wait_done(sim, max_cycles, chunk, sample)
        timed_out = stepped is None
        status = dict(error=sim.peek("error"), error_code=sim.peek("error_code"),
                      compute_error=sim.peek("compute_error"), ext_fault=sim.peek("ext_fault"))
        total, dma_cycles = sim.peek("cycles"), sim.peek("dma_cycles")
        error_offset = sim.peek("error_offset")
        ofm = np.frombuffer(read_bytes(sim, basep[out.region] + out.offset, out.nbytes), dtype=np.int8)

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
    for i, k in enumerate(kernel_kicks[:len(stamps)]):
        nxt = stamps[i + 1] if i + 1 < len(stamps) else total
        kicks.append(KickCycles(i, k.name.removeprefix("NPU_OP_"), stamps[i], max(nxt - stamps[i], 0)))

    layers: list[LayerCycles] = []
    npu_layers = _vela_layers(art.perf)
    groups = _group_layers(kernel_kicks)
    if len(kicks) == len(kernel_kicks) and groups:
        paired = len(groups) == len(npu_layers)
        macs_paired = len(groups) == len(mac_layers)
        for g, idx in enumerate(groups):
            cycles = sum(kicks[i].cycles for i in idx)
            vl = npu_layers[g] if paired else None
            name = vl.name if vl else (mac_layers[g][1] if macs_paired else f"layer {g}")
            layers.append(LayerCycles(
                name=name, op=kicks[idx[0]].op, kicks=tuple(idx), cycles=cycles,
                macs=mac_layers[g][2] if macs_paired else None,
                vela_cycles=vl.npu_cycles if vl else None, vela_mac_util=vl.mac_util_percent if vl else None))

    return NpuRun(config=config, output=ofm.reshape(out_shape).copy(), input=x, cycles=int(total),
                  dma_cycles=int(dma_cycles), kicks=tuple(kicks), layers=tuple(layers),
                  macs=sum(m for _, _, m in mac_layers), macs_per_cycle=cfg.macs, vela=art.perf,
                  timed_out=timed_out, **{k: int(v) for k, v in status.items()})


def model_digest(model) -> str:
    """Short content hash of a model (what the Vela cache is keyed by, with the compile options)."""
    return hashlib.sha256(model_bytes(model)).hexdigest()[:16]
