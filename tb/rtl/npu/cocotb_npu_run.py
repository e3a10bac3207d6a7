"""pytest side of the NPU cocotb benches: run a ``cocotb_npu_*`` module on design ``npu`` through ``run_cocotb``.

Verilator, not Icarus: measured on the stub-compute U55-128 build, cocotb + Verilator idles at ~145,000 cycles/s
against ~50,000 for Icarus, and its one-off build (~10 s) is cached with the design build. All runs of these modules
share one cocotb build folder; ``run_cocotb`` serialises them.
"""
import dataclasses
import json
from pathlib import Path

from rtl.npu.config import PRESETS, NpuConfig
from sim.cocotb_glue import run_cocotb

HERE = Path(__file__).parent
#: The controller/DMA benches run on U55-128 with the compute unit replaced by its documented test double.
STUB_CONFIG = dataclasses.replace(PRESETS["u55-128"], stub_compute=True)


def run_bench(module: str, config: NpuConfig = STUB_CONFIG, *, tests: tuple[str, ...] = (), seed: int = 1,
              sweep: int = 0, env: dict[str, str] | None = None) -> Path:
    """Run cocotb module ``module`` (in this folder); ``tests`` limits it to those test names."""
    env = {"RAMPART_NPU_CONFIG": json.dumps(dataclasses.asdict(config)), "RAMPART_SEED": str(seed),
           "RAMPART_SWEEP": str(sweep), **(env or {})}
    if tests:
        env["COCOTB_TEST_FILTER"] = r"\.(" + "|".join(tests) + ")$"
    return run_cocotb("npu", config, module, test_dir=HERE, extra_env=env)
