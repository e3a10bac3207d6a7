"""The SoC around the accelerators as SimPy processes: host CPU, shared external memory / AXI, accelerators.

Time is in accelerator clock cycles. Pieces:

* :class:`SharedMemory`: the external memory behind an AXI interconnect: ``bandwidth`` bytes per cycle shared by
  every master, ``latency`` cycles before a transfer's first data, arbitration between masters (``"fifo"``: bursts
  served in arrival order, which is round robin between masters that keep the bus busy; ``"priority"``: the lowest
  priority number first). A transfer moves in ``burst_bytes`` slices so other masters interleave; with one master
  the whole transfer is one slice (same timing, fewer events).
* :class:`Accelerator`: a timed resource (one job at a time) whose ``service(job)`` process says what a job costs;
  the NPU (:class:`models.system.npu.NpuAccelerator`) and NeuroCore (:class:`models.system.neurocore`) models are
  accelerators, and future ones (PulseDL-II, NGPC) plug in the same way: a design descriptor's ``system_model``
  names a factory ``(env, memory, **options) -> Accelerator``.
* :class:`Host`: the CPU issuing inference requests back to back or at a rate, with ``inflight`` requests at most
  in the system; each request costs ``setup_cycles`` of host time (command-stream / register set-up) and moves its
  input and output over the shared memory; the accelerator then serves it.
"""
from __future__ import annotations

import abc
from collections import defaultdict
from dataclasses import dataclass, field

import simpy

__all__ = ["Accelerator", "Host", "Request", "SharedMemory", "Stats"]


class SharedMemory:
    """External memory behind an AXI interconnect (see the module docstring)."""

    ARBITRATION = ("fifo", "priority")

    def __init__(self, env: simpy.Environment, bandwidth: float = 8.0, latency: float = 8.0, *,
                 arbitration: str = "fifo", burst_bytes: int = 256):
        self.check(bandwidth, latency, arbitration, burst_bytes)
        self.env, self.bandwidth, self.latency = env, float(bandwidth), float(latency)
        self.arbitration, self.burst_bytes = arbitration, burst_bytes
        self.bus = simpy.PriorityResource(env, 1)
        self.masters: set[str] = set()
        self.bytes: dict[str, float] = defaultdict(float)
        self.busy_cycles = 0.0

    @classmethod
    def check(cls, bandwidth: float, latency: float, arbitration: str = "fifo", burst_bytes: int = 256) -> None:
        """Raise ValueError for parameters a memory cannot have."""
        if not bandwidth > 0:
            raise ValueError(f"bandwidth must be positive (bytes/cycle), not {bandwidth!r}")
        if latency < 0:
            raise ValueError(f"latency must be >= 0 cycles, not {latency!r}")
        if arbitration not in cls.ARBITRATION:
            raise ValueError(f"arbitration must be one of {', '.join(cls.ARBITRATION)}, not {arbitration!r}")
        if burst_bytes < 1:
            raise ValueError(f"burst_bytes must be >= 1, not {burst_bytes!r}")

    def attach(self, master: str) -> None:
        """Declare a bus master (with one master no transfer is split into bursts)."""
        self.masters.add(master)

    def transfer(self, master: str, nbytes: float, *, priority: int = 0, efficiency: float = 1.0,
                 latency: bool = True):
        """Process: move ``nbytes`` for ``master``; ``efficiency`` > 1: the master's requests use the bus that
        many times longer than the bytes need (partial words, its own request pattern)."""
        self.attach(master)
        if latency and self.latency:
            yield self.env.timeout(self.latency)
        remaining = float(nbytes) * efficiency
        prio = priority if self.arbitration == "priority" else 0
        while remaining > 0:
            piece = remaining if len(self.masters) == 1 else min(remaining, self.burst_bytes)
            with self.bus.request(priority=prio) as req:
                yield req
                yield self.env.timeout(piece / self.bandwidth)
            self.busy_cycles += piece / self.bandwidth
            remaining -= piece
        self.bytes[master] += nbytes


