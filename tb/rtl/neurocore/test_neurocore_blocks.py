"""Fault-injection blocks of the NeuroCore designs (``BLOCK_MAP`` of rtl/neurocore/core.py and uart_top.py).

A state element belongs to the block of the longest ``BLOCK_MAP`` key that equals its dotted flat name or prefixes
it (followed by "."), else to its first-level instance, else to "top" (:meth:`rtl.designs.Design.block_of`, which
the build applies). On the built designs: the blocks are
exactly the functional units named below, no block holds more than 35% of the flip-flop bits, every memory lies
in the block of the unit that owns it, the top modules hold no state, and every key still names some state.

256x256 (the target size) takes about two minutes per design to build cold, so it runs in the slow tier; the fast
tier checks the presets the other NeuroCore tests build anyway.
"""
import re
from collections import Counter

import pytest

from rtl.neurocore import core, uart_top
from sim.build import build

MAX_FF_SHARE = 0.35
ENGINE_BLOCKS = {"host_interface", "global_registers", "sequencer", "spike_bitmaps", "input_buffer",
                 "raster_output", "synapse_memory", "stdp", "neuron_state", "neuron_decay", "neuron_fire", "traces"}
UART_BLOCKS = ENGINE_BLOCKS | {"uart_link", "command_parser", "frame_buffer", "command_executor"}
NEURON_FIELDS = "theta|v_reset|v_rest|bias|d_v|d_i|t_ref|i_syn|v|ref|acc|count|a"
MEMORY_OWNERS = [   # (memory name, block of the unit that owns it)
    (r"w_mem_\d+", "synapse_memory"),
    (rf"({NEURON_FIELDS})_\d+", "neuron_state"),
    (r"[xy]_\d+", "traces"),
    (r"buf", "frame_buffer"),
]
DESIGNS = {"neurocore": (core.BLOCK_MAP, ENGINE_BLOCKS), "neurocore_uart": (uart_top.BLOCK_MAP, UART_BLOCKS)}


def test_descriptors_use_the_block_maps():
    from rtl.designs import get_design

    assert get_design("neurocore").blocks == core.BLOCK_MAP
    assert get_design("neurocore_uart").blocks == uart_top.BLOCK_MAP


def check_blocks(design: str, preset: str):
    block_map, expected = DESIGNS[design]
    state = build(design, preset).state
    blocks = [e.block for e in state]
    assert set(blocks) == expected

    ff = Counter()
    for e, block in zip(state, blocks, strict=True):
        if e.kind == "ff":
            ff[block] += e.bits
    total = sum(ff.values())
    largest, bits = ff.most_common(1)[0]
    assert bits <= MAX_FF_SHARE * total, f"{largest} holds {bits} of {total} flip-flop bits"

    for e, block in zip(state, blocks, strict=True):
        if e.kind == "mem":
            owner = next((b for pattern, b in MEMORY_OWNERS if re.fullmatch(pattern, e.name)), None)
            assert owner is not None, f"memory {e.var} has no known owner"
            assert block == owner, f"memory {e.var} is in block {block}, not {owner}"
    assert not [e.var for e in state if not e.path], "the top module holds state of its own"
    unused = [k for k in block_map if not any(e.var == k or e.var.startswith(k + ".") for e in state)]
    assert not unused, f"BLOCK_MAP keys that name no state: {unused}"


@pytest.mark.parametrize("design, preset", [("neurocore", "64x64"), ("neurocore_uart", "16x16-sim")])
def test_blocks(design, preset):
    check_blocks(design, preset)


@pytest.mark.slow
@pytest.mark.parametrize("design", ["neurocore", "neurocore_uart"])
def test_blocks_256(design):
    check_blocks(design, "256x256")
