"""FPGA boards rampart can synthesise for, and the harness that puts any registered design on one of them.

A bare accelerator has hundreds of ports and no board pins for them; built as-is, the synthesiser would either run
out of I/O or, with the ports left floating, optimise the whole design away. :class:`SynthHarness` keeps it honest:

* every design input is driven from one wide LFSR clocked by the board clock (so no input is constant);
* every design output bit is XOR-reduced, through a registered tree of ``XOR_FAN_IN``-input stages (two LUT4
  levels per stage, so the tree never becomes the critical path), into a register that drives ``led`` 0 (so no
  output is unobserved);
* the design's ``sync`` reset is the board's default reset when the platform has one, otherwise ``button`` 0 after a
  two-flip-flop synchroniser, otherwise power-on reset only.

What the harness adds to the utilisation is stated by :attr:`SynthHarness.overhead_ff` (LFSR, XOR stages, LED
register and button synchroniser); the XOR tree also adds about one LUT4 per three output bits.

Board adapters
--------------
A design that has a natural board interface (e.g. a UART on the board's serial pins) can pass an *adapter*: a
callable ``adapter(m, platform, design) -> iterable of port paths``. It is called inside
:meth:`SynthHarness.elaborate` after the design was added as ``m.submodules.design``; it may request platform
resources and add logic to ``m``, and returns the signature paths (as yielded by
``design.signature.flatten(design)``, e.g. ``("uart", "rx")`` or ``("a_in", 0)``) of the ports it connected itself.
The harness LFSR-drives / XOR-observes only the remaining ports. The harness uses ``led`` 0 and ``button`` 0, so an
adapter must use other resources.

A design's default adapter is named by its descriptor's ``board_adapter`` (``"module:function"``, imported only
when needed); :func:`get_adapter` looks it up and ``rampart synth`` uses it unless the caller passes its own.
"""
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from amaranth import Cat, Module, Signal, Value
from amaranth.build import Platform, ResourceError
from amaranth.hdl import Elaboratable, ResetInserter
from amaranth.lib import io, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth_boards.icebreaker import ICEBreakerPlatform
from amaranth_boards.ulx3s import ULX3S_85F_Platform

from base import RampartError

#: ``adapter(m, platform, design)`` -> the signature paths of the design ports it connected (see module docstring).
BoardAdapter = Callable[[Module, Platform, wiring.Component], Iterable[tuple]]


@dataclass(frozen=True)
class Board:
    """One supported board: its amaranth-boards platform and what its toolchain produces."""
    name: str
    summary: str
    platform_type: type[Platform]
    bitstream_suffix: str   # the file the platform's build writes: "top" + this
    family: str             # nextpnr architecture: "ecp5" or "ice40"

    def platform(self) -> Platform:
        """A fresh platform instance (amaranth platforms can prepare only one design each)."""
        return self.platform_type()

    @property
    def clock_hz(self) -> float:
        """Frequency of the board's default clock, which clocks the design and the harness."""
        return self.platform_type().default_clk_frequency


BOARDS: dict[str, Board] = {
    "ulx3s-85f": Board("ulx3s-85f", "Radiona ULX3S, Lattice ECP5 LFE5U-85F, 25 MHz clock",
                       ULX3S_85F_Platform, ".bit", "ecp5"),
    "icebreaker": Board("icebreaker", "1BitSquared iCEBreaker, Lattice iCE40UP5K, 12 MHz clock",
                        ICEBreakerPlatform, ".bin", "ice40"),
}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise RampartError(f"unknown board {name!r} (known: {', '.join(BOARDS)})") from None


def get_adapter(design_name: str) -> BoardAdapter | None:
    """The default board adapter of ``design_name`` (its descriptor's ``board_adapter``), or None."""
    from rtl.designs import get_design, resolve

    ref = get_design(design_name).board_adapter
    return None if ref is None else resolve(ref)


# Fibonacci LFSR feedback taps (1-based bit positions) of maximal-length polynomials, checked primitive over GF(2).
_LFSR_TAPS = {16: (16, 15, 13, 4), 32: (32, 22, 2, 1), 64: (64, 63, 61, 60)}
XOR_FAN_IN = 16


def lfsr_layout(bits: int) -> tuple[int, tuple[int, ...]]:
    """Width and taps of the harness LFSR for ``bits`` input bits.

    The register is ``max(bits, 16)`` wide; its feedback comes from a maximal-length core of 16, 32 or 64 bits (the
    largest that fits) and the bits above the core extend it as a shift register, so every bit carries the same
    m-sequence at a different delay and no two bits are equal.
    """
    width = max(bits, 16)
    core = max(n for n in _LFSR_TAPS if n <= width)
    return width, _LFSR_TAPS[core]


