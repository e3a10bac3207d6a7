"""Single-port synchronous RAM with optional parity or SECDED protection of the stored words.

Codecs come in two forms that must agree bit for bit: pure functions of Amaranth values (``parity_encode``,
``parity_check``, ``secded_encode``, ``secded_decode``) used by :class:`Sram`, and plain-Python reference
functions on ints (``*_int``) for testbenches and golden models.

Stored word layout (bit 0 first), the same for every depth:

- ``NONE``: ``data``.
- ``PARITY``: ``data``, then one even-parity bit (XOR of the data bits).
- ``SECDED``: ``data``, then ``r`` Hamming check bits, then one overall-parity bit, where ``r`` is the smallest
  integer with ``2**r >= width + r + 1`` (:func:`secded_check_width`). In Hamming numbering the check bit ``i``
  sits at position ``2**i`` and the data bits fill positions 3, 5, 6, 7, 9, ... in order; check bit ``i`` is the
  XOR of the data bits whose position has bit ``i`` set, and the overall bit makes the XOR of the whole stored
  word zero. The all-zero word is a valid codeword, so zero-initialised memory decodes cleanly.
"""
import enum
from dataclasses import dataclass
from typing import NamedTuple

from amaranth import Cat, Const, Module, Signal
from amaranth.hdl import MemoryData, Value, ValueLike
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from rtl.common.stream import _check_positive_int

__all__ = [
    "Protection", "SramConfig", "Sram", "Decoded",
    "parity_encode", "parity_check", "parity_encode_int", "parity_check_int",
    "secded_check_width", "secded_encode", "secded_decode", "secded_encode_int", "secded_decode_int",
]


class Protection(enum.Enum):
    """How :class:`Sram` protects each stored word. ``Protection("secded")`` parses the value names."""

    #: No check bits.
    NONE = "none"
    #: One even-parity bit: detects any odd number of flipped bits, corrects nothing.
    PARITY = "parity"
    #: Extended Hamming code: corrects any single flipped bit, detects any double flip.
    SECDED = "secded"


class Decoded(NamedTuple):
    """Result of decoding a stored word (Amaranth values from :func:`secded_decode`, ints/bools from ``*_int``)."""

    #: The data bits, corrected if ``corrected``.
    data: "Value | int"
    #: A single flipped bit was found and corrected.
    corrected: "Value | bool"
    #: The word is not trustworthy: a double (or detectably larger) error.
    error: "Value | bool"


# --- parity ---------------------------------------------------------------------------------------------------

def parity_encode(data: ValueLike) -> Value:
    """``Cat(data, even parity bit)``."""
    data = Value.cast(data)
    return Cat(data, data.xor())


def parity_check(word: ValueLike) -> Value:
    """1 when a parity-encoded ``word`` has odd weight, i.e. an odd number of its bits flipped."""
    return Value.cast(word).xor()


def parity_encode_int(data: int, width: int) -> int:
    data &= (1 << width) - 1
    return data | (data.bit_count() & 1) << width


def parity_check_int(word: int) -> bool:
    return bool(word.bit_count() & 1)


# --- SECDED (extended Hamming) --------------------------------------------------------------------------------

def secded_check_width(width: int) -> int:
    """Number of Hamming check bits ``r`` for ``width`` data bits (the stored word has ``width + r + 1`` bits)."""
    r = 0
    while (1 << r) < width + r + 1:
        r += 1
    return r


def _data_positions(width: int) -> list[int]:
    """Hamming positions (1-based) of the data bits: every position that is not a power of two."""
    positions = []
    pos = 1
    while len(positions) < width:
        if pos & (pos - 1):
            positions.append(pos)
        pos += 1
    return positions


def _check_groups(width: int) -> list[list[int]]:
    """For each check bit ``i``: the indices of the data bits it covers."""
    positions = _data_positions(width)
    return [[j for j, pos in enumerate(positions) if pos >> i & 1] for i in range(secded_check_width(width))]


def secded_encode(data: ValueLike) -> Value:
    """Stored word for ``data`` (its width is ``len(data)``): ``Cat(data, check bits, overall parity)``."""
    data = Value.cast(data)
    check = Cat(*(Cat(*(data[j] for j in group)).xor() for group in _check_groups(len(data))))
    return Cat(data, check, Cat(data, check).xor())


def secded_decode(word: ValueLike, width: int) -> Decoded:
    """Correct-on-read: decode a stored word of ``width`` data bits into :class:`Decoded` (Amaranth values)."""
    word = Value.cast(word)
    r = secded_check_width(width)
    if len(word) != width + r + 1:
        raise ValueError(f"a SECDED word for {width} data bits has {width + r + 1} bits, not {len(word)}")
    data, check = word[:width], word[width:width + r]
    syndrome = Cat(*(Cat(check[i], *(data[j] for j in group)).xor()
                     for i, group in enumerate(_check_groups(width))))
    odd = word.xor()  # an odd number of bits flipped (for a single flip: exactly one)
    positions = _data_positions(width)
    fixed = Cat(*(data[j] ^ (odd & (syndrome == pos)) for j, pos in enumerate(positions)))
    # A syndrome naming a position past the end of the code cannot come from a single flip.
    in_range = syndrome <= width + r
    return Decoded(
        data=fixed,
        corrected=odd & in_range,
        error=(~odd & (syndrome != 0)) | (odd & ~in_range),
    )


def secded_encode_int(data: int, width: int) -> int:
    """Plain-Python reference for :func:`secded_encode`."""
    data &= (1 << width) - 1
    check = 0
    for i, group in enumerate(_check_groups(width)):
        check |= (sum(data >> j & 1 for j in group) & 1) << i
    word = data | check << width
    return word | (word.bit_count() & 1) << (width + secded_check_width(width))


