"""The FIT assumptions of an ISO 26262 assessment: raw soft-error rate per bit for a named technology, per-block
overrides (protection, hardened flip-flops, another macro's rate), the outcome -> ISO 26262 fault-class table, and
the PMHF dual-point term; all overridable in a TOML file (``rampart fi report --fit-config FILE.toml``).

Named technologies (:data:`TECHNOLOGIES`), each with its sources:

``generic-1000fit-mbit`` (the default)
    Memory bits 1e-3 FIT/bit = 1,000 FIT/Mbit, the middle of the 700-1,200 FIT/Mbit reference range for embedded
    memories given in IEC 61508-2:2010 (Annex F, soft errors), which cites J.-L. Autran et al., "Altitude SEE Test
    European Platform (ASTEP) and first results in CMOS 130 nm SRAM", IEEE Trans. Nucl. Sci. 54(4), 2007, and
    R. C. Baumann, "Radiation-induced soft errors in advanced semiconductor technologies", IEEE Trans. Device Mater.
    Reliab. 5(3), 2005. Flip-flops: the same 1e-3 FIT/bit, an assumption (per-bit flip-flop SER is of the same
    order as an SRAM bit's but technology-specific; ../shared/research/faultinj.md). Replace both with the
    foundry's figures for the target node.
``generic-1200fit-mbit``
    The upper end of the same IEC 61508 range (1.2e-3 FIT/bit for memory and, by the same assumption, flip-flops):
    the conservative choice when the node is unknown.

TOML (every key optional; unknown keys are refused)::

    [fit]
    technology = "generic-1000fit-mbit"   # a name of TECHNOLOGIES
    ff_fit_per_bit = 1e-3                 # overrides the technology's value
    mem_fit_per_bit = 1e-3
    source = "foundry SER report XY-123"  # shown in the report beside the numbers you gave

    [fit.blocks.mac]                      # per functional block
    ff_fit_per_bit = 1e-4                 # e.g. hardened flip-flops
    protection_fit_scale = 0.5            # multiplies the block's raw FIT
    safety_related = true                 # false: left out of SPFM / LFM / PMHF (still listed in the FMEDA)
    safety_mechanism = true               # its residual-class faults are residual (λ_RF), not single-point
                                          # (λ_SPF); default: true when any of its injections was detected

    [classes]                             # outcome name -> safe | residual | mpf-detected | mpf-perceived | mpf-latent
    hang = "mpf-detected"                 # e.g. a watchdog detects hangs

    [pmhf]                                # optional dual-point term of the PMHF (both > 0 to include it)
    sm_fit = 0.0
    lifetime_hours = 0.0
"""
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from base import RampartError
from faultinj.outcomes import Outcome
from faultinj.safety import FitModel

__all__ = ["Technology", "TECHNOLOGIES", "DEFAULT_TECHNOLOGY", "IsoClass", "ClassMap", "DEFAULT_CLASSES",
           "BlockOverride", "FitConfig", "load_fit_config"]


@dataclass(frozen=True)
class Technology:
    """Raw soft-error rates of a named technology, FIT per bit, with where the numbers come from."""

    name: str
    ff_fit_per_bit: float
    mem_fit_per_bit: float
    sources: tuple[str, ...]


_IEC = ("IEC 61508-2:2010, Annex F: reference range 700-1,200 FIT/Mbit for embedded memories, citing "
        "Autran et al., IEEE Trans. Nucl. Sci. 54(4), 2007 (ASTEP, CMOS 130 nm SRAM) and Baumann, IEEE Trans. "
        "Device Mater. Reliab. 5(3), 2005")
_FF = ("flip-flops: assumed equal to an SRAM bit (same order of magnitude, technology-specific; "
       "replace with the foundry's figure)")

#: The named technologies (see the module docstring).
TECHNOLOGIES: Mapping[str, Technology] = MappingProxyType({
    "generic-1000fit-mbit": Technology("generic-1000fit-mbit", 1e-3, 1e-3, (_IEC + " (middle of the range)", _FF)),
    "generic-1200fit-mbit": Technology("generic-1200fit-mbit", 1.2e-3, 1.2e-3, (_IEC + " (upper end)", _FF)),
})
DEFAULT_TECHNOLOGY = "generic-1000fit-mbit"


class IsoClass:
    """ISO 26262-5 fault classes an outcome maps to (strings, as in TOML and JSON)."""

    SAFE = "safe"
    #: Single-point or residual fault (λ_SPF + λ_RF): violates the safety goal, undetected.
    RESIDUAL = "residual"
    #: Multiple-point fault detected by a safety mechanism.
    DETECTED = "mpf-detected"
    #: Multiple-point fault perceived by the driver (not latent, but no mechanism flagged it).
    PERCEIVED = "mpf-perceived"
    #: Multiple-point fault neither detected nor perceived.
    LATENT = "mpf-latent"
    ALL = (SAFE, RESIDUAL, DETECTED, PERCEIVED, LATENT)


