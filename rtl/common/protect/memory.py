"""Parity and SECDED on a design's memories: an Amaranth-level transform of :class:`amaranth.lib.memory.Memory`.

:class:`ProtectedMemory` takes a Memory whose ports the design has already requested and connected (its read and
write ports' signals are the interface) and stands in for it: it stores every word with check bits in a wider
memory of its own, encodes on write, checks (SECDED: corrects) on read, and raises ``sm_error`` / ``sm_corrected``.

* **Code per write granule.** A byte-strobed write port writes whole granules, so each granule gets its own code
  (:func:`rtl.common.sram.parity_encode` / :func:`~rtl.common.sram.secded_encode`) and a partial write never needs
  a read-modify-write: parity adds one bit per granule, SECDED ``r + 1`` (a byte: 5).
* **Checked on every read.** The read ports are combinational (the only kind rampart's netlists have): they read
  the addressed word every cycle, so a bad codeword at an address a read port points at raises the flag in that
  cycle, whether or not the design uses the data (a checker without a read enable). Addresses past ``depth`` are
  not checked. SECDED returns the corrected data (correct on read; the stored word is not written back).
* **Background scrubber** (``scrub=True``): one more read port walks every word, one per cycle, and checks it the
  same way, so a flip in a word the design never reads again is found within ``depth`` cycles instead of staying
  latent (the latent multiple-point faults of ISO 26262-5 that LFM counts). It only reads: SECDED flags a single
  flip as corrected, parity any odd flip as an error; nothing is written back.

Flags: ``sm_error`` (parity error; SECDED double error) is a detection, ``sm_corrected`` (SECDED single error) a
correction, both combinational. The memory's initial contents must be zero (the all-zero word is a codeword of both
codes, so a fault-free run never raises a flag).
"""
import math

from amaranth import Cat, Const, Elaboratable, Module, Mux, Signal, Value
from amaranth.hdl import Shape
from amaranth.lib.memory import Memory

from rtl.common.sram import Protection, parity_check, parity_encode, secded_check_width, secded_decode, secded_encode

__all__ = ["ProtectedMemory", "granule_width", "check_bits"]


def check_bits(protection: Protection, granule: int) -> int:
    """Check bits one ``granule``-bit granule stores under ``protection``."""
    match protection:
        case Protection.PARITY:
            return 1
        case Protection.SECDED:
            return secded_check_width(granule) + 1
        case _:
            return 0


def granule_width(memory: Memory) -> int:
    """The code granule of ``memory``: the greatest common divisor of its write ports' granularities (a port
    without one writes the whole word)."""
    width = Shape.cast(memory.shape).width
    return math.gcd(width, *(p.signature.granularity or width for p in memory.write_ports))


class ProtectedMemory(Elaboratable):
    """``memory`` (ports requested, not elaborated) stored under ``protection``; see the module docstring.

    Attributes
    ----------
    sm_error, sm_corrected : Signal(1)   a detected (uncorrectable) / a corrected error this cycle
    stored : Memory                      the wider memory that holds the codewords (instance ``cells``)
    """

    def __init__(self, memory: Memory, protection: Protection | str, *, scrub: bool = True):
        self._memory = memory
        self._protection = Protection(protection)
        if self._protection is Protection.NONE:
            raise ValueError("ProtectedMemory needs parity or secded")
        for port in memory.read_ports:
            if port.domain != "comb":
                raise ValueError("ProtectedMemory supports combinational read ports only")
        if any(_as_int(v) for v in memory.init):
            raise ValueError("ProtectedMemory needs a memory initialised to zero")
        self._scrub = scrub
        width = Shape.cast(memory.shape).width
        self.granule = granule_width(memory)
        self.granules = width // self.granule
        self.code_width = self.granule + check_bits(self._protection, self.granule)
        self.stored = Memory(shape=self.granules * self.code_width, depth=memory.depth, init=[])
        self.sm_error = Signal(name="sm_error")
        self.sm_corrected = Signal(name="sm_corrected")
        memory._MustUse__silence = True    # stood in for: never elaborated

    @property
    def protection(self) -> Protection:
        return self._protection

    def _encode(self, data: Value) -> Value:
        enc = parity_encode if self._protection is Protection.PARITY else secded_encode
        g = self.granule
        return Cat(*(enc(data[i * g:(i + 1) * g]) for i in range(self.granules)))

    def _decode(self, word: Value) -> tuple[Value, Value, Value]:
        """(data, error, corrected) of a stored word."""
        g, c = self.granule, self.code_width
        parts = [word[i * c:(i + 1) * c] for i in range(self.granules)]
        if self._protection is Protection.PARITY:
            return (Cat(*(p[:g] for p in parts)), _any(parity_check(p) for p in parts), Value.cast(0))
        decoded = [secded_decode(p, g) for p in parts]
        return (Cat(*(d.data for d in decoded)), _any(d.error for d in decoded), _any(d.corrected for d in decoded))

    def elaborate(self, platform):
        m = Module()
        m.submodules.cells = self.stored
        depth = self._memory.depth
        for port in self._memory.write_ports:
            own = port.signature.granularity or Shape.cast(self._memory.shape).width
            inner = self.stored.write_port(domain=port.domain,
                                           granularity=self.code_width if self.granules > 1 else None)
            per = own // self.granule    # code granules per enable bit of the design's port
            m.d.comb += [inner.addr.eq(port.addr), inner.data.eq(self._encode(Value.cast(port.data))),
                         inner.en.eq(Cat(*(port.en[i // per] for i in range(self.granules))))]
        errors, corrections = [], []

        def check(addr):
            inner = self.stored.read_port(domain="comb")
            m.d.comb += inner.addr.eq(addr)
            data, error, corrected = self._decode(inner.data)
            valid = (addr < depth) if depth < 2 ** len(addr) else Value.cast(1)
            errors.append(error & valid)
            corrections.append(corrected & valid)
            return data

        for port in self._memory.read_ports:
            m.d.comb += Value.cast(port.data).eq(check(port.addr))
        if self._scrub:
            scrub = Signal(range(depth), name="scrub_addr")
            m.d.sync += scrub.eq(Mux(scrub == depth - 1, 0, scrub + 1))
            check(scrub)
        m.d.comb += [self.sm_error.eq(_any(errors)), self.sm_corrected.eq(_any(corrections))]
        return m


def _as_int(value) -> int:
    if value is None:     # (an element of a shaped memory left at its shape's default: zero)
        return 0
    return value if isinstance(value, int) else Const.cast(Value.cast(value)).value


def _any(values) -> Value:
    values = list(values)
    out = Value.cast(0)
    for v in values:
        out = out | v
    return out
