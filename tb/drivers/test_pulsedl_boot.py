"""drivers.pulsedl_boot: the SoC boots its firmware from memory initialisation alone (what a bitstream holds)."""
import numpy as np
from amaranth.sim import Simulator

from drivers.pulsedl import decode_uart
from drivers.pulsedl_boot import boot_adapter, boot_image
from rtl.pulsedl import PRESETS, PulseSoc


def test_boot_image_holds_the_firmware():
    imem, dmem = boot_image(PRESETS["4k"])
    assert 0 < len(imem) <= PRESETS["4k"].imem_words and len(dmem) <= PRESETS["4k"].dmem_words
    assert imem[0] & 0x7F in (0x17, 0x37)        # crt0 starts with `la sp, ...` (auipc / lui)


def test_soc_prints_from_its_initialised_memories():
    """No harness loading: Amaranth's simulator starts from the memories' init values, as the FPGA does."""
    cfg = PRESETS["4k"]
    soc = PulseSoc(cfg)
    assert boot_adapter(None, None, soc) == []     # no platform: nothing wired, the image is set
    sim = Simulator(soc)
    sim.add_clock(1e-6)
    line = []
    want = b"hello from PulseDL-II\n"

    async def bench(ctx):
        for _ in range(40):
            for _ in range(250):
                await ctx.tick()
                line.append(ctx.get(soc.uart_tx))
            if decode_uart(np.array(line), cfg.uart_divisor).startswith(want):
                return

    sim.add_testbench(bench)
    sim.run()
    assert decode_uart(np.array(line), cfg.uart_divisor).startswith(want)
