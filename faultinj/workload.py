"""Workloads for fault injection: what a design runs while faults are injected, and which outputs are checked.

A :class:`Workload` is a design (registry name and config), per-cycle input port values (the format of
:meth:`sim.harness.NativeSim.run_stimulus`: one array per input port, ``cycles`` long), the observed output ports and,
optionally, a per-cycle ``observe`` mask: outputs are compared with the golden run only on cycles where it is true
(e.g. the cycles on which a result is read out), which is how a real consumer of the outputs would see them.

Built-in workloads are registered by name (:func:`get_workload`, :func:`make_workload`); each takes
``(config, seed, cycles)``.
"""
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sim.errors import RampartError

__all__ = ["Workload", "WORKLOADS", "register_workload", "get_workload", "make_workload", "mac_array_matmul"]


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

    def __post_init__(self):
        lengths = {len(v) for v in self.inputs.values()}
        if len(lengths) != 1:
            raise RampartError(f"workload {self.name}: input arrays differ in length ({sorted(lengths)})")
        if not self.outputs:
            raise RampartError(f"workload {self.name}: no observed outputs")
        if self.observe is not None and len(self.observe) != self.cycles:
            raise RampartError(f"workload {self.name}: observe mask has {len(self.observe)} cycles, not {self.cycles}")

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
        return digest.hexdigest()


WORKLOADS: dict[str, tuple[str, Callable[..., Workload], str]] = {}


def register_workload(name: str, design: str, make: Callable[..., Workload], summary: str):
    WORKLOADS[name] = (design, make, summary)


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
