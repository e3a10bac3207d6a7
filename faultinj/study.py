"""The ASIL study (``rampart fi study``): for every config x network, a baseline campaign, its ISO 26262 metrics, the
optimised protection plan, the protected rebuild and its verification campaign (:func:`faultinj.protection.
protect_design`), a per-pair report, and one summary (``study.json`` and ``study.md`` in the output folder).

Two-inference campaigns (the NPU's default) run on for one scrub pass after the second inference
(:func:`scrub_tail`), so a memory scrubber's checks land inside the observed run.

Resumable: ``study.json`` is rewritten after every pair; a pair already ``done`` with the same parameters is
skipped, and an interrupted pair resumes from its campaign databases. A pair that cannot run (e.g. a network the
NPU does not fit or support yet) is recorded as ``failed`` with the reason, the study goes on, and a later run of the
study tries it again.

Layout: ``<out>/<config>/<network>/`` holds ``baseline.db``, ``verify*.db``, ``plan.json``, ``area.json``,
``pareto.json/png`` and ``report/`` (the baseline campaign's report with the protection plan and the Pareto
front); ``<out>/models/`` the .tflite files of built-in networks.
"""
from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from base import RampartError

__all__ = ["StudyRequest", "run_study", "plan_extras", "QUICK", "QUICK_SAMPLES", "STUDY_SCHEMA_VERSION",
           "quick_request",
           "scrub_tail", "parse_list", "describe", "study_command", "check_request"]

STUDY_SCHEMA_VERSION = 1

#: The ``--quick`` preset per design (what is not given on the command line): one small config, its small built-in
#: workload, a few hundred injections, no TMR (parity / SECDED on memories), one verification round, areas without
#: ABC.
QUICK = {"mac_array": {"configs": ("4x4",), "networks": ("mac_array_matmul",)},
         "npu": {"configs": ("u55-32",), "networks": ("npu_conv",)}}
QUICK_SAMPLES = 300


@dataclass(frozen=True)
class StudyRequest:
    """A checked study: every (config, network) pair is run with the same campaign parameters."""

    design: str
    configs: tuple[str, ...]
    networks: tuple[str, ...]          # workload names, built-in network names or .tflite paths
    target: str = "ASIL-D"
    samples: int | None = None
    margin: float | None = None
    confidence: float = 0.95
    liveness: bool = True
    second: bool | None = None         # None: the design's default (:func:`default_second`)
    seed: int = 0
    options: tuple[str, ...] = ("none", "hardened", "dmr", "tmr", "parity", "secded")
    max_rounds: int = 3
    area_abc: bool = True
    measure_protected: bool = True
    quick: bool = False                # made by :func:`quick_request` (its command line says ``--quick``)

    def __post_init__(self):
        if self.second is None:
            object.__setattr__(self, "second", default_second(self.design))

    def parameters(self) -> dict:
        """What makes two runs of a pair the same work (a pair done with other parameters is redone)."""
        return {"target": self.target, "samples": self.samples, "margin": self.margin,
                "confidence": self.confidence, "liveness": self.liveness, "second": self.second, "seed": self.seed,
                "options": list(self.options), "max_rounds": self.max_rounds, "scrub_tail": self.second}


def default_second(design: str) -> bool:
    """Whether a study of ``design`` runs the second inference by default: yes where the design runs networks (the
    NPU), so faults left in the state after an inference separate into safe (overwritten), delayed (the next
    inference wrong) and truly latent ones, as the part runs in the field."""
    from rtl.designs import get_design

    try:
        return get_design(design).model_workload is not None
    except RampartError:
        return False


def check_request(req: StudyRequest) -> StudyRequest:
    """Refuse a bad request before any work (one-line :class:`RampartError`s)."""
    from faultinj.protection import _asil
    from rtl.designs import get_design

    entry = get_design(req.design)
    if not req.configs or not req.networks:
        raise RampartError("give at least one config and one network")
    for c in req.configs:
        entry.config(c)
    if (req.samples is None) == (req.margin is None):
        raise RampartError("give exactly one of --samples and --margin")
    _asil(req.target)
    if req.second and entry.model_workload is None:
        raise RampartError(f"--second-inference is for the NPU's network workloads, not {req.design}")
    for n in req.networks:
        _network_kind(req.design, n)
    return req


