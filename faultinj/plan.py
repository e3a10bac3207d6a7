"""The fault space of a campaign and how faults are drawn from it: strata, fixed plans, exhaustive plans, rounds.

The fault space is every (state bit, cycle) of a build running a workload of ``cycles`` cycles. It is cut into
strata by ``strata``: a stratum is a *group* of state elements times a *cycle window*.

* ``"none"``: one stratum (uniform sampling);
* ``"block"``: one group per block (the rtl submodule a bit belongs to);
* ``"element"``: one group per state element (register or memory) holding at least 1/:data:`ELEMENT_SHARE` of the
  sampled bits, a memory among them cut into :data:`MEMORY_RANGES` groups of consecutive rows (``"<name>[lo:hi]"``:
  which rows a workload reads, and so whether an upset there matters, depends on the address); the smaller
  elements of a block are pooled by kind into one group (``"<block> ff"``, ``"<block> mem"``), so a design with
  hundreds of small registers does not get hundreds of strata, each needing a pilot. Groups never straddle blocks;
* ``"cycle"``: one stratum per cycle window (``cycle_windows`` windows of near-equal length);
* ``"block,cycle"`` / ``"element,cycle"``: one per (group, cycle window);
* ``"exhaustive"``: one stratum, every fault of the space planned once (id = site * cycles + cycle).

Blocks that are simulation scaffolding (not part of the chip, e.g. the NPU's ``extmem`` memory model; see
:func:`faultinj.workload.scaffolding_blocks`) are left out of the fault space: never sampled, not a stratum, not in
``blocks``; their bits stay in the state map (global site indices are unchanged) and in the state digest. Bits are
then counted over the sampled elements only (``active``).

Window ``w`` of ``K`` covers cycles ``[ceil(w * cycles / K), ceil((w + 1) * cycles / K))``, so the window of
cycle ``c`` is ``c * K // cycles``. Stratum ``h`` is group ``h // K``, window ``h % K``. Within a stratum a fault has
a local index ``bit * window_length + (cycle - window_start)`` with ``bit`` counted over the group's bits in
state-map order.

A space can be rebuilt without the build from :meth:`FaultSpace.describe` (stored with a campaign), see
:func:`space_from_description`.
"""
from dataclasses import dataclass

import numpy as np

from base import RampartError
from faultinj.stats import allocate, sample_faults
from sim.build import Build

__all__ = ["STRATA", "ELEMENT_SHARE", "MEMORY_RANGES", "MIN_PER_STRATUM", "stratum_floor", "FaultSpace", "FaultPlan",
           "fault_space", "fault_plan",
           "draw_round", "space_from_description"]

STRATA = ("none", "block", "element", "cycle", "block,cycle", "element,cycle", "exhaustive")

#: ``"element"`` strata: an element with at least 1/ELEMENT_SHARE of the sampled bits is a group of its own.
ELEMENT_SHARE = 64
#: ``"element"`` strata: such an element that is a memory is cut into this many row ranges, each a group. On the
#: NPU (u55-32, npu_conv) only the first rows of its big buffers are read, so ranges split them into nearly
#: deterministic strata; but every stratum costs a pilot. Measured there (iterative, +/-0.25 % at 99 % on unmasked
#: and SDC, one seed, pilot 30): 5,760 / 5,040 / 6,840 injections with 1 / 4 / 16 ranges.
MEMORY_RANGES = 4

