"""Recorder of the NeuroCore PyNN backend: spikes of every population, membrane potentials of neurons, one
sample per step (the value at the end of the step), as the core produces them."""
import numpy as np
from pyNN import recording

from drivers.pynn import simulator
from drivers.pynn.mapping import UnsupportedConstruct

__all__ = ["Recorder"]


class Recorder(recording.Recorder):
    _simulator = simulator

    def __init__(self, population, file=None):
        super().__init__(population, file)
        self._clear_data()

    def _clear_data(self):
        self._spike_steps, self._spike_idx, self._v = [], [], []
        self._v_ids = []

    def _record(self, variable, new_ids, sampling_interval=None):
        if sampling_interval is not None and abs(sampling_interval - self._simulator.state.dt) > 1e-12:
            raise UnsupportedConstruct("recording with a sampling interval other than the timestep")
        if variable.name not in ("spikes", "v"):
            raise UnsupportedConstruct(f"recording {variable.name!r}: the core records spikes and v")
        simulator.state.check_mutable(f"recording {variable.name} of {self.population.label!r}")

    def _spec(self):
        st = self._simulator.state
        return st.layout[2][id(self.population)]

    def core_indices(self, name):
        ids = [v for k, v in self.recorded.items() if k.name == name]
        if not ids:
            return []
        spec = self._spec()
        return [spec.first + int(self.population.id_to_index(i)) for i in sorted(ids[0])]

    def store(self, step0, raster, inputs, v_idx, v):
        """Keep this population's part of one run's output (called by the simulator after every run)."""
        spec = self._spec()
        is_source = type(spec).__name__ == "SourcePop"
        block = (inputs if is_source else raster)[:, spec.first:spec.first + spec.size]
        t, j = np.nonzero(block)
        self._spike_steps.append(step0 + t)
        self._spike_idx.append(j)
        mine = self.core_indices("v")
        if mine and v is not None:
            cols = np.searchsorted(v_idx, mine)
            self._v.append(v[:, cols])
            self._v_ids = mine

    def _get_spiketimes(self, requested_ids, clear=False):
        dt = self._simulator.state.dt
        steps = np.concatenate(self._spike_steps) if self._spike_steps else np.zeros(0, dtype=np.int64)
        idx = np.concatenate(self._spike_idx) if self._spike_idx else np.zeros(0, dtype=np.int64)
        ids = np.asarray(self.population.all_cells, dtype=np.int64)[idx]
        keep = np.isin(ids, np.asarray(list(requested_ids), dtype=np.int64))
        if clear:
            self._spike_steps, self._spike_idx = [], []
        return ids[keep], steps[keep].astype(float) * dt

    def _get_all_signals(self, variable, ids, clear=False):
        st = self._simulator.state
        mapping = st.mapping
        spec = self._spec()
        v0 = np.asarray(self.population.initial_values["v"].evaluate(simplify=False), dtype=float)
        want = [spec.first + int(self.population.id_to_index(i)) for i in ids]
        rows = [v0[[w - spec.first for w in want]]]
        if self._v:
            allv = np.concatenate(self._v) * mapping.v_lsb
            cols = [self._v_ids.index(w) for w in want]
            rows.append(allv[:, cols])
        values = np.vstack(rows)
        if clear:
            self._v = []
        return values, None

    def _local_count(self, variable, filter_ids=None):
        ids, _ = self._get_spiketimes(self.filter_recorded(variable, filter_ids))
        out = {int(i): 0 for i in self.filter_recorded(variable, filter_ids)}
        for i in ids:
            out[int(i)] += 1
        return out

    def _clear_simulator(self):
        self._clear_data()

    def _reset(self):
        self._clear_data()
