"""Fault sites per functional block of a design and the fault space a campaign samples (what `rampart fi sites`
prints).

Sites are the state bits of the build's state map; the design's simulation scaffolding (its descriptor's
``scaffolding``, e.g. the NPU's external-memory model) is listed but never sampled.
"""
from dataclasses import dataclass
from typing import Any

from base import RampartError
from faultinj.workload import default_workload, get_workload, make_workload, scaffolding_blocks

__all__ = ["BlockSites", "SiteTable", "fault_sites", "sampled_bits"]


@dataclass(frozen=True)
class BlockSites:
    block: str
    ff_bits: int
    mem_bits: int
    sampled: bool           # False: simulation scaffolding


@dataclass(frozen=True)
class SiteTable:
    design: str
    config: Any
    workload: str | None    # None: the design has no fault-injection workload
    cycles: int | None      # the workload's length: the fault space is sampled bits x cycles
    blocks: tuple[BlockSites, ...]

    def ff_share(self, block: BlockSites) -> float:
        """``block``'s share of the sampled flip-flop bits (0 for scaffolding)."""
        return block.ff_bits / self.sampled_ff_bits if block.sampled and self.sampled_ff_bits else 0.0

    def bit_share(self, block: BlockSites) -> float:
        """``block``'s share of all sampled bits (flip-flops and memories; 0 for scaffolding)."""
        total = self.sampled_ff_bits + self.sampled_mem_bits
        return (block.ff_bits + block.mem_bits) / total if block.sampled and total else 0.0

    @property
    def sampled_ff_bits(self) -> int:
        return sum(b.ff_bits for b in self.blocks if b.sampled)

    @property
    def sampled_mem_bits(self) -> int:
        return sum(b.mem_bits for b in self.blocks if b.sampled)

    @property
    def fault_space(self) -> int | None:
        if self.cycles is None:
            return None
        return (self.sampled_ff_bits + self.sampled_mem_bits) * self.cycles


def sampled_bits(build_) -> int:
    """State bits of a build that campaigns sample: all but its design's simulation scaffolding."""
    skip = set(scaffolding_blocks(build_.design))
    return sum(e.bits for e in build_.state if e.block not in skip)


def fault_sites(design: str, config=None, workload: str | None = None) -> SiteTable:
    """Flip-flop and memory bits per block of ``design`` (built if needed) and the length of ``workload`` (default:
    the design's first workload; none if the design has no workload: then no fault space is given)."""
    from rtl.designs import get_design
    from sim.build import build

    if workload is None and get_design(design).workloads:
        workload = default_workload(design)
    if workload is not None and get_workload(workload)[0] != design:
        raise RampartError(f"workload {workload} is for {get_workload(workload)[0]}, not {design}")
    result = build(design, config)
    cycles = None if workload is None else make_workload(workload, result.config).fault_cycles
    skip = set(scaffolding_blocks(design))
    per_block: dict[str, list[int]] = {}
    for element in result.state:
        per_block.setdefault(element.block, [0, 0])[element.kind == "mem"] += element.bits
    blocks = tuple(BlockSites(block, ff, mem, block not in skip) for block, (ff, mem) in sorted(per_block.items()))
    return SiteTable(design, result.config, workload, cycles, blocks)
