"""The ASIL report of a fault-injection campaign: one self-contained HTML file, JSON (schema: reports/SCHEMA.md) and
an FMEDA CSV, written by :func:`render` from a :class:`CampaignSummary` (:func:`campaign_summary` reads one from a
campaign database).

The HTML embeds its figures (PNG, base64) and loads nothing else, so it can be mailed or archived as one file. Every
rate is shown with its confidence interval, and the ISO 26262 verdicts are taken on the conservative end of those
intervals (point estimates beside them), propagated from the per-block counts as :mod:`faultinj.assessment`
describes; the report states the method, the FIT assumptions and the outcome -> class table it used.

Sections that need data a campaign alone does not have (the protection plan, its measured area against lockstep,
the Pareto front of area against SPFM) are rendered only when ``CampaignSummary.extras`` holds them; their shapes are
documented in reports/SCHEMA.md ("extras").
"""
import base64
import csv
import dataclasses
import datetime
import html
import io
import json
import math
import sqlite3
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from faultinj.assessment import METHOD, Assessment, assess
from faultinj.fit import FitConfig, IsoClass
from faultinj.outcomes import Outcome
from faultinj.safety import ASIL_TARGETS, BitKind, BlockResult
from faultinj.stats import Interval, proportion_interval, stratified_proportion

__all__ = ["REPORT_SCHEMA_VERSION", "EXTRA_SECTIONS", "CampaignSummary", "render", "campaign_summary",
           "campaign_report", "load_extras", "FMEDA_COLUMNS", "fmeda_rows", "tool_info"]

#: The optional study sections :attr:`CampaignSummary.extras` may hold (shapes in reports/SCHEMA.md).
EXTRA_SECTIONS = ("protection_plan", "pareto")

REPORT_SCHEMA_VERSION = 2

#: How an injection was classified: by simulating it, or analytically from the golden run's liveness (never
#: simulated). A campaign database without the distinction counts every injection as simulated.
METHODS = ("simulated", "analytic")


@dataclass(frozen=True)
class CampaignSummary:
    """What a report needs to know about a finished (or partial) campaign."""
    design: str
    config: str
    workload: str
    seed: int
    sampling: str                  # e.g. "stratified by block, proportional, 2,000 injections"
    blocks: tuple[BlockResult, ...]
    seconds: float = 0.0           # wall-clock seconds of simulation (0: not recorded)
    cycles_simulated: int = 0
    fault_space: int = 0           # sites x workload cycles
    reproduce: str = ""            # the command that reruns the campaign
    notes: tuple[str, ...] = ()
    #: Worst injections, worst first: dicts with at least ``id``, ``outcome``, ``block``, ``site``, ``cycle`` and
    #: ``replay`` (the `rampart fi replay` command); any further keys become columns.
    worst: tuple[dict, ...] = field(default_factory=tuple)
    #: Overall rate of each outcome class (DEFAULT_RATES names) over the whole fault space, with its interval: for
    #: a stratified campaign the stratified estimate (strata weighted by their populations), not pooled counts.
    rates: dict[str, Interval] = field(default_factory=dict)
    #: How ``rates`` were estimated, e.g. "stratified over 12 strata (stratified Agresti-Coull)".
    rates_method: str = ""
    #: Bits flipped per injection (1: single-event upsets; K: K adjacent bits of one word).
    mbu: int = 1
    #: Outcome name -> {"simulated": n, "analytic": n} (empty: every injection counts as simulated).
    breakdown: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Per state element: dicts {element, block, kind, width, depth, injections, unsafe, residual, bits}; ``bits``
    #: (flip-flops only) is a list of [injections, unsafe] per bit. Feeds the heat map and the sensitive-elements
    #: table.
    elements: tuple[dict, ...] = ()
    #: Worker seconds (wall seconds x workers) of simulation; 0: not recorded.
    worker_seconds: float = 0.0
    #: The design config as TOML when it is not a preset (written beside the report, named in ``reproduce``).
    config_toml: str | None = None
    #: Tool version, git commit and date (:func:`tool_info`); filled in by :func:`render` when empty.
    tool: dict = field(default_factory=dict)
    #: Campaign parameters (the database's meta, JSON-able), shown in the configuration section.
    parameters: dict = field(default_factory=dict)
    #: Optional sections: "protection_plan", "pareto" (shapes in reports/SCHEMA.md). Rendered only when present.
    extras: dict = field(default_factory=dict)

    @property
    def injections(self) -> int:
        return sum(b.injections for b in self.blocks)


# --------------------------------------------------------------------------------------------------------------------
# Provenance

def tool_info() -> dict:
    """rampart's version, the git commit of its source tree (``-dirty`` with uncommitted changes; None outside a
    checkout) and the date, UTC."""
    from importlib import metadata

    try:
        version = metadata.version("rampart")
    except metadata.PackageNotFoundError:
        version = None
    root = Path(__file__).resolve().parent.parent
    commit = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip() or None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        if commit and dirty:
            commit += "-dirty"
    except (OSError, subprocess.SubprocessError):
        pass
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    return {"name": "rampart", "version": version, "commit": commit, "date": now.isoformat()}


# --------------------------------------------------------------------------------------------------------------------
# Formatting

def _pct(x: float | None, digits: int = 3) -> str:
    if x is None or math.isnan(x):
        return "n/a"
    return f"{100 * x + 0.0:.{digits}f} %"       # + 0.0: never "-0.000 %"


def _fit(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x + 0.0:.4g}"


def _e(x) -> str:
    return html.escape(str(x))


