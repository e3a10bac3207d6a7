"""NeuroCoreX-like spiking core: all-to-all LIF neurons, current-based synapses, on-chip STDP (spec: models/snn/params.py)."""
