"""The ASIL report of a fault-injection campaign: one self-contained HTML file, plus JSON and an FMEDA CSV.

The HTML embeds its figures (PNG, base64) so it can be mailed or archived as one file. Every rate is shown with
its confidence interval, and the ISO 26262 verdicts are taken on the conservative end of those intervals (the
point estimate is shown beside them), which the report states.
"""
import base64
import csv
import dataclasses
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from matplotlib.figure import Figure

from faultinj.outcomes import Outcome
from faultinj.safety import (
    ASIL_TARGETS,
    FMEDA_COLUMNS,
    BitKind,
    BlockResult,
    FitModel,
    assess_asil,
    fmeda_rows,
    safety_metrics,
)
from faultinj.stats import Interval, proportion_interval, stratified_proportion


@dataclass(frozen=True)
class CampaignSummary:
    """What a report needs to know about a finished (or partial) campaign."""
    design: str
    config: str
    workload: str
    seed: int
    sampling: str                  # e.g. "stratified by block, proportional, 2,000 injections"
    blocks: tuple[BlockResult, ...]
    seconds: float = 0.0
    cycles_simulated: int = 0
    fault_space: int = 0           # sites x workload cycles
    reproduce: str = ""            # the command that reruns the campaign
    notes: tuple[str, ...] = ()
    worst: tuple[dict, ...] = field(default_factory=tuple)  # e.g. SDC injections: site, cycle, block, detail
    #: Overall rate of each outcome class (DEFAULT_RATES names) over the whole fault space, with its interval: for
    #: a stratified campaign the stratified estimate (strata weighted by their populations), not pooled counts.
    rates: dict[str, Interval] = field(default_factory=dict)
    #: How ``rates`` were estimated, e.g. "stratified over 12 strata (stratified Agresti-Coull)".
    rates_method: str = ""
    #: Bits flipped per injection (1: single-event upsets; K: K adjacent bits of one word).
    mbu: int = 1

    @property
    def injections(self) -> int:
        return sum(b.injections for b in self.blocks)


def _figure_png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _unmasked(block: BlockResult, confidence: float) -> Interval:
    """The block's unmasked fraction: stratified over its strata when it has them, else Wilson on its counts."""
    if block.strata:
        k = [sum(c.values()) - c[Outcome.MASKED] for _, c in block.strata]
        n = [sum(c.values()) for _, c in block.strata]
        return stratified_proportion(k, n, [size for size, _ in block.strata], confidence).interval
    return proportion_interval(block.injections - block.counts[Outcome.MASKED], block.injections, confidence,
                               "wilson")


def _interval_label(summary: CampaignSummary) -> str:
    return "stratified" if any(b.strata for b in summary.blocks) else "Wilson"


def _unmasked_figure(summary: CampaignSummary, confidence: float) -> str:
    names = [b.name for b in summary.blocks]
    intervals = [_unmasked(b, confidence) for b in summary.blocks]
    fig = Figure(figsize=(7, 0.35 * len(names) + 1.2))
    ax = fig.subplots()
    y = range(len(names))
    ax.barh(y, [i.estimate for i in intervals], color="#4c72b0",
            xerr=[[i.estimate - i.low for i in intervals], [i.high - i.estimate for i in intervals]], capsize=3)
    ax.set_yticks(list(y), names)
    ax.invert_yaxis()
    ax.set_xlabel(f"unmasked fraction ({confidence:.0%} {_interval_label(summary)} interval)")
    ax.set_xlim(0, 1)
    ax.grid(axis="x", alpha=0.3)
    return _figure_png(fig)


def _outcome_figure(summary: CampaignSummary) -> str:
    names = [b.name for b in summary.blocks]
    fig = Figure(figsize=(7, 0.35 * len(names) + 1.2))
    ax = fig.subplots()
    left = [0.0] * len(names)
    colours = {Outcome.MASKED: "#b0b0b0", Outcome.SDC: "#c44e52", Outcome.DETECTED_RECOVERABLE: "#55a868",
               Outcome.DETECTED_UNRECOVERABLE: "#8172b2", Outcome.HANG: "#dd8452", Outcome.LATENT: "#ccb974",
               Outcome.DELAYED: "#64b5cd"}
    for outcome in Outcome:
        share = [b.counts[outcome] / b.injections if b.injections else 0 for b in summary.blocks]
        ax.barh(range(len(names)), share, left=left, color=colours[outcome], label=outcome.name.lower())
        left = [a + b for a, b in zip(left, share, strict=True)]
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xlabel("share of injections")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=6, fontsize=8, frameon=False)
    return _figure_png(fig)


def _table(headers, rows) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _pct(x: float) -> str:
    return f"{100 * x:.3f} %"


