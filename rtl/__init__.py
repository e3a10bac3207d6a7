"""rampart's Amaranth designs (one accelerator per package; ``rtl.designs`` is the registry).

``SOURCES_AT_IMPORT`` is the digest of every ``rtl`` source file taken when this package was first imported, before
any design module: if the files on disk still have that digest when a design is built, every module this process
loaded is the version on disk, so the build cache may trust a key made from the files (see :mod:`sim.build`).
"""
import hashlib
from pathlib import Path


def source_digest() -> str:
    """SHA-256 over the relative path and bytes of every ``.py`` file of this package, in path order."""
    root = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


SOURCES_AT_IMPORT = source_digest()
