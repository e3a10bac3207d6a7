# amaranth: UnusedElaboratable=no
import itertools
import random

import pytest
from amaranth import Module, Signal
from amaranth.hdl import Fragment
from amaranth.sim import Simulator

from rtl.common.sram import (
    Protection,
    Sram,
    SramConfig,
    parity_encode_int,
    secded_check_width,
    secded_decode,
    secded_decode_int,
    secded_encode,
    secded_encode_int,
)
from rtl.common.stream import simulate


def test_init():
    sram = Sram(depth=100, width=32, protection=Protection.SECDED)
    assert sram.config == SramConfig(depth=100, width=32, protection=Protection.SECDED)
    assert (sram.config.addr_width, sram.config.check_width, sram.config.stored_width) == (7, 7, 39)
    assert sram.storage.depth == 100
    assert sram.read_latency == 1
    assert len(sram.addr) == 7
    Fragment.get(sram, None)


def test_protection_parses_names():
    assert [Protection(name) for name in ("none", "parity", "secded")] == list(Protection)


@pytest.mark.parametrize("kwargs,exc,message", [
    ({"depth": 0, "width": 8}, ValueError, "depth must be at least 1, not 0"),
    ({"depth": 16, "width": "8"}, TypeError, "width must be an integer, not '8'"),
    ({"depth": 16, "width": 8, "protection": "secded"}, TypeError,
     "protection must be a Protection member, not 'secded'"),
])
def test_init_wrong(kwargs, exc, message):
    with pytest.raises(exc) as info:
        Sram(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("width,check_width", [(1, 2), (4, 3), (8, 4), (11, 4), (12, 5), (26, 5), (57, 6), (64, 7)])
def test_secded_check_width(width, check_width):
    assert secded_check_width(width) == check_width


# --- plain-Python reference codec -----------------------------------------------------------------------------

@pytest.mark.parametrize("width", [1, 4, 8, 11, 16, 64])
def test_reference_secded_single_and_double_flips(width):
    rng = random.Random(width)
    code_width = width + secded_check_width(width) + 1
    for data in (0, (1 << width) - 1, *(rng.getrandbits(width) for _ in range(3))):
        word = secded_encode_int(data, width)
        assert secded_decode_int(word, width) == (data, False, False)
        for bit in range(code_width):
            assert secded_decode_int(word ^ 1 << bit, width) == (data, True, False)
        for a, b in itertools.combinations(range(code_width), 2):
            result = secded_decode_int(word ^ 1 << a ^ 1 << b, width)
            assert result.error and not result.corrected


# --- the Amaranth codec equals the reference on every input ---------------------------------------------------

@pytest.mark.parametrize("width", [4, 8, 13])
def test_amaranth_codec_matches_reference(width):
    rng = random.Random(f"codec-{width}")
    code_width = width + secded_check_width(width) + 1
    m = Module()
    data_in, word_in = Signal(width), Signal(code_width)
    encoded, data_out = Signal(code_width), Signal(width)
    corrected, error = Signal(), Signal()
    decoded = secded_decode(word_in, width)
    m.d.comb += [
        encoded.eq(secded_encode(data_in)),
        data_out.eq(decoded.data), corrected.eq(decoded.corrected), error.eq(decoded.error),
    ]
    # every word for the smallest code (so every error pattern), random words otherwise
    words = range(1 << code_width) if code_width <= 13 else [rng.getrandbits(code_width) for _ in range(600)]

    async def testbench(ctx):
        for data in range(min(1 << width, 600)):
            ctx.set(data_in, data)
            assert ctx.get(encoded) == secded_encode_int(data, width)
        for word in words:
            ctx.set(word_in, word)
            got = (ctx.get(data_out), bool(ctx.get(corrected)), bool(ctx.get(error)))
            assert got == secded_decode_int(word, width), f"word {word:#x}"

    sim = Simulator(m)
    sim.add_testbench(testbench)
    sim.run()


# --- the RAM ----------------------------------------------------------------------------------------------------

async def read(ctx, sram, addr):
    """One read: returns (rdata, corrected, error) from the cycle where ``rvalid`` is high."""
    ctx.set(sram.addr, addr)
    ctx.set(sram.re, 1)
    await ctx.tick()
    ctx.set(sram.re, 0)
    assert ctx.get(sram.rvalid)
    return ctx.get(sram.rdata), ctx.get(sram.corrected), ctx.get(sram.error)


async def write(ctx, sram, addr, value):
    ctx.set(sram.addr, addr)
    ctx.set(sram.wdata, value)
    ctx.set(sram.we, 1)
    await ctx.tick()
    ctx.set(sram.we, 0)


@pytest.mark.parametrize("protection", list(Protection))
def test_random_access_matches_dict(protection):
    rng = random.Random(f"sram-{protection.value}")
    depth, width = 23, 12
    sram = Sram(depth=depth, width=width, protection=protection)
    model = {}
    checked = []

    async def testbench(ctx):
        expected = None  # what rdata must show in the next cycle (read-first on a same-cycle write)
        for _ in range(600):
            addr, we, re = rng.randrange(depth), rng.random() < 0.5, rng.random() < 0.5
            wdata = rng.getrandbits(width)
            ctx.set(sram.addr, addr)
            ctx.set(sram.wdata, wdata)
            ctx.set(sram.we, we)
            ctx.set(sram.re, re)
            _, _, rvalid, rdata, corrected, error = await ctx.tick().sample(
                sram.rvalid, sram.rdata, sram.corrected, sram.error)
            assert not corrected and not error
            if expected is not None:
                assert rvalid and rdata == expected
                checked.append(rdata)
            else:
                assert not rvalid
            expected = model.get(addr, 0) if re else None
            if we:
                model[addr] = wdata
        for addr, value in model.items():  # what is stored is exactly the encoded data
            assert ctx.get(sram.storage[addr]) == sram.config.encode_int(value)

    simulate(sram, testbench, max_cycles=1000)
    assert len(checked) > 250


def test_parity_detects_every_single_flip():
    width = 8
    sram = Sram(depth=4, width=width, protection=Protection.PARITY)

    async def testbench(ctx):
        for addr, value in enumerate((0x00, 0xFF, 0xA5, 0x3C)):
            await write(ctx, sram, addr, value)
            word = ctx.get(sram.storage[addr])
            assert word == parity_encode_int(value, width)
            assert await read(ctx, sram, addr) == (value, 0, 0)
            for bit in range(width + 1):
                ctx.set(sram.storage[addr], word ^ 1 << bit)
                rdata, corrected, error = await read(ctx, sram, addr)
                assert (rdata, corrected, error) == ((word ^ 1 << bit) & 0xFF, 0, 1), f"bit {bit}"
            ctx.set(sram.storage[addr], word)
            assert await read(ctx, sram, addr) == (value, 0, 0)

    simulate(sram, testbench, max_cycles=200)


@pytest.mark.parametrize("width", [8, 16])
def test_secded_corrects_single_and_flags_double_flips(width):
    rng = random.Random(f"secded-{width}")
    sram = Sram(depth=8, width=width, protection=Protection.SECDED)
    code_width = sram.config.stored_width

    async def testbench(ctx):
        addr, value = 5, rng.getrandbits(width)
        await write(ctx, sram, addr, value)
        word = ctx.get(sram.storage[addr])
        assert word == secded_encode_int(value, width)
        for bit in range(code_width):
            ctx.set(sram.storage[addr], word ^ 1 << bit)
            assert await read(ctx, sram, addr) == (value, 1, 0), f"bit {bit}"
        for a, b in itertools.combinations(range(code_width), 2):
            ctx.set(sram.storage[addr], word ^ 1 << a ^ 1 << b)
            _, corrected, error = await read(ctx, sram, addr)
            assert (corrected, error) == (0, 1), f"bits {a}, {b}"
        # correct-on-read does not write back: the flip stays in the array until overwritten
        ctx.set(sram.storage[addr], word ^ 1)
        await read(ctx, sram, addr)
        assert ctx.get(sram.storage[addr]) == word ^ 1
        await write(ctx, sram, addr, value)
        assert ctx.get(sram.storage[addr]) == word

    simulate(sram, testbench, max_cycles=2000)


def test_error_flags_are_one_cycle_pulses():
    sram = Sram(depth=2, width=8, protection=Protection.SECDED)

    async def testbench(ctx):
        await write(ctx, sram, 1, 0x5A)
        ctx.set(sram.storage[1], ctx.get(sram.storage[1]) ^ 0b11)
        assert (await read(ctx, sram, 1))[2] == 1
        await ctx.tick()
        assert ctx.get(sram.rvalid) == 0 and ctx.get(sram.error) == 0

    simulate(sram, testbench, max_cycles=20)
