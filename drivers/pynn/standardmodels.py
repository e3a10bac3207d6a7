"""Cell and synapse types of the NeuroCore PyNN backend.

Supported: ``IF_curr_exp``, ``IF_curr_delta``, ``SpikeSourceArray``, ``SpikeSourcePoisson``, ``StaticSynapse``,
``STDPMechanism`` with ``SpikePairRule`` and ``AdditiveWeightDependence``.  Parameters are kept in PyNN's own
names and units (identity translations); :mod:`drivers.pynn.mapping` converts them when the core is loaded.

Every other standard model of PyNN exists under its usual name so that a script fails at the line that uses it,
with :class:`~drivers.pynn.mapping.UnsupportedConstruct` saying why the core cannot run it.
"""
from pyNN.standardmodels import build_translations, cells, synapses

from drivers.pynn.mapping import UnsupportedConstruct
from drivers.pynn.simulator import state

__all__ = ["SUPPORTED_CELLS", "UNSUPPORTED", "AdditiveWeightDependence", "IF_curr_delta", "IF_curr_exp",
           "STDPMechanism", "SpikePairRule", "SpikeSourceArray", "SpikeSourcePoisson", "StaticSynapse"]


def _identity(cls):
    return build_translations(*[(name, name) for name in cls.default_parameters])


class IF_curr_exp(cells.IF_curr_exp):
    __doc__ = cells.IF_curr_exp.__doc__
    translations = _identity(cells.IF_curr_exp)


class IF_curr_delta(cells.IF_curr_delta):
    __doc__ = cells.IF_curr_delta.__doc__
    translations = _identity(cells.IF_curr_delta)


class SpikeSourceArray(cells.SpikeSourceArray):
    __doc__ = cells.SpikeSourceArray.__doc__
    translations = _identity(cells.SpikeSourceArray)


class SpikeSourcePoisson(cells.SpikeSourcePoisson):
    __doc__ = cells.SpikeSourcePoisson.__doc__
    translations = _identity(cells.SpikeSourcePoisson)


SUPPORTED_CELLS = (IF_curr_exp, IF_curr_delta, SpikeSourceArray, SpikeSourcePoisson)


def _min_delay():
    return state.dt


class StaticSynapse(synapses.StaticSynapse):
    __doc__ = synapses.StaticSynapse.__doc__
    translations = build_translations(("weight", "weight"), ("delay", "delay"))

    def _get_minimum_delay(self):
        return _min_delay()


class STDPMechanism(synapses.STDPMechanism):
    __doc__ = synapses.STDPMechanism.__doc__
    base_translations = build_translations(("weight", "weight"), ("delay", "delay"),
                                           ("dendritic_delay_fraction", "dendritic_delay_fraction"))

    def __init__(self, timing_dependence=None, weight_dependence=None, voltage_dependence=None,
                 dendritic_delay_fraction=1.0, weight=0.0, delay=None):
        if voltage_dependence is not None:
            raise UnsupportedConstruct("STDPMechanism(voltage_dependence=...): the core's STDP has no voltage term")
        if not isinstance(timing_dependence, SpikePairRule):
            raise UnsupportedConstruct(f"STDP timing dependence {type(timing_dependence).__name__}: the core "
                                       "implements SpikePairRule (trace STDP) only")
        if not isinstance(weight_dependence, AdditiveWeightDependence):
            raise UnsupportedConstruct(f"STDP weight dependence {type(weight_dependence).__name__}: the core "
                                       "implements AdditiveWeightDependence only")
        # with one step of delay, axonal and dendritic delays give the same pairings on the core
        super().__init__(timing_dependence, weight_dependence, None, dendritic_delay_fraction, weight, delay)

    def _get_minimum_delay(self):
        return _min_delay()


class SpikePairRule(synapses.SpikePairRule):
    __doc__ = synapses.SpikePairRule.__doc__
    translations = build_translations(*[(n, n) for n in ("tau_plus", "tau_minus", "A_plus", "A_minus")])


class AdditiveWeightDependence(synapses.AdditiveWeightDependence):
    __doc__ = synapses.AdditiveWeightDependence.__doc__
    translations = build_translations(("w_max", "w_max"), ("w_min", "w_min"))


def _refused(name: str, why: str):
    def __init__(self, *args, **kwargs):
        raise UnsupportedConstruct(f"{name}: {why}")

    return type(name, (), {"__init__": __init__, "__doc__": f"Not available on NeuroCore: {why}."})


_COND = "conductance-based synapses (the core's synapses are current-based)"
#: standard PyNN models the core cannot express, and why
UNSUPPORTED = {
    "IF_cond_exp": _COND,
    "IF_cond_alpha": _COND,
    "IF_cond_exp_gsfa_grr": _COND,
    "HH_cond_exp": "Hodgkin-Huxley dynamics (the core's neurons are LIF)",
    "EIF_cond_alpha_isfa_ista": _COND,
    "EIF_cond_exp_isfa_ista": _COND,
    "GIF_cond_exp": _COND,
    "IF_curr_alpha": "alpha-shaped synaptic currents (the core's current decays exponentially)",
    "IF_facets_hardware1": _COND,
    "Izhikevich": "Izhikevich dynamics (the core's neurons are LIF)",
    "SpikeSourceGamma": "gamma-process spike sources (use SpikeSourceArray)",
    "SpikeSourceInhGamma": "gamma-process spike sources (use SpikeSourceArray)",
    "SpikeSourcePoissonRefractory": "Poisson sources with dead time (use SpikeSourceArray)",
    "TsodyksMarkramSynapse": "short-term plasticity (the core's synapses are static or STDP)",
    "StochasticTsodyksMarkramSynapse": "short-term plasticity (the core's synapses are static or STDP)",
    "SimpleStochasticSynapse": "stochastic transmission (the core's synapses are deterministic)",
    "MultiQuantalSynapse": "stochastic transmission (the core's synapses are deterministic)",
    "ElectricalSynapse": "gap junctions",
    "MultiplicativeWeightDependence": "multiplicative STDP (the core implements additive STDP)",
    "AdditivePotentiationMultiplicativeDepression": "multiplicative STDP (the core implements additive STDP)",
    "GutigWeightDependence": "multiplicative STDP (the core implements additive STDP)",
    "Vogels2011Rule": "the Vogels 2011 rule (the core implements SpikePairRule)",
    "DCSource": "current injection (use i_offset, a constant bias)",
    "ACSource": "current injection (use i_offset, a constant bias)",
    "StepCurrentSource": "current injection (use i_offset, a constant bias)",
    "NoisyCurrentSource": "current injection (use i_offset, a constant bias)",
}
globals().update({name: _refused(name, why) for name, why in UNSUPPORTED.items()})
