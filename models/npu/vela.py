"""Compile .tflite models with Vela for Ethos-U55 and load the raw (.npz) result.

Vela is run as ``python -m ethosu.vela`` in a subprocess with the venv's interpreter (``sys.executable``). That is
the documented, stable interface; it isolates this process from the C++ compiler core (``regor``) that Vela 5.x
runs by default (a crash or ``RuntimeError`` there only fails the subprocess) and it costs ~0.15-0.3 s per compile.
Vela's in-process entry point (``ethosu.vela.vela.main``) works too, but regor prints straight to fd 1 and raises
bare ``RuntimeError`` on failure, so the subprocess is the robust choice.

Every compile passes ``--output-format raw --verbose-performance --verbose-register-command-stream``. The two verbose
flags do not change the output (checked: byte-identical npz with and without them); they make Vela write
``<name>_per-layer.csv`` (per-layer cycle estimates) and print regor's own decoded register listing, which the tests
use to cross-check :mod:`models.npu.cmdstream`. The summary CSV ``<name>_summary_<system>.csv`` is always written.

Memory-region convention of the raw output (BASEP index = region number in the ``*_REGION`` registers):

====== ====================================================== ==========================================================
region contents                                               where it is defined
====== ====================================================== ==========================================================
0      ``weight_data``: read-only constants (per op: scale/    ``BasePointerIndex.WeightTensor = 0`` in
       bias records then the compressed weight stream; LUTs)  ``ethosu/vela/high_level_command_to_npu_op.py``;
                                                              npz key ``weight_region`` (= 0)
1      scratch arena: graph inputs, outputs, intermediates,   ``BasePointerIndex.ScratchTensor = 1``; npz keys
       and weights DMA'd in from region 0                     ``scratch_region``/``scratch_size``, and every
                                                              ``input_region``/``output_region`` (= 1)
2      fast scratch (only with a separate fast memory; the    ``BasePointerIndex.ScratchFastTensor = 2``; ``get_region``
       default Shared_Sram mode has ``scratch_fast_size`` 0   maps Scratch_fast to 1 unless spilling is enabled;
       and writes ``scratch_fast_region`` 0, i.e. unused)     npz key ``scratch_fast_region``
0x103  DMA destination "internal": SHRAM (LUTs), bit 8 set    ``BASE_PTR_INDEX_MEM2MEM = (1 << 8) | 3`` in
                                                              ``ethosu/vela/register_command_stream_util.py``
====== ====================================================== ==========================================================

Inputs and outputs are *inside* region 1 at ``input_offset``/``output_offset``: the npz keys are written by
``write_rawdata_output_from_model`` in ``ethosu/vela/rawdata_writer.py`` from regor's ``CompiledRawModel``
(``read_only``, ``scratch``, ``scratch_fast``, ``inputs``, ``outputs``, ``variables``). The legacy Python core writes
the same keys (``write_rawdata_output``) from the NPU custom op's inputs ``[cmd_stream, weights, scratch,
scratch_fast, ifms...]`` (see ``ethosu/vela/npu_serialisation.py``, which creates those tensors). Regions 3..7 are
only used with ``--separate-io-regions`` / COP2, which this module does not pass. Region numbers are loaded from the
npz, never assumed, and :class:`VelaArtifact` exposes them.

The raw writer refuses graphs with operators left on the CPU ("RawWriter expects a graph without passthrough/CPU
operations"); :func:`compile_model` then recompiles to Vela's TFLite output, lists every non-``ethos-u`` operator
of the optimised graph and raises :class:`CpuFallbackError`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from base import RampartError, cache_root

from .cmdstream import Command, Cop1Header, decode_stream, parse_driver_payload
from .tflite_builder import model_bytes

ACCELERATORS = ("ethos-u55-32", "ethos-u55-64", "ethos-u55-128", "ethos-u55-256")
MACS = {"ethos-u55-32": 32, "ethos-u55-64": 64, "ethos-u55-128": 128, "ethos-u55-256": 256}
WEIGHT_REGION = 0
SCRATCH_REGION = 1
SCRATCH_FAST_REGION = 2
DEFAULT_SYSTEM_CONFIG = "Ethos_U55_High_End_Embedded"
DEFAULT_MEMORY_MODE = "Shared_Sram"
_VELA_INI = "Arm/vela.ini"


class VelaError(RuntimeError):
    """Base class of the errors raised here."""


class VelaCompileError(VelaError):
    """Vela exited with an error that is not a CPU fallback (bad model, internal compiler error, timeout)."""

    def __init__(self, message: str, stdout: str = "", stderr: str = "") -> None:
        super().__init__(message)
        self.stdout = stdout
        self.stderr = stderr


@dataclass(frozen=True)
class CpuOp:
    """An operator that Vela leaves on the CPU."""

    op: str                     # TFLite builtin name, e.g. "DEPTHWISE_CONV_2D"
    output: str                 # name of its (first) output tensor
    reasons: tuple[str, ...] = ()  # Vela's "Reason:" lines for this operator, if it printed any


class CpuFallbackError(VelaError):
    """The model contains operators that Vela cannot place on the NPU, so there is no single NPU command stream."""

    def __init__(self, accelerator: str, cpu_ops: tuple[CpuOp, ...]) -> None:
        self.accelerator = accelerator
        self.cpu_ops = cpu_ops
        desc = "; ".join(f"{o.op} -> '{o.output}'" + (f" ({' '.join(o.reasons)})" if o.reasons else "")
                         for o in cpu_ops)
        super().__init__(f"{len(cpu_ops)} operator(s) not supported on the NPU for {accelerator}: {desc}")


@dataclass(frozen=True)
class TensorInfo:
    """A graph input or output of the raw model: where it lives and how it is quantised."""

    shape: tuple[int, ...]        # as written by Vela (6-D, NHWC in the last axes)
    elem_size: int
    region: int
    offset: int                   # byte offset inside ``region``
    quant_type: str               # "per_tensor" / "per_channel" / "none"
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.numel * self.elem_size


@dataclass(frozen=True)
class LayerPerf:
    """One row of Vela's ``_per-layer.csv`` (regor performance database, post-processed by ``stats_writer.py``)."""

    original_op: str
    nng_op: str
    target: str
    op_cycles: int
    npu_cycles: int
    mac_count: int
    sram_access_cycles: int
    dram_access_cycles: int
    onchip_flash_access_cycles: int
    offchip_flash_access_cycles: int
    staging_usage: int
    mac_util_percent: float
    name: str


