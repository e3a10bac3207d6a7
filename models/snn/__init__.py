"""Golden models and workloads of the NeuroCoreX-like SNN core.

``params`` (configuration, fixed-point encodings: the specification), ``golden`` (bit-exact numpy model),
``brian2_ref`` (Brian2 float reference; imports brian2 lazily), ``stimulus`` (spike-train generators).
"""

from models.snn.golden import GoldenCore
from models.snn.params import CoreConfig, FixedScale, NeuronParams, StdpParams, SynapseParams

__all__ = ["CoreConfig", "FixedScale", "GoldenCore", "NeuronParams", "StdpParams", "SynapseParams"]
