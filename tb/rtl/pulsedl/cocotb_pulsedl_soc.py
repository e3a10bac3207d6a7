"""cocotb test of the PulseDL-II SoC at its pins: the memories are loaded through their simulator handles with the
ELF image named by ``RAMPART_PULSEDL_IMAGE`` (JSON: ``[element, first word, words]`` entries), the core runs to
its halt, and the bytes it sent on ``uart_tx`` (sampled every clock, decoded as 8N1) must equal
``RAMPART_PULSEDL_EXPECT`` (hex). Run from ``test_cocotb_soc.py``."""
import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from drivers.pulsedl import decode_uart

MAX_CYCLES = 200_000


def memory_handles(dut) -> dict:
    handles = {}
    for handle in dut:
        name = handle._name
        handles[name[1:].rstrip(" ") if name.startswith("\\") else name] = handle
    return handles


@cocotb.test()
async def firmware_prints_over_the_uart_pin(dut):
    handles = memory_handles(dut)
    for element, first, words in json.loads(os.environ["RAMPART_PULSEDL_IMAGE"]):
        memory = handles[element.removeprefix("top.")]
        for i, word in enumerate(words):
            memory[first + i].value = word
    dut.uart_rx.value = 1
    dut.rst.value = 1
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start(start_high=False))
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    line = []
    halted_at = None
    for cycle in range(MAX_CYCLES):
        await RisingEdge(dut.clk)
        line.append(int(dut.uart_tx.value))
        if halted_at is None and int(dut.halted.value):
            halted_at = cycle
        if halted_at is not None and cycle > halted_at + 100:
            break
    assert halted_at is not None, "the core did not halt"
    assert not int(dut.trap.value)
    divisor = int(os.environ["RAMPART_PULSEDL_DIVISOR"])
    assert decode_uart(np.array(line), divisor) == bytes.fromhex(os.environ["RAMPART_PULSEDL_EXPECT"])
