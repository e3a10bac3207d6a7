"""Shared fixtures of the PulseDL-II SoC tests: one simulated SoC per module, and the cross toolchain (tests skip,
saying why, only when its executables are missing)."""
import pytest

from models.rv32.toolchain import PICOLIBC_SPECS, missing_tools


@pytest.fixture(scope="session")
def soc():
    """The default (16k) SoC, shared by all tests (each loads its program and resets it)."""
    missing = missing_tools() + ([] if PICOLIBC_SPECS.exists() else ["picolibc"])
    if missing:
        pytest.skip(f"RISC-V tools missing: {', '.join(missing)} (install with `make sysdeps`)")
    from drivers.pulsedl import SocRunner

    return SocRunner("16k")
