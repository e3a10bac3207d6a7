"""What the compute unit's sub-units share about a kernel op: error causes, limits, and the op parameters derived
from a register snapshot (SPEC.md sections 4-5). See :mod:`rtl.npu.compute` for the unit they make up."""
from dataclasses import dataclass

from amaranth import Array, Cat, Mux, Signal, Value
from amaranth.lib import enum

from rtl.npu.controller import CMD0

__all__ = ["ComputeError", "MAX_CHANNELS", "WEIGHT_BUFFER_BYTES", "IUB", "OpParams", "derive_op", "region_base"]


class ComputeError(enum.Enum, shape=3):
    """Why the last op failed (``error_code``, held until the engine starts the next op)."""
    NONE = 0
    UNSUPPORTED = 1     # the register snapshot asks for something this unit does not implement
    MEMORY = 2          # a read came back with ``err``
    DECODE = 3          # the weight decoder reported a malformed stream
    WEIGHT_COUNT = 4    # the decoded stream is not as long as the op's weight-order loop nest


#: OFM channels whose records one bank of the output unit holds (an op with more channels is refused).
MAX_CHANNELS = 256
#: Half the brick RAM in bytes (the RAM is a ring of twice this; an op whose largest OFM block's decoded weights do
#: not fit it is refused).
WEIGHT_BUFFER_BYTES = 32768
IUB = 8   # IFM ublock depth (every U55 config)


@dataclass(frozen=True)
class OpParams:
    """Signals derived from one register snapshot (quasi-static for the op)."""
    regs: Value
    dw: Value       # depthwise, or the identity POOL that runs like a 1x1 depthwise
    pool: Value
    pk: Value
    O: Value
    I: Value
    KH: Value
    KW: Value
    OB: Value
    OH: Value
    OW: Value
    IH: Value
    IW: Value
    sx: Value
    sy: Value
    ne: Value
    ib_step: Value
    n_oub_total: Value
    per_ou: Value
    expected: Value
    expected_bytes: Value
    ublocks: Value
    span: Value
    ifm_fmt: Value
    ofm_fmt: Value


def derive_op(m, regs, opcode, oub: int, ublock_h: int, prefix: str = "") -> OpParams:
    """The op parameters of a register snapshot (SPEC.md sections 4-5), as combinational signals of ``m``."""
    def sig(name, shape=17):
        return Signal(shape, name=f"{prefix}{name}")
    v = {name: sig(name) for name in ("O", "I", "KH", "KW", "OB", "OH", "OW", "IH", "IW")}
    sx, sy, pk, dw, pool = sig("sx", 3), sig("sy", 3), sig("pk", 1), sig("dw", 1), sig("pool", 1)
    ks = regs.KERNEL_STRIDE
    m.d.comb += [
        pool.eq(opcode == CMD0.NPU_OP_POOL),
        dw.eq((opcode == CMD0.NPU_OP_DEPTHWISE) | pool),
        v["O"].eq(regs.OFM_DEPTH_M1 + 1), v["I"].eq(regs.IFM_DEPTH_M1 + 1),
        v["KH"].eq(regs.KERNEL_HEIGHT_M1 + 1), v["KW"].eq(regs.KERNEL_WIDTH_M1 + 1),
        v["OB"].eq(regs.OFM_BLK_DEPTH_M1 + 1), v["OH"].eq(regs.OFM_HEIGHT_M1 + 1), v["OW"].eq(regs.OFM_WIDTH_M1 + 1),
        v["IH"].eq(regs.IFM_HEIGHT0_M1 + 1), v["IW"].eq(regs.IFM_WIDTH0_M1 + 1),
        sx.eq(1 + Cat(ks[0], ks[6])), sy.eq(1 + Cat(ks[1], ks[9])), pk.eq(ks[2] & ~dw),
    ]
    kk = sig("kk", 8)     # kernel elements KH*KW (<= 64)
    ne = sig("ne", 8)     # elements per sub-kernel in the stream (PK: rounded up to 4)
    m.d.comb += [kk.eq(v["KH"][:4] * v["KW"][:4]), ne.eq(Mux(pk | dw, (kk + 3) & ~3, kk))]
    ib_step = sig("ib_step", 6)
    m.d.comb += ib_step.eq(Mux(pk, 16, 32))
    I, O = v["I"], v["O"]
    n_iu_total = sig("n_iu_total", 16)   # bricks per (OFM ublock, kernel element) over the whole IFM depth
    m.d.comb += n_iu_total.eq(Mux(dw, 1, Mux(pk, (I + 7) >> 3, ((I + 31) >> 5) << 2)))
    n_oub_total = sig("n_oub_total", 16)
    m.d.comb += n_oub_total.eq((O + oub - 1) >> (oub.bit_length() - 1))
    per_ou = sig("per_ou", 24)       # bricks per OFM ublock
    m.d.comb += per_ou.eq(ne * n_iu_total)
    expected = sig("expected", 32)   # bricks in the decoded stream
    m.d.comb += expected.eq(n_oub_total * per_ou)
    expected_bytes = sig("expected_bytes", 32)   # weights in the decoded stream (depthwise: OUB per brick)
    m.d.comb += expected_bytes.eq(Mux(dw, expected * oub, expected * oub * IUB))
    ublocks = sig("ublocks", 14)     # line-buffer words per IFM pixel
    m.d.comb += ublocks.eq(Mux(dw, 1, (I + 7) >> 3))
    span = sig("span")               # IFM rows one micro-block row reads
    m.d.comb += span.eq((ublock_h - 1) * sy + v["KH"])
    return OpParams(regs=regs, dw=dw, pool=pool, pk=pk, sx=sx, sy=sy, ne=ne, ib_step=ib_step,
                    n_oub_total=n_oub_total, per_ou=per_ou, expected=expected, expected_bytes=expected_bytes,
                    ublocks=ublocks, span=span, ifm_fmt=regs.IFM_PRECISION[6:8], ofm_fmt=regs.OFM_PRECISION[6:8], **v)


def region_base(basep, region):
    """BASEP selection: the byte address of ``region`` (the compute unit gets the base pointers from the top)."""
    return Array(basep)[region[:3]]