@dataclass(frozen=True, eq=False)
class PerfEstimate:
    """Vela's own performance estimate (summary CSV plus per-layer CSV)."""

    total_cycles: int
    npu_cycles: int
    sram_access_cycles: int
    offchip_flash_access_cycles: int
    macs: int
    clock_hz: float
    inference_time_s: float
    layers: tuple[LayerPerf, ...]
    summary: dict[str, str] = field(repr=False)  # the whole summary CSV row, unparsed


@dataclass(frozen=True, eq=False)
class VelaArtifact:
    """Everything an NPU simulation needs from one Vela raw compile."""

    accelerator: str
    header: Cop1Header            # COP1 driver header (CONFIG/ID images, stream position)
    cmd_data: bytes               # the whole COP1 driver payload
    command_stream: np.ndarray    # uint32 register command words (what QBASE points at), ends with NPU_OP_STOP
    weight_data: bytes            # region ``weight_region`` contents
    weight_region: int
    scratch_size: int
    scratch_region: int
    scratch_fast_size: int
    scratch_fast_region: int
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    perf: PerfEstimate | None
    listing: str = field(default="", repr=False)  # regor's --verbose-register-command-stream text
    npz_path: Path | None = None  # None when compiled into a temporary directory

    def commands(self) -> list[Command]:
        return decode_stream(self.command_stream)

    @property
    def macs_per_cc(self) -> int:
        return self.header.macs_per_cc


