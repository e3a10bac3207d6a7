"""Board adapter for ``neurocore_uart``: the design's ``rx``/``tx`` on the board's serial pins.

Used automatically by ``rampart synth neurocore_uart`` (named by its descriptor, rtl/neurocore/__init__.py). The board's
``uart`` resource 0 (on the ULX3S the FT231X USB-serial bridge, pins M1 = rx / L4 = tx; on the iCEBreaker the
FT2232H's second channel) is requested with ``dir="-"`` and wired through I/O buffers; ``rx`` already passes a
two-flop synchroniser inside :class:`~rtl.common.uart.UartRx`. The UART divisor is part of the design's config
(25 MHz / 115200 baud = 217 for the presets); :func:`check_divisor` states whether it suits the board clock.

Without a platform (plain elaboration) or on a board without a ``uart`` resource the adapter connects nothing, so
the harness drives ``rx`` from its LFSR and XOR-observes ``tx`` as for any other design.
"""
from amaranth import Module
from amaranth.build import Platform

from rtl.common.uart import connect_board_uart

__all__ = ["BAUD_TOLERANCE", "baud_error", "check_divisor", "uart_adapter"]

#: Largest relative baud-rate error tolerated (8N1 receivers resynchronise on each start bit; 2 % is conservative).
BAUD_TOLERANCE = 0.02


def baud_error(divisor: int, clock_hz: float, baud: int = 115_200) -> float:
    """Relative error of ``clock_hz / divisor`` against ``baud``."""
    return abs(clock_hz / divisor - baud) / baud


def check_divisor(divisor: int, clock_hz: float, baud: int = 115_200) -> bool:
    """Whether ``divisor`` gives ``baud`` within :data:`BAUD_TOLERANCE` at ``clock_hz``."""
    return baud_error(divisor, clock_hz, baud) <= BAUD_TOLERANCE


def uart_adapter(m: Module, platform: Platform | None, design) -> list[tuple]:
    """Connect ``design.rx``/``design.tx`` to the platform's ``uart`` 0; return the paths handled."""
    return [("rx",), ("tx",)] if connect_board_uart(m, platform, design.rx, design.tx) else []