@dataclass
class Request:
    """One unit of work: what it carries for its accelerator, and when it went through the system."""

    index: int
    payload: object
    in_bytes: int = 0
    out_bytes: int = 0
    issued: float = 0.0
    started: float = 0.0       # the accelerator took it
    finished: float = 0.0      # the accelerator finished it
    done: float = 0.0          # the host has the result
    detail: dict = field(default_factory=dict)

    @property
    def latency(self) -> float:
        return self.done - self.issued


class Accelerator(abc.ABC):
    """A timed resource serving one request at a time; subclasses define :meth:`service`."""

    def __init__(self, env: simpy.Environment, memory: SharedMemory | None, name: str):
        self.env, self.memory, self.name = env, memory, name
        self.resource = simpy.Resource(env, 1)
        self.busy_cycles = 0.0

    @abc.abstractmethod
    def service(self, request: Request):
        """Process (a generator SimPy runs): do ``request``."""

    def serve(self, request: Request):
        """Process: wait for the accelerator, then :meth:`service`."""
        with self.resource.request() as slot:
            yield slot
            request.started = self.env.now
            yield from self.service(request)
            request.finished = self.env.now
            self.busy_cycles += request.finished - request.started


@dataclass
class Stats:
    """What a host run produced."""

    requests: list[Request]
    cycles: float                      # from the first issue to the last result

    @property
    def latencies(self) -> list[float]:
        return [r.latency for r in self.requests]

    @property
    def throughput(self) -> float:
        """Requests per cycle over the run."""
        return len(self.requests) / self.cycles if self.cycles else 0.0


class Host:
    """The host CPU: issues ``n`` requests to ``accelerator`` (see the module docstring).

    ``interval``: cycles between issues (None: back to back, as soon as an in-flight slot is free);
    ``inflight``: requests in the system at most; ``setup_cycles``: host CPU time per request before it can go
    to the accelerator (one CPU: set-ups are serial).
    """

    def __init__(self, env: simpy.Environment, memory: SharedMemory | None, accelerator: Accelerator, *,
                 setup_cycles: float = 0.0, inflight: int = 1, interval: float | None = None):
        if inflight < 1:
            raise ValueError(f"inflight must be >= 1, not {inflight!r}")
        if interval is not None and interval < 0:
            raise ValueError(f"interval must be >= 0 cycles, not {interval!r}")
        if setup_cycles < 0:
            raise ValueError(f"setup_cycles must be >= 0, not {setup_cycles!r}")
        self.env, self.memory, self.accelerator = env, memory, accelerator
        self.setup_cycles, self.inflight, self.interval = setup_cycles, inflight, interval
        self.cpu = simpy.Resource(env, 1)
        self.slots = simpy.Resource(env, inflight)
        self.done: list[Request] = []

    def _one(self, request: Request, slot):
        with self.cpu.request() as cpu:
            yield cpu
            if self.setup_cycles:
                yield self.env.timeout(self.setup_cycles)
            if self.memory is not None and request.in_bytes:
                yield from self.memory.transfer("host", request.in_bytes, priority=1)
        yield from self.accelerator.serve(request)
        if self.memory is not None and request.out_bytes:
            yield from self.memory.transfer("host", request.out_bytes, priority=1)
        request.done = self.env.now
        self.slots.release(slot)
        self.done.append(request)

    def issue(self, requests: list[Request]):
        """Process: issue ``requests`` in order."""
        for request in requests:
            slot = self.slots.request()
            yield slot
            request.issued = self.env.now
            self.env.process(self._one(request, slot))
            if self.interval and request is not requests[-1]:
                yield self.env.timeout(self.interval)

    def run(self, requests: list[Request]) -> Stats:
        """Issue every request and run the simulation until all are done."""
        start = self.env.now
        self.env.process(self.issue(requests))
        self.env.run()
        done = sorted(self.done, key=lambda r: r.index)
        return Stats(done, max((r.done for r in done), default=start) - start)
