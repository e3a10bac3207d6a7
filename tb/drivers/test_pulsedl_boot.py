"""drivers.pulsedl_boot: the SoC boots its firmware from memory initialisation alone (what a bitstream holds).

The board boots the pulse firmware with the pulse CNN deployed in the accelerator's initial contents; ``hello.c``
still shows the memory-init path in a few thousand cycles."""
import numpy as np
import pytest
from amaranth.sim import Simulator

from drivers.pulsedl import decode_uart
from drivers.pulsedl_boot import accel_images, boot_adapter, boot_image, boot_network, pulse_defines
from rtl.pulsedl import PRESETS, PulseSoc


def test_boot_image_holds_the_firmware():
    imem, dmem = boot_image(PRESETS["4k"], "hello.c")
    assert 0 < len(imem) <= PRESETS["4k"].imem_words and len(dmem) <= PRESETS["4k"].dmem_words
    assert imem[0] & 0x7F in (0x17, 0x37)        # crt0 starts with `la sp, ...` (auipc / lui)


def _uart_until_line(soc, cfg, window=None, chunks: int = 200) -> bytes:
    sim = Simulator(soc)
    sim.add_clock(1e-6)
    line = []

    async def bench(ctx):
        for _ in range(200):
            await ctx.tick()
            line.append(ctx.get(soc.uart_tx))
        for sample in (() if window is None else window):
            ctx.set(soc.adc_valid, 1)
            ctx.set(soc.adc_data, int(sample))
            await ctx.tick()
            line.append(ctx.get(soc.uart_tx))
        ctx.set(soc.adc_valid, 0)
        for _ in range(chunks):
            for _ in range(250):
                await ctx.tick()
                line.append(ctx.get(soc.uart_tx))
            if b"\n" in decode_uart(np.array(line), cfg.uart_divisor):
                return

    sim.add_testbench(bench)
    sim.run()
    return decode_uart(np.array(line), cfg.uart_divisor)


def test_soc_prints_from_its_initialised_memories():
    """No harness loading: Amaranth's simulator starts from the memories' init values, as the FPGA does."""
    cfg = PRESETS["4k"]
    soc = PulseSoc(cfg)
    soc.imem_init, soc.dmem_init = boot_image(cfg, "hello.c")
    assert _uart_until_line(soc, cfg, chunks=40).startswith(b"hello from PulseDL-II\n")


def _window_and_reference(n: int, seed: int):
    from models.pulse.export import load_model, run_litert
    from models.pulse.frontend import generate
    from models.pulse.resolution import MODEL

    model = load_model(MODEL)
    windows = model.quantise(generate(n, 47.4, seed).samples)
    return windows, np.asarray(run_litert(model, windows), np.int64)


def test_boot_images_run_the_pulse_cnn():
    """The boot image (firmware words, accelerator images) loaded into the Verilated SoC where the init values put
    them: three pulses streamed in print LiteRT's outputs (the boot firmware loops; it never halts)."""
    from drivers.pulsedl import SocRunner

    cfg = PRESETS["16k"]
    net = boot_network(cfg)
    imem, dmem = boot_image(cfg, "pulse.c", pulse_defines(net))
    desc, quant, kernels = accel_images(net)
    runner = SocRunner(cfg)
    sim = runner.sim
    sim.load_memory(sim.element_index("top.imem.storage"), np.asarray(imem, np.uint64))
    sim.load_memory(sim.element_index("top.dmem.storage"), np.asarray(dmem, np.uint64))
    sim.load_memory(sim.element_index("top.accel.descriptors.storage"), np.asarray(desc, np.uint64))
    for f, name in enumerate(("bias_lo", "bias_hi", "mult", "shift")):
        sim.load_memory(sim.element_index(f"top.accel.quant.{name}_table.storage"), np.asarray(quant[f::4], np.uint64))
    for p, rows in enumerate(kernels):
        sim.load_memory(sim.element_index(f"top.accel.pe{p}.kernels"), np.asarray(rows, np.uint64))
    windows, want = _window_and_reference(3, seed=5)
    samples = windows.astype(np.int64).ravel().astype(np.uint16).astype(np.uint32)
    levels, pos, chunk = [], 0, 2048
    for _ in range(80):
        n = min(cfg.adc_fifo_depth - sim.peek("adc_level"), samples.size - pos)
        valid, data = np.zeros(chunk, np.uint32), np.zeros(chunk, np.uint32)
        valid[:n], data[:n] = 1, samples[pos:pos + n]
        pos += n
        out = sim.run_stimulus({"uart_rx": np.ones(chunk, np.uint32), "adc_valid": valid, "adc_data": data},
                               ["uart_tx", "halted"])
        assert not out["halted"].any()
        levels.append(out["uart_tx"][:, 0].astype(np.uint8))
        text = decode_uart(np.concatenate(levels), cfg.uart_divisor).decode()
        if text.count("\n") >= 3:
            break
    rows = [[int(v) for v in line.split()[1:3]] for line in text.splitlines()[:3]]
    assert all(line.startswith("P ") for line in text.splitlines()[:3]), text
    assert rows == want.tolist()


@pytest.mark.slow
def test_board_boot_runs_a_pulse_from_init_alone():
    """boot_adapter's images as Amaranth init values (no harness loading, Amaranth's simulator): one pulse streamed
    into the ADC port prints LiteRT's outputs (~21k cycles, ~30 s)."""
    cfg = PRESETS["16k"]
    soc = PulseSoc(cfg)
    assert boot_adapter(None, None, soc) == []
    windows, want = _window_and_reference(1, seed=3)
    text = _uart_until_line(soc, cfg, windows[0])
    fields = text.split()
    assert fields[0] == b"P" and [int(v) for v in fields[1:3]] == want[0].tolist()
