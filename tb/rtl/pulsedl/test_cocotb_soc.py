"""cocotb + Verilator: the hello firmware on the PulseDL-II SoC, memories loaded and UART decoded at the pins
(``cocotb_pulsedl_soc.py``); the text must be what the native harness run shows (test_firmware.py)."""
import json
from pathlib import Path

from drivers.pulsedl import build_firmware
from models.rv32.toolchain import load_segments
from rtl.pulsedl.config import DMEM_BASE, IMEM_BASE
from sim.cocotb_glue import run_cocotb

HERE = Path(__file__).parent
HELLO = b"hello from PulseDL-II\nfib(40)=102334155 -1234567/7=-176366 -1234567%7=-5\n"


def image(elf: Path) -> list:
    entries = []
    for seg in load_segments(elf)[1]:
        element, base = ("top.imem.storage", IMEM_BASE) if seg.address < DMEM_BASE else ("top.dmem.storage", DMEM_BASE)
        data = seg.data + bytes(-len(seg.data) % 4)
        entries.append([element, (seg.address - base) // 4,
                        [int.from_bytes(data[i:i + 4], "little") for i in range(0, len(data), 4)]])
    return entries


def test_hello_on_the_pins(soc, tmp_path):
    elf = build_firmware("hello.c", tmp_path / "hello.elf", "16k")
    env = {"RAMPART_PULSEDL_IMAGE": json.dumps(image(elf)), "RAMPART_PULSEDL_EXPECT": HELLO.hex(),
           "RAMPART_PULSEDL_DIVISOR": str(soc.config.uart_divisor)}
    run_cocotb("pulsedl", "16k", "cocotb_pulsedl_soc", test_dir=HERE, extra_env=env)
