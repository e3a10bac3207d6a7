"""Builds a benchmark compares the current one with in the same run.

:func:`build_at_revision` builds a design the way a past revision of rampart built it: that revision's own sources
and build code (RTL, harness, Verilator flags), exported with ``git archive`` into a temporary folder (this checkout
is not touched) and run there by this Python in a subprocess. Its library lands in the shared build cache like any
other and is then driven by this checkout's harness (the C ABI it uses must not have changed in between: the
harness checks every port and state element it looks up).

:func:`compare_opt` is the C++ optimisation level a benchmark compares a design's default build with.

:func:`map_faults` carries faults drawn on one build's state map over to another build of the same design: by state
element name, for elements of the same shape in both; the others are left out (a changed register has no
counterpart).
"""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from base import RampartError
from rtl.designs import get_design
from sim.build import Build, _load, default_opt

REPO = Path(__file__).resolve().parent.parent
_BUILD = "import sys\nfrom sim.build import build\nprint(build(sys.argv[1], sys.argv[2]).directory.resolve())\n"


def build_at_revision(revision: str, design: str, config: str) -> Build:
    """``design`` with preset ``config`` as git revision ``revision`` builds it (its default flags)."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", revision], capture_output=True)
        if archive.returncode:
            raise RampartError(f"git archive {revision}: {archive.stderr.decode().strip()}")
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        done = subprocess.run([sys.executable, "-c", _BUILD, design, config], cwd=tmp, capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": tmp})
        if done.returncode:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise RampartError(f"building {design} {config} at {revision} failed: {last}")
    result = _load(Path(done.stdout.split()[-1]), get_design(design).config(config))
    if result is None:
        raise RampartError(f"the build of {design} {config} at {revision} left no build.json")
    return result


def map_faults(source: Build, target: Build, sites, cycles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices into ``sites`` that ``target`` has too, their site indices in ``target``, their cycles)."""
    target_index = {(e.hier_name, e.width, e.depth): i for i, e in enumerate(target.state)}
    src_offsets = np.cumsum([0] + [e.bits for e in source.state])
    dst_offsets = np.cumsum([0] + [e.bits for e in target.state])
    sites = np.asarray(sites, dtype=np.int64)
    elements = np.searchsorted(src_offsets, sites, side="right") - 1
    keep, mapped = [], []
    for i, (site, element) in enumerate(zip(sites, elements, strict=True)):
        e = source.state[element]
        other = target_index.get((e.hier_name, e.width, e.depth))
        if other is not None:
            keep.append(i)
            mapped.append(dst_offsets[other] + site - src_offsets[element])
    keep = np.array(keep, dtype=np.int64)
    return keep, np.array(mapped, dtype=np.int64), np.asarray(cycles)[keep]


def compare_opt(design: str, requested: str | None = None) -> str:
    """The C++ optimisation level a benchmark compares ``design``'s default build with: ``requested``, or else the
    other of Verilator's own -Os (the level every build used before) and -O3."""
    if requested:
        return requested
    return "O3" if default_opt(design) == "Os" else "Os"
