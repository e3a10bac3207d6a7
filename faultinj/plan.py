"""The fault space of a campaign and how faults are drawn from it: strata, fixed plans, exhaustive plans, rounds.

The fault space is every (state bit, cycle) of a build running a workload of ``cycles`` cycles. It is cut into
strata by ``strata``:

* ``"none"``: one stratum (uniform sampling);
* ``"block"``: one stratum per block (the rtl submodule a bit belongs to);
* ``"cycle"``: one stratum per cycle window (``cycle_windows`` windows of near-equal length);
* ``"block,cycle"``: one per (block, cycle window);
* ``"exhaustive"``: one stratum, every fault of the space planned once (id = site * cycles + cycle).

Blocks that are simulation scaffolding (not part of the chip, e.g. the NPU's ``extmem`` memory model; see
:func:`faultinj.workload.scaffolding_blocks`) are left out of the fault space: never sampled, not a stratum, not in
``blocks``; their bits stay in the state map (global site indices are unchanged) and in the state digest. Bits are
then counted over the sampled elements only (``active``).

Window ``w`` of ``K`` covers cycles ``[ceil(w * cycles / K), ceil((w + 1) * cycles / K))``, so the window of
cycle ``c`` is ``c * K // cycles`` (also computable in SQL). Within a stratum a fault has a local index
``bit * window_length + (cycle - window_start)`` with ``bit`` counted over the stratum's bits in state-map order.
"""
from dataclasses import dataclass

import numpy as np

from faultinj.stats import allocate, sample_faults
from sim.build import Build
from sim.errors import RampartError

__all__ = ["STRATA", "FaultSpace", "FaultPlan", "fault_space", "fault_plan", "draw_round"]

STRATA = ("none", "block", "cycle", "block,cycle", "exhaustive")

#: Largest fault space an exhaustive campaign accepts (its plan is held in memory).
EXHAUSTIVE_LIMIT = 200_000_000


@dataclass(frozen=True)
class FaultPlan:
    """The campaign's faults in id order: global site, cycle and block (index into ``blocks``) per id."""

    sites: np.ndarray
    cycles: np.ndarray
    block_ids: np.ndarray
    blocks: tuple[str, ...]
    populations: dict[str, int]      # sites x cycles per block

    def __len__(self) -> int:
        return len(self.sites)


