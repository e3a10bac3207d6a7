"""Fault-injection workload of the MAC array reference design: tiled int8 matrix products."""
import numpy as np

from base import RampartError
from faultinj.workload import Workload

__all__ = ["mac_array_matmul"]


def mac_array_matmul(config, seed: int = 0, cycles: int = 4000) -> Workload:
    """Back-to-back int8 matrix products ``C = A @ W`` (A: rows x k, W: k x cols, k random in 4..32 per tile).

    Per tile: ``clear`` with the first operands, skewed feed (``a_in[r]`` at cycle s is ``A[r, s-r]``, ``w_in[c]``
    is ``W[s-c, c]``, zero outside) for ``k + rows + cols - 2`` enabled cycles, so PE (r, c) accumulates
    ``A[r, :] @ W[:, c]`` and the pipelines drain to zero; then ``en`` low and ``rsel`` walks the rows, each row
    appearing on ``out`` one cycle later. Outputs are observed only on those readout cycles. The stimulus is cut at
    exactly ``cycles`` (the last tile may be partial). ``tiles`` (in ``params``) lists (start, A, W) for checking.
    A protected array (``config.protected``) adds its ``sm_error`` as a detection and ``sm_corrected`` as a correction
    port.
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
    ports = {"detect": ("sm_error",), "correct": ("sm_corrected",)} if config.protected else {}
    return Workload("mac_array_matmul", "mac_array", config, inputs, ("out",), observe,
                    {"seed": seed, "cycles": cycles, "tiles": tiles}, **ports)
