"""MobileNetV2 with its HARD_SWISH stem and head fused into convs as table lookups: NPU cycles vs Vela per config.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/npu_act.py [--configs u55-128,...] [--write BENCHMARKS.md]

Rows: ``mobilenetv2`` whole (``rampart run npu mobilenetv2``) and ``mobilenetv2-features``, the network up to its
head HARD_SWISH (``models.npu.networks.mobilenetv2.features``: every conv, depthwise, ADD and both fused tables;
without MEAN, FC and SOFTMAX), quantised as in the whole network. Measured with ``benchmarks/npu_networks.py``'s
``measure`` (one run on a seeded random input, Vela's ``cycles_total`` beside the NPU's ``cycles`` counter); a
stopped run (``UNSUPPORTED at kernel op #n``) gives its cycles up to the stop and no ratio.
"""
import argparse
import json
from pathlib import Path

from npu_networks import CONFIGS, measure, table
from report import write_section

from models.npu.networks import network
from models.npu.networks.mobilenetv2 import features

NOTES = """Measured 2026-12-07 on the shared 2-core machine at load 11-15 (wall times are mostly the other jobs').
The features rows are bit-exact vs LiteRT on every config: both HARD_SWISH tables (TABLE_0 on the stem conv,
TABLE_1 on the head conv) run on the MAC output path. The whole network still stops at MEAN: Vela lowers it to a
DEPTHWISE with a 32-bit OFM (then an ELEMENTWISE), which the MAC path does not implement yet (kernel op #29 on
u55-32 / u55-128, #37 on u55-64, #32 on u55-256: Vela splits the layers differently per config); its cycles are
up to that stop.

Ratios 0.56-0.88x (features rows): the NPU finishes before Vela's estimate, most on the small configs. Not
analysed layer by layer here (`rampart run npu` prints the per-layer pairs); the same direction as the VWW /
ResNet-8 bodies in `npu_networks` (0.73-0.98x), where the likely cause named there is Vela serialising each op's
weight and IFM traffic at its system config's bandwidth while this NPU overlaps the next op's weight load with the
current op's compute.
MAC utilisation 14-36%: the depthwise layers run on the diagonal of the MAC brick (at most 1/8 of its MACs useful,
`benchmarks/npu_perf.py`). The table lookup itself costs no cycles (it sits in the output unit's last stage): the
four networks that ran before (resnet8, kws-dscnn, vww-mobilenetv1, digits-pool on u55-128) take exactly the cycles
they took before the change (215,919 / 84,640 / 167,046 / 5,405)."""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--write", metavar="BENCHMARKS.md")
    ap.add_argument("--json", metavar="FILE", help="also save the rows here (for --render)")
    ap.add_argument("--render", metavar="FILE", help="only re-render the table from rows saved with --json")
    args = ap.parse_args()
    if args.render:
        rows = [tuple(r) for r in json.loads(Path(args.render).read_text())]
    else:
        rows = collect(args.configs.split(","))
        if args.json:
            Path(args.json).write_text(json.dumps(rows))
    text = table(rows)
    print(text)
    if args.write:
        body = (f"## NPU table activations: MobileNetV2 (`benchmarks/npu_act.py`)\n\n"
                f"{__doc__.split(chr(10), 3)[3].strip()}\n\n"
                f"Reproduce: `PYTHONPATH=$PWD .venv/bin/python benchmarks/npu_act.py --write BENCHMARKS.md`\n\n"
                f"{text}\n\n{NOTES}\n")
        write_section(args.write, "npu_act", body)


def collect(configs):
    rows = []
    for cfg in configs:
        for name, model in (("mobilenetv2", network("mobilenetv2")), ("mobilenetv2-features", features())):
            r = measure(model, cfg)
            rows.append((name, cfg, r))
            print(name, cfg, r, flush=True)
    return rows


if __name__ == "__main__":
    main()
