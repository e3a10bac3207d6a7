"""The command side of :class:`~rtl.neurocore.uart_top.NeuroCoreUart`: the frame parser and the command executor
(protocol: :mod:`rtl.neurocore.protocol`).

The parser receives a frame into its payload buffer, checks it (checksum, length, opcode, index ranges) and hands it
to the executor with the response status (:class:`CommandSignature`); it ignores the line until the executor has
sent the last byte of the response. The executor performs the command on the engine's host bus (writes before the
ACK; reads and runs stream their data after the response header) and sends the response.
"""
import enum
from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.neurocore.config import Command, Region
from rtl.neurocore.host import HostBusSignature
from rtl.neurocore.protocol import (
    CRC_INIT,
    CRC_POLY,
    ID_BYTES,
    NO_OP,
    SYNC_CMD,
    SYNC_RSP,
    VERSION,
    Kind,
    Status,
    op_info,
    region_size,
)

__all__ = ["Action", "CommandExecutor", "CommandParser", "CommandSignature"]


class Action(enum.IntEnum):
    """What the executor does before it sends the response header."""

    RESPOND = 0  #: nothing (a NAK, or a command whose work follows the header)
    WRITE = 1    #: write the payload's words to the bus
    RESET = 2    #: soft-reset the engine and wait for it


def _crc_next(m, crc, byte, name):
    """CRC-16/CCITT-FALSE of ``crc`` continued by ``byte`` (a chain of 8 named combinational stages)."""
    value = Signal(16, name=f"{name}_0")
    m.d.comb += value.eq(crc ^ Cat(Const(0, 8), byte))
    for i in range(8):
        nxt = Signal(16, name=f"{name}_{i + 1}")
        m.d.comb += nxt.eq(Cat(Const(0, 1), value[:15]) ^ Mux(value[15], CRC_POLY, 0))
        value = nxt
    return value


def _max_word_bytes(config) -> int:
    return max(i.wb for i in op_info(config.core).values())


class CommandSignature(wiring.Signature):
    """A checked frame, seen from the parser (``config``: a :class:`~rtl.neurocore.uart_top.NeuroCoreUartConfig`).

    ``start`` (one cycle) hands the frame over with ``action``, the response ``status`` and ``rsp_len``; the other
    members hold still until the executor raises ``done`` (the response's last byte left): the opcode ``op`` and
    its decoding (``kind``, ``region``, bytes per word ``wb``), the payload ``length``, the header size
    ``payload_start`` (where the words begin in the buffer), the header's ``index`` (start / steps) and ``count``
    (READ: words; GATHER: indices), ``has_inputs`` (a RUN frame carries input bitmaps) and the payload buffer's
    combinational read port (``buf_addr``, ``buf_data``).
    """

    def __init__(self, config):
        max_wb = _max_word_bytes(config)
        super().__init__({
            "start": Out(1), "action": Out(Action), "status": Out(8), "rsp_len": Out(16),
            "op": Out(8), "kind": Out(3), "region": Out(3), "wb": Out(range(max_wb + 1)), "length": Out(16),
            "payload_start": Out(3), "index": Out(16), "count": Out(16), "has_inputs": Out(1),
            "buf_addr": In(range(config.max_payload + 1)), "buf_data": Out(8),
            "done": In(1),
        })


