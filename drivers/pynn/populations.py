"""Population, PopulationView and Assembly of the NeuroCore PyNN backend (parameters kept host-side until
the core is loaded; see :mod:`drivers.pynn.simulator`)."""
import numpy as np
from pyNN import common
from pyNN.parameters import ParameterSpace, simplify
from pyNN.standardmodels import StandardCellType

from drivers.pynn import simulator
from drivers.pynn.mapping import UnsupportedConstruct
from drivers.pynn.recording import Recorder
from drivers.pynn.standardmodels import SUPPORTED_CELLS

__all__ = ["Assembly", "Population", "PopulationView"]


class Assembly(common.Assembly):
    _simulator = simulator


class PopulationView(common.PopulationView):
    _assembly_class = Assembly
    _simulator = simulator

    def _get_parameters(self, *names):
        ps = self.parent._get_parameters(*names)
        return ParameterSpace({k: simplify(np.asarray(v)[self.mask]) for k, v in ps.items()}, shape=(self.size,))

    def _set_parameters(self, parameter_space):
        if not type(self.parent.celltype).__name__.startswith("SpikeSource"):
            simulator.state.check_mutable(f"changing parameters of {self.parent.label!r}")
        parameter_space.evaluate(simplify=False)
        for name, value in parameter_space.items():
            self.parent._parameters[name][self.mask] = value

    def _set_initial_value_array(self, variable, initial_values):
        simulator.state.check_mutable(f"initialising {self.parent.label!r}")

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)


class Population(common.Population):
    __doc__ = common.Population.__doc__
    _simulator = simulator
    _recorder_class = Recorder
    _assembly_class = Assembly

    def __init__(self, size, cellclass, cellparams=None, structure=None, initial_values=None, label=None):
        simulator.state.check_mutable("creating a Population")
        super().__init__(size, cellclass, cellparams, structure, initial_values or {}, label)
        if not isinstance(self.celltype, SUPPORTED_CELLS):
            raise UnsupportedConstruct(f"cell type {type(self.celltype).__name__} is not one of this backend's "
                                       f"{[c.__name__ for c in SUPPORTED_CELLS]}")
        simulator.state.populations.append(self)

    def _create_cells(self):
        state = simulator.state
        ids = np.arange(state.id_counter, state.id_counter + self.size)
        self.all_cells = np.array([simulator.ID(i) for i in ids], dtype=simulator.ID)
        self._mask_local = np.ones(self.size, dtype=bool)
        ps = self.celltype.native_parameters if isinstance(self.celltype, StandardCellType) \
            else self.celltype.parameter_space
        ps.shape = (self.size,)
        ps.evaluate(mask=self._mask_local, simplify=False)
        self._parameters = ps.as_dict()
        for cell in self.all_cells:
            cell.parent = self
        state.id_counter += self.size

    def _set_initial_value_array(self, variable, initial_values):
        simulator.state.check_mutable(f"initialising {self.label!r}")

    def _get_view(self, selector, label=None):
        return PopulationView(self, selector, label)

    def _get_parameters(self, *names):
        native = self.celltype.get_native_names(*names)
        ps = ParameterSpace({k: simplify(self._parameters[k]) for k in native}, shape=(self.local_size,))
        return self.celltype.reverse_translate(ps)

    def _set_parameters(self, parameter_space):
        if not type(self.celltype).__name__.startswith("SpikeSource"):    # sources live host-side: may change
            simulator.state.check_mutable(f"changing parameters of {self.label!r}")
        parameter_space.evaluate(simplify=False, mask=self._mask_local)
        for name, value in parameter_space.items():
            self._parameters[name] = value
