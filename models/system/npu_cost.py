"""The NPU's per-operation cost model: how long each op's stages take, and how the stages overlap.

The structure follows ``rtl/npu/compute.py``; the coefficients are fitted on RTL cycle counts
(``drivers.npu_calibration``, ``python benchmarks/system_model.py``) and stored as data (:data:`COEFFS_PATH`).
Per kernel op of kind ``k`` on NPU config ``c``, at memory bandwidth ``bw`` (bytes/cycle) and latency ``lat``::

    stretch = max(1, ll[k] * lat + lb[k])          # cycles per byte through the loader's byte reader
    load = max(l0[k] + scale_bytes * stretch
               + max(weights / oub + wc[k] * weights + wb * weight_bytes, weight_bytes * stretch / 8),
               lm[k] * sw * 8 / bw)
    compute = e0[c,k] + max(beat * beats, pos[c,k] * ofm_positions)
    run  = max(compute + fill * max(1, (lat + 3) / 16) + lat + 3,  em[c,k] * ew * 8 / bw,  reads * (lat + 3) / 16,
               writes)                       # the OFM writer: a word a cycle
    DMA  = max(d0, dmem * (words + ext_writes) * 8 / bw) + dlat * lat   # into the SHRAM (a table): no writes
    stall = ds[k] * overlap(DMA, run of the last kernel op issued before its resident IFM is staged)
    vector op = v0 + vl * lat + max(vt * (steps + writes), (reads + writes) * 8 / bw, reads * (lat + 3) / inflight)

(``beat`` is 1 but for the identity pool, ``beat[c,pool]``; ``em`` and ``lm`` are 1). ``load`` is the op
loader (``rtl/npu/op_loader.py``: RECORDS, one record byte a cycle, then WEIGHTS: the wide decoder
(``rtl/npu/weight_decoder.py``, 64-bit input, one beat of up to ``oub`` (the config's OFM ublock depth) weights a
cycle into the weight buffer): one output beat a cycle plus a fitted ``wc[k]`` cycles a weight and ``wb`` a stream
byte (its parser takes one chunk-loop pass of the stream a cycle, so a denser stream decodes slower; the parser
and the output stage do not overlap, as the RTL totals of FC chains on 4 and 8 lanes show), fed
a whole 8-byte stream word a cycle by the byte reader's word mode; ``sw`` its memory words; the byte reader
reads at most ``1 / stretch`` bytes (records) or words (weights) a cycle under latency), ``run``
the engine (MAC beats and output-unit positions overlapping: ``rtl/npu/mac.py`` accumulates the next
micro-block while the previous result waits; ``ew`` its IFM reads and OFM writes; ``reads`` the IFM reads alone,
``fill`` those before the first beat can go: the first kernel rows of the first sweep); each stage is the slowest
of its compute, its traffic at the bus bandwidth, and its traffic at the rate its outstanding requests allow (the
IFM stager keeps 16 reads in flight, each a ``lat + 3`` cycle round trip: not fitted). The stages of
consecutive ops overlap as in the hardware (:func:`schedule`): one loader and one engine, each taking the ops in
stream order; two ops in flight (an op's load waits for a slot, freed when the engine finishes the op two
before it); the engine takes an op once the loader has handed it over (after CHECK and RECORDS, before
WEIGHTS: ``op_loader.py``) and it is done with the op before; the engine's traffic and the loader's weight
words go over the bus from the hand-over on; the share of the compute that needs the last weights (``tail``, from
the weight stream's order: :func:`models.system.npu_ops.op_features`) comes after the load; a kernel op after a
DMA loads only once the DMA is done. A POOL (other than the identity form) or ELEMENTWISE op runs on the vector
unit (``rtl/npu/vector_unit.py``): the compute dispatcher takes it only when no MAC-datapath op is outstanding and
takes no kick while it runs, so it is a barrier in the schedule; its walker steps a tap a cycle, reads a word per
valid tap and writes a word per OFM element (``steps``, ``reads``, ``writes``:
:func:`models.system.npu_ops.vector_features`), with ``inflight`` reads at most in flight. An inference is
``start[c] + slat * lat`` plus the schedule. Between ops (v19, from the whole networks' per-kick cycles and PMU
counters): an NPU_OP_KERNEL_WAIT ``n`` (Vela's, before the DMA of the next op's weights into a buffer an op in
flight still reads) holds the controller until at most ``n`` kernel ops are outstanding, so that DMA runs beside
the op on the engine; the arbiter serves the DMA first (``rtl/npu/top.py``), so the DMA takes its own time and that
op's IFM stager gets no bus meanwhile: the op waits ``ds[k]`` (fitted, at most 1) of the overlap, unless its IFM is
resident and staged by then.

How good this is, is measured, not assumed: BENCHMARKS.md ("SimPy system model vs RTL") has the error on
held-out layers and networks at every calibrated memory point, and which runs are still outside 5%; the
per-op features come from :mod:`models.system.npu_ops`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.system.npu_ops import GEOMETRIES, WORD_BYTES, NpuOp, op_features

__all__ = ["COEFFS_PATH", "KERNEL_KINDS", "NpuCostModel", "OpParts", "ParamLayout", "op_matrix", "op_parts",
           "IN_FLIGHT", "STALL_KINDS", "schedule", "stacked_durations", "stall_shares", "total_cycles"]

#: Where ``calibrate`` stores the fitted coefficients (read by :meth:`NpuCostModel.load`).
COEFFS_PATH = Path(__file__).with_name("npu_costs.json")
KERNEL_KINDS = ("conv", "fc", "depthwise", "pool")
ENGINE_TERMS = ("e0", "beat", "pos", "em")     # per config and kind
#: Kinds whose MAC block takes exactly one beat a cycle while its operands are there (``rtl/npu/compute.py``):
#: ``beat`` is 1, not fitted (the fit set is mostly weight-bound, so a fitted one drifts far from what the RTL does).
#: ``em`` and ``lm`` are 1 too: the engine's and the loader's words are counted exactly (8 bytes each).
DERIVED_BEAT = ("conv", "fc", "depthwise")
KIND_TERMS = ("l0", "lm", "ll", "lb", "wc")  # per kind
#: IFM reads the stager keeps in flight (``rtl/npu/ifm_stager.py``, ``outstanding``) and the cycles a read's
#: issue-to-free round trip adds to the memory latency (``rtl/npu/top.py``: queues of ``ext_latency + 3``): the
#: stager reads at most ``STAGER_OUTSTANDING`` words per ``latency + ROUND_TRIP`` cycles (not fitted).
STAGER_OUTSTANDING = 16
ROUND_TRIP = 3
_DMA = len(KERNEL_KINDS)   # kind index of a DMA in an op matrix
_VEC = _DMA + 1            # kind index of a vector-unit op
VECTOR_TERMS = ("v0", "vt", "vl")   # the vector unit's (the same unit on every config)
#: Op kinds with their own share of a DMA's cycles they wait (``ds[kind]``): how much of the DMA their buffers cover
#: depends on how they use the bus (a depthwise streams its IFM, a conv's IFM may be resident), so it is fitted.
STALL_KINDS = KERNEL_KINDS
_COLS = 16
FORM = ("two-stage pipeline v19 (KERNEL_WAIT before a DMA; a DMA stalls the op running on the engine; "
        "command parsing before each kick; vector-unit ops as barriers: a tap a cycle, "
        "a word per valid tap and element; OFM writer a word a cycle, 1/2/4-byte OFM elements; a DMA into the SHRAM "
        "(a table) reads only; "
        "wide weight decoder: ublock_d-lane output beats plus fitted cycles a weight and a stream byte, "
        "word-wide stream; MAC beats overlapping the output unit; IFM stager: 16 reads in flight, first rows before "
        "the first beat; tail of the compute after the load; bus from the hand-over, the next op's loader first; "
        "weight-stream order, exact words, shared bus)")
#: Kernel ops in flight (``max_outstanding_kernels``): an op loads once the op ``IN_FLIGHT`` before it is done.
IN_FLIGHT = 2


def op_matrix(ops, config: str) -> np.ndarray:
    """One row per op: kind index (DMA: 4, vector unit: 5), beats, weights, ofm_positions, stream_words, engine
    words, scale_bytes, tail share (:func:`models.system.npu_ops.op_features`), decoder lanes (``ublock_d``), IFM
    reads, IFM reads before the first beat, share of the compute after the whole IFM is staged, the vector unit's
    walker steps and reads in flight, the command words parsed before the op's kick, the ``n`` of a KERNEL_WAIT
    among them (-1: none)."""
    geo = GEOMETRIES[config]
    rows = []
    for op in ops:
        f = op_features(op, geo)
        kind = _VEC if op.vector else KERNEL_KINDS.index(op.kind) if op.is_kernel else _DMA
        rows.append((kind, f["beats"], f["weights"], f["ofm_positions"], f["stream_words"],
                     f["read_words"] + f["write_words"], f["scale_bytes"], f["tail"], geo.ublock_d, f["read_words"],
                     f["fill_words"], f["resident_after"], f.get("vector_steps", 0.0), f.get("vector_inflight", 1.0),
                     op.cmd_words, op.kernel_wait))
    return np.array(rows, dtype=float).reshape(-1, _COLS)


@dataclass
class ParamLayout:
    """Where each coefficient sits in the flat parameter vector the fit works on."""

    configs: list[str]

    def __post_init__(self):
        names = [f"start[{c}]" for c in self.configs] + ["slat", "d0", "dmem", "dlat", "wb", "cw", *VECTOR_TERMS]
        names += [f"ds[{k}]" for k in STALL_KINDS]
        names += [f"{t}[{c},{k}]" for c in self.configs for k in KERNEL_KINDS for t in ENGINE_TERMS
                  if t != "em" and (t != "beat" or k not in DERIVED_BEAT)]
        names += [f"{t}[{k}]" for k in KERNEL_KINDS for t in KIND_TERMS if t != "lm"]
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}
        one = len(names)     # index of the constant 1 appended to theta (a derived coefficient)
        self._engine = {c: np.array([[self.index.get(f"{t}[{c},{k}]", one) for t in ENGINE_TERMS]
                                     for k in KERNEL_KINDS]) for c in self.configs}
        self._kind = np.array([[self.index.get(f"{t}[{k}]", one) for t in KIND_TERMS] for k in KERNEL_KINDS])

    @property
    def size(self) -> int:
        return len(self.names)

    def initial(self) -> np.ndarray:
        start = {"start": 100.0, "slat": 1.0, "d0": 20.0, "dmem": 1.0, "dlat": 1.0, "e0": 50.0, "beat": 1.0,
                 "pos": 0.5, "wc": 0.05, "wb": 0.02, "l0": 20.0, "lm": 1.0, "ll": 0.03, "lb": 0.1, "em": 1.5,
                 "v0": 20.0, "vt": 1.0, "vl": 1.0, "cw": 1.0, "ds": 0.5}
        return np.array([start[n.split("[")[0]] for n in self.names])

    def bounds(self):
        # the wide decoder has at most 8 lanes (a lane bound per config is in the form)
        low = np.zeros(self.size)
        high = np.full(self.size, np.inf)
        high[[self.index[f"ds[{k}]"] for k in STALL_KINDS]] = 1.0    # a share of the DMA's cycles
        return low, high

    def to_dict(self, theta) -> dict:
        return {"form": FORM, "coefficients": {n: float(v) for n, v in zip(self.names, theta, strict=True)}}

    def from_dict(self, doc: dict) -> np.ndarray:
        if doc.get("form") != FORM:
            raise ValueError(f"coefficients of form {doc.get('form')!r}, this model is {FORM!r}: refit")
        coeffs = doc["coefficients"]
        missing = [n for n in self.names if n not in coeffs]
        if missing:
            raise KeyError(f"coefficients missing: {', '.join(missing[:5])}")
        return np.array([coeffs[n] for n in self.names], dtype=float)

    def engine_params(self, theta, config: str) -> np.ndarray:
        """[kind] -> (e0, beat, pos, em) of ``config``."""
        return np.append(theta, 1.0)[self._engine[config]]

    def kind_params(self, theta) -> np.ndarray:
        """[kind] -> (l0, lm, ll, lb, wc)."""
        return np.append(theta, 1.0)[self._kind]


@dataclass(frozen=True)
class OpParts:
    """Per op (arrays): stage compute cycles, stage bus bytes (to divide by the bandwidth), latency tails; for a
    DMA the ``load_*`` entries are the DMA's and its ``run_*`` are 0."""

    is_dma: np.ndarray
    is_vec: np.ndarray      # vector-unit ops (a barrier; their ``load_*`` entries are the op's)
    load_core: np.ndarray
    load_bytes: np.ndarray
    load_tail: np.ndarray
    run_core: np.ndarray
    run_bytes: np.ndarray
    read_bytes: np.ndarray  # the IFM reads of ``run_bytes``
    run_after: np.ndarray   # cycles of the run that come after the IFM reads (the staged IFM's later sweeps)
    run_tail: np.ndarray
    handover: np.ndarray    # cycles from the start of the load until the engine may take the op (CHECK, RECORDS)
    tail: np.ndarray        # cycles of the engine's compute that come after the last weight is decoded
    parse: np.ndarray       # cycles the controller parses the op's commands after the previous kick was taken
    kernel_wait: np.ndarray  # n of a KERNEL_WAIT before the op (-1: none)
    dma_stall: np.ndarray   # share of a DMA's cycles the op waits while on the engine (the DMA is served first)

    def durations(self, bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
        """(load, run) cycles of every op alone on a memory of ``bandwidth`` bytes/cycle."""
        load = np.maximum(self.load_core, self.load_bytes / bandwidth) + self.load_tail
        run = np.maximum.reduce([self.run_core, self.run_bytes / bandwidth,
                                 self.read_bytes / bandwidth + self.run_after]) + self.run_tail
        return load, run

    def split_bus(self, bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
        """Cycles the bus is busy with each kernel op's loader traffic and with its engine's (DMAs: 0, 0)."""
        ker = ~self.is_dma & ~self.is_vec
        return np.where(ker, self.load_bytes, 0.0) / bandwidth, self.run_bytes / bandwidth

    def bus(self, bandwidth: float) -> np.ndarray:
        """Cycles the bus is busy with each op's traffic (loader and engine together)."""
        return (self.load_bytes + self.run_bytes) / bandwidth


def _loader_cycles(p, x, latency, wb) -> tuple[np.ndarray, np.ndarray]:
    """The op loader's (cycles, hand-over cycles) (kind params ``p`` rows, op rows ``x``, the decoder's cycles per
    stream byte ``wb``): CHECK and RECORDS, when the op is handed to the engine, then WEIGHTS, as in the RTL (the
    decoder's output beats plus its parser's cycles, which take the stream a chunk-loop pass a cycle: a denser
    stream, more bits a weight, is slower)."""
    stretch = np.maximum(1.0, p[:, 2] * latency + p[:, 3])
    weight_bytes = np.maximum(x[:, 4] * WORD_BYTES - x[:, 6], 0.0)
    records = p[:, 0] + x[:, 6] * stretch
    weights = x[:, 2] / x[:, 8] + p[:, 4] * x[:, 2] + wb * weight_bytes
    return records + np.maximum(weights, weight_bytes * stretch / WORD_BYTES), records


def _compute_cycles(e, x):
    """The engine's own cycles (engine params ``e`` rows, op rows ``x``): start-up, then MAC beats overlapping the
    output unit's positions."""
    return e[:, 0] + np.maximum(e[:, 1] * x[:, 1], e[:, 2] * x[:, 3])


def _fill_cycles(x, latency):
    """Cycles before the first MAC beat: the first rows' reads (a word a cycle, or as the stager's outstanding reads
    allow) and one memory round trip."""
    return x[:, 10] * np.maximum(1.0, (latency + ROUND_TRIP) / STAGER_OUTSTANDING) + latency + ROUND_TRIP


def _vector_parts(theta, ix, x, latency):
    """A vector-unit op's (core cycles, bus bytes, fixed cycles): the walker's steps and the writes that take its
    port, or the reads its queue keeps in flight per memory round trip; its words; start-up and one round trip."""
    writes = x[:, 5] - x[:, 9]
    core = np.maximum(theta[ix["vt"]] * (x[:, 12] + writes), x[:, 9] * (latency + ROUND_TRIP) / x[:, 13])
    return core, x[:, 5] * WORD_BYTES, theta[ix["v0"]] + theta[ix["vl"]] * latency


def _writer_cycles(x):
    """Cycles the OFM writer needs at least: one word a cycle (``rtl/npu/ofm_writer.py``; a 32-bit OFM's position is
    four or five words). At 8 bytes/cycle or less the bus term is never smaller; it bounds a faster memory."""
    return x[:, 5] - x[:, 9]


def _stager_cycles(reads, latency):
    """Cycles the IFM stager needs for ``reads`` words when only its outstanding reads limit it."""
    return reads * (latency + ROUND_TRIP) / STAGER_OUTSTANDING


def op_parts(layout: ParamLayout, theta, x: np.ndarray, config: str, latency: float) -> OpParts:
    """The stage costs of the ops ``x`` (:func:`op_matrix`) on ``config`` with memory latency ``latency``."""
    ix = layout.index
    n = len(x)
    kind = x[:, 0].astype(int)
    dma = kind == _DMA
    vec = kind == _VEC
    ker = ~dma & ~vec
    z = np.zeros(n)
    load_core, load_bytes, load_tail = z.copy(), z.copy(), z.copy()
    run_core, run_bytes, run_tail, handover, tail = z.copy(), z.copy(), z.copy(), z.copy(), z.copy()
    read_bytes, run_after = z.copy(), z.copy()
    if dma.any():
        load_core[dma] = theta[ix["d0"]]
        load_bytes[dma] = theta[ix["dmem"]] * (x[dma, 4] + x[dma, 5]) * WORD_BYTES
        load_tail[dma] = theta[ix["dlat"]] * latency
    if vec.any():
        load_core[vec], load_bytes[vec], load_tail[vec] = _vector_parts(theta, ix, x[vec], latency)
    if ker.any():
        k = kind[ker]
        e = layout.engine_params(theta, config)[k]
        p = layout.kind_params(theta)[k]
        xk = x[ker]
        load_core[ker], handover[ker] = _loader_cycles(p, xk, latency, theta[ix["wb"]])
        load_bytes[ker] = p[:, 1] * xk[:, 4] * WORD_BYTES
        compute = _compute_cycles(e, xk)
        run_after[ker] = xk[:, 11] * compute
        run_core[ker] = np.maximum.reduce([compute + _fill_cycles(xk, latency),
                                           _stager_cycles(xk[:, 9], latency) + run_after[ker], _writer_cycles(xk)])
        run_bytes[ker] = e[:, 3] * xk[:, 5] * WORD_BYTES
        read_bytes[ker] = e[:, 3] * xk[:, 9] * WORD_BYTES
        tail[ker] = xk[:, 7] * compute
    return OpParts(dma, vec, load_core, load_bytes, load_tail, run_core, run_bytes, read_bytes, run_after, run_tail,
                   handover, tail, theta[ix["cw"]] * x[:, 14], x[:, 15], stall_shares(layout, theta, x))


def stall_shares(layout: ParamLayout, theta, x: np.ndarray) -> np.ndarray:
    """Per op (rows ``x``): the share of a DMA's cycles beside it that the op waits while on the engine (its kind's
    ``ds``; a DMA or a vector-unit op: 0)."""
    ds = np.append(np.array([theta[layout.index[f"ds[{k}]"]] for k in STALL_KINDS]), 0.0)
    kind = x[:, 0].astype(int)
    return ds[np.where(kind >= len(KERNEL_KINDS), len(STALL_KINDS), kind)]


def stacked_durations(layout: ParamLayout, theta, x: np.ndarray, configs: list[str], config_of_row: np.ndarray,
                      bandwidth: np.ndarray, latency: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`op_parts` and :meth:`OpParts.durations` for the rows of many runs at once (the fit's inner loop):
    row ``i`` is on ``configs[config_of_row[i]]`` at ``bandwidth[i]`` / ``latency[i]``. Returns (load, run, handover,
    tail, bus, load bus, run bus, staged: the run's cycles after a resident IFM is staged)."""
    ix = layout.index
    kind = x[:, 0].astype(int)
    dma = kind == _DMA
    vec = kind == _VEC
    other = dma | vec
    kk = np.where(other, 0, kind)
    eng = np.stack([layout.engine_params(theta, c) for c in configs])[config_of_row, kk]   # rows x 6
    p = layout.kind_params(theta)[kk]                                                       # rows x 5
    loader, handover = _loader_cycles(p, x, latency, theta[ix["wb"]])
    load = np.maximum(loader, p[:, 1] * x[:, 4] * WORD_BYTES / bandwidth)
    compute = _compute_cycles(eng, x)
    after = x[:, 11] * compute
    run = np.maximum.reduce([compute + _fill_cycles(x, latency), eng[:, 3] * x[:, 5] * WORD_BYTES / bandwidth,
                             np.maximum(_stager_cycles(x[:, 9], latency), eng[:, 3] * x[:, 9] * WORD_BYTES / bandwidth)
                             + after, _writer_cycles(x)])
    dma_load = (np.maximum(theta[ix["d0"]], theta[ix["dmem"]] * (x[:, 4] + x[:, 5]) * WORD_BYTES / bandwidth)
                + theta[ix["dlat"]] * latency)
    kernel_bus = (p[:, 1] * x[:, 4] + eng[:, 3] * x[:, 5]) * WORD_BYTES / bandwidth
    dma_bus = theta[ix["dmem"]] * (x[:, 4] + x[:, 5]) * WORD_BYTES / bandwidth
    vcore, vbytes, vfixed = _vector_parts(theta, ix, x, latency)
    vec_load = np.maximum(vcore, vbytes / bandwidth) + vfixed
    return (np.where(dma, dma_load, np.where(vec, vec_load, load)), np.where(other, 0.0, run),
            np.where(other, 0.0, handover), np.where(other, 0.0, x[:, 7] * compute),
            np.where(dma, dma_bus, np.where(vec, vbytes / bandwidth, kernel_bus)),
            np.where(other, 0.0, p[:, 1] * x[:, 4] * WORD_BYTES / bandwidth),
            np.where(other, 0.0, eng[:, 3] * x[:, 5] * WORD_BYTES / bandwidth), np.where(other, 0.0, after))


def schedule(is_dma, load, run, handover, tail, bus, load_bus=None, run_bus=None, is_vec=None,
             parse=None, kernel_wait=None, dma_stall=None, staged=None) -> tuple[float, list[float]]:
    """The pipeline of the module docstring for stage durations ``load`` / ``run``: (cycles from the first op to
    the last one done, each op's finish time). A DMA's duration is its ``load``; it starts once the DMA is free
    and the kernel op before it has started loading (the controller issues the stream in order), and takes its own
    time whatever else is queued for the bus (the arbiter serves it first). The engine takes
    an op once it is done with the one before and the loader has handed it over (``handover`` cycles into the
    load); the last ``tail`` cycles of its compute wait for the load to end (the last depth block's bricks; the
    IFM reads and OFM writes of the run overlap the load). The loader's
    and the engine's traffic share one bus: an op is done no earlier than its ``bus`` cycles after the bus is done
    with the ops before it and the op has started; the arbiter serves the loader before the engine, so the next op's
    loader traffic, while it overlaps the engine's op, delays the engine by that share of its run that needs the
    bus (``load_bus``, ``run_bus``: the loader's and the engine's bus cycles). A vector-unit op (``is_vec``; its
    duration is its ``load``) starts once the engine and the loader are done with every op before it and the DMAs
    it waits for are done, and nothing starts loading while it runs. The controller parses the commands before a
    kick (``parse`` cycles) only once it has handed over the kick before (``rtl/npu/controller.py``: in stream
    order, a kick blocks parsing until it is taken), so no op starts before that; an NPU_OP_KERNEL_WAIT ``n``
    among them (``kernel_wait``; Vela puts one before the DMA of the next op's weights into a buffer an op in
    flight still reads) blocks parsing until at most ``n`` kernel ops are outstanding. The arbiter serves the DMA
    before everything else (``rtl/npu/top.py``), so the last kernel op issued waits for its ``dma_stall`` share of
    the cycles a DMA overlaps its run on the engine but its last ``staged`` cycles (a later op starts after it on
    the in-order engine): the IFM stager gets no bus meanwhile and its line buffer runs dry (measured: a 3x3
    depthwise on u55-64 waits out the whole DMA: 1,184 MAC_STALLED_BY_IB cycles, the DMA's 1,184); an op whose IFM
    is resident and staged (its last ``staged`` cycles) reads nothing then and does not wait."""
    dma_free = load_free = dep = issued = bus_free = accepted = 0.0
    engine_end: list[float] = []
    last_start, last_op = 0.0, -1    # when the engine began the last kernel op issued, which op (-1: a vector op)
    finish = []
    n = len(is_dma)
    lb = load_bus.tolist() if load_bus is not None else [0.0] * n
    rb = run_bus.tolist() if run_bus is not None else [0.0] * n
    vec = is_vec.tolist() if is_vec is not None else [False] * n
    cmd = parse.tolist() if parse is not None else [0.0] * n
    waits = np.asarray(kernel_wait).astype(int).tolist() if kernel_wait is not None else [-1] * n
    shares = dma_stall.tolist() if dma_stall is not None else [0.0] * n
    after = staged.tolist() if staged is not None else [0.0] * n
    prev = -1
    for i, (is_d, ld, rn, ho, tl, b) in enumerate(zip(is_dma.tolist(), load.tolist(), run.tolist(),
                                                      handover.tolist(), tail.tolist(), bus.tolist(), strict=True)):
        w = waits[i]      # KERNEL_WAIT w: until at most w kernel ops are outstanding
        parsed = (max(accepted, engine_end[-w - 1]) if 0 <= w < len(engine_end) else accepted) + cmd[i]
        if vec[i]:
            issued = accepted = max(engine_end[-1] if engine_end else 0.0, load_free, dep, parsed)
            bus_free = max(bus_free, issued) + b
            load_free = max(issued + ld, bus_free)
            engine_end.append(load_free)
            finish.append(load_free)
            prev = last_op = -1
            continue
        if is_d:
            start = accepted = max(dma_free, issued, parsed)
            bus_free = max(bus_free, start) + b
            dma_free = start + ld       # the arbiter serves the DMA first, whatever else is queued for the bus
            dep = dma_free
            finish.append(dma_free)
            if last_op >= 0:
                over = (min(dma_free, engine_end[-1] - after[last_op]) - max(start, last_start)) * shares[last_op]
                if over > 0:
                    engine_end[-1] += over
                    finish[last_op] = engine_end[-1]
            continue
        slot = engine_end[-IN_FLIGHT] if len(engine_end) >= IN_FLIGHT else 0.0
        issued = accepted = max(load_free, dep, slot, parsed)
        if prev >= 0 and engine_end[-1] > issued and run[prev] > 0:
            # the loader's reads go before the engine's (``rtl/npu/top.py``: arbiter priority): a bus-bound engine
            # waits for the next op's weight stream
            delay = min(engine_end[-1] - issued, lb[i]) * min(1.0, rb[prev] / run[prev])
            engine_end[-1] += delay
            finish[prev] = engine_end[-1]
        prev = i
        load_free = issued + ld
        handed = issued + min(ho, ld)
        bus_free = max(bus_free, handed) + b
        es = max(engine_end[-1] if engine_end else 0.0, handed)
        engine_end.append(max(es + rn, load_free + tl, bus_free))
        last_start, last_op = es, i
        finish.append(engine_end[-1])
    return max(finish, default=0.0), finish


def total_cycles(layout: ParamLayout, theta, x: np.ndarray, config: str, bandwidth: float, latency: float) -> float:
    """Cycles of one inference alone on the memory (start overhead + the schedule)."""
    parts = op_parts(layout, theta, x, config, latency)
    load, run = parts.durations(bandwidth)
    ix = layout.index
    return float(theta[ix[f"start[{config}]"]] + theta[ix["slat"]] * latency
                 + schedule(parts.is_dma, load, run, parts.handover, parts.tail, parts.bus(bandwidth),
                            *parts.split_bus(bandwidth), parts.is_vec, parts.parse, parts.kernel_wait,
                            parts.dma_stall, parts.run_after)[0])


class NpuCostModel:
    """Fitted coefficients for some NPU configs (:meth:`load` reads :data:`COEFFS_PATH`)."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.configs = sorted({n[len("start["):-1] for n in doc["coefficients"] if n.startswith("start[")},
                              key=lambda c: int(c.rsplit("-", 1)[-1]) if c.rsplit("-", 1)[-1].isdigit() else 0)
        self.layout = ParamLayout(self.configs)
        self.theta = self.layout.from_dict(doc)
        self.meta = doc.get("meta", {})

    @classmethod
    def load(cls, path: str | Path = COEFFS_PATH) -> NpuCostModel:
        return cls(json.loads(Path(path).read_text(encoding="utf-8")))

    def check_config(self, config: str) -> None:
        if config not in self.configs:
            raise KeyError(f"no calibration for NPU config {config!r}; calibrated: {', '.join(self.configs)}")

    def matrix(self, ops: tuple[NpuOp, ...] | list[NpuOp], config: str) -> np.ndarray:
        self.check_config(config)
        return op_matrix(ops, config)

    def op_parts(self, x: np.ndarray, config: str, latency: float) -> OpParts:
        return op_parts(self.layout, self.theta, x, config, latency)

    def start_cycles(self, config: str, latency: float) -> float:
        ix = self.layout.index
        return float(self.theta[ix[f"start[{config}]"]] + self.theta[ix["slat"]] * latency)

    def total_cycles(self, x: np.ndarray, config: str, bandwidth: float, latency: float) -> float:
        return total_cycles(self.layout, self.theta, x, config, bandwidth, latency)
