# amaranth: UnusedElaboratable=no
import random

import pytest
from amaranth import unsigned
from amaranth.lib import data

from rtl.common.stream import SkidBuffer, simulate, stream_get, stream_put


def test_init():
    dut = SkidBuffer(shape=12)
    assert dut.shape == 12
    assert dut.latency == 1


def test_init_wrong_shape():
    with pytest.raises(TypeError, match=r"^shape must be a shape-like object, not 'x'$"):
        SkidBuffer(shape="x")


@pytest.mark.parametrize("p_valid,p_ready", [(1.0, 1.0), (0.5, 1.0), (1.0, 0.3), (0.6, 0.6)])
def test_skid_buffer_in_order_under_backpressure(p_valid, p_ready):
    rng = random.Random(f"skid-{p_valid}-{p_ready}")
    dut = SkidBuffer(shape=8)
    sent = [rng.getrandbits(8) for _ in range(200)]
    received = []

    async def producer(ctx):
        for item in sent:
            while rng.random() >= p_valid:
                await ctx.tick()
            await stream_put(ctx, dut.i_stream, item)

    async def consumer(ctx):
        while len(received) < len(sent):
            while rng.random() >= p_ready:
                await ctx.tick()
            received.append(await stream_get(ctx, dut.o_stream))

    simulate(dut, producer, consumer, max_cycles=5000)
    assert received == sent


def test_skid_buffer_ready_is_registered():
    dut = SkidBuffer(shape=8)

    async def testbench(ctx):
        await stream_put(ctx, dut.i_stream, 1)  # into the output register
        await stream_put(ctx, dut.i_stream, 2)  # into the skid register: now full
        assert ctx.get(dut.i_stream.ready) == 0
        ctx.set(dut.o_stream.ready, 1)
        assert ctx.get(dut.i_stream.ready) == 0  # no combinational path from o_stream.ready
        assert await stream_get(ctx, dut.o_stream) == 1
        assert ctx.get(dut.i_stream.ready) == 1
        assert await stream_get(ctx, dut.o_stream) == 2

    simulate(dut, testbench, max_cycles=20)


def test_skid_buffer_full_throughput():
    dut = SkidBuffer(shape=8)
    received = []
    valid_trace = []

    async def producer(ctx):
        for item in range(50):
            await stream_put(ctx, dut.i_stream, item)

    async def consumer(ctx):
        ctx.set(dut.o_stream.ready, 1)
        for _ in range(60):
            _, _, payload, valid = await ctx.tick().sample(dut.o_stream.payload, dut.o_stream.valid)
            valid_trace.append(str(valid))
            if valid:
                received.append(payload)

    simulate(dut, producer, consumer, max_cycles=200)
    assert received == list(range(50))
    # one idle cycle of latency, then 50 back-to-back transfers
    assert "".join(valid_trace) == "0" + "1" * 50 + "0" * 9


def test_put_get_with_structured_payload():
    layout = data.StructLayout({"addr": unsigned(4), "last": unsigned(1)})
    dut = SkidBuffer(shape=layout)
    got = []

    async def producer(ctx):
        for i in range(4):
            await stream_put(ctx, dut.i_stream, {"addr": i, "last": i == 3})

    async def consumer(ctx):
        for _ in range(4):
            payload = await stream_get(ctx, dut.o_stream)
            got.append((payload.addr, payload.last))

    simulate(dut, producer, consumer, max_cycles=100)
    assert got == [(0, 0), (1, 0), (2, 0), (3, 1)]


def test_simulate_times_out_on_a_stalled_handshake():
    dut = SkidBuffer(shape=8)

    async def consumer(ctx):
        await stream_get(ctx, dut.o_stream)  # nobody ever sends

    with pytest.raises(TimeoutError, match=r"after 20 cycles"):
        simulate(dut, consumer, max_cycles=20)
