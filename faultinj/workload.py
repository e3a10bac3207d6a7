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
* per region, optional (one entry per region, or empty for the defaults): ``region_outcomes``, the outcome of a
  difference (default SDC; a second inference's output is DELAYED), ``region_at``, the cycle at whose start the
  region is checked (None: at the end; a first inference's output is read when the second starts: its golden
  copy must not change after that cycle) and ``classifier``, ``(byte offset in the region, classes)`` of a
  classifier's int8 scores (None: not one): an SDC or DELAYED then records whether the top-1 class changed;
* ``fault_window``: faults are injected in cycles ``[0, fault_window)`` only (None: every cycle), e.g. the first
  of two inferences;
* ``judge``: how much an SDC matters, ``"module:function"`` called as ``judge(workload, build, sites, cycles,
  upset)`` on the SDC faults of a batch, returning 1 (the error is above the workload's threshold, e.g. visible in
  an image) or 0 per fault; stored in the campaign's ``top1`` column, as a classifier's top-1 change is (SDC itself
  stays the any-bit verdict, so replays agree with it);
* ``exclude_blocks``: simulation scaffolding (e.g. the NPU's ``extmem`` memory model): blocks that are not part of
  the chip, never sampled for faults (they stay in the state and its digest); the design's descriptor lists them
  (``Design.scaffolding``, :func:`scaffolding_blocks`), so :mod:`faultinj.plan` leaves them out of every campaign.

Each design's descriptor names its workloads (``Design.workloads``: name -> factory, the built-in ones live in
:mod:`faultinj.workloads`); :func:`get_workload` and :func:`make_workload` find them by name; every factory takes
``(config, seed=..., cycles=...)``. A design that runs users' networks (the NPU) also names a model workload
(``Design.model_workload``, workload name ``<design>_model``) whose factory takes the network as further keyword
arguments (``make_workload(..., args={"model": path, "input": path})``; ``rampart fi run --model``).
"""
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from base import RampartError

__all__ = ["Workload", "workloads", "get_workload", "make_workload", "scaffolding_blocks", "default_workload",
           "model_workload_name"]


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
    region_outcomes: tuple = ()            # per region: Outcome of a difference (empty: all SDC)
    region_at: tuple = ()                  # per region: cycle it is checked at, None = the end (empty: all at the end)
    classifier: tuple = ()                 # per region: (byte offset, classes) of int8 scores or None
    fault_window: int | None = None        # faults in cycles [0, fault_window) (None: all cycles)
    judge: str | None = None               # "module:function": 1 when an SDC's error is above the threshold

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
        for name in ("region_outcomes", "region_at", "classifier"):
            value = tuple(getattr(self, name))
            object.__setattr__(self, name, value)
            if value and len(value) != len(self.regions):
                raise RampartError(f"workload {self.name}: {name} has {len(value)} entries for {len(self.regions)} "
                                   "regions")
        if self.fault_window is not None and not 0 < self.fault_window <= self.cycles:
            raise RampartError(f"workload {self.name}: fault window {self.fault_window} is not in 1..{self.cycles}")

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
    def fault_cycles(self) -> int:
        """Cycles faults are injected in (the fault space is state bits x this): ``[0, fault_cycles)``."""
        return self.cycles if self.fault_window is None else self.fault_window

    def region_checks(self) -> tuple[list[int], list[int], list[tuple[int, int]]]:
        """Per region: (outcome code of a difference, cycle it is checked at (>= cycles: the end), (byte offset,
        int8 scores) of a classifier or (0, 0)), defaults filled in."""
        n = len(self.regions)
        outcomes = [int(o) for o in self.region_outcomes] or [1] * n     # Outcome.SDC
        at = [self.cycles if a is None else int(a) for a in self.region_at] or [self.cycles] * n
        top1 = [(0, 0) if c is None else (int(c[0]), int(c[1])) for c in self.classifier] or [(0, 0)] * n
        return outcomes, at, top1

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
        if self.judge is not None:
            digest.update(repr(("judge", self.judge, sorted(self.params.get("judge_params", {}).items()))).encode())
        if self.region_outcomes or self.region_at or self.classifier or self.fault_window is not None:
            digest.update(repr((self.region_outcomes, self.region_at, self.classifier, self.fault_window)).encode())
        if self.memory or self.regions or self.complete or self.detect or self.exclude_blocks:
            digest.update(repr((self.regions, self.complete, self.detect, self.watchdog_cycles,
                                self.exclude_blocks)).encode())
            for name, first, values in self.memory:
                digest.update(repr((name, first, len(values))).encode())
                digest.update(np.ascontiguousarray(values, dtype=np.uint64).tobytes())
        return digest.hexdigest()


def workloads() -> dict[str, tuple[str, str]]:
    """Every workload of every registered design: name -> (design, summary: its factory's first docstring line)."""
    from rtl.designs import designs

    table = {}
    for design in designs().values():
        for name in design.workloads:
            doc = (design.workload(name).__doc__ or "").strip()
            table[name] = (design.name, " ".join(doc.split("\n\n")[0].split()))
    return table


def scaffolding_blocks(design: str) -> tuple[str, ...]:
    """Blocks of ``design`` that are simulation scaffolding (its descriptor's ``scaffolding``), never sampled."""
    from rtl.designs import get_design

    return tuple(sorted(get_design(design).scaffolding))


def get_workload(name: str) -> tuple[str, Callable[..., Workload]]:
    """(design, factory) of the workload ``name`` of any registered design; ``<design>_model`` is the design's
    model workload (its descriptor's ``model_workload``: a user's network, given by the ``model`` argument)."""
    from rtl.designs import designs, resolve

    for design in designs().values():
        if name in design.workloads:
            return design.name, design.workload(name)
        if design.model_workload is not None and name == model_workload_name(design.name):
            return design.name, resolve(design.model_workload)
    known = sorted(w for d in designs().values() for w in d.workloads)
    raise RampartError(f"no workload {name!r} (known: {', '.join(known)})")


def model_workload_name(design: str) -> str:
    """The name of ``design``'s model workload (``rampart fi run --model``)."""
    return f"{design}_model"


def default_workload(design: str) -> str:
    """The first workload ``design``'s descriptor names."""
    from rtl.designs import get_design

    names = list(get_design(design).workloads)
    if not names:
        raise RampartError(f"no fault-injection workload is registered for design {design!r}")
    return names[0]


def make_workload(name: str, config: Any = None, seed: int = 0, cycles: int | None = None,
                  args: dict | None = None) -> Workload:
    """Instantiate the workload ``name``; ``config`` may be a config object, preset name, TOML path or None.
    ``args``: further keyword arguments of the factory (a model workload's ``model`` and ``input``, paths)."""
    from rtl.designs import get_design

    design, make = get_workload(name)
    config = get_design(design).config(config)
    kwargs = {"seed": seed} if cycles is None else {"seed": seed, "cycles": cycles}
    workload = make(config, **kwargs, **(args or {}))
    scaffolding = scaffolding_blocks(design)
    if workload.exclude_blocks != scaffolding:
        raise RampartError(f"workload {name}: excludes {workload.exclude_blocks}, but {design}'s scaffolding is "
                           f"{scaffolding}")
    return workload
