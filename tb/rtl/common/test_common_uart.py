# amaranth: UnusedElaboratable=no
import random

import pytest
from amaranth import Module
from amaranth.hdl import Fragment

from rtl.common.stream import simulate, stream_get, stream_put
from rtl.common.uart import UartRx, UartTx


def test_init():
    tx, rx = UartTx(divisor=7), UartRx(divisor=7)
    assert (tx.divisor, tx.frame_cycles, rx.divisor) == (7, 70, 7)
    Fragment.get(tx, None)
    Fragment.get(rx, None)


@pytest.mark.parametrize("cls", [UartTx, UartRx])
@pytest.mark.parametrize("divisor,exc,message", [
    (1, ValueError, "divisor must be at least 2, not 1"),
    (4.5, TypeError, "divisor must be an integer, not 4.5"),
    (None, TypeError, "divisor must be an integer, not None"),
])
def test_init_wrong(cls, divisor, exc, message):
    with pytest.raises(exc) as info:
        cls(divisor=divisor)
    assert str(info.value) == message


async def drive_frame(ctx, pin, byte: int, divisor: int, *, stop: int = 1) -> None:
    """Bit-bang one 8N1 frame onto ``pin`` (the start of the call is the start edge)."""
    for bit in (0, *(byte >> i & 1 for i in range(8)), stop):
        ctx.set(pin, bit)
        await ctx.tick().repeat(divisor)


def count_pulses(signal, into: list):
    async def monitor(ctx):
        while True:
            _, _, value = await ctx.tick().sample(signal)
            if value:
                into.append(value)
    return monitor


@pytest.mark.parametrize("divisor", [4, 7])
def test_loopback_random_bytes(divisor):
    rng = random.Random(f"uart-loop-{divisor}")
    tx, rx = UartTx(divisor=divisor), UartRx(divisor=divisor)
    m = Module()
    m.submodules.tx, m.submodules.rx = tx, rx
    m.d.comb += rx.rx.eq(tx.tx)
    sent = [0x00, 0xFF, 0x55, 0xAA, *(rng.getrandbits(8) for _ in range(28))]
    received, errors = [], []

    async def producer(ctx):
        for i, byte in enumerate(sent):
            if i == len(sent) // 2:
                await ctx.tick().repeat(rng.randrange(1, 3 * divisor))  # a gap with the line idle
            await stream_put(ctx, tx.i_stream, byte)

    async def consumer(ctx):
        for _ in sent:
            received.append(await stream_get(ctx, rx.o_stream))

    simulate(m, producer, consumer, background=[count_pulses(rx.frame_error, errors),
                                                count_pulses(rx.overrun, errors)],
             max_cycles=(len(sent) + 4) * tx.frame_cycles)
    assert received == sent
    assert errors == []


@pytest.mark.parametrize("divisor", [4, 7])
def test_tx_waveform(divisor):
    # Check the line itself: idle high, back-to-back frames of exactly 10 bits, LSB first.
    tx = UartTx(divisor=divisor)
    sent = [0x01, 0x80, 0x3C]
    line = []

    async def producer(ctx):
        assert ctx.get(tx.tx) == 1
        for byte in sent:
            await stream_put(ctx, tx.i_stream, byte)

    async def probe(ctx):
        for _ in range(2 + len(sent) * tx.frame_cycles + 3 * divisor):
            _, _, value = await ctx.tick().sample(tx.tx)
            line.append(value)

    simulate(tx, producer, probe, max_cycles=1000)
    start = line.index(0)
    assert set(line[:start]) == {1}
    for i, byte in enumerate(sent):
        frame = line[start + i * tx.frame_cycles:start + (i + 1) * tx.frame_cycles]
        bits = [frame[k * divisor:(k + 1) * divisor] for k in range(10)]
        assert all(len(set(b)) == 1 for b in bits), "a bit changed within its period"
        values = [b[0] for b in bits]
        assert values == [0, *(byte >> k & 1 for k in range(8)), 1]
    assert set(line[start + len(sent) * tx.frame_cycles:]) == {1}


