"""NPU vector unit: executes the NPU_OP_POOL kicks the MAC datapath does not (MAX, AVERAGE, REDUCE_SUM with any
kernel, stride and padding; REDUCE_SUM also across the IFM depth) and NPU_OP_ELEMENTWISE (ADD, SUB, MUL, MIN, MAX,
ABS, LRELU, CLZ, SHR, SHL; IFM2 as a tensor, broadcast along H / W / C, or the IFM2_SCALAR; operand order swap), on
S8/U8/S16/U16/S32 feature maps in NHWC or NHCWB16, with the activation table lookups (ACTIVATION TABLE_0..7: tables
the stream DMAs into the SHRAM's last 2 KiB; 8-bit entries for an 8-bit OFM, 32-bit entries for a 32-bit OFM,
interpolated base/slope pairs for a 16-bit OFM) and the int16 TANH / SIGMOID functions (:mod:`rtl.npu.sigmoid_tanh`),
straight from and to external memory. IFM and OFM may be split
into tiles 0-3 (NPU_SET_*_BASE0-3 / HEIGHT0/1 / WIDTH0, as Vela writes them across the end of a rolling buffer in a
cascade) and are addressed through :func:`rtl.npu.ifm_stager.fm_tile` as on the MAC path; a pool's IFM extent is what
its windows read (``(OFM - 1) * stride + kernel - padding``), at least tile 0. A POOL may walk its IFM upscaled x2 by
NEAREST (IFM_UPSCALE 1, e.g. Vela's RESIZE_BILINEAR: a 2x2 AVERAGE on it), as the MAC path does. IFM2 is always one tile
(its BASE1-3 are not stored: Vela never cascades an elementwise op whose IFM2 is a feature map). Vela's SOFTMAX
decomposition (int8 and int16) runs on it.

Arithmetic: :mod:`models.npu.vector_ref` (the golden model) states it. Pooling, per OFM element: the taps of its
kernel window are read (padding taps are skipped), reduced (max or sum of ``ifm - IFM_ZERO_POINT``), divided by the
valid tap count for AVERAGE with padding (``pooling_reciprocal``: a table for up to 64 taps). Elementwise: the two
operands (``ifm - zp``) are combined (ADD / SUB after rescaling one operand by OPA_SCALE, see
:class:`ElementwiseAlu`). Then both: scaled by ``OFM_SCALE`` (global scale mode; per-channel mode: 1, shift 0) with
the round mode of ``OFM_PRECISION[15:14]`` (32-bit MUL: the shift only), passed through the TANH / SIGMOID function
if ACTIVATION selects one, offset by the OFM zero point, clamped to the OFM type (or the ACTIVATION clip range's),
looked up in the table if there is one, and clamped to ACTIVATION_MIN / MAX (not for a 32-bit OFM, which is saturated
to int32).

Sub-units (functional blocks for fault injection, ``compute.vector.*``):

* :class:`PoolWalker` (``walker``): walks OFM rows, columns and channels and, per element, its taps (the kernel
  window; elementwise: the IFM element and the IFM2 element); issues one external read per tap that needs one (the
  element's word, in its IFM tile) and queues each tap's description (byte lane, valid, last tap of the element,
  IFM2) in its ``pending`` FIFO. It starts an element only while the result queue has a credit, so the reduction
  below never has to stall a read response for long.
* :class:`PoolReducer` (``reducer``): pops the queue in order, takes each tap's element from its read response (or
  the scalar), and reduces the element (max / sum and valid-tap count; elementwise: the operand pair); finished
  elements go into the ``results`` FIFO.
* :class:`ElementwiseAlu` (``alu``): the elementwise operation (one registered stage).
* :class:`VectorOutputStage` (``out``): reciprocal divide, OFM scale and rounding, zero point, clamp, table lookup
  (one registered stage; the SHRAM table port is asynchronous).
* :class:`ByteWriter` (``writer``): the OFM element's address (its own row/column/channel counters, same order;
  in its OFM tile)
  and a strobed write of its one or two bytes.

The unit owns one memory port (``bus``); a pending write goes before the walker's next read. Ops run one at a time:
``kick`` is taken in IDLE, CHECK refuses what the unit does not implement (``error`` with
``ComputeError.UNSUPPORTED``, no memory traffic; listed at ``VectorUnit._unsupported``), RUN ends when every element
is written; a read answered with ``err`` ends the op with ``ComputeError.MEMORY``. Throughput: one tap per cycle when
memory keeps up (one 8-byte read per tap), one write per OFM element.
"""
from amaranth import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.common.fifo import MemoryFIFO
from rtl.npu.controller import CMD0, KernelOp, Registers
from rtl.npu.dma import NUM_REGIONS
from rtl.npu.extmem import ADDR_WIDTH, WORD_BITS, MemPortSignature
from rtl.npu.ifm_stager import fm_tile
from rtl.npu.kernel_op import ComputeError, identity_scale, region_base
from rtl.npu.sigmoid_tanh import ACT_SIGMOID, ACT_TANH, SigmoidTanhUnit

__all__ = ["POOL_MAX", "POOL_AVERAGE", "POOL_REDUCE_SUM", "MAX_DIVIDE_TAPS", "is_vector_op", "PoolWalker",
           "PoolReducer", "VectorOutputStage", "ByteWriter", "VectorUnit"]

POOL_MAX, POOL_AVERAGE, POOL_REDUCE_SUM = 0, 1, 2
MAX_DIVIDE_TAPS = 64     # AVERAGE with padding: kernels of up to 64 taps (Vela: 8x8 at most with padding)
LUT_BYTES = 2048         # the SHRAM's last 2 KiB hold the lookup tables (Vela: shram_lut_address, 256-byte slots)
RESULT_DEPTH = 8         # result FIFO entries = elements the walker may have in flight
PENDING_DEPTH = 16       # taps queued between the walker and the reducer (reads in flight at most)
_ACC_BITS = 48          # reductions (REDUCE_SUM of 32-bit elements over up to 2**15 taps)
_WIDE = 72              # elementwise results (32-bit MUL: 68 bits; SHL of a 32-bit operand by 32: 66 bits)
_OPND = 34              # an operand: a 32-bit element minus a 16-bit zero point


def elem_addr(base, y, x, c, stride_y, stride_x, stride_c, nhcwb16, esz):
    """Byte address of element ``(y, x, c)`` of ``2**esz`` bytes (``models.npu.vector_ref._addr``): NHWC
    ``base + y*stride_y + x*stride_x + (c << esz)``, NHCWB16 ``base + y*stride_y + (x << (4 + esz)) + (c >> 4) *
    stride_c + ((c % 16) << esz)``."""
    nhwc = base + y * stride_y + x * stride_x + (c << esz)
    nhcwb = base + y * stride_y + (x << (esz + 4)) + (c >> 4) * stride_c + (c[:4] << esz)
    return Mux(nhcwb16, nhcwb, nhwc)[:ADDR_WIDTH]


def elem_value(word, lane, esz, signed_):
    """The ``2**esz``-byte element at byte ``lane`` of a 64-bit word, sign-extended when ``signed_`` (8, 16 or 32
    bit)."""
    shifted = word >> (lane * 8)
    return Mux(esz == 0, Mux(signed_, shifted[:8].as_signed(), shifted[:8]),
               Mux(esz == 1, Mux(signed_, shifted[:16].as_signed(), shifted[:16]),
                   Mux(signed_, shifted[:32].as_signed(), shifted[:32])))


