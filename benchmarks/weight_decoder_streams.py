"""Each kernel op's weight stream through the RTL weight decoder alone, against the cost model's decoder term
(diagnosis only: nothing here is fitted).

    .venv/bin/python benchmarks/weight_decoder_streams.py NETWORK CONFIG
    .venv/bin/python benchmarks/weight_decoder_streams.py --synthetic LANES


NETWORK is a name of ``models.npu.networks``. Every kernel op's ``WEIGHT_LENGTH`` bytes (from the Vela artifact's
weight region, or from the DMA that copied them) are fed to the NPU's wide decoder (``rtl/npu/weight_decoder.py``,
64-bit input, the config's ``ublock_d`` output lanes) in its own Verilator testbench with no back-pressure, as fast
as it takes them: its cycles to ``done`` are what the decoder alone needs for that stream's content. Printed beside
them: the stream's decoded weights (``ethosu.mlw_codec.decode``), the non-zero ones, the scale-record bytes (the op
loader reads them one byte a cycle before the weights), a content estimate of the decoder's cycles
(:func:`decoder_estimate`, a prototype), and the model's WEIGHTS stage (``load_core - handover`` of
:func:`models.system.npu_cost.op_parts`, the stored calibration) and its whole loader stage.

``--synthetic LANES``: 16,384 weights of several value distributions (seed 5), encoded by ``mlw_codec.encode``,
through the ``LANES``-lane decoder: how the decoder's cycles depend on the stream's content (its first slice's WDIV,
7 = uncompressed, and palette size are printed).
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ethosu import mlw_codec  # noqa: E402

from models.npu import cmdstream as cs  # noqa: E402
from models.npu import vela  # noqa: E402
from models.npu.networks import network  # noqa: E402
from models.system.npu_cost import NpuCostModel  # noqa: E402
from models.system.npu_ops import GEOMETRIES, ops_from_commands  # noqa: E402
from rtl.npu.weight_decoder import WeightDecoderConfig, WeightDecoderTestbenchConfig  # noqa: E402
from sim.build import build  # noqa: E402
from sim.harness import NativeSim  # noqa: E402


def _stream(art, regs: dict, copies: list) -> bytes:
    """The op's weight stream: from the weight region, or through the last DMA that wrote it elsewhere."""
    region, base, n = regs.get("WEIGHT_REGION", 0), regs.get("WEIGHT_BASE", 0), regs.get("WEIGHT_LENGTH", 0)
    for dst_region, dst, src_region, src, length in reversed(copies):
        if dst_region == region and dst <= base and base + n <= dst + length:
            region, base = src_region, src + base - dst
            break
    if region != art.weight_region:
        raise ValueError(f"weight stream in region {region}, not the weight region {art.weight_region}")
    return art.weight_data[base:base + n]


def weight_streams(art, ops):
    """(op, weight stream bytes) of every op of ``ops`` (:func:`ops_from_commands` of ``art``) with weights."""
    copies = []
    kicks = [k for k in cs.kicks(art.commands()) if k.name in cs.KERNEL_OPS or k.name in cs.DMA_OPS]
    for k, op in zip(kicks, ops, strict=True):
        r = k.registers
        if not op.is_kernel and not op.dma_to_shram:
            copies.append((r.get("DMA0_DST_REGION", 0) & 0xFF, r.get("DMA0_DST", 0), r.get("DMA0_SRC_REGION", 0) & 0xFF,
                           r.get("DMA0_SRC", 0), r.get("DMA0_LEN", 0)))
        elif op.is_kernel and op.weight_bytes:   # (a pool's kick may carry a stale WEIGHT_LENGTH: not its stream)
            yield op, _stream(art, r, copies)