def xor_stage_widths(bits: int) -> list[int]:
    """Number of registers in each stage of the XOR tree that reduces ``bits`` output bits (before the LED)."""
    stages = []
    while bits > XOR_FAN_IN:
        bits = -(-bits // XOR_FAN_IN)
        stages.append(bits)
    return stages


class SynthHarness(Elaboratable):
    """Top level for synthesising ``design`` on a board: LFSR-driven inputs, XOR-reduced outputs on an LED.

    Parameters
    ----------
    design : wiring.Component
        Any component with a ``sync`` domain (e.g. ``get_design(name).make(config)``).
    adapter : BoardAdapter, optional
        Connects some design ports to board resources itself; see the module docstring.

    Attributes
    ----------
    lfsr_width : int
        Width of the input LFSR (``max(input bits, 16)``).
    overhead_ff : int
        Flip-flops the harness adds besides the design (an upper bound when an adapter takes ports over).
    """

    def __init__(self, design: wiring.Component, *, adapter: BoardAdapter | None = None):
        try:
            self._check(design, adapter)
        except (TypeError, RampartError):
            self._MustUse__silence = True   # a harness that failed to construct is not an unused elaboratable
            raise
        self.design = design
        self.adapter = adapter
        ports = list(design.signature.flatten(design))
        in_bits = sum(len(Value.cast(v)) for _, member, v in ports if member.flow == wiring.In)
        out_bits = sum(len(Value.cast(v)) for _, member, v in ports if member.flow == wiring.Out)
        self.lfsr_width, self._taps = lfsr_layout(in_bits)
        # LFSR + XOR stages + LED register + 2-FF button synchroniser.
        self.overhead_ff = self.lfsr_width + sum(xor_stage_widths(out_bits)) + 1 + 2

    @staticmethod
    def _check(design, adapter):
        if not isinstance(design, wiring.Component):
            raise TypeError(f"design must be a wiring.Component, not {design!r}")
        if adapter is not None and not callable(adapter):
            raise TypeError(f"adapter must be callable, not {adapter!r}")
        if adapter is None and not any(member.flow == wiring.Out for _, member, _ in design.signature.flatten(design)):
            raise RampartError(f"{type(design).__name__} has no outputs: synthesis would remove all of it")

    def elaborate(self, platform):
        m = Module()
        design = self.design

        # The design's reset: the platform's default reset drives the whole sync domain anyway
        # (create_missing_domain); otherwise a button, synchronised to the board clock.
        if platform is not None and platform.default_rst is None:
            try:
                button = platform.request("button", 0, dir="-")
            except ResourceError:
                button = None
            if button is not None:
                m.submodules.button = button_buf = io.Buffer("i", button)
                design_rst = Signal()
                m.submodules.button_sync = FFSynchronizer(button_buf.i, design_rst)
                design = ResetInserter(design_rst)(design)
        m.submodules.design = design

        handled = set()
        if self.adapter is not None:
            handled = {tuple(path) for path in self.adapter(m, platform, self.design)}

        inputs, outputs = [], []
        for path, member, value in self.design.signature.flatten(self.design):
            if tuple(path) in handled:
                continue
            (inputs if member.flow == wiring.In else outputs).append(Value.cast(value))

        # Inputs from the LFSR (Fibonacci form: shift up, feedback into bit 0).
        lfsr = Signal(self.lfsr_width, init=1)
        feedback = Cat(*(lfsr[tap - 1] for tap in self._taps)).xor()
        m.d.sync += lfsr.eq(Cat(feedback, lfsr[:-1]))
        offset = 0
        for value in inputs:
            m.d.comb += value.eq(lfsr[offset:offset + len(value)])
            offset += len(value)

        # Outputs through a registered XOR tree into the LED register.
        bits = Cat(*outputs)
        level = 0
        while len(bits) > XOR_FAN_IN:
            stage = Signal(-(-len(bits) // XOR_FAN_IN), name=f"xor_stage{level}")
            for i in range(len(stage)):
                m.d.sync += stage[i].eq(bits[i * XOR_FAN_IN:(i + 1) * XOR_FAN_IN].xor())
            bits, level = stage, level + 1
        observed = Signal()
        m.d.sync += observed.eq(bits.xor() if len(bits) else 0)
        if platform is not None:
            m.submodules.led = led_buf = io.Buffer("o", platform.request("led", 0, dir="-"))
            m.d.comb += led_buf.o.eq(observed)
        return m