# ---------------------------------------------------------------------------------------------------------------
# Loading


def _s_bytes(arr) -> bytes:
    """Bytes of an ``S<n>`` npz scalar. ``.item()`` would strip trailing NULs (numpy ``S`` semantics)."""
    a = np.asarray(arr)
    if a.dtype.kind == "S":
        return a.tobytes()
    return np.asarray(a, dtype=np.uint8).tobytes()


def _tensors(d, prefix: str) -> tuple[TensorInfo, ...]:
    shapes = np.asarray(d[f"{prefix}_shape"])
    out = []
    for i in range(len(shapes)):
        q = d[f"{prefix}_quantization"][i] if len(d[f"{prefix}_quantization"]) > i else {}
        q = q or {}
        out.append(TensorInfo(
            shape=tuple(int(x) for x in shapes[i]),
            elem_size=int(d[f"{prefix}_elem_size"][i]),
            region=int(d[f"{prefix}_region"][i]),
            offset=int(d[f"{prefix}_offset"][i]),
            quant_type=str(q.get("quant_type", "none")),
            scale=tuple(float(x) for x in np.asarray(q.get("scale", []), dtype=np.float64).ravel()),
            zero_point=tuple(int(x) for x in np.asarray(q.get("zero_point", []), dtype=np.int64).ravel()),
        ))
    return tuple(out)


def _int(v: str) -> int:
    try:
        return int(float(v))
    except ValueError:
        return 0


def _float(v: str) -> float:
    try:
        return float(v)
    except ValueError:
        return float("nan")


def parse_per_layer_csv(text: str) -> tuple[LayerPerf, ...]:
    """Parse ``<name>_per-layer.csv``. Vela writes it unquoted; only the last column (tensor name) may hold commas."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return ()
    header = lines[0].split(",")
    rows = []
    for ln in lines[1:]:
        r = dict(zip(header, ln.split(",", len(header) - 1), strict=False))
        rows.append(LayerPerf(
            original_op=r.get("Original Operator", ""), nng_op=r.get("NNG Operator", ""),
            target=r.get("Target", ""), op_cycles=_int(r.get("Op Cycles", "0")), npu_cycles=_int(r.get("NPU", "0")),
            mac_count=_int(r.get("MAC Count", "0")), sram_access_cycles=_int(r.get("SRAM AC", "0")),
            dram_access_cycles=_int(r.get("DRAM AC", "0")), onchip_flash_access_cycles=_int(r.get("OnFlash AC", "0")),
            offchip_flash_access_cycles=_int(r.get("OffFlash AC", "0")),
            staging_usage=_int(r.get("Staging Usage", "0")), mac_util_percent=_float(r.get("Util% (MAC)", "nan")),
            name=r.get("Name", "")))
    return tuple(rows)


def _load_perf(directory: Path, stem: str) -> PerfEstimate | None:
    summaries = sorted(directory.glob(f"{stem}_summary_*.csv"))
    if not summaries:
        return None
    rows = list(csv.DictReader(io.StringIO(summaries[0].read_text())))
    if not rows:
        return None
    s = rows[0]
    per_layer = directory / f"{stem}_per-layer.csv"
    layers = parse_per_layer_csv(per_layer.read_text()) if per_layer.exists() else ()
    return PerfEstimate(
        total_cycles=_int(s.get("cycles_total", "0")), npu_cycles=_int(s.get("cycles_npu", "0")),
        sram_access_cycles=_int(s.get("cycles_sram_access", "0")),
        offchip_flash_access_cycles=_int(s.get("cycles_off_chip_flash_access", "0")),
        macs=_int(s.get("nn_macs", "0")), clock_hz=_float(s.get("core_clock", "nan")),
        inference_time_s=_float(s.get("inference_time", "nan")), layers=layers, summary=dict(s))


def extract_listing(stdout: str) -> str:
    """The ``Register command stream`` block(s) of Vela's stdout (``--verbose-register-command-stream``)."""
    out, inside = [], False
    for ln in stdout.splitlines():
        if ln.startswith("Register command stream"):
            inside = True
        elif inside and not ln.strip():
            inside = False
            out.append("")
        if inside:
            out.append(ln)
    return "\n".join(out).strip() + ("\n" if out else "")


