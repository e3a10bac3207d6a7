"""The NGPC grid-encoding engine: one :class:`LevelEngine` per level, all levels in parallel, one query per cycle.

Per level, a four-stage pipeline of functional units (each registers its outputs; tiny-cuda-nn's function names in
brackets):

1. :class:`PositionScaler` [``pos_fract``]: ``q = u * s_l + 1/2``; registers the grid coordinates ``p`` and the
   ``weight_bits`` fractions ``f``.
2. :class:`IndexUnit` [``grid_index``]: the 2**D corner addresses, dense (``sum p_d * res**d``, then ``% params`` by
   conditional subtraction) or hashed (CoherentPrime XOR, then an AND mask), fixed per level at elaboration;
   :class:`WeightUnit` [``interpol_weights``]: the 2**D corner weights, registered, then delayed one more stage.
3. :class:`TableBanks`: the level's table replicated in 2**D single-read-port SRAM banks, so every corner is read in
   the same cycle (hashed corners hit arbitrary entries, so no address-interleaved banking is conflict-free);
   registered read data. The write port writes all banks of a level.
4. :class:`Interpolator`: ``(sum_c w_c * v_c + 2**(W-1)) >> W`` per feature, registered.

The arithmetic is specified by :mod:`models.ngpc.golden` (bit-exact). A stall (``features.ready`` low while
``features.valid``) freezes every stage; ``query.ready`` is the pipeline enable, so the throughput is one query per
cycle whenever the consumer is ready.
"""
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from models.ngpc.params import PRIMES, Level
from rtl.ngpc.config import NgpcConfig

__all__ = ["BLOCK_MAP", "LATENCY", "GridEncoder", "LevelEngine", "PipelineControl", "TableWriteSignature"]

LATENCY = 4  #: cycles from a query's acceptance to its features being valid

#: Fault-injection blocks: dotted instance prefix -> functional block (levels up to 32).
BLOCK_MAP: dict[str, str] = {"control": "control"}
for _l in range(32):
    BLOCK_MAP.update({f"level_{_l}.scaler": "position_scalers", f"level_{_l}.index": "index_units",
                      f"level_{_l}.weights": "weight_units", f"level_{_l}.table": "table_srams",
                      f"level_{_l}.interp": "interpolators"})


def TableWriteSignature(config: NgpcConfig) -> wiring.Signature:
    """One table entry (all F features) per cycle: ``en``, ``level``, ``addr``, ``data`` (feature 0 in the low bits)."""
    depth = max(level.params for level in config.level_geometry)
    return wiring.Signature({
        "en": Out(1), "level": Out(max(1, (config.levels - 1).bit_length())),
        "addr": Out(max(1, (depth - 1).bit_length())), "data": Out(config.features * config.feature_bits)})


def _coord_bits(level: Level) -> int:
    return level.resolution.bit_length()     # p + 1 <= res


class PositionScaler(wiring.Component):
    def __init__(self, config: NgpcConfig, level: Level):
        self._config, self._level = config, level
        super().__init__({"en": In(1), "u": In(config.dims * config.pos_bits),
                          "p": Out(config.dims * _coord_bits(level)), "f": Out(config.dims * config.weight_bits)})

    def elaborate(self, platform):
        m = Module()
        cfg, cb = self._config, _coord_bits(self._level)
        frac_bits = cfg.pos_bits + cfg.scale_frac
        with m.If(self.en):
            for d in range(cfg.dims):
                u = self.u[d * cfg.pos_bits:(d + 1) * cfg.pos_bits]
                q = u * self._level.scale_fixed + (1 << (frac_bits - 1))
                m.d.sync += [self.p[d * cb:(d + 1) * cb].eq(q[frac_bits:frac_bits + cb]),
                             self.f.word_select(d, cfg.weight_bits).eq(q[frac_bits - cfg.weight_bits:frac_bits])]
        return m