def _network_kind(design: str, name: str) -> str:
    """``workload``, ``builtin`` (a built-in NPU network) or ``model`` (a .tflite path); else a one-line error."""
    from faultinj.workload import get_workload, workloads

    if name.endswith(".tflite"):
        from rtl.designs import get_design

        if get_design(design).model_workload is None:
            raise RampartError(f"design {design} does not run models (a .tflite network is for the NPU)")
        if not Path(name).is_file():
            raise RampartError(f"model not found: {name}")
        return "model"
    if name in workloads():
        if get_workload(name)[0] != design:
            raise RampartError(f"workload {name} is for {get_workload(name)[0]}, not {design}")
        return "workload"
    if design == "npu":
        from models.npu.networks import network_names

        if name in network_names():
            return "builtin"
        known = ", ".join(sorted([w for w, (d, _) in workloads().items() if d == design] + list(network_names())))
    else:
        known = ", ".join(sorted(w for w, (d, _) in workloads().items() if d == design))
    raise RampartError(f"unknown network {name!r} for {design} (known: {known}; or a .tflite file)")


def _pair_dir_name(network: str) -> str:
    return Path(network).stem if network.endswith(".tflite") else network


def _campaign_spec(req: StudyRequest, out: Path, config: str, network: str):
    """(spec, note): the campaign of this pair (a built-in network's .tflite is written to ``out/models``)."""
    from faultinj.spec import campaign_spec

    kind = _network_kind(req.design, network)
    note = ""
    model = workload = None
    if kind == "workload":
        workload = network
    elif kind == "model":
        model = network
    else:
        from models.npu.networks import network as build

        # the whole network (the NPU runs every operator of the built-in networks but mobilenetv2's; a network it
        # cannot run stops the fault-free run with COMPUTE_FAULT and its pair is recorded as failed)
        data = build(network).data
        path = out / "models" / f"{network}.tflite"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
        model = str(path)
    # a model that does not fit the design's external-memory model gets a larger one there (Design.model_config)
    spec = campaign_spec(req.design, config, workload, samples=req.samples, margin=req.margin,
                         confidence=req.confidence, model=model, liveness=req.liveness, second=req.second,
                         seed=req.seed)
    if model is not None:
        from rtl.designs import get_design

        if spec.config != get_design(req.design).config(config):
            note = (f"external-memory model enlarged to {spec.config.ext_mem_kib} KiB for this network (simulation "
                    "scaffolding, not a fault site; the chip is unchanged)")
    if req.second:
        tail = scrub_tail(req.design, spec.config)
        if tail:
            from faultinj.workload import make_workload

            cycles = make_workload(spec.workload, spec.config, args=spec.options["workload_args"]).cycles + tail
            spec = campaign_spec(req.design, config, workload, samples=req.samples, margin=req.margin,
                                 confidence=req.confidence, model=model, liveness=req.liveness, second=True,
                                 seed=req.seed, workload_cycles=cycles)
    return spec, note


def scrub_tail(design: str, config) -> int:
    """Cycles a study's two-inference campaign runs on after the second inference: the depth of the design's
    deepest sampled memory, one pass of a memory's background scrubber (:mod:`rtl.common.protect.memory`, one word
    per cycle). The part runs on after an inference (idle or the next one) and a scrubbed memory is checked within
    one pass; without it a short network would end its observation before the scrubber reached a flipped word and
    call the fault latent. Baseline and verification campaigns get the same tail (it changes nothing in an
    unprotected design but the cycles a simulated fault runs)."""
    from rtl.designs import get_design
    from sim.build import build

    skip = set(get_design(design).scaffolding)
    return max((e.depth for e in build(design, config).state if e.kind == "mem" and e.block not in skip), default=0)