def _table(headers, rows, cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _verdict(passed: bool, failing: Sequence[str] = ()) -> str:
    if passed:
        return '<span class="pass">pass</span>'
    return '<span class="fail">fail</span>' + (f" ({_e('; '.join(failing))})" if failing else "")


def _figure_png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _img(alt: str, png: str) -> str:
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{png}"><figcaption>{_e(alt)}</figcaption></figure>'


# --------------------------------------------------------------------------------------------------------------------
# Figures

_OUTCOME_COLOURS = ("#b0b0b0", "#c44e52", "#55a868", "#8172b2", "#dd8452", "#ccb974", "#64b5cd", "#937860")


def _unmasked(block: BlockResult, confidence: float) -> Interval:
    """The block's unmasked fraction: stratified over its strata when it has them, else Wilson on its counts."""
    if block.strata:
        k = [sum(c.values()) - c[Outcome.MASKED] for _, c in block.strata]
        n = [sum(c.values()) for _, c in block.strata]
        return stratified_proportion(k, n, [size for size, _ in block.strata], confidence).interval
    return proportion_interval(block.injections - block.counts[Outcome.MASKED], block.injections, confidence,
                               "wilson")


def _barh(names, values, low, high, xlabel: str, colour: str) -> str:
    fig = Figure(figsize=(7, 0.3 * len(names) + 1.2))
    ax = fig.subplots()
    y = np.arange(len(names))
    values, low, high = np.asarray(values, float), np.asarray(low, float), np.asarray(high, float)
    ax.barh(y, values.tolist(), color=colour, xerr=np.vstack([values - low, high - values]).tolist(), capsize=3)
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return _figure_png(fig)


def _outcome_figure(summary: CampaignSummary, blocks: Sequence[BlockResult]) -> str:
    names = [b.name for b in blocks]
    fig = Figure(figsize=(7, 0.3 * len(names) + 1.4))
    ax = fig.subplots()
    left = np.zeros(len(names))
    for i, outcome in enumerate(Outcome):
        share = np.array([b.counts[outcome] / b.injections if b.injections else 0.0 for b in blocks])
        ax.barh(range(len(names)), share, left=left, color=_OUTCOME_COLOURS[i % len(_OUTCOME_COLOURS)],
                label=outcome.name.lower())
        left += share
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("share of the block's injections")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=4, fontsize=8, frameon=False)
    return _figure_png(fig)


#: Heat map: at most this many flip-flop elements (the most injected) and this many bit columns.
HEATMAP_ROWS = 60
HEATMAP_COLUMNS = 64


def _heatmap(elements: Sequence[dict]) -> str | None:
    """Per flip-flop bit: share of its injections that were not safe (grey: none injected)."""
    ffs = [e for e in elements if e["kind"] == "ff" and e.get("bits") and e["injections"]]
    if not ffs:
        return None
    ffs = sorted(ffs, key=lambda e: -e["injections"])[:HEATMAP_ROWS]
    ffs.sort(key=lambda e: (e["block"], e["element"]))
    cols = min(HEATMAP_COLUMNS, max(e["width"] for e in ffs))
    grid = np.full((len(ffs), cols), np.nan)
    for r, e in enumerate(ffs):
        n, k = np.zeros(cols), np.zeros(cols)
        for bit, (inj, unsafe) in enumerate(e["bits"]):
            col = bit * cols // max(e["width"], cols) if e["width"] > cols else bit
            n[col] += inj
            k[col] += unsafe
        grid[r] = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    fig = Figure(figsize=(9, 0.18 * len(ffs) + 1.8))
    ax = fig.subplots()
    cmap = matplotlib.colormaps["magma_r"].with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(grid), aspect="auto", cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_yticks(range(len(ffs)), [f"{e['element']} ({e['block']})" for e in ffs], fontsize=6)
    ax.set_xlabel("bit" + (f" (registers wider than {cols} bits folded)" if any(e["width"] > cols for e in ffs)
                           else ""))
    fig.colorbar(image, ax=ax, label="share of injections not safe")
    return _figure_png(fig)


def _pareto_figure(points: Sequence[dict]) -> str:
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    x = [100 * p["area_overhead"] for p in points]
    y = [100 * p["spfm"] for p in points]
    ax.plot(x, y, "o-", color="#4c72b0")
    for p, xi, yi in zip(points, x, y, strict=True):
        if p.get("chosen"):
            ax.plot([xi], [yi], "o", color="#c44e52", markersize=10, label="chosen plan")
    for asil in ("B", "C", "D"):
        t = next(t for a, t in ASIL_TARGETS.items() if a.name == asil)
        ax.axhline(100 * t.spfm_min, color="#999999", lw=0.8, ls="--")
        ax.text(0, 100 * t.spfm_min, f" ASIL {asil}", va="bottom", fontsize=7, color="#666666")
    ax.set_xlabel("area overhead (%)")
    ax.set_ylabel("SPFM, conservative (%)")
    ax.grid(alpha=0.3)
    if any(p.get("chosen") for p in points):
        ax.legend(fontsize=8)
    return _figure_png(fig)


# --------------------------------------------------------------------------------------------------------------------
# FMEDA

#: Column order of the report's FMEDA CSV: one row per block, then one for the design. FIT columns in FIT,
#: fractions in [0, 1]; ``*_low`` / ``*_high`` are the interval ends at ``confidence`` (never on the wrong side of
#: the point value).
FMEDA_COLUMNS: tuple[str, ...] = (
    "block", "safety_related", "ff_bits", "mem_bits", "ff_fit_per_bit", "mem_fit_per_bit", "protection_fit_scale",
    "lambda_fit", "injections", *(o.name.lower() for o in Outcome),
    *(f"{c}_{end}" for c in IsoClass.ALL for end in ("fraction", "fraction_low", "fraction_high")),
    *(f"lambda_{c}_fit" for c in IsoClass.ALL), "lambda_spf_fit", "lambda_rf_fit",
    "derated_fit", "derated_fit_low", "derated_fit_high",
    "spfm", "spfm_low", "spfm_high", "lfm", "lfm_low", "lfm_high", "pmhf_fit", "pmhf_fit_low", "pmhf_fit_high",
    "dc", "dc_low", "dc_high", "dc_latent", "confidence",
)


