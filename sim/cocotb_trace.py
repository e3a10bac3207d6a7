"""cocotb test module: replay a stimulus file on any design and write its port trace (see sim.crosscheck).

Environment: RAMPART_STIMULUS (an .npz of input arrays, one per port), RAMPART_OUTPUTS (comma-separated output port
names), RAMPART_TRACE (where to write the .npz of output values, as Python ints in object arrays, plus ``_seconds``:
the wall time of the replay loop).
"""
import os
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge


@cocotb.test()
async def replay_stimulus(dut):
    stimulus = dict(np.load(os.environ["RAMPART_STIMULUS"]))
    outputs = [name for name in os.environ["RAMPART_OUTPUTS"].split(",") if name]
    cycles = len(next(iter(stimulus.values())))
    dut.rst.value = 0
    for name in stimulus:
        getattr(dut, name).value = 0
    dut.clk.value = 0
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start(start_high=False))
    trace = {name: [] for name in outputs}
    start = time.perf_counter()
    for cycle in range(cycles):
        for name, values in stimulus.items():
            getattr(dut, name).value = int(values[cycle])
        await RisingEdge(dut.clk)  # values read here are the settled ones from before the edge
        for name in outputs:
            trace[name].append(int(getattr(dut, name).value))
        await FallingEdge(dut.clk)
    seconds = time.perf_counter() - start
    np.savez(os.environ["RAMPART_TRACE"], _seconds=np.array(seconds),
             **{name: np.array(values, dtype=object) for name, values in trace.items()})