def secded_decode_int(word: int, width: int) -> Decoded:
    """Plain-Python reference for :func:`secded_decode`."""
    r = secded_check_width(width)
    data = word & ((1 << width) - 1)
    check = word >> width & ((1 << r) - 1)
    syndrome = 0
    for i, group in enumerate(_check_groups(width)):
        syndrome |= ((check >> i & 1) ^ (sum(data >> j & 1 for j in group) & 1)) << i
    odd = bool(word.bit_count() & 1)
    if not odd:
        return Decoded(data, False, syndrome != 0)
    if syndrome > width + r:
        return Decoded(data, False, True)
    positions = _data_positions(width)
    if syndrome in positions:
        data ^= 1 << positions.index(syndrome)
    return Decoded(data, True, False)


# --- the RAM --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SramConfig:
    """Geometry and protection of an :class:`Sram`, validated on construction."""

    depth: int
    width: int
    protection: Protection = Protection.NONE

    def __post_init__(self):
        _check_positive_int("depth", self.depth)
        _check_positive_int("width", self.width)
        if not isinstance(self.protection, Protection):
            raise TypeError(f"protection must be a Protection member, not {self.protection!r}")

    @property
    def addr_width(self) -> int:
        return ceil_log2(self.depth)

    @property
    def check_width(self) -> int:
        """Extra stored bits per word."""
        match self.protection:
            case Protection.NONE:
                return 0
            case Protection.PARITY:
                return 1
            case Protection.SECDED:
                return secded_check_width(self.width) + 1

    @property
    def stored_width(self) -> int:
        return self.width + self.check_width

    def encode_int(self, data: int) -> int:
        """Reference: the stored word for ``data``."""
        match self.protection:
            case Protection.NONE:
                return data & ((1 << self.width) - 1)
            case Protection.PARITY:
                return parity_encode_int(data, self.width)
            case Protection.SECDED:
                return secded_encode_int(data, self.width)

    def decode_int(self, word: int) -> Decoded:
        """Reference: what a read of stored ``word`` returns on ``rdata``/``corrected``/``error``."""
        data = word & ((1 << self.width) - 1)
        match self.protection:
            case Protection.NONE:
                return Decoded(data, False, False)
            case Protection.PARITY:
                return Decoded(data, False, parity_check_int(word))
            case Protection.SECDED:
                return secded_decode_int(word, self.width)


class Sram(wiring.Component):
    """Single-port synchronous RAM of ``depth`` words of ``width`` bits.

    Timing: a write (``we``) takes effect at the clock edge. A read (``re``) presents ``rdata`` with ``rvalid``
    high :attr:`read_latency` (1) cycle later; ``rdata`` then holds until the next read. With ``we`` and ``re``
    in the same cycle the read returns the old contents (read-first). ``corrected`` and ``error`` describe the
    word on ``rdata`` and are only high while ``rvalid`` is high, so each is a one-cycle pulse per read.

    Parameters
    ----------
    depth, width : int
        Geometry (both >= 1).
    protection : Protection
        ``NONE``, ``PARITY`` or ``SECDED`` (see the module docstring for the stored layout).

    Members
    -------
    addr : ``In(range(depth))``
    wdata : ``In(width)``
    we, re : ``In(1)``
    rdata : ``Out(width)``
    rvalid : ``Out(1)``
    error : ``Out(1)``
        Parity mismatch, or SECDED uncorrectable error.
    corrected : ``Out(1)``
        SECDED corrected a single flipped bit (``rdata`` is the corrected data).

    Attributes
    ----------
    config : SramConfig
    storage : :class:`~amaranth.hdl.MemoryData`
        The stored words (``config.stored_width`` bits each), the fault-injection target.
    """

    read_latency = 1

    def __init__(self, *, depth: int, width: int, protection: Protection = Protection.NONE):
        self._config = SramConfig(depth=depth, width=width, protection=protection)
        self.storage = MemoryData(shape=self._config.stored_width, depth=depth, init=[])
        super().__init__({
            "addr": In(range(depth)),
            "wdata": In(width),
            "we": In(1),
            "re": In(1),
            "rdata": Out(width),
            "rvalid": Out(1),
            "error": Out(1),
            "corrected": Out(1),
        })

    @property
    def config(self) -> SramConfig:
        return self._config

    def elaborate(self, platform):
        cfg = self._config
        m = Module()
        m.submodules.storage = memory = Memory(data=self.storage)
        w_port = memory.write_port()
        # An asynchronous read port plus an explicit register, not a synchronous read port: the register is then a
        # named flip-flop (a fault site) in the netlist; synthesis merges it back into the block RAM (memory_dff).
        r_port = memory.read_port(domain="comb")
        read_word = Signal(len(r_port.data), name="read_word")
        with m.If(self.re):
            m.d.sync += read_word.eq(r_port.data)

        match cfg.protection:
            case Protection.NONE:
                encoded = self.wdata
                decoded = Decoded(read_word, Const(0), Const(0))
            case Protection.PARITY:
                encoded = parity_encode(self.wdata)
                decoded = Decoded(read_word[:cfg.width], Const(0), parity_check(read_word))
            case Protection.SECDED:
                encoded = secded_encode(self.wdata)
                decoded = secded_decode(read_word, cfg.width)

        m.d.comb += [
            w_port.addr.eq(self.addr),
            w_port.en.eq(self.we),
            w_port.data.eq(encoded),
            r_port.addr.eq(self.addr),
            self.rdata.eq(decoded.data),
            self.corrected.eq(self.rvalid & decoded.corrected),
            self.error.eq(self.rvalid & decoded.error),
        ]
        m.d.sync += self.rvalid.eq(self.re)
        return m
