"""Directed tests of the RV32IM core, one program per instruction class; the expected values are worked out by
hand from the ISA specification."""
import pytest

from models.rv32.toolchain import assemble
from rtl.pulsedl.config import DMEM_BASE, IMEM_BASE


def run(soc, tmp_path, body: str, data: str = ""):
    text = f".section .text.start\n.globl _start\n_start:\n{body}\n  ecall\n.data\n.align 4\ndata:\n{data}\n"
    elf = assemble({"prog.S": text}, IMEM_BASE, DMEM_BASE, tmp_path / "prog.elf")
    soc.load(elf)
    result = soc.run(max_cycles=100_000)
    assert result.halted
    return result


def regs(result, **expected):
    got = {name: int(result.registers[int(name[1:])]) for name in expected}
    assert got == {name: value & 0xFFFF_FFFF for name, value in expected.items()}


def test_alu_register_and_immediate(soc, tmp_path):
    r = run(soc, tmp_path, """
      li x1, 5
      li x2, -3
      add x3, x1, x2
      sub x4, x1, x2
      sll x5, x1, x1
      slt x6, x2, x1
      sltu x7, x2, x1
      xor x8, x1, x2
      srl x9, x2, x1
      sra x10, x2, x1
      or x11, x1, x2
      and x12, x1, x2
      addi x13, x1, -6
      slti x14, x1, 6
      sltiu x15, x1, -1
      xori x16, x1, -1
      ori x17, x1, 0x70
      andi x18, x2, 0x7f
      slli x19, x1, 31
      srli x20, x2, 28
      srai x21, x2, 31
      add x0, x1, x1
      mv x22, x0
    """)
    assert not r.trap
    regs(r, x3=2, x4=8, x5=5 << 5, x6=1, x7=0, x8=5 ^ -3, x9=0xFFFF_FFFD >> 5, x10=-1, x11=-3, x12=5,
         x13=-1, x14=1, x15=1, x16=~5, x17=0x75, x18=0x7D, x19=0x8000_0000, x20=0xF, x21=-1, x22=0)
    assert r.instret == 23      # 2 li (one addi each) + 21; ecall does not retire


def test_upper_immediates_and_jumps(soc, tmp_path):
    r = run(soc, tmp_path, """
      lui x1, 0x12345
      auipc x2, 0
      la x3, _start
      sub x2, x2, x3          # auipc at _start + 4
      jal x4, 1f
      li x5, 99               # skipped
    1:
      la x6, 1b
      sub x4, x6, x4          # link = address of the skipped li
      la x7, 2f
      jalr x8, 0(x7)
      li x9, 99               # skipped
    2:
      li x10, 0
      li x11, 3
    3:
      addi x10, x10, 7        # loop three times
      addi x11, x11, -1
      bnez x11, 3b
    """)
    regs(r, x1=0x1234_5000, x2=4, x4=4, x5=0, x9=0, x10=21)


@pytest.mark.parametrize("cond, a, b, taken", [
    ("beq", 3, 3, 1), ("beq", 3, 4, 0), ("bne", 3, 4, 1), ("bne", -1, -1, 0),
    ("blt", -1, 1, 1), ("blt", 1, -1, 0), ("bge", 1, -1, 1), ("bge", -1, -1, 1), ("bge", -2, -1, 0),
    ("bltu", 1, -1, 1), ("bltu", -1, 1, 0), ("bgeu", -1, 1, 1), ("bgeu", 1, -1, 0),
])
def test_branches(soc, tmp_path, cond, a, b, taken):
    r = run(soc, tmp_path, f"""
      li x1, {a}
      li x2, {b}
      li x3, 1
      {cond} x1, x2, 1f
      li x3, 0
    1:
    """)
    regs(r, x3=taken)


