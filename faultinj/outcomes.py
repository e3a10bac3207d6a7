"""What one fault injection can end in, and how rampart maps that onto ISO 26262-5 fault classes.

ISO 26262 mapping used in every rampart report (one common convention; see ../shared/research/faultinj.md):

=========================  ==============================================================================
outcome                    ISO 26262-5 fault class
=========================  ==============================================================================
MASKED                     safe fault
SDC                        single-point / residual fault (violates the safety goal, nothing detected it)
DETECTED_RECOVERABLE       multiple-point fault, detected
DETECTED_UNRECOVERABLE     multiple-point fault, detected (the mechanism signalled it; the system reacts)
LATENT                     multiple-point fault, latent (outputs right, state still wrong, undetected)
DELAYED                    single-point / residual fault (this inference right, the next one wrong: a
                           delayed violation; only with a second inference, see below)
HANG                       single-point / residual fault, unless a watchdog detects hangs
                           (``watchdog_detects_hang=True``), then multiple-point detected
=========================  ==============================================================================

Second inference (workloads that run the network twice, e.g. ``rampart fi run --second-inference``; faults are
injected during the first inference only, see :mod:`faultinj.workloads.npu`). The field runs the part inference
after inference, so what is left in the state after the first one is judged by the next one:

* the first inference's outputs wrong: SDC (as without a second inference);
* the first inference right, the second one's outputs wrong: DELAYED (a violation, one inference late);
* both right and the corrupted state overwritten before it was used (the state equals the golden run's again):
  MASKED -- safe, although a single-inference campaign would have called it LATENT;
* both right and the state still differs at the end of the second inference: LATENT (neither shown nor
  overwritten: only this stays a latent multiple-point fault).

Detection, correction, hang and watchdog keep their meaning over both inferences.

Single-point and residual faults are one class here: both enter SPFM and PMHF through the same sum
(λ_SPF + λ_RF); whether a block has a safety mechanism at all does not change the arithmetic.

"Failure" means unmasked: every outcome except MASKED. Block FIT is derated by the unmasked fraction.
"""
import enum
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType

import numpy as np

__all__ = [
    "Outcome", "FaultClass", "FAILURES", "DEFAULT_RATES",
    "is_failure", "fault_class", "outcomes_of", "normalize_counts", "rate_counts",
]


class Outcome(enum.IntEnum):
    """The result of one injected fault, as classified against the golden run."""

    #: No trace: outputs correct and the full state equals the golden state (at the end, or at the early stop
    #: where the faulty run's state digest first equals the golden one).
    MASKED = 0
    #: Silent data corruption: an output differs from the golden run and nothing flagged it.
    SDC = 1
    #: A checker or ECC flagged the fault and the design corrected it or recovered (outputs correct).
    DETECTED_RECOVERABLE = 2
    #: A checker flagged the fault but could not correct it; the error is signalled to the system.
    DETECTED_UNRECOVERABLE = 3
    #: The run did not complete before the watchdog / timeout.
    HANG = 4
    #: Outputs correct and nothing flagged, but the state still differs from the golden state at the end.
    LATENT = 5
    #: The faulty inference's outputs were right, but the next inference's outputs are wrong (second inference
    #: workloads only): a delayed violation.
    DELAYED = 6


class FaultClass(enum.StrEnum):
    """ISO 26262-5 fault classes that injection outcomes are mapped to (see the module docstring)."""

    #: Safe fault: no effect on the safety goal.
    SAFE = "safe"
    #: Single-point or residual fault: violates the safety goal, not detected (λ_SPF + λ_RF).
    RESIDUAL = "residual"
    #: Multiple-point fault detected by a safety mechanism (λ_MPF,detected).
    DETECTED = "mpf-detected"
    #: Multiple-point fault neither detected nor perceived (λ_MPF,latent).
    LATENT = "mpf-latent"


#: Outcomes that count as a failure (unmasked): everything but MASKED.
FAILURES: frozenset[Outcome] = frozenset(o for o in Outcome if o is not Outcome.MASKED)

