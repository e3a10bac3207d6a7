"""Run one row of the NPU operator coverage matrix (:mod:`models.npu.op_matrix`): Vela-compile the model, run it on
the simulated NPU and compare every output with LiteRT's reference kernels, byte for byte.

The outcome is one of: ``bit-exact``; ``mismatch`` (how many elements differ); ``UNSUPPORTED`` (the NPU stopped with
an error status; the command it stopped at is named); ``CPU fallback`` (Vela leaves the operator on the CPU, with
Vela's reason); ``Vela error`` / ``LiteRT rejects`` (the model itself); ``not built``. The NPU ops Vela emitted are
listed with their counts (``POOLx3 ELEMENTWISEx2 DMA``).
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from base import cache_root
from models.npu import vela
from models.npu.op_matrix import Row
from models.npu.reference import ReferenceModel, ReferenceModelError

from .npu import ext_memory, layout, read_bytes, start, wait_done

__all__ = ["RowResult", "run_artifact", "run_row", "npu_ops"]


@dataclass(frozen=True)
class RowResult:
    row: Row
    config: str
    result: str        # "bit-exact", "mismatch", "UNSUPPORTED", "CPU fallback", "Vela error", "LiteRT rejects", ...
    detail: str = ""
    npu_ops: str = ""
    cycles: int = 0

    @property
    def passed(self) -> bool:
        return self.result == "bit-exact"


def npu_ops(art: vela.VelaArtifact) -> str:
    """The NPU_OP_* commands of ``art``'s stream with counts, in first-seen order (``POOLx3 DMA``)."""
    counts = Counter(c.name.removeprefix("NPU_OP_") for c in art.commands()
                     if c.name.startswith("NPU_OP_") and c.name not in ("NPU_OP_STOP", "NPU_OP_DMA_WAIT",
                                                                          "NPU_OP_KERNEL_WAIT", "NPU_OP_PMU_MASK"))
    return " ".join(f"{n}x{k}" if k > 1 else n for n, k in counts.items()) or "(none)"


def _stop_command(art: vela.VelaArtifact, offset: int) -> str:
    """Where the stream stopped: byte ``offset`` and the last two ops kicked before it (a compute fault arrives
    while the controller has fetched on, so the failing op is one of those, not necessarily the last)."""
    kinds = ("NPU_OP_CONV", "NPU_OP_DEPTHWISE", "NPU_OP_POOL", "NPU_OP_ELEMENTWISE", "NPU_OP_DMA_START")
    kicked = [c.name.removeprefix("NPU_OP_") for c in art.commands() if c.offset <= offset and c.name in kinds]
    return f"offset {offset:#x}" + (f", after {' / '.join(kicked[-2:])}" if kicked else "")


def _compile(model: bytes, config: str) -> vela.VelaArtifact:
    return vela.compile_model(model, f"ethos-{config}", cache_dir=cache_root() / "vela")