def fmeda_rows(blocks: Sequence[BlockResult], assessment: Assessment) -> list[dict]:
    """The FMEDA rows (keys :data:`FMEDA_COLUMNS`) of ``assessment`` (made from ``blocks``), the design last."""
    config = assessment.fit_config
    by_name = {b.name: b for b in blocks}
    rows = []
    for scope in (*assessment.blocks, assessment.design):
        block = by_name.get(scope.name) if scope is not assessment.design else None
        model = config.block_fit(scope.name) if block else config.fit
        row = {
            "block": scope.name, "safety_related": config.safety_related(scope.name) if block else True,
            "ff_bits": block.bits.get(BitKind.FF, 0) if block else sum(b.bits.get(BitKind.FF, 0) for b in blocks),
            "mem_bits": block.bits.get(BitKind.MEM, 0) if block else sum(b.bits.get(BitKind.MEM, 0) for b in blocks),
            "ff_fit_per_bit": model.ff_fit_per_bit if block else "", "mem_fit_per_bit": model.mem_fit_per_bit if block
            else "", "protection_fit_scale": config.protection_scale(scope.name, block.protection_fit_scale)
            if block else "", "lambda_fit": scope.fit, "injections": scope.injections,
        }
        counts = block.counts if block else _total_counts(blocks)
        row.update({o.name.lower(): counts[o] for o in Outcome})
        for c in IsoClass.ALL:
            f = scope.fractions[c]
            row.update({f"{c}_fraction": f.estimate, f"{c}_fraction_low": f.low, f"{c}_fraction_high": f.high})
        row.update({f"lambda_{c}_fit": scope.fit * scope.fractions[c].estimate for c in IsoClass.ALL})
        row.update(lambda_spf_fit=scope.spf_fit, lambda_rf_fit=scope.rf_fit)
        d = scope.derated_fit
        row.update(derated_fit=d.estimate, derated_fit_low=d.low, derated_fit_high=d.high)
        for key, b in (("spfm", scope.spfm), ("lfm", scope.lfm), ("pmhf_fit", scope.pmhf)):
            row.update({key: _csv(b.estimate), f"{key}_low": _csv(b.low), f"{key}_high": _csv(b.high)})
        dc = scope.dc_interval
        row.update(dc=_csv(scope.dc), dc_low=_csv(dc.low) if dc and not math.isnan(scope.dc) else "",
                   dc_high=_csv(dc.high) if dc and not math.isnan(scope.dc) else "", dc_latent=_csv(scope.dc_latent),
                   confidence=assessment.confidence)
        rows.append(row)
    return rows


def _csv(x):
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else x + 0.0


def _total_counts(blocks) -> dict:
    out = dict.fromkeys(Outcome, 0)
    for b in blocks:
        for o, n in b.counts.items():
            out[o] += n
    return out


# --------------------------------------------------------------------------------------------------------------------
# Rendering

_STYLE = """body{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222;line-height:1.35}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:right}th{background:#f0f0f0}td:first-child{text-align:left}.pass{color:#1a7f37;font-weight:bold}
.fail{color:#c0392b;font-weight:bold}code{background:#f4f4f4;padding:2px 4px;word-break:break-all}
table.params td{text-align:left}figure{margin:1em 0}figcaption{font-size:0.85em;color:#555}
pre{background:#f4f4f4;padding:6px}table.blocks td{white-space:nowrap}table.blocks{font-size:0.8em}"""


def render(summary: CampaignSummary, out_dir: str | Path, *, fit_config: FitConfig | None = None,
           confidence: float = 0.95, name: str = "report") -> dict[str, Path]:
    """Write ``<name>.html``, ``<name>.json`` and ``<name>_fmeda.csv`` (and ``<name>_config.toml`` when the design
    config is no preset) into ``out_dir``; return their paths (keys ``html``, ``json``, ``csv``[, ``config``])."""
    fit_config = fit_config or FitConfig()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    blocks = [b for b in summary.blocks if b.injections > 0]
    assessment = assess(blocks, fit_config, confidence)
    tool = summary.tool or tool_info()
    paths = {"html": out / f"{name}.html", "json": out / f"{name}.json", "csv": out / f"{name}_fmeda.csv"}
    if summary.config_toml:
        paths["config"] = out / f"{name}_config.toml"
        paths["config"].write_text(summary.config_toml)

    rows = fmeda_rows(blocks, assessment)
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FMEDA_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    document = _document(summary, blocks, assessment, tool, rows, paths)
    paths["json"].write_text(json.dumps(document, indent=1, default=str))
    paths["html"].write_text(_page(summary, blocks, assessment, tool, paths))
    return paths


def _breakdown(summary: CampaignSummary, blocks) -> dict[str, dict[str, int]]:
    totals = _total_counts(blocks)
    out = {}
    for o in Outcome:
        given = summary.breakdown.get(o.name.lower())
        row = {m: int(given.get(m, 0)) for m in METHODS} if given else {"simulated": totals[o], "analytic": 0}
        out[o.name.lower()] = row
    return out


def _document(summary, blocks, assessment: Assessment, tool, rows, paths) -> dict:
    design = assessment.design
    return {
        "schema": "rampart-fi-report", "schema_version": REPORT_SCHEMA_VERSION, "tool": tool,
        "design": summary.design, "config": summary.config, "workload": summary.workload, "seed": summary.seed,
        "sampling": summary.sampling, "injections": summary.injections, "mbu": summary.mbu,
        "seconds": summary.seconds, "worker_seconds": summary.worker_seconds,
        "cycles_simulated": summary.cycles_simulated, "fault_space": summary.fault_space,
        "reproduce": summary.reproduce, "config_file": paths["config"].name if "config" in paths else None,
        "parameters": summary.parameters, "confidence": assessment.confidence,
        "fit": assessment.fit_config.describe(),
        "outcomes": {o: {**v, "class": assessment.fit_config.classes.of(Outcome[o.upper()])}
                     for o, v in _breakdown(summary, blocks).items()},
        "overall_rates": {n: {"estimate": i.estimate, "low": i.low, "high": i.high, "confidence": i.confidence}
                          for n, i in summary.rates.items()},
        "overall_rates_method": summary.rates_method,
        "metrics": {"point": _metric_dict(design.point), "conservative": _metric_dict(design.conservative)},
        "asil": {"point": _highest(assessment.point_checks), "conservative": _highest(assessment.checks)},
        "assessment": assessment.as_dict(),
        "blocks": rows, "elements": list(summary.elements), "worst": list(summary.worst),
        "notes": list(summary.notes), "extras": summary.extras,
    }