def plan_extras(pair_dir: Path, plan: dict) -> dict:
    """The report's study sections (reports/SCHEMA.md "extras") from a pair's ``plan.json``, ``area.json`` and
    ``pareto.json``."""
    summary = plan.get("summary", {})
    verified = plan.get("verified") or {}
    area_doc = _read_json(pair_dir / "area.json") or {}
    area = {}
    for key, src in (("baseline", "unprotected"), ("protected", "protected"), ("lockstep", "lockstep")):
        total = (area_doc.get(src) or {}).get("total")
        if total:
            area[key] = {"cells": total.get("logic_cells"), "ff": total.get("ff_bits")}
    per_option = area_doc.get("per_option_ge", {})
    blocks = [{"block": b, "option": o, "note": f"{per_option[b][o]:.0f} GE" if o in per_option.get(b, {}) else ""}
              for b, o in sorted(_verified_plan(plan).items())]
    cons = verified.get("conservative") or {}
    target = str(plan.get("target", "?"))
    protection = {"target": target if target.upper().startswith("ASIL") else f"ASIL-{target}",
                  "verified": bool(summary.get("meets_target")), "blocks": blocks, "area": area}
    if verified:
        protection["verification_db"] = Path(verified.get("db", "")).name
        protection["metrics"] = {"spfm": cons.get("spfm"), "lfm": cons.get("lfm"), "pmhf_fit": cons.get("pmhf")}
    pareto = [{"area_overhead": p["overhead"], "spfm": p["predicted"]["spfm"], "label": f"{p['overhead']:+.1%}"}
              for p in _read_json(pair_dir / "pareto.json") or [] if _finite(p["predicted"]["spfm"])]
    if "protected_overhead" in summary and cons.get("spfm") is not None:
        pareto.append({"area_overhead": summary["protected_overhead"], "spfm": cons["spfm"],
                       "label": "plan (verified)" if protection["verified"] else "plan (re-injection)",
                       "chosen": True})
    if "lockstep_overhead" in summary:
        pareto.append({"area_overhead": summary["lockstep_overhead"], "spfm": 1.0, "label": "lockstep"})
    return {"protection_plan": protection, "pareto": pareto}


def _verified_plan(plan: dict) -> dict:
    """The plan the last verification campaign ran (plan.json's ``plan`` may be a later, unverified solution)."""
    rounds = plan.get("summary", {}).get("rounds", [])
    return dict(rounds[-1]["plan"]) if rounds else dict(plan.get("plan", {}))


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _verdict(metrics: dict | None, target: str) -> dict:
    """ASIL B/C/D pass/fail of conservative ``metrics`` ({spfm, lfm, pmhf}) and the highest passed."""
    from faultinj.safety import MetricSet, assess_asil

    if not metrics or any(metrics.get(k) is None for k in ("spfm", "lfm", "pmhf")):
        return {"highest": None, "target_met": False}
    a = assess_asil(MetricSet(metrics["spfm"], metrics["lfm"], metrics["pmhf"]))
    target_name = target.upper().removeprefix("ASIL-").removeprefix("ASIL")
    return {"highest": None if a.highest is None else a.highest.name,
            **{v.asil.name: v.passed for v in a.verdicts},
            "target_met": any(v.passed for v in a.verdicts if v.asil.name == target_name)}


def _pair_result(plan: dict, target: str) -> dict:
    s = plan.get("summary", {})
    ver = plan.get("verified") or {}
    base = s.get("baseline")
    cons = ver.get("conservative")
    return {"baseline": base, "baseline_asil": _verdict(base, target),
            "plan": _verified_plan(plan), "plan_overhead": s.get("protected_overhead"),
            "lockstep_overhead": s.get("lockstep_overhead"), "protected_ge": s.get("protected_ge"),
            "unprotected_ge": s.get("unprotected_ge"), "lockstep_ge": s.get("lockstep_ge"),
            "protected_area_measured": s.get("protected_area_measured"),
            "verified": bool(s.get("meets_target")), "verification": cons,
            "verification_asil": _verdict(cons, target), "verification_injections": ver.get("injections"),
            "rounds": len(s.get("rounds", [])), "solver_status": plan.get("solver_status"),
            "step_seconds": s.get("seconds")}


@dataclass
class _State:
    path: Path
    doc: dict = field(default_factory=dict)

    def save(self):
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.doc, indent=1, default=str) + "\n")
        tmp.replace(self.path)


