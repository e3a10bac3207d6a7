"""MobileNetV2 with its HARD_SWISH stem and head fused into convs as table lookups: NPU cycles vs Vela per config.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/npu_act.py [--configs u55-128,...] [--write BENCHMARKS.md]

Rows: ``mobilenetv2`` whole (``rampart run npu mobilenetv2``) and ``mobilenetv2-features``, the network up to its
head HARD_SWISH (``models.npu.networks.mobilenetv2.features``: every conv, depthwise, ADD and both fused tables;
without MEAN, FC and SOFTMAX), quantised as in the whole network. Measured with ``benchmarks/npu_networks.py``'s
``measure`` (one run on a seeded random input, Vela's ``cycles_total`` beside the NPU's ``cycles`` counter); a
stopped run (``UNSUPPORTED at kernel op #n``) gives its cycles up to the stop and no ratio.
"""
import argparse

from npu_networks import CONFIGS, measure, table
from report import write_section

from models.npu.networks import network
from models.npu.networks.mobilenetv2 import features

NOTES = ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--write", metavar="BENCHMARKS.md")
    args = ap.parse_args()
    rows = []
    for cfg in args.configs.split(","):
        for name, model in (("mobilenetv2", network("mobilenetv2")), ("mobilenetv2-features", features())):
            r = measure(model, cfg)
            rows.append((name, cfg, r))
            print(name, cfg, r, flush=True)
    text = table(rows)
    print(text)
    if args.write:
        body = (f"## NPU table activations: MobileNetV2 (`benchmarks/npu_act.py`)\n\n"
                f"{__doc__.split(chr(10), 3)[3].strip()}\n\n"
                f"Reproduce: `PYTHONPATH=$PWD .venv/bin/python benchmarks/npu_act.py --write BENCHMARKS.md`\n\n"
                f"{text}\n\n{NOTES}\n")
        write_section(args.write, "npu_act", body)


if __name__ == "__main__":
    main()
