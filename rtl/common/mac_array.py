"""An output-stationary int8 systolic MAC array: the reference design of the simulation layer.

Activations enter each row from the west and move east one PE per cycle; weights enter each column from the north
and move south. Every PE keeps an accumulator: ``acc <= a*w`` when ``clear`` else ``acc + a*w`` (only while ``en``).
A registered readout presents the accumulators of row ``rsel`` one cycle later on ``out`` (column c at bits
``[c*acc_width, (c+1)*acc_width)``).

Protection (``MacArrayConfig.protection``, :mod:`rtl.common.protect`): a plan over the blocks ``pe_<r>_<c>`` (and
``top``, the readout register, for ``hardened`` only) wraps each planned PE where it is instantiated; a protected array
has the ports ``sm_error`` and ``sm_corrected`` (the OR of the wrappers' flags). ``{"*": "lockstep"}`` builds the whole
array twice in dual-core lockstep (:func:`make_mac_array`).

Timing: a value applied to ``a_in[r]`` reaches PE (r, c) after ``c`` enabled cycles (``w_in[c]`` reaches row r after
``r``), so feeding skewed operands computes a matrix product in ``k + rows + cols - 2`` cycles.
"""
from dataclasses import dataclass

from amaranth import Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.common.protect import (
    LOGIC_OPTIONS,
    Option,
    has_error_ports,
    lockstep,
    normalise_plan,
    protect_submodules,
)

#: The protection plan key of the whole design (``lockstep``).
WHOLE_DESIGN = "*"


@dataclass(frozen=True)
class MacArrayConfig:
    rows: int = 8
    cols: int = 8
    acc_width: int = 32
    #: Protection plan: sorted (block, option) pairs (a mapping is accepted and normalised); empty: unprotected.
    protection: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "protection", normalise_plan(self.protection))
        self._check_protection()
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= 32:
                raise ValueError(f"{name} must be an integer in 1..32, not {value!r}")
        if not isinstance(self.acc_width, int) or not 16 <= self.acc_width <= 48:
            raise ValueError(f"acc_width must be an integer in 16..48, not {self.acc_width!r}")

    def _check_protection(self):
        plan = dict(self.protection)
        pes = {f"pe_{r}_{c}" for r in range(self.rows) for c in range(self.cols)}
        for block, option in plan.items():
            option = Option(option)
            if block == WHOLE_DESIGN:
                if option is not Option.LOCKSTEP or len(plan) > 1:
                    raise ValueError(f"{WHOLE_DESIGN!r} takes only 'lockstep', alone in the plan")
            elif option not in LOGIC_OPTIONS:
                raise ValueError(f"block {block}: option {option.value!r} does not apply to the MAC array")
            elif block not in pes and not (block == "top" and option is Option.HARDENED):
                raise ValueError(f"no protectable block {block!r} in a {self.rows}x{self.cols} array")

    @property
    def protected(self) -> bool:
        """The array has the ports ``sm_error`` / ``sm_corrected`` (some PE is wrapped, or lockstep)."""
        return has_error_ports(self.protection)


class MacPE(wiring.Component):
    """One processing element: forwards a east and w south, accumulates a*w."""

    def __init__(self, acc_width: int):
        self.acc_width = acc_width
        super().__init__({
            "a_in": In(signed(8)), "w_in": In(signed(8)), "en": In(1), "clear": In(1),
            "a_out": Out(signed(8)), "w_out": Out(signed(8)), "acc": Out(signed(acc_width)),
        })

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            m.d.sync += [self.a_out.eq(self.a_in), self.w_out.eq(self.w_in)]
            product = self.a_in * self.w_in
            with m.If(self.clear):
                m.d.sync += self.acc.eq(product)
            with m.Else():
                m.d.sync += self.acc.eq(self.acc + product)
        return m


class MacArray(wiring.Component):
    """``rows`` x ``cols`` grid of :class:`MacPE` with a registered row readout (see module docstring)."""

    def __init__(self, config: MacArrayConfig):
        self.config = config
        if dict(config.protection).get(WHOLE_DESIGN):
            raise ValueError("a lockstep MAC array is built by make_mac_array")
        errors = {"sm_error": Out(1), "sm_corrected": Out(1)} if config.protected else {}
        super().__init__({
            "a_in": In(signed(8)).array(config.rows),
            "w_in": In(signed(8)).array(config.cols),
            "en": In(1),
            "clear": In(1),
            "rsel": In(range(config.rows)),
            "out": Out(config.cols * config.acc_width),
            **errors,
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        pes = [[MacPE(cfg.acc_width) for _ in range(cfg.cols)] for _ in range(cfg.rows)]
        for r in range(cfg.rows):
            for c in range(cfg.cols):
                pe = pes[r][c]
                m.submodules[f"pe_{r}_{c}"] = pe
                m.d.comb += [
                    pe.en.eq(self.en),
                    pe.clear.eq(self.clear),
                    pe.a_in.eq(self.a_in[r] if c == 0 else pes[r][c - 1].a_out),
                    pe.w_in.eq(self.w_in[c] if r == 0 else pes[r - 1][c].w_out),
                ]
        readout = Signal(cfg.cols * cfg.acc_width)
        with m.Switch(self.rsel):
            for r in range(cfg.rows):
                with m.Case(r):
                    m.d.sync += readout.eq(Cat(*(pes[r][c].acc for c in range(cfg.cols))))
        m.d.comb += self.out.eq(readout)
        if cfg.protected:
            error, corrected = protect_submodules(m, dict(cfg.protection))
            m.d.comb += [self.sm_error.eq(error), self.sm_corrected.eq(corrected)]
        return m


def make_mac_array(config: MacArrayConfig):
    """The design top: :class:`MacArray`, or for the plan ``{"*": "lockstep"}`` two unprotected arrays in
    lockstep (:func:`rtl.common.protect.lockstep`: the same ports plus ``sm_error`` / ``sm_corrected``)."""
    if dict(config.protection).get(WHOLE_DESIGN):
        return lockstep(MacArray(MacArrayConfig(config.rows, config.cols, config.acc_width)))
    return MacArray(config)
