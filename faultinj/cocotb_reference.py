"""cocotb test module: the independent reference path of fault injection (and the issue's "naive" path).

One cocotb + Verilator (or Icarus) process. First a golden pass: reset, replay the workload from cycle 0 with one
await per cycle, record the observed outputs and, at the end, every state element's value read through the
simulator's handles. Then per fault: reset, replay from cycle 0, flip the bit through its handle when the fault's
cycle comes (after that many rising edges, before that cycle's inputs: the fast engine's convention), replay to
the end; SDC if an observed output differs, else LATENT if any state element differs at the end, else MASKED.
No snapshots, no digests, no early stop, nothing shared with the native harness but the Verilog.

Environment: RAMPART_FI_CASE (.npz: inputs dict, observe mask, outputs, state names and memory depths, and the
faults as (name, word, bit, cycle) arrays), RAMPART_FI_RESULT (.npz written: outcome codes, wall seconds).
"""
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

# faultinj.outcomes.Outcome values (kept literal: this module runs inside the simulator process)
MASKED, SDC, LATENT = 0, 1, 5


def _handles(dut):
    handles = {}
    for handle in dut:
        name = handle._name
        handles[name[1:].rstrip(" ") if name.startswith("\\") else name] = handle
    return handles


def _state(handles, names, depths):
    values = []
    for name, depth in zip(names, depths, strict=True):
        handle = handles[str(name)]
        values.append(tuple(int(handle[i].value) for i in range(int(depth))) if depth > 1 else int(handle.value))
    return values


async def _replay(dut, handles, inputs, observe, outputs, fault=None):
    """Reset, run the whole workload (flipping ``fault`` = (name, word, bit, cycle) on the way); observed outputs."""
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    seen = []
    for cycle in range(len(observe)):
        if fault is not None and cycle == fault[3]:
            name, word, bit, _ = fault
            handle = handles[str(name)]
            target = handle[int(word)] if int(word) or str(name) in _MEMORIES else handle
            target.value = int(target.value) ^ (1 << int(bit))
        for port, values in inputs.items():
            handles[port].value = int(values[cycle])
        await RisingEdge(dut.clk)
        if observe[cycle]:
            seen.append(tuple(int(handles[o].value) for o in outputs))
        await FallingEdge(dut.clk)
    return seen


_MEMORIES: set[str] = set()


@cocotb.test()
async def reference_injections(dut):
    case = np.load(os.environ["RAMPART_FI_CASE"], allow_pickle=True)
    inputs, observe, outputs = case["inputs"].item(), case["observe"], [str(o) for o in case["outputs"]]
    state_names, state_depths = case["state_names"], case["state_depths"]
    _MEMORIES.update(str(n) for n, d in zip(state_names, state_depths, strict=True) if d > 1)
    handles = _handles(dut)
    dut.rst.value = 0
    for name in inputs:
        handles[name].value = 0
    dut.clk.value = 0
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start(start_high=False))
    golden = await _replay(dut, handles, inputs, observe, outputs)
    golden_state = _state(handles, state_names, state_depths)
    start = time.perf_counter()
    results = []
    for fault in zip(case["names"], case["words"], case["bits"], case["cycles"], strict=True):
        seen = await _replay(dut, handles, inputs, observe, outputs, fault)
        if seen != golden:
            results.append(SDC)
        else:
            results.append(MASKED if _state(handles, state_names, state_depths) == golden_state else LATENT)
    np.savez(os.environ["RAMPART_FI_RESULT"], outcomes=np.array(results), seconds=np.array(time.perf_counter() - start))
