"""Valid/ready stream helpers on top of :mod:`amaranth.lib.stream`.

A transfer happens on a clock edge where both ``valid`` and ``ready`` are high (:func:`transfer`). A producer
must hold ``payload`` stable while ``valid`` is high and not yet accepted; ``ready`` may depend combinationally on
``valid``, but ``valid`` must never depend on ``ready``.

Hardware: :class:`SkidBuffer`, a fully registered one-entry-deep (two-slot) pipeline stage.

Testbench (Amaranth pysim, async ``add_testbench`` only): :func:`stream_put`, :func:`stream_get`, and
:func:`simulate`, which runs testbenches against a design with a cycle budget.
"""
import operator

from amaranth import Module, Signal
from amaranth.hdl import Shape, ShapeLike, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

__all__ = ["transfer", "SkidBuffer", "stream_put", "stream_get", "simulate"]

#: Clock period that :func:`simulate` uses (only the cycle count matters).
SIM_CLOCK_PERIOD = 1e-6


def transfer(s: stream.Interface) -> Value:
    """Whether ``s`` transfers a payload on the next active clock edge (``valid & ready``)."""
    return s.valid & s.ready


class SkidBuffer(wiring.Component):
    """Register slice that breaks both the ``valid``/``payload`` and the ``ready`` combinational paths.

    Throughput is one payload per cycle; latency is :attr:`latency` (1) cycle from ``i_stream`` to ``o_stream``.
    ``i_stream.ready`` is a register output, so it does not depend on ``o_stream.ready`` in the same cycle.

    Parameters
    ----------
    shape : shape-like
        Payload shape.

    Members
    -------
    i_stream : ``In(stream.Signature(shape))``
    o_stream : ``Out(stream.Signature(shape))``
    """

    latency = 1

    def __init__(self, *, shape: ShapeLike):
        try:
            Shape.cast(shape)
        except TypeError:
            raise TypeError(f"shape must be a shape-like object, not {shape!r}") from None
        self._shape = shape
        super().__init__({
            "i_stream": In(stream.Signature(shape)),
            "o_stream": Out(stream.Signature(shape)),
        })

    @property
    def shape(self) -> ShapeLike:
        return self._shape

    def elaborate(self, platform):
        m = Module()
        # The output register is `o_stream` itself; `skid` holds the payload that arrived while the
        # consumer stalled, and `i_stream.ready` is low exactly while `skid` is full.
        skid_payload = Signal(self._shape, name="skid_payload")
        skid_valid = Signal(name="skid_valid")
        o_valid = Signal(name="o_valid")
        o_payload = Signal(self._shape, name="o_payload")
        m.d.comb += [
            self.o_stream.valid.eq(o_valid),
            self.o_stream.payload.eq(o_payload),
            self.i_stream.ready.eq(~skid_valid),
        ]
        o_free = ~o_valid | self.o_stream.ready
        with m.If(o_free):
            with m.If(skid_valid):
                m.d.sync += [o_payload.eq(skid_payload), o_valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [o_payload.eq(self.i_stream.payload), o_valid.eq(self.i_stream.valid)]
        with m.Elif(transfer(self.i_stream)):
            m.d.sync += [skid_payload.eq(self.i_stream.payload), skid_valid.eq(1)]
        return m


# The helpers below loop over one-shot waits instead of using `ctx.tick().until(...)`. When a testbench is abandoned
# while it waits inside `until()` or `repeat()` (a background monitor when the simulation ends, or any testbench
# after another one failed), closing it runs their `finally: aclose()` on a generator that is still running, and
# Python reports "RuntimeError: aclose(): asynchronous generator is already running" (pytest turns it into a failure).

async def stream_put(ctx, s: stream.Interface, payload) -> None:
    """Offer ``payload`` on ``s`` (driven by the testbench) and return right after the edge that accepts it.

    ``valid`` is deasserted again on return, so back-to-back calls still give one transfer per cycle.
    """
    ctx.set(s.valid, 1)
    ctx.set(s.payload, payload)
    while True:
        _, _, ready = await ctx.tick().sample(s.ready)
        if ready:
            break
    ctx.set(s.valid, 0)


async def stream_get(ctx, s: stream.Interface):
    """Accept one payload from ``s`` (driven by the design) and return it, right after the edge that took it."""
    ctx.set(s.ready, 1)
    while True:
        _, _, payload, valid = await ctx.tick().sample(s.payload, s.valid)
        if valid:
            break
    ctx.set(s.ready, 0)
    return payload


def simulate(design, *testbenches, max_cycles: int, background=(), vcd_file=None) -> None:
    """Run ``testbenches`` (async functions of ``ctx``) on ``design`` in the ``sync`` domain until all return.

    ``background`` testbenches (monitors) run alongside and are dropped once the others finish. Fails with
    :class:`TimeoutError` when the run takes more than ``max_cycles`` clock cycles, so a hung handshake fails
    fast instead of hanging the test run.
    """
    async def watchdog(ctx):
        for _ in range(max_cycles):  # one-shot waits: see the note above stream_put
            await ctx.tick()
        raise TimeoutError(f"simulation still running after {max_cycles} cycles")

    sim = Simulator(design)
    sim.add_clock(SIM_CLOCK_PERIOD)
    for testbench in testbenches:
        sim.add_testbench(testbench)
    for testbench in (*background, watchdog):
        sim.add_testbench(testbench, background=True)
    if vcd_file is None:
        sim.run()
    else:
        with sim.write_vcd(vcd_file):
            sim.run()


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    """Shared constructor check for the blocks in :mod:`rtl.common`: an ``int`` (not ``bool``) >= ``minimum``."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, not {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value!r}")
    return value
