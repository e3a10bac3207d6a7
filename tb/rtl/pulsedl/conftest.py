"""Shared fixtures of the PulseDL-II SoC tests: one simulated SoC per module, and the cross toolchain (tests skip,
saying why, only when its executables are missing)."""
import pytest

from models.rv32.toolchain import missing_tools


@pytest.fixture(scope="module")
def soc():
    missing = missing_tools()
    if missing:
        pytest.skip(f"RISC-V tools missing: {', '.join(missing)} (install with `make sysdeps`)")
    from drivers.pulsedl import SocRunner

    return SocRunner("4k")
