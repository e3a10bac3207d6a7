"""Registry of the accelerators rampart can build: name -> config type, named presets, constructor.

A configuration is a frozen dataclass. Presets have names (``rampart build mac_array --config 4x4``); a TOML file
may name a preset as ``base`` and override fields, e.g.::

    base = "8x8"
    rows = 6
"""
import dataclasses
import importlib
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from base import RampartError


@dataclass(frozen=True)
class DesignEntry:
    name: str
    summary: str
    config_type: type
    presets: dict[str, Any]
    default: str
    make: Callable[[Any], Any]
    blocks_doc: str = ""

    def config(self, spec: str | Path | None = None):
        """Resolve a preset name, a TOML file path, or None (the default preset) to a config instance."""
        if spec is None:
            return self.presets[self.default]
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


_REGISTRY: dict[str, DesignEntry] = {}


def register(entry: DesignEntry) -> DesignEntry:
    _REGISTRY[entry.name] = entry
    return entry


def designs() -> dict[str, DesignEntry]:
    _load_builtin()
    return dict(_REGISTRY)


def get_design(name: str) -> DesignEntry:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise RampartError(f"unknown design {name!r} (known: {', '.join(sorted(_REGISTRY))})") from None


# Importing one of these modules registers its design(s).
_BUILTIN_MODULES = ("rtl.common.mac_array", "rtl.common.sram", "rtl.npu.top", "rtl.npu.output_unit", "rtl.npu.mac",
                    "rtl.npu.weight_decoder", "rtl.neurocore.core", "rtl.neurocore.uart_top")


def _load_builtin():
    for module in _BUILTIN_MODULES:
        importlib.import_module(module)