#: Rates a campaign tracks by default (name -> outcomes counted as an event). Used by :func:`rate_counts`.
DEFAULT_RATES: Mapping[str, frozenset[Outcome]] = MappingProxyType({
    "unmasked": FAILURES,
    "sdc": frozenset({Outcome.SDC}),
    "detected": frozenset({Outcome.DETECTED_RECOVERABLE, Outcome.DETECTED_UNRECOVERABLE}),
    "hang": frozenset({Outcome.HANG}),
    "latent": frozenset({Outcome.LATENT}),
})


def _coerce(key) -> Outcome:
    if isinstance(key, Outcome):
        return key
    if isinstance(key, str):
        try:
            return Outcome[key.strip().upper().replace("-", "_")]
        except KeyError:
            raise ValueError(f"unknown outcome {key!r}; expected one of {[o.name.lower() for o in Outcome]}") from None
    if isinstance(key, int | np.integer) and not isinstance(key, bool):
        try:
            return Outcome(int(key))
        except ValueError:
            raise ValueError(f"unknown outcome value {key!r}") from None
    raise TypeError(f"outcome must be an Outcome, its name or its value, not {key!r}")


def is_failure(outcome) -> bool:
    """True if ``outcome`` is unmasked (anything but MASKED)."""
    return _coerce(outcome) in FAILURES


def fault_class(outcome, *, watchdog_detects_hang: bool = False) -> FaultClass:
    """The ISO 26262 fault class of ``outcome`` under rampart's mapping (module docstring)."""
    outcome = _coerce(outcome)
    if outcome is Outcome.MASKED:
        return FaultClass.SAFE
    if outcome in (Outcome.SDC, Outcome.DELAYED):
        return FaultClass.RESIDUAL
    if outcome is Outcome.HANG:
        return FaultClass.DETECTED if watchdog_detects_hang else FaultClass.RESIDUAL
    if outcome is Outcome.LATENT:
        return FaultClass.LATENT
    return FaultClass.DETECTED


def outcomes_of(cls: FaultClass, *, watchdog_detects_hang: bool = False) -> frozenset[Outcome]:
    """All outcomes that :func:`fault_class` maps to ``cls``."""
    cls = FaultClass(cls)
    return frozenset(o for o in Outcome if fault_class(o, watchdog_detects_hang=watchdog_detects_hang) is cls)


def normalize_counts(counts: Mapping) -> dict[Outcome, int]:
    """``counts`` keyed by Outcome (or its name / value) -> a dict with every Outcome present (missing = 0).

    Raises ``ValueError`` for negative counts or a key given twice under different spellings.
    """
    if not isinstance(counts, Mapping):
        raise TypeError(f"counts must be a mapping of outcome -> count, not {counts!r}")
    out = dict.fromkeys(Outcome, 0)
    seen: set[Outcome] = set()
    for key, value in counts.items():
        outcome = _coerce(key)
        if outcome in seen:
            raise ValueError(f"outcome {outcome.name} given twice in {counts!r}")
        seen.add(outcome)
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise TypeError(f"count for {outcome.name} must be an int, not {value!r}")
        if value < 0:
            raise ValueError(f"count for {outcome.name} must be >= 0, not {value!r}")
        out[outcome] = int(value)
    return out


def rate_counts(per_stratum: Sequence[Mapping],
                rates: Mapping[str, Iterable[Outcome]] = DEFAULT_RATES) -> tuple[tuple[str, ...], np.ndarray]:
    """Turn per-stratum outcome counts into the event-count matrix the stopping rule takes.

    Parameters
    ----------
    per_stratum : sequence of mappings
        One ``{Outcome: count}`` per stratum.
    rates : mapping of str to outcomes
        The rates of interest; an injection is an event for a rate if its outcome is in that rate's set.

    Returns
    -------
    (names, counts)
        ``names`` are the rate names in order; ``counts`` is an int64 array of shape ``(strata, rates)``.
    """
    names = tuple(rates)
    sets = [frozenset(_coerce(o) for o in rates[name]) for name in names]
    table = [normalize_counts(c) for c in per_stratum]
    counts = np.array([[sum(row[o] for o in s) for s in sets] for row in table], dtype=np.int64)
    return names, counts.reshape(len(table), len(names))
