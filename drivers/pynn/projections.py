"""Projection of the NeuroCore PyNN backend: connections are kept as arrays host-side; weights of plastic
projections are read back from the core after a run."""
import numpy as np
from pyNN import common
from pyNN.space import Space

from drivers.pynn import simulator
from drivers.pynn.mapping import UnsupportedConstruct
from drivers.pynn.standardmodels import StaticSynapse, STDPMechanism

__all__ = ["Projection"]


class Projection(common.Projection):
    __doc__ = common.Projection.__doc__
    _simulator = simulator
    _static_synapse_class = StaticSynapse

    def __init__(self, presynaptic_population, postsynaptic_population, connector, synapse_type=None,
                 source=None, receptor_type=None, space=None, label=None):
        simulator.state.check_mutable("creating a Projection")
        if synapse_type is not None and not isinstance(synapse_type, (StaticSynapse, STDPMechanism)):
            raise UnsupportedConstruct(f"synapse type {type(synapse_type).__name__}: use StaticSynapse or "
                                       "STDPMechanism")
        super().__init__(presynaptic_population, postsynaptic_population, connector, synapse_type, source,
                         receptor_type, Space() if space is None else space, label)
        if type(self.post.celltype).__name__.startswith("SpikeSource"):
            raise UnsupportedConstruct(f"projection {self.label!r} targets spike sources")
        self._pre, self._post, self._w, self._d = [], [], [], []
        connector.connect(self)
        simulator.state.projections.append(self)

    def _convergent_connect(self, presynaptic_indices, postsynaptic_index, location_selector=None,
                            **connection_parameters):
        if location_selector is not None:
            raise UnsupportedConstruct("multicompartment connections")
        pre = np.atleast_1d(np.asarray(presynaptic_indices, dtype=np.int64))
        self._pre.append(pre)
        self._post.append(np.full(pre.size, int(postsynaptic_index), dtype=np.int64))
        self._w.append(np.broadcast_to(np.asarray(connection_parameters["weight"], dtype=float), pre.shape).copy())
        self._d.append(np.broadcast_to(np.asarray(connection_parameters["delay"], dtype=float), pre.shape).copy())

    def _cat(self, parts, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    @property
    def _pre_idx(self):
        return self._cat(self._pre, np.int64)

    @property
    def _post_idx(self):
        return self._cat(self._post, np.int64)

    def _weights(self):
        return self._cat(self._w, float)

    def _delays(self):
        return self._cat(self._d, float)

    def flatten(self, by_pop):
        return simulator.flatten_projection(self, by_pop)

    def __len__(self):
        return int(sum(p.size for p in self._pre))

    def set(self, **attributes):
        simulator.state.check_mutable(f"changing projection {self.label!r}")
        raise UnsupportedConstruct("Projection.set(): give weights and delays when the projection is created")

    def _current_weights(self):
        """Weights as the core holds them now (plastic projections after a run), else as created."""
        st = simulator.state
        w = self._weights()
        if not (st.loaded and isinstance(self.synapse_type, STDPMechanism)):
            return w
        proj = self.flatten(st.layout[2])
        m = st.mapping
        post = proj.post.first + proj.post_idx
        src = proj.pre.first + proj.pre_idx if type(proj.pre).__name__ == "NeuronPop" \
            else m.weights.shape[1] + proj.pre.first + proj.pre_idx
        codes = np.asarray(st.core.weights(), dtype=np.int64)[src, post]
        return codes / m.factor[post]

    def _get_attributes_as_list(self, names):
        cols = {"presynaptic_index": self._pre_idx, "postsynaptic_index": self._post_idx,
                "weight": self._current_weights(), "delay": self._delays()}
        for n in names:
            if n not in cols:
                raise UnsupportedConstruct(f"projection attribute {n!r} is not readable on this backend")
        return list(zip(*[cols[n].tolist() for n in names], strict=True))

    def _get_attributes_as_arrays(self, names, multiple_synapses="sum"):
        op = common.Projection.MULTI_SYNAPSE_OPERATIONS[multiple_synapses]
        pre, post = self._pre_idx, self._post_idx
        out = []
        for name in names:
            values = {"weight": self._current_weights, "delay": self._delays}[name.rstrip("s")]()
            arr = np.full((self.pre.size, self.post.size), np.nan)
            for i, j, v in zip(pre, post, values, strict=True):
                arr[i, j] = v if np.isnan(arr[i, j]) else op(arr[i, j], v)
            out.append(arr)
        return out
