"""The checked-in tree itself: no file keeps a merge's conflict markers (a BENCHMARKS.md once did, for a session)."""
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^(<{7} |>{7} |={7}$)", re.M)


def tracked_text_files():
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return [ROOT / n for n in names if n.endswith((".py", ".md", ".toml", ".cfg", ".txt", ".json", ".yml", ".yaml"))
            or n in ("Makefile",)]


def test_no_conflict_markers():
    bad = [str(p.relative_to(ROOT)) for p in tracked_text_files() if p.is_file()
           and MARKER.search(p.read_text(errors="replace"))]
    assert not bad, f"merge conflict markers in {bad}"


def test_marker_pattern_catches_a_conflict():
    text = "a\n<<<<<<< HEAD\nb\n=======\nc\n>>>>>>> branch\n"
    assert MARKER.search(text)
    assert not MARKER.search("a table\n|---|\n======== not a marker\n")
