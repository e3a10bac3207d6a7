"""NeuroCore behind a framed 8N1 UART: receiver, frame parser/executor, transmitter (protocol: :mod:`.protocol`).

Data path: ``rx`` -> :class:`~rtl.common.uart.UartRx` -> parser (sync hunt, opcode, length, payload into a
``max_payload``-byte buffer, CRC-16 check) -> executor (drives the engine's host bus, waits for its raster stream)
-> response bytes -> :class:`~rtl.common.uart.UartTx` -> ``tx``.

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

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.common.uart import UartRx, UartTx
from rtl.neurocore.config import PRESETS as CORE_PRESETS
from rtl.neurocore.config import Command, NeuroCoreConfig, Region
from rtl.neurocore.core import NeuroCore
from rtl.neurocore.protocol import (
    CRC_INIT,
    CRC_POLY,
    NO_OP,
    SYNC_CMD,
    SYNC_RSP,
    VERSION,
    Kind,
    Status,
    op_info,
    region_size,
)

__all__ = ["DEFAULT_CLOCK_HZ", "NeuroCoreUart", "NeuroCoreUartConfig", "PRESETS"]

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


def _crc_next(m, crc, byte, name):
    """CRC-16/CCITT-FALSE of ``crc`` continued by ``byte`` (a chain of 8 named combinational stages)."""
    value = Signal(16, name=f"{name}_0")
    m.d.comb += value.eq(crc ^ Cat(Const(0, 8), byte))
    for i in range(8):
        nxt = Signal(16, name=f"{name}_{i + 1}")
        m.d.comb += nxt.eq(Cat(Const(0, 1), value[:15]) ^ Mux(value[15], CRC_POLY, 0))
        value = nxt
    return value


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
        c = cfg.core
        m = Module()
        m.submodules.core = core = NeuroCore(c)
        m.submodules.uart_rx = urx = UartRx(divisor=cfg.divisor)
        m.submodules.uart_tx = utx = UartTx(divisor=cfg.divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        bus = core.bus
        info = op_info(c)
        n_chunks = -(-c.n_inputs // 32)
        in_bytes = -(-c.n_inputs // 8)
        ras_bytes = -(-c.n_neurons // 8)
        max_wb = max(i.wb for i in info.values())

        # -- receive side ------------------------------------------------------------------------------------------
        rx = urx.o_stream
        m.d.comb += rx.ready.eq(1)            # never stalls: bytes outside the receiving states are discarded
        got = rx.valid
        byte = rx.payload

        m.submodules.buf = buf = Memory(shape=8, depth=cfg.max_payload, init=[])
        buf_wr = buf.write_port()
        buf_rd = buf.read_port(domain="comb")
        ptr = Signal(range(cfg.max_payload + 1), name="ptr")
        m.d.comb += buf_rd.addr.eq(ptr)

        op = Signal(8, name="op", init=NO_OP)
        length = Signal(16, name="length")
        pos = Signal(16, name="pos")
        hdr_a = Signal(16, name="hdr_a")      # start / steps
        hdr_b = Signal(16, name="hdr_b")      # count
        items = Signal(16, name="items")
        unit_byte = Signal(range(max_wb + 1), name="unit_byte")
        last_byte = Signal(8, name="last_byte")
        extra = Signal(name="extra")          # payload bytes beyond the header of an op that takes none
        range_err = Signal(name="range_err")  # a gathered index outside the region
        crc_rx = Signal(16, name="crc_rx", init=CRC_INIT)
        crc_tx = Signal(16, name="crc_tx", init=CRC_INIT)
        timer = Signal(range(cfg.timeout_cycles + 1), name="timer")
        rsp_status = Signal(8, name="rsp_status")
        rsp_len = Signal(16, name="rsp_len")

        # opcode decode
        known = Signal(name="known")
        kind = Signal(3, name="kind")
        region = Signal(3, name="region")
        wb = Signal(range(max_wb + 1), name="wb")
        hdr = Signal(3, name="hdr")
        unit = Signal(range(max_wb + 1), name="unit")
        fixed_a = Signal(16, name="fixed_a")
        fixed_b = Signal(16, name="fixed_b")
        size = Signal(17, name="size")
        with m.Switch(op):
            for code, oi in info.items():
                with m.Case(code):
                    m.d.comb += [known.eq(1), kind.eq(oi.kind), region.eq(oi.region), wb.eq(oi.wb),
                                 hdr.eq(oi.hdr), unit.eq(oi.unit), fixed_a.eq(oi.start), fixed_b.eq(oi.count)]
        with m.Switch(region):
            for r in Region:
                with m.Case(r):
                    m.d.comb += size.eq(region_size(c, r))

        # -- executor state ----------------------------------------------------------------------------------------
        k = Signal(range(max(max_wb, ras_bytes, in_bytes, 9) + 1), name="k")
        chunk = Signal(range(n_chunks + 1), name="chunk")
        word_bits = max(8 * max_wb, c.data_width)
        word = Signal(word_bits + (-word_bits) % 8, name="word")
        inbits = Signal(32 * n_chunks, name="inbits")
        raster = Signal(8 * ras_bytes, name="raster_bits")
        has_inputs = Signal(name="has_inputs")
        id_bytes = Const(VERSION | c.n_neurons << 8 | c.n_inputs << 24 | c.lanes << 40 | c.trace_bits << 48
                         | cfg.max_payload << 56, 72)

        # The bus request is registered: it cuts the path from the link FSM into the engine's memories.
        req_addr = Signal.like(bus.addr, name="req_addr")
        req_wdata = Signal.like(bus.wdata, name="req_wdata")
        req_we = Signal(name="req_we")
        req_re = Signal(name="req_re")
        m.d.sync += [req_we.eq(0), req_re.eq(0)]
        m.d.comb += [bus.addr.eq(req_addr), bus.wdata.eq(req_wdata), bus.we.eq(req_we), bus.re.eq(req_re)]

        def bus_addr(r, index):
            r = Const(int(r), 3) if isinstance(r, Region) else r
            return (r.as_unsigned() << c.index_bits) | index[:c.index_bits]

        tx = utx.i_stream
        crc_tx_next = _crc_next(m, crc_tx, tx.payload, "crc_tx_next")
        crc_rx_next = _crc_next(m, crc_rx, byte, "crc_rx_next")

        def send(value, next_state=None, *, update_crc=True):
            """Offer ``value`` to the transmitter; on acceptance update the CRC and go to ``next_state``."""
            m.d.comb += [tx.valid.eq(1), tx.payload.eq(value)]
            accepted = tx.ready
            with m.If(accepted):
                if update_crc:
                    m.d.sync += crc_tx.eq(crc_tx_next)
                if next_state is not None:
                    m.next = next_state
            return accepted

        def nak(code):
            m.d.sync += [rsp_status.eq(code), rsp_len.eq(0)]
            m.next = "H_SYNC"

        receiving = Signal(name="receiving")
        with m.If(receiving & ~got):
            m.d.sync += timer.eq(timer + 1)
        with m.Else():
            m.d.sync += timer.eq(0)

        with m.FSM(name="link"):
            # ---- parser ----
            with m.State("HUNT"):
                with m.If(got & (byte == SYNC_CMD)):
                    m.d.sync += [op.eq(NO_OP), pos.eq(0), items.eq(0), unit_byte.eq(0), extra.eq(0),
                                 range_err.eq(0), crc_rx.eq(CRC_INIT)]
                    m.next = "OP"

            def receive(next_state):
                """A frame byte: CRC it, time out if none comes."""
                m.d.comb += receiving.eq(1)
                with m.If(got):
                    m.d.sync += crc_rx.eq(crc_rx_next)
                    if next_state is not None:
                        m.next = next_state
                with m.Elif(timer >= cfg.timeout_cycles - 1):
                    nak(Status.NAK_TIMEOUT)

            with m.State("OP"):
                receive("LEN0")
                with m.If(got):
                    m.d.sync += op.eq(byte)
            with m.State("LEN0"):
                receive("LEN1")
                with m.If(got):
                    m.d.sync += length[:8].eq(byte)
            with m.State("LEN1"):
                receive(None)
                full_len = Cat(length[:8], byte)
                with m.If(got):
                    m.d.sync += [length[8:].eq(byte), hdr_a.eq(fixed_a), hdr_b.eq(fixed_b)]
                    with m.If(~known):
                        nak(Status.NAK_OPCODE)
                    with m.Elif((full_len > cfg.max_payload) | (full_len < hdr)):
                        nak(Status.NAK_LENGTH)
                    with m.Elif(full_len == 0):
                        m.next = "CRC0"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                receive(None)
                with m.If(got):
                    m.d.comb += [buf_wr.en.eq(1), buf_wr.addr.eq(pos), buf_wr.data.eq(byte)]
                    m.d.sync += [pos.eq(pos + 1), last_byte.eq(byte)]
                    with m.If(pos < hdr):
                        with m.Switch(pos[:2]):
                            with m.Case(0):
                                m.d.sync += hdr_a[:8].eq(byte)
                            with m.Case(1):
                                m.d.sync += hdr_a[8:].eq(byte)
                            with m.Case(2):
                                m.d.sync += hdr_b[:8].eq(byte)
                            with m.Case(3):
                                m.d.sync += hdr_b[8:].eq(byte)
                    with m.Elif(unit == 0):
                        m.d.sync += extra.eq(1)
                    with m.Elif(unit_byte == unit - 1):
                        m.d.sync += [unit_byte.eq(0), items.eq(items + 1)]
                        with m.If((kind == Kind.GATHER) & (Cat(last_byte, byte) >= size)):
                            m.d.sync += range_err.eq(1)
                    with m.Else():
                        m.d.sync += unit_byte.eq(unit_byte + 1)
                    with m.If(pos == length - 1):
                        m.next = "CRC0"
            with m.State("CRC0"):
                receive("CRC1")
            with m.State("CRC1"):
                receive("CHECK")
            with m.State("CHECK"):
                m.d.sync += [ptr.eq(hdr), k.eq(0), word.eq(0), rsp_status.eq(Status.ACK), rsp_len.eq(0),
                             has_inputs.eq(items != 0)]
                read_len = Signal(20, name="read_len")
                run_len = Signal(32, name="run_len")
                m.d.comb += [read_len.eq(hdr_b * wb), run_len.eq(hdr_a * ras_bytes)]
                with m.If(crc_rx != 0):
                    nak(Status.NAK_CRC)
                with m.Elif((unit_byte != 0) | extra):
                    nak(Status.NAK_LENGTH)
                with m.Else():
                    with m.Switch(kind):
                        with m.Case(Kind.ID):
                            m.d.sync += rsp_len.eq(9)
                            m.next = "H_SYNC"
                        with m.Case(Kind.RESET):
                            m.next = "X_RESET"
                        with m.Case(Kind.WRITE):
                            with m.If(hdr_a + items > size):
                                nak(Status.NAK_RANGE)
                            with m.Elif(items == 0):
                                m.next = "H_SYNC"
                            with m.Else():
                                m.next = "W_BYTE"
                        with m.Case(Kind.READ):
                            with m.If((hdr_a + hdr_b > size) | (read_len > 0xFFFF)):
                                nak(Status.NAK_RANGE)
                            with m.Else():
                                m.d.sync += rsp_len.eq(read_len)
                                m.next = "H_SYNC"
                        with m.Case(Kind.GATHER):
                            with m.If(range_err):
                                nak(Status.NAK_RANGE)
                            with m.Else():
                                m.d.sync += [rsp_len.eq(items * wb), hdr_b.eq(items)]
                                m.next = "H_SYNC"
                        with m.Case(Kind.RUN):
                            with m.If((items != 0) & (items != hdr_a)):
                                nak(Status.NAK_LENGTH)
                            with m.Elif(run_len > 0xFFFF):
                                nak(Status.NAK_RANGE)
                            with m.Else():
                                m.d.sync += rsp_len.eq(run_len)
                                m.next = "H_SYNC"

            # ---- writes (executed before the ACK) ----
            with m.State("W_BYTE"):
                m.d.sync += [word.word_select(k, 8).eq(buf_rd.data), ptr.eq(ptr + 1)]
                with m.If(k == wb - 1):
                    m.next = "W_BUS"
                with m.Else():
                    m.d.sync += k.eq(k + 1)
            with m.State("W_BUS"):
                m.d.sync += [req_addr.eq(bus_addr(region, hdr_a)), req_wdata.eq(word), req_we.eq(1)]
                m.d.sync += [hdr_a.eq(hdr_a + 1), k.eq(0), word.eq(0)]
                with m.If(ptr == length):
                    m.next = "H_SYNC"
                with m.Else():
                    m.next = "W_BYTE"
            with m.State("X_RESET"):
                m.d.sync += [req_addr.eq(bus_addr(Region.CTRL, Const(0, 16))), req_wdata.eq(Command.SOFT_RESET),
                             req_we.eq(1)]
                m.next = "X_GAP"
            with m.State("X_GAP"):       # the core sees the registered command now; busy rises next cycle
                m.next = "X_WAIT"
            with m.State("X_WAIT"):
                with m.If(~core.busy):
                    m.next = "H_SYNC"

            # ---- response header ----
            with m.State("H_SYNC"):
                with m.If(send(SYNC_RSP, "H_OP", update_crc=False)):
                    m.d.sync += crc_tx.eq(CRC_INIT)
            with m.State("H_OP"):
                send(op | 0x80, "H_STATUS")
            with m.State("H_STATUS"):
                send(rsp_status, "H_LEN0")
            with m.State("H_LEN0"):
                send(rsp_len[:8], "H_LEN1")
            with m.State("H_LEN1"):
                with m.If(send(rsp_len[8:])):
                    m.d.sync += k.eq(0)
                    with m.If(rsp_status != Status.ACK):
                        m.next = "T_CRC0"
                    with m.Else():
                        with m.Switch(kind):
                            with m.Case(Kind.ID):
                                m.next = "ID_SEND"
                            with m.Case(Kind.READ, Kind.GATHER):
                                m.next = "R_CHECK"
                            with m.Case(Kind.RUN):
                                m.next = "U_CHECK"
                            with m.Default():
                                m.next = "T_CRC0"

            with m.State("ID_SEND"):
                with m.If(send(id_bytes.word_select(k, 8))):
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == 8):
                        m.next = "T_CRC0"

            # ---- reads: contiguous (READ) or gathered indices (GATHER); hdr_b words left ----
            with m.State("R_CHECK"):
                with m.If(hdr_b == 0):
                    m.next = "T_CRC0"
                with m.Elif(kind == Kind.GATHER):
                    m.next = "G_IDX0"
                with m.Else():
                    m.next = "R_ISSUE"
            with m.State("G_IDX0"):
                m.d.sync += [hdr_a[:8].eq(buf_rd.data), ptr.eq(ptr + 1)]
                m.next = "G_IDX1"
            with m.State("G_IDX1"):
                m.d.sync += [hdr_a[8:].eq(buf_rd.data), ptr.eq(ptr + 1)]
                m.next = "R_ISSUE"
            with m.State("R_ISSUE"):
                m.d.sync += [req_addr.eq(bus_addr(region, hdr_a)), req_re.eq(1)]
                m.next = "R_CAP"
            with m.State("R_CAP"):
                with m.If(bus.rvalid):
                    m.d.sync += [word.eq(bus.rdata), k.eq(0)]
                    m.next = "R_SEND"
            with m.State("R_SEND"):
                with m.If(send(word.word_select(k, 8))):
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == wb - 1):
                        m.d.sync += [hdr_a.eq(hdr_a + 1), hdr_b.eq(hdr_b - 1)]
                        m.next = "R_CHECK"

            # ---- run: hdr_a steps left; per step load inputs, RUN 1, stream the raster ----
            with m.State("U_CHECK"):
                m.d.sync += [k.eq(0), chunk.eq(0), inbits.eq(0)]
                with m.If(hdr_a == 0):
                    m.next = "T_CRC0"
                with m.Elif(has_inputs):
                    m.next = "U_IN"
                with m.Else():
                    m.next = "U_RUN"
            with m.State("U_IN"):
                m.d.sync += [inbits.word_select(k, 8).eq(buf_rd.data), ptr.eq(ptr + 1), k.eq(k + 1)]
                with m.If(k == in_bytes - 1):
                    m.next = "U_WIN"
            with m.State("U_WIN"):
                m.d.sync += [req_addr.eq(bus_addr(Region.INPUT, chunk)),
                             req_wdata.eq(inbits.word_select(chunk, 32)), req_we.eq(1)]
                m.d.sync += chunk.eq(chunk + 1)
                with m.If(chunk == n_chunks - 1):
                    m.next = "U_RUN"
            with m.State("U_RUN"):
                m.d.sync += [req_addr.eq(bus_addr(Region.CTRL, Const(0, 16))),
                             req_wdata.eq(Command.RUN | 1 << 8), req_we.eq(1)]
                m.next = "U_WAIT"
            with m.State("U_WAIT"):
                m.d.comb += core.raster.ready.eq(1)
                with m.If(core.raster.valid):
                    m.d.sync += [raster.eq(core.raster.payload), k.eq(0)]
                    m.next = "U_SEND"
            with m.State("U_SEND"):
                with m.If(send(raster.word_select(k, 8))):
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == ras_bytes - 1):
                        m.d.sync += hdr_a.eq(hdr_a - 1)
                        m.next = "U_CHECK"

            # ---- trailer ----
            with m.State("T_CRC0"):
                send(crc_tx[8:], "T_CRC1", update_crc=False)
            with m.State("T_CRC1"):
                send(crc_tx[:8], "HUNT", update_crc=False)
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