@dataclass(frozen=True, eq=False)
class FaultSpace:
    """Sites x cycles of a build and workload, cut into strata (see the module docstring)."""

    strata: str
    cycles: int
    windows: int
    blocks: tuple[str, ...]
    widths: np.ndarray             # bits per state element
    offsets: np.ndarray            # first global site of each element (+ total at the end)
    element_block: np.ndarray      # block index per element
    block_bits: np.ndarray         # bits per block
    stratum_block: np.ndarray      # block index per stratum (-1: every block)
    stratum_window: np.ndarray     # window index per stratum (-1: every cycle)
    active: np.ndarray | None = None   # sampled state elements in order (None: all of them)

    @property
    def sampled_bits(self) -> int:
        """State bits that may be sampled (all but the excluded blocks')."""
        return int(self.offsets[-1]) if self.active is None else int(self.widths[self.active].sum())

    def _bit_to_site(self, bit: np.ndarray) -> np.ndarray:
        if self.active is None:
            return bit
        cum = np.concatenate([[0], np.cumsum(self.widths[self.active])])
        pos = np.searchsorted(cum, bit, side="right") - 1
        return self.offsets[self.active[pos]] + bit - cum[pos]

    def _site_to_bit(self, sites: np.ndarray) -> np.ndarray:
        if self.active is None:
            return sites
        cum = np.concatenate([[0], np.cumsum(self.widths[self.active])])
        element = np.searchsorted(self.offsets, sites, side="right") - 1
        pos = np.searchsorted(self.active, element)
        return cum[pos] + sites - self.offsets[element]

    @property
    def bounds(self) -> np.ndarray:
        """Window starts, plus ``cycles`` at the end."""
        k = self.windows
        return (np.arange(k + 1, dtype=np.int64) * self.cycles + k - 1) // k

    @property
    def total(self) -> int:
        return self.sampled_bits * self.cycles

    @property
    def sizes(self) -> np.ndarray:
        """Population (faults) of each stratum."""
        bits = np.where(self.stratum_block < 0, self.sampled_bits, self.block_bits[self.stratum_block])
        lengths = np.diff(self.bounds)
        length = np.where(self.stratum_window < 0, self.cycles, lengths[self.stratum_window])
        return (bits * length).astype(np.int64)

    @property
    def populations(self) -> dict[str, int]:
        return {b: int(n) * self.cycles for b, n in zip(self.blocks, self.block_bits, strict=True)}

    def block_of(self, sites: np.ndarray) -> np.ndarray:
        return self.element_block[np.searchsorted(self.offsets, sites, side="right") - 1]

    def stratum_of(self, block_ids: np.ndarray, cycles: np.ndarray) -> np.ndarray:
        """Stratum index of faults given their block index and cycle."""
        block_ids, cycles = np.asarray(block_ids, dtype=np.int64), np.asarray(cycles, dtype=np.int64)
        window = cycles * self.windows // self.cycles
        if self.strata in ("none", "exhaustive"):
            return np.zeros(len(cycles), dtype=np.int64)
        if self.strata == "block":
            return block_ids
        if self.strata == "cycle":
            return window
        return block_ids * self.windows + window

    def decode(self, stratum: int, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local fault indices of one stratum -> (global sites, cycles)."""
        local = np.asarray(local, dtype=np.int64)
        b, w = int(self.stratum_block[stratum]), int(self.stratum_window[stratum])
        c0, c1 = (0, self.cycles) if w < 0 else (int(self.bounds[w]), int(self.bounds[w + 1]))
        bit, c = np.divmod(local, c1 - c0)
        if b < 0:
            return self._bit_to_site(bit), c + c0
        elems = np.flatnonzero(self.element_block == b)
        cum = np.concatenate([[0], np.cumsum(self.widths[elems])])
        pos = np.searchsorted(cum, bit, side="right") - 1
        return self.offsets[elems[pos]] + bit - cum[pos], c + c0

    def encode(self, stratum: int, sites: np.ndarray, cycles: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`decode` (faults known to lie in ``stratum``)."""
        sites, cycles = np.asarray(sites, dtype=np.int64), np.asarray(cycles, dtype=np.int64)
        b, w = int(self.stratum_block[stratum]), int(self.stratum_window[stratum])
        c0, c1 = (0, self.cycles) if w < 0 else (int(self.bounds[w]), int(self.bounds[w + 1]))
        if b < 0:
            bit = self._site_to_bit(sites)
        else:
            elems = np.flatnonzero(self.element_block == b)
            cum = np.concatenate([[0], np.cumsum(self.widths[elems])])
            element = np.searchsorted(self.offsets, sites, side="right") - 1
            pos = np.searchsorted(elems, element)
            bit = cum[pos] + sites - self.offsets[element]
        return bit * (c1 - c0) + cycles - c0


def fault_space(build_: Build, cycles: int, strata: str = "block", cycle_windows: int = 1,
                exclude_blocks: tuple[str, ...] | None = None) -> FaultSpace:
    """The fault space; ``exclude_blocks`` (default: the design's scaffolding, see the module docstring) are left
    out."""
    if strata not in STRATA:
        raise RampartError(f"strata must be one of {', '.join(STRATA)}, not {strata!r}")
    if not isinstance(cycle_windows, int) or not 1 <= cycle_windows <= cycles:
        raise RampartError(f"cycle windows must be between 1 and the workload's {cycles} cycles, not {cycle_windows}")
    if "cycle" not in strata:
        cycle_windows = 1
    widths = np.array([e.width * e.depth for e in build_.state], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
    if exclude_blocks is None:
        from faultinj.workload import scaffolding_blocks

        exclude_blocks = scaffolding_blocks(build_.design)
    blocks = tuple(b for b in build_.blocks() if b not in exclude_blocks)
    if not blocks:
        raise RampartError(f"every block of {build_.design} is excluded from fault injection")
    element_block = np.array([blocks.index(e.block) if e.block in blocks else -1 for e in build_.state],
                             dtype=np.int64)
    included = element_block >= 0
    active = None if included.all() else np.flatnonzero(included).astype(np.int64)
    block_bits = np.bincount(element_block[included], weights=widths[included],
                             minlength=len(blocks)).astype(np.int64)
    nb, k = len(blocks), cycle_windows
    if strata in ("none", "exhaustive"):
        sb, sw = [-1], [-1]
    elif strata == "block":
        sb, sw = list(range(nb)), [-1] * nb
    elif strata == "cycle":
        sb, sw = [-1] * k, list(range(k))
    else:
        sb, sw = [b for b in range(nb) for _ in range(k)], [w for _ in range(nb) for w in range(k)]
    return FaultSpace(strata, cycles, k, blocks, widths, offsets, element_block, block_bits,
                      np.array(sb, dtype=np.int64), np.array(sw, dtype=np.int64), active)


def fault_plan(build_: Build, cycles: int, samples: int, seed: int, strata: str = "block",
               cycle_windows: int = 1, exclude_blocks: tuple[str, ...] | None = None) -> FaultPlan:
    """The deterministic fault list of a fixed-size (or exhaustive) campaign.

    ``samples`` faults are drawn without replacement with :func:`faultinj.stats.sample_faults`, split over the
    strata in proportion to their populations (:func:`faultinj.stats.allocate`), then put in a seeded random
    order; a fault's id is its position in that order. ``strata="exhaustive"`` plans every fault of the space in
    site-major order (``samples`` and ``seed`` are ignored).
    """
    space = fault_space(build_, cycles, strata, cycle_windows, exclude_blocks)
    total = space.total
    if strata == "exhaustive":
        if total > EXHAUSTIVE_LIMIT:
            raise RampartError(f"the fault space has {total:,} faults, too many to inject exhaustively (limit "
                               f"{EXHAUSTIVE_LIMIT:,}); sample it instead")
        bits, cyc = np.divmod(np.arange(total, dtype=np.int64), cycles)
        sites = space._bit_to_site(bits)
        return FaultPlan(sites, cyc, space.block_of(sites), space.blocks, space.populations)
    if not 1 <= samples <= total:
        raise RampartError(f"samples must be between 1 and the population ({total} site-cycles), not {samples}")
    rng = np.random.default_rng(seed)
    sizes = space.sizes
    if samples < len(sizes):
        raise RampartError(f"stratified sampling needs at least one sample per stratum ({len(sizes)})")
    draws = sample_faults(rng, sizes, allocate(samples, sizes))
    sites, cyc = [], []
    for h, idx in enumerate(draws):
        s, c = space.decode(h, idx)
        sites.append(s)
        cyc.append(c)
    sites, cyc = np.concatenate(sites), np.concatenate(cyc)
    order = rng.permutation(len(sites))
    sites, cyc = sites[order].astype(np.int64), cyc[order].astype(np.int64)
    return FaultPlan(sites, cyc, space.block_of(sites), space.blocks, space.populations)


def _draw_excluding(rng: np.random.Generator, population: int, used: np.ndarray, n: int) -> np.ndarray:
    """``n`` distinct indices in ``[0, population)`` not in ``used`` (sorted, unique), uniformly at random."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    free = population - len(used)
    if n > free:
        raise RampartError(f"cannot draw {n} new faults from a stratum with {free} left")
    if 4 * (n + len(used)) >= population:
        rest = np.setdiff1d(np.arange(population, dtype=np.int64), used, assume_unique=True)
        return np.sort(rng.choice(rest, size=n, replace=False))
    got = np.empty(0, dtype=np.int64)
    while got.size < n:
        need = n - got.size
        cand = rng.integers(0, population, size=need + need // 8 + 8, dtype=np.int64)
        got = np.setdiff1d(np.union1d(got, cand), used, assume_unique=False)
    if got.size > n:
        got = np.sort(rng.choice(got, size=n, replace=False))
    return got


def draw_round(space: FaultSpace, used: list[np.ndarray], additional, seed: int, round_: int):
    """One round of the iterative mode: ``additional[h]`` new faults per stratum, none already in ``used[h]``.

    Deterministic from ``(seed, round_)`` and the faults already planned. Returns (stratum, local index, site,
    cycle) arrays in a seeded random order.
    """
    rng = np.random.default_rng([seed, round_])
    strata, local, sites, cyc = [], [], [], []
    for h, (N, n) in enumerate(zip(space.sizes, additional, strict=True)):
        idx = _draw_excluding(rng, int(N), np.sort(used[h]), int(n))
        s, c = space.decode(h, idx)
        strata.append(np.full(len(idx), h, dtype=np.int64))
        local.append(idx)
        sites.append(s)
        cyc.append(c)
    order = rng.permutation(sum(len(x) for x in local))
    return tuple(np.concatenate(x).astype(np.int64)[order] for x in (strata, local, sites, cyc))
