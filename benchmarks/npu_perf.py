"""NPU MAC utilisation per layer: single-layer int8 models, Vela-compiled, run on the Verilated NPU.

    .venv/bin/python benchmarks/npu_perf.py [--quick] [--write BENCHMARKS.md]

Each row is one layer: useful MACs (from the LiteRT graph), NPU cycles from kick to done
(``drivers.npu.run_on_npu``, ``LayerCycles``), utilisation = MACs / (cycles x MACs per cycle), Vela's own
cycle estimate for the layer and the ratio NPU / Vela. Every run is also checked bit-exact against LiteRT, so a
fast wrong answer cannot pass as a result. ``--quick``: only the U55-128 3x3 conv rows.
"""
import argparse
import time
from dataclasses import dataclass

import numpy as np
from report import write_section

from drivers.npu import run_on_npu
from models.npu import tflite_builder as tb
from models.npu.reference import ReferenceModel

#: What bounds the rows that stay below 80% (the structure of the design, not fitted to the numbers above).
LIMITS = """Where the cycles go (rtl/npu/compute.py; the PMU's MAC_STALLED_BY_WD / _IB / _ACC counters split the
waits, `drivers.npu.run_on_npu(..., pmu_events=...)`): the MAC block takes one beat per cycle while its brick is
decoded and its IFM rows are staged. The weight decoder is the wide one (64-bit words in, 2-5 weights per cycle on
dense streams, up to 8 zeros per cycle on zero runs), fed by a reader that keeps `ext_latency + 3` words in flight;
a micro-block needs every IFM ublock of its OFM ublock, so a single-kick op still waits for part of its stream
before the first beat (3x3 16->16 at 16x16: the fixed cost that keeps the smallest layers below 90%). The MAC
block accumulates the next micro-block while the previous result waits for the output unit (it stalls only if a
block's last beat finds that result unread). 1x1 convolutions read each IFM word for one beat, so the stager (one
8-byte word per cycle, the memory's bandwidth) bounds them; an IFM larger than the line buffer is re-staged once per
OFM ublock. Depthwise runs as the diagonal of the 8x8 brick (at most 1/8 of the MACs useful). Fully connected
layers use each weight once: they run at the decoder's rate, now within 1.3x of Vela's estimate."""


@dataclass(frozen=True)
class Case:
    name: str
    layer: object
    shape: tuple[int, ...]
    config: str = "u55-128"


def conv3x3(cin: int, cout: int, hw: int, config: str = "u55-128") -> Case:
    return Case(f"conv3x3 {hw}x{hw}x{cin}->{cout}", tb.Conv2D(cout), (hw, hw, cin), config)


def cases(quick: bool) -> list[Case]:
    rows = [conv3x3(16, 16, 16), conv3x3(16, 16, 32), conv3x3(32, 32, 16), conv3x3(32, 32, 32),
            conv3x3(64, 64, 16), conv3x3(64, 64, 32)]
    if quick:
        return rows
    rows += [Case("conv1x1 16x16x32->32", tb.Conv2D(32, kernel=(1, 1)), (16, 16, 32)),
             Case("conv1x1 32x32x64->64", tb.Conv2D(64, kernel=(1, 1)), (32, 32, 64)),
             Case("dw3x3 16x16x32", tb.DepthwiseConv2D(), (16, 16, 32)),
             Case("dw3x3 32x32x64", tb.DepthwiseConv2D(), (32, 32, 64)),
             Case("fc 256->64", tb.FullyConnected(64), (256,)),
             Case("fc 512->32", tb.FullyConnected(32), (512,))]
    rows += [conv3x3(16, 16, hw, config) for config in ("u55-32", "u55-64", "u55-256") for hw in (16, 32)]
    rows += [conv3x3(32, 32, 16, config) for config in ("u55-32", "u55-64", "u55-256")]
    rows += [conv3x3(64, 64, 16, "u55-256")]
    return rows


def measure(case: Case) -> dict:
    model = tb.single_layer(case.layer, case.shape, seed=0)
    t0 = time.perf_counter()
    run = run_on_npu(model, case.config, seed=1)
    wall = time.perf_counter() - t0
    np.testing.assert_array_equal(run.output, ReferenceModel(model).run(run.input),
                                  err_msg=f"{case.name} on {case.config} is not bit-exact")
    # A single-layer model: its kicks (Vela may split one layer into several, by OFM depth).
    cycles = run.cycles - run.kicks[0].issued_at     # from the first kick to done
    paired = run.layers and all(layer.vela_cycles is not None for layer in run.layers)
    vela = sum(layer.vela_cycles for layer in run.layers) if paired else run.vela.npu_cycles
    return dict(config=case.config, layer=case.name, kicks=len(run.kicks), macs=run.macs, cycles=cycles,
                util=run.macs / (cycles * run.macs_per_cycle), vela=vela,
                ratio=cycles / vela if vela else None, wall=wall)


def table(rows: list[dict]) -> str:
    lines = ["| config | layer | kicks | MACs | NPU cycles | MAC util. | Vela cycles | NPU / Vela |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        vela = f"{r['vela']:,}" if r["vela"] else "-"
        ratio = f"{r['ratio']:.2f}" if r["ratio"] else "-"
        lines.append(f"| {r['config']} | {r['layer']} | {r['kicks']} | {r['macs']:,} | {r['cycles']:,} | "
                     f"{100 * r['util']:.1f}% | {vela} | {ratio} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="only the U55-128 3x3 conv rows")
    parser.add_argument("--write", metavar="BENCHMARKS.md", help="write the 'NPU utilisation' section there")
    args = parser.parse_args()
    rows = []
    for case in cases(args.quick):
        rows.append(measure(case))
        r = rows[-1]
        print(f"{r['config']:8} {r['layer']:26} MACs {r['macs']:>10,} cycles {r['cycles']:>8,} "
              f"util {100 * r['util']:5.1f}%  Vela {r['vela'] or 0:>8,}  NPU/Vela {r['ratio'] or 0:5.2f}  "
              f"({r['wall']:.1f} s)", flush=True)
    ratios = [r["ratio"] for r in rows if r["ratio"]]
    report = table(rows)
    summary = (f"NPU / Vela cycle ratio: {min(ratios):.2f} .. {max(ratios):.2f}; "
               f"layers at >= 80% MAC utilisation: {sum(r['util'] >= 0.8 for r in rows)} of {len(rows)}")
    print()
    print(report)
    print(summary)
    if args.write:
        body = ("## NPU utilisation\n\n`benchmarks/npu_perf.py`: single-layer int8 models (random weights, seed 0), "
                "Vela 5.2 compiled, run bit-exact against LiteRT on the Verilated NPU (external memory: latency 8, "
                "8 bytes/cycle). NPU cycles are kick to done (`run_on_npu` layer cycles, 32-cycle resolution); "
                "utilisation = useful MACs / (cycles x MACs per cycle).\n\n" + report + "\n\n" + summary
                + "\n\n" + LIMITS)
        write_section(args.write, "npu_perf", body)


if __name__ == "__main__":
    main()
