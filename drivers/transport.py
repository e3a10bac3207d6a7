"""How a host driver reaches a device: the transports under :mod:`drivers.npu` and :mod:`drivers.neurocore`.

Two kinds, after what the hardware offers a host:

* :class:`SimDevice`: a design's Verilated build under the native harness (:class:`sim.harness.NativeSim`), seen as
  a host sees a memory-mapped device: input ports to set (registers), output ports to read (status), memories to
  load and read (an external memory: bytes at byte addresses), and a clock to run. The NPU driver uses this one;
  the NPU has no other transport (no board yet).
* :class:`ByteTransport`: a byte stream, as to the NeuroCore's UART. :class:`SimTransport` drives the ``rx`` / ``tx``
  pins of the simulated ``neurocore_uart`` design (a :class:`SimDevice`); :class:`SerialTransport` is a real
  board's serial port (pyserial). The host API on top is the same for both.
"""
from __future__ import annotations

import abc
import time
from pathlib import Path

import numpy as np

from base import RampartError

__all__ = ["HOST_MEMORY", "ByteTransport", "ProtocolError", "SerialTransport", "SimDevice", "SimTransport"]


class ProtocolError(Exception):
    """A malformed, missing or unexpected response (or line framing) from the device."""


# -- a simulated device ------------------------------------------------------------------------------------------


#: The name under which :class:`SimDevice` reaches a design's host memory (``sim.harness.HOST_MEMORY_PORTS``).
HOST_MEMORY = "hostmem"


