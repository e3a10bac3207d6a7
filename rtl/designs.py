"""Descriptors: how an accelerator plugs into rampart, and the registry that finds them.

Every design package under ``rtl/`` exports one :class:`Design` named ``DESCRIPTOR`` that says everything the rest of
rampart needs to know about it:

* name, summary and kind (an accelerator, a reference design, or a unit / test fixture);
* the config dataclass, its named presets (the default first in listings) and TOML loading (:meth:`Design.config`);
* ``make``: the top component; for accelerators it is the simulation top, which may hold scaffolding that is not
  part of the chip (the NPU's external-memory model): those blocks are listed in ``scaffolding`` and never sampled;
* ``blocks``: the functional block map used by fault injection, FMEDA and protection (:meth:`Design.block_of`);
* ``workloads``: its fault-injection workloads, ``name -> "module:function"`` (``faultinj`` resolves them);
* ``board_adapter``: how ``rampart synth`` connects it to a board's pins (``"module:function"``, see rtl/boards.py);
* ``golden`` and ``driver``: its golden model and its host-side driver, as ``"module:attribute"`` references;
* ``system_model``: its timed model in the SimPy system model (:mod:`models.system`), a ``"module:attribute"``
  reference to an ``Accelerator`` factory ``(env, memory, **options)``; None until one is calibrated;
* ``fixtures``: further buildable designs of the package (functional units alone, test wrappers) for testbenches;
* ``synth_opts``: extra options of Yosys's ``synth_<family>`` command for ``rampart synth`` (e.g. ``-nodsp`` for a
  design with more multipliers than the FPGA has DSP blocks: they become LUT logic);
* ``synth_after``: Yosys commands run right after ``synth_<family>`` (Amaranth's ``script_after_synth``), e.g. to
  finish a flow that ``synth_opts`` stopped early with ``-run``;
* ``verilator_opt``: the C++ optimisation level its Verilated model is compiled at (``"O3"``; ``"Os"`` where a
  design measured faster there, see BENCHMARKS.md).

References to code in the layers above ``rtl/`` (workloads, drivers) are import paths resolved only when used
(:func:`resolve`), the way packaging entry points work, so ``rtl/`` never imports a layer above it.

A TOML config names a preset as ``base`` and overrides fields, e.g.::

    base = "8x8"
    rows = 6

Adding an accelerator: a new package ``rtl/<name>/`` whose ``__init__`` defines ``DESCRIPTOR``, plus its name in
:data:`PACKAGES` (or an entry point in the ``rampart.designs`` group naming the package).
"""
import dataclasses
import enum
import importlib
import importlib.metadata
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from base import RampartError

__all__ = ["Design", "Kind", "PACKAGES", "designs", "get_design", "resolve"]


class Kind(enum.StrEnum):
    ACCELERATOR = "accelerator"     # a product: what users run, inject faults into and synthesise
    REFERENCE = "reference"         # a small reference design of the simulation layer
    UNIT = "unit"                   # one functional unit alone, for unit testbenches
    FIXTURE = "fixture"             # a test wrapper around a unit


