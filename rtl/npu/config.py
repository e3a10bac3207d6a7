"""Configuration of the rampart Ethos-U55-compatible NPU: one frozen dataclass and the four U55 presets.

Architecture numbers come from Vela 5.2.0, ``ethosu/vela/architecture_features.py``:

* ``ArchitectureFeatures.accelerator_configs`` (``ArchitectureConfig(macs, cores, ofm_ublock, ifm_ublock,
  shram_banks, ...)``): MACs per cycle, OFM micro-block ``Block(w, h, d)`` and the number of 1 KiB SHRAM banks
  (``shram_bank_size = 1024``). Note ``Block`` takes (width, height, depth): U55-128's ``Block(2, 1, 8)`` is
  H x W x D = 1 x 2 x 8 (SPEC.md section 6).
* ``SHRAMElements.BitSizes``: accumulators are ``Acc32`` (32 bits, used for int8, ``ACC_FORMAT`` 0) or ``Acc40``
  (40 bits, int16). The MAC datapath therefore needs 40-bit accumulators; int8 streams use the low 32 bits.
* ``max_outstanding_kernels = 2``; ``max_outstanding_dma = 1`` for the U55 (one DMA channel).

The external-memory fields do not exist in Vela: they parameterise :class:`rtl.npu.extmem.ExtMem`, the simulation
model of the system memory behind the NPU's AXI ports.
"""
from dataclasses import dataclass

from rtl.common.protect import normalise_plan

__all__ = ["NpuConfig", "PRESETS", "EXT_WORD_BYTES"]

#: Bytes per external-memory and shared-buffer word. Fixed at 8: ``NativeSim.load_memory`` moves words of at most
#: 64 bits, so 64-bit words let the harness load and read both memories without per-cycle Python.
EXT_WORD_BYTES = 8


def _check_int(name: str, value, lo: int, hi: int):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in {lo}..{hi}, not {value!r}")


@dataclass(frozen=True)
class NpuConfig:
    """One NPU instance. Presets: :data:`PRESETS` (``u55-32`` .. ``u55-256``)."""

    #: MACs per cycle (``ArchitectureConfig.macs``).
    macs: int = 128
    #: OFM micro-block height, width, depth (``ArchitectureConfig.ofm_ublock``, reordered to H, W, D).
    ublock_h: int = 1
    ublock_w: int = 2
    ublock_d: int = 8
    #: Shared buffer (SHRAM) size in KiB (``shram_banks`` x 1 KiB).
    shram_kib: int = 24
    #: Accumulator width in bits (``SHRAMElements.BitSizes[Acc40]``; int8 uses the low 32, ``Acc32``).
    acc_width: int = 40
    #: Kernel ops that may be in flight (``max_outstanding_kernels``).
    max_outstanding_kernels: int = 2
    #: External memory size in KiB (simulation model; on an FPGA it is block RAM: on the ULX3S-85F the default 256 KiB
    #: takes 128 of the 208 DP16KD blocks, beside SHRAM and the compute buffers; BENCHMARKS.md "NPU synthesis").
    ext_mem_kib: int = 256
    #: Keep the external memory's words in the simulation harness (``sim.harness.HOST_MEMORY_PORTS``) instead of in
    #: the netlist: ``ext_mem_kib`` may then be many MiB at no cost to elaboration, build or cycle speed; timing is
    #: unchanged. Not synthesisable and not model state (in no snapshot: not for fault injection). Needs a power-of-two
    #: ``ext_mem_kib``. ``rampart run npu`` switches it on for models that do not fit the preset's memory.
    ext_host_memory: bool = False
    #: Cycles from the cycle a read request is accepted to the cycle its response is valid (>= 2).
    ext_latency: int = 8
    #: Sustained external-memory bandwidth in bytes per cycle (1..8; every request moves one 8-byte word).
    ext_bandwidth: int = 8
    #: Cycles the placeholder compute unit in :mod:`rtl.npu.top` takes per kernel op (a test double).
    stub_compute_cycles: int = 16
    #: Build the NPU with that placeholder (a test double for controller/DMA tests) instead of the compute unit.
    stub_compute: bool = False
    #: Protection plan: sorted (block, option) pairs over the blocks of ``rtl.npu.top.BLOCK_MAP`` (a mapping is
    #: accepted); ``{"*": "lockstep"}`` duplicates every chip unit. Empty: unprotected (see rtl/common/protect).
    protection: tuple = ()

    def __post_init__(self):
        _check_int("macs", self.macs, 32, 256)
        if self.macs & (self.macs - 1):
            raise ValueError(f"macs must be a power of two, not {self.macs!r}")
        for name in ("ublock_h", "ublock_w"):
            _check_int(name, getattr(self, name), 1, 2)
        _check_int("ublock_d", self.ublock_d, 4, 8)
        _check_int("shram_kib", self.shram_kib, 1, 48)
        _check_int("acc_width", self.acc_width, 32, 48)
        _check_int("max_outstanding_kernels", self.max_outstanding_kernels, 1, 3)
        _check_int("ext_mem_kib", self.ext_mem_kib, 1, 64 * 1024)
        _check_int("ext_latency", self.ext_latency, 2, 256)
        _check_int("ext_bandwidth", self.ext_bandwidth, 1, EXT_WORD_BYTES)
        _check_int("stub_compute_cycles", self.stub_compute_cycles, 1, 1 << 16)
        for name in ("stub_compute", "ext_host_memory"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be a bool, not {getattr(self, name)!r}")
        if self.ext_host_memory and self.ext_mem_kib & (self.ext_mem_kib - 1):
            raise ValueError(f"a host memory needs a power-of-two ext_mem_kib, not {self.ext_mem_kib!r}")
        object.__setattr__(self, "protection", normalise_plan(self.protection))
        if self.protection:
            from rtl.npu.top import protection_paths  # the block map lives with the top

            protection_paths(self.protection)   # checks the plan

    @property
    def config_word(self) -> int:
        """Image of the CONFIG register Vela writes into the COP1 header: ``log2(macs) | shram_kib << 8``."""
        return (self.macs.bit_length() - 1) | self.shram_kib << 8

    @property
    def shram_bytes(self) -> int:
        return self.shram_kib * 1024

    @property
    def ext_mem_bytes(self) -> int:
        return self.ext_mem_kib * 1024


PRESETS: dict[str, NpuConfig] = {
    "u55-32": NpuConfig(macs=32, ublock_h=1, ublock_w=1, ublock_d=4, shram_kib=16),
    "u55-64": NpuConfig(macs=64, ublock_h=1, ublock_w=1, ublock_d=8, shram_kib=16),
    "u55-128": NpuConfig(macs=128, ublock_h=1, ublock_w=2, ublock_d=8, shram_kib=24),
    "u55-256": NpuConfig(macs=256, ublock_h=2, ublock_w=2, ublock_d=8, shram_kib=48),
}