class IndexUnit(wiring.Component):
    def __init__(self, config: NgpcConfig, level: Level):
        self._config, self._level = config, level
        self.addr_bits = max(1, (level.params - 1).bit_length())
        super().__init__({"en": In(1), "p": In(config.dims * _coord_bits(level)),
                          "addr": Out(self.addr_bits).array(1 << config.dims)})

    def _dense(self, corner: list) -> object:
        level = self._level
        index = sum(c * level.resolution ** d for d, c in enumerate(corner))
        top = sum(level.resolution * level.resolution ** d for d in range(len(corner)))
        assert top < 1 << 32, "dense index would wrap in uint32"
        for _ in range(top // level.params):         # index < (n + 1) * params -> n conditional subtractions
            index = Mux(index >= level.params, index - level.params, index)
        return index

    def _hash(self, corner: list) -> object:
        k = self.addr_bits
        index = Const(0, k)
        for d, c in enumerate(corner):
            index = index ^ (c * (PRIMES[d] % (1 << k)))[:k]      # only the low k bits survive the mask
        return index

    def elaborate(self, platform):
        m = Module()
        cfg, cb = self._config, _coord_bits(self._level)
        p = [self.p[d * cb:(d + 1) * cb] for d in range(cfg.dims)]
        with m.If(self.en):
            for idx in range(1 << cfg.dims):
                corner = [p[d] + (idx >> d & 1) for d in range(cfg.dims)]
                index = self._hash(corner) if self._level.hashed else self._dense(corner)
                m.d.sync += self.addr[idx].eq(index[:self.addr_bits])
        return m


class WeightUnit(wiring.Component):
    """Corner weights, registered (stage 2) and delayed (stage 3) to meet the table's read data."""

    def __init__(self, config: NgpcConfig):
        self._config = config
        wb = config.weight_bits
        super().__init__({"en": In(1), "f": In(config.dims * wb), "w": Out(wb + 1).array(1 << config.dims)})

    def elaborate(self, platform):
        m = Module()
        cfg, wb = self._config, self._config.weight_bits
        f = [self.f.word_select(d, wb) for d in range(cfg.dims)]
        staged = [Signal(wb + 1, name=f"w_{idx}") for idx in range(1 << cfg.dims)]
        with m.If(self.en):
            for idx in range(1 << cfg.dims):
                w = None
                for d in range(cfg.dims):
                    w_d = f[d] if idx >> d & 1 else (1 << wb) - f[d]
                    w = w_d if w is None else ((w * w_d) >> wb)[:wb + 1]
                m.d.sync += [staged[idx].eq(w), self.w[idx].eq(staged[idx])]
        return m


class TableBanks(wiring.Component):
    def __init__(self, config: NgpcConfig, level: Level, addr_bits: int):
        self._config, self._level = config, level
        width = config.features * config.feature_bits
        super().__init__({"en": In(1), "addr": In(addr_bits).array(1 << config.dims),
                          "wr_en": In(1), "wr_addr": In(addr_bits), "wr_data": In(width),
                          "data": Out(width).array(1 << config.dims)})

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        for idx in range(1 << cfg.dims):
            m.submodules[f"bank_{idx}"] = mem = Memory(shape=cfg.features * cfg.feature_bits,
                                                       depth=self._level.params, init=[])
            wr = mem.write_port()
            rd = mem.read_port(domain="comb")
            m.d.comb += [wr.en.eq(self.wr_en), wr.addr.eq(self.wr_addr), wr.data.eq(self.wr_data),
                         rd.addr.eq(self.addr[idx])]
            with m.If(self.en):
                m.d.sync += self.data[idx].eq(rd.data)
        return m


class Interpolator(wiring.Component):
    def __init__(self, config: NgpcConfig):
        self._config = config
        width = config.features * config.feature_bits
        super().__init__({"en": In(1), "w": In(config.weight_bits + 1).array(1 << config.dims),
                          "v": In(width).array(1 << config.dims), "out": Out(width)})

    def elaborate(self, platform):
        m = Module()
        cfg, fb, wb = self._config, self._config.feature_bits, self._config.weight_bits
        acc_bits = fb + wb + 1 + cfg.dims + 1
        with m.If(self.en):
            for k in range(cfg.features):
                acc = Signal(signed(acc_bits), name=f"acc_{k}")
                m.d.comb += acc.eq(sum(self.w[c] * self.v[c].word_select(k, fb).as_signed()
                                       for c in range(1 << cfg.dims)) + (1 << (wb - 1)))
                m.d.sync += self.out.word_select(k, fb).eq((acc >> wb)[:fb])
        return m


class LevelEngine(wiring.Component):
    """One level's pipeline: scaler -> index and weights -> table banks -> interpolator."""

    def __init__(self, config: NgpcConfig, level: Level):
        self._config, self._level = config, level
        wr = TableWriteSignature(config).members
        super().__init__({"en": In(1), "u": In(config.dims * config.pos_bits),
                          "wr_en": In(1), "wr_addr": In(wr["addr"].shape), "wr_data": In(wr["data"].shape),
                          "out": Out(config.features * config.feature_bits)})

    def elaborate(self, platform):
        m = Module()
        cfg, level = self._config, self._level
        m.submodules.scaler = scaler = PositionScaler(cfg, level)
        m.submodules.index = index = IndexUnit(cfg, level)
        m.submodules.weights = weights = WeightUnit(cfg)
        m.submodules.table = table = TableBanks(cfg, level, index.addr_bits)
        m.submodules.interp = interp = Interpolator(cfg)
        m.d.comb += [unit.en.eq(self.en) for unit in (scaler, index, weights, table, interp)]
        m.d.comb += [scaler.u.eq(self.u), index.p.eq(scaler.p), weights.f.eq(scaler.f),
                     table.wr_en.eq(self.wr_en), table.wr_addr.eq(self.wr_addr), table.wr_data.eq(self.wr_data),
                     self.out.eq(interp.out)]
        for c in range(1 << cfg.dims):
            m.d.comb += [table.addr[c].eq(index.addr[c]), interp.w[c].eq(weights.w[c]),
                         interp.v[c].eq(table.data[c])]
        return m


class PipelineControl(wiring.Component):
    """The valid bits of a ``latency``-stage pipeline and its global enable (stall when the output is not taken)."""

    def __init__(self, latency: int = LATENCY):
        self._latency = latency
        super().__init__({"in_valid": In(1), "out_ready": In(1), "en": Out(1), "out_valid": Out(1)})

    def elaborate(self, platform):
        m = Module()
        valid = Signal(self._latency)
        m.d.comb += [self.out_valid.eq(valid[-1]), self.en.eq(~valid[-1] | self.out_ready)]
        with m.If(self.en):
            m.d.sync += valid.eq(Cat(self.in_valid, valid[:-1]))
        return m


class GridEncoder(wiring.Component):
    """The encoding engine (simulation top): ``query`` stream of D ``pos_bits`` coordinates (dimension 0 lowest),
    ``features`` stream of L*F ``feature_bits`` values (level-major, feature 0 lowest), ``table`` write port."""

    def __init__(self, config: NgpcConfig):
        self.config = config
        super().__init__({
            "query": In(stream.Signature(config.dims * config.pos_bits)),
            "features": Out(stream.Signature(config.out_width)),
            "table": In(TableWriteSignature(config)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        m.submodules.control = control = PipelineControl()
        m.d.comb += [control.in_valid.eq(self.query.valid), control.out_ready.eq(self.features.ready),
                     self.query.ready.eq(control.en), self.features.valid.eq(control.out_valid)]
        outs = []
        for level in cfg.level_geometry:
            m.submodules[f"level_{level.index}"] = engine = LevelEngine(cfg, level)
            m.d.comb += [engine.en.eq(control.en), engine.u.eq(self.query.payload),
                         engine.wr_en.eq(self.table.en & (self.table.level == level.index)),
                         engine.wr_addr.eq(self.table.addr), engine.wr_data.eq(self.table.data)]
            outs.append(engine.out)
        m.d.comb += self.features.payload.eq(Cat(*outs))
        return m
