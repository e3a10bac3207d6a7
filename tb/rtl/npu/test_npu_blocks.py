"""The NPU's fault-injection blocks (:data:`rtl.npu.top.BLOCK_MAP`) on U55-128.

The build assigns every state element its block with the descriptor's rule (:meth:`rtl.designs.Design.block_of`:
longest key ``k`` with ``var == k`` or ``var.startswith(k + ".")``; otherwise the first-level instance, or
``top``); on the real build this checks that the
hardware's functional units are there, that none dominates the sampled flip-flops, and that no memory is left to
``top``.
"""
from collections import Counter

import pytest

from rtl.npu.top import BLOCK_MAP
from sim.build import build

REQUIRED = ("controller", "config_regs", "dma", "weight_decoder", "ifm_stager", "mac", "accumulators",
            "output_unit", "ofm_writer", "shram")
SCAFFOLDING = ("extmem",)        # the memory model: never sampled
MAX_SHARE = 0.35                 # of the sampled flip-flop bits, per block
MAX_TOP_SHARE = 0.01             # what is left to "top" (the cycle counters)


def test_descriptor_uses_the_block_map():
    from rtl.designs import get_design

    assert get_design("npu").blocks == BLOCK_MAP and get_design("npu").scaffolding == SCAFFOLDING


@pytest.fixture(scope="module")
def design():
    return build("npu", "u55-128")


@pytest.fixture(scope="module")
def tally(design):
    ff, mem = Counter(), Counter()
    for element in design.state:
        (ff if element.kind == "ff" else mem)[element.block] += element.bits
    sampled = sum(bits for block, bits in ff.items() if block not in SCAFFOLDING)
    print(f"\n{'block':16s} {'FF bits':>8s} {'FF %':>6s} {'memory bits':>12s}")
    for block in sorted(set(ff) | set(mem), key=lambda b: -ff[b]):
        share = "-" if block in SCAFFOLDING else f"{100 * ff[block] / sampled:.1f}"
        print(f"{block:16s} {ff[block]:8d} {share:>6s} {mem[block]:12d}")
    return ff, mem, sampled


def test_required_blocks_present(tally):
    ff, mem, _ = tally
    for block in REQUIRED:
        assert ff[block] + mem[block] > 0, f"block {block!r} is missing or holds no state"
        assert ff[block] > 0, f"block {block!r} has no flip-flops"


def test_no_block_dominates(tally):
    ff, _, sampled = tally
    for block, bits in ff.items():
        if block not in SCAFFOLDING:
            assert bits <= MAX_SHARE * sampled, f"{block}: {bits} of {sampled} sampled flip-flop bits"


def test_top_holds_little(design, tally):
    ff, mem, sampled = tally
    assert mem["top"] == 0
    assert ff["top"] <= MAX_TOP_SHARE * sampled, ff["top"]


def test_every_key_names_state(design):
    """A key no state element lies under is a stale name (a unit was renamed or moved)."""
    names = [e.var for e in design.state]
    for key in BLOCK_MAP:
        assert any(var == key or var.startswith(key + ".") for var in names), key


def test_memories_belong_to_their_unit(design):
    """Every memory is mapped by a key on its own path (so it goes with the unit that owns it), never left to
    the fallback."""
    for element in design.state:
        if element.kind == "mem":
            assert any(element.var == k or element.var.startswith(k + ".") for k in BLOCK_MAP), element.var
