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


def test_pulses_through_the_accelerator_pins(soc):
    """Two pulses (47.4 dB) through the ADC pins, the pulse firmware and the accelerator with the checked-in CNN
    deployed: the outputs printed on uart_tx are LiteRT's reference kernels' on the same windows."""
    import numpy as np

    from faultinj.workloads.pulsedl import _pulse_image, _pulse_net
    from models.pulse.export import run_litert
    from models.pulse.frontend import generate

    model, net = _pulse_net()
    windows = model.quantise(generate(2, 47.4, 7).samples)
    memory, _ = _pulse_image(soc.config, windows, net)
    env = {"RAMPART_PULSEDL_IMAGE": json.dumps([[e, f, [int(w) for w in v]] for e, f, v in memory]),
           "RAMPART_PULSEDL_SAMPLES": json.dumps(windows.astype(np.int64).ravel().tolist()),
           "RAMPART_PULSEDL_FIFO_DEPTH": str(soc.config.adc_fifo_depth),
           "RAMPART_PULSEDL_EXPECT": json.dumps(np.asarray(run_litert(model, windows), np.int64).tolist()),
           "RAMPART_PULSEDL_DIVISOR": str(soc.config.uart_divisor)}
    run_cocotb("pulsedl", "16k", "cocotb_pulsedl_pulse", test_dir=HERE, extra_env=env)