_LISTING_RE = re.compile(r"^0x([0-9a-fA-F]+):.*? - (NPU_\w+)")


def listing_commands(listing: str) -> list[tuple[int, str]]:
    """``(byte offset, command name)`` pairs from regor's listing, for cross-checking a decoder."""
    return [(int(m.group(1), 16), m.group(2)) for m in map(_LISTING_RE.match, listing.splitlines()) if m]


def load_artifact(npz_path: str | Path, accelerator: str | None = None, *, listing: str = "",
                  keep_path: bool = True) -> VelaArtifact:
    """Load a Vela raw ``*_vela.npz`` (plus the CSVs and ``vela_stdout.txt`` next to it, if present)."""
    npz_path = Path(npz_path)
    stdout_file = npz_path.parent / "vela_stdout.txt"
    if not listing and stdout_file.exists():
        listing = extract_listing(stdout_file.read_text())
    with np.load(npz_path, allow_pickle=True) as d:
        cmd_data = _s_bytes(d["cmd_data"])
        header, words = parse_driver_payload(cmd_data)
        weight_data = _s_bytes(d["weight_data"])
        if weight_data == b"\x00" and np.asarray(d["weight_data"]).dtype.itemsize == 1:
            weight_data = b""  # numpy stores an empty S blob as one NUL (S1)
        inputs, outputs = _tensors(d, "input"), _tensors(d, "output")
        art = dict(
            weight_region=int(d["weight_region"]), scratch_size=int(d["scratch_size"]),
            scratch_region=int(d["scratch_region"]), scratch_fast_size=int(d["scratch_fast_size"]),
            scratch_fast_region=int(d["scratch_fast_region"]))
    if accelerator is None:
        accelerator = f"ethos-u55-{header.macs_per_cc}"
    stem = npz_path.name.removesuffix("_vela.npz")
    perf = _load_perf(npz_path.parent, stem)
    return VelaArtifact(accelerator=accelerator, header=header, cmd_data=cmd_data, command_stream=words,
                        weight_data=weight_data, inputs=inputs, outputs=outputs, perf=perf, listing=listing,
                        npz_path=npz_path if keep_path else None, **art)


# ---------------------------------------------------------------------------------------------------------------
# Compiling


def _vela_args(tflite: Path, out_dir: Path, accelerator: str, fmt: str, system_config: str, memory_mode: str,
               extra_args: tuple[str, ...]) -> list[str]:
    args = [sys.executable, "-m", "ethosu.vela", str(tflite), "--accelerator-config", accelerator,
            "--config", _VELA_INI, "--system-config", system_config, "--memory-mode", memory_mode,
            "--output-dir", str(out_dir), "--output-format", fmt]
    if fmt == "raw":
        args += ["--verbose-performance", "--verbose-register-command-stream"]
    return args + list(extra_args)


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as e:
        raise VelaCompileError(f"vela timed out after {timeout:.0f} s", str(e.stdout or ""), str(e.stderr or "")) from e


_CPU_WARN_RE = re.compile(r"^Warning \(supported operators\) operator: (\w+), ofm: '(.*)'$")


def _cpu_reasons(stdout: str) -> dict[str, tuple[str, ...]]:
    """Map output-tensor name -> Vela's explanation lines (the lines after each supported-operators warning)."""
    out: dict[str, list[str]] = {}
    cur = None
    for ln in stdout.splitlines():
        m = _CPU_WARN_RE.match(ln.strip())
        if m:
            cur = out.setdefault(m.group(2), [])
            continue
        if cur is not None:
            if not ln.strip() or ln.startswith("Warning"):
                cur = None
            else:
                cur.append(ln.strip().removeprefix("Reason: "))
    return {k: tuple(v) for k, v in out.items()}


