"""int16x8 (16-bit activations, 8-bit weights) CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED on the NPU: cycles per
config next to the same layer with int8 activations, Vela's estimate, and the result against LiteRT.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/npu_int16.py [--configs u55-64,...] [--write BENCHMARKS.md]
        [--json rows.json | --render rows.json]

Each layer is a one-operator model (``models.npu.int16x8``; its int8 twin from ``models.npu.tflite_builder`` with
the same shapes), Vela-compiled per config and run through ``drivers.npu_coverage.run_row`` (two random inputs and
one at the dtype's maximum, every output compared with LiteRT's reference kernels); the cycles are the NPU's
``cycles`` counter of the last run. "Vela NPU term" is the compute term of Vela's estimate
(``PerfEstimate.npu_cycles``).
"""
import argparse
import json

from report import write_section

from drivers.npu_coverage import run_row
from drivers.transport import SimDevice
from models.npu import int16x8, vela
from models.npu import tflite_builder as tb
from models.npu.op_matrix import Row

CONFIGS = ("u55-32", "u55-64", "u55-128", "u55-256")

#: (name, int16 model, int8 twin) builders of a seed.
LAYERS = (
    ("conv 3x3 12->8 on 5x6 (DF)", lambda s: int16x8.conv2d((5, 6, 12), 8, (3, 3), seed=s),
     lambda s: tb.single_layer(tb.Conv2D(8), (5, 6, 12), seed=s).data),
    ("conv 3x3 5->9 on 6x7 (PK)", lambda s: int16x8.conv2d((6, 7, 5), 9, (3, 3), activation="RELU", seed=s),
     lambda s: tb.single_layer(tb.Conv2D(9, activation="RELU"), (6, 7, 5), seed=s).data),
    ("conv 3x3 s2 48->24 on 7x7", lambda s: int16x8.conv2d((7, 7, 48), 24, (3, 3), (2, 2), seed=s),
     lambda s: tb.single_layer(tb.Conv2D(24, stride=(2, 2)), (7, 7, 48), seed=s).data),
    ("conv 1x1 40->16 on 4x4", lambda s: int16x8.conv2d((4, 4, 40), 16, (1, 1), seed=s),
     lambda s: tb.single_layer(tb.Conv2D(16, kernel=(1, 1)), (4, 4, 40), seed=s).data),
    ("depthwise 3x3 s2 x12 on 6x7", lambda s: int16x8.depthwise_conv2d((6, 7, 12), (3, 3), (2, 2), seed=s),
     lambda s: tb.single_layer(tb.DepthwiseConv2D(stride=(2, 2)), (6, 7, 12), seed=s).data),
    ("depthwise 5x5 x20 on 8x9 (VALID)",
     lambda s: int16x8.depthwise_conv2d((8, 9, 20), (5, 5), (1, 1), "VALID", seed=s),
     lambda s: tb.single_layer(tb.DepthwiseConv2D((5, 5), padding="VALID"), (8, 9, 20), seed=s).data),
    ("FC 64->20", lambda s: int16x8.fully_connected(64, 20, seed=s, exact_scales=True),
     lambda s: tb.single_layer(tb.FullyConnected(20), (64,), seed=s).data),
)


def measure(configs) -> list[dict]:
    rows = []
    for config in configs:
        with SimDevice.open("npu", config) as dev:
            for name, make16, make8 in LAYERS:
                r16 = run_row(dev, config, Row(name, "int16", "", make16))
                r8 = run_row(dev, config, Row(name, "int8", "", make8))
                perf = vela.compile_cached(make16(0), config).perf
                rows.append(dict(layer=name, config=config, c8=r8.cycles, c16=r16.cycles, vela=perf.npu_cycles,
                                 result=r16.result if r16.passed else f"{r16.result}: {r16.detail}"))
                print(rows[-1], flush=True)
    return rows