def test_multiply_and_divide(soc, tmp_path):
    r = run(soc, tmp_path, """
      li x1, 7
      li x2, -3
      li x3, -1
      li x4, 0x80000000
      mul x5, x1, x2
      mulh x6, x3, x3
      mulhu x7, x3, x3
      mulhsu x8, x3, x3
      mulh x9, x4, x4
      li x10, -7
      li x11, 2
      div x12, x10, x11
      rem x13, x10, x11
      divu x14, x10, x11
      remu x15, x10, x11
      div x16, x1, x0
      rem x17, x10, x0
      divu x18, x1, x0
      remu x19, x1, x0
      div x20, x4, x3
      rem x21, x4, x3
      div x22, x1, x2
      rem x23, x1, x2
    """)
    regs(r, x5=-21, x6=0, x7=0xFFFF_FFFE, x8=0xFFFF_FFFF, x9=0x4000_0000, x12=-3, x13=-1,
         x14=0xFFFF_FFF9 // 2, x15=1, x16=-1, x17=-7, x18=0xFFFF_FFFF, x19=7, x20=0x8000_0000, x21=0, x22=-2, x23=1)


def test_loads_and_stores(soc, tmp_path):
    r = run(soc, tmp_path, """
      la x31, data
      lb x1, 0(x31)
      lb x2, 1(x31)
      lb x3, 2(x31)
      lbu x4, 2(x31)
      lh x5, 2(x31)
      lhu x6, 2(x31)
      lw x7, 0(x31)
      lh x8, 0(x31)
      li x9, 0xAABBCCDD
      sb x9, 4(x31)
      sb x9, 7(x31)
      sh x9, 10(x31)
      sw x9, 12(x31)
      lw x10, 4(x31)
      lw x11, 8(x31)
      lw x12, 12(x31)
    """, data=".word 0x80ff7f01\n.word 0\n.word 0\n.word 0")
    regs(r, x1=1, x2=0x7F, x3=-1, x4=0xFF, x5=0xFFFF_80FF, x6=0x80FF, x7=0x80FF_7F01, x8=0x7F01,
         x10=0xDD00_00DD, x11=0xCCDD_0000, x12=0xAABB_CCDD)
    assert r.data(DMEM_BASE + 4, 4) == bytes([0xDD, 0, 0, 0xDD])


def test_timer_counts_cycles_and_unmapped_reads_zero(soc, tmp_path):
    r = run(soc, tmp_path, """
      li x31, 0x31000
      lw x1, 0(x31)
      nop
      lw x2, 0(x31)
      lw x3, 4(x31)
      sub x4, x2, x1
      li x30, 0x40000
      li x5, 123
      sw x5, 0(x30)
      lw x6, 0(x30)
    """)
    regs(r, x4=5, x3=0, x6=0)          # a load is 3 cycles, a nop 2


@pytest.mark.parametrize("body, trap", [
    ("ebreak", False), (".word 0", True), (".word 0xffffffff", True), ("la x1, data\n lw x2, 2(x1)", True),
    ("la x1, data\n sh x2, 1(x1)", True), ("li x1, 0x10002\n jalr x0, 0(x1)", True),
])
def test_halt_and_traps(soc, tmp_path, body, trap):
    r = run(soc, tmp_path, body)
    assert r.trap == trap



def timer_delta(soc, tmp_path, before: str, instruction: str) -> int:
    """Cycles between the timer reads (loads, sampled in their EXECUTE cycle) around ``instruction``."""
    r = run(soc, tmp_path, f"""
      li x29, 0x31000
      li x31, 0x30000
      la x30, data
      li x6, 1000
      li x7, 7
      {before}
      lw x1, 0(x29)
      {instruction}
      lw x2, 0(x29)
      sub x3, x2, x1
    """)
    return int(r.registers[3])


@pytest.mark.parametrize("instruction, cycles", [
    ("nop", 2), ("mul x5, x6, x7", 2), ("mulhu x5, x6, x7", 2), ("lw x5, 0(x30)", 3), ("sw x5, 0(x30)", 3),
    ("beq x0, x0, 1f\n1:", 2), ("bne x0, x0, 1f\n1:", 2), ("jal x5, 1f\n1:", 2), ("div x5, x6, x7", 35),
    ("remu x5, x6, x0", 35),
])
def test_cycles_per_instruction(soc, tmp_path, instruction, cycles):
    """The multi-cycle schedule (rtl/pulsedl/cpu.py): the reads around an instruction are 3 (the load) + its
    cycles apart."""
    assert timer_delta(soc, tmp_path, "", instruction) == 3 + cycles


def test_uart_store_waits_for_the_transmitter(soc, tmp_path):
    """A first UART store in EXECUTE cycle t starts a frame on t+1..t+10*divisor; the first timer read samples at
    t+3; a second store is accepted in the frame's last cycle and acknowledged the next, so the read after it
    samples at t+10*divisor+3."""
    assert timer_delta(soc, tmp_path, "sw x5, 0(x31)", "sw x5, 0(x31)") == 10 * soc.config.uart_divisor
