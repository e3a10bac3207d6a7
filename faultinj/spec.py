"""A campaign as a user asks for it (the options of `rampart fi run`), checked and turned into the arguments of
:func:`faultinj.campaign.run_campaign`; and back: the command that reproduces a stored campaign and plain-text
descriptions of its fault model and sampling (for status displays and reports).

Errors name the options as `rampart fi run` spells them (``--samples``, ``--margin``, ...); the keyword arguments
of :func:`campaign_spec` have the same names.
"""
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from base import RampartError

__all__ = ["CampaignSpec", "campaign_spec", "describe_sampling", "describe_upsets", "reproduce_command",
           "config_preset", "config_toml"]

#: Cycle windows of ``--strata cycle`` (and ``block,cycle``, ``element,cycle``) unless given.
DEFAULT_CYCLE_WINDOWS = 8


@dataclass(frozen=True)
class CampaignSpec:
    """A checked campaign request; :meth:`run` runs (or resumes) it into a database."""

    design: str
    config: Any
    workload: str
    samples: int | None
    seed: int
    strata: str                       # "exhaustive" for an exhaustive campaign
    options: dict = field(default_factory=dict)   # further keyword arguments of run_campaign
    #: (population, sample size) when the size comes from Leveugle et al.'s formula for ``--margin``.
    leveugle: tuple[int, int] | None = None

    def run(self, db, workers: int | None = None, progress: Callable[[int, int], None] | None = None,
            scheduler: str | None = None):
        """Run (or resume) the campaign into ``db``; returns its :class:`faultinj.campaign.CampaignStatus`."""
        from faultinj.campaign import run_campaign

        return run_campaign(db, self.design, self.config, self.workload, self.samples, self.seed, self.strata,
                            workers, progress, scheduler=scheduler, **self.options)


def _config_for_model(entry, config, model: Path, second: bool):
    """``config``, or what the design's ``model_config`` hook makes of it for ``model`` (the NPU: an external-memory
    model large enough for the network and, with ``second``, its second inference). An unreadable model is left to
    the workload, which refuses it (and a malformed one) in one line."""
    if entry.model_config is None or not model.is_file():
        return config
    from rtl.designs import resolve

    try:
        return resolve(entry.model_config)(config, model.read_bytes(), second)
    except RampartError:
        return config   # a malformed model: the workload below says what is wrong with it


def campaign_spec(design: str, config=None, workload: str | None = None, *, samples: int | None = None,
                  margin: float | None = None, confidence: float = 0.99, iterative: bool = False, pilot: int = 30,
                  rates: str | None = None, per_block: bool = False, exhaustive: bool = False,
                  strata: str = "block", cycle_windows: int | None = None, workload_cycles: int | None = None,
                  mbu: int = 1, seed: int = 0, model: str | None = None, input: str | None = None,
                  liveness: bool = False, second: bool = False, second_input: str | None = None) -> CampaignSpec:
    """Check a campaign request and resolve its defaults (config, workload, cycle windows, a Leveugle size).

    Exactly one of ``samples`` (fixed size), ``margin`` (Leveugle's size for it, or with ``iterative`` rounds until
    it is met) and ``exhaustive``; ``rates`` is a comma-separated list of rate names (``--iterative`` only).
    ``second``: run a second inference after the faulty one (on ``second_input``, a .npy path; default the same
    input), the workload's ``second`` argument (see :mod:`faultinj.workloads.npu`).
    ``liveness``: classify memory faults the golden run's liveness analysis decides without simulating them.
    ``model`` (a .tflite path) runs that network instead of a built-in workload (the design's model workload,
    ``<design>_model``), on ``input`` (a .npy path; default: a seeded random input); a bad model or input is
    refused here, before any database exists.
    Building the design happens only for a Leveugle size (it needs the fault space)."""
    from faultinj.workload import default_workload, get_workload, make_workload, model_workload_name
    from rtl.designs import get_design

    if sum((samples is not None, margin is not None, exhaustive)) != 1:
        raise RampartError("give exactly one of --samples, --margin and --exhaustive")
    if iterative and margin is None:
        raise RampartError("--iterative needs --margin")
    if per_block and not iterative:
        raise RampartError("--per-block only applies to --iterative")
    if rates is not None and not iterative:
        raise RampartError("--rates only applies to --iterative")
    if cycle_windows is not None and "cycle" not in strata:
        raise RampartError("--cycle-windows needs --strata cycle or block,cycle")
    if seed < 0:
        raise RampartError(f"--seed must be a non-negative integer, not {seed}")
    entry = get_design(design)
    config = entry.config(config)
    args = {}
    if input is not None and model is None:
        raise RampartError("--input needs --model")
    if model is not None:
        if workload is not None:
            raise RampartError("give --model or --workload, not both")
        if entry.model_workload is None:
            raise RampartError(f"design {design} does not run models (--model is for the NPU)")
        workload = model_workload_name(design)
        args = {"model": str(Path(model).resolve()), "input": None if input is None else str(Path(input).resolve())}
        config = _config_for_model(entry, config, Path(model), second)
    workload = workload or default_workload(design)
    if second_input is not None and not second:
        raise RampartError("--second-input needs --second-inference")
    if second:
        args.update(second=True, second_input=None if second_input is None else str(Path(second_input).resolve()))
    if args:
        make_workload(workload, config, cycles=workload_cycles, args=args)   # a bad model fails here, in one line
    if get_workload(workload)[0] != design:
        raise RampartError(f"workload {workload} is for {get_workload(workload)[0]}, not {design}")
    if "cycle" in strata and cycle_windows is None:
        cycle_windows = DEFAULT_CYCLE_WINDOWS
    if exhaustive:
        strata = "exhaustive"
    options = dict(cycle_windows=cycle_windows or 1, workload_cycles=workload_cycles, mbu=mbu, workload_args=args,
                   liveness=liveness)
    if iterative:
        options.update(iterative=True, margin=margin, confidence=confidence, per_block=per_block, pilot=pilot,
                       rates=tuple(r.strip() for r in (rates or "unmasked").split(",")))
    leveugle = None
    if margin is not None and not iterative:
        samples, population = _leveugle(design, config, workload, workload_cycles, margin, confidence, args)
        leveugle = (population, samples)
        options["sized_for"] = {"margin": margin, "confidence": confidence}
    return CampaignSpec(design, config, workload, samples, seed, strata, options, leveugle)


