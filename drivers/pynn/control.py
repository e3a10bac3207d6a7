"""setup / run / reset / end of the NeuroCore PyNN backend, and :func:`mapping_report`."""
from pyNN import common
from pyNN.common.control import DEFAULT_MAX_DELAY, DEFAULT_MIN_DELAY, DEFAULT_TIMESTEP
from pyNN.recording import get_io

from base import RampartError
from drivers.pynn import simulator

__all__ = ["end", "get_current_time", "get_max_delay", "get_min_delay", "get_time_step", "initialize",
           "mapping_report", "num_processes", "rank", "reset", "run", "run_for", "run_until", "setup"]

_OPTIONS = ("target", "config", "v_lsb", "rng_seed", "port", "baud")


def setup(timestep=DEFAULT_TIMESTEP, min_delay=DEFAULT_MIN_DELAY, **extra_params):
    """Start a new network on NeuroCore.

    ``timestep`` (ms) is the core's step.  Backend options: ``target`` ("golden", default; "rtl"; "board"),
    ``config`` (a ``neurocore`` preset name such as "64x64", or a NeuroCoreConfig; default: the smallest preset
    that holds the network), ``v_lsb`` (mV per voltage LSB; default: chosen from the weights), ``rng_seed``
    (Poisson sources; default 0), ``port`` and ``baud`` (board target).
    """
    unknown = set(extra_params) - set(_OPTIONS) - {"max_delay"}
    if unknown:
        raise RampartError(f"setup(): unknown option(s) {sorted(unknown)}; this backend takes {list(_OPTIONS)}")
    target = extra_params.get("target", "golden")
    if target not in simulator.TARGETS:
        raise RampartError(f"setup(target={target!r}): choose one of {list(simulator.TARGETS)}")
    common.setup(timestep, min_delay, **extra_params)
    st = simulator.state
    st.clear()
    st.dt = timestep
    st.min_delay = timestep if min_delay == "auto" else min_delay
    st.max_delay = extra_params.get("max_delay", DEFAULT_MAX_DELAY)
    st.options = {k: v for k, v in extra_params.items() if k in _OPTIONS}
    st.options.update(simulator.OVERRIDES)
    st.options.setdefault("target", "golden")
    return 0


def end(compatible_output=True):
    """Write any data requested with ``record(to_file=...)`` and release the core."""
    st = simulator.state
    for population, variables, filename in st.write_on_end:
        population.write_data(get_io(filename), variables)
    st.write_on_end = []
    st.close()


def mapping_report():
    """What the conversion to the core's fixed-point formats did (:class:`drivers.pynn.mapping.MappingReport`);
    maps the network now if ``run()`` has not yet."""
    st = simulator.state
    if st.mapping is None or not st.loaded:
        st.build()
    return st.mapping.report


run, run_until = common.build_run(simulator)
run_for = run
reset = common.build_reset(simulator)
initialize = common.initialize
get_current_time, get_time_step, get_min_delay, get_max_delay, num_processes, rank = \
    common.build_state_queries(simulator)
