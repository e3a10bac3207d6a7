"""The options every `rampart` command spells the same way.

* ``-c/--config NAME|FILE.toml``: a preset of the design or a TOML file, resolved by the design's descriptor;
* ``-o/--output DIR``: always a folder (created if missing) for what a command writes; a single written file has
  its own long option naming what it is (``--trace FILE.fst``, ``--save-output FILE.npy``, ``--db FILE``);
* ``--cycles`` is always a number of cycles, ``--samples/-n`` always a number of injections (``-n`` means nothing
  else);
* ``--seed`` is a non-negative integer.

Files named by an option are checked when the command line is parsed (their folder must exist and accept files),
so a long run never ends in an unwritable folder; folders are created by :func:`output_folder` before the work.
"""
from pathlib import Path

import click

from base.paths import output_folder, writable_file

__all__ = ["AliasedOption", "config_option", "output_file_option", "output_folder", "output_folder_option",
           "seed_option", "trace_option"]


class AliasedOption(click.Option):
    """An option with old spellings (``hidden_aliases``) that still work but are not shown in --help."""

    def __init__(self, param_decls=None, hidden_aliases: tuple[str, ...] = (), **attrs):
        super().__init__([*(param_decls or ()), *hidden_aliases], **attrs)
        self.hidden_aliases = tuple(hidden_aliases)

    def get_help_record(self, ctx):
        shown = self.opts
        self.opts = [o for o in shown if o not in self.hidden_aliases]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


def config_option(help: str | None = None, default: str | None = None):
    """``-c/--config NAME|FILE.toml`` (parameter ``config``)."""
    return click.option(
        "-c", "--config", "config", metavar="NAME|FILE.toml", default=default, show_default=default is not None,
        help=help or "A preset of the design (see `rampart designs`) or a TOML file (`base = \"<preset>\"` plus "
                     "field overrides); default: the design's default preset.")


def seed_option(help: str):
    """``--seed N`` (parameter ``seed``), a non-negative integer, default 0."""
    return click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help=help)


def output_folder_option(help: str, default: str | None = None, name: str = "out_dir"):
    """``-o/--output DIR`` (parameter ``name``; ``--out`` still works): a folder, created by the command with
    :func:`output_folder` before it starts working."""
    return click.option("-o", "--output", name, cls=AliasedOption, hidden_aliases=("--out",),
                        type=click.Path(path_type=Path), default=default,
                        show_default=default is not None, help=help)


def _check_file(option: str, suffix: str | None, kind: str | None):
    def check(ctx, param, value):
        if value is None:
            return None
        return str(writable_file(value, option, suffix, kind))
    return check


def output_file_option(option: str, name: str, help: str, suffix: str | None = None, kind: str | None = None,
                       **attrs):
    """A single written file, ``option`` (e.g. ``--save-output``; parameter ``name``), a str: its folder is checked
    when the command line is parsed, and its ending when ``suffix`` is given (``kind``: what it holds)."""
    metavar = f"FILE{suffix}" if suffix else "FILE"
    return click.option(option, name, type=click.Path(), metavar=metavar, default=None,
                        callback=_check_file(option, suffix, kind), help=help, **attrs)


def trace_option(help: str = "Write an FST waveform of the run to this file (builds the tracing variant)."):
    """``--trace FILE.fst`` (parameter ``trace``)."""
    return output_file_option("--trace", "trace", help, ".fst", "an FST waveform")