def run_study(out_dir, req: StudyRequest, *, workers: int | None = 1,
              report: Callable[[Path, Path, dict], dict] | None = None,
              log: Callable[[str], None] = lambda s: None, command: str | None = None) -> dict:
    """Run (or continue) the study ``req`` into ``out_dir``; returns the ``study.json`` document.

    ``report(db, out_dir, extras)`` renders a pair's report (``reports.campaign.campaign_report``; the caller passes
    it, reports being a higher layer) and returns its paths. ``log`` receives one line per step.
    """
    from faultinj.protection import protect_design

    check_request(req)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = _State(out / "study.json")
    old = _read_json(state.path) or {}
    pairs_old = {(p["config"], p["network"]): p for p in old.get("pairs", [])}
    state.doc = {"schema": "rampart-fi-study", "schema_version": STUDY_SCHEMA_VERSION, "design": req.design,
                 "configs": list(req.configs), "networks": list(req.networks), "parameters": req.parameters(),
                 "command": command or old.get("command"), "pairs": []}
    for config in req.configs:
        for network in req.networks:
            key = (config, network)
            prev = pairs_old.get(key)
            if prev and prev.get("status") == "done" and prev.get("parameters") == req.parameters():
                log(f"{config} / {network}: {prev['status']} (skipped)")
                state.doc["pairs"].append(prev)
                continue
            pair = {"config": config, "network": network, "status": "running", "parameters": req.parameters(),
                    "dir": f"{config}/{_pair_dir_name(network)}"}
            state.doc["pairs"].append(pair)
            state.save()
            pair.update(_run_pair(out, req, config, network, workers, report, log, protect_design))
            state.save()
    _write_index(out, state.doc)
    state.save()
    return state.doc


def _run_pair(out: Path, req: StudyRequest, config: str, network: str, workers, report, log, protect_design) -> dict:
    pair_dir = out / config / _pair_dir_name(network)
    start = time.monotonic()
    try:
        spec, note = _campaign_spec(req, out, config, network)
        if note:
            log(f"{config} / {network}: {note}")
        log(f"{config} / {network}: baseline, optimisation and verification ({spec.samples:,} injections each)")
        kw = dict(spec.options)     # (with --margin: ``sized_for`` keeps the campaigns' confidence)
        plan = protect_design(pair_dir, req.design, spec.config, spec.workload, target=req.target,
                              baseline_samples=spec.samples, verify_samples=spec.samples, seed=req.seed,
                              workers=workers, confidence=req.confidence, campaign_kw=kw,
                              options=req.options, max_rounds=req.max_rounds, area_abc=req.area_abc,
                              measure_protected=req.measure_protected)
        result = {"status": "done", "note": note, "samples": spec.samples, **_pair_result(plan, req.target)}
        if report is not None:
            paths = report(pair_dir / "baseline.db", pair_dir / "report", plan_extras(pair_dir, plan))
            result["report"] = {k: str(Path(p).relative_to(out)) for k, p in paths.items()}
    except Exception as e:   # noqa: BLE001 -- one pair's failure (e.g. an operator the NPU lacks) ends that pair only
        error = str(e) if isinstance(e, RampartError) else f"{type(e).__name__}: {e}"
        log(f"{config} / {network}: failed: {error}")
        result = {"status": "failed", "error": error}
    result["seconds"] = round(time.monotonic() - start, 1)
    return result


def _pct(x, digits: int = 2) -> str:
    return "-" if not _finite(x) else f"{100 * x:.{digits}f} %"


def _yes(ok) -> str:
    return "pass" if ok else "fail"


def _plan_area(pair: dict) -> str:
    if pair.get("rounds"):
        return _pct(pair.get("plan_overhead"), 1)
    return "no feasible plan (optimiser: infeasible)" if "infeasible" in str(pair.get("solver_status")) else "-"