#: Default outcome (lower-case name) -> class table, as :mod:`faultinj.outcomes` documents it. An outcome added
#: later needs a row here or in the TOML ``[classes]``; names that are not outcomes are ignored.
DEFAULT_CLASSES: Mapping[str, str] = MappingProxyType({
    "masked": IsoClass.SAFE,
    "sdc": IsoClass.RESIDUAL,
    "detected_recoverable": IsoClass.DETECTED,
    "detected_unrecoverable": IsoClass.DETECTED,
    "hang": IsoClass.RESIDUAL,
    "latent": IsoClass.LATENT,
    # DELAYED: the faulty inference was right, the next one (second inference) wrong, undetected: a violation
    "delayed": IsoClass.RESIDUAL,
})


@dataclass(frozen=True)
class ClassMap:
    """Outcome -> ISO 26262 fault class, by outcome name; every :class:`Outcome` must have a class."""

    table: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CLASSES))

    def __post_init__(self):
        table = {str(k).strip().lower().replace("-", "_"): v for k, v in self.table.items()}
        bad = {k: v for k, v in table.items() if v not in IsoClass.ALL}
        if bad:
            raise RampartError(f"unknown ISO 26262 class(es) {bad} (classes: {', '.join(IsoClass.ALL)})")
        missing = [o.name.lower() for o in Outcome if o.name.lower() not in table]
        if missing:
            raise RampartError(f"no ISO 26262 class for outcome(s) {', '.join(missing)}; add them under [classes]")
        object.__setattr__(self, "table", MappingProxyType(table))

    def of(self, outcome: Outcome) -> str:
        return self.table[Outcome(outcome).name.lower()]

    def outcomes(self, cls: str) -> frozenset[Outcome]:
        return frozenset(o for o in Outcome if self.of(o) == cls)

    def describe(self) -> dict[str, str]:
        """The rows that apply to this rampart's outcomes."""
        return {o.name.lower(): self.of(o) for o in Outcome}


@dataclass(frozen=True)
class BlockOverride:
    """Per-block changes to the technology's assumptions (None: keep the technology's)."""

    ff_fit_per_bit: float | None = None
    mem_fit_per_bit: float | None = None
    protection_fit_scale: float | None = None
    safety_related: bool = True
    #: Whether a safety mechanism covers the block (None: inferred from detected outcomes).
    safety_mechanism: bool | None = None


@dataclass(frozen=True)
class FitConfig:
    """Everything an assessment assumes besides the injection counts (see the module docstring)."""

    technology: str = DEFAULT_TECHNOLOGY
    fit: FitModel = field(default_factory=lambda: _model(TECHNOLOGIES[DEFAULT_TECHNOLOGY]))
    sources: tuple[str, ...] = TECHNOLOGIES[DEFAULT_TECHNOLOGY].sources
    blocks: Mapping[str, BlockOverride] = field(default_factory=dict)
    classes: ClassMap = field(default_factory=ClassMap)
    sm_fit: float = 0.0
    lifetime_hours: float = 0.0
    #: The TOML file this came from (None: the defaults).
    path: str | None = None

    def block_fit(self, block: str) -> FitModel:
        """Raw FIT per bit for ``block`` (its override, else the technology's)."""
        o = self.blocks.get(block)
        if o is None:
            return self.fit
        return FitModel(self.fit.ff_fit_per_bit if o.ff_fit_per_bit is None else o.ff_fit_per_bit,
                        self.fit.mem_fit_per_bit if o.mem_fit_per_bit is None else o.mem_fit_per_bit)

    def protection_scale(self, block: str, default: float = 1.0) -> float:
        o = self.blocks.get(block)
        return default if o is None or o.protection_fit_scale is None else o.protection_fit_scale

    def safety_mechanism(self, block: str) -> bool | None:
        """Whether a safety mechanism covers ``block``: True / False as configured, None when not said."""
        o = self.blocks.get(block)
        return None if o is None else o.safety_mechanism

    def safety_related(self, block: str) -> bool:
        o = self.blocks.get(block)
        return o is None or o.safety_related

    def describe(self) -> dict:
        """JSON-able (the report's ``fit`` object)."""
        return {
            "technology": self.technology, "ff_fit_per_bit": self.fit.ff_fit_per_bit,
            "mem_fit_per_bit": self.fit.mem_fit_per_bit, "sources": list(self.sources), "file": self.path,
            "blocks": {b: {k: v for k, v in vars(o).items() if v is not None} for b, o in self.blocks.items()},
            "classes": self.classes.describe(), "sm_fit": self.sm_fit, "lifetime_hours": self.lifetime_hours,
        }


