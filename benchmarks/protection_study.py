"""Selective protection end to end on one design: baseline campaign, measured areas, optimal plan for a target
ASIL, protected rebuild, verification by re-injection (faultinj.protection.protect_design); prints the summary.

    .venv/bin/python benchmarks/protection_study.py --design mac_array --config 4x4 --workload mac_array_matmul \\
        --out bench-out/protect-mac4x4 --baseline 30000 --verify 30000
"""
import argparse
import json
import time

from faultinj.protection import protect_design


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--design", default="mac_array")
    parser.add_argument("--config", default="4x4")
    parser.add_argument("--workload", default="mac_array_matmul")
    parser.add_argument("--out", required=True)
    parser.add_argument("--target", default="ASIL-D")
    parser.add_argument("--baseline", type=int, default=30000, help="baseline campaign injections")
    parser.add_argument("--verify", type=int, default=30000, help="verification campaign injections")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--no-abc", action="store_true", help="area without ABC (large designs)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-tmr", action="store_true", help="consider none / hardened / dmr only")
    parser.add_argument("--sum-protected-area", action="store_true",
                        help="protected area = sum of the blocks' measured areas (no extra synthesis)")
    args = parser.parse_args()
    start = time.monotonic()
    result = protect_design(args.out, args.design, args.config, args.workload, target=args.target,
                            baseline_samples=args.baseline, verify_samples=args.verify, workers=args.workers,
                            area_abc=not args.no_abc, max_rounds=args.rounds,
                            options=("none", "hardened", "dmr") if args.no_tmr else ("none", "hardened", "dmr", "tmr"),
                            measure_protected=not args.sum_protected_area)
    result["seconds"] = round(time.monotonic() - start, 1)
    print(json.dumps(result, indent=1, default=str))


if __name__ == "__main__":
    main()