class SimDevice:
    """A design's Verilated build seen by a host: ports, memories, a clock.

    Wraps a :class:`sim.harness.NativeSim` (``sim``: for what a host cannot do, such as fault injection or
    snapshots); :meth:`open` builds and opens one. Memories are named by their hierarchical state-map name (the
    host memory, if the design has one: :data:`HOST_MEMORY`);
    :meth:`load_bytes` / :meth:`read_bytes` address a memory of 64-bit words bytewise, little-endian, as a bus
    master sees an external memory.
    """

    def __init__(self, sim):
        self.sim = sim

    @classmethod
    def open(cls, design: str, config, *, trace: str | Path | None = None) -> SimDevice:
        """Build ``design`` with ``config`` (cached; the tracing variant if ``trace``) and open it."""
        from sim.build import build
        from sim.harness import NativeSim

        return cls(NativeSim(build(design, config, trace=trace is not None), trace=trace))

    def close(self) -> None:
        self.sim.close()

    def __enter__(self) -> SimDevice:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- ports and clock -------------------------------------------------------------------------------------------

    def reset(self) -> None:
        self.sim.reset()

    def step(self, cycles: int = 1) -> None:
        self.sim.step(cycles)

    def poke(self, port: str, value: int) -> None:
        self.sim.poke(port, value)

    def peek(self, port: str) -> int:
        return self.sim.peek(port)

    def run_stimulus(self, inputs: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        """Per cycle: apply ``inputs``, record ``outputs``, clock once (:meth:`sim.harness.NativeSim.run_stimulus`)."""
        return self.sim.run_stimulus(inputs, outputs)

    # -- memories ------------------------------------------------------------------------------------------------

    def _memory(self, element: str) -> int:
        index = self.sim.element_index(element)
        width = self.sim.build.state[index].width
        if width != 64:
            raise RampartError(f"{element} has {width}-bit words; byte access needs 64-bit words")
        return index

    def clear(self, element: str) -> None:
        """Zero every word of the 64-bit-word memory ``element`` (or of the host memory, :data:`HOST_MEMORY`)."""
        if element == HOST_MEMORY:
            self.sim.host_clear()
            return
        index = self._memory(element)
        self.sim.load_memory(index, np.zeros(self.sim.build.state[index].depth, dtype=np.uint64))

    def load_bytes(self, element: str, addr: int, payload: bytes) -> None:
        """Write ``payload`` at byte address ``addr`` (8-aligned) of the 64-bit-word memory ``element``."""
        if addr % 8:
            raise ValueError(f"address {addr:#x} is not 8-byte aligned")
        padded = bytes(payload) + bytes(-len(payload) % 8)
        words = np.frombuffer(padded, dtype="<u8")
        if element == HOST_MEMORY:
            self.sim.host_load(addr // 8, words)
        else:
            self.sim.load_memory(self._memory(element), words, addr // 8)

    def read_bytes(self, element: str, addr: int, n: int) -> bytes:
        """``n`` bytes at byte address ``addr`` of the 64-bit-word memory ``element``."""
        first, last = addr // 8, (addr + n + 7) // 8
        if element == HOST_MEMORY:
            words = self.sim.host_read(first, last - first)
        else:
            words = self.sim.read_memory(self._memory(element), first, last - first)
        return words.astype("<u8").tobytes()[addr - 8 * first:][:n]


# -- byte streams ------------------------------------------------------------------------------------------------


class ByteTransport(abc.ABC):
    """A byte pipe to a device."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Send ``data``."""

    @abc.abstractmethod
    def read(self, n: int, timeout: float) -> bytes:
        """Up to ``n`` bytes; fewer only if ``timeout`` seconds passed first."""

    def close(self) -> None:
        """Release the link (nothing to do by default)."""
        self.closed = True


class SimTransport(ByteTransport):
    """The Verilated ``neurocore_uart`` design, driven through its ``rx``/``tx`` pins (8N1, ``config.divisor``
    clocks per bit) by the native harness.

    ``write`` turns bytes into per-cycle ``rx`` levels and runs them in one ``run_stimulus`` call, recording ``tx``;
    ``read`` decodes ``tx`` (vectorised per byte, never per cycle), running idle cycles while bytes are missing.
    Time is simulated: ``timeout`` seconds are ``timeout * clock_hz`` cycles.

    Parameters
    ----------
    config : NeuroCoreUartConfig
    clock_hz : float
        Only converts timeouts to cycles.
    trace : path, optional
        FST waveform of the whole session.
    """

    def __init__(self, config, *, clock_hz: float = 25e6, trace=None):
        from rtl.neurocore.uart_top import NeuroCoreUartConfig

        if not isinstance(config, NeuroCoreUartConfig):
            raise TypeError(f"config must be a NeuroCoreUartConfig, not {config!r}")
        self.config = config
        self.divisor = config.divisor
        self.clock_hz = clock_hz
        self.device = SimDevice.open("neurocore_uart", config, trace=trace)
        self.cycles = 0
        self._line = np.ones(1, dtype=np.uint8)   # undecoded tx levels; [0] is the level before them
        self._rx = bytearray()
        self.device.poke("rx", 1)
        self.run_idle(4)

    def drive(self, rx_levels) -> None:
        """Apply raw per-cycle ``rx`` levels (idle lines, breaks, glitches), recording and decoding ``tx``."""
        rx_levels = np.asarray(rx_levels)
        if rx_levels.size == 0:
            return
        out = self.device.run_stimulus({"rx": rx_levels.astype(np.uint32)}, ["tx"])
        self.cycles += len(rx_levels)
        self._line = np.concatenate([self._line, out["tx"][:, 0].astype(np.uint8)])
        self._decode()

    def run_idle(self, cycles: int) -> None:
        self.drive(np.ones(int(cycles), dtype=np.uint8))

    def write(self, data: bytes) -> None:
        if not data:
            return
        raw = np.frombuffer(bytes(data), dtype=np.uint8)
        bits = np.ones((raw.size, 10), dtype=np.uint8)
        bits[:, 0] = 0
        bits[:, 1:9] = np.unpackbits(raw[:, None], axis=1, bitorder="little")
        self.drive(np.repeat(bits, self.divisor, axis=1).reshape(-1))

    def _decode(self) -> None:
        d = self.divisor
        line = self._line
        falls = np.flatnonzero((line[1:] == 0) & (line[:-1] == 1)) + 1
        pos, i = 1, 0
        offsets = d * np.arange(1, 10) + d // 2
        while i < falls.size:
            start = falls[i]
            if start < pos:
                i += 1
                continue
            if start + offsets[-1] >= line.size:
                break
            samples = line[start + offsets]
            if samples[-1] != 1:
                raise ProtocolError(f"tx framing error at cycle {self.cycles - line.size + start}")
            self._rx.append(int(np.packbits(samples[:8], bitorder="little")[0]))
            pos = start + offsets[-1] + 1
            i += 1
        else:
            pos = line.size   # no start bit pending: keep only the last level
        self._line = line[pos - 1:]

    def read(self, n: int, timeout: float) -> bytes:
        budget = int(timeout * self.clock_hz)
        spent = 0
        while len(self._rx) < n and spent < budget:
            chunk = min(budget - spent, max(256, (n - len(self._rx)) * 10 * self.divisor + 64))
            self.run_idle(chunk)
            spent += chunk
        out = bytes(self._rx[:n])
        del self._rx[:n]
        return out

    def pending(self) -> bytes:
        """Everything received and not yet read (does not run the simulation)."""
        out = bytes(self._rx)
        self._rx.clear()
        return out

    def close(self) -> None:
        self.device.close()


class SerialTransport(ByteTransport):
    """A serial port through pyserial (imported on construction; a clear error if it is not installed)."""

    def __init__(self, port: str, baudrate: int = 115_200):
        try:
            import serial
        except ImportError:
            raise ImportError("SerialTransport needs pyserial: pip install pyserial") from None
        self.port = serial.Serial(port, baudrate=baudrate, timeout=0.1)

    def write(self, data: bytes) -> None:
        self.port.write(bytes(data))
        self.port.flush()

    def read(self, n: int, timeout: float) -> bytes:
        out = bytearray()
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            self.port.timeout = max(0.0, min(0.1, deadline - time.monotonic()))
            out += self.port.read(n - len(out))
        return bytes(out)

    def close(self) -> None:
        self.port.close()