class StandaloneDecoder:
    """The NPU's wide decoder (``lanes`` output lanes) in the ``npu_weight_decoder_tb`` Verilator testbench."""

    OUTPUTS = ["o_stream__valid", "done", "error"]

    def __init__(self, lanes: int, depth: int = 1 << 15):
        self.sim = NativeSim(build("npu_weight_decoder_tb", WeightDecoderTestbenchConfig(
            decoder=WeightDecoderConfig(in_width=64, out_lanes=lanes), depth=depth)))
        self.memory = self.sim.element_index("top.stream")

    def cycles(self, stream: bytes) -> int:
        """Cycles from reset to ``done`` with the output always ready; raises on a decode error."""
        beats = np.frombuffer(stream + bytes(-len(stream) % 8), dtype=np.uint64)
        self.sim.reset()
        self.sim.load_memory(self.memory, beats)
        n = 16 * len(stream) + 4000
        out = self.sim.run_stimulus({"length": np.full(n, len(beats), dtype=np.uint64),
                                     "o_stream__ready": np.ones(n, dtype=np.uint64)}, self.OUTPUTS)
        ended = np.flatnonzero(out["done"][:, 0] | out["error"][:, 0])
        if len(ended) == 0 or out["error"][ended[0], 0]:
            raise RuntimeError("the decoder did not finish the stream cleanly")
        return int(ended[0])


def _header(stream: bytes) -> dict:
    """The first slice header's fields (npu-weights.md section 2.3; LSB first) and its palette's ``u`` codes."""
    bits = int.from_bytes(stream[:16], "little")

    def field(lo, n):
        return (bits >> lo) & ((1 << n) - 1)

    size = field(28, 5) + 1 if field(28, 5) else 0
    width = field(33, 3) + 2
    return dict(zdiv=field(0, 3), wdiv=field(18, 3), wtrunc=field(21, 1), dirofs=field(23, 5), palbits=width,
                palette=[field(36 + i * width, width) for i in range(size)])