def _metric_dict(m) -> dict:
    return {"spfm": _num(m.spfm), "lfm": _num(m.lfm), "pmhf": _num(m.pmhf)}


def _num(x):
    return None if x is None or math.isnan(x) else x + 0.0


def _highest(checks) -> str | None:
    return max((c.asil for c in checks if c.passed), default=None).name if any(c.passed for c in checks) else None


def _page(summary: CampaignSummary, blocks, assessment: Assessment, tool: dict, paths) -> str:
    c = assessment.confidence
    level = f"{100 * c:g} %"
    upsets = "single-bit upsets" if summary.mbu == 1 else f"{summary.mbu}-bit upsets (adjacent bits of one word)"
    sections = [
        _header(summary, tool, upsets),
        _reproduce(summary, paths),
        _fit_section(assessment),
        _design_stats(summary, blocks),
        _outcomes_section(summary, blocks, assessment, level),
        _metrics_section(assessment, level),
        _blocks_section(summary, blocks, assessment, level),
        _sensitivity_section(summary, c),
        _worst_section(summary),
        _protection_section(summary.extras),
        _pareto_section(summary.extras),
        "".join(f"<p>{_e(n)}</p>" for n in summary.notes),
        f"<p>FMEDA rows: <code>{_e(paths['csv'].name)}</code>; every number: <code>{_e(paths['json'].name)}</code> "
        "(schema: reports/SCHEMA.md in rampart).</p>",
    ]
    title = f"rampart FI report: {summary.design} {summary.config}"
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
            f"<style>{_STYLE}</style></head><body>" + "\n".join(s for s in sections if s) + "</body></html>")


def _interval_pct(value: float, bound) -> str:
    if bound is None or math.isnan(value):
        return "-"
    return f"[{_pct(bound.low)}, {_pct(bound.high)}]"


def _header(summary, tool, upsets) -> str:
    time = (f"{summary.seconds:,.1f} s of wall-clock time" + (f" ({summary.worker_seconds:,.1f} worker-seconds)"
                                                            if summary.worker_seconds else "")
            if summary.seconds > 0 else "simulation time not recorded (campaign from an older rampart)")
    return (f"<h1>Soft-error fault-injection report</h1>"
            f'<p id="provenance">rampart {_e(tool.get("version") or "?")}, commit '
            f'<code>{_e(tool.get("commit") or "unknown")}</code>, generated {_e(tool.get("date") or "?")}.</p>'
            f"<p><b>{_e(summary.design)}</b> ({_e(summary.config)}), workload <b>{_e(summary.workload)}</b>; "
            f"{summary.injections:,} {upsets} injected ({_e(summary.sampling)}), seed {summary.seed}, fault space "
            f"{summary.fault_space:,} (state bits &times; cycles); {summary.cycles_simulated:,} cycles simulated in "
            f"{time}.</p>")


def _reproduce(summary, paths) -> str:
    config = ""
    if "config" in paths:
        config = (f"<p>The design config is no preset; it is written beside this report as "
                  f"<code>{_e(paths['config'].name)}</code>:</p><pre>{_e(summary.config_toml)}</pre>")
    params = ""
    if summary.parameters:
        params = _table(("parameter", "value"), [(_e(k), _e(json.dumps(v)))
                                                 for k, v in summary.parameters.items()], "params")
    return (f'<h2 id="reproduce">Configuration and reproduction</h2><p>Reproduce: <code>{_e(summary.reproduce)}</code>'
            f"</p>{config}{params}")


def _fit_section(a: Assessment) -> str:
    cfg = a.fit_config
    rows = [("technology", _e(cfg.technology)), ("flip-flop raw FIT per bit", f"{cfg.fit.ff_fit_per_bit:g}"),
            ("memory raw FIT per bit", f"{cfg.fit.mem_fit_per_bit:g}"),
            ("from", _e(cfg.path or "defaults (no --fit-config)"))]
    if cfg.sm_fit and cfg.lifetime_hours:
        rows.append(("PMHF dual-point term", f"&lambda;<sub>SM</sub> {cfg.sm_fit:g} FIT, lifetime "
                                               f"{cfg.lifetime_hours:g} h"))
    sources = "".join(f"<li>{_e(s)}</li>" for s in cfg.sources)
    overrides = ""
    if cfg.blocks:
        overrides = "<p>Per-block overrides:</p>" + _table(
            ("block", "FF FIT/bit", "memory FIT/bit", "protection FIT scale", "safety-related"),
            [(_e(b), _fit(o.ff_fit_per_bit), _fit(o.mem_fit_per_bit), _fit(o.protection_fit_scale),
              "yes" if o.safety_related else "no") for b, o in cfg.blocks.items()])
    classes = _table(("outcome", "ISO 26262-5 class"), [(_e(o), _e(k)) for o, k in cfg.classes.describe().items()])
    return (f'<h2 id="fit">FIT assumptions</h2>{_table(("assumption", "value"), rows)}<p>Sources:</p><ul>{sources}'
            f"</ul>{overrides}<p>Outcome &rarr; fault class (single-point and residual faults are one class: both "
            f"enter SPFM and PMHF through &lambda;<sub>SPF</sub> + &lambda;<sub>RF</sub>):</p>{classes}")