def _leveugle(design: str, config, workload: str, cycles: int | None, margin: float,
              confidence: float, args: dict | None = None) -> tuple[int, int]:
    """(sample size, population) of Leveugle et al. (DATE 2009) for ``margin`` at ``confidence``."""
    from faultinj.sites import sampled_bits
    from faultinj.stats import leveugle_sample_size
    from faultinj.workload import make_workload
    from sim.build import build

    result = build(design, config)
    population = sampled_bits(result) * make_workload(workload, result.config, cycles=cycles, args=args).fault_cycles
    return leveugle_sample_size(population, margin, confidence), population


def describe_upsets(mbu: int) -> str:
    """The fault model in words."""
    return "single-bit upsets" if mbu == 1 else f"{mbu}-bit upsets (adjacent bits of one word, wrapping)"


def describe_sampling(meta: dict) -> str:
    """How a stored campaign (its ``meta``) drew its faults, in words."""
    strata = meta.get("strata", "block")
    if strata == "exhaustive":
        return "exhaustive"
    if strata == "none":
        how = "uniform"
    else:
        k = meta.get("cycle_windows", 1)
        how = {"block": "stratified by block", "element": "stratified by state element",
               "cycle": f"stratified by {k} cycle windows",
               "block,cycle": f"stratified by block x {k} cycle windows",
               "element,cycle": f"stratified by state element x {k} cycle windows"}[strata]
    if meta.get("mode") == "iterative":
        return f"{how}, iterative (Neyman rounds to +/-{meta['margin']:g} at {meta['confidence']:.0%})"
    return how + ("" if strata == "none" else ", proportional")


def config_preset(meta: dict) -> str | None:
    """The name of the design preset a stored campaign ran with, or None when its config is no preset."""
    from faultinj.campaign import campaign_config
    from rtl.designs import get_design

    config = campaign_config(meta)
    return next((name for name, c in get_design(meta["design"]).presets.items() if c == config), None)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def config_toml(meta: dict) -> str:
    """A config TOML (``base = "<default preset>"`` plus every field that differs from it) that `-c` reads back as
    the stored campaign's design config."""
    import dataclasses

    from faultinj.campaign import campaign_config
    from rtl.designs import get_design

    entry = get_design(meta["design"])
    config = campaign_config(meta)
    base = entry.presets[entry.default]
    lines = [f"# design config of the campaign ({meta['design']}), for `rampart fi run -c`",
             f'base = "{entry.default}"']
    for f in dataclasses.fields(config):
        if getattr(config, f.name) != getattr(base, f.name):
            lines.append(f"{f.name} = {_toml_value(getattr(config, f.name))}")
    return "\n".join(lines) + "\n"


def reproduce_command(meta: dict, db: str | Path, config_file: str | Path | None = None) -> str:
    """The `rampart fi run` command line that reruns a stored campaign (its ``meta``) into a database named like
    ``db``. A config that is not a preset of the design appears as ``-c <config_file>`` (write it with
    :func:`config_toml`), or ``-c CONFIG.toml`` without one. The model and input of a ``--model`` campaign (meta
    ``workload_args``) and its second inference appear as the options that set them."""
    preset = config_preset(meta)
    config = preset or (Path(config_file).name if config_file is not None else "CONFIG.toml")
    wl_args = meta.get("workload_args") or {}
    if wl_args.get("model"):
        what = f"--model {wl_args['model']}" + (f" --input {wl_args['input']}" if wl_args.get("input") else "")
    else:
        what = f"--workload {meta['workload']}"
    if wl_args.get("second"):
        what += " --second-inference" + (f" --second-input {wl_args['second_input']}" if wl_args.get("second_input")
                                         else "")
    args = [f"rampart fi run {meta['design']} -c {config} {what} --cycles {meta['workload_cycles']}"]
    if meta.get("strata") == "exhaustive":
        args.append("--exhaustive")
    else:
        if meta.get("mode") == "iterative":
            args.append(f"--iterative --margin {meta['margin']:g} --confidence {meta['confidence']:g}"
                        f" --pilot {meta.get('pilot', 30)} --rates {','.join(meta.get('rates', ['unmasked']))}"
                        + (" --per-block" if meta.get("per_block") else ""))
        elif meta.get("sized_for"):
            sized = meta["sized_for"]
            args.append(f"--margin {sized['margin']:g} --confidence {sized['confidence']:g}")
        else:
            args.append(f"--samples {meta['samples']}")
        args.append(f"--seed {meta['seed']} --strata {meta['strata']}")
        if "cycle" in meta["strata"]:
            args.append(f"--cycle-windows {meta.get('cycle_windows', 1)}")
    if meta.get("mbu", 1) != 1:
        args.append(f"--mbu {meta['mbu']}")
    if meta.get("liveness"):
        args.append("--liveness")
    args.append(f"--db {Path(db).name}")
    return " ".join(args)
