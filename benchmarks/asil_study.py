"""The BENCHMARKS sections ``asil_baseline`` and ``asil_protected`` from a finished (or partly finished) ``rampart fi
study`` folder: per config x network the baseline campaign's SPFM / LFM / PMHF (conservative end, point value in
brackets) with ASIL-D pass/fail, the optimiser's plan, its area against lockstep, and the verification campaign.

Metrics are recomputed from the pairs' campaign databases (``faultinj.protection.campaign_assessment``, the function
the study's verdicts use: per-block intervals propagated to the design by stratified bounds), so point values sit
beside the conservative ones; a pair not done is listed with its status.

    .venv/bin/python benchmarks/asil_study.py bench-out/asil-study --write BENCHMARKS.md
"""
import argparse
import json
from pathlib import Path

from benchmarks.report import write_section
from faultinj.campaign import campaign_counts
from faultinj.protection import campaign_assessment
from faultinj.study import _verdict


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:.2f} %"


def _fails(c: dict) -> str:
    bad = [k for k, ok in (("SPFM", c["spfm"] >= 0.99), ("LFM", c["lfm"] >= 0.90), ("PMHF", c["pmhf"] < 10))
           if not ok]
    return "pass" if not bad else "fail: " + ", ".join(bad)


def _metrics(db: Path, plan: dict | None, confidence: float) -> dict:
    m = campaign_assessment(db, plan, confidence=confidence).design
    counts = {o.name.lower(): n for o, n in campaign_counts(db).items()}
    cons, point = m.conservative, m.point
    return {"cons": {"spfm": cons.spfm, "lfm": cons.lfm, "pmhf": cons.pmhf},
            "point": {"spfm": point.spfm, "lfm": point.lfm, "pmhf": point.pmhf}, "counts": counts,
            "n": sum(counts.values())}


def _cell(m: dict) -> str:
    c, p = m["cons"], m["point"]
    return (f"{_pct(c['spfm'])} ({_pct(p['spfm'])}) | {_pct(c['lfm'])} ({_pct(p['lfm'])}) | "
            f"{c['pmhf']:.3g} ({p['pmhf']:.3g})")


def _last_verify(pair_dir: Path, plan_doc: dict) -> Path | None:
    """The database of the pair's last verification campaign (stored relative to where the study ran)."""
    db = (plan_doc.get("verified") or {}).get("db")
    return pair_dir / Path(db).name if db and (pair_dir / Path(db).name).exists() else None


def _complete(db: Path, samples: int | None) -> bool:
    """The campaign at ``db`` exists and holds all its injections (a baseline the study or a helper finished)."""
    if not db.exists() or not samples:
        return False
    return campaign_counts(db) and sum(campaign_counts(db).values()) >= samples


def _pairs(study: Path) -> list[dict]:
    """Every config x network of the study (the order of its command), with the pair's study.json entry or
    ``not reached``."""
    doc = json.loads((study / "study.json").read_text())
    known = {(p["config"], p["network"]): p for p in doc["pairs"]}
    return [{"dir": f"{c}/{n}", **known.get((c, n), {"config": c, "network": n, "status": "not reached"}),
             "_samples": doc["parameters"]["samples"]} for c in doc["configs"] for n in doc["networks"]]


def rows(studies: list[Path], confidence: float) -> tuple[list[str], list[str]]:
    base = ["| config | network | injections | SPFM | LFM | PMHF (FIT) | ASIL-D | highest | latent | delayed | "
            "study pair |", "|---|---|---:|---:|---:|---:|---|---|---:|---:|---|"]
    prot = ["| config | network | plan (blocks not listed: none) | plan area overhead (NAND2 GE) | lockstep overhead | "
            "verification injections | SPFM | LFM | PMHF (FIT) | ASIL-D |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    # a pair another folder got further with (e.g. a second study process on other configs) replaces the first
    # folder's "not reached" entry
    chosen: dict = {}
    for study in studies:
        for p in _pairs(study):
            key = (p["config"], p["network"])
            if key not in chosen or chosen[key][1]["status"] == "not reached":
                chosen[key] = (study, p)
    for study, p in chosen.values():
        pair_dir = study / p["dir"]
        status = p.get("status")
        state = "done" if status == "done" else f"{status}" + (f": {p['error']}" if p.get("error") else "")
        if status == "done" or _complete(pair_dir / "baseline.db", p["_samples"]):
            b = _metrics(pair_dir / "baseline.db", None, confidence)
            highest = _verdict(b["cons"], "ASIL-D")["highest"]
            base.append(f"| {p['config']} | {p['network']} | {b['n']:,} | {_cell(b)} | {_fails(b['cons'])} | "
                        f"{highest or 'none'} | {b['counts'].get('latent', 0)} | "
                        f"{b['counts'].get('delayed', 0)} | {state} |")
        else:
            base.append(f"| {p['config']} | {p['network']} | | | | | | | | | {state} |")
        if status != "done":
            continue
        plan = {k: v for k, v in (p.get("plan") or {}).items() if v != "none"}
        plan_text = ", ".join(f"{o} {b_}" for b_, o in sorted(plan.items())) or "(none: no feasible plan)"
        plan_doc = json.loads((pair_dir / "plan.json").read_text())
        vdb = _last_verify(pair_dir, plan_doc)
        area = "-" if p.get("plan_overhead") is None else f"{p['plan_overhead']:+.1%}"
        lock = "-" if p.get("lockstep_overhead") is None else f"{p['lockstep_overhead']:+.1%}"
        if vdb is None:
            prot.append(f"| {p['config']} | {p['network']} | {plan_text} | {area} | {lock} | - | - | - | - | "
                        "not verified |")
            continue
        v = _metrics(vdb, p.get("plan"), confidence)
        prot.append(f"| {p['config']} | {p['network']} | {plan_text} | {area} | {lock} | {v['n']:,} | "
                    f"{_cell(v)} | {_fails(v['cons'])} |")
    return base, prot


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study", type=Path, nargs="+", help="study folders (their pairs in order)")
    ap.add_argument("--confidence", type=float, default=0.95)
    ap.add_argument("--write", type=Path, default=None)
    ap.add_argument("--command", default=None, help="the study's command line (default: study.json's)")
    ap.add_argument("--notes-baseline", type=Path, default=None, help="markdown appended to asil_baseline")
    ap.add_argument("--notes-protected", type=Path, default=None, help="markdown appended to asil_protected")
    args = ap.parse_args()
    base, prot = rows(args.study, args.confidence)
    print("\n".join(base + [""] + prot))
    if args.write:
        cmd = args.command or json.loads((args.study[0] / "study.json").read_text()).get("command")
        notes = {k: (f.read_text().strip() if f else "") for k, f in (("baseline", args.notes_baseline),
                                                                        ("protected", args.notes_protected))}
        head = (f"Command: `{cmd}`\n\nTable: `.venv/bin/python benchmarks/asil_study.py "
                f"{' '.join(map(str, args.study))} --write "
                f"{args.write}`. Conservative end of {args.confidence:.0%} intervals, per-block intervals "
                "propagated to the design by stratified bounds (`faultinj.assessment`; point value in brackets).\n")
        write_section(args.write, "asil_baseline", "\n".join(
            ["## ASIL baseline (asil_baseline)", "", head, *base, "", notes["baseline"]]).rstrip())
        write_section(args.write, "asil_protected", "\n".join(
            ["## ASIL-D by selective protection, verified by re-injection (asil_protected)", "", head, *prot, "",
             notes["protected"]]).rstrip())


if __name__ == "__main__":
    main()
