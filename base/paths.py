"""Output paths checked before any work is done: a long simulation must not end in an unwritable folder.

* :func:`writable_file`: a single file to be written (waveform, ``.npy``, database): its folder must exist and
  accept new files, and the path must not be a folder;
* :func:`output_folder`: a folder for several products (reports, plots, bitstreams): created if missing, and it
  must accept new files.

Both probe by creating (and removing) a temporary file, so read-only mounts and permissions are seen as they are,
also for root. Every failure is one :class:`base.RampartError` line naming the option (``what``).
"""
import os
import tempfile
from pathlib import Path

from base import RampartError

__all__ = ["output_folder", "writable_file"]


def _probe(folder: Path, what: str) -> None:
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        raise RampartError(f"{what}: cannot write into {folder} ({e.strerror or e})") from None


def writable_file(path: str | Path, what: str, suffix: str | None = None, kind: str | None = None) -> Path:
    """``path`` as a Path after checking that a file can be written there (``suffix``: the required ending;
    ``kind``: what the file holds, for the message, e.g. "an FST waveform")."""
    path = Path(path)
    if suffix is not None and path.suffix != suffix:
        raise RampartError(f"{what} writes {kind or f'a {suffix} file'}; give a file name ending in {suffix}, "
                           f"not {str(path)!r}")
    if path.is_dir():
        raise RampartError(f"{what}: {path} is a folder, not a file")
    folder = path.parent
    if not folder.exists():
        raise RampartError(f"{what}: folder {folder} does not exist")
    if not folder.is_dir():
        raise RampartError(f"{what}: {folder} is not a folder")
    if path.exists() and not os.access(path, os.W_OK):
        raise RampartError(f"{what}: {path} is not writable")
    _probe(folder, what)
    return path


def output_folder(path: str | Path, what: str) -> Path:
    """``path`` as a Path after creating it (and its parents) if needed and checking that it accepts new files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise RampartError(f"{what}: {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RampartError(f"{what}: cannot create folder {path} ({e.strerror or e})") from None
    _probe(path, what)
    return path
