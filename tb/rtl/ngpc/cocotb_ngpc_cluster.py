"""cocotb test of the NGPC cluster (design ``ngpc``) at its pins: tables and weights written through the ``table``
and ``weights`` ports, then queries streamed with random gaps on ``query.valid`` and random back-pressure on
``results.ready``. Checked at the pins: the stream rules (a result held stable while not taken, every batch
accepted exactly once) and every result equal to the golden models' (``RAMPART_NGPC_CASE``, JSON from
``test_cocotb_cluster.py``). One batch per cycle while the consumer keeps up."""
import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge


def pack(values, bits: int) -> int:
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & ((1 << bits) - 1)) << (i * bits)
    return word


async def reset(dut):
    for port in ("table__en", "weights__en", "query__valid", "results__ready"):
        getattr(dut, port).value = 0
    dut.rst.value = 1
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start(start_high=False))
    for _ in range(2):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


async def load(dut, case):
    for level, table in enumerate(case["tables"]):
        for addr, entry in enumerate(table):
            dut.table__en.value, dut.table__level.value, dut.table__addr.value = 1, level, addr
            dut.table__data.value = pack(entry, case["feature_bits"])
            await RisingEdge(dut.clk)
    dut.table__en.value = 0
    for layer, matrix in enumerate(case["weights"]):
        for row, weights in enumerate(matrix):
            dut.weights__en.value, dut.weights__layer.value, dut.weights__row.value = 1, layer, row
            dut.weights__data.value = pack(weights, case["weight_bits"])
            await RisingEdge(dut.clk)
    dut.weights__en.value = 0


async def produce(dut, batches, rng, gaps: bool):
    for batch in batches:
        while gaps and rng.random() < 0.3:
            dut.query__valid.value = 0
            await RisingEdge(dut.clk)
        dut.query__valid.value, dut.query__payload.value = 1, batch
        while True:
            await ReadOnly()
            taken = int(dut.query__ready.value)   # ready before the edge: this edge takes the batch
            await RisingEdge(dut.clk)
            if taken:
                break
    dut.query__valid.value = 0


@cocotb.test()
async def results_at_the_pins_are_the_golden_models(dut):
    case = json.loads(os.environ["RAMPART_NGPC_CASE"])
    rng = random.Random(case["seed"])
    await reset(dut)
    await load(dut, case)
    lanes, pos_bits = case["lanes"], case["pos_bits"]
    queries = case["queries"]
    batches = [pack([c for q in queries[b:b + lanes] for c in q], pos_bits) for b in range(0, len(queries), lanes)]
    expected = case["results"]
    out_bits, outputs = case["act_bits"], case["outputs"]
    for phase, (gaps, stall) in enumerate(((False, 0.0), (True, 0.4))):
        half = len(batches) // 2
        chunk = batches[:half] if phase == 0 else batches[half:]
        want = expected[:half * lanes] if phase == 0 else expected[half * lanes:]
        cocotb.start_soon(produce(dut, chunk, rng, gaps))
        got, held, first, last = [], None, None, None
        for cycle in range(20 * len(chunk) + 100):
            ready = int(rng.random() >= stall)
            dut.results__ready.value = ready
            await ReadOnly()
            valid, payload = int(dut.results__valid.value), int(dut.results__payload.value)
            if held is not None:
                assert valid and payload == held, f"cycle {cycle}: a result not taken changed or was withdrawn"
            held = payload if valid and not ready else None
            if valid and ready:
                first = cycle if first is None else first
                last = cycle
                got += [[(payload >> ((lane * outputs + k) * out_bits)) & ((1 << out_bits) - 1)
                         for k in range(outputs)] for lane in range(lanes)]
            await RisingEdge(dut.clk)
            if len(got) == len(want):
                break
        signed = [[v - (1 << out_bits) if v >> (out_bits - 1) else v for v in row] for row in got]
        assert signed == want, f"phase {phase}: results differ from the golden models"
        if phase == 0:
            assert last - first + 1 == len(chunk), "not one batch per cycle with the consumer always ready"