def pooling_reciprocal(n: int) -> tuple[int, int]:
    """(scale, shift) of 1/n, as ``models.npu.vector_ref.pooling_reciprocal`` (Vela's quantise_pooling_scale)."""
    k = (n - 1).bit_length()
    return ((1 << (31 + k)) + (1 << k)) // n, 31 + k


def is_identity_pool(m, op) -> Value:
    """The POOL form the MAC datapath runs (``rtl.npu.op_loader``): AVERAGE 1x1, stride 1, no padding, int8, global
    unit scale (:func:`~rtl.npu.kernel_op.identity_scale`), round TFL, no activation function."""
    r = op.regs
    ks = r.KERNEL_STRIDE
    ident = Signal(name="identity_pool")
    m.d.comb += ident.eq(
        (op.opcode == CMD0.NPU_OP_POOL) & (op.param == POOL_AVERAGE) & (r.KERNEL_HEIGHT_M1 == 0)
        & (r.KERNEL_WIDTH_M1 == 0) & ~ks[0] & ~ks[1] & ~ks[6] & ~ks[9]
        & (r.IFM_PAD_TOP == 0) & (r.IFM_PAD_LEFT == 0) & (r.IFM_PAD_BOTTOM == 0) & (r.IFM_PAD_RIGHT == 0)
        & r.OFM_PRECISION[8] & identity_scale(m, r) & (r.OFM_PRECISION[14:16] == 0)
        & (r.IFM_PRECISION[0:4] == 1) & (r.OFM_PRECISION[0:3] == 1) & (r.ACTIVATION[0:12] == 0))
    return ident


def is_vector_op(m, op) -> Value:
    """Whether kick payload ``op`` (a :class:`KernelOp` view) goes to the vector unit: every POOL but the identity
    form, and every ELEMENTWISE."""
    vec = Signal(name="vector_op")
    m.d.comb += vec.eq(((op.opcode == CMD0.NPU_OP_POOL) & ~is_identity_pool(m, op))
                       | (op.opcode == CMD0.NPU_OP_ELEMENTWISE))
    return vec


def as_typed(reg, signed_):
    """A 16-bit register read as the type it belongs to: signed for a signed feature map, else unsigned."""
    return Mux(signed_, reg.as_signed(), reg)


def _tile_ports() -> dict:
    """A feature map's tiles 1-3 (:func:`rtl.npu.ifm_stager.fm_tile`; ``base`` is tile 0's)."""
    return {"tile_base": In(ADDR_WIDTH).array(3), "tile_h0": In(17), "tile_h1": In(17), "tile_w0": In(17)}


def _connect_tiles(unit, basep, regs, fm: str) -> list:
    """Drive ``unit``'s tile ports from the ``fm`` (``IFM`` / ``OFM``) BASE1-3, HEIGHT0/1 and WIDTH0 registers."""
    region = region_base(basep, getattr(regs, f"{fm}_REGION"))
    return [*(unit.tile_base[i].eq(region + getattr(regs, f"{fm}_BASE{i + 1}")) for i in range(3)),
            unit.tile_h0.eq(getattr(regs, f"{fm}_HEIGHT0_M1") + 1),
            unit.tile_h1.eq(getattr(regs, f"{fm}_HEIGHT1_M1") + 1),
            unit.tile_w0.eq(getattr(regs, f"{fm}_WIDTH0_M1") + 1)]


class PoolGeometry(data.Struct):
    """The quasi-static op parameters the walker and writer share (decoded once per op)."""
    oh: 17
    ow: 17
    oc: 17
    kh: 17
    kw: 17
    sy: 3
    sx: 3
    pad_top: 8
    pad_left: 8
    ih: 17          # IFM extent (before upscaling)
    iw: 17
    up: 1           # IFM_UPSCALE NEAREST: the window walks the IFM upscaled x2 (each pixel repeated 2x2)
    kc: 17          # channel taps per window position: the IFM depth for REDUCE_SUM across depth, else 1
    depth_sum: 1    # REDUCE_SUM across depth: a tap's channel is its channel tap, not the OFM channel


class _Tap(data.Struct):
    lane: 3      # byte lane of the tap in its word
    valid: 1     # a read was issued for it (else a padding tap, or the IFM2 scalar)
    last: 1      # last tap of the element
    second: 1    # elementwise: the IFM2 operand