def _chunk_cycles(positions: np.ndarray, chunk: int, lanes: int) -> tuple[int, int]:
    """(assembler cycles, chunks) of symbols taking ``positions`` unary positions each, ``chunk`` positions a chunk:
    a chunk a cycle at most, and at most ``lanes`` of the symbols ending in it a cycle."""
    if len(positions) == 0:
        return 0, 0
    ends = (np.cumsum(positions) - 1) // chunk
    per = np.bincount(ends, minlength=int(ends[-1]) + 1)
    return int(np.maximum(1, -(-per // lanes)).sum()), len(per)


def decoder_estimate(stream: bytes, lanes: int) -> int:
    """A content estimate of the wide decoder's cycles (prototype, not in the cost model): the slowest of the output
    stage (a beat of ``lanes`` weights a cycle), the W assembler and the Z assembler (``_WideAssembler``: one chunk
    descriptor a cycle, at most ``lanes`` symbols of it a cycle) and the parser (one chunk-loop pass a cycle). A W
    symbol takes ``q // 2 + 1`` chunk positions of 12 (q = index >> WDIV; one if WTRUNC or uncompressed, then 8 a
    chunk if the index is wider than 5 bits), a zero run ``(run >> ZDIV) + 1`` of 12 (8 if ZDIV >= 3). The first
    slice's parameters are used for the whole stream (most streams have one slice). Start-up, slice drains and
    palette entries (a cycle each) are not counted."""
    h = _header(stream)
    w = np.asarray(mlw_codec.decode(bytearray(stream))).ravel()
    zrun = h["zdiv"] != 6
    coded = w[w != 0] if zrun else w
    u = 2 * np.abs(coded) + (coded < 0)
    pal = {code: i for i, code in enumerate(h["palette"])}
    index = np.array([pal[x] if x in pal else x - h["dirofs"] + len(pal) for x in u.tolist()], dtype=int)
    if h["wdiv"] == 7:
        width = int(np.ceil(np.log2(len(pal)))) if pal else h["palbits"]
        wasm, wchunks = _chunk_cycles(np.ones(len(index), dtype=int), 8 if width > 5 else 12, lanes)
    else:
        steps = np.ones(len(index), dtype=int) if h["wtrunc"] else (index >> h["wdiv"]) // 2 + 1
        wasm, wchunks = _chunk_cycles(steps, 12, lanes)
    zasm = zchunks = 0
    if zrun:
        runs = np.diff(np.concatenate([[-1], np.flatnonzero(w != 0), [w.size]])) - 1
        zasm, zchunks = _chunk_cycles((runs >> h["zdiv"]) + 1, 12 if h["zdiv"] < 3 else 8, lanes)
    return max(-(-w.size // lanes), wasm, zasm, wchunks, zchunks)


def rows(name: str, config: str, latency: float = 8):
    art = vela.compile_cached(network(name).data, config)
    cost = NpuCostModel.load()
    ops = ops_from_commands(art.commands())
    parts = cost.op_parts(cost.matrix(ops, config), config, latency)
    decoder = StandaloneDecoder(GEOMETRIES[config].ublock_d)
    for op, stream in weight_streams(art, ops):
        w = np.asarray(mlw_codec.decode(bytearray(stream))).ravel()
        i = op.index
        yield dict(op=op, bytes=len(stream), weights=w.size, nonzero=int((w != 0).sum()),
                   records=op.scale_bytes, decoder=decoder.cycles(stream),
                   estimate=decoder_estimate(stream, GEOMETRIES[config].ublock_d),
                   model_weights=parts.load_core[i] - parts.handover[i], model_load=parts.load_core[i])


def _first_slice(stream: bytes) -> tuple[int, int]:
    """(WDIV, palette entries) of the stream's first slice header (npu-weights.md section 2)."""
    bits = int.from_bytes(stream[:8], "little")
    return (bits >> 18) & 7, ((bits >> 28) & 31) + 1 if (bits >> 28) & 31 else 0


def synthetic(lanes: int, n: int = 16384):
    rng = np.random.default_rng(5)
    cases = {
        "uniform -127..127": rng.integers(-127, 128, n),
        "normal sigma 40": np.clip(np.round(rng.normal(0, 40, n)), -127, 127),
        "normal sigma 10": np.clip(np.round(rng.normal(0, 10, n)), -127, 127),
        "normal sigma 3": np.clip(np.round(rng.normal(0, 3, n)), -127, 127),
        "uniform, 50% zeros": rng.integers(-127, 128, n) * (rng.random(n) < 0.5),
        "uniform, 90% zeros": rng.integers(-127, 128, n) * (rng.random(n) < 0.1),
        "16 values": rng.choice(np.arange(-8, 8) * 9, n),
        "all zero": np.zeros(n, dtype=int),
    }
    decoder = StandaloneDecoder(lanes)
    for name, w in cases.items():
        stream = bytes(mlw_codec.encode([int(v) for v in w]))
        wdiv, palette = _first_slice(stream)
        cycles = decoder.cycles(stream)
        yield dict(name=name, bytes=len(stream), nonzero=int((w != 0).sum()), wdiv=wdiv, palette=palette,
                   cycles=cycles, beats=n // lanes, n=n, estimate=decoder_estimate(stream, lanes))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("network", nargs="?")
    parser.add_argument("config", nargs="?")
    parser.add_argument("--synthetic", type=int, metavar="LANES", help="synthetic streams through LANES lanes")
    args = parser.parse_args()
    if args.synthetic:
        for r in synthetic(args.synthetic):
            print(f"{r['name']:20} {r['bytes']:6d} B ({8 * r['bytes'] / r['n']:4.2f} bits a weight) non-zero "
                  f"{r['nonzero']:6d} WDIV {r['wdiv']} palette {r['palette']:2d} | cycles {r['cycles']:6d} = "
                  f"{r['beats']} output beats + {r['cycles'] - r['beats']} | content estimate {r['estimate']}")
        return
    if not (args.network and args.config):
        parser.error("NETWORK and CONFIG, or --synthetic LANES")
    print(f"{args.network} on {args.config}: per kernel op with weights")
    for r in rows(args.network, args.config):
        op = r["op"]
        print(f"{op.index:3d} {op.kind:9} ifm {op.ifm} ofm {op.ofm} k{op.kernel} | stream {r['bytes']:6d} B "
              f"weights {r['weights']:6d} non-zero {r['nonzero']:6d} | decoder alone {r['decoder']:6d} "
              f"content estimate {r['estimate']:6d} ({100 * (r['estimate'] / r['decoder'] - 1):+6.1f}%) "
              f"model WEIGHTS {r['model_weights']:8.0f} ({100 * (r['model_weights'] / r['decoder'] - 1):+6.1f}%) | "
              f"records {r['records']:5d} B + decoder {r['records'] + r['decoder']:6d}, model loader "
              f"{r['model_load']:8.0f}")


if __name__ == "__main__":
    main()
