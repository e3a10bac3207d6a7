"""C firmware (crt0 + picolibc stdio on the UART) on the simulated SoC, and the UART receiver."""
import numpy as np
import pytest

from models.rv32.toolchain import assemble
from rtl.pulsedl.config import DMEM_BASE, IMEM_BASE


def test_hello_firmware_prints_over_the_uart(soc, tmp_path):
    from drivers.pulsedl import build_firmware, run_with_uart

    soc.load(build_firmware("hello.c", tmp_path / "hello.elf", "16k"))
    result, text = run_with_uart(soc)
    assert result.halted and not result.trap
    assert int(result.registers[10]) == 42          # main's return value in a0
    # fib(40), -1234567 / 7 and % 7 (C truncates toward zero) worked out by hand
    assert text == b"hello from PulseDL-II\nfib(40)=102334155 -1234567/7=-176366 -1234567%7=-5\n"


def test_uart_receiver_delivers_bytes_to_the_core(soc, tmp_path):
    program = f"""
    .section .text.start
    .globl _start
    _start:
      li x1, 0x30000          # UART data: bit 8 says a byte was there
      li x5, {DMEM_BASE}
      li x3, 3
    1:
      lw x2, 0(x1)
      andi x4, x2, 0x100
      beqz x4, 1b
      sb x2, 0(x5)
      addi x5, x5, 1
      addi x3, x3, -1
      bnez x3, 1b
      ecall
    """
    elf = assemble({"rx.S": program}, IMEM_BASE, DMEM_BASE, tmp_path / "rx.elf")
    soc.load(elf)
    divisor = soc.config.uart_divisor
    frames = []
    for byte in b"PDL":
        bits = [0] + [(byte >> i) & 1 for i in range(8)] + [1]
        frames += [b for b in bits for _ in range(divisor)] + [1] * 3
    soc.sim.run_stimulus({"uart_rx": np.array([1] * 10 + frames + [1] * 200, dtype=np.uint32)}, ["halted"])
    result = soc.run(max_cycles=0)
    assert result.halted and not result.trap
    assert result.data(DMEM_BASE, 3) == b"PDL"


def test_bench_firmware_matches_the_same_c_on_the_host(soc, tmp_path):
    """bench.c (CRC-32, matrix product, sort; fixed-width integer C) prints the same checksum on the RTL as when
    compiled by the host's C compiler and run natively: an independent reference for the C the core executes."""
    import shutil
    import subprocess

    from drivers.pulsedl import FIRMWARE, build_firmware, run_with_uart

    host_cc = shutil.which("cc") or shutil.which("gcc")
    if host_cc is None:
        pytest.skip("no host C compiler")
    native = tmp_path / "bench_host"
    subprocess.run([host_cc, "-O1", "-DROUNDS=5", "-o", str(native), str(FIRMWARE / "bench.c")], check=True)
    expected = subprocess.run([str(native)], capture_output=True, check=True).stdout
    soc.load(build_firmware("bench.c", tmp_path / "bench.elf", "16k", defines={"ROUNDS": 5}))
    result, text = run_with_uart(soc)
    assert result.halted and not result.trap
    assert text == expected and text.startswith(b"bench 5 rounds: ")