#: Fixed-size campaigns: injections every stratum gets at least (or its whole population, if smaller), so even a
#: block with a tiny share of the bits has a usable interval (30 clean injections bound its rate below ~12 % at
#: 95 %) instead of the single injection proportional allocation gave it. Never more than a quarter of the sample:
#: the floor is ``min(MIN_PER_STRATUM, samples // (4 * strata))``, so most of it stays proportional.
MIN_PER_STRATUM = 30

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
    # "Elements" below are the space's pieces: the state elements in state-map order, except that with element
    # strata a big memory is several pieces (its row ranges).
    widths: np.ndarray             # bits per element
    offsets: np.ndarray            # first global site of each element (+ total at the end)
    element_block: np.ndarray      # block index per element (-1: excluded)
    groups: tuple[str, ...]        # stratum group names
    element_group: np.ndarray      # group index per element (-1: excluded)

    @property
    def active(self) -> np.ndarray:
        """Sampled state elements, in state-map order."""
        return np.flatnonzero(self.element_group >= 0)

    @property
    def sampled_bits(self) -> int:
        """State bits that may be sampled (all but the excluded blocks')."""
        return int(self.widths[self.active].sum())

    @property
    def block_bits(self) -> np.ndarray:
        """Sampled bits per block."""
        keep = self.element_block >= 0
        return np.bincount(self.element_block[keep], weights=self.widths[keep],
                           minlength=len(self.blocks)).astype(np.int64)

    @property
    def group_bits(self) -> np.ndarray:
        keep = self.element_group >= 0
        return np.bincount(self.element_group[keep], weights=self.widths[keep],
                           minlength=len(self.groups)).astype(np.int64)

    @property
    def group_block(self) -> np.ndarray:
        """Block index of each group (-1: the group spans several blocks)."""
        out = np.full(len(self.groups), -2, dtype=np.int64)
        for e in self.active:
            g, b = self.element_group[e], self.element_block[e]
            out[g] = b if out[g] in (-2, b) else -1
        return out

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
        return np.outer(self.group_bits, np.diff(self.bounds)).reshape(-1).astype(np.int64)

    @property
    def names(self) -> tuple[str, ...]:
        """A readable name per stratum (group, and window when there are several)."""
        if self.windows == 1:
            return self.groups
        b = self.bounds
        return tuple(f"{g} @ cycles {b[w]}-{b[w + 1] - 1}" for g in self.groups for w in range(self.windows))

    @property
    def populations(self) -> dict[str, int]:
        return {b: int(n) * self.cycles for b, n in zip(self.blocks, self.block_bits, strict=True)}

    def element_of(self, sites) -> np.ndarray:
        return np.searchsorted(self.offsets, np.asarray(sites, dtype=np.int64), side="right") - 1

    def block_of(self, sites: np.ndarray) -> np.ndarray:
        return self.element_block[self.element_of(sites)]

    def stratum_of(self, sites, cycles) -> np.ndarray:
        """Stratum index of faults (sites in the sampled space)."""
        cycles = np.asarray(cycles, dtype=np.int64)
        group = self.element_group[self.element_of(sites)]
        if np.any(group < 0):
            raise RampartError("a fault lies outside the sampled fault space")
        return group * self.windows + cycles * self.windows // self.cycles

    def _window(self, stratum: int) -> tuple[np.ndarray, int, int]:
        g, w = divmod(int(stratum), self.windows)
        return np.flatnonzero(self.element_group == g), int(self.bounds[w]), int(self.bounds[w + 1])

    def decode(self, stratum: int, local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local fault indices of one stratum -> (global sites, cycles)."""
        local = np.asarray(local, dtype=np.int64)
        elems, c0, c1 = self._window(stratum)
        bit, c = np.divmod(local, c1 - c0)
        cum = np.concatenate([[0], np.cumsum(self.widths[elems])])
        pos = np.searchsorted(cum, bit, side="right") - 1
        return self.offsets[elems[pos]] + bit - cum[pos], c + c0

    def encode(self, stratum: int, sites: np.ndarray, cycles: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`decode` (faults known to lie in ``stratum``)."""
        sites, cycles = np.asarray(sites, dtype=np.int64), np.asarray(cycles, dtype=np.int64)
        elems, c0, c1 = self._window(stratum)
        cum = np.concatenate([[0], np.cumsum(self.widths[elems])])
        element = self.element_of(sites)
        pos = np.searchsorted(elems, element)
        bit = cum[pos] + sites - self.offsets[element]
        return bit * (c1 - c0) + cycles - c0

    def describe(self) -> dict:
        """A JSON-able description from which :func:`space_from_description` rebuilds an equivalent space: runs of
        consecutive sites ``[first site, sites, group]`` (excluded elements left out)."""
        runs: list[list[int]] = []
        for e in self.active:
            first, n, g = int(self.offsets[e]), int(self.widths[e]), int(self.element_group[e])
            if runs and runs[-1][2] == g and runs[-1][0] + runs[-1][1] == first:
                runs[-1][1] += n
            else:
                runs.append([first, n, g])
        group_block = self.group_block
        return {"strata": self.strata, "cycles": self.cycles, "windows": self.windows, "blocks": list(self.blocks),
                "groups": list(self.groups), "group_block": group_block.tolist(), "runs": runs,
                "block_runs": self._block_runs()}

    def _block_runs(self) -> list[list[int]]:
        runs: list[list[int]] = []
        for e in self.active:
            first, n, b = int(self.offsets[e]), int(self.widths[e]), int(self.element_block[e])
            if runs and runs[-1][2] == b and runs[-1][0] + runs[-1][1] == first:
                runs[-1][1] += n
            else:
                runs.append([first, n, b])
        return runs


def space_from_description(d: dict) -> FaultSpace:
    """The :class:`FaultSpace` of :meth:`FaultSpace.describe` (pseudo-elements: runs cut where group or block
    changes, gaps as excluded elements); same strata, sizes, ``stratum_of`` and ``block_of``."""
    cuts = sorted({p for first, n, _ in d["runs"] + d["block_runs"] for p in (first, first + n)})
    group_at = _run_lookup(d["runs"])
    block_at = _run_lookup(d["block_runs"])
    offsets = np.array(cuts, dtype=np.int64)
    if cuts[0] != 0:
        offsets = np.concatenate([[0], offsets])
    widths = np.diff(offsets)
    starts = offsets[:-1]
    return FaultSpace(d["strata"], int(d["cycles"]), int(d["windows"]), tuple(d["blocks"]), widths, offsets,
                      np.array([block_at(s) for s in starts], dtype=np.int64), tuple(d["groups"]),
                      np.array([group_at(s) for s in starts], dtype=np.int64))


def _run_lookup(runs):
    firsts = np.array([r[0] for r in runs], dtype=np.int64)

    def at(site: int) -> int:
        i = int(np.searchsorted(firsts, site, side="right")) - 1
        return runs[i][2] if i >= 0 and site < runs[i][0] + runs[i][1] else -1
    return at


def _pieces(build_: Build, strata: str, element_block: np.ndarray) -> tuple[list, list]:
    """The space's pieces: ``(first site, bits, block index, group name or None)`` in site order, and the group
    names in order of first appearance. A piece is a state element, or with element strata one of the
    :data:`MEMORY_RANGES` row ranges of a big memory."""
    widths = [e.width * e.depth for e in build_.state]
    keep = element_block >= 0
    threshold = sum(w for w, k in zip(widths, keep, strict=True) if k) / ELEMENT_SHARE
    pieces, names, site = [], [], 0
    for e, element in enumerate(build_.state):
        block = int(element_block[e])
        if block < 0:
            pieces.append((site, widths[e], -1, None))
        elif strata.startswith("block"):
            pieces.append((site, widths[e], block, element.block))
        elif not strata.startswith("element"):
            pieces.append((site, widths[e], block, "all"))
        elif widths[e] < threshold:
            pieces.append((site, widths[e], block, f"{element.block} {element.kind}"))
        elif element.kind == "mem" and element.depth >= MEMORY_RANGES:
            rows = [r * element.depth // MEMORY_RANGES for r in range(MEMORY_RANGES + 1)]
            for lo, hi in zip(rows, rows[1:], strict=False):
                pieces.append((site + lo * element.width, (hi - lo) * element.width, block,
                               f"{element.hier_name}[{lo}:{hi}]"))
        else:
            pieces.append((site, widths[e], block, element.hier_name))
        site += widths[e]
    for piece in pieces:
        if piece[3] is not None and piece[3] not in names:
            names.append(piece[3])
    return pieces, names


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
    if exclude_blocks is None:
        from faultinj.workload import scaffolding_blocks

        exclude_blocks = scaffolding_blocks(build_.design)
    blocks = tuple(b for b in build_.blocks() if b not in exclude_blocks)
    if not blocks:
        raise RampartError(f"every block of {build_.design} is excluded from fault injection")
    element_block = np.array([blocks.index(e.block) if e.block in blocks else -1 for e in build_.state],
                             dtype=np.int64)
    pieces, groups = _pieces(build_, strata, element_block)
    index = {name: g for g, name in enumerate(groups)}
    widths = np.array([n for _, n, _, _ in pieces], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
    return FaultSpace(strata, cycles, cycle_windows, blocks, widths, offsets,
                      np.array([b for _, _, b, _ in pieces], dtype=np.int64), tuple(groups),
                      np.array([index.get(g, -1) for _, _, _, g in pieces], dtype=np.int64))


def stratum_floor(samples: int, strata: int) -> int:
    """The per-stratum floor of a fixed-size campaign (see :data:`MIN_PER_STRATUM`); at least 1."""
    return max(1, min(MIN_PER_STRATUM, samples // (4 * max(1, strata))))


def fault_plan(build_: Build, cycles: int, samples: int, seed: int, strata: str = "block",
               cycle_windows: int = 1, exclude_blocks: tuple[str, ...] | None = None,
               min_per_stratum: int | None = None) -> FaultPlan:
    """The deterministic fault list of a fixed-size (or exhaustive) campaign.

    ``samples`` faults are drawn without replacement with :func:`faultinj.stats.sample_faults`, split over the
    strata in proportion to their populations with a floor of ``min_per_stratum`` per stratum (default
    :func:`stratum_floor`; 1 is plain proportional allocation) (:func:`faultinj.stats.allocate`), then put in a
    seeded random order; a fault's id is its position in that order. ``strata="exhaustive"`` plans every fault of
    the space in site-major order (``samples`` and ``seed`` are ignored).
    """
    space = fault_space(build_, cycles, strata, cycle_windows, exclude_blocks)
    total = space.total
    if strata == "exhaustive":
        if total > EXHAUSTIVE_LIMIT:
            raise RampartError(f"the fault space has {total:,} faults, too many to inject exhaustively (limit "
                               f"{EXHAUSTIVE_LIMIT:,}); sample it instead")
        sites, cyc = space.decode(0, np.arange(total, dtype=np.int64))
        return FaultPlan(sites, cyc, space.block_of(sites), space.blocks, space.populations)
    if not 1 <= samples <= total:
        raise RampartError(f"samples must be between 1 and the population ({total} site-cycles), not {samples}")
    rng = np.random.default_rng(seed)
    sizes = space.sizes
    if samples < len(sizes):
        raise RampartError(f"stratified sampling needs at least one sample per stratum ({len(sizes)})")
    floor = stratum_floor(samples, len(sizes)) if min_per_stratum is None else min_per_stratum
    draws = sample_faults(rng, sizes, allocate(samples, sizes, minimum=floor))
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
