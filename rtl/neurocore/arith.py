"""Fixed-point building blocks shared by the NeuroCore units (semantics: :mod:`models.snn.params`).

Each helper adds combinational logic to a module and returns a named signal, so the datapaths read like the
golden model's formulas.
"""
from amaranth import Cat, Mux, Signal, signed

from models.snn.params import DECAY_ONE, DECAY_SHIFT, STATE_BITS

__all__ = ["DW_MAX", "clamp", "decay_product", "decay_round", "decay_unsigned", "leaked", "lowest_bit", "saturate",
           "select", "stdp_step"]

S_LO, S_HI = -(1 << (STATE_BITS - 1)), (1 << (STATE_BITS - 1)) - 1
DW_MAX = 255  #: largest weight step of one STDP update, either way


def decay_product(m, x, d, name):
    """``x * (4096 - d)`` for a signed ``x``: the multiplier half of ``decay``."""
    mul = Signal(range(DECAY_ONE + 1), name=f"{name}_m")
    prod = Signal(signed(len(x) + 14), name=f"{name}_p")
    m.d.comb += [mul.eq(DECAY_ONE - d), prod.eq(x * mul)]
    return prod


def decay_round(m, prod, width, name):
    """``prod / 4096`` truncated toward zero, ``width`` bits: the second half of ``decay``."""
    out = Signal(signed(width), name=name)
    m.d.comb += out.eq((prod + Mux(prod[-1], DECAY_ONE - 1, 0)) >> DECAY_SHIFT)
    return out


def decay_unsigned(m, x, d, name):
    """``decay(x, d)`` of an unsigned ``x`` (a trace or an adaptive threshold)."""
    mul = Signal(range(DECAY_ONE + 1), name=f"{name}_m")
    out = Signal(len(x), name=name)
    m.d.comb += [mul.eq(DECAY_ONE - d), out.eq((x * mul) >> DECAY_SHIFT)]
    return out


def stdp_step(m, gain, trace, shift, name):
    """``clamp((gain * trace) >>> shift, -255, 255)`` for a signed ``trace`` (floor shift)."""
    prod = Signal(signed(len(gain) + len(trace) + 1), name=f"{name}_p")
    out = Signal(signed(9), name=name)
    m.d.comb += [prod.eq((gain * trace) >> shift), out.eq(clamp(prod, -DW_MAX, DW_MAX))]
    return out


def leaked(m, w, k, name):
    """``w - ceil(w / 2^k)`` (``w`` when ``k`` is 0): a weight after the weight-dependent leak."""
    out = Signal(signed(9), name=name)
    m.d.comb += out.eq(Mux(k == 0, w, w + ((-w) >> k)))
    return out


def saturate(m, x, name):
    """(sat24(x), overflowed)."""
    out = Signal(signed(STATE_BITS), name=name)
    ovf = Signal(name=f"{name}_ovf")
    m.d.comb += [
        ovf.eq((x > S_HI) | (x < S_LO)),
        out.eq(Mux(x > S_HI, S_HI, Mux(x < S_LO, S_LO, x))),
    ]
    return out, ovf


def clamp(x, lo, hi):
    return Mux(x < lo, lo, Mux(x > hi, hi, x))


def select(m, values, index, name):
    """``values[index]`` as a named signal (a plain value when there is only one)."""
    if len(values) == 1:
        return values[0]
    out = Signal(len(values[0]), name=name)
    with m.Switch(index):
        for i, v in enumerate(values):
            with m.Case(i):
                m.d.comb += out.eq(v)
    return out


def lowest_bit(m, bits, name):
    """(index of the lowest set bit of ``bits``, that bit alone)."""
    low = Signal(len(bits), name=f"{name}_onehot")
    idx = Signal(max(1, (len(bits) - 1).bit_length()), name=name)
    m.d.comb += low.eq(bits & (~bits + 1))
    m.d.comb += idx.eq(Cat(*(Cat(*(low[i] for i in range(len(bits)) if i >> t & 1)).any()
                             for t in range(len(idx)))))
    return idx, low
