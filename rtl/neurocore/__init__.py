"""NeuroCoreX-like spiking core: all-to-all LIF neurons, current-based synapses, on-chip STDP.

The semantics (fixed-point formats, update order) are specified by models/snn/params.py.
"""
