"""Framed UART protocol of :class:`rtl.neurocore.uart_top.NeuroCoreUart`, shared by the RTL and the host.

Frames (all multi-byte fields little-endian except the CRC)::

    host -> core   A5 | op        | len16 | payload[len]           | crc16
    core -> host   5A | op | 0x80 | status | len16 | payload[len]  | crc16

``crc16`` is CRC-16/CCITT-FALSE (polynomial 0x1021, init 0xFFFF, no reflection, no final xor) over every byte
after the sync byte, sent most significant byte first, so the CRC run over a whole frame including its CRC is 0
(that is how the core checks it).  CRC-16 rather than snn.md's CRC-8: a corrupted length field makes the receiver
take some other byte as the checksum, which CRC-8 accepts with probability 1/256; CRC-16 with 1/65536.

Every frame is answered by exactly one response frame: ``status`` :data:`Status.ACK` after the command has taken
effect (reads and runs: the ACK header comes first and the data streams after it), or a NAK code with ``len = 0``
and no effect at all.  Bytes that arrive while the core executes a command or sends its response are discarded (the
protocol is half duplex: wait for the response).  Outside a frame the core hunts for the sync byte; a frame that
stalls for more than ``timeout_cycles`` gets :data:`Status.NAK_TIMEOUT`; a NAK before the opcode was received
carries op ``0x7F``.

Commands (:class:`Op`; ``start``/``count``/``steps`` are 16-bit, "words" are :func:`word_bytes` bytes each):

=============  ====  ===========================================  ===============================================
command        op    payload                                      response payload
=============  ====  ===========================================  ===============================================
ID             0x00  --                                           version, N16, M16, P, T, max_payload16
SOFT_RESET     0x01  --                                           -- (after the reset has finished)
STATUS         0x02  --                                           status32, step_count32, last_step_cycles32
WR_GLOBAL      0x10  start, words                                 --
RD_GLOBAL      0x11  start, count                                 count words
LEARN          0x12  1 byte: 1 = learning on, 0 = off            --
WR_NEURON      0x20  start, words (index = field << nb | neuron)  --
RD_NEURON      0x21  start, count                                 count words
GATHER_NEURON  0x22  index16 ... (any neurons, any fields)        one word per index
WR_WEIGHT      0x30  start, words (P int8 weights + P mask bits)  --
RD_WEIGHT      0x31  start, count                                 count words
WR_TRACE       0x32  start, words                                 --
RD_TRACE       0x33  start, count                                 count words
WR_INPUT       0x40  start, words (32 input bits each)            -- (inputs of the next step)
RUN            0x41  steps, then nothing or steps x ceil(M/8)     steps x ceil(N/8) raster bytes, streamed
                     input bitmap bytes (LSB first)               one step at a time
RD_SPIKES      0x42  start, count                                 count words (last step's raster)
=============  ====  ===========================================  ===============================================

The bus addresses behind start/index are those of :class:`rtl.neurocore.config.Region`; ``start + count`` (or every
gathered index) must lie inside the region (:func:`region_size`), else :data:`Status.NAK_RANGE`.
"""
import enum

from rtl.neurocore.config import GlobalReg, NeuroCoreConfig, NeuronField, Region

__all__ = ["SYNC_CMD", "SYNC_RSP", "VERSION", "Kind", "Op", "OpInfo", "Status", "crc16", "decode_frames",
           "encode_frame", "encode_response", "op_info", "region_size", "word_bytes"]

SYNC_CMD = 0xA5
SYNC_RSP = 0x5A
VERSION = 2  #: 2: on-chip homeostasis registers, neuron field A, global TICK
NO_OP = 0x7F  #: op of a NAK sent before an opcode was received
CRC_INIT = 0xFFFF
CRC_POLY = 0x1021
HEADER_BYTES = 4   #: sync, op, len16 of a command
RSP_HEADER_BYTES = 5   #: sync, op, status, len16 of a response
ID_BYTES = 9


class Status(enum.IntEnum):
    """Status byte of a response."""

    ACK = 0
    NAK_CRC = 1      #: checksum mismatch
    NAK_LENGTH = 2   #: length too large for the buffer, too short, or not a whole number of words
    NAK_OPCODE = 3   #: unknown opcode
    NAK_TIMEOUT = 4  #: the frame stalled (no byte for ``timeout_cycles``)
    NAK_RANGE = 5    #: an index or count outside the region, or a response longer than 65,535 bytes


class Op(enum.IntEnum):
    ID = 0x00
    SOFT_RESET = 0x01
    STATUS = 0x02
    WR_GLOBAL = 0x10
    RD_GLOBAL = 0x11
    LEARN = 0x12
    WR_NEURON = 0x20
    RD_NEURON = 0x21
    GATHER_NEURON = 0x22
    WR_WEIGHT = 0x30
    RD_WEIGHT = 0x31
    WR_TRACE = 0x32
    RD_TRACE = 0x33
    WR_INPUT = 0x40
    RUN = 0x41
    RD_SPIKES = 0x42


class Kind(enum.IntEnum):
    """How the executor handles an opcode."""

    ID = 0
    RESET = 1
    WRITE = 2    #: header ``start`` (unless fixed), then words written to consecutive indices
    READ = 3     #: header ``start, count`` (unless fixed); response: the words
    GATHER = 4   #: 16-bit indices; response: one word each
    RUN = 5      #: header ``steps``, then optional per-step input bitmaps


