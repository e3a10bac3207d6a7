"""NPU cycles of split ops (OFM blocks whose weights exceed the brick ring) and large kernels vs Vela's estimate.

    .venv/bin/python benchmarks/npu_big_ops.py [--configs u55-128,...] [--network u55-128,...] [--write BENCHMARKS.md]

Each row is one single-layer int8 model (or the autoencoder network), Vela-compiled for the config and run on the
Verilated NPU (``drivers.npu.run_on_npu``; NPU cycles kick to done, 32-cycle resolution), next to Vela's own
per-layer estimate. Every run is checked: convolutions bit-exact against LiteRT's reference kernels; a
FULLY_CONNECTED against the double-rounding chain its stream asks for (models/npu/SPEC.md section 4, as the tests
do), so a fast wrong answer cannot pass as a result. "split" says whether the layer's OFM block runs in IFM-depth
passes on that config.
"""
import argparse
import time

import numpy as np
from report import write_section

from drivers.npu import run_on_npu
from models.npu import cmdstream as cs
from models.npu import requant, vela
from models.npu import tflite_builder as tb
from models.npu.networks import network
from models.npu.reference import ReferenceModel
from rtl.npu.compute import WEIGHT_BUFFER_BYTES
from rtl.npu.config import PRESETS

CASES = (
    ("fc 640->128", tb.FullyConnected(128), (640,)),
    ("fc 1000->60", tb.FullyConnected(60), (1000,)),
    ("conv3x3 4x4x120->96", tb.Conv2D(96), (4, 4, 120)),
    ("conv3x3 5x5x120->96", tb.Conv2D(96), (5, 5, 120)),
    ("conv10x4 s2 49x10x1->64 (KWS)", tb.Conv2D(64, kernel=(10, 4), stride=(2, 2)), (49, 10, 1)),
    ("conv9x9 12x12x3->8", tb.Conv2D(8, kernel=(9, 9)), (12, 12, 3)),
    ("dw11x11 13x12x10", tb.DepthwiseConv2D((11, 11)), (13, 12, 10)),
)


def _fc_double_rounded(layer, x: np.ndarray) -> np.ndarray:
    """One FULLY_CONNECTED layer, Vela's FC scales, the NPU's double rounding (as tb/models/npu/test_networks)."""
    scale, shift = zip(*(requant.quantise_scale(float(np.float64(np.float32(layer.input_scale) * ws)
                                                      / np.float64(layer.output_scale)))
                         for ws in layer.weight_scales), strict=True)
    lo = -128 if layer.spec.activation == "NONE" else layer.output_zero_point
    acc = requant.layer_accumulators(layer, x)
    return requant.requantize(acc, layer.bias, scale, shift, layer.output_zero_point, lo, 127)


def _split(data: bytes, config: str) -> bool:
    """Any kernel op's first OFM block has more decoded weights than the brick ring (npu-weights.md 3.2)."""
    art = vela.compile_cached(data, config)
    oub = PRESETS[config].ublock_d
    return any(cs.block_weight_bytes(k, oub) > 2 * WEIGHT_BUFFER_BYTES for k in cs.kicks(art.commands())
               if k.name == "NPU_OP_CONV")


def measure(name: str, model: tb.TfliteModel, config: str) -> dict:
    t0 = time.perf_counter()
    run = run_on_npu(model, config, seed=1)
    wall = time.perf_counter() - t0
    if isinstance(model.layers[0].spec, tb.FullyConnected):
        want = _fc_double_rounded(model.layers[0], run.input).reshape(-1)
    else:
        want = ReferenceModel(model).run(run.input).reshape(-1)
    np.testing.assert_array_equal(run.output.reshape(-1), want, err_msg=f"{name} on {config}")
    cycles = run.cycles - run.kicks[0].issued_at     # from the first kick to done
    vela_cycles = sum(layer.vela_cycles or 0 for layer in run.layers)
    return dict(config=config, layer=name, kicks=len(run.kicks), split=_split(model.data, config), cycles=cycles,
                vela=vela_cycles, ratio=cycles / vela_cycles if vela_cycles else None, wall=wall)


def measure_network(name: str, config: str) -> dict:
    model = network(name)
    t0 = time.perf_counter()
    run = run_on_npu(model.data, config, seed=1)
    wall = time.perf_counter() - t0
    want = run.inputs[0]
    for layer in model.layers:    # the autoencoder: an FC-only chain
        want = _fc_double_rounded(layer, want)
    np.testing.assert_array_equal(run.outputs[0].reshape(-1), want.reshape(-1), err_msg=f"{name} on {config}")
    vela_cycles = sum(layer.vela_cycles or 0 for layer in run.layers)
    return dict(config=config, layer=f"{name} (whole network)", kicks=len(run.kicks),
                split=_split(model.data, config), cycles=run.cycles, vela=vela_cycles,
                ratio=run.cycles / vela_cycles if vela_cycles else None, wall=wall)


def table(rows: list[dict]) -> str:
    lines = ["| config | layer | kicks | split | NPU cycles | Vela cycles | NPU / Vela |",
             "|---|---|---:|---|---:|---:|---:|"]
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if r["ratio"] else "-"
        lines.append(f"| {r['config']} | {r['layer']} | {r['kicks']} | {'yes' if r['split'] else 'no'} | "
                     f"{r['cycles']:,} | {r['vela']:,} | {ratio} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", default="u55-32,u55-64,u55-128,u55-256")
    parser.add_argument("--network", default="", metavar="CONFIGS",
                        help="also the autoencoder network, whole, on these configs")
    parser.add_argument("--write", metavar="BENCHMARKS.md", help="write the 'npu_big_ops' section there")
    args = parser.parse_args()
    rows = []
    for config in args.configs.split(","):
        for name, layer, shape in CASES:
            rows.append(measure(name, tb.single_layer(layer, shape, seed=0), config))
            print(rows[-1], flush=True)
    for config in filter(None, args.network.split(",")):
        rows.append(measure_network("autoencoder", config))
        print(rows[-1], flush=True)
    print(table(rows))
    if args.write:
        body = ("## NPU split ops and large kernels (issue 13, part 3)\n\n"
                f"`PYTHONPATH=$PWD .venv/bin/python benchmarks/npu_big_ops.py --configs {args.configs} "
                f"--network {args.network} --write BENCHMARKS.md`: "
                + __doc__.split("\n\n", 2)[2].replace("\n", " ").strip() + "\n\n" + table(rows))
        write_section(args.write, "npu_big_ops", body)


if __name__ == "__main__":
    main()