def _model(tech: Technology) -> FitModel:
    return FitModel(tech.ff_fit_per_bit, tech.mem_fit_per_bit)


def _rate(where: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise RampartError(f"{where} must be a finite number >= 0, not {value!r}")
    return float(value)


def _only(where: str, table: dict, keys: tuple[str, ...]) -> None:
    if not isinstance(table, dict):
        raise RampartError(f"{where} must be a table")
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise RampartError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(keys)})")


def _block_override(where: str, table: dict) -> BlockOverride:
    _only(where, table, ("ff_fit_per_bit", "mem_fit_per_bit", "protection_fit_scale", "safety_related",
                         "safety_mechanism"))
    rates = {k: _rate(f"{where}.{k}", table[k]) for k in ("ff_fit_per_bit", "mem_fit_per_bit",
                                                           "protection_fit_scale") if k in table}
    related = table.get("safety_related", True)
    if not isinstance(related, bool):
        raise RampartError(f"{where}.safety_related must be true or false, not {related!r}")
    mechanism = table.get("safety_mechanism")
    if mechanism is not None and not isinstance(mechanism, bool):
        raise RampartError(f"{where}.safety_mechanism must be true or false, not {mechanism!r}")
    return BlockOverride(**rates, safety_related=related, safety_mechanism=mechanism)


def fit_config_from_dict(data: dict, where: str = "FIT config") -> FitConfig:
    """A :class:`FitConfig` from the parsed TOML (format in the module docstring)."""
    _only(where, data, ("fit", "classes", "pmhf"))
    fit = data.get("fit", {})
    _only(f"{where} [fit]", fit, ("technology", "ff_fit_per_bit", "mem_fit_per_bit", "source", "blocks"))
    name = fit.get("technology", DEFAULT_TECHNOLOGY)
    if name not in TECHNOLOGIES:
        raise RampartError(f"{where}: unknown technology {name!r} (known: {', '.join(TECHNOLOGIES)}; or give "
                           "ff_fit_per_bit and mem_fit_per_bit)")
    tech = TECHNOLOGIES[name]
    ff = _rate(f"{where} fit.ff_fit_per_bit", fit.get("ff_fit_per_bit", tech.ff_fit_per_bit))
    mem = _rate(f"{where} fit.mem_fit_per_bit", fit.get("mem_fit_per_bit", tech.mem_fit_per_bit))
    sources = tech.sources
    if "ff_fit_per_bit" in fit or "mem_fit_per_bit" in fit:
        given = fit.get("source")
        if given is not None and not isinstance(given, str):
            raise RampartError(f"{where} fit.source must be a string")
        sources = (f"overridden in {where}" + (f": {given}" if given else " (no source given)"), *sources)
        name = f"{name} (overridden)"
    blocks = {b: _block_override(f"{where} [fit.blocks.{b}]", t) for b, t in fit.get("blocks", {}).items()}
    classes = data.get("classes", {})
    if not isinstance(classes, dict):
        raise RampartError(f"{where} [classes] must be a table")
    known = {o.name.lower() for o in Outcome} | set(DEFAULT_CLASSES)
    unknown = sorted(k for k in classes if k.strip().lower().replace("-", "_") not in known)
    if unknown:
        raise RampartError(f"{where} [classes]: unknown outcome(s) {', '.join(unknown)} "
                           f"(outcomes: {', '.join(o.name.lower() for o in Outcome)})")
    pmhf = data.get("pmhf", {})
    _only(f"{where} [pmhf]", pmhf, ("sm_fit", "lifetime_hours"))
    return FitConfig(name, FitModel(ff, mem), sources, MappingProxyType(blocks),
                     ClassMap({**DEFAULT_CLASSES, **classes}),
                     _rate(f"{where} pmhf.sm_fit", pmhf.get("sm_fit", 0.0)),
                     _rate(f"{where} pmhf.lifetime_hours", pmhf.get("lifetime_hours", 0.0)))


def load_fit_config(path: str | Path | None = None) -> FitConfig:
    """The defaults (``path`` None) or the TOML file at ``path``; bad input is a one-line RampartError."""
    if path is None:
        return FitConfig()
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise RampartError(f"FIT config not found: {path}") from None
    except IsADirectoryError:
        raise RampartError(f"FIT config is a folder, not a TOML file: {path}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise RampartError(f"malformed TOML in {path}: {e}") from None
    config = fit_config_from_dict(data, str(path))
    return FitConfig(config.technology, config.fit, config.sources, config.blocks, config.classes, config.sm_fit,
                     config.lifetime_hours, str(path))
