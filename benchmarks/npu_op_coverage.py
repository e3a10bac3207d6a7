"""NPU operator coverage matrix: every TFLite operator Vela 5.2 supports on the Ethos-U55 as a small single-operator
model (int8, and int16 / uint8 where Vela takes them; ``models/npu/op_matrix.py``), compiled by Vela, run on the
Verilated NPU and compared bit-exactly with LiteRT's reference kernels (``drivers/npu_coverage.py``).

    .venv/bin/python benchmarks/npu_op_coverage.py [--configs u55-128] [--only NAME,...] [--write BENCHMARKS.md]
"""
import argparse
import time

from report import write_section

from drivers.npu_coverage import run_row
from drivers.transport import SimDevice
from models.npu.op_matrix import ROWS

#: Why the rows that do not pass do not (what was found; the table's last column).
NOTES = {
    "fully_connected_int16_40x12_relu6": "Vela's int16 FC multiplier is the 16-bit one; LiteRT's int16 FC uses the "
                                         "32-bit one: ~10% of outputs off by one for arbitrary scales (these inputs "
                                         "may miss it; tb/rtl/npu/test_int16_mac.py)",
    "unidirectional_sequence_lstm_int16_3x8_8": "no reference (LiteRT's int16 LSTM wants float biases); the NPU "
                                                "stops at its first gate's int16 ADD (scale mode 0 with operand "
                                                "scales: not implemented)",
    "transpose_uint8_hw": "Vela writes the uint8 TRANSPOSE as an S8 identity POOL (zero points 128, clamp 0..127): "
                          "inputs >= 128 become 0 on the NPU and in the golden model alike",
    "relu_n1_to_1_int16_4x5x6": "LiteRT has no int16 kernel",
    "relu_0_to_1_int16_4x5x6": "LiteRT has no int16 kernel",
}


def measure(configs, only=None):
    results = []
    for config in configs:
        with SimDevice.open("npu", config) as dev:
            for row in ROWS:
                if only and row.name not in only:
                    continue
                t0 = time.perf_counter()
                r = run_row(dev, config, row)
                print(f"{config} {row.name}: {r.result} {r.detail} [{r.npu_ops}] {time.perf_counter() - t0:.1f}s",
                      flush=True)
                results.append(r)
    return results


def table(results) -> str:
    lines = ["| config | operator | precision | model | NPU ops Vela emitted | result | owner / note |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        result = r.result + (f": {r.detail}" if r.detail else "")
        lines.append(f"| {r.config} | {r.row.op} | {r.row.precision} | {r.row.variant} | {r.npu_ops or '-'} | "
                     f"{result} | {' '.join(filter(None, (r.row.owner, NOTES.get(r.row.name, ''))))} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="u55-128")
    ap.add_argument("--only", default="", help="comma-separated row names (default: all)")
    ap.add_argument("--write", metavar="BENCHMARKS.md")
    args = ap.parse_args()
    t0 = time.perf_counter()
    results = measure(args.configs.split(","), set(filter(None, args.only.split(","))))
    n_ok = sum(r.passed for r in results)
    body = "\n".join([
        "## NPU operator coverage vs LiteRT (`npu_op_coverage`)", "",
        f"`python benchmarks/npu_op_coverage.py --configs {args.configs} --write BENCHMARKS.md` "
        f"({time.perf_counter() - t0:.0f} s wall with Vela's compiles cached; about 2 min without). One "
        "single-operator model per TFLite operator in Vela 5.2's "
        "Ethos-U55 supported-operators list (`TFLiteSupportedOperators.supported_operators`), built without "
        "TensorFlow (`models/npu/op_matrix.py`), two random full-range inputs and one all-maximum input each, "
        "every output compared byte for byte with LiteRT's reference kernels. UNSUPPORTED names the NPU error, "
        "the stream offset where the controller stopped and the last ops kicked before it; CPU fallback gives "
        "Vela's reason. Owner: another work package's operator.", "",
        f"{n_ok} of {len(results)} rows bit-exact.", "",
        "Every row not listed as open in `tb/rtl/npu/test_op_coverage.py` is a test: `pytest "
        "tb/rtl/npu/test_op_coverage.py` (default tier: the operators no other default-tier test runs, u55-128, and "
        "ARG_MAX / MEAN 80x64x2 / RESIZE_BILINEAR on u55-32 too; `-m slow`: every passing row on u55-32/64/128/256, "
        "all passed on 2026-12-07 before those three joined; they are bit-exact on all four configs). ARG_MAX runs "
        "since the weight path carries 9-bit weights (its depthwise multiplies by uint8 128; the decoder refused it as "
        "out of int8 range), MEAN over 80x64 since a depthwise whose 64x64 kernel does not fit the line buffer's rows "
        "or the brick ring runs in 8x8 sub-kernel passes with on-chip partial sums (72,538 cycles on u55-128), "
        "RESIZE_BILINEAR since the vector unit's POOL reads a NEAREST-upscaled IFM; NPU cycles of what ran before are "
        "unchanged (`rampart run npu` digits-pool 5,405 / 6,565 and kws-dscnn 84,640 / 125,745 cycles on u55-128 / "
        "u55-64, per layer identical before and after). MEAN runs since its depthwise may write a 32-bit OFM (the MAC "
        "path writes S8 / S16 / S32); before that every MEAN row stopped with COMPUTE_FAULT (UNSUPPORTED) at its "
        "DEPTHWISE. NPU cycles of ops that ran before are unchanged (conv, depthwise, FC, pooling, digits-pool 5,405 "
        "and ResNet-8 215,919 cycles on u55-128, identical to the branch point). uint8 CONV_2D / DEPTHWISE_CONV_2D / "
        "FULLY_CONNECTED run since the MAC array zero-extends a U8 IFM and the output unit clamps a U8 OFM to 0..255, "
        "dilation-2 convs since the issue sequencer reads dilated taps (KERNEL_STRIDE dilation bits; 4-tap "
        "sub-kernels); before, all five rows stopped with COMPUTE_FAULT (UNSUPPORTED). They and "
        "`tb/rtl/npu/test_mac_uint8.py` / `test_dilation.py` were bit-exact on u55-32/64/128/256 on 2026-12-08; NPU "
        "cycles of what ran before unchanged (digits-pool 5,405 on u55-128, kws-dscnn 125,745 on u55-64, per layer "
        "identical).", "",
        table(results),
    ])
    print(body)
    if args.write:
        write_section(args.write, "npu_op_coverage", body)


if __name__ == "__main__":
    main()