def _design_stats(summary, blocks) -> str:
    ff = sum(b.bits.get(BitKind.FF, 0) for b in blocks)
    mem = sum(b.bits.get(BitKind.MEM, 0) for b in blocks)
    elements = summary.elements
    rows = [(_e(b.name), f"{b.bits.get(BitKind.FF, 0):,}", f"{b.bits.get(BitKind.MEM, 0):,}",
             f"{sum(1 for e in elements if e['block'] == b.name):,}" if elements else "-",
             _pct((b.bits.get(BitKind.FF, 0) + b.bits.get(BitKind.MEM, 0)) / max(ff + mem, 1), 1),
             f"{b.injections:,}") for b in blocks]
    rows.append(("<b>total</b>", f"{ff:,}", f"{mem:,}", f"{len(elements):,}" if elements else "-", "100.0 %",
                 f"{summary.injections:,}"))
    return ('<h2 id="design">Design statistics</h2>'
            + _table(("block", "flip-flop bits", "memory bits", "state elements", "share of bits", "injections"),
                     rows))


def _outcomes_section(summary, blocks, a: Assessment, level) -> str:
    breakdown = _breakdown(summary, blocks)
    total = max(summary.injections, 1)
    rows = [(_e(o), _e(a.fit_config.classes.of(Outcome[o.upper()])), f"{v['simulated']:,}", f"{v['analytic']:,}",
             f"{v['simulated'] + v['analytic']:,}", _pct((v['simulated'] + v['analytic']) / total, 2))
            for o, v in breakdown.items()]
    analytic = sum(v["analytic"] for v in breakdown.values())
    note = ("Every injection was simulated." if not analytic else
            f"{analytic:,} injections were classified analytically (liveness of the element hit in the golden run), "
            "without simulation.")
    rates = ""
    if summary.rates:
        rates = (f"<p>{_e(summary.rates_method)}</p>" + _table(
            ("rate", "estimate", "interval", "confidence"),
            [(_e(n), _pct(i.estimate), f"[{_pct(i.low)}, {_pct(i.high)}]", f"{100 * i.confidence:g} %")
             for n, i in summary.rates.items()]))
    return (f'<h2 id="outcomes">Outcome breakdown</h2><p>{note}</p>'
            + _table(("outcome", "class", "simulated", "analytic", "total", "share"), rows)
            + ("<h3>Overall outcome rates</h3>" + rates if rates else ""))


def _metrics_section(a: Assessment, level) -> str:
    d = a.design
    metric_rows = [
        ("SPFM", _pct(d.spfm.estimate), f"[{_pct(d.spfm.low)}, {_pct(d.spfm.high)}]", _pct(d.spfm.low)),
        ("LFM", _pct(d.lfm.estimate), f"[{_pct(d.lfm.low)}, {_pct(d.lfm.high)}]", _pct(d.lfm.low)),
        ("PMHF (FIT)", _fit(d.pmhf.estimate), f"[{_fit(d.pmhf.low)}, {_fit(d.pmhf.high)}]", _fit(d.pmhf.high)),
        ("diagnostic coverage (residual)", _pct(d.dc), _interval_pct(d.dc, d.dc_interval), "-"),
        ("diagnostic coverage (latent)", _pct(d.dc_latent), "-", "-"),
        ("&lambda; total (FIT)", _fit(d.fit), "-", "-"),
        ("&lambda;<sub>SPF</sub> / &lambda;<sub>RF</sub> (FIT)", f"{_fit(d.spf_fit)} / {_fit(d.rf_fit)}", "-", "-"),
    ]
    cons = {c.asil: c for c in a.checks}
    point = {c.asil: c for c in a.point_checks}
    asil_rows = [(f"ASIL {asil.name}", f"SPFM &ge; {t.spfm_min:.0%}, LFM &ge; {t.lfm_min:.0%}, PMHF &lt; "
                  f"{t.pmhf_max_fit:g} FIT", _verdict(point[asil].passed, point[asil].failing),
                  _verdict(cons[asil].passed, cons[asil].failing))
                 for asil, t in sorted(ASIL_TARGETS.items())]
    highest = a.highest.name if a.highest else "none"
    excluded = (f"<p>Not safety-related (left out of the design metrics): {_e(', '.join(a.excluded))}.</p>"
                if a.excluded else "")
    return (f'<h2 id="metrics">ISO 26262-5 hardware metrics</h2><p>Verdicts are taken on the <b>conservative</b> end '
            f"of each {level} interval (lower bounds of SPFM and LFM, upper bound of PMHF); point estimates beside "
            f"them. {_e(METHOD)} Highest ASIL met on the conservative bounds: <b>{highest}</b>.</p>{excluded}"
            + _table(("metric", "point estimate", f"{level} interval", "conservative"), metric_rows)
            + _table(("level", "targets", "point estimate", "conservative (what counts)"), asil_rows, "asil"))


