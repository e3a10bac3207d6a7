"""`rampart fi status --json`: a campaign's status as a JSON document (schema in reports/SCHEMA.md, "status")."""
import math

from faultinj.outcomes import Outcome
from faultinj.stats import Interval

__all__ = ["STATUS_SCHEMA_VERSION", "status_document", "interval_dict"]

STATUS_SCHEMA_VERSION = 1

#: Campaign parameters copied from the database's meta table.
_META_KEYS = ("design", "config_repr", "workload", "workload_cycles", "seed", "mode", "strata", "cycle_windows",
              "samples", "mbu", "margin", "confidence", "per_block", "rates", "pilot", "min_per_stratum",
              "sized_for", "timing", "model", "input", "build_key")


def _num(x):
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def interval_dict(i: Interval | None) -> dict | None:
    if i is None:
        return None
    return {"estimate": _num(i.estimate), "low": i.low, "high": i.high, "method": str(i.method),
            "confidence": i.confidence}


def _block(status, block) -> dict:
    return {"injections": block.injections, "counts": {o.name.lower(): block.counts.get(o, 0) for o in Outcome},
            "cycles_simulated": block.cycles_simulated,
            "unmasked": interval_dict(status.unmasked(block)),
            "rates": {name: interval_dict(i) for name, i in block.rates.items()}}


def status_document(status) -> dict:
    """The JSON-able status of a campaign (:class:`faultinj.campaign.CampaignStatus`)."""
    meta = status.meta
    return {
        "schema": "rampart-fi-status", "schema_version": STATUS_SCHEMA_VERSION,
        "campaign": {k: meta[k] for k in _META_KEYS if k in meta},
        "planned": status.planned, "done": status.done, "complete": status.complete,
        "confidence": status.confidence, "rates_stratified": status.rates_stratified,
        "blocks": {name: _block(status, b) for name, b in status.blocks.items()},
        "overall": _block(status, status.overall),
        "stratified": {name: {**interval_dict(e.interval), "half_width": e.half_width}
                       for name, e in status.stratified.items()},
        "rounds": [{"round": r.round, "injections": r.injections, "worst_half_width": r.worst_half_width,
                    "done": r.done} for r in status.rounds],
    }