@pytest.mark.parametrize("divisor", [4, 7])
def test_rx_decodes_bit_banged_waveform(divisor):
    rng = random.Random(f"uart-bang-{divisor}")
    rx = UartRx(divisor=divisor)
    sent = [rng.getrandbits(8) for _ in range(12)]
    received, errors = [], []

    async def line(ctx):
        for byte in sent:
            await ctx.tick().repeat(rng.randrange(1, 2 * divisor))  # idle of random length and phase
            if rng.random() < 0.5:  # a glitch shorter than half a bit must not start a frame
                ctx.set(rx.rx, 0)
                await ctx.tick().repeat(rng.randrange(1, divisor // 2))
                ctx.set(rx.rx, 1)
                await ctx.tick().repeat(divisor)
            await drive_frame(ctx, rx.rx, byte, divisor)

    async def consumer(ctx):
        for _ in sent:
            received.append(await stream_get(ctx, rx.o_stream))

    simulate(rx, line, consumer, background=[count_pulses(rx.frame_error, errors)],
             max_cycles=len(sent) * 15 * divisor)
    assert received == sent
    assert errors == []


@pytest.mark.parametrize("divisor", [2, 4, 7])
def test_rx_latency(divisor):
    rx = UartRx(divisor=divisor)
    valid_at = []

    async def line(ctx):
        await ctx.tick().repeat(3)
        await drive_frame(ctx, rx.rx, 0x5A, divisor)

    async def probe(ctx):
        await ctx.tick().repeat(3)  # now in the first cycle with rx low
        for cycle in range(12 * divisor):
            if ctx.get(rx.o_stream.valid):
                valid_at.append(cycle)
            await ctx.tick()

    simulate(rx, line, probe, max_cycles=1000)
    assert valid_at[0] == rx.latency


@pytest.mark.parametrize("divisor", [4, 7])
def test_rx_frame_error_then_recovers(divisor):
    rx = UartRx(divisor=divisor)
    received, frame_errors = [], []

    async def line(ctx):
        await ctx.tick().repeat(3)
        await drive_frame(ctx, rx.rx, 0xA7, divisor, stop=0)  # missing stop bit...
        await ctx.tick().repeat(25 * divisor)  # ...and the line stays low: a break
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(2 * divisor)
        await drive_frame(ctx, rx.rx, 0x42, divisor)
        await drive_frame(ctx, rx.rx, 0x00, divisor, stop=0)  # a bad stop bit right before a good frame
        ctx.set(rx.rx, 1)
        await ctx.tick().repeat(divisor)
        await drive_frame(ctx, rx.rx, 0x99, divisor)
        await ctx.tick().repeat(2 * divisor)

    async def consumer(ctx):
        while True:
            received.append(await stream_get(ctx, rx.o_stream))

    simulate(rx, line, background=[consumer, count_pulses(rx.frame_error, frame_errors)], max_cycles=1000)
    assert received == [0x42, 0x99]
    assert len(frame_errors) == 2


def test_rx_overrun_keeps_the_first_byte():
    divisor = 4
    rx = UartRx(divisor=divisor)
    overruns = []

    async def testbench(ctx):
        await drive_frame(ctx, rx.rx, 0x11, divisor)
        await drive_frame(ctx, rx.rx, 0x22, divisor)  # nobody has taken 0x11 yet
        await ctx.tick().repeat(2 * divisor)
        assert await stream_get(ctx, rx.o_stream) == 0x11
        assert ctx.get(rx.o_stream.valid) == 0
        await drive_frame(ctx, rx.rx, 0x33, divisor)
        assert await stream_get(ctx, rx.o_stream) == 0x33

    simulate(rx, testbench, background=[count_pulses(rx.overrun, overruns)], max_cycles=500)
    assert len(overruns) == 1
