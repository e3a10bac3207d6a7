"""NeuroCore in the system model: exact per-step engine cycles and the UART host link, as SimPy processes.

The engine's cost per step is the closed form of ``rtl.neurocore.config.step_cycles`` (restated here on the
core's shape: ``models`` does not import ``rtl``; tb/models/system/test_neurocore.py checks the two agree). The
UART front end (``rtl/neurocore/uart_top.py``, protocol in ``rtl/neurocore/protocol.py``) is half duplex: a RUN
frame (``A5 op len16 | steps16 [input bitmaps] | crc16``) arrives whole, then each step costs the engine's cycles
plus ``ceil(M/8) + ceil(M/32) + 3`` cycles (input load, RUN write), and its ``ceil(N/8)`` raster bytes go out on
the line (10 bit times each, 8N1). The transmitter takes a byte only when idle, so the next step starts when the
step's last raster byte starts shifting out (it overlaps that byte); the response's 5-byte header goes out while
the first step computes and its 2-byte CRC follows the last raster (tb/models/system/test_neurocore_rtl.py
measures this against the Verilated ``neurocore_uart``). A host splits a long run into frames of at most
``max_payload`` bytes (as ``NeuroCoreHost.run``).
"""
from __future__ import annotations

from dataclasses import dataclass

import simpy

from models.system.soc import Accelerator, Host, Request

__all__ = ["NeuroCoreAccelerator", "NeuroCoreShape", "SnnPrediction", "SnnWorkload", "predict_snn", "step_cycles"]

CHUNK = 32            # sources examined per cycle in a row walk
NEURON_STAGES = 3     # neuron pipeline depth
BITS_PER_BYTE = 10    # 8N1
CMD_OVERHEAD = 4 + 2 + 2      # sync, op, len16; steps16; crc16
RSP_HEADER = 5                # sync, op, status, len16
RSP_OVERHEAD = RSP_HEADER + 2   # and the crc16


