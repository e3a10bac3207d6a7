"""One rich console for the CLI: tables are not cut to 80 columns when the output is not a terminal."""
import shutil
import sys

from rich.console import Console

#: Width used when stdout is not a terminal (CI logs, ``| tee``): wide enough for every table rampart prints.
PIPE_WIDTH = 200


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    if stream.isatty():
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=max(PIPE_WIDTH, shutil.get_terminal_size().columns))