class PoolWalker(wiring.Component):
    """See the module docstring.

    Members
    -------
    start : ``In(1)``; geo : ``In(PoolGeometry)``; base, stride_y, stride_x, stride_c : ``In(32)``; nhcwb16 : ``In(1)``
    tile_base : ``In(32).array(3)``; tile_h0, tile_h1, tile_w0 : ``In(17)``   tiles 1-3 (``base``: tile 0's)
    ew : ``In(1)``   elementwise: tap 0 of an element is the IFM at the element, tap 1 (``geo.kw`` = 2) the IFM2 at
    ``base2`` / ``stride2_*`` / ``nhcwb16_2`` with its broadcast axes (``bcast`` bits 0..2 = H, W, C) zeroed, or no
    read when ``scalar``
    esz, esz2 : ``In(2)``   log2 of the IFM / IFM2 element bytes
    req : ``Out(stream.Signature(32))``  read request (byte address); credit_return : ``In(1)``
    taps : ``Out(stream.Signature(_Tap))``; busy : ``Out(1)``
    """

    def __init__(self):
        super().__init__({
            "start": In(1), "geo": In(PoolGeometry), "base": In(ADDR_WIDTH), "stride_y": In(ADDR_WIDTH),
            "stride_x": In(ADDR_WIDTH), "stride_c": In(ADDR_WIDTH), "nhcwb16": In(1), **_tile_ports(),
            "ew": In(1), "base2": In(ADDR_WIDTH), "stride2_y": In(ADDR_WIDTH), "stride2_x": In(ADDR_WIDTH),
            "stride2_c": In(ADDR_WIDTH), "nhcwb16_2": In(1), "bcast": In(3), "scalar": In(1),
            "esz": In(2), "esz2": In(2),
            "req": Out(stream.Signature(ADDR_WIDTH)), "credit_return": In(1),
            "taps": Out(stream.Signature(_Tap)), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        m.submodules.pending = pend = MemoryFIFO(width=_Tap.as_shape().size, depth=PENDING_DEPTH)
        m.d.comb += [self.taps.valid.eq(pend.r_stream.valid), self.taps.payload.eq(pend.r_stream.payload),
                     pend.r_stream.ready.eq(self.taps.ready)]
        active = Signal()
        oy, ox, oc, ky, kx, kc = (Signal(17, name=n) for n in ("oy", "ox", "oc", "ky", "kx", "kc"))
        credits = Signal(range(RESULT_DEPTH + 1), init=RESULT_DEPTH)
        iy, ix = Signal(signed(20)), Signal(signed(20))
        # Elementwise taps are operands, not window positions: both at the element itself. (iy, ix) is in the
        # upscaled IFM when ``up``; the tap reads its source pixel (iy >> up, ix >> up).
        m.d.comb += [iy.eq(oy * g.sy + Mux(self.ew, 0, ky) - g.pad_top),
                     ix.eq(ox * g.sx + Mux(self.ew, 0, kx) - g.pad_left)]
        second = Signal()
        m.d.comb += second.eq(self.ew & (kx == 1))
        valid = Signal()
        m.d.comb += valid.eq((iy >= 0) & (iy < g.ih << g.up) & (ix >= 0) & (ix < g.iw << g.up)
                             & ~(second & self.scalar))
        addr1, addr2, addr = Signal(ADDR_WIDTH), Signal(ADDR_WIDTH), Signal(ADDR_WIDTH)
        b = self.bcast
        tile_base, ty, tx = fm_tile(m, (iy >> g.up)[:17], (ix >> g.up)[:17], [self.base, *self.tile_base],
                                    self.tile_h0, self.tile_h1, self.tile_w0, prefix="ifm_")
        m.d.comb += [
            addr1.eq(elem_addr(tile_base, ty, tx, Mux(g.depth_sum, kc, oc), self.stride_y, self.stride_x,
                               self.stride_c, self.nhcwb16, self.esz)),
            addr2.eq(elem_addr(self.base2, Mux(b[0], 0, oy), Mux(b[1], 0, ox), Mux(b[2], 0, oc), self.stride2_y,
                               self.stride2_x, self.stride2_c, self.nhcwb16_2, self.esz2)),
            addr.eq(Mux(second, addr2, addr1)),
        ]
        last_tap = (kc == g.kc - 1) & (ky == g.kh - 1) & (kx == g.kw - 1)
        first_tap = (kc == 0) & (ky == 0) & (kx == 0)
        can = active & pend.w_stream.ready & (~first_tap | (credits != 0))
        step = Signal()
        m.d.comb += [self.req.valid.eq(can & valid), self.req.payload.eq(addr),
                     step.eq(can & (~valid | self.req.ready))]
        tap = Signal(_Tap)
        m.d.comb += [tap.lane.eq(addr[:3]), tap.valid.eq(valid), tap.last.eq(last_tap), tap.second.eq(second),
                     pend.w_stream.payload.eq(tap), pend.w_stream.valid.eq(step)]
        took = step & first_tap
        m.d.sync += credits.eq(credits - took + self.credit_return)
        with m.If(step):
            with m.If(kx != g.kw - 1):
                m.d.sync += kx.eq(kx + 1)
            with m.Else():
                m.d.sync += kx.eq(0)
                with m.If(ky != g.kh - 1):
                    m.d.sync += ky.eq(ky + 1)
                with m.Else():
                    m.d.sync += ky.eq(0)
                    with m.If(kc != g.kc - 1):
                        m.d.sync += kc.eq(kc + 1)
                    with m.Else():
                        m.d.sync += kc.eq(0)
                        self._next_element(m, oy, ox, oc, active)
        with m.If(self.start):
            m.d.sync += [active.eq(1), oy.eq(0), ox.eq(0), oc.eq(0), ky.eq(0), kx.eq(0), kc.eq(0),
                         credits.eq(RESULT_DEPTH)]
        m.d.comb += self.busy.eq(active | pend.r_stream.valid)
        return m

    def _next_element(self, m, oy, ox, oc, active):
        g = self.geo
        with m.If(oc != g.oc - 1):
            m.d.sync += oc.eq(oc + 1)
        with m.Else():
            m.d.sync += oc.eq(0)
            with m.If(ox != g.ow - 1):
                m.d.sync += ox.eq(ox + 1)
            with m.Else():
                m.d.sync += ox.eq(0)
                with m.If(oy != g.oh - 1):
                    m.d.sync += oy.eq(oy + 1)
                with m.Else():
                    m.d.sync += active.eq(0)


class Reduced(data.Struct):
    """A reduced OFM element on its way to the output stage (elementwise: its two operands)."""
    value: signed(_WIDE)
    value2: signed(_OPND)
    count: 17         # valid taps
    unscaled: 1       # the output stage skips OFM_SCALE (LRELU's non-negative values)
    shift_only: 1     # the output stage applies OFM_SCALE's shift but not its multiplier (32-bit MUL)


class PoolReducer(wiring.Component):
    """See the module docstring.

    Members
    -------
    taps : ``In(stream.Signature(_Tap))``; rdata : ``In(64)``, rvalid : ``In(1)``, rready : ``Out(1)`` (responses)
    mode : ``In(3)`` (pooling mode); ifm_signed : ``In(1)``; ifm_zero_point : ``In(signed(18))``; start : ``In(1)``
    ew : ``In(1)``; ifm2_signed : ``In(1)``; ifm2_zero_point, scalar : ``In(signed(18))``   elementwise: tap 0 is
    operand A (``value``), tap 1 operand B (``value2``; the scalar when the tap has no read)
    esz, esz2 : ``In(2)``   log2 of the IFM / IFM2 element bytes (0, 1 or 2)
    result : ``Out(stream.Signature(Reduced))`` (must always be ready: the walker's credits guarantee room)
    """

    def __init__(self):
        super().__init__({
            "taps": In(stream.Signature(_Tap)), "rdata": In(WORD_BITS), "rvalid": In(1), "rready": Out(1),
            "mode": In(3), "ifm_signed": In(1), "ifm_zero_point": In(signed(18)), "start": In(1),
            "ew": In(1), "ifm2_signed": In(1), "ifm2_zero_point": In(signed(18)), "scalar": In(signed(18)),
            "esz": In(2), "esz2": In(2),
            "result": Out(stream.Signature(Reduced)),
        })

    def elaborate(self, platform):
        m = Module()
        head = self.taps.payload
        e1, e2 = Signal(signed(33)), Signal(signed(33))
        m.d.comb += [e1.eq(elem_value(self.rdata, head.lane, self.esz, self.ifm_signed)),
                     e2.eq(elem_value(self.rdata, head.lane, self.esz2, self.ifm2_signed))]
        t = Signal(signed(_OPND))
        m.d.comb += t.eq(e1 - self.ifm_zero_point)
        t2 = Signal(signed(_OPND))
        m.d.comb += t2.eq(Mux(head.valid, e2, self.scalar) - self.ifm2_zero_point)
        acc = Signal(signed(_ACC_BITS))
        count = Signal(17)
        have = Signal()                     # the element has had a valid tap
        go = Signal()
        m.d.comb += [self.rready.eq(self.taps.valid & head.valid),
                     go.eq(self.taps.valid & (~head.valid | self.rvalid)), self.taps.ready.eq(go)]
        new_acc = Signal(signed(_ACC_BITS))
        with m.If(~head.valid):
            m.d.comb += new_acc.eq(acc)
        with m.Elif(~have):
            m.d.comb += new_acc.eq(t)
        with m.Elif(self.mode == POOL_MAX):
            m.d.comb += new_acc.eq(Mux(t > acc, t, acc))
        with m.Else():
            m.d.comb += new_acc.eq(acc + t)
        new_count = count + head.valid
        m.d.comb += [self.result.payload.value.eq(new_acc), self.result.payload.count.eq(new_count),
                     self.result.payload.value2.eq(Mux(head.second, t2, 0)), self.result.valid.eq(go & head.last)]
        with m.If(self.ew & head.second):
            m.d.comb += new_acc.eq(acc)
        with m.If(go):
            m.d.sync += [acc.eq(new_acc), count.eq(new_count), have.eq(have | head.valid)]
            with m.If(head.last):
                m.d.sync += [acc.eq(0), count.eq(0), have.eq(0)]
        with m.If(self.start):
            m.d.sync += [acc.eq(0), count.eq(0), have.eq(0)]
        return m


def _round_shift(m, p, shift, mode):
    """``p / 2**shift`` rounded per the OFM round mode (0 TFL, 1 TRUNCATE, 2 NATURAL; ``vector_ref.round_shift``)."""
    w = max(len(p), 64) + 2      # room for 2**(shift - 1) at any shift
    below = Signal(6)
    m.d.comb += below.eq(shift - 1)
    half = Signal(signed(w))
    m.d.comb += half.eq(Mux(shift == 0, 0, Const(1, signed(w)) << below))
    natural = Signal(signed(w))
    m.d.comb += natural.eq((p + half) >> shift)
    mag = Signal(unsigned(w))
    m.d.comb += mag.eq(Mux(p < 0, -p, p) >> shift)
    trunc = Signal(signed(w))
    m.d.comb += trunc.eq(Mux(p < 0, -mag.as_signed(), mag))
    # TFL with shift > 31: SaturatingRoundingDoublingHighMul (half up) then RoundingDivideByPOT (half away).
    t = Signal(signed(w))
    m.d.comb += t.eq((p + (1 << 30)) >> 31)
    r, r_below = Signal(6), Signal(6)
    m.d.comb += [r.eq(shift - 31), r_below.eq(shift - 32)]
    half_r = Signal(signed(w))
    m.d.comb += half_r.eq(Const(1, signed(w)) << r_below)
    double = Signal(signed(w))
    m.d.comb += double.eq((t + half_r - (t < 0)) >> r)
    y = Signal(signed(w))
    m.d.comb += y.eq(Mux(mode == 1, trunc, Mux((mode == 0) & (shift > 31), double, natural)))
    return y


EW_MUL, EW_ADD, EW_SUB, EW_MIN, EW_MAX, EW_LRELU, EW_ABS, EW_CLZ, EW_SHR, EW_SHL = range(10)
ADD_SUB_SHIFT = 20      # 8-bit ADD/SUB: the operands' implied left shift (models.npu.vector_ref.ADD_SUB_SHIFT_8BIT)
ADD_SUB_SHIFT_16 = 15   # 16-bit ADD/SUB


class ElementwiseAlu(wiring.Component):
    """The elementwise operation on a reduced element's operands (``models.npu.vector_ref.elementwise``), one
    registered stage; a pooling element passes unchanged.

    ADD / SUB: scale mode 0 (CHECK allows it with unit operand scales only): ``a + b`` / ``a - b``; scale modes 1 / 2:
    the operand ``scale_mode`` names (1: A, 2: B) is rescaled, ``rdbpot(srdhm(x << 20, opa_scale), opa_shift - 11)``,
    the other shifted left by 19; MUL ``a * b`` (32-bit operands: marked ``shift_only``, the output stage applies
    OFM_SCALE's shift without its multiplier); MIN / MAX; ABS ``|a|``; LRELU ``a``, marked ``unscaled`` when
    non-negative (OFM_SCALE holds alpha: only negative values are scaled); CLZ: leading zeros of ``a`` as a 32-bit
    word; SHL ``a << b``, SHR ``a >> b`` rounded per ``round_mode`` (``b`` clamped to [0, 32] / [0, 63]). ``swap``
    exchanges A and B first (IFM2_BROADCAST operand order).

    Members
    -------
    i : ``In(stream.Signature(Reduced))``; o : ``Out(stream.Signature(Reduced))``
    ew, swap : ``In(1)``; mode : ``In(6)``; scale_mode : ``In(2)``; opa_scale : ``In(32)``; opa_shift : ``In(6)``
    wide : ``In(1)``   16-bit operands: ADD / SUB shift by 15 / 14 instead of 20 / 19 (``opa_shift - 16``)
    ifm32 : ``In(1)``   32-bit IFM (MUL: ``shift_only``); round_mode : ``In(2)`` (SHR)
    """

    def __init__(self):
        super().__init__({
            "i": In(stream.Signature(Reduced)), "o": Out(stream.Signature(Reduced)), "ew": In(1), "swap": In(1),
            "mode": In(6), "scale_mode": In(2), "opa_scale": In(32), "opa_shift": In(6), "wide": In(1),
            "ifm32": In(1), "round_mode": In(2),
        })

    def elaborate(self, platform):
        m = Module()
        x, y = self.i.payload.value, self.i.payload.value2
        a, b = Signal(signed(_OPND)), Signal(signed(_OPND))
        m.d.comb += [a.eq(Mux(self.swap, y, x)), b.eq(Mux(self.swap, x, y))]
        sa, sb = self._add_sub_operands(m, a, b)
        v = Signal(signed(_WIDE))
        with m.Switch(self.mode):
            with m.Case(EW_ADD):
                m.d.comb += v.eq(sa + sb)
            with m.Case(EW_SUB):
                m.d.comb += v.eq(sa - sb)
            with m.Case(EW_MUL):
                m.d.comb += v.eq(a * b)
            with m.Case(EW_MIN):
                m.d.comb += v.eq(Mux(a < b, a, b))
            with m.Case(EW_MAX):
                m.d.comb += v.eq(Mux(a > b, a, b))
            with m.Case(EW_ABS):
                m.d.comb += v.eq(Mux(a < 0, -a, a))
            with m.Case(EW_LRELU):
                m.d.comb += v.eq(a)
            with m.Case(EW_CLZ):
                m.d.comb += v.eq(self._clz32(m, a[:32]))
            with m.Case(EW_SHL):
                m.d.comb += v.eq(a << Mux(b < 0, 0, Mux(b > 32, 32, b[:6])))
            with m.Case(EW_SHR):
                amount = Signal(6)
                m.d.comb += [amount.eq(Mux(b < 0, 0, Mux(b > 63, 63, b[:6]))),
                             v.eq(_round_shift(m, a, amount, self.round_mode))]
        held = Signal()
        out = Signal(Reduced)
        m.d.comb += [self.i.ready.eq(~held | self.o.ready), self.o.valid.eq(held), self.o.payload.eq(out)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(1), out.eq(self.i.payload)]
            with m.If(self.ew):
                m.d.sync += [out.value.eq(v), out.unscaled.eq((self.mode == EW_LRELU) & (a >= 0)),
                             out.shift_only.eq((self.mode == EW_MUL) & self.ifm32)]
        with m.Elif(self.o.ready):
            m.d.sync += held.eq(0)
        return m

    def _add_sub_operands(self, m, a, b):
        """ADD / SUB operands after their scaling (scale mode 0: unchanged)."""
        scale_a = self.scale_mode == 1
        to_scale = Signal(signed(_OPND))
        m.d.comb += to_scale.eq(Mux(scale_a, a, b))
        in_shift, plain_shift = Signal(5), Signal(5)
        m.d.comb += [in_shift.eq(Mux(self.wide, ADD_SUB_SHIFT_16, ADD_SUB_SHIFT)), plain_shift.eq(in_shift - 1)]
        shifted = Signal(signed(_OPND + ADD_SUB_SHIFT))
        m.d.comb += shifted.eq(to_scale << in_shift)
        high = Signal(signed(_OPND + ADD_SUB_SHIFT + 2))   # srdhm(x << in_shift, opa_scale)
        m.d.comb += high.eq((shifted * self.opa_scale + (1 << 30)) >> 31)
        e, e_below = Signal(6), Signal(6)
        m.d.comb += [e.eq(self.opa_shift + in_shift - 31), e_below.eq(self.opa_shift + in_shift - 32)]
        rounded = Signal.like(high)   # rdbpot(high, e), e >= 0 (CHECK refuses smaller OPA shifts)
        m.d.comb += rounded.eq(Mux(e == 0, high, (high + (Const(1, signed(len(high))) << e_below) - (high < 0)) >> e))
        plain = Signal(signed(_OPND + ADD_SUB_SHIFT))
        m.d.comb += plain.eq(Mux(scale_a, b, a) << plain_shift)
        sa, sb = Signal(signed(_WIDE)), Signal(signed(_WIDE))
        with m.If(self.scale_mode == 0):
            m.d.comb += [sa.eq(a), sb.eq(b)]
        with m.Else():
            m.d.comb += [sa.eq(Mux(scale_a, rounded, plain)), sb.eq(Mux(scale_a, plain, rounded))]
        return sa, sb

    @staticmethod
    def _clz32(m, word):
        """Leading zeros of a 32-bit word (32 for 0)."""
        n = Signal(6, name="clz")
        with m.If(word == 0):
            m.d.comb += n.eq(32)
        with m.Else():
            for i in range(32):          # the highest set bit wins (last assignment)
                with m.If(word[i]):
                    m.d.comb += n.eq(31 - i)
        return n


class VectorOutputStage(wiring.Component):
    """See the module docstring (one registered stage; ``i`` is taken when the output register is free).

    Members
    -------
    i : ``In(stream.Signature(Reduced))``; divide : ``In(1)``; scale : ``In(32)``; shift : ``In(6)``
    round_mode : ``In(2)``; ofm_zero_point, act_min, act_max : ``In(signed(18))``; ofm_signed : ``In(1)``;
    ofm_wide : ``In(1)`` (16-bit OFM); ofm32 : ``In(1)`` (32-bit OFM: saturated to int32, ACTIVATION_MIN/MAX not
    applied)
    sigmoid_tanh : ``In(1)``; tanh : ``In(1)``: the TANH (``tanh``) or SIGMOID function (ACTIVATION 3 / 4) on the
    scaled value, before the zero point (:mod:`rtl.npu.sigmoid_tanh`, sub-unit ``sigmoid_tanh``)
    lut : ``In(1)``; lut_slot : ``In(3)``; clip : ``In(4)``; lut_raddr : ``Out(range(words))``; lut_rdata : ``In(64)``
    table lookup (ACTIVATION TABLE_n): the value, clamped to the clip range's type (``clip`` = ACTIVATION[15:12]: 0
    the OFM's, 2 uint8, 3 int8), indexes table ``n`` of the SHRAM's last 2 KiB (256-byte slots; index ``value -
    type minimum``; 4-byte entries for a 32-bit OFM); the entry is the result (8- / 16-bit OFM: then clamped to
    ACTIVATION_MIN/MAX). 16-bit OFM: 512 4-byte entries (base, slope) interpolated over the 128 values of a
    segment (``models.npu.vector_ref.interpolate16``)
    o : ``Out(stream.Signature(32))``
    """

    def __init__(self, *, shram_bytes: int):
        self.lut_base = shram_bytes - LUT_BYTES
        super().__init__({
            "i": In(stream.Signature(Reduced)), "divide": In(1), "scale": In(32), "shift": In(6),
            "round_mode": In(2), "ofm_zero_point": In(signed(18)), "act_min": In(signed(18)),
            "act_max": In(signed(18)), "ofm_signed": In(1), "ofm_wide": In(1), "ofm32": In(1),
            "o": Out(stream.Signature(32)), "lut": In(1), "lut_slot": In(3), "clip": In(4),
            "lut_raddr": Out(range(shram_bytes // 8)), "lut_rdata": In(WORD_BITS),
            "sigmoid_tanh": In(1), "tanh": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        scaled = self._scaled(m)
        m.submodules.sigmoid_tanh = fn = SigmoidTanhUnit(len(scaled))
        m.d.comb += [fn.x.eq(scaled), fn.tanh.eq(self.tanh)]
        y = Signal(signed(len(scaled)))
        m.d.comb += y.eq(Mux(self.sigmoid_tanh, fn.y, scaled))
        use_clip = self.lut & (self.clip != 0)
        c_signed, c_wide = Signal(), Signal()
        m.d.comb += [c_signed.eq(Mux(use_clip, self.clip != 2, self.ofm_signed)),
                     c_wide.eq(Mux(use_clip, self.clip == 5, self.ofm_wide))]
        lo, hi = Signal(signed(18)), Signal(signed(18))
        tlo, thi = Signal(signed(18)), Signal(signed(18))   # the clip type's range (the OFM type's by default)
        m.d.comb += [tlo.eq(Mux(c_signed, Mux(c_wide, -32768, -128), 0)),
                     thi.eq(Mux(c_wide, Mux(c_signed, 32767, 65535), Mux(c_signed, 127, 255)))]
        m.d.comb += [lo.eq(Mux(self.act_min < tlo, tlo, Mux(self.act_min > thi, thi, self.act_min))),
                     hi.eq(Mux(self.act_max < tlo, tlo, Mux(self.act_max > thi, thi, self.act_max)))]
        z = Signal(signed(len(y) + 1))
        m.d.comb += z.eq(y + self.ofm_zero_point)
        zt = Signal(signed(18))     # clamped to the clip type: the table index (8-bit clip type)
        m.d.comb += zt.eq(Mux(z < tlo, tlo, Mux(z > thi, thi, z)))
        index = Signal(16)
        m.d.comb += index.eq(zt - tlo)
        offset = Signal(11)     # byte offset in the table: 8-bit entries, 32-bit entries, or 16-bit OFM segments
        m.d.comb += offset.eq(Mux(self.ofm32, index[:8] << 2, Mux(self.ofm_wide, index[7:16] << 2, index[:8])))
        byte_addr = Signal(range(self.lut_base + LUT_BYTES))
        m.d.comb += [byte_addr.eq(self.lut_base + (self.lut_slot << 8) + offset), self.lut_raddr.eq(byte_addr >> 3)]
        entry = Signal(8)
        m.d.comb += entry.eq(self.lut_rdata.word_select(byte_addr[:3], 8))
        entry32 = Signal(32)
        m.d.comb += entry32.eq(self.lut_rdata.word_select(byte_addr[2], 32))
        looked_up = Signal(signed(18))
        with m.If(self.ofm_wide):   # interpolated: base + ((slope * (index % 128) + 64) >> 7)
            m.d.comb += looked_up.eq(entry32[:16].as_signed()
                                     + ((entry32[16:].as_signed() * index[:7] + 64) >> 7))
        with m.Else():
            m.d.comb += looked_up.eq(Mux(self.ofm_signed, entry.as_signed(), entry))
        res = Signal(signed(18))
        m.d.comb += res.eq(Mux(self.lut, looked_up, zt))
        sat32 = Signal(32)
        m.d.comb += sat32.eq(Mux(z < -(1 << 31), -(1 << 31), Mux(z > (1 << 31) - 1, (1 << 31) - 1, z)))
        out = Signal(32)
        held = Signal()
        m.d.comb += [self.i.ready.eq(~held | self.o.ready), self.o.valid.eq(held), self.o.payload.eq(out)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += held.eq(1)
            with m.If(self.ofm32):
                m.d.sync += out.eq(Mux(self.lut, entry32, sat32))
            with m.Else():
                m.d.sync += out.eq(Mux(res < lo, lo, Mux(res > hi, hi, res)))
        with m.Elif(self.o.ready):
            m.d.sync += held.eq(0)
        return m

    def _scaled(self, m):
        """The element divided by its valid-tap count (AVERAGE with padding), times OFM_SCALE (not for LRELU's
        non-negative values; shift only for 32-bit MUL), rounded by the shift."""
        v = self.i.payload.value
        n = self.i.payload.count
        recips = [pooling_reciprocal(k) if k else (0, 1) for k in range(MAX_DIVIDE_TAPS + 1)]
        rscale = Signal(33)
        rshift = Signal(6)
        m.d.comb += [rscale.eq(Array(Const(s, 33) for s, _ in recips)[n[:7]]),
                     rshift.eq(Array(Const(s, 6) for _, s in recips)[n[:7]])]
        r_below = Signal(6)
        m.d.comb += r_below.eq(rshift - 1)
        quotient = Signal(signed(_ACC_BITS))
        m.d.comb += quotient.eq((v[:_ACC_BITS].as_signed() * rscale + (Const(1, signed(64)) << r_below)) >> rshift)
        v2 = Signal(signed(_WIDE))
        m.d.comb += v2.eq(Mux(self.divide, quotient, v))
        unscaled = self.i.payload.unscaled
        p = Signal(signed(_WIDE + 33))
        m.d.comb += p.eq(v2 * Mux(unscaled | self.i.payload.shift_only, 1, self.scale))
        return _round_shift(m, p, Mux(unscaled, 0, self.shift), self.round_mode)


class ByteWriter(wiring.Component):
    """See the module docstring.

    Members
    -------
    start : ``In(1)``; geo : ``In(PoolGeometry)``; base, stride_y, stride_x, stride_c : ``In(32)``; nhcwb16 : ``In(1)``
    tile_base : ``In(32).array(3)``; tile_h0, tile_h1, tile_w0 : ``In(17)``   tiles 1-3 (``base``: tile 0's)
    esz : ``In(2)`` (log2 of the OFM element bytes, 0, 1 or 2)
    data : ``In(stream.Signature(32))``; req_* : a strobed write of the element
    written : ``Out(1)`` (pulse per element written); all_done : ``Out(1)``
    """

    def __init__(self):
        super().__init__({
            "start": In(1), "geo": In(PoolGeometry), "base": In(ADDR_WIDTH), "stride_y": In(ADDR_WIDTH),
            "stride_x": In(ADDR_WIDTH), "stride_c": In(ADDR_WIDTH), "nhcwb16": In(1), **_tile_ports(),
            "esz": In(2), "data": In(stream.Signature(32)), "req_valid": Out(1), "req_ready": In(1),
            "req_addr": Out(ADDR_WIDTH),
            "req_wdata": Out(WORD_BITS), "req_wstrb": Out(8), "written": Out(1), "all_done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geo
        oy, ox, oc = (Signal(17, name=n) for n in ("oy", "ox", "oc"))
        addr = Signal(ADDR_WIDTH)
        tile_base, ty, tx = fm_tile(m, oy, ox, [self.base, *self.tile_base], self.tile_h0, self.tile_h1,
                                    self.tile_w0, prefix="ofm_")
        m.d.comb += addr.eq(elem_addr(tile_base, ty, tx, oc, self.stride_y, self.stride_x, self.stride_c,
                                      self.nhcwb16, self.esz))
        m.d.comb += [self.req_valid.eq(self.data.valid & ~self.all_done), self.req_addr.eq(addr),
                     self.req_wdata.eq(Mux(self.esz == 0, self.data.payload[:8].replicate(8),
                                           Mux(self.esz == 1, self.data.payload[:16].replicate(4),
                                               self.data.payload.replicate(2)))),
                     self.req_wstrb.eq(Mux(self.esz == 0, Const(1, 8), Mux(self.esz == 1, Const(3, 8), Const(15, 8)))
                                       << addr[:3]),
                     self.data.ready.eq(self.req_ready & ~self.all_done),
                     self.written.eq(self.req_valid & self.req_ready)]
        with m.If(self.written):
            with m.If(oc != g.oc - 1):
                m.d.sync += oc.eq(oc + 1)
            with m.Else():
                m.d.sync += oc.eq(0)
                with m.If(ox != g.ow - 1):
                    m.d.sync += ox.eq(ox + 1)
                with m.Else():
                    m.d.sync += ox.eq(0)
                    with m.If(oy != g.oh - 1):
                        m.d.sync += oy.eq(oy + 1)
                    with m.Else():
                        m.d.sync += self.all_done.eq(1)
        with m.If(self.start):
            m.d.sync += [oy.eq(0), ox.eq(0), oc.eq(0), self.all_done.eq(0)]
        return m


class VectorUnit(wiring.Component):
    """See the module docstring.

    Members
    -------
    kick : ``In(stream.Signature(KernelOp))``; basep : ``In(32).array(8)``; bus : ``Out(MemPortSignature)``
    done, error : ``Out(1)`` (pulses, one per kick); error_code : ``Out(ComputeError)`` (held until the next kick)
    busy : ``Out(1)``; lut_raddr : ``Out(range(shram words))``, lut_rdata : ``In(64)``   SHRAM table reads
    """

    def __init__(self, *, shram_bytes: int):
        self.shram_bytes = shram_bytes
        super().__init__({
            "kick": In(stream.Signature(KernelOp)), "basep": In(ADDR_WIDTH).array(NUM_REGIONS),
            "bus": Out(MemPortSignature), "done": Out(1), "error": Out(1), "error_code": Out(ComputeError),
            "busy": Out(1), "lut_raddr": Out(range(shram_bytes // 8)), "lut_rdata": In(WORD_BITS),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.walker = wk = PoolWalker()
        m.submodules.reducer = rd = PoolReducer()
        m.submodules.results = res = MemoryFIFO(width=Reduced.as_shape().size, depth=RESULT_DEPTH)
        m.submodules.alu = alu = ElementwiseAlu()
        m.submodules.out = ou = VectorOutputStage(shram_bytes=self.shram_bytes)
        m.submodules.writer = wr = ByteWriter()

        regs = Signal(Registers)
        opcode = Signal(10)
        param = Signal(16)
        geo = Signal(PoolGeometry)
        ew = Signal()
        m.d.comb += ew.eq(opcode == CMD0.NPU_OP_ELEMENTWISE)
        ew_mode = param[:6]
        unary = Signal()
        m.d.comb += unary.eq((ew_mode == EW_ABS) | (ew_mode == EW_LRELU) | (ew_mode == EW_CLZ))
        mode = Mux(ew, 7, param[:3])    # pooling mode (7: none, elementwise)
        self._decode(m, regs, geo, ew, unary, mode)
        ifm_signed, ofm_signed = regs.IFM_PRECISION[0], regs.OFM_PRECISION[0]
        padded = ((regs.IFM_PAD_TOP != 0) | (regs.IFM_PAD_LEFT != 0) | (regs.IFM_PAD_BOTTOM != 0)
                  | (regs.IFM_PAD_RIGHT != 0))
        divide = Signal()
        m.d.comb += divide.eq(~ew & (mode == POOL_AVERAGE) & padded)
        global_scale = regs.OFM_PRECISION[8]
        start = Signal()
        mem_err = Signal()

        ifm_base = region_base(self.basep, regs.IFM_REGION) + regs.IFM_BASE0
        ofm_base = region_base(self.basep, regs.OFM_REGION) + regs.OFM_BASE0
        bcast = regs.IFM2_BROADCAST
        m.d.comb += _connect_tiles(wk, self.basep, regs, "IFM") + _connect_tiles(wr, self.basep, regs, "OFM")
        m.d.comb += [
            wk.ew.eq(ew), wk.base2.eq(region_base(self.basep, regs.IFM2_REGION) + regs.IFM2_BASE0),
            wk.stride2_y.eq(regs.IFM2_STRIDE_Y), wk.stride2_x.eq(regs.IFM2_STRIDE_X),
            wk.stride2_c.eq(regs.IFM2_STRIDE_C), wk.nhcwb16_2.eq(regs.IFM2_PRECISION[6:8] == 1),
            wk.bcast.eq(bcast[:3]), wk.scalar.eq(bcast[7]),
            wk.esz.eq(regs.IFM_PRECISION[2:4]), wk.esz2.eq(regs.IFM2_PRECISION[2:4]),
            rd.esz.eq(regs.IFM_PRECISION[2:4]), rd.esz2.eq(regs.IFM2_PRECISION[2:4]),
            rd.ew.eq(ew), rd.ifm2_signed.eq(regs.IFM2_PRECISION[0]),
            rd.ifm2_zero_point.eq(as_typed(regs.IFM2_ZERO_POINT, regs.IFM2_PRECISION[0])),
            rd.scalar.eq(as_typed(regs.IFM2_SCALAR, regs.IFM2_PRECISION[0])),
            alu.ew.eq(ew), alu.swap.eq(bcast[6]), alu.mode.eq(ew_mode), alu.scale_mode.eq(regs.IFM_PRECISION[8:10]),
            alu.wide.eq(regs.IFM_PRECISION[2:4] == 1), alu.ifm32.eq(regs.IFM_PRECISION[2:4] == 2),
            alu.round_mode.eq(regs.OFM_PRECISION[14:16]),
            ou.ofm_wide.eq(regs.OFM_PRECISION[1:3] == 1), ou.ofm32.eq(regs.OFM_PRECISION[1:3] == 2),
            ou.clip.eq(regs.ACTIVATION[12:16]), wr.esz.eq(regs.OFM_PRECISION[1:3]),
            alu.opa_scale.eq(regs.OPA_SCALE), alu.opa_shift.eq(regs.OPA_SCALE_SHIFT),
            ou.lut.eq(regs.ACTIVATION[4]), ou.lut_slot.eq(regs.ACTIVATION[:3]),
            ou.sigmoid_tanh.eq((regs.ACTIVATION[:12] == ACT_TANH) | (regs.ACTIVATION[:12] == ACT_SIGMOID)),
            ou.tanh.eq(regs.ACTIVATION[:12] == ACT_TANH),
            self.lut_raddr.eq(ou.lut_raddr), ou.lut_rdata.eq(self.lut_rdata),
        ]
        m.d.comb += [
            wk.start.eq(start), wk.geo.eq(geo), wk.base.eq(ifm_base), wk.stride_y.eq(regs.IFM_STRIDE_Y),
            wk.stride_x.eq(regs.IFM_STRIDE_X), wk.stride_c.eq(regs.IFM_STRIDE_C),
            wk.nhcwb16.eq(regs.IFM_PRECISION[6:8] == 1), wk.credit_return.eq(wr.written),
            rd.start.eq(start), rd.mode.eq(mode), rd.ifm_signed.eq(ifm_signed),
            rd.ifm_zero_point.eq(as_typed(regs.IFM_ZERO_POINT, ifm_signed)),
            rd.taps.valid.eq(wk.taps.valid), rd.taps.payload.eq(wk.taps.payload), wk.taps.ready.eq(rd.taps.ready),
            rd.rdata.eq(self.bus.resp.payload.rdata), rd.rvalid.eq(self.bus.resp.valid),
            self.bus.resp.ready.eq(rd.rready),
            res.w_stream.valid.eq(rd.result.valid), res.w_stream.payload.eq(rd.result.payload),
            rd.result.ready.eq(res.w_stream.ready),
            alu.i.valid.eq(res.r_stream.valid), alu.i.payload.eq(res.r_stream.payload),
            res.r_stream.ready.eq(alu.i.ready),
            ou.i.valid.eq(alu.o.valid), ou.i.payload.eq(alu.o.payload), alu.o.ready.eq(ou.i.ready),
            ou.divide.eq(divide), ou.scale.eq(Mux(global_scale, regs.OFM_SCALE, 1)),
            ou.shift.eq(Mux(global_scale, regs.OFM_SCALE_SHIFT, 0)), ou.round_mode.eq(regs.OFM_PRECISION[14:16]),
            ou.ofm_zero_point.eq(as_typed(regs.OFM_ZERO_POINT, ofm_signed)),
            ou.act_min.eq(as_typed(regs.ACTIVATION_MIN, ofm_signed)),
            ou.act_max.eq(as_typed(regs.ACTIVATION_MAX, ofm_signed)), ou.ofm_signed.eq(ofm_signed),
            wr.start.eq(start), wr.geo.eq(geo), wr.base.eq(ofm_base), wr.stride_y.eq(regs.OFM_STRIDE_Y),
            wr.stride_x.eq(regs.OFM_STRIDE_X), wr.stride_c.eq(regs.OFM_STRIDE_C),
            wr.nhcwb16.eq(regs.OFM_PRECISION[6:8] == 1),
            wr.data.valid.eq(ou.o.valid), wr.data.payload.eq(ou.o.payload), ou.o.ready.eq(wr.data.ready),
        ]
        # One memory port: a pending write goes first.
        req = self.bus.req
        m.d.comb += [
            req.valid.eq(wr.req_valid | wk.req.valid),
            req.payload.write.eq(wr.req_valid),
            req.payload.addr.eq(Mux(wr.req_valid, wr.req_addr, wk.req.payload)),
            req.payload.wdata.eq(wr.req_wdata), req.payload.wstrb.eq(Mux(wr.req_valid, wr.req_wstrb, 0)),
            wr.req_ready.eq(req.ready), wk.req.ready.eq(req.ready & ~wr.req_valid),
        ]
        with m.If(self.bus.resp.valid & self.bus.resp.ready & self.bus.resp.payload.err):
            m.d.sync += mem_err.eq(1)

        kick = self.kick
        with m.FSM(name="vector"):
            with m.State("IDLE"):
                m.d.comb += kick.ready.eq(1)
                with m.If(kick.valid):
                    m.d.sync += [regs.eq(kick.payload.regs), opcode.eq(kick.payload.opcode),
                                 param.eq(kick.payload.param), mem_err.eq(0)]
                    m.next = "CHECK"
            with m.State("CHECK"):
                with m.If(self._unsupported(m, regs, opcode, mode, geo, divide, ew, ew_mode)):
                    m.d.sync += self.error_code.eq(ComputeError.UNSUPPORTED)
                    m.next = "ERROR"
                with m.Else():
                    m.d.comb += start.eq(1)
                    m.d.sync += self.error_code.eq(ComputeError.NONE)
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(wr.all_done & ~wk.busy):
                    m.next = "FINISH"
            with m.State("FINISH"):
                with m.If(mem_err):
                    m.d.sync += self.error_code.eq(ComputeError.MEMORY)
                    m.next = "ERROR"
                with m.Else():
                    m.d.comb += self.done.eq(1)
                    m.next = "IDLE"
            with m.State("ERROR"):
                m.d.comb += self.error.eq(1)
                m.next = "IDLE"
        m.d.comb += self.busy.eq(~kick.ready)
        return m

    def _decode(self, m, regs, geo, ew, unary, mode):
        """Pooling: the kernel window (REDUCE_SUM with an OFM depth of 1 and a deeper IFM: the window over every IFM
        channel); elementwise: the IFM is the OFM's shape and an element has one tap per operand (kernel 1 x 2, or
        1 x 1 for the one-operand modes)."""
        ks = regs.KERNEL_STRIDE
        m.d.comb += [
            geo.depth_sum.eq((mode == POOL_REDUCE_SUM) & (regs.OFM_DEPTH_M1 == 0) & (regs.IFM_DEPTH_M1 != 0)),
            geo.kc.eq(Mux(geo.depth_sum, regs.IFM_DEPTH_M1 + 1, 1)),
            geo.oh.eq(regs.OFM_HEIGHT_M1 + 1), geo.ow.eq(regs.OFM_WIDTH_M1 + 1), geo.oc.eq(regs.OFM_DEPTH_M1 + 1),
            geo.kh.eq(Mux(ew, 1, regs.KERNEL_HEIGHT_M1 + 1)), geo.kw.eq(Mux(ew, Mux(unary, 1, 2),
                                                                            regs.KERNEL_WIDTH_M1 + 1)),
            geo.sy.eq(Mux(ew, 1, 1 + Cat(ks[1], ks[9]))), geo.sx.eq(Mux(ew, 1, 1 + Cat(ks[0], ks[6]))),
            geo.pad_top.eq(Mux(ew, 0, regs.IFM_PAD_TOP)), geo.pad_left.eq(Mux(ew, 0, regs.IFM_PAD_LEFT)),
        ]
        # A pool's IFM extent, as the MAC path's (rtl.npu.kernel_op._ifm_extent): what the window reads (upscaled:
        # halved, rounding up), at least tile 0; rows / columns past tile 0 come from tiles 1-3.
        need_h, need_w = Signal(signed(20), name="pool_need_h"), Signal(signed(20), name="pool_need_w")
        src_h, src_w = Signal(signed(20), name="pool_src_need_h"), Signal(signed(20), name="pool_src_need_w")
        h0, w0 = regs.IFM_HEIGHT0_M1 + 1, regs.IFM_WIDTH0_M1 + 1
        m.d.comb += [
            geo.up.eq(~ew & (regs.IFM_UPSCALE[0:2] == 1)),
            need_h.eq((geo.oh - 1) * geo.sy + geo.kh - regs.IFM_PAD_TOP - regs.IFM_PAD_BOTTOM),
            need_w.eq((geo.ow - 1) * geo.sx + geo.kw - regs.IFM_PAD_LEFT - regs.IFM_PAD_RIGHT),
            src_h.eq((need_h + geo.up) >> geo.up), src_w.eq((need_w + geo.up) >> geo.up),
            geo.ih.eq(Mux(ew, geo.oh, Mux(src_h > h0, src_h, h0))),
            geo.iw.eq(Mux(ew, geo.ow, Mux(src_w > w0, src_w, w0))),
        ]

    def _unsupported(self, m, regs, opcode, mode, geo, divide, ew, ew_mode):
        """CHECK: what this unit does not implement (yet): precisions other than 8, 16 and 32 bit (32-bit OFM: signed
        only), tables with a 16-bit OFM other than TABLE_0 (2 KiB), tile layouts other than NHWC / NHCWB16, IFM
        upscaling, the TANH / SIGMOID functions other than on a 16-bit IFM and OFM, clip ranges other than the OFM's
        except uint8 / int8 before a table with a 32-bit OFM (TABLE_0..4: 1 KiB tables), round mode 3, the fp16
        accumulator format (INT32 and INT40 give the same results here: the unit's sums and operands are wider), pooling
        modes above REDUCE_SUM, REDUCE_SUM with an OFM depth other than 1 or the IFM's, dilation, AVERAGE with padding
        over more than 64 taps; elementwise mode numbers above SHL (9); ADD / SUB: scale modes 1 / 2 (one 32-bit-scaled
        operand) only with 8- or 16-bit operands and OPA shift >= 11 (16 for 16-bit operands), scale mode 0 only with
        unit operand scales (OPA_SCALE 1, shift 0, OPB_SCALE 1), scale mode 3 never. (IFM upscaling: a POOL's NEAREST
        runs.)"""
        ks = regs.KERNEL_STRIDE
        act = regs.ACTIVATION
        act_fn, clip = act[:12], act[12:16]
        ofm_size = regs.OFM_PRECISION[1:3]
        table = (act_fn >= 16) & (act_fn <= 23)
        lut_ok = Signal(name="activation_ok")
        sigmoid_tanh_ok = (((act_fn == ACT_TANH) | (act_fn == ACT_SIGMOID)) & (clip == 0) & (ofm_size == 1)
                           & (regs.IFM_PRECISION[2:4] == 1))
        m.d.comb += lut_ok.eq(((act_fn == 0) & (clip == 0)) | sigmoid_tanh_ok
                              | (table & (ofm_size == 0) & (clip == 0))
                              | ((act_fn == 16) & (ofm_size == 1) & (clip == 0))
                              | (table & (ofm_size == 2) & ((clip == 2) | (clip == 3)) & (act_fn <= 20)))
        add_sub = (ew_mode == EW_ADD) | (ew_mode == EW_SUB)
        unary = (ew_mode == EW_ABS) | (ew_mode == EW_LRELU) | (ew_mode == EW_CLZ)
        scale_mode = regs.IFM_PRECISION[8:10]
        add_sub_bad = Mux(scale_mode == 0,
                          (regs.OPA_SCALE != 1) | (regs.OPA_SCALE_SHIFT != 0) | (regs.OPB_SCALE[:16] != 1),
                          (scale_mode == 3) | (regs.IFM_PRECISION[2:4] == 2)
                          | (regs.OPA_SCALE_SHIFT < Mux(regs.IFM_PRECISION[2:4] == 1, 16, 11)))
        ew_bad = Signal(name="elementwise_unsupported")
        m.d.comb += ew_bad.eq(
            (ew_mode > EW_SHL) | (add_sub & add_sub_bad)
            | (~unary & ((regs.IFM2_PRECISION[2:4] > 2) | (regs.IFM2_PRECISION[6:8] > 1))))
        pool_bad = Signal(name="pool_unsupported")
        m.d.comb += pool_bad.eq((mode > POOL_REDUCE_SUM) | ks[3] | ks[4]
                                | (divide & (geo.kh * geo.kw > MAX_DIVIDE_TAPS))
                                | ((mode == POOL_REDUCE_SUM) & (regs.OFM_DEPTH_M1 != 0)
                                   & (regs.OFM_DEPTH_M1 != regs.IFM_DEPTH_M1)))
        bad = Signal(name="unsupported")
        m.d.comb += bad.eq(
            ((opcode != CMD0.NPU_OP_POOL) & ~ew) | Mux(ew, ew_bad, pool_bad)
            | (regs.IFM_PRECISION[2:4] > 2) | (regs.IFM_PRECISION[6:8] > 1)
            | (ofm_size > 2) | ((ofm_size == 2) & ~regs.OFM_PRECISION[0])
            | (regs.OFM_PRECISION[6:8] > 1) | (regs.OFM_PRECISION[14:16] == 3)
            | ((regs.IFM_UPSCALE != 0) & (ew | (regs.IFM_UPSCALE != 1))) | (regs.ACC_FORMAT > 1) | ~lut_ok)
        return bad
