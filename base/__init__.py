"""The neutral bottom of rampart's import graph: what every layer may import and that imports nothing of rampart.

* :class:`RampartError`: bad input or a failed tool, described in one line (the CLI prints it and exits with 2);
* :func:`cache_root`: where built simulators, Vela output and trained models are cached.
"""
import os
from pathlib import Path

__all__ = ["RampartError", "cache_root"]


class RampartError(Exception):
    """Bad input or a failed external tool, described in one line for the user."""


def cache_root() -> Path:
    """The cache folder: ``$RAMPART_CACHE``, default ``~/.cache/rampart``."""
    return Path(os.environ.get("RAMPART_CACHE", Path.home() / ".cache" / "rampart"))
