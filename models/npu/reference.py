"""Run a .tflite model with LiteRT's reference kernels: the bit-exact golden output for the NPU.

LiteRT's default kernels (XNNPACK / optimised) differ from the reference kernels by 1-2 LSB on some conv, depthwise
and MUL layers (``/work/shared/research/toolchain.md``), so the interpreter is always built with
``OpResolverType.BUILTIN_REF`` and one thread.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from .tflite_builder import model_bytes


class ReferenceModelError(ValueError):
    """The model cannot be loaded by LiteRT or the input does not fit it."""


class ReferenceModel:
    """A loaded model; :meth:`run` may be called many times."""

    def __init__(self, model) -> None:
        self._data = model_bytes(model)
        try:
            self._it = Interpreter(model_content=self._data, num_threads=1,
                                   experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
            self._it.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ReferenceModelError(f"LiteRT rejected the model: {e}") from e
        self.inputs = self._it.get_input_details()
        self.outputs = self._it.get_output_details()

    @property
    def input_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(int(x) for x in d["shape"]) for d in self.inputs]

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(int(x) for x in d["shape"]) for d in self.outputs]

    @property
    def operators(self) -> set[str]:
        """The builtin operator names the model uses (e.g. ``FULLY_CONNECTED``)."""
        return {d["op_name"] for d in self._it._get_ops_details()}

    def run_all(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """Run on one array per graph input; return every graph output (copies)."""
        if len(inputs) != len(self.inputs):
            raise ReferenceModelError(f"model has {len(self.inputs)} input(s), got {len(inputs)}")
        for det, x in zip(self.inputs, inputs, strict=True):
            x = np.asarray(x)
            shape = tuple(int(s) for s in det["shape"])
            if x.dtype != det["dtype"]:
                want = np.dtype(det["dtype"]).name
                raise ReferenceModelError(f"input '{det['name']}' needs dtype {want}, got {x.dtype}")
            if x.size != int(np.prod(shape)):
                raise ReferenceModelError(f"input '{det['name']}' needs shape {shape}, got {x.shape}")
            self._it.set_tensor(det["index"], np.ascontiguousarray(x.reshape(shape)))
        self._it.invoke()
        return [self._it.get_tensor(d["index"]).copy() for d in self.outputs]

    def run(self, x: np.ndarray) -> np.ndarray:
        """Single-input, single-output convenience: the int8 output array."""
        if len(self.outputs) != 1:
            raise ReferenceModelError(f"model has {len(self.outputs)} outputs; use run_all")
        return self.run_all(x)[0]

    def random_input(self, rng: np.random.Generator, index: int = 0) -> np.ndarray:
        """A uniformly random input of the right shape and (integer) dtype."""
        det = self.inputs[index]
        info = np.iinfo(det["dtype"])
        return rng.integers(info.min, info.max + 1, size=tuple(det["shape"]), dtype=det["dtype"])


def run_reference(model, x: np.ndarray) -> np.ndarray:
    """Run ``model`` (.tflite bytes, path or TfliteModel) once with the reference kernels; return the int8 output."""
    return ReferenceModel(model).run(x)


__all__ = ["ReferenceModelError", "ReferenceModel", "run_reference"]