def render(summary: CampaignSummary, out_dir: str | Path, *, fit_model: FitModel | None = None,
           confidence: float = 0.95, name: str = "report") -> dict[str, Path]:
    """Write ``<name>.html``, ``<name>.json`` and ``<name>_fmeda.csv`` into ``out_dir``; return their paths."""
    fit_model = fit_model or FitModel()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    blocks = [b for b in summary.blocks if b.injections > 0]
    metrics = safety_metrics(blocks, fit_model, confidence=confidence)
    verdict_point = assess_asil(metrics.point)
    verdict_cons = assess_asil(metrics.conservative)
    rows = fmeda_rows(blocks, fit_model, confidence=confidence)

    paths = {"html": out / f"{name}.html", "json": out / f"{name}.json", "csv": out / f"{name}_fmeda.csv"}
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FMEDA_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)

    document = {
        "design": summary.design, "config": summary.config, "workload": summary.workload, "seed": summary.seed,
        "sampling": summary.sampling, "injections": summary.injections, "seconds": summary.seconds,
        "cycles_simulated": summary.cycles_simulated, "fault_space": summary.fault_space,
        "reproduce": summary.reproduce, "confidence": confidence,
        "fit_model": dataclasses.asdict(fit_model),
        "metrics": {"point": dataclasses.asdict(metrics.point),
                    "conservative": dataclasses.asdict(metrics.conservative)},
        "asil": {"point": verdict_point.highest.name if verdict_point.highest else None,
                 "conservative": verdict_cons.highest.name if verdict_cons.highest else None},
        "blocks": rows, "worst": list(summary.worst), "notes": list(summary.notes), "mbu": summary.mbu,
        "overall_rates": {name: {"estimate": i.estimate, "low": i.low, "high": i.high, "confidence": i.confidence}
                          for name, i in summary.rates.items()},
        "overall_rates_method": summary.rates_method,
    }
    paths["json"].write_text(json.dumps(document, indent=1, default=str))

    asil_rows = []
    for asil, target in sorted(ASIL_TARGETS.items()):
        p = next(v for v in verdict_point.verdicts if v.asil == asil)
        c = next(v for v in verdict_cons.verdicts if v.asil == asil)
        asil_rows.append((f"ASIL {asil.name}", f"SPFM &ge; {target.spfm_min:.0%}, LFM &ge; {target.lfm_min:.0%}, "
                          f"PMHF &lt; {target.pmhf_max_fit:g} FIT",
                          _verdict(p.passed), _verdict(c.passed)))
    metric_rows = [
        ("SPFM", _pct(metrics.point.spfm), _pct(metrics.conservative.spfm)),
        ("LFM", _pct(metrics.point.lfm), _pct(metrics.conservative.lfm)),
        ("PMHF", f"{metrics.point.pmhf:.4g} FIT", f"{metrics.conservative.pmhf:.4g} FIT"),
    ]
    block_rows = []
    for block in blocks:
        unmasked = _unmasked(block, confidence)
        block_rows.append((
            html.escape(block.name), block.bits.get(BitKind.FF, 0), block.bits.get(BitKind.MEM, 0),
            block.injections, *(block.counts[o] for o in Outcome),
            f"{_pct(unmasked.estimate)} [{_pct(unmasked.low)}, {_pct(unmasked.high)}]",
            f"{block.fit(fit_model):.4g}"))
    rate_rows = [(html.escape(name), _pct(i.estimate), f"[{_pct(i.low)}, {_pct(i.high)}]", f"{i.confidence:.0%}")
                 for name, i in summary.rates.items()]
    rates = (f"<h2>Overall outcome rates</h2><p>{html.escape(summary.rates_method)}</p>"
             + _table(("rate", "estimate", "interval", "confidence"), rate_rows)) if rate_rows else ""
    upsets = "single-bit upsets" if summary.mbu == 1 else f"{summary.mbu}-bit upsets (adjacent bits of one word)"
    worst = _table(list(summary.worst[0].keys()), [tuple(html.escape(str(v)) for v in w.values())
                                                    for w in summary.worst]) if summary.worst else "<p>none</p>"
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>rampart FI report: {html.escape(summary.design)} {html.escape(summary.config)}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
th{{background:#f0f0f0}}td:first-child{{text-align:left}}.pass{{color:#1a7f37;font-weight:bold}}
.fail{{color:#c0392b;font-weight:bold}}code{{background:#f4f4f4;padding:2px 4px}}</style></head><body>
<h1>Soft-error fault-injection report</h1>
<p><b>{html.escape(summary.design)}</b> ({html.escape(summary.config)}), workload <b>{html.escape(summary.workload)}
</b>; {summary.injections:,} {upsets} injected ({html.escape(summary.sampling)}), seed {summary.seed},
fault space {summary.fault_space:,} (state bits &times; cycles); {summary.cycles_simulated:,} cycles simulated in
{summary.seconds:.1f} s.</p>
{rates}
<h2>ISO 26262-5 hardware metrics</h2>
<p>Verdicts are taken on the <b>conservative</b> end of each block's {confidence:.0%} {_metric_interval(summary)}
(upper bound of the residual and latent fractions); point estimates beside them. Outcome mapping: masked &rarr; safe,
SDC and hang &rarr; single-point/residual, detected &rarr; multi-point detected, latent &rarr; multi-point latent.
Raw FIT per bit: flip-flops {fit_model.ff_fit_per_bit:g}, memory {fit_model.mem_fit_per_bit:g} (overridable).</p>
{_table(("metric", "point estimate", "conservative"), metric_rows)}
{_table(("level", "targets", "point estimate", "conservative"), asil_rows)}
<h2>Per block</h2>
{_table(("block", "FF bits", "memory bits", "injections", *(o.name.lower() for o in Outcome),
         f"unmasked ({confidence:.0%} {_interval_label(summary)})", "block FIT"), block_rows)}
<img alt="unmasked fraction per block" src="data:image/png;base64,{_unmasked_figure(summary, confidence)}">
<img alt="outcomes per block" src="data:image/png;base64,{_outcome_figure(summary)}">
<h2>Worst injections</h2>{worst}
<h2>Reproduce</h2><p><code>{html.escape(summary.reproduce)}</code></p>
<p>FMEDA rows: <code>{html.escape(paths["csv"].name)}</code>; all numbers: <code>{html.escape(paths["json"].name)}
</code>.</p>{"".join(f"<p>{html.escape(n)}</p>" for n in summary.notes)}
</body></html>"""
    paths["html"].write_text(page)
    return paths


def _metric_interval(summary: CampaignSummary) -> str:
    if any(b.strata for b in summary.blocks):
        return ("stratified interval (fractions estimated over the block's strata, weighted by their populations; "
                "stratified Agresti-Coull)")
    return "Clopper-Pearson interval"


def _verdict(passed: bool) -> str:
    return '<span class="pass">pass</span>' if passed else '<span class="fail">fail</span>'


def campaign_summary(db: str | Path) -> CampaignSummary:
    """The report's view of the campaign stored in ``db`` (complete or not): per-block results over the build's
    flip-flop and memory bits, overall rates (stratified when the campaign is), and the command that reruns it."""
    from faultinj.campaign import campaign_config, campaign_status
    from faultinj.sites import sampled_bits
    from faultinj.spec import describe_sampling, reproduce_command
    from sim.build import build

    status = campaign_status(db)
    meta = status.meta
    result = build(meta["design"], campaign_config(meta))
    bits: dict[str, dict[str, int]] = {}
    for element in result.state:
        kinds = bits.setdefault(element.block, {"ff": 0, "mem": 0})
        kinds[element.kind] += element.bits
    # per-block fractions over the block's cells when every cell has an injection (else its pooled counts)
    blocks = tuple(BlockResult(name, bits[name], block.counts,
                               strata=block.cells if status.is_stratified and block.stratified else ())
                   for name, block in status.blocks.items() if block.injections)
    if status.rates_stratified:
        rates = {name: est.interval for name, est in status.stratified.items()}
        method = (f"Stratified estimates over the campaign's {status.strata} strata, each stratum's rate weighted by "
                  "its population (stratified Agresti-Coull interval); not the pooled counts, which over-weight "
                  "strata sampled more than their share.")
    else:
        rates, method = dict(status.overall.rates), "Pooled counts (uniform or exhaustive sample), Wilson interval."
    return CampaignSummary(
        design=meta["design"], config=meta["config_repr"], workload=meta["workload"], seed=meta["seed"],
        sampling=f"{describe_sampling(meta)}, {status.done:,} of {status.planned:,} planned",
        blocks=blocks, cycles_simulated=status.overall.cycles_simulated,
        fault_space=sampled_bits(result) * meta["workload_cycles"],
        reproduce=reproduce_command(meta, db), rates=rates, rates_method=method, mbu=meta.get("mbu", 1),
        notes=() if status.complete else ("This campaign is incomplete; figures cover the injections done so far.",))


def campaign_report(db: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """Write the ASIL report of the campaign in ``db`` into ``out_dir`` (named after the database); return the
    paths of its HTML, JSON and FMEDA CSV (keys ``html``, ``json``, ``csv``)."""
    return render(campaign_summary(db), out_dir, name=Path(db).stem)
