"""ECP5 area of a protected NPU against the unprotected one and dual-core lockstep (Yosys ``synth_ecp5``, hierarchy
kept, :func:`sim.area.measure_ecp5`), beside the NAND2-equivalent figures of the same pair's study (``area.json``,
:mod:`sim.area`). The NPU's external-memory model is scaffolding and left out of every count.

The plan comes from a study pair's ``plan.json`` (the plan its verification campaign ran). Syntheses are cached by
netlist, so a rerun only prints. ``--blocks-only``: only the plan's protected blocks, each instance synthesised alone
unprotected and protected (the per-block ECP5 cost of the plan, without the whole chip: minutes instead of hours).

    nice -n 10 .venv/bin/python benchmarks/asil_ecp5.py --pair bench-out/asil-study/u55-32/digits-pool \\
        --write BENCHMARKS.md
"""
import argparse
import json
import time
from pathlib import Path

from benchmarks.report import write_section
from faultinj.protection import protected_config
from faultinj.study import _verified_plan
from rtl.designs import get_design
from sim.area import measure_ecp5

SECTION = "asil_ecp5"


def measure(config_name: str, plan: dict) -> dict:
    entry = get_design("npu")
    config = entry.config(config_name)
    rows = {}
    for name, p in (("unprotected", {}), ("protected", plan), ("lockstep", {"*": "lockstep"})):
        start = time.monotonic()
        area = measure_ecp5("npu", protected_config("npu", config, p))
        rows[name] = {**area.summary(exclude=entry.scaffolding), "seconds": round(time.monotonic() - start)}
        print(name, rows[name], flush=True)
    return rows


def measure_blocks(config_name: str, plan: dict) -> list[dict]:
    """Per protected block of ``plan``: its instances synthesised alone, unprotected and protected."""
    entry = get_design("npu")
    config = entry.config(config_name)
    out = []
    for block, option in sorted(plan.items()):
        if option in ("none", "hardened"):
            continue
        row = {"block": block, "option": option}
        for name, p in (("unprotected", {}), ("protected", {block: option})):
            total = {"lut": 0, "ff": 0, "lutram": 0, "bram": 0, "dsp": 0}
            for path in (k for k, v in entry.blocks.items() if v == block):
                s = measure_ecp5("npu", protected_config("npu", config, p), instance=path).summary()
                total = {k: total[k] + s[k] for k in total}
            row[name] = total
        print(row, flush=True)
        out.append(row)
    return out


def block_table(config_name: str, rows: list[dict]) -> list[str]:
    lines = [f"NPU `{config_name}`, the plan's protected blocks, each instance synthesised alone (`synth_ecp5 "
             "-noflatten`, top = the instance):", "",
             "| block | option | LUT4 (+2 per CCU2C) | FF | LUT-RAM | BRAM (DP16KD) | LUT added | FF added | "
             "BRAM added |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        u, p = r["unprotected"], r["protected"]
        lines.append(f"| {r['block']} | {r['option']} | {u['lut']:,} -> {p['lut']:,} | {u['ff']:,} -> {p['ff']:,} | "
                     f"{u['lutram']:,} -> {p['lutram']:,} | {u['bram']:,} -> {p['bram']:,} | "
                     f"{p['lut'] - u['lut']:+,} | {p['ff'] - u['ff']:+,} | {p['bram'] - u['bram']:+,} |")
    return lines


def _ge(pair: Path) -> dict:
    plan = json.loads((pair / "plan.json").read_text())
    s = plan.get("summary", {})
    return {k: s.get(f"{k}_ge") for k in ("unprotected", "protected", "lockstep")}


def table(config_name: str, plan: dict, rows: dict, ge: dict) -> list[str]:
    base = rows["unprotected"]
    lines = [f"NPU `{config_name}`, plan " + ", ".join(f"{o} on {b}" for b, o in sorted(plan.items()) if o != "none"),
             "",
             "| design | LUT4 (+2 per CCU2C) | FF | LUT-RAM (DPR16X4) | BRAM (DP16KD) | DSP | LUT overhead | "
             "FF overhead | NAND2 GE (sim.area, no ABC) | GE overhead |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in ("unprotected", "protected", "lockstep"):
        r, g = rows[name], ge.get(name)
        over = "-" if name == "unprotected" else f"{r['lut'] / base['lut'] - 1:+.1%}"
        ff_over = "-" if name == "unprotected" else f"{r['ff'] / base['ff'] - 1:+.1%}"
        g_over = "-" if name == "unprotected" or not g else f"{g / ge['unprotected'] - 1:+.1%}"
        lines.append(f"| {name} | {r['lut']:,} | {r['ff']:,} | {r['lutram']:,} | {r['bram']:,} | {r['dsp']:,} | "
                     f"{over} | {ff_over} | {'-' if not g else f'{g:,.0f}'} | {g_over} |")
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pair", type=Path, required=True, help="a study pair folder (<study>/<config>/<network>)")
    ap.add_argument("--plan", default=None, help="instead of the pair's plan.json: a JSON {block: option}")
    ap.add_argument("--write", type=Path, default=None, help="write the section into this BENCHMARKS.md")
    ap.add_argument("--blocks-only", action="store_true", help="only the plan's protected blocks, each alone")
    args = ap.parse_args()
    config_name = args.pair.parent.name
    plan = json.loads(args.plan) if args.plan else _verified_plan(json.loads((args.pair / "plan.json").read_text()))
    if args.blocks_only:
        rows = measure_blocks(config_name, plan)
        lines = block_table(config_name, rows)
    else:
        rows = measure(config_name, plan)
        lines = table(config_name, plan, rows, _ge(args.pair))
    print("\n".join(lines))
    (args.pair / "ecp5.json").write_text(json.dumps({"plan": plan, "rows": rows}, indent=1) + "\n")
    if args.write:
        cmd = (f"nice -n 10 .venv/bin/python benchmarks/asil_ecp5.py --pair {args.pair} "
               f"{'--blocks-only ' if args.blocks_only else ''}" + (f"--plan '{args.plan}' " if args.plan else "")
               + f"--write {args.write}")
        write_section(args.write, SECTION, "\n".join([f"## ASIL protection area on ECP5 ({SECTION})", "",
                                                      f"Command: `{cmd}`", "", *lines]))


if __name__ == "__main__":
    main()