def _optimised_cpu_ops(tflite_bytes: bytes) -> list[tuple[str, str]]:
    """(op, first output name) for every operator of a Vela-optimised .tflite that is not the ``ethos-u`` custom op."""
    from ethosu.vela.tflite.BuiltinOperator import BuiltinOperator
    from ethosu.vela.tflite.Model import Model

    names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    m = Model.GetRootAsModel(tflite_bytes, 0)
    ops = []
    for s in range(m.SubgraphsLength()):
        sg = m.Subgraphs(s)
        for i in range(sg.OperatorsLength()):
            op = sg.Operators(i)
            code = m.OperatorCodes(op.OpcodeIndex())
            custom = code.CustomCode()
            if custom == b"ethos-u":
                continue
            opname = custom.decode() if custom else names.get(code.BuiltinCode(), str(code.BuiltinCode()))
            out_name = sg.Tensors(op.Outputs(0)).Name().decode() if op.OutputsLength() else ""
            ops.append((opname, out_name))
    return ops


def cpu_operators(model, accelerator: str = "ethos-u55-128", *, system_config: str = DEFAULT_SYSTEM_CONFIG,
                  memory_mode: str = DEFAULT_MEMORY_MODE, timeout: float = 300.0) -> tuple[CpuOp, ...]:
    """Operators that Vela leaves on the CPU (compiles to Vela's TFLite output and inspects the optimised graph)."""
    _check_accel(accelerator)
    data = model_bytes(model)
    with tempfile.TemporaryDirectory(prefix="rampart_vela_") as tmp:
        src = Path(tmp) / "model.tflite"
        src.write_bytes(data)
        out = Path(tmp) / "out"
        r = _run(_vela_args(src, out, accelerator, "tflite", system_config, memory_mode, ()), timeout)
        opt = out / "model_vela.tflite"
        if r.returncode != 0 or not opt.exists():
            raise VelaCompileError(f"vela (tflite output) failed with exit code {r.returncode}: "
                                   f"{_last_error_line(r.stderr)}", r.stdout, r.stderr)
        reasons = _cpu_reasons(r.stdout)
        return tuple(CpuOp(op, name, reasons.get(name, ())) for op, name in _optimised_cpu_ops(opt.read_bytes()))


def _last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1] if lines else "(no message)"


def _check_accel(accelerator: str) -> None:
    if accelerator not in ACCELERATORS:
        raise ValueError(f"accelerator must be one of {ACCELERATORS}, got {accelerator!r}")


def _compile_into(data: bytes, out_dir: Path, accelerator: str, system_config: str, memory_mode: str,
                  extra_args: tuple[str, ...], timeout: float) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    src = out_dir / "model.tflite"
    src.write_bytes(data)
    npz = out_dir / "model_vela.npz"
    npz.unlink(missing_ok=True)  # never mistake an earlier compile's output for this one's
    r = _run(_vela_args(src, out_dir, accelerator, "raw", system_config, memory_mode, extra_args), timeout)
    (out_dir / "vela_stdout.txt").write_text(r.stdout)
    if r.returncode == 0 and npz.exists():
        return npz
    if "passthrough/CPU operations" in r.stderr or "Warning (supported operators)" in r.stdout:
        ops = cpu_operators(data, accelerator, system_config=system_config, memory_mode=memory_mode, timeout=timeout)
        if ops:
            raise CpuFallbackError(accelerator, ops)
    raise VelaCompileError(f"vela failed for {accelerator} with exit code {r.returncode}: "
                           f"{_last_error_line(r.stderr)}", r.stdout, r.stderr)