@dataclass(frozen=True)
class Design:
    """The descriptor of one buildable design (see the module docstring)."""
    name: str
    summary: str
    config_type: type
    presets: Mapping[str, Any]
    default: str
    make: Callable[[Any], Any]
    kind: Kind = Kind.ACCELERATOR
    blocks: Mapping[str, str] = field(default_factory=dict)
    scaffolding: tuple[str, ...] = ()
    workloads: Mapping[str, str] = field(default_factory=dict)
    #: The factory of the workload that runs a user's model (``rampart fi run --model``), ``"module:function"``
    #: taking ``(config, model=..., input=..., seed=..., cycles=...)``; its workload name is ``<design>_model``.
    model_workload: str | None = None
    #: ``"module:function"`` taking ``(config, model_data, second)`` and returning the config a campaign on that
    #: model runs (e.g. a larger external-memory model: scaffolding, never fault sites); None: ``config`` as given.
    model_config: str | None = None
    board_adapter: str | None = None
    golden: str | None = None
    driver: str | None = None
    system_model: str | None = None
    fixtures: tuple["Design", ...] = ()
    synth_opts: str = ""
    synth_after: str = ""
    verilator_opt: str = "O3"

    def __post_init__(self):
        if self.default not in self.presets:
            raise ValueError(f"design {self.name}: default preset {self.default!r} is not among its presets")
        object.__setattr__(self, "presets", dict(self.presets))
        object.__setattr__(self, "blocks", dict(self.blocks))
        object.__setattr__(self, "workloads", dict(self.workloads))

    @property
    def preset_names(self) -> list[str]:
        """Preset names, the default first."""
        return [self.default] + [p for p in self.presets if p != self.default]

    def config(self, spec: str | Path | None = None):
        """Resolve a preset name, a TOML file path, a config instance or None (the default preset) to a config."""
        if spec is None:
            return self.presets[self.default]
        if isinstance(spec, self.config_type):
            return spec
        spec = str(spec)
        if spec in self.presets:
            return self.presets[spec]
        if spec.endswith(".toml"):
            return self._config_from_toml(Path(spec))
        raise RampartError(
            f"unknown config {spec!r} for design {self.name!r} (presets: {', '.join(self.presets)}; or a .toml file)")

    def _config_from_toml(self, path: Path):
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise RampartError(f"config file not found: {path}") from None
        except IsADirectoryError:
            raise RampartError(f"config path is a folder, not a TOML file: {path}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise RampartError(f"malformed TOML in {path}: {e}") from None
        base_name = data.pop("base", self.default)
        if base_name not in self.presets:
            raise RampartError(f"{path}: unknown base preset {base_name!r} (presets: {', '.join(self.presets)})")
        fields = {f.name: f for f in dataclasses.fields(self.config_type)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise RampartError(f"{path}: unknown config key(s) {', '.join(unknown)} (known: {', '.join(fields)})")
        try:
            return dataclasses.replace(self.presets[base_name], **data)
        except (TypeError, ValueError) as e:
            raise RampartError(f"{path}: invalid config: {e}") from None

    def block_of(self, var: str) -> str:
        """The functional block of the state element with dotted flat name ``var`` (e.g. ``compute.mac.acc_3``).

        The longest key ``k`` of :attr:`blocks` with ``var == k`` or ``var`` starting with ``k + "."`` names it;
        without one, the element belongs to its first-level instance, or to ``top`` when it sits in the top module.
        The instances of a protection wrapper's copies (``protect_copy<i>``, :mod:`rtl.common.protect`) are skipped:
        a replica's state belongs to the block of the unit it copies.
        """
        from rtl.common.protect import is_copy_name

        parts = [p for p in var.split(".") if not is_copy_name(p)]
        for depth in range(len(parts), 0, -1):
            block = self.blocks.get(".".join(parts[:depth]))
            if block is not None:
                return block
        return parts[0] if len(parts) > 1 else "top"

    def workload(self, name: str) -> Callable:
        """The factory of workload ``name`` (``factory(config, seed=..., cycles=...)``)."""
        try:
            return resolve(self.workloads[name])
        except KeyError:
            known = ", ".join(self.workloads) or "none"
            raise RampartError(f"design {self.name!r} has no workload {name!r} (known: {known})") from None


#: The design packages; each exports ``DESCRIPTOR``. One line here registers a new accelerator.
PACKAGES = ("rtl.npu", "rtl.neurocore", "rtl.pulsedl", "rtl.ngpc", "rtl.common")

_REGISTRY: dict[str, Design] = {}


def resolve(ref: str):
    """Import ``"module:attribute"`` and return the attribute."""
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _add(design: Design):
    if design.name in _REGISTRY and _REGISTRY[design.name] is not design:
        raise RampartError(f"two designs are named {design.name!r}")
    _REGISTRY[design.name] = design
    for fixture in design.fixtures:
        _add(fixture)


def _load():
    if _REGISTRY:
        return
    packages = list(PACKAGES)
    packages += [ep.value for ep in importlib.metadata.entry_points(group="rampart.designs")]
    for package in packages:
        _add(importlib.import_module(package).DESCRIPTOR)


def designs() -> dict[str, Design]:
    """Every registered design by name: each package's descriptor, then its fixtures, in :data:`PACKAGES` order."""
    _load()
    return dict(_REGISTRY)


def get_design(name: str) -> Design:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise RampartError(f"unknown design {name!r} (known: {', '.join(sorted(_REGISTRY))})") from None
