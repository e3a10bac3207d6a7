"""NeuroCore behind a framed 8N1 UART: receiver, frame parser/executor, transmitter (protocol: :mod:`.protocol`).

Data path: ``rx`` -> :class:`~rtl.common.uart.UartRx` (``uart_rx``) -> ``parser``
(:class:`~rtl.neurocore.commands.CommandParser`: sync hunt, opcode, length, payload into a ``max_payload``-byte
buffer, CRC-16 check) -> ``executor`` (:class:`~rtl.neurocore.commands.CommandExecutor`: drives the engine
``core``'s host bus, waits for its raster stream) -> response bytes -> :class:`~rtl.common.uart.UartTx`
(``uart_tx``) -> ``tx``.

Nothing is executed before the whole frame has been received and checked (checksum, length, opcode, index ranges),
so a bad frame is NAKed and changes nothing. The receiver is always ready: bytes that arrive while a command runs or
a response is being sent are discarded, and an inter-byte timeout (``timeout_cycles``) aborts a stalled frame, so
the parser resynchronises after any byte sequence and never hangs.

Timing: a command costs its bytes on the line plus a few cycles per word on the bus; a RUN step costs the engine's
:func:`~rtl.neurocore.config.step_cycles` plus ``ceil(M/8) + ceil(M/32) + 3`` cycles (input load, RUN write
through the registered bus request), then ``ceil(N/8)`` raster bytes on the line (``10 * divisor`` cycles each;
the next step starts after the last one).
"""
from dataclasses import dataclass, field

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.common.uart import UartRx, UartTx
from rtl.neurocore.commands import CommandExecutor, CommandParser
from rtl.neurocore.config import PRESETS as CORE_PRESETS
from rtl.neurocore.config import NeuroCoreConfig
from rtl.neurocore.core import BLOCK_MAP as CORE_BLOCK_MAP
from rtl.neurocore.core import NeuroCore

__all__ = ["BLOCK_MAP", "DEFAULT_CLOCK_HZ", "NeuroCoreUart", "NeuroCoreUartConfig", "PRESETS"]

DEFAULT_CLOCK_HZ = 25_000_000  #: ULX3S board clock
DEFAULT_BAUD = 115_200


@dataclass(frozen=True)
class NeuroCoreUartConfig:
    """``core``: the engine; ``divisor``: clock cycles per UART bit; ``timeout_cycles``: longest silence inside a
    frame; ``max_payload``: frame buffer bytes (the longest accepted command payload)."""

    core: NeuroCoreConfig = field(default_factory=lambda: CORE_PRESETS["16x16"])
    divisor: int = round(DEFAULT_CLOCK_HZ / DEFAULT_BAUD)
    timeout_cycles: int = DEFAULT_CLOCK_HZ // 50
    max_payload: int = 512

    def __post_init__(self):
        if not isinstance(self.core, NeuroCoreConfig):
            raise TypeError(f"core must be a NeuroCoreConfig, not {self.core!r}")
        for name, lo in (("divisor", 2), ("timeout_cycles", 1), ("max_payload", 8)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an integer, not {value!r}")
            if value < lo:
                raise ValueError(f"{name} must be at least {lo}, not {value!r}")
        if self.max_payload > 0xFFFF:
            raise ValueError(f"max_payload must be at most 65535, not {self.max_payload!r}")
        if self.core.index_bits > 16:
            raise ValueError(f"the protocol's 16-bit indices cannot address {self.core.index_bits}-bit regions")
        if self.timeout_cycles <= 12 * self.divisor:
            raise ValueError(f"timeout_cycles ({self.timeout_cycles!r}) must exceed one byte time (12 * divisor)")


#: Fault-injection blocks of the ``neurocore_uart`` design (the rule of :data:`rtl.neurocore.core.BLOCK_MAP`): the
#: engine's blocks under its instance ``core``, the UART link, the frame parser with its payload buffer, the
#: command executor.
BLOCK_MAP: dict[str, str] = {
    **{f"core.{prefix}": block for prefix, block in CORE_BLOCK_MAP.items()},
    "uart_rx": "uart_link",             # 8N1 receiver (with its input synchroniser)
    "uart_tx": "uart_link",             # 8N1 transmitter
    "parser": "command_parser",         # sync hunt, header fields, CRC check, inter-byte timeout
    "parser.buf": "frame_buffer",       # the command payload buffer
    "executor": "command_executor",     # bus requests, read data, run inputs and rasters, response CRC
}


class NeuroCoreUart(wiring.Component):
    """:class:`~rtl.neurocore.core.NeuroCore` with the framed UART protocol of :mod:`rtl.neurocore.protocol`.

    Parameters
    ----------
    config : NeuroCoreUartConfig

    Members
    -------
    rx : ``In(1, init=1)``
        Serial input (8N1, ``divisor`` cycles per bit; passes a two-flop synchroniser).
    tx : ``Out(1)``
        Serial output (idles high).
    """

    def __init__(self, config: NeuroCoreUartConfig):
        if not isinstance(config, NeuroCoreUartConfig):
            raise TypeError(f"config must be a NeuroCoreUartConfig, not {config!r}")
        self._config = config
        super().__init__({"rx": In(1, init=1), "tx": Out(1)})

    @property
    def config(self) -> NeuroCoreUartConfig:
        return self._config

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        m.submodules.core = core = NeuroCore(cfg.core)
        m.submodules.uart_rx = urx = UartRx(divisor=cfg.divisor)
        m.submodules.uart_tx = utx = UartTx(divisor=cfg.divisor)
        m.submodules.parser = parser = CommandParser(cfg)
        m.submodules.executor = executor = CommandExecutor(cfg)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx), executor.busy.eq(core.busy)]
        wiring.connect(m, urx.o_stream, parser.rx)
        wiring.connect(m, parser.cmd, executor.cmd)
        wiring.connect(m, executor.bus, core.bus)
        wiring.connect(m, core.raster, executor.raster)
        wiring.connect(m, executor.tx, utx.i_stream)
        return m


def _sim_config(core: str) -> NeuroCoreUartConfig:
    return NeuroCoreUartConfig(CORE_PRESETS[core], divisor=4, timeout_cycles=1500, max_payload=512)


PRESETS = {
    "16x16": NeuroCoreUartConfig(CORE_PRESETS["16x16"]),
    "64x64": NeuroCoreUartConfig(CORE_PRESETS["64x64"]),
    "256x256": NeuroCoreUartConfig(CORE_PRESETS["256x256"], max_payload=1024),
    "4x4-sim": _sim_config("4x4"),
    "16x16-sim": _sim_config("16x16"),
}
