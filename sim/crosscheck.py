"""Port traces of one design under several simulators, for checking that they agree cycle for cycle.

A trace is, per cycle: apply that cycle's inputs, sample every output (settled, before the clock edge), clock once.
The same definition is implemented for Amaranth's Python simulator here, for the native harness
(:meth:`sim.harness.NativeSim.run_stimulus`) and for cocotb (:mod:`sim.cocotb_trace`).
"""
import numpy as np
from amaranth.hdl import Value
from amaranth.sim import Simulator

from base import RampartError
from sim.build import Port


def random_stimulus(ports: tuple[Port, ...], cycles: int, seed: int) -> dict[str, np.ndarray]:
    """Uniformly random values for every input port (up to 64 bits wide), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    stimulus = {}
    for port in ports:
        if port.direction != "in":
            continue
        if port.width > 64:
            raise RampartError(f"random stimulus supports ports up to 64 bits; {port.name} has {port.width}")
        stimulus[port.name] = rng.integers(0, 1 << port.width, size=cycles, dtype=np.uint64)
    return stimulus


def words_to_ints(words: np.ndarray) -> list[int]:
    """(cycles, words) uint32 array -> one Python int per cycle."""
    return [sum(int(w) << (32 * i) for i, w in enumerate(row)) for row in words]


def native_trace(sim, stimulus: dict[str, np.ndarray], outputs: list[str]) -> dict[str, list[int]]:
    raw = sim.run_stimulus(stimulus, outputs)
    return {name: words_to_ints(raw[name]) for name in outputs}


def _port_signal(component, name: str):
    value = component
    for part in name.split("__"):
        value = value[int(part)] if part.isdigit() else getattr(value, part)
    return Value.cast(value)


def pysim_trace(component, stimulus: dict[str, np.ndarray], outputs: list[str]) -> dict[str, list[int]]:
    cycles = len(next(iter(stimulus.values())))
    inputs = {name: _port_signal(component, name) for name in stimulus}
    probes = {name: _port_signal(component, name) for name in outputs}
    trace: dict[str, list[int]] = {name: [] for name in outputs}

    async def testbench(ctx):
        for cycle in range(cycles):
            for name, signal in inputs.items():
                ctx.set(signal, int(stimulus[name][cycle]))
            for name, signal in probes.items():
                trace[name].append(ctx.get(signal) & ((1 << len(signal)) - 1))
            await ctx.tick()

    sim = Simulator(component)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return trace