def _blocks_section(summary, blocks, a: Assessment, level) -> str:
    rows = []
    for block, scope in zip(blocks, a.blocks, strict=True):
        un = _unmasked(block, a.confidence)
        d = scope.derated_fit
        check_d = next(c for c in _checks(scope.conservative) if c.asil.name == "D")
        rows.append((_e(block.name), f"{block.injections:,}", *(f"{block.counts[o]:,}" for o in Outcome),
                     f"{_pct(un.estimate)} [{_pct(un.low)}, {_pct(un.high)}]", _fit(scope.fit),
                     f"{_fit(d.estimate)} [{_fit(d.low)}, {_fit(d.high)}]",
                     f"{_pct(scope.spfm.estimate, 2)} (&ge; {_pct(scope.spfm.low, 2)})",
                     f"{_pct(scope.lfm.estimate, 2)} (&ge; {_pct(scope.lfm.low, 2)})",
                     f"{_fit(scope.pmhf.estimate)} (&le; {_fit(scope.pmhf.high)})", _pct(scope.dc, 1),
                     _verdict(check_d.passed, check_d.failing_metrics)))
    headers = ("block", "inj.", *(_SHORT.get(o.name.lower(), o.name.lower()) for o in Outcome),
               f"unmasked ({level})", "&lambda; FIT",
               "derated FIT", "SPFM", "LFM", "PMHF FIT", "DC", "ASIL D alone")
    names = [b.name for b in blocks]
    fits = [s.derated_fit for s in a.blocks]
    un = [_unmasked(b, a.confidence) for b in blocks]
    figures = [
        _img(f"unmasked fraction per block ({level} interval)",
             _barh(names, [i.estimate for i in un], [i.low for i in un], [i.high for i in un],
                   f"unmasked fraction ({level} interval)", "#4c72b0")),
        _img("outcomes per block", _outcome_figure(summary, blocks)),
        _img(f"derated FIT per block ({level} interval)",
             _barh(names, [f.estimate for f in fits], [f.low for f in fits], [f.high for f in fits],
                   f"derated FIT: λ x share not safe ({level} interval)", "#dd8452")),
    ]
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    how = ("each block's fractions are estimated over its strata, weighted by their populations (stratified "
           "interval, stratified Agresti-Coull)" if any(b.strata for b in blocks) else
           "Agresti-Coull intervals on each block's counts (the unmasked fraction: Wilson)")
    return (f'<h2 id="blocks">Per functional block</h2><p>Intervals at {level}: {how}. SPFM, LFM and PMHF of each '
            "block on its own, with the conservative bound in parentheses.</p>"
            f'<table class="blocks"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>' + "".join(figures))


#: Short column names of outcomes in wide tables.
_SHORT = {"masked": "masked", "sdc": "SDC", "detected_recoverable": "det-rec", "detected_unrecoverable": "det-unrec",
          "hang": "hang", "latent": "latent"}


def _checks(metrics):
    from faultinj.assessment import asil_checks

    return asil_checks(metrics)


def _sensitivity(element: dict, confidence: float = 0.95) -> float:
    """How sure we are that an element is sensitive: the Wilson lower bound of its not-safe share (so 3 of 3 does not
    outrank 90 of 100)."""
    if not element["injections"]:
        return 0.0
    return proportion_interval(element["unsafe"], element["injections"], confidence, "wilson").low


def _sensitivity_section(summary, confidence) -> str:
    if not summary.elements:
        return ""
    heat = _heatmap(summary.elements)
    ranked = sorted((e for e in summary.elements if e["injections"]), key=lambda e: -_sensitivity(e, confidence))
    rows = []
    for e in ranked[:20]:
        i = proportion_interval(e["unsafe"], e["injections"], confidence, "wilson")
        rows.append((_e(e["element"]), _e(e["block"]), _e(e["kind"]), f"{e['width']}x{e['depth']}",
                     f"{e['injections']:,}", f"{e['unsafe']:,}", f"{e['residual']:,}",
                     f"{_pct(i.estimate, 1)} [{_pct(i.low, 1)}, {_pct(i.high, 1)}]"))
    return ('<h2 id="sensitivity">Per-flip-flop sensitivity</h2>'
            + (_img("share of injections not safe per flip-flop bit (most injected registers; grey: not injected)",
                    heat) if heat else "<p>No flip-flop was injected.</p>")
            + "<h3>Most sensitive state elements</h3><p>Ranked by the lower bound of the not-safe share.</p>"
            + _table(("element", "block", "kind", "width x depth", "injections", "not safe", "residual",
                      "not-safe share (Wilson)"), rows))


def _worst_section(summary) -> str:
    if not summary.worst:
        return ('<h2 id="worst">Worst injections</h2><p>None: no injection ended in a residual (SDC, hang) or '
                "detected-unrecoverable outcome.</p>")
    keys = [k for k in summary.worst[0] if k != "replay"]
    rows = [tuple(_e(w.get(k, "")) for k in keys) + (f"<code>{_e(w.get('replay', ''))}</code>",) for w in summary.worst]
    return ('<h2 id="worst">Worst injections</h2><p>Residual outcomes first (silent data corruption, then hangs), then '
            "detected-unrecoverable ones; within an outcome, the most sensitive state elements first (highest 95 % "
            "Wilson lower bound of the not-safe share), at most two per element. Each replays from scratch "
            "(optionally with a waveform, <code>--trace f.fst</code>).</p>" + _table((*keys, "replay"), rows, "worst"))


def _protection_section(extras: dict) -> str:
    plan = extras.get("protection_plan")
    if not plan:
        return ""
    rows = [(_e(b["block"]), _e(b["option"]), _fit(b.get("fit_scale")), _e(b.get("area_cells", "")),
             _e(b.get("area_ff", "")), _e(b.get("note", ""))) for b in plan.get("blocks", [])]
    area = plan.get("area", {})
    base = area.get("baseline", {}).get("cells")
    area_rows = []
    for key in ("baseline", "protected", "lockstep"):
        if key in area:
            cells = area[key].get("cells")
            over = "" if not base or cells is None else _pct(cells / base - 1, 1)
            area_rows.append((key, _e(cells), _e(area[key].get("ff", "")), _e(area[key].get("lut", "")), over))
    verified = plan.get("verified")
    state = ("verified by re-injection" if verified else "NOT verified by re-injection: not claimed to meet the "
             "target")
    metrics = plan.get("metrics")
    metric_text = ""
    if metrics:
        metric_text = (f"<p>Verification campaign (conservative): SPFM {_pct(metrics.get('spfm'), 2)}, LFM "
                       f"{_pct(metrics.get('lfm'), 2)}, PMHF {_fit(metrics.get('pmhf_fit'))} FIT.</p>")
    return (f'<h2 id="protection">Protection plan</h2><p>Target {_e(plan.get("target", "?"))}: {state}'
            + (f" (<code>{_e(plan['verification_db'])}</code>)" if plan.get("verification_db") else "") + ".</p>"
            + metric_text
            + _table(("block", "protection", "FIT scale", "cells", "flip-flops", "note"), rows)
            + ("<h3>Area against lockstep (measured)</h3>"
               + _table(("design", "cells", "flip-flops", "ECP5 LUTs", "overhead"), area_rows) if area_rows else ""))


