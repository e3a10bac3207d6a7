"""``npu`` on the ULX3S-85F: the NPU with its external-memory model in ECP5 block RAM (``rampart synth npu``).

The board target is the ``u55-32`` preset unchanged: its 256 KiB ``ExtMem`` becomes 128 of the 208 DP16KD blocks
(each holds 16 data bits x 1024 of a 64-bit word), beside SHRAM and the compute buffers (BENCHMARKS.md "NPU
synthesis"). There is no board adapter: the harness LFSR-drives the host ports and XOR-observes the outputs.

The slow build takes about 30 minutes on a loaded 2-core machine. It fits only once the compute unit's brick RAM
maps to block RAM too (its registered read must not be preceded by the POOL identity mux; see BENCHMARKS.md):
otherwise nextpnr reports 129% of the LUTs and the build fails.
"""
import json
import re
import subprocess

import pytest
from amaranth import Value
from amaranth.back import rtlil
from amaranth.build import ResourceError
from amaranth.hdl import Fragment
from amaranth.lib import wiring

from rtl.boards import BOARDS, SynthHarness, get_adapter, lfsr_layout
from rtl.designs import get_design
from rtl.npu.extmem import ExtMem
from sim.synth import _tool_env, synth

BOARD = "ulx3s-85f"
CONFIG = "u55-32"
EBR_DATA_BITS = 16 * 1024   # a DP16KD holds 18 kbit, 16 of them usable for byte-wide data
ECP5_85F_EBR = 208


def _config():
    return get_design("npu").config(CONFIG)


def _ext_mem_blocks(config) -> int:
    return config.ext_mem_bytes * 8 // EBR_DATA_BITS


def _port_bits(design, flow):
    return sum(len(Value.cast(v)) for _, member, v in design.signature.flatten(design) if member.flow == flow)


def test_npu_harness_elaborates_for_ulx3s():
    entry = get_design("npu")
    design = entry.make(_config())
    assert get_adapter("npu") is None   # the harness takes every host port
    harness = SynthHarness(design)
    in_bits = _port_bits(design, wiring.In)
    # cmd_base, cmd_len, basep[8], start, shram_raddr (2048 words), pmu_addr, pmu_wdata, pmu_we
    assert in_bits == 32 + 32 + 8 * 32 + 1 + 11 + 12 + 32 + 1
    # One LFSR bit per input bit: a 64-bit maximal-length core extended by a shift register, so no two inputs equal.
    assert harness.lfsr_width == in_bits and lfsr_layout(in_bits) == (in_bits, (64, 63, 61, 60))
    platform = BOARDS[BOARD].platform()
    Fragment.get(harness, platform)
    with pytest.raises(ResourceError, match="already been requested"):
        platform.request("led", 0)


def test_ext_mem_maps_to_block_ram(tmp_path):
    """Yosys's ECP5 memory mapping (synth_ecp5 up to map_ffram, ~5-15 s) puts ExtMem's storage in DP16KD blocks:
    its read port is registered (with the out-of-range zeroing as a synchronous reset), so it is a block RAM read."""
    config = _config()
    assert config.ext_mem_kib == 256
    mem = ExtMem(size=config.ext_mem_bytes, latency=config.ext_latency, bandwidth=config.ext_bandwidth)
    (tmp_path / "extmem.il").write_text(rtlil.convert(mem, name="extmem"))
    yosys = _tool_env(BOARDS[BOARD])["YOSYS"]
    script = "read_rtlil extmem.il; synth_ecp5 -top extmem -run :map_ffram; tee -q -o stat.txt stat"
    subprocess.run([yosys, "-q", "-p", script], cwd=tmp_path, check=True, capture_output=True)  # YoWASP sees cwd
    cells = {name: int(n) for n, name in re.findall(r"^\s+(\d+)\s+(\S+)$", (tmp_path / "stat.txt").read_text(), re.M)}
    assert cells.get("DP16KD") == _ext_mem_blocks(config) == 128
    # The only LUT RAM left is the response queue (latency + 1 entries of 66 bits: 17 DPR16X4 slices).
    assert cells.get("TRELLIS_DPR16X4") == 17


@pytest.mark.slow
def test_ulx3s_npu_build(tmp_path):
    r = synth("npu", CONFIG, BOARD, tmp_path)
    assert r.bitstream.suffix == ".bit" and r.bitstream.stat().st_size > 0
    assert r.bram.available == ECP5_85F_EBR
    assert _ext_mem_blocks(_config()) < r.bram.used <= r.bram.available   # ExtMem plus SHRAM and compute buffers
    assert 0 < r.dsp.used <= r.dsp.available
    assert 10_000 < r.lut.used < r.lut.available
    assert r.harness_ff < r.ff.used < r.ff.available
    assert r.fmax_mhz > 0 and r.clock_mhz == 25.0
    # Only the small FIFOs are LUT RAM (136 slices measured); no large memory fell out of block RAM.
    util = json.loads((tmp_path / "report.json").read_text())["utilization"]
    assert util["TRELLIS_RAMW"]["used"] < 1000