def compile_model(model, accelerator: str = "ethos-u55-128", *, out_dir: str | Path | None = None,
                  cache_dir: str | Path | None = None, system_config: str = DEFAULT_SYSTEM_CONFIG,
                  memory_mode: str = DEFAULT_MEMORY_MODE, extra_args: tuple[str, ...] = (),
                  timeout: float = 300.0) -> VelaArtifact:
    """Compile ``model`` (.tflite bytes, a path, or a ``TfliteModel``) to Vela raw output and load it.

    ``out_dir``: keep Vela's files there (``model_vela.npz``, CSVs, ``vela_stdout.txt``). ``cache_dir``: reuse an
    earlier compile of the same bytes and options (a sub-directory per content hash; safe for parallel workers).
    With neither, a temporary directory is used and removed. Raises :class:`CpuFallbackError` if any operator would
    stay on the CPU, :class:`VelaCompileError` for any other failure.
    """
    _check_accel(accelerator)
    data = model_bytes(model)
    if cache_dir is not None:
        from ethosu.vela._version import __version__ as vela_version

        key = hashlib.sha256(b"\0".join([data, vela_version.encode(), accelerator.encode(), system_config.encode(),
                                         memory_mode.encode(), *(a.encode() for a in extra_args)])).hexdigest()[:20]
        final = Path(cache_dir) / f"{accelerator}-{key}"
        npz = final / "model_vela.npz"
        if not npz.exists():
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cache_dir))
            try:
                _compile_into(data, tmp, accelerator, system_config, memory_mode, extra_args, timeout)
                try:
                    os.replace(tmp, final)  # atomic publish; loses harmlessly to a concurrent identical compile
                except OSError:
                    pass
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        return load_artifact(npz, accelerator)
    if out_dir is not None:
        npz = _compile_into(data, Path(out_dir), accelerator, system_config, memory_mode, extra_args, timeout)
        return load_artifact(npz, accelerator)
    with tempfile.TemporaryDirectory(prefix="rampart_vela_") as tmp:
        npz = _compile_into(data, Path(tmp), accelerator, system_config, memory_mode, extra_args, timeout)
        return load_artifact(npz, accelerator, keep_path=False)


def compile_cached(model, config: str = "u55-128") -> VelaArtifact:
    """Vela-compile ``model`` for preset ``config`` (e.g. ``"u55-128"``) into the cache under
    :func:`base.cache_root`; every failure is a one-line RampartError."""
    accelerator = f"ethos-{config}"
    if accelerator not in ACCELERATORS:
        raise RampartError(f"unknown NPU config {config!r}; one of: "
                           + ", ".join(a.removeprefix("ethos-") for a in ACCELERATORS))
    try:
        return compile_model(model_bytes(model), accelerator, cache_dir=cache_root() / "vela")
    except CpuFallbackError as e:
        ops = ", ".join(f"{o.op} ('{o.output}'" + (f": {o.reasons[0]}" if o.reasons else "") + ")"
                        for o in e.cpu_ops)
        raise RampartError(f"Vela leaves {len(e.cpu_ops)} operator(s) on the CPU for {accelerator}: {ops}") from e
    except VelaCompileError as e:
        raise RampartError(str(e).splitlines()[0]) from e


def model_digest(model) -> str:
    """Short content hash of a model (what the Vela cache is keyed by, with the compile options)."""
    return hashlib.sha256(model_bytes(model)).hexdigest()[:16]


__all__ = [
    "ACCELERATORS", "MACS", "SCRATCH_FAST_REGION", "SCRATCH_REGION", "WEIGHT_REGION", "CpuFallbackError", "CpuOp",
    "LayerPerf", "PerfEstimate", "TensorInfo", "VelaArtifact", "VelaCompileError", "VelaError", "compile_cached",
    "compile_model", "cpu_operators", "extract_listing", "listing_commands", "load_artifact", "model_digest",
    "parse_per_layer_csv",
]