def _write_index(out: Path, doc: dict) -> Path:
    """``study.md``: one row per pair (baseline metrics and ASIL, plan vs lockstep area, verification)."""
    target = doc["parameters"]["target"]
    lines = [f"# ASIL study: {doc['design']}, target {target}", "",
             "Conservative bounds; ASIL verdicts B/C/D on the baseline and on the verification campaign of the "
             "protected design. Area overhead: measured (Yosys) against the unprotected design.", "",
             "| config | network | SPFM | LFM | PMHF (FIT) | baseline ASIL B/C/D | plan area | lockstep area | "
             "verified SPFM / LFM / PMHF | verified | report |",
             "|---|---|---:|---:|---:|---|---:|---:|---|---|---|"]
    for p in doc["pairs"]:
        if p.get("status") != "done":
            lines.append(f"| {p['config']} | {p['network']} | | | | {p.get('status')}: "
                         f"{p.get('error', '').replace('|', '/')} | | | | | |")
            continue
        b, v = p.get("baseline") or {}, p.get("verification") or {}
        ba = p["baseline_asil"]
        asil = "/".join(_yes(ba.get(k)) for k in ("B", "C", "D"))
        ver = (f"{_pct(v.get('spfm'))} / {_pct(v.get('lfm'))} / {v['pmhf']:.3g}" if v.get("pmhf") is not None
               else "-")
        rep = p.get("report", {}).get("html", "")
        lines.append(f"| {p['config']} | {p['network']} | {_pct(b.get('spfm'))} | {_pct(b.get('lfm'))} | "
                     f"{b.get('pmhf', float('nan')):.3g} | {asil} | {_plan_area(p)} | "
                     f"{_pct(p.get('lockstep_overhead'), 1)} | {ver} | {'yes' if p['verified'] else 'no'} | "
                     + (f"[report]({rep})" if rep else "") + " |")
        if p.get("note"):
            lines.append(f"| | | | | | {p['note']} | | | | | |")
    path = out / "study.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def parse_list(text: str | None, what: str) -> tuple[str, ...]:
    """A comma-separated CLI list, empty items refused."""
    items = tuple(s.strip() for s in (text or "").split(","))
    if not text or any(not s for s in items):
        raise RampartError(f"{what}: give a comma-separated list, e.g. a,b")
    return items


def quick_request(design: str = "mac_array", configs=None, networks=None, samples=None, margin=None,
                  **kw) -> StudyRequest:
    """The ``--quick`` preset (see :data:`QUICK`) for ``design``; given ``configs``, ``networks``, ``samples`` or
    ``margin`` win."""
    if design not in QUICK:
        raise RampartError(f"--quick has presets for {', '.join(QUICK)} only, not {design}")
    preset = QUICK[design]
    if samples is None and margin is None:
        samples = QUICK_SAMPLES
    return StudyRequest(design, tuple(configs or preset["configs"]), tuple(networks or preset["networks"]),
                        samples=samples, margin=margin, options=("none", "hardened", "dmr", "parity", "secded"),
                        max_rounds=1,
                        area_abc=False, measure_protected=False, quick=True, **kw)


def study_command(req: StudyRequest, out) -> str:
    """The command line that reproduces (or continues) the study ``req`` into ``out``."""
    import shlex

    size = ["--samples", str(req.samples)] if req.samples is not None else ["--margin", f"{req.margin:g}"]
    args = ["rampart", "fi", "study", req.design, "--configs", ",".join(req.configs),
            "--networks", ",".join(req.networks), "--target", req.target, *size, "--confidence",
            f"{req.confidence:g}", "--liveness" if req.liveness else "--no-liveness",
            "--second-inference" if req.second else "--single-inference", "--seed", str(req.seed),
            *(["--quick"] if req.quick else []), "-o", str(out)]
    return shlex.join(args)


def describe(doc: dict) -> Sequence[str]:
    """One line per pair for the CLI."""
    out = []
    for p in doc["pairs"]:
        if p.get("status") != "done":
            out.append(f"{p['config']} / {p['network']}: {p.get('status')} {p.get('error', '')}".rstrip())
            continue
        b = p.get("baseline") or {}
        out.append(f"{p['config']} / {p['network']}: baseline SPFM {_pct(b.get('spfm'))} (highest ASIL "
                   f"{p['baseline_asil']['highest'] or 'none'}); plan {_plan_area(p)} vs lockstep "
                   f"{_pct(p.get('lockstep_overhead'), 1)}; verified: {'yes' if p['verified'] else 'no'}")
    return out
