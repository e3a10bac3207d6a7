"""Fixed-point golden model of the NGPC MLP engine: tiny-cuda-nn's FullyFusedMLP shape, integer arithmetic.

Shape (tiny-cuda-nn): ``hidden_layers`` hidden layers of ``width`` neurons (16, 32, 64 or 128), ReLU, **no biases**,
input and output widths multiples of 16 (unused inputs are zero, unused outputs ignored); the output layer has no
activation. ``hidden_layers + 1`` weight matrices, layer ``k`` of shape (outputs_k, inputs_k).

Formats (the GPU's fp16 WMMA cannot be matched bit for bit, so this is our own definition):

* activations (also the input features, the encoder's output): signed ``act_bits`` integers, all the same scale;
* weights: signed ``weight_bits`` integers with ``weight_frac`` fraction bits;
* a layer: ``acc = sum_i a_i * w_ji`` exact, ``y = (acc + 2**(weight_frac - 1)) >> weight_frac``, saturated to
  ``act_bits`` signed, then ReLU (``max(y, 0)``) on hidden layers.
"""
from dataclasses import dataclass

import numpy as np

__all__ = ["MlpConfig", "mlp_fixed", "mlp_float", "random_weights"]


@dataclass(frozen=True)
class MlpConfig:
    inputs: int = 16
    width: int = 64
    hidden_layers: int = 1
    outputs: int = 16
    weight_bits: int = 8
    weight_frac: int = 6
    act_bits: int = 16

    def __post_init__(self):
        if self.width not in (16, 32, 64, 128):
            raise ValueError(f"width must be 16, 32, 64 or 128, not {self.width}")
        for name in ("inputs", "outputs"):
            value = getattr(self, name)
            if value < 16 or value % 16:
                raise ValueError(f"{name} must be a positive multiple of 16, not {value}")
        if not 1 <= self.hidden_layers <= 8:
            raise ValueError(f"hidden_layers must be in 1..8, not {self.hidden_layers}")
        if not 2 <= self.weight_bits <= 16 or not 1 <= self.weight_frac < self.weight_bits:
            raise ValueError("need 2 <= weight_bits <= 16 and 1 <= weight_frac < weight_bits")
        if not 4 <= self.act_bits <= 24:
            raise ValueError(f"act_bits must be in 4..24, not {self.act_bits}")

    @property
    def layer_shapes(self) -> list[tuple[int, int]]:
        """(outputs, inputs) of each weight matrix, input layer first."""
        return ([(self.width, self.inputs)] + [(self.width, self.width)] * (self.hidden_layers - 1)
                + [(self.outputs, self.width)])

    @property
    def macs(self) -> int:
        """Multiply-accumulates per query (= multipliers per lane at one query per cycle)."""
        return sum(o * i for o, i in self.layer_shapes)


def mlp_fixed(config: MlpConfig, weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """Integer inputs ``x`` (N, inputs) through integer ``weights`` -> (N, outputs) int64."""
    lo, hi = -(1 << (config.act_bits - 1)), (1 << (config.act_bits - 1)) - 1
    a = np.asarray(x, dtype=np.int64)
    last = len(config.layer_shapes) - 1
    for k, (w, shape) in enumerate(zip(weights, config.layer_shapes, strict=True)):
        w = np.asarray(w, dtype=np.int64)
        if w.shape != shape:
            raise ValueError(f"layer {k}: weights of shape {w.shape}, need {shape}")
        if w.size and not -(1 << (config.weight_bits - 1)) <= w.min() <= w.max() < 1 << (config.weight_bits - 1):
            raise ValueError(f"layer {k}: weights outside {config.weight_bits}-bit signed range")
        y = np.clip((a @ w.T + (1 << (config.weight_frac - 1))) >> config.weight_frac, lo, hi)
        a = y if k == last else np.maximum(y, 0)
    return a


def mlp_float(weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The same network in float64 (ReLU on hidden layers, no biases)."""
    a = np.asarray(x, dtype=np.float64)
    for k, w in enumerate(weights):
        a = a @ np.asarray(w, dtype=np.float64).T
        if k < len(weights) - 1:
            a = np.maximum(a, 0)
    return a


def random_weights(config: MlpConfig, rng: np.random.Generator) -> list[np.ndarray]:
    """Uniform random integer weights over the full ``weight_bits`` range."""
    half = 1 << (config.weight_bits - 1)
    return [rng.integers(-half, half, shape) for shape in config.layer_shapes]
