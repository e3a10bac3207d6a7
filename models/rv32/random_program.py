"""Random RV32IM test programs for the differential test of the core against qemu-riscv32.

A program starts every register x1..x30 from a random value (a mix of edge values such as 0, -1, 2^31, 2^31 - 1
and random words), runs ``length`` random instructions, then stores x1..x31 after a data region and writes that
region plus the register dump to stdout (Linux ``write``, then ``exit``). On the RTL the first ``ecall`` halts
the core, so after either run the bytes at ``data`` hold the same state: memory region, then registers.

Instructions: every RV32I ALU / shift / upper-immediate operation, the eight M operations, loads and stores of
every width (aligned, inside the data region, based on x31 which the body never writes), forward conditional
branches and JAL/JALR over one to three instructions (so every program terminates), and FENCE.
"""
import random
from dataclasses import dataclass

__all__ = ["DATA_BYTES", "DUMP_BYTES", "RandomProgram", "random_program"]

DATA_BYTES = 256
DUMP_BYTES = 31 * 4          # x1..x31
EDGE_VALUES = (0, 1, -1, 2, -2, 0x7FFF_FFFF, -0x8000_0000, 0xFF, 0x80, 0xFFFF, 0x8000, 31, 32)

R_OPS = ("add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and",
         "mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu")
I_OPS = ("addi", "slti", "sltiu", "xori", "ori", "andi")
SHIFT_OPS = ("slli", "srli", "srai")
LOADS = {"lb": 1, "lbu": 1, "lh": 2, "lhu": 2, "lw": 4}
STORES = {"sb": 1, "sh": 2, "sw": 4}
BRANCHES = ("beq", "bne", "blt", "bge", "bltu", "bgeu")
BASE = "x31"


@dataclass(frozen=True)
class RandomProgram:
    seed: int
    source: str          # assembly for riscv64-unknown-elf-gcc -march=rv32im
    length: int


def _src(rng: random.Random) -> str:
    return f"x{rng.choice([0] + list(range(1, 31)) * 2)}"


def _dst(rng: random.Random) -> str:
    return f"x{rng.randrange(0, 31)}" if rng.random() < 0.03 else f"x{rng.randrange(1, 31)}"


def _instruction(rng: random.Random, label: str) -> list[str]:
    """One instruction, or (for a branch or jump) the instruction and what it jumps over, ending at ``label``."""
    kind = rng.choices(("r", "i", "shift", "upper", "load", "store", "branch", "jump", "fence"),
                       weights=(30, 14, 6, 4, 10, 8, 10, 3, 1))[0]
    if kind == "r":
        return [f"{rng.choice(R_OPS)} {_dst(rng)}, {_src(rng)}, {_src(rng)}"]
    if kind == "i":
        return [f"{rng.choice(I_OPS)} {_dst(rng)}, {_src(rng)}, {rng.randint(-2048, 2047)}"]
    if kind == "shift":
        return [f"{rng.choice(SHIFT_OPS)} {_dst(rng)}, {_src(rng)}, {rng.randrange(32)}"]
    if kind == "upper":
        return [f"{rng.choice(('lui', 'auipc'))} {_dst(rng)}, {rng.randrange(1 << 20)}"]
    if kind == "load":
        op = rng.choice(list(LOADS))
        return [f"{op} {_dst(rng)}, {rng.randrange(DATA_BYTES // LOADS[op]) * LOADS[op]}({BASE})"]
    if kind == "store":
        op = rng.choice(list(STORES))
        return [f"{op} {_src(rng)}, {rng.randrange(DATA_BYTES // STORES[op]) * STORES[op]}({BASE})"]
    if kind == "fence":
        return ["fence"]
    skipped = [_instruction(rng, label)[0] for _ in range(rng.randint(1, 3))]
    skipped = [s for s in skipped if not s.startswith(("b", "j"))] or ["addi x1, x1, 1"]
    if kind == "branch":
        head = [f"{rng.choice(BRANCHES)} {_src(rng)}, {_src(rng)}, {label}"]
    elif rng.random() < 0.5:
        head = [f"jal {_dst(rng)}, {label}"]
    else:                                   # JALR through a register set by LA; the link overwrites one register
        link = _dst(rng)
        head = [f"la x30, {label}", f"jalr {link}, 0(x30)"]
    return head + skipped + [f"{label}:"]


def _value(rng: random.Random) -> int:
    value = rng.choice(EDGE_VALUES) if rng.random() < 0.4 else rng.getrandbits(32)
    return value & 0xFFFF_FFFF


def random_program(seed: int, length: int = 200) -> RandomProgram:
    rng = random.Random(seed)
    lines = [".section .text.start", ".globl _start", "_start:", f"  la {BASE}, data"]
    lines += [f"  li x{r}, {_value(rng)}" for r in range(1, 31)]
    for n in range(length):
        lines += [f"  {line}" if not line.endswith(":") else line for line in _instruction(rng, f".L{n}")]
    lines += [f"  sw x{r}, {DATA_BYTES + 4 * (r - 1)}({BASE})" for r in range(1, 32)]
    lines += ["  li a7, 64", "  li a0, 1", f"  mv a1, {BASE}", f"  li a2, {DATA_BYTES + DUMP_BYTES}", "  ecall",
              "  li a7, 93", "  li a0, 0", "  ecall"]
    data = ", ".join(str(rng.getrandbits(32)) for _ in range(DATA_BYTES // 4))
    lines += [".data", ".align 4", "data:", f"  .word {data}", f"  .space {DUMP_BYTES}"]
    return RandomProgram(seed, "\n".join(lines) + "\n", length)
