"""8N1 UART transmitter and receiver with stream interfaces.

A frame is a start bit (0), eight data bits LSB first, and a stop bit (1); the idle line is high. Each bit lasts
``divisor`` clock cycles, so a frame takes ``10 * divisor`` cycles (:attr:`UartTx.frame_cycles`).
"""
from amaranth import Cat, Module, Signal
from amaranth.build import ResourceError
from amaranth.lib import io, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from rtl.common.stream import _check_positive_int, transfer

__all__ = ["UartTx", "UartRx", "connect_board_uart"]

_MIN_DIVISOR = 2


class UartTx(wiring.Component):
    """Serialises bytes from ``i_stream`` onto ``tx``.

    A byte is accepted only when the line is free (at the end of the previous stop bit), and its start bit
    begins on the next cycle, so back-to-back bytes leave no idle time between frames.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (>= 2).

    Members
    -------
    i_stream : ``In(stream.Signature(8))``
    tx : ``Out(1, init=1)``
        The serial line (a register output; idles high).
    busy : ``Out(1)``
        A frame is being sent.
    """

    def __init__(self, *, divisor: int):
        self._divisor = _check_positive_int("divisor", divisor, _MIN_DIVISOR)
        super().__init__({
            "i_stream": In(stream.Signature(8)),
            "tx": Out(1, init=1),
            "busy": Out(1),
        })

    @property
    def divisor(self) -> int:
        return self._divisor

    @property
    def frame_cycles(self) -> int:
        return 10 * self._divisor

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self._divisor), name="timer")
        shreg = Signal(9, name="shreg")  # the bits still to send (data, then stop), refilled with ones
        bits_left = Signal(range(10), name="bits_left")  # bits after the current one

        bit_done = self.busy & (timer == 0)
        m.d.comb += self.i_stream.ready.eq(~self.busy | (bit_done & (bits_left == 0)))

        with m.If(self.busy):
            m.d.sync += timer.eq(timer - 1)
        with m.If(bit_done):
            m.d.sync += [
                timer.eq(self._divisor - 1),
                self.tx.eq(shreg[0]),
                shreg.eq(Cat(shreg[1:], 1)),
            ]
            with m.If(bits_left == 0):
                m.d.sync += self.busy.eq(0)
            with m.Else():
                m.d.sync += bits_left.eq(bits_left - 1)
        with m.If(transfer(self.i_stream)):
            m.d.sync += [
                timer.eq(self._divisor - 1),
                self.tx.eq(0),
                shreg.eq(Cat(self.i_stream.payload, 1)),
                bits_left.eq(9),
                self.busy.eq(1),
            ]
        return m


class UartRx(wiring.Component):
    """Deserialises ``rx`` into bytes on ``o_stream``.

    ``rx`` passes through a two-flop synchroniser. A falling edge starts a frame; the start bit is re-checked
    half a bit later (a shorter low glitch is ignored) and every following bit is sampled once, in its middle.
    A byte becomes valid on ``o_stream`` :attr:`latency` cycles (``9 * divisor + divisor // 2 + 3``: the
    synchroniser, the middle of the stop bit, the output register) after the first cycle with ``rx`` low.

    The receiver never stalls: if the previous byte has not been taken when the next one completes, the new
    byte is dropped and ``overrun`` pulses. A stop bit sampled low pulses ``frame_error``, drops the byte, and the
    receiver then waits for the line to go high before looking for the next start bit, so a break (line held
    low) costs one ``frame_error`` and no garbage bytes.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (>= 2).

    Members
    -------
    rx : ``In(1, init=1)``
    o_stream : ``Out(stream.Signature(8))``
    frame_error : ``Out(1)``
        One-cycle pulse per frame whose stop bit was low.
    overrun : ``Out(1)``
        One-cycle pulse per byte lost because ``o_stream`` was still full.
    """

    def __init__(self, *, divisor: int):
        self._divisor = _check_positive_int("divisor", divisor, _MIN_DIVISOR)
        super().__init__({
            "rx": In(1, init=1),
            "o_stream": Out(stream.Signature(8)),
            "frame_error": Out(1),
            "overrun": Out(1),
        })

    @property
    def divisor(self) -> int:
        return self._divisor

    @property
    def latency(self) -> int:
        return 9 * self._divisor + self._divisor // 2 + 3

    def elaborate(self, platform):
        m = Module()
        divisor = self._divisor
        rx_sync = Signal(init=1, name="rx_sync")
        m.submodules.rx_synchroniser = FFSynchronizer(self.rx, rx_sync, init=1)

        timer = Signal(range(divisor), name="timer")
        shreg = Signal(8, name="shreg")
        bit_index = Signal(range(8), name="bit_index")
        o_valid = Signal(name="o_valid")
        o_payload = Signal(8, name="o_payload")
        m.d.comb += [self.o_stream.valid.eq(o_valid), self.o_stream.payload.eq(o_payload)]
        with m.If(transfer(self.o_stream)):
            m.d.sync += o_valid.eq(0)

        sample = timer == 0
        with m.If(~sample):
            m.d.sync += timer.eq(timer - 1)
        with m.FSM(name="state"):
            with m.State("IDLE"):
                with m.If(~rx_sync):
                    m.d.sync += timer.eq(divisor // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(sample):
                    m.d.sync += [timer.eq(divisor - 1), bit_index.eq(0)]
                    with m.If(rx_sync):  # a glitch, not a start bit
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(sample):
                    m.d.sync += [
                        timer.eq(divisor - 1),
                        shreg.eq(Cat(shreg[1:], rx_sync)),
                        bit_index.eq(bit_index + 1),
                    ]
                    with m.If(bit_index == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(sample):
                    with m.If(~rx_sync):
                        m.d.comb += self.frame_error.eq(1)
                        m.next = "BREAK"
                    with m.Elif(o_valid & ~self.o_stream.ready):
                        m.d.comb += self.overrun.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += [o_payload.eq(shreg), o_valid.eq(1)]
                        m.next = "IDLE"
            with m.State("BREAK"):
                with m.If(rx_sync):
                    m.next = "IDLE"
        return m


def connect_board_uart(m: Module, platform, rx: Signal, tx: Signal) -> bool:
    """Drive ``rx`` from and ``tx`` onto the platform's ``uart`` 0 pins (through I/O buffers added to ``m``);
    ``False`` (and nothing added) when there is no platform or it has no UART."""
    if platform is None:
        return False
    try:
        uart = platform.request("uart", 0, dir="-")
    except ResourceError:
        return False
    m.submodules.uart_rx_buf = rx_buf = io.Buffer("i", uart.rx)
    m.submodules.uart_tx_buf = tx_buf = io.Buffer("o", uart.tx)
    m.d.comb += [rx.eq(rx_buf.i), tx_buf.o.eq(tx)]
    return True