def render(rows: list[dict]) -> str:
    out = ["| layer | config | int8 cycles | int16x8 cycles | int16 / int8 | Vela NPU term (int16) | NPU / Vela | "
           "int16x8 vs LiteRT |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| {r['layer']} | {r['config']} | {r['c8']:,} | {r['c16']:,} | {r['c16'] / r['c8']:.2f} | "
                   f"{r['vela']:,} | {r['c16'] / r['vela']:.2f} | {r['result']} |")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--write", metavar="BENCHMARKS.md")
    ap.add_argument("--json", metavar="FILE", help="also save the rows here (for --render)")
    ap.add_argument("--render", metavar="FILE", help="only re-render the table from rows saved with --json")
    args = ap.parse_args()
    if args.render:
        with open(args.render) as f:
            rows = json.load(f)
    else:
        rows = measure(args.configs.split(","))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    table = render(rows)
    print(table)
    if args.write:
        body = ("## NPU: 16-bit activations with 8-bit weights (int16x8)\n\n"
                "Reproduce: `PYTHONPATH=$PWD .venv/bin/python benchmarks/npu_int16.py --write BENCHMARKS.md`.\n\n"
                + NOTES + "\n\n" + table)
        write_section(args.write, "npu_int16", body)


#: What the table shows (kept with the script; update it with the numbers).
NOTES = """Measured 2026-12-07 21:49-21:54 UTC (shared machine, load 9-12). Every int16x8 layer is bit-exact vs LiteRT
on all four configs (the FC with `exact_scales`: for arbitrary scales Vela's int16 FC stream and LiteRT
differ by one in ~10% of outputs, models/npu/SPEC.md section 4;
`tb/rtl/npu/test_int16_mac.py::test_fc_follows_the_stream`).

Design: a 16-bit IFM runs at half the 8-bit MAC rate. A line-buffer word (64 bits, one read port per
position, as for 8-bit) holds 4 channels, so an IFM ublock (8 channels, one `OUB x 8` brick) takes two MAC
beats, each meeting half of the brick's IFM columns; 4 of a dot product's 8 multipliers take the 16-bit
operands (they are 17 x 8 bits already, for the 16-bit zero point), the accumulators are 40 bits (the U55's
INT40), the output unit rounds once (NATURAL). This is the U55's own choice as far as Vela models it
(`npu_performance`: 16-deep IFM blocks, depthwise cycles x2), it keeps the line buffer, brick RAM and stager
bandwidth as they are, and it adds only operand muxes and 8 accumulator bits per accumulator. Full rate
would need two line-buffer words per position per cycle (twice the read ports and IFM bandwidth) for a
precision the target networks use in a few layers. Exception: on U55-32 a depthwise brick is 4 channels,
which one word holds, so 16-bit depthwise runs at the 8-bit rate there (Vela assumes x2: NPU / Vela
0.38-0.39).

Measured int16 / int8 cycle ratios are 0.99-1.81, not 2: these small layers also spend fixed cycles on
records, weights and the OFM; the FC is bound by its weight stream (64 x 20 weights), not by MAC beats, and
costs the same. NPU / Vela (Vela's compute term) is 0.61-1.22 outside U55-32's depthwise.

8-bit ops are unchanged: `benchmarks/npu_networks.py --configs u55-64,u55-256 --networks
kws-dscnn,digits-pool,resnet8` gives identical cycles before (93eb9bc) and after this change: total, every
layer, MAC_ACTIVE and PMU read beats (kws 125,745 / 55,401; digits-pool 6,565 / 5,018; resnet8 324,820 /
162,061 on u55-64 / u55-256).

Area (`sim.area.area_of_rtlil`, Yosys generic gates in NAND2 equivalents, the blocks that grew, before ->
after): MAC block u55-32 45,097 -> 46,259 GE (+2.6%; flip-flops 257 -> 321 bits: the 40-bit accumulators and
result register; the rest is operand muxes and the wider accumulator adders), u55-256 355,157 -> 362,104 GE
(+2.0%; flip-flops 2,049 -> 2,561). The output unit's input register grows by 8 bits a lane and its rounding
by one mux."""

if __name__ == "__main__":
    main()
