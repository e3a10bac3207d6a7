"""cocotb end to end on the full NPU (real compute unit): a Vela-compiled conv, output against LiteRT.

The host side is a driver's: the Vela payload, weights and input go into external memory through the simulator's
handles (laid out by ``drivers.npu.layout``), ``start`` is pulsed, and the OFM is read back through the handles.
The expected output comes from LiteRT's reference kernels, not from the RTL. Run from ``test_cocotb_controller.py``
(slow tier: it needs a cocotb build of the whole NPU).
"""
from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb_npu_tb import NpuBench, config_from_env

from drivers.npu import layout
from models.npu import cmdstream, tflite_builder
from models.npu.reference import run_reference
from models.npu.vela import compile_cached
from rtl.npu.controller import ErrorCode


def place(image: bytearray, addr: int, payload: bytes):
    image[addr:addr + len(payload)] = payload


@cocotb.test()
async def vela_conv_matches_litert(dut):
    cfg = config_from_env()
    preset = os.environ["RAMPART_NPU_PRESET"]
    bench = NpuBench(dut, cfg)
    await bench.start()
    model = tflite_builder.single_layer(tflite_builder.Conv2D(8, activation="RELU"), (8, 8, 4), seed=2)
    art = compile_cached(model, preset)
    (out,) = art.outputs
    x = np.random.default_rng(3).integers(-128, 128, size=(1, 8, 8, 4), dtype=np.int8)
    expected = run_reference(model, x)

    lay = layout(art, cfg.ext_mem_bytes)
    image = bytearray(cfg.ext_mem_bytes)
    for addr, payload in lay.image(x):      # the payload, the weights and the input
        place(image, addr, payload)
    await bench.sync_memory(bytes(image), bytes(cfg.shram_bytes))
    kernels = sum(k.name in cmdstream.KERNEL_OPS for k in cmdstream.kicks(art.commands()))

    hw = await bench.run(lay.cmd_base, lay.cmd_len, lay.basep, max_edges=2_000_000)
    assert (hw.code, hw.ext_fault) == (ErrorCode.OK, 0)
    assert hw.kernel_count == kernels
    ofm_addr = lay.address(out)
    ofm = np.frombuffer((await bench.read_ext())[ofm_addr:ofm_addr + out.nbytes], dtype=np.int8)
    assert np.array_equal(ofm, expected.reshape(-1)), (ofm, expected.reshape(-1))
    assert len(set(ofm.tolist())) > 8   # a non-trivial output (not all clamped)
    cocotb.log.info(f"conv 3x3 8x8x4 -> 8 ReLU: {hw.done_edge:,} cycles, {hw.kernel_count} kicks, output = LiteRT")