class OpInfo:
    """Static decoding of one opcode: kind, region, bytes per word, header bytes, fixed start/count."""

    def __init__(self, kind: Kind, region: Region = Region.CTRL, wb: int = 4, hdr: int = 0, start: int = 0,
                 count: int = 0):
        self.kind, self.region, self.wb, self.hdr, self.start, self.count = kind, region, wb, hdr, start, count

    @property
    def unit(self) -> int:
        """Payload bytes per item after the header (0: no items allowed)."""
        return {Kind.WRITE: self.wb, Kind.RUN: self.wb, Kind.GATHER: 2}.get(self.kind, 0)


def word_bytes(config: NeuroCoreConfig, region: Region) -> int:
    """Bytes of one word of ``region`` on the wire (weights: P int8 then P mask bits; traces: T bits)."""
    if region == Region.WEIGHT:
        return -(-config.weight_word_bits // 8)
    if region == Region.TRACE_X:
        return -(-config.trace_bits // 8)
    return 4


def region_size(config: NeuroCoreConfig, region: Region) -> int:
    """Number of valid indices of ``region`` (NEURON: 14 fields of ``2**neuron_bits`` entries)."""
    return {
        Region.CTRL: 3,
        Region.GLOBAL: len(GlobalReg),
        Region.WEIGHT: config.n_sources * config.groups,
        Region.NEURON: len(NeuronField) << config.neuron_bits,
        Region.TRACE_X: config.n_sources,
        Region.INPUT: -(-config.n_inputs // 32),
        Region.SPIKES: -(-config.n_neurons // 32),
    }[region]


def op_info(config: NeuroCoreConfig) -> dict[Op, OpInfo]:
    """The decoding table of every opcode for a core configuration."""
    def wr(region):
        return OpInfo(Kind.WRITE, region, word_bytes(config, region), hdr=2)

    def rd(region):
        return OpInfo(Kind.READ, region, word_bytes(config, region), hdr=4)

    return {
        Op.ID: OpInfo(Kind.ID),
        Op.SOFT_RESET: OpInfo(Kind.RESET),
        Op.STATUS: OpInfo(Kind.READ, Region.CTRL, 4, hdr=0, start=0, count=3),
        Op.WR_GLOBAL: wr(Region.GLOBAL),
        Op.RD_GLOBAL: rd(Region.GLOBAL),
        Op.LEARN: OpInfo(Kind.WRITE, Region.GLOBAL, 1, hdr=0, start=int(GlobalReg.LEARN)),
        Op.WR_NEURON: wr(Region.NEURON),
        Op.RD_NEURON: rd(Region.NEURON),
        Op.GATHER_NEURON: OpInfo(Kind.GATHER, Region.NEURON, 4),
        Op.WR_WEIGHT: wr(Region.WEIGHT),
        Op.RD_WEIGHT: rd(Region.WEIGHT),
        Op.WR_TRACE: wr(Region.TRACE_X),
        Op.RD_TRACE: rd(Region.TRACE_X),
        Op.WR_INPUT: wr(Region.INPUT),
        Op.RUN: OpInfo(Kind.RUN, Region.INPUT, -(-config.n_inputs // 8), hdr=2),
        Op.RD_SPIKES: rd(Region.SPIKES),
    }


def crc16(data: bytes, crc: int = CRC_INIT) -> int:
    """CRC-16/CCITT-FALSE of ``data`` (continuing from ``crc``)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY if crc & 0x8000 else crc << 1) & 0xFFFF
    return crc


def encode_frame(op: int, payload: bytes = b"") -> bytes:
    """A host -> core command frame."""
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a frame")
    body = bytes([op & 0xFF]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return bytes([SYNC_CMD]) + body + crc16(body).to_bytes(2, "big")


def encode_response(op: int, status: int, payload: bytes = b"") -> bytes:
    """A core -> host response frame (what the core sends; used by tests)."""
    body = bytes([(op | 0x80) & 0xFF, status]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return bytes([SYNC_RSP]) + body + crc16(body).to_bytes(2, "big")


def decode_frames(data: bytes) -> tuple[list[tuple[int, int, bytes]], bytes]:
    """Split core -> host bytes into ``(op, status, payload)`` responses; returns them and unparsed trailing bytes.

    Raises ``ValueError`` on a bad sync byte or checksum (the core never sends those).
    """
    frames = []
    pos = 0
    while pos < len(data):
        if data[pos] != SYNC_RSP:
            raise ValueError(f"expected sync byte 0x5A at offset {pos}, got {data[pos]:#04x}")
        if len(data) - pos < RSP_HEADER_BYTES:
            break
        length = int.from_bytes(data[pos + 3:pos + 5], "little")
        end = pos + RSP_HEADER_BYTES + length + 2
        if end > len(data):
            break
        if crc16(data[pos + 1:end]) != 0:
            raise ValueError(f"bad response checksum at offset {pos}")
        frames.append((data[pos + 1] & 0x7F, data[pos + 2], bytes(data[pos + RSP_HEADER_BYTES:end - 2])))
        pos = end
    return frames, bytes(data[pos:])