def run_row(dev, config: str, row: Row, seed: int = 0, trials: int = 2, max_cycles: int = 400_000) -> RowResult:
    """Run ``row`` on the open NPU ``dev`` (built for preset ``config``): ``trials`` random inputs and one with
    every input element at its dtype's maximum; every output compared."""
    from rtl.npu.config import PRESETS

    cfg = PRESETS[config]
    if row.builder is None:
        return RowResult(row, config, "not built", row.note)
    model = row.builder(seed)
    try:
        ref = ReferenceModel(model)
    except ReferenceModelError as e:
        return RowResult(row, config, "LiteRT rejects", str(e).splitlines()[0])
    try:
        art = _compile(model, config)
    except vela.CpuFallbackError as e:
        return RowResult(row, config, "CPU fallback", "; ".join(" ".join(o.reasons) or o.op for o in e.cpu_ops))
    except vela.VelaCompileError as e:
        return RowResult(row, config, "Vela error", str(e).splitlines()[0])
    ops = npu_ops(art)
    rng = np.random.default_rng(1000 + seed)
    cycles = 0
    for trial in range(trials + 1):
        xs = [_input(ref, rng, i, row.input_low) for i in range(len(ref.inputs))]
        if trial == trials:     # the largest input everywhere: sums and products at their extremes
            xs = [np.full_like(x, np.iinfo(x.dtype).max) for x in xs]
        try:
            wants = ref.run_all(*xs)
        except RuntimeError as e:   # a kernel LiteRT registers but does not run at this precision
            return RowResult(row, config, "LiteRT rejects", str(e).splitlines()[0], ops)
        status, gots, cycles, offset = _run(dev, cfg, art, xs, [w.dtype for w in wants], max_cycles)
        if status == "timeout":
            return RowResult(row, config, "hang", f"no done within {max_cycles:,} cycles", ops)
        if status:
            return RowResult(row, config, "UNSUPPORTED", f"{status} at {_stop_command(art, offset)}", ops, cycles)
        bad = sum(int(np.count_nonzero(g != w.reshape(-1))) for g, w in zip(gots, wants, strict=True))
        if bad:
            total = sum(w.size for w in wants)
            return RowResult(row, config, "mismatch", f"{bad}/{total} elements differ", ops, cycles)
    return RowResult(row, config, "bit-exact", "", ops, cycles)


def _input(ref: ReferenceModel, rng: np.random.Generator, index: int, low: int | None) -> np.ndarray:
    x = ref.random_input(rng, index)
    return x if low is None else np.maximum(x, np.asarray(low, x.dtype))


def run_artifact(dev, config: str, art: vela.VelaArtifact, xs, out_dtypes, max_cycles: int = 400_000):
    """Run a compiled (possibly patched) ``art`` on the open NPU ``dev`` (built for preset ``config``) with inputs
    ``xs``: (status, outputs), status "" (ok), "timeout" or the error's name (as :func:`run_row` reports it)."""
    from rtl.npu.config import PRESETS

    status, outs, _, _ = _run(dev, PRESETS[config], art, xs, out_dtypes, max_cycles)
    return status, outs


def _run(dev, cfg, art: vela.VelaArtifact, xs, out_dtypes, max_cycles: int):
    """Load and run ``art`` with inputs ``xs`` (any integer dtype); (status, outputs, cycles, error offset) where
    status is "" (ok), "timeout" or the error's name."""
    from rtl.npu.controller import ErrorCode
    from rtl.npu.kernel_op import ComputeError

    lay = layout(art, cfg.ext_mem_bytes)
    dev.reset()
    mem = ext_memory(dev)
    dev.clear(mem)
    segments = [(lay.cmd_addr, art.cmd_data), (lay.weight_addr, art.weight_data)]
    segments += [(lay.address(t), np.ascontiguousarray(x).tobytes()) for t, x in zip(art.inputs, xs, strict=True)]
    for addr, payload in segments:
        if payload:
            dev.load_bytes(mem, addr, payload)
    start(dev, lay.cmd_base, lay.cmd_len, lay.basep)
    if wait_done(dev, max_cycles, chunk=64) is None:
        return "timeout", [], max_cycles, 0
    cycles = dev.peek("cycles")
    if dev.peek("error") or dev.peek("ext_fault"):
        code = dev.peek("error_code")
        name = ErrorCode(code).name if code in ErrorCode._value2member_map_ else f"error {code:#x}"
        if code == ErrorCode.COMPUTE_FAULT:
            name += f" ({ComputeError(dev.peek('compute_error')).name})"
        return name, [], cycles, dev.peek("error_offset")
    outs = []
    for t, dt in zip(art.outputs, out_dtypes, strict=True):
        raw = read_bytes(dev, lay.address(t), t.nbytes)
        outs.append(np.frombuffer(raw, dtype=dt) if np.dtype(dt).itemsize == t.elem_size
                    else np.frombuffer(raw, dtype=f"<i{t.elem_size}"))
    return "", outs, cycles, 0