def _pareto_section(extras: dict) -> str:
    points = extras.get("pareto")
    if not points:
        return ""
    return ('<h2 id="pareto">Pareto front: area against SPFM</h2>'
            + _img("Pareto front of area overhead against conservative SPFM", _pareto_figure(points)))


# --------------------------------------------------------------------------------------------------------------------
# From a campaign database

def _injection_rows(db_path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """(id, site, cycle, outcome, cycles) rows of every stored injection, and the analytic flag per row (None
    when the database has no such column: every injection was simulated)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        columns = {row[1] for row in db.execute("PRAGMA table_info(injections)")}
        flag = next((c for c in ("analytic", "how", "method") if c in columns), None)
        select = "id, site, cycle, outcome, cycles" + (f", {flag}" if flag else "")
        raw = db.execute(f"SELECT {select} FROM injections ORDER BY id").fetchall()
    finally:
        db.close()
    if not raw:
        return np.zeros((0, 5), dtype=np.int64), None
    rows = np.array([r[:5] for r in raw], dtype=np.int64)
    if flag is None:
        return rows, None
    analytic = np.array([r[5] in (1, True, "analytic") for r in raw], dtype=bool)
    return rows, analytic


def _elements(result, space, rows: np.ndarray, unsafe: np.ndarray, residual: np.ndarray) -> list[dict]:
    offsets = np.concatenate([[0], np.cumsum([e.bits for e in result.state])]).astype(np.int64)
    element = np.searchsorted(offsets, rows[:, 1], side="right") - 1 if len(rows) else np.zeros(0, dtype=np.int64)
    out = []
    sampled = set(space.blocks)
    for i, e in enumerate(result.state):
        if e.block not in sampled:
            continue
        mine = element == i
        item = {"element": e.hier_name, "block": e.block, "kind": e.kind, "width": e.width, "depth": e.depth,
                "injections": int(mine.sum()), "unsafe": int(unsafe[mine].sum()),
                "residual": int(residual[mine].sum())}
        if e.kind == "ff":
            bit = (rows[mine, 1] - offsets[i]) % e.width
            item["bits"] = np.stack([np.bincount(bit, minlength=e.width),
                                     np.bincount(bit, weights=unsafe[mine], minlength=e.width)],
                                    axis=1).astype(int).tolist()
        out.append(item)
    return out


def _worst(db: Path, result, rows: np.ndarray, elements: list[dict], fit_config: FitConfig, limit: int) -> list[dict]:
    """Residual injections (SDC-like before hangs), then detected-unrecoverable ones; within each, injections in
    the most sensitive elements first, at most two per element."""
    if limit <= 0 or not len(rows):
        return []
    classes = fit_config.classes
    order = [o for o in Outcome if classes.of(o) == IsoClass.RESIDUAL and o is not Outcome.HANG]
    order += [o for o in (Outcome.HANG, Outcome.DETECTED_UNRECOVERABLE) if o not in order]
    offsets = np.concatenate([[0], np.cumsum([e.bits for e in result.state])]).astype(np.int64)
    share = {e["element"]: _sensitivity(e) for e in elements}
    picked, per_element = [], {}
    for outcome in order:
        hits = rows[rows[:, 3] == int(outcome)]
        idx = np.searchsorted(offsets, hits[:, 1], side="right") - 1
        keyed = sorted(zip(idx.tolist(), hits.tolist(), strict=True),
                       key=lambda t: (-share.get(result.state[t[0]].hier_name, 0.0), t[1][0]))
        for e_idx, (inj, site, cycle, _, simulated) in keyed:
            element = result.state[e_idx]
            if per_element.get(element.hier_name, 0) >= 2:
                continue
            per_element[element.hier_name] = per_element.get(element.hier_name, 0) + 1
            local = site - int(offsets[e_idx])
            row, bit = divmod(local, element.width)
            where = f"{element.hier_name}[{row}][{bit}]" if element.kind == "mem" else f"{element.hier_name}[{bit}]"
            picked.append({"id": inj, "outcome": outcome.name.lower(), "block": element.block, "site": where,
                           "cycle": cycle, "cycles_simulated": simulated,
                           "replay": f"rampart fi replay {db} {inj}"})
            if len(picked) >= limit:
                return picked
    return picked


def campaign_summary(db: str | Path, *, confidence: float | None = None, fit_config: FitConfig | None = None,
                     worst: int = 20, config_file: str | None = None) -> CampaignSummary:
    """The report's view of the campaign stored in ``db`` (complete or not): per-block results over the build's
    flip-flop and memory bits, overall rates (stratified when the campaign is) at ``confidence`` (default: the
    campaign's own), per-element sensitivity, the ``worst`` worst injections with their replay commands, and the
    command that reruns it (naming ``config_file`` for a config that is no preset)."""
    from faultinj.campaign import campaign_config, campaign_state_bits, campaign_status
    from faultinj.plan import space_from_description
    from faultinj.sites import sampled_bits
    from faultinj.spec import config_preset, config_toml, describe_sampling, reproduce_command
    from sim.build import build

    fit_config = fit_config or FitConfig()
    status = campaign_status(db, confidence)
    meta = status.meta
    result = build(meta["design"], campaign_config(meta))
    # the FIT weights: the bits stored with the campaign (a design edited since does not change them)
    bits = campaign_state_bits(meta, result)["blocks"]
    notes = [] if status.complete else ["This campaign is incomplete; figures cover the injections done so far."]
    if result.key != meta.get("build_key", result.key):
        notes.append("The design's build changed since this campaign ran: metrics use the bits stored with the "
                     "campaign; per-element sensitivity and replay commands use today's build.")
    # per-block fractions over the block's cells when every cell has an injection (else its pooled counts); a
    # complete exhaustive campaign: the block's whole population, so its intervals are exact (zero width)
    exhaustive = meta.get("strata") == "exhaustive" and status.complete
    populations = {b: n * meta["workload_cycles"] for b, n in meta.get("block_bits", {}).items()}

    def strata_of(name, block):
        if exhaustive and populations.get(name) == block.injections:
            return ((block.injections, block.counts),)
        return block.cells if status.is_stratified and block.stratified else ()

    blocks = tuple(BlockResult(name, bits[name], block.counts, strata=strata_of(name, block))
                   for name, block in status.blocks.items() if block.injections)
    if status.rates_stratified:
        rates = {name: est.interval for name, est in status.stratified.items()}
        method = (f"Stratified estimates over the campaign's {status.strata} strata, each stratum's rate weighted by "
                  "its population (stratified Agresti-Coull interval); not the pooled counts, which over-weight "
                  "strata sampled more than their share.")
    else:
        rates, method = dict(status.overall.rates), "Pooled counts (uniform or exhaustive sample), Wilson interval."
    rows, analytic = _injection_rows(Path(db))
    outcomes = rows[:, 3]
    unsafe_set = [int(o) for o in Outcome if fit_config.classes.of(o) != IsoClass.SAFE]
    residual_set = [int(o) for o in Outcome if fit_config.classes.of(o) == IsoClass.RESIDUAL]
    space = space_from_description(meta["space"])
    elements = _elements(result, space, rows, np.isin(outcomes, unsafe_set).astype(int),
                         np.isin(outcomes, residual_set).astype(int))
    breakdown = {}
    for o in Outcome:
        mine = outcomes == int(o)
        n_analytic = int(analytic[mine].sum()) if analytic is not None else 0
        breakdown[o.name.lower()] = {"simulated": int(mine.sum()) - n_analytic, "analytic": n_analytic}
    preset = config_preset(meta)
    config_name = None if preset else (config_file or f"{Path(db).stem}_config.toml")
    timing = meta.get("timing") or {}
    parameters = {k: meta[k] for k in ("design", "config_repr", "workload", "workload_cycles", "workload_seed",
                                       "seed", "mode", "strata", "cycle_windows", "samples", "mbu", "margin",
                                       "confidence", "sized_for", "min_per_stratum", "workload_args", "liveness",
                                       "build_key")
                  if k in meta}
    return CampaignSummary(
        design=meta["design"], config=meta["config_repr"], workload=meta["workload"], seed=meta["seed"],
        sampling=f"{describe_sampling(meta)}, {status.done:,} of {status.planned:,} planned",
        blocks=blocks, cycles_simulated=status.overall.cycles_simulated,
        fault_space=sampled_bits(result) * meta["workload_cycles"],
        reproduce=reproduce_command(meta, db, config_name), rates=rates, rates_method=method,
        mbu=meta.get("mbu", 1), seconds=float(timing.get("wall_seconds", 0.0)),
        worker_seconds=float(timing.get("worker_seconds", 0.0)), breakdown=breakdown, elements=tuple(elements),
        worst=tuple(_worst(Path(db), result, rows, elements, fit_config, worst)),
        config_toml=None if preset else config_toml(meta), parameters=parameters,
        notes=tuple(notes))


def load_extras(path: str | Path) -> dict:
    """The study sections in the JSON file ``path`` (an object with keys among :data:`EXTRA_SECTIONS`)."""
    from base import RampartError

    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise RampartError(f"extras file not found: {path}") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise RampartError(f"{path}: not JSON ({e})") from None
    if not isinstance(data, dict) or set(data) - set(EXTRA_SECTIONS):
        raise RampartError(f"{path}: expected a JSON object with keys among {', '.join(EXTRA_SECTIONS)}")
    plan, pareto = data.get("protection_plan", {}), data.get("pareto", [])
    if not isinstance(plan, dict) or not isinstance(pareto, list):
        raise RampartError(f"{path}: protection_plan must be an object and pareto a list (reports/SCHEMA.md)")
    rows = plan.get("blocks", [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) and {"block", "option"} <= set(r) for r in rows):
        raise RampartError(f"{path}: every protection_plan.blocks entry needs \"block\" and \"option\"")
    if not all(isinstance(p, dict) and all(isinstance(p.get(k), int | float) for k in ("area_overhead", "spfm"))
               for p in pareto):
        raise RampartError(f"{path}: every pareto point needs numbers \"area_overhead\" and \"spfm\"")
    return data


def campaign_report(db: str | Path, out_dir: str | Path, *, confidence: float | None = None,
                    fit_config: FitConfig | None = None, worst: int = 20, extras: dict | None = None
                    ) -> dict[str, Path]:
    """Write the ASIL report of the campaign in ``db`` into ``out_dir`` (named after the database); return the
    paths of its HTML, JSON and FMEDA CSV (keys ``html``, ``json``, ``csv``; ``config`` when the design config is
    no preset). ``confidence`` defaults to the campaign's own; ``extras`` as :attr:`CampaignSummary.extras`."""
    from faultinj.campaign import campaign_confidence, campaign_meta

    if confidence is None:
        confidence = campaign_confidence(campaign_meta(db))
    name = Path(db).stem
    summary = campaign_summary(db, confidence=confidence, fit_config=fit_config, worst=worst,
                               config_file=f"{name}_config.toml")
    if extras:
        summary = dataclasses.replace(summary, extras=extras)
    return render(summary, out_dir, fit_config=fit_config, confidence=confidence, name=name)
