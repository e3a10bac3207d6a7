"""cocotb test of the PulseDL-II SoC with its CNN accelerator at the pins: the memories and the accelerator's
images are loaded through their simulator handles (``RAMPART_PULSEDL_IMAGE``, JSON ``[element, first word, words]``
entries), the ADC samples ``RAMPART_PULSEDL_SAMPLES`` (JSON, 16-bit two's complement) go in on ``adc_valid`` /
``adc_data`` while ``adc_level`` says the FIFO has room, the pulse firmware runs to its halt, and the outputs of its
``P`` lines decoded from ``uart_tx`` must equal ``RAMPART_PULSEDL_EXPECT`` (JSON, one list per pulse). Run from
``test_cocotb_soc.py``."""
import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, Timer
from cocotb_pulsedl_soc import memory_handles

from drivers.pulsedl import decode_uart

MAX_CYCLES = 400_000


@cocotb.test()
async def pulses_through_the_adc_pins(dut):
    handles = memory_handles(dut)
    for element, first, words in json.loads(os.environ["RAMPART_PULSEDL_IMAGE"]):
        memory = handles[element.removeprefix("top.")]
        for i, word in enumerate(words):
            memory[first + i].value = word
    samples = json.loads(os.environ["RAMPART_PULSEDL_SAMPLES"])
    depth = int(os.environ["RAMPART_PULSEDL_FIFO_DEPTH"])
    dut.uart_rx.value = 1
    dut.adc_valid.value = 0
    dut.rst.value = 1
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start(start_high=False))
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0
    line, pos, in_flight, halted_at = [], 0, 0, None
    for cycle in range(MAX_CYCLES):
        # one sample per cycle while the FIFO (counting the sample offered last cycle) has room
        offer = pos < len(samples) and int(dut.adc_level.value) + in_flight < depth
        dut.adc_valid.value = int(offer)
        dut.adc_data.value = samples[pos] if offer else 0
        await RisingEdge(dut.clk)
        await Timer(1, unit="ns")
        pos, in_flight = pos + offer, int(offer)
        line.append(int(dut.uart_tx.value))
        if halted_at is None and int(dut.halted.value):
            halted_at = cycle
        if halted_at is not None and cycle > halted_at + 100:
            break
    assert halted_at is not None, "the firmware did not halt"
    assert not int(dut.trap.value) and pos == len(samples)
    text = decode_uart(np.array(line), int(os.environ["RAMPART_PULSEDL_DIVISOR"])).decode()
    outputs = [[int(v) for v in row.split()[1:3]] for row in text.splitlines() if row.startswith("P ")]
    assert outputs == json.loads(os.environ["RAMPART_PULSEDL_EXPECT"]), text
    assert text.splitlines()[-1].startswith("T "), text
