"""PyNN backend for the NeuroCore spiking core: ``import drivers.pynn as sim``.

The same PyNN script runs on Brian2 (``import pyNN.brian2 as sim``) and on NeuroCore; ``setup(target=...)``
chooses the golden model (default), the Verilated RTL through its simulated UART, or a board over a serial port.
Parameters are converted to the core's fixed-point registers when the network is loaded (first ``run()``);
:func:`mapping_report` says what was rounded or clipped, and constructs the core cannot express raise
:class:`UnsupportedConstruct` naming them.  See :mod:`drivers.pynn.mapping` for the conversion.
"""
from pyNN import errors, random, space  # noqa: F401
from pyNN.connectors import (  # noqa: F401
    AllToAllConnector,
    ArrayConnector,
    CSAConnector,
    DistanceDependentProbabilityConnector,
    FixedNumberPostConnector,
    FixedNumberPreConnector,
    FixedProbabilityConnector,
    FixedTotalNumberConnector,
    FromFileConnector,
    FromListConnector,
    IndexBasedProbabilityConnector,
    OneToOneConnector,
    SmallWorldConnector,
)
from pyNN.network import Network  # noqa: F401
from pyNN.random import NumpyRNG, RandomDistribution  # noqa: F401
from pyNN.space import Space  # noqa: F401

from drivers.pynn.control import (  # noqa: F401
    end,
    get_current_time,
    get_max_delay,
    get_min_delay,
    get_time_step,
    initialize,
    mapping_report,
    num_processes,
    rank,
    reset,
    run,
    run_for,
    run_until,
    setup,
)
from drivers.pynn.mapping import MappingReport, UnsupportedConstruct  # noqa: F401
from drivers.pynn.populations import Assembly, Population, PopulationView  # noqa: F401
from drivers.pynn.projections import Projection  # noqa: F401
from drivers.pynn.standardmodels import *  # noqa: F401, F403
from drivers.pynn.standardmodels import UNSUPPORTED

globals().update({name: getattr(__import__("drivers.pynn.standardmodels", fromlist=[name]), name)
                  for name in UNSUPPORTED})


def list_standard_models():
    """The cell types this backend runs."""
    from drivers.pynn.standardmodels import SUPPORTED_CELLS

    return [c.__name__ for c in SUPPORTED_CELLS]


def _procedural():
    from pyNN import common

    from drivers.pynn import simulator
    from drivers.pynn.standardmodels import StaticSynapse

    return (common.build_create(Population), common.build_connect(Projection, FixedProbabilityConnector, StaticSynapse),
            common.build_record(simulator))


create, connect, record = _procedural()