class CommandParser(wiring.Component):
    """Frame receiver and checker: sync hunt, opcode, length, payload into the ``max_payload``-byte buffer ``buf``,
    CRC-16; an inter-byte timeout aborts a stalled frame. The receiver is always ready: bytes that arrive while a
    command executes are discarded.

    Members
    -------
    rx : ``In(stream.Signature(8))``
    cmd : ``Out(CommandSignature(config))``
    """

    def __init__(self, config):
        self._config = config
        super().__init__({"rx": In(stream.Signature(8)), "cmd": Out(CommandSignature(config))})

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        cmd = self.cmd
        got, byte = self.rx.valid, self.rx.payload
        receiving = Signal(name="receiving")
        timer = Signal(range(cfg.timeout_cycles + 1), name="timer")
        with m.If(receiving & ~got):
            m.d.sync += timer.eq(timer + 1)
        with m.Else():
            m.d.sync += timer.eq(0)
        m.d.comb += self.rx.ready.eq(1)

        m.submodules.buf = buf = Memory(shape=8, depth=cfg.max_payload, init=[])
        buf_wr = buf.write_port()
        buf_rd = buf.read_port(domain="comb")
        m.d.comb += [buf_rd.addr.eq(cmd.buf_addr), cmd.buf_data.eq(buf_rd.data)]

        f = SimpleNamespace(
            op=Signal(8, name="op", init=NO_OP), length=Signal(16, name="length"), pos=Signal(16, name="pos"),
            hdr_a=Signal(16, name="hdr_a"),     # start / steps
            hdr_b=Signal(16, name="hdr_b"),     # count
            items=Signal(16, name="items"), unit_byte=Signal(range(_max_word_bytes(cfg) + 1), name="unit_byte"),
            last_byte=Signal(8, name="last_byte"),
            extra=Signal(name="extra"),         # payload bytes beyond the header of an op that takes none
            range_err=Signal(name="range_err"),  # a gathered index outside the region
            crc_rx=Signal(16, name="crc_rx", init=CRC_INIT),
        )
        d = self._decode(m, f.op)
        crc_rx_next = _crc_next(m, f.crc_rx, byte, "crc_rx_next")
        m.d.comb += [cmd.op.eq(f.op), cmd.kind.eq(d.kind), cmd.region.eq(d.region), cmd.wb.eq(d.wb),
                     cmd.length.eq(f.length), cmd.payload_start.eq(d.hdr), cmd.index.eq(f.hdr_a),
                     cmd.count.eq(Mux(d.kind == Kind.GATHER, f.items, f.hdr_b)), cmd.has_inputs.eq(f.items != 0)]

        def receive(next_state):
            """A frame byte: CRC it, time out if none comes."""
            m.d.comb += receiving.eq(1)
            with m.If(got):
                m.d.sync += f.crc_rx.eq(crc_rx_next)
                if next_state is not None:
                    m.next = next_state
            with m.Elif(timer >= cfg.timeout_cycles - 1):
                self._hand_over(m, Status.NAK_TIMEOUT)

        with m.FSM(name="parser"):
            with m.State("HUNT"):
                with m.If(got & (byte == SYNC_CMD)):
                    m.d.sync += [f.op.eq(NO_OP), f.pos.eq(0), f.items.eq(0), f.unit_byte.eq(0), f.extra.eq(0),
                                 f.range_err.eq(0), f.crc_rx.eq(CRC_INIT)]
                    m.next = "OP"
            with m.State("OP"):
                receive("LEN0")
                with m.If(got):
                    m.d.sync += f.op.eq(byte)
            with m.State("LEN0"):
                receive("LEN1")
                with m.If(got):
                    m.d.sync += f.length[:8].eq(byte)
            with m.State("LEN1"):
                receive(None)
                full_len = Cat(f.length[:8], byte)
                with m.If(got):
                    m.d.sync += [f.length[8:].eq(byte), f.hdr_a.eq(d.fixed_a), f.hdr_b.eq(d.fixed_b)]
                    with m.If(~d.known):
                        self._hand_over(m, Status.NAK_OPCODE)
                    with m.Elif((full_len > cfg.max_payload) | (full_len < d.hdr)):
                        self._hand_over(m, Status.NAK_LENGTH)
                    with m.Elif(full_len == 0):
                        m.next = "CRC0"
                    with m.Else():
                        m.next = "PAYLOAD"
            with m.State("PAYLOAD"):
                receive(None)
                with m.If(got):
                    m.d.comb += [buf_wr.en.eq(1), buf_wr.addr.eq(f.pos), buf_wr.data.eq(byte)]
                    self._payload_byte(m, f, d, byte)
            with m.State("CRC0"):
                receive("CRC1")
            with m.State("CRC1"):
                receive("CHECK")
            with m.State("CHECK"):
                self._check(m, f, d)
            with m.State("BUSY"):
                with m.If(cmd.done):
                    m.next = "HUNT"
        return m

    def _decode(self, m, op):
        """The opcode's static decoding (:func:`~rtl.neurocore.protocol.op_info`) and its region's size."""
        core = self._config.core
        max_wb = _max_word_bytes(self._config)
        d = SimpleNamespace(
            known=Signal(name="known"), kind=Signal(3, name="kind"), region=Signal(3, name="region"),
            wb=Signal(range(max_wb + 1), name="wb"), hdr=Signal(3, name="hdr"),
            unit=Signal(range(max_wb + 1), name="unit"), fixed_a=Signal(16, name="fixed_a"),
            fixed_b=Signal(16, name="fixed_b"), size=Signal(17, name="size"),
        )
        with m.Switch(op):
            for code, oi in op_info(core).items():
                with m.Case(code):
                    m.d.comb += [d.known.eq(1), d.kind.eq(oi.kind), d.region.eq(oi.region), d.wb.eq(oi.wb),
                                 d.hdr.eq(oi.hdr), d.unit.eq(oi.unit), d.fixed_a.eq(oi.start),
                                 d.fixed_b.eq(oi.count)]
        with m.Switch(d.region):
            for r in Region:
                with m.Case(r):
                    m.d.comb += d.size.eq(region_size(core, r))
        return d

    def _payload_byte(self, m, f, d, byte):
        """A payload byte (stored in the buffer by the caller): header fields, then items of ``unit`` bytes."""
        m.d.sync += [f.pos.eq(f.pos + 1), f.last_byte.eq(byte)]
        with m.If(f.pos < d.hdr):
            with m.Switch(f.pos[:2]):
                with m.Case(0):
                    m.d.sync += f.hdr_a[:8].eq(byte)
                with m.Case(1):
                    m.d.sync += f.hdr_a[8:].eq(byte)
                with m.Case(2):
                    m.d.sync += f.hdr_b[:8].eq(byte)
                with m.Case(3):
                    m.d.sync += f.hdr_b[8:].eq(byte)
        with m.Elif(d.unit == 0):
            m.d.sync += f.extra.eq(1)
        with m.Elif(f.unit_byte == d.unit - 1):
            m.d.sync += [f.unit_byte.eq(0), f.items.eq(f.items + 1)]
            with m.If((d.kind == Kind.GATHER) & (Cat(f.last_byte, byte) >= d.size)):
                m.d.sync += f.range_err.eq(1)
        with m.Else():
            m.d.sync += f.unit_byte.eq(f.unit_byte + 1)
        with m.If(f.pos == f.length - 1):
            m.next = "CRC0"

    def _check(self, m, f, d):
        """The whole frame is in: hand it over with its status (every NAK has an empty response)."""
        ras_bytes = -(-self._config.core.n_neurons // 8)
        read_len = Signal(20, name="read_len")
        run_len = Signal(32, name="run_len")
        m.d.comb += [read_len.eq(f.hdr_b * d.wb), run_len.eq(f.hdr_a * ras_bytes)]
        with m.If(f.crc_rx != 0):
            self._hand_over(m, Status.NAK_CRC)
        with m.Elif((f.unit_byte != 0) | f.extra):
            self._hand_over(m, Status.NAK_LENGTH)
        with m.Else():
            with m.Switch(d.kind):
                with m.Case(Kind.ID):
                    self._hand_over(m, Status.ACK, ID_BYTES)
                with m.Case(Kind.RESET):
                    self._hand_over(m, Status.ACK, action=Action.RESET)
                with m.Case(Kind.WRITE):
                    with m.If(f.hdr_a + f.items > d.size):
                        self._hand_over(m, Status.NAK_RANGE)
                    with m.Elif(f.items == 0):
                        self._hand_over(m, Status.ACK)
                    with m.Else():
                        self._hand_over(m, Status.ACK, action=Action.WRITE)
                with m.Case(Kind.READ):
                    with m.If((f.hdr_a + f.hdr_b > d.size) | (read_len > 0xFFFF)):
                        self._hand_over(m, Status.NAK_RANGE)
                    with m.Else():
                        self._hand_over(m, Status.ACK, read_len)
                with m.Case(Kind.GATHER):
                    with m.If(f.range_err):
                        self._hand_over(m, Status.NAK_RANGE)
                    with m.Else():
                        self._hand_over(m, Status.ACK, f.items * d.wb)
                with m.Case(Kind.RUN):
                    with m.If((f.items != 0) & (f.items != f.hdr_a)):
                        self._hand_over(m, Status.NAK_LENGTH)
                    with m.Elif(run_len > 0xFFFF):
                        self._hand_over(m, Status.NAK_RANGE)
                    with m.Else():
                        self._hand_over(m, Status.ACK, run_len)

    def _hand_over(self, m, status, rsp_len=0, action=Action.RESPOND):
        cmd = self.cmd
        m.d.comb += [cmd.start.eq(1), cmd.status.eq(status), cmd.rsp_len.eq(rsp_len), cmd.action.eq(action)]
        m.next = "BUSY"


class CommandExecutor(wiring.Component):
    """Performs a checked frame (:class:`CommandSignature`) on the engine and sends the response.

    The bus request is registered: it cuts the path from the executor's FSM into the engine's memories.

    Members
    -------
    cmd : ``In(CommandSignature(config))``
    bus : ``Out(HostBusSignature)``
        The engine's host bus (the executor is its host).
    busy : ``In(1)``
        The engine's ``busy``.
    raster : ``In(stream.Signature(N))``
        The engine's rasters (accepted while a RUN waits for its step).
    tx : ``Out(stream.Signature(8))``
        Response bytes.
    """

    def __init__(self, config):
        self._config = config
        c = config.core
        super().__init__({
            "cmd": In(CommandSignature(config)),
            "bus": Out(HostBusSignature(c.addr_width, c.data_width)),
            "busy": In(1),
            "raster": In(stream.Signature(c.n_neurons)),
            "tx": Out(stream.Signature(8)),
        })

    def elaborate(self, platform):
        cfg = self._config
        c = cfg.core
        m = Module()
        cmd, bus = self.cmd, self.bus
        n_chunks = -(-c.n_inputs // 32)
        word_bits = max(8 * _max_word_bytes(cfg), c.data_width)
        r = SimpleNamespace(
            req_addr=Signal.like(bus.addr, name="req_addr"), req_wdata=Signal.like(bus.wdata, name="req_wdata"),
            req_we=Signal(name="req_we"), req_re=Signal(name="req_re"),
            ptr=Signal(range(cfg.max_payload + 1), name="ptr"),
            k=Signal(range(max(_max_word_bytes(cfg), -(-c.n_neurons // 8), -(-c.n_inputs // 8), 9) + 1), name="k"),
            chunk=Signal(range(n_chunks + 1), name="chunk"),
            word=Signal(word_bits + (-word_bits) % 8, name="word"),
            inbits=Signal(32 * n_chunks, name="inbits"),
            raster=Signal(8 * -(-c.n_neurons // 8), name="raster_bits"),
            has_inputs=Signal(name="has_inputs"),
            index=Signal(16, name="index"),    # start / steps left
            count=Signal(16, name="count"),    # words left to read
            rsp_status=Signal(8, name="rsp_status"), rsp_len=Signal(16, name="rsp_len"),
            crc_tx=Signal(16, name="crc_tx", init=CRC_INIT),
        )
        m.d.sync += [r.req_we.eq(0), r.req_re.eq(0)]
        m.d.comb += [bus.addr.eq(r.req_addr), bus.wdata.eq(r.req_wdata), bus.we.eq(r.req_we), bus.re.eq(r.req_re),
                     cmd.buf_addr.eq(r.ptr)]
        r.crc_tx_next = _crc_next(m, r.crc_tx, self.tx.payload, "crc_tx_next")

        with m.FSM(name="executor"):
            with m.State("IDLE"):
                with m.If(cmd.start):
                    m.d.sync += [r.ptr.eq(cmd.payload_start), r.k.eq(0), r.word.eq(0), r.rsp_status.eq(cmd.status),
                                 r.rsp_len.eq(cmd.rsp_len), r.has_inputs.eq(cmd.has_inputs), r.index.eq(cmd.index),
                                 r.count.eq(cmd.count)]
                    with m.Switch(cmd.action):
                        with m.Case(Action.RESPOND):
                            m.next = "H_SYNC"
                        with m.Case(Action.WRITE):
                            m.next = "W_BYTE"
                        with m.Case(Action.RESET):
                            m.next = "X_RESET"
            self._write_states(m, r)
            self._header_states(m, r)
            self._read_states(m, r)
            self._run_states(m, r)
            with m.State("T_CRC0"):
                self._send(m, r, r.crc_tx[8:], "T_CRC1", update_crc=False)
            with m.State("T_CRC1"):
                with m.If(self._send(m, r, r.crc_tx[:8], "IDLE", update_crc=False)):
                    m.d.comb += cmd.done.eq(1)
        return m

    def _send(self, m, r, value, next_state=None, *, update_crc=True):
        """Offer ``value`` to the transmitter; on acceptance update the CRC and go to ``next_state``."""
        m.d.comb += [self.tx.valid.eq(1), self.tx.payload.eq(value)]
        accepted = self.tx.ready
        with m.If(accepted):
            if update_crc:
                m.d.sync += r.crc_tx.eq(r.crc_tx_next)
            if next_state is not None:
                m.next = next_state
        return accepted

    def _bus_addr(self, region, index):
        region = Const(int(region), 3) if isinstance(region, Region) else region
        return (region.as_unsigned() << self._config.core.index_bits) | index[:self._config.core.index_bits]

    def _write_states(self, m, r):
        """WRITE: the payload's words to consecutive indices; RESET: SOFT_RESET and wait (both before the ACK)."""
        cmd = self.cmd
        with m.State("W_BYTE"):
            m.d.sync += [r.word.word_select(r.k, 8).eq(cmd.buf_data), r.ptr.eq(r.ptr + 1)]
            with m.If(r.k == cmd.wb - 1):
                m.next = "W_BUS"
            with m.Else():
                m.d.sync += r.k.eq(r.k + 1)
        with m.State("W_BUS"):
            m.d.sync += [r.req_addr.eq(self._bus_addr(cmd.region, r.index)), r.req_wdata.eq(r.word),
                         r.req_we.eq(1)]
            m.d.sync += [r.index.eq(r.index + 1), r.k.eq(0), r.word.eq(0)]
            with m.If(r.ptr == cmd.length):
                m.next = "H_SYNC"
            with m.Else():
                m.next = "W_BYTE"
        with m.State("X_RESET"):
            m.d.sync += [r.req_addr.eq(self._bus_addr(Region.CTRL, Const(0, 16))),
                         r.req_wdata.eq(Command.SOFT_RESET), r.req_we.eq(1)]
            m.next = "X_GAP"
        with m.State("X_GAP"):       # the core sees the registered command now; busy rises next cycle
            m.next = "X_WAIT"
        with m.State("X_WAIT"):
            with m.If(~self.busy):
                m.next = "H_SYNC"

    def _header_states(self, m, r):
        """The response header, then the payload the command's kind asks for (ACK only), or the trailer."""
        cfg = self._config
        c = cfg.core
        cmd = self.cmd
        id_bytes = Const(VERSION | c.n_neurons << 8 | c.n_inputs << 24 | c.lanes << 40 | c.trace_bits << 48
                         | cfg.max_payload << 56, 8 * ID_BYTES)
        with m.State("H_SYNC"):
            with m.If(self._send(m, r, SYNC_RSP, "H_OP", update_crc=False)):
                m.d.sync += r.crc_tx.eq(CRC_INIT)
        with m.State("H_OP"):
            self._send(m, r, cmd.op | 0x80, "H_STATUS")
        with m.State("H_STATUS"):
            self._send(m, r, r.rsp_status, "H_LEN0")
        with m.State("H_LEN0"):
            self._send(m, r, r.rsp_len[:8], "H_LEN1")
        with m.State("H_LEN1"):
            with m.If(self._send(m, r, r.rsp_len[8:])):
                m.d.sync += r.k.eq(0)
                with m.If(r.rsp_status != Status.ACK):
                    m.next = "T_CRC0"
                with m.Else():
                    with m.Switch(cmd.kind):
                        with m.Case(Kind.ID):
                            m.next = "ID_SEND"
                        with m.Case(Kind.READ, Kind.GATHER):
                            m.next = "R_CHECK"
                        with m.Case(Kind.RUN):
                            m.next = "U_CHECK"
                        with m.Default():
                            m.next = "T_CRC0"
        with m.State("ID_SEND"):
            with m.If(self._send(m, r, id_bytes.word_select(r.k, 8))):
                m.d.sync += r.k.eq(r.k + 1)
                with m.If(r.k == ID_BYTES - 1):
                    m.next = "T_CRC0"

    def _read_states(self, m, r):
        """READ (contiguous) / GATHER (indices from the payload): ``count`` words left, one bus read each."""
        cmd, bus = self.cmd, self.bus
        with m.State("R_CHECK"):
            with m.If(r.count == 0):
                m.next = "T_CRC0"
            with m.Elif(cmd.kind == Kind.GATHER):
                m.next = "G_IDX0"
            with m.Else():
                m.next = "R_ISSUE"
        with m.State("G_IDX0"):
            m.d.sync += [r.index[:8].eq(cmd.buf_data), r.ptr.eq(r.ptr + 1)]
            m.next = "G_IDX1"
        with m.State("G_IDX1"):
            m.d.sync += [r.index[8:].eq(cmd.buf_data), r.ptr.eq(r.ptr + 1)]
            m.next = "R_ISSUE"
        with m.State("R_ISSUE"):
            m.d.sync += [r.req_addr.eq(self._bus_addr(cmd.region, r.index)), r.req_re.eq(1)]
            m.next = "R_CAP"
        with m.State("R_CAP"):
            with m.If(bus.rvalid):
                m.d.sync += [r.word.eq(bus.rdata), r.k.eq(0)]
                m.next = "R_SEND"
        with m.State("R_SEND"):
            with m.If(self._send(m, r, r.word.word_select(r.k, 8))):
                m.d.sync += r.k.eq(r.k + 1)
                with m.If(r.k == cmd.wb - 1):
                    m.d.sync += [r.index.eq(r.index + 1), r.count.eq(r.count - 1)]
                    m.next = "R_CHECK"

    def _run_states(self, m, r):
        """RUN: ``index`` steps left; per step load the inputs (if the frame has them), RUN 1, stream the raster."""
        c = self._config.core
        cmd = self.cmd
        n_chunks = -(-c.n_inputs // 32)
        with m.State("U_CHECK"):
            m.d.sync += [r.k.eq(0), r.chunk.eq(0), r.inbits.eq(0)]
            with m.If(r.index == 0):
                m.next = "T_CRC0"
            with m.Elif(r.has_inputs):
                m.next = "U_IN"
            with m.Else():
                m.next = "U_RUN"
        with m.State("U_IN"):
            m.d.sync += [r.inbits.word_select(r.k, 8).eq(cmd.buf_data), r.ptr.eq(r.ptr + 1), r.k.eq(r.k + 1)]
            with m.If(r.k == -(-c.n_inputs // 8) - 1):
                m.next = "U_WIN"
        with m.State("U_WIN"):
            m.d.sync += [r.req_addr.eq(self._bus_addr(Region.INPUT, r.chunk)),
                         r.req_wdata.eq(r.inbits.word_select(r.chunk, 32)), r.req_we.eq(1)]
            m.d.sync += r.chunk.eq(r.chunk + 1)
            with m.If(r.chunk == n_chunks - 1):
                m.next = "U_RUN"
        with m.State("U_RUN"):
            m.d.sync += [r.req_addr.eq(self._bus_addr(Region.CTRL, Const(0, 16))),
                         r.req_wdata.eq(Command.RUN | 1 << 8), r.req_we.eq(1)]
            m.next = "U_WAIT"
        with m.State("U_WAIT"):
            m.d.comb += self.raster.ready.eq(1)
            with m.If(self.raster.valid):
                m.d.sync += [r.raster.eq(self.raster.payload), r.k.eq(0)]
                m.next = "U_SEND"
        with m.State("U_SEND"):
            with m.If(self._send(m, r, r.raster.word_select(r.k, 8))):
                m.d.sync += r.k.eq(r.k + 1)
                with m.If(r.k == -(-c.n_neurons // 8) - 1):
                    m.d.sync += r.index.eq(r.index - 1)
                    m.next = "U_CHECK"
