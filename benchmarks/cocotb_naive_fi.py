"""cocotb test module for benchmarks/fi_speed.py: the NAIVE fault-injection path, as the issue defines it.

One cocotb + Verilator process; for each fault: reset, replay the workload from cycle 0 (one await per cycle), flip
the bit at its cycle through the simulator handle, replay to the end, compare the observed outputs with the golden
ones. No snapshots, no early stop. Environment: RAMPART_FI_CASE (an .npz with the workload inputs, observe mask,
golden outputs and the faults), RAMPART_FI_RESULT (where the per-fault SDC flags and the wall time go).
"""
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge


def _handles(dut):
    handles = {}
    for handle in dut:
        name = handle._name
        handles[name[1:].rstrip(" ") if name.startswith("\\") else name] = handle
    return handles


@cocotb.test()
async def naive_injections(dut):
    case = np.load(os.environ["RAMPART_FI_CASE"], allow_pickle=True)
    inputs = case["inputs"].item()
    observe, golden = case["observe"], case["golden"]
    names, words, bits, cycles = case["names"], case["words"], case["bits"], case["cycles"]
    n_cycles = len(observe)
    handles = _handles(dut)
    dut.rst.value = 0
    for name in inputs:
        handles[name].value = 0
    dut.clk.value = 0
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start(start_high=False))
    sdc = []
    start = time.perf_counter()
    for name, word, bit, fault_cycle in zip(names, words, bits, cycles, strict=True):
        dut.rst.value = 1
        await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        differs = False
        for cycle in range(n_cycles):
            if cycle == fault_cycle:
                target = handles[str(name)]
                value = int(target[int(word)].value) if len(target) and str(name) in case["memories"] else None
                if value is None:
                    target.value = int(target.value) ^ (1 << int(bit))
                else:
                    target[int(word)].value = value ^ (1 << int(bit))
            for port, values in inputs.items():
                handles[port].value = int(values[cycle])
            await RisingEdge(dut.clk)
            if observe[cycle] and int(dut.out.value) != int(golden[cycle]):
                differs = True
            await FallingEdge(dut.clk)
        sdc.append(differs)
    np.savez(os.environ["RAMPART_FI_RESULT"], sdc=np.array(sdc), seconds=np.array(time.perf_counter() - start))