@dataclass(frozen=True)
class NeuroCoreShape:
    """N neurons, M inputs, P lanes (a NeuroCore preset: ``4x4`` (P=2), ``16x16``, ``64x64``, ``256x256`` (P=4))."""

    n_neurons: int
    n_inputs: int
    lanes: int

    def __post_init__(self):
        for name in ("n_neurons", "n_inputs", "lanes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, not {v!r}")
        if self.n_neurons % self.lanes:
            raise ValueError(f"lanes ({self.lanes}) must divide n_neurons ({self.n_neurons})")

    @property
    def groups(self) -> int:
        return self.n_neurons // self.lanes

    @property
    def src_groups(self) -> int:
        return -(-(self.n_neurons + self.n_inputs) // self.lanes)

    @property
    def chunks(self) -> int:
        return -(-(self.n_neurons + self.n_inputs) // CHUNK)


PRESETS = {"4x4": NeuroCoreShape(4, 4, 2), "16x16": NeuroCoreShape(16, 16, 4), "64x64": NeuroCoreShape(64, 64, 4),
           "256x256": NeuroCoreShape(256, 256, 4)}


def step_cycles(shape: NeuroCoreShape, n_pending: int, n_now: int, n_post_groups: int, learn: bool, *,
                integrated: bool = False) -> int:
    """Engine cycles of one step (see ``rtl.neurocore.config.step_cycles`` for the terms)."""
    k, r, ch = shape.groups, shape.src_groups, shape.chunks
    cycles = 1 + k + NEURON_STAGES - 1 + r + 1
    if not integrated:
        cycles += ch + k * n_pending + 1
    if learn:
        cycles += (k - n_post_groups) + r * n_post_groups + 1 + ch + k * n_now + 1
    return cycles


@dataclass(frozen=True)
class SnnWorkload:
    """``steps`` steps; per step ``neuron_spikes`` neurons and ``input_spikes`` inputs spike (mean counts) and
    ``spiking_groups`` of the K lane groups hold a spiking neuron; ``learn``: STDP on; ``stream_inputs``: the host
    sends an input bitmap per step in the RUN frames."""

    steps: int
    neuron_spikes: float = 0.0
    input_spikes: float = 0.0
    spiking_groups: float | None = None   # None: from neuron_spikes, spikes spread uniformly over the neurons
    learn: bool = False
    stream_inputs: bool = True

    def groups(self, shape: NeuroCoreShape) -> float:
        if self.spiking_groups is not None:
            return self.spiking_groups
        p = min(1.0, self.neuron_spikes / shape.n_neurons)
        return shape.groups * (1 - (1 - p) ** shape.lanes)


class NeuroCoreAccelerator(Accelerator):
    """The UART-attached NeuroCore: ``clock_hz`` engine clock, ``baud`` (divisor ``round(clock / baud)`` cycles
    per bit, as the RTL's config), ``max_payload`` bytes per command frame."""

    def __init__(self, env: simpy.Environment, memory=None, *, shape: NeuroCoreShape, baud: float = 115_200,
                 clock_hz: float = 25e6, max_payload: int = 512, name: str = "neurocore"):
        super().__init__(env, memory, name)
        if not baud > 0 or not clock_hz > 0:
            raise ValueError("baud and clock_hz must be positive")
        self.shape, self.clock_hz, self.max_payload = shape, clock_hz, max_payload
        self.divisor = max(1, round(clock_hz / baud))
        self.byte_cycles = BITS_PER_BYTE * self.divisor
        self.tx = simpy.Resource(env, 1)            # the transmitter: one byte shifting out at a time

    def frames(self, w: SnnWorkload) -> list[int]:
        """Steps per RUN frame (the host's split, as ``NeuroCoreHost.run``)."""
        in_bytes, ras = -(-self.shape.n_inputs // 8), -(-self.shape.n_neurons // 8)
        per = min((self.max_payload - 2) // in_bytes if w.stream_inputs else 0xFFFF, 0xFFFF // ras)
        per = max(per, 1)
        return [min(per, w.steps - t0) for t0 in range(0, w.steps, per)]

    def step_engine_cycles(self, w: SnnWorkload, first: bool) -> float:
        s = self.shape
        n_now = w.neuron_spikes + w.input_spikes
        core = step_cycles(s, round(n_now), round(n_now), 0, w.learn, integrated=w.learn and not first)
        if w.learn:   # the potentiation term is linear in the spiking groups: use the (fractional) mean
            core += (s.src_groups - 1) * w.groups(s)
        return core + -(-s.n_inputs // 8) + -(-s.n_inputs // 32) + 3

    def _send_byte(self):
        """Process: hand one byte to the transmitter once it is idle (it has no holding register); the byte then
        shifts out for 10 bit times while the caller goes on."""
        slot = self.tx.request()
        yield slot

        def shift():
            yield self.env.timeout(self.byte_cycles)
            self.tx.release(slot)

        self.env.process(shift())

    def service(self, request: Request):
        w: SnnWorkload = request.payload
        env, s = self.env, self.shape
        in_bytes, ras = -(-s.n_inputs // 8), -(-s.n_neurons // 8)
        engine = frame = 0.0
        first = True
        for n in self.frames(w):
            t = (CMD_OVERHEAD + (n * in_bytes if w.stream_inputs else 0)) * self.byte_cycles
            yield env.timeout(t)                               # the RUN frame arrives whole on rx
            frame += t
            for _ in range(RSP_HEADER):                        # the ACK header goes out first
                yield from self._send_byte()
            for _ in range(n):
                c = self.step_engine_cycles(w, first)
                first = False
                yield env.timeout(c)                           # the engine's step
                engine += c
                for _ in range(ras):                           # its raster, byte by byte
                    yield from self._send_byte()
            for _ in range(RSP_OVERHEAD - RSP_HEADER):         # the CRC
                yield from self._send_byte()
            with self.tx.request() as idle:                    # the response is complete on the line
                yield idle
        request.detail.update(engine_cycles=engine, frame_cycles=frame)


@dataclass(frozen=True)
class SnnPrediction:
    shape: NeuroCoreShape
    baud: float
    clock_hz: float
    steps: int
    cycles: float
    engine_cycles: float
    link_cycles: float

    @property
    def steps_per_second(self) -> float:
        return self.steps * self.clock_hz / self.cycles if self.cycles else 0.0

    @property
    def engine_steps_per_second(self) -> float:
        """Steps/s with an infinitely fast host link (the engine alone)."""
        return self.steps * self.clock_hz / self.engine_cycles if self.engine_cycles else 0.0

    def to_json(self) -> dict:
        return {"neurons": self.shape.n_neurons, "inputs": self.shape.n_inputs, "lanes": self.shape.lanes,
                "baud": self.baud, "clock_hz": self.clock_hz, "steps": self.steps, "cycles": self.cycles,
                "engine_cycles": self.engine_cycles, "link_cycles": self.link_cycles,
                "steps_per_second": self.steps_per_second, "engine_steps_per_second": self.engine_steps_per_second}


def predict_snn(shape: NeuroCoreShape, workload: SnnWorkload, *, baud: float = 115_200, clock_hz: float = 25e6,
                max_payload: int = 512) -> SnnPrediction:
    """Simulate a host running ``workload`` on a UART-attached NeuroCore."""
    if workload.steps < 1:
        raise ValueError(f"steps must be >= 1, not {workload.steps!r}")
    env = simpy.Environment()
    core = NeuroCoreAccelerator(env, shape=shape, baud=baud, clock_hz=clock_hz, max_payload=max_payload)
    stats = Host(env, None, core).run([Request(0, workload)])
    d = stats.requests[0].detail
    return SnnPrediction(shape, baud, clock_hz, workload.steps, stats.cycles, d["engine_cycles"],
                         stats.cycles - d["engine_cycles"])
