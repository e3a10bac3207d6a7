"""ASIL baseline table: the unprotected NPU's ISO 26262-5 metrics per config x network, from one baseline campaign
each (liveness on, second inference on: the study's campaign), with ASIL-D pass/fail on the conservative bounds.

Resumable: every pair's campaign is its own database under ``--out`` (a killed run continues where it stopped) and
the table is rewritten after every pair. Built-in networks run whole, as in ``rampart fi study``.

    nice -n 19 .venv/bin/python benchmarks/asil_baseline.py --out bench-out/asil-baseline \\
        --configs u55-32,u55-64,u55-128,u55-256 --networks kws-dscnn,resnet8,autoencoder --samples 2000 \\
        --write BENCHMARKS.md
"""
import argparse
import json
import time
from pathlib import Path

from faultinj.campaign import campaign_counts, run_campaign
from faultinj.protection import campaign_metrics
from faultinj.study import StudyRequest, _campaign_spec, _verdict

SECTION = "asil_baseline"


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f} %"


def run_pair(out: Path, req: StudyRequest, config: str, network: str, workers: int) -> dict:
    spec, note = _campaign_spec(req, out, config, network)
    db = out / config / f"{network}.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    run_campaign(db, req.design, config, spec.workload, samples=spec.samples, seed=req.seed, strata="block",
                 workers=workers, **dict(spec.options))
    metrics = campaign_metrics(db, confidence=req.confidence)
    counts = {o.name.lower(): n for o, n in campaign_counts(db).items()}
    cons, point = metrics.conservative, metrics.point
    verdict = _verdict({"spfm": cons.spfm, "lfm": cons.lfm, "pmhf": cons.pmhf}, "ASIL-D")
    return {"config": config, "network": network, "body": bool(note), "samples": sum(counts.values()),
            "counts": counts, "seconds_this_run": round(time.monotonic() - start, 1),
            "point": {"spfm": point.spfm, "lfm": point.lfm, "pmhf": point.pmhf},
            "conservative": {"spfm": cons.spfm, "lfm": cons.lfm, "pmhf": cons.pmhf},
            "asil_d": verdict.get("D", False), "highest": verdict.get("highest")}


def table(rows: list[dict], confidence: float) -> list[str]:
    lines = [f"Conservative end of {confidence:.0%} intervals (per-block Clopper-Pearson upper bounds of the residual "
             "and latent fractions, FIT-weighted; faultinj.protection.campaign_metrics); point values in brackets. "
             "Campaign: liveness analysis + second inference, strata = block.", "",
             "| config | network | injections | SPFM | LFM | PMHF (FIT) | ASIL-D | highest | latent | delayed |",
             "|---|---|---:|---:|---:|---:|---|---|---:|---:|"]
    for r in rows:
        c, p, n = r["conservative"], r["point"], r["counts"]
        net = r["network"] + (" (body)" if r["body"] else "")
        fails = [k for k, ok in (("SPFM", c["spfm"] >= 0.99), ("LFM", c["lfm"] >= 0.90), ("PMHF", c["pmhf"] < 10))
                 if not ok]
        lines.append(f"| {r['config']} | {net} | {r['samples']:,} | {_pct(c['spfm'])} ({_pct(p['spfm'])}) | "
                     f"{_pct(c['lfm'])} ({_pct(p['lfm'])}) | {c['pmhf']:.3g} ({p['pmhf']:.3g}) | "
                     f"{'pass' if r['asil_d'] else 'fail: ' + ', '.join(fails)} | {r['highest'] or 'none'} | "
                     f"{n.get('latent', 0)} | {n.get('delayed', 0)} |")
    return lines


def write_section(path: Path, lines: list[str], command: str):
    body = [f"<!-- {SECTION}:begin -->", f"## ASIL baseline ({SECTION})", "", f"Command: `{command}`", "", *lines,
            f"<!-- {SECTION}:end -->"]
    text = path.read_text()
    begin, end = f"<!-- {SECTION}:begin -->", f"<!-- {SECTION}:end -->"
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + "\n".join(body) + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(body) + "\n"
    path.write_text(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--configs", default="u55-32,u55-64,u55-128,u55-256")
    parser.add_argument("--networks", default="kws-dscnn,resnet8,autoencoder")
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--write", help="BENCHMARKS.md to update (section asil_baseline)")
    args = parser.parse_args()
    configs, networks = args.configs.split(","), args.networks.split(",")
    req = StudyRequest("npu", tuple(configs), tuple(networks), samples=args.samples, confidence=args.confidence,
                       liveness=True, second=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    state = out / "baseline.json"
    rows = []
    for config in configs:
        for network in networks:
            try:
                rows.append(run_pair(out, req, config, network, args.workers))
            except Exception as e:   # noqa: BLE001 -- one pair's failure is recorded, the table goes on
                print(f"{config} / {network}: failed: {type(e).__name__}: {e}", flush=True)
                continue
            state.write_text(json.dumps(rows, indent=1) + "\n")
            print("\n".join(table(rows, args.confidence)[-1:]), flush=True)
            if args.write:
                command = ("nice -n 19 .venv/bin/python benchmarks/asil_baseline.py --out " + args.out +
                           f" --configs {args.configs} --networks {args.networks} --samples {args.samples} "
                           f"--write {args.write}")
                write_section(Path(args.write), table(rows, args.confidence), command)


if __name__ == "__main__":
    main()
