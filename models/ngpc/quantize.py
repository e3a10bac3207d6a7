"""A trained float field quantised to the NFP's fixed-point formats, and its golden (integer) evaluation.

The RTL has no notion of an activation scale: features, hidden activations and outputs are signed ``act_bits``
integers on one scale of our choosing (``act_frac`` fraction bits), and a layer computes
``(a . w + 2**(weight_frac-1)) >> weight_frac`` (:mod:`models.ngpc.mlp`). Quantisation (calibrated on sample
positions):

1. each weight matrix is scaled by a power of two ``2**e_k`` (a ReLU network without biases is positively
   homogeneous: the output scales by ``2**sum(e_k)``, undone when dequantising), chosen to keep the layer's
   activations no larger than the encoder's features (one scale serves both, so a layer that grew its activations
   would cost the features their fraction bits), but leaving at most ``SPARE_WEIGHT_BITS`` of the weight format's
   range unused, and never overflowing it;
2. ``act_frac`` is the largest number of fraction bits at which every calibration activation (encoder features, hidden
   activations, outputs of the scaled network) stays within 80 % of the ``act_bits`` range;
3. tables are rounded to ``act_frac`` fraction bits (the encoder's output has its table's scale), weights to
   ``weight_frac``; the first layer is padded with zero columns to the MLP's inputs, the last with zero rows to its
   outputs.

Float output = integer output ``* 2**-(act_frac + sum(e_k))``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.ngpc.golden import encode_fixed, quantize_positions, quantize_tables
from models.ngpc.mlp import mlp_fixed
from models.ngpc.reference import encode_float
from models.ngpc.train import NeuralField

__all__ = ["FixedField", "quantize_field"]

_CHUNK = 1 << 17
SPARE_WEIGHT_BITS = 2     #: weight bits a layer may leave unused to keep its activations near the features'


@dataclass(frozen=True)
class FixedField:
    config: object                   #: the :class:`rtl.ngpc.nfp.NfpConfig` the integers are made for
    tables: list[np.ndarray]         #: per level (params_l, F) signed ``feature_bits`` integers
    weights: list[np.ndarray]        #: per layer, the MLP's shapes, signed ``weight_bits`` integers
    act_frac: int
    out_shift: int                   #: ``sum(e_k)``
    outputs: int                     #: outputs in use (the first ones of the MLP's)

    def positions(self, x: np.ndarray) -> np.ndarray:
        return quantize_positions(self.config.encoder.grid_config, x)

    def golden(self, u: np.ndarray) -> np.ndarray:
        """Integer positions (N, D) -> integer MLP outputs (N, mlp.outputs), the golden models chained."""
        enc, mlp = self.config.encoder, self.config.mlp
        out = []
        for start in range(0, len(u), _CHUNK):
            feats = encode_fixed(enc.grid_config, self.tables, u[start:start + _CHUNK])
            out.append(mlp_fixed(mlp, self.weights, np.pad(feats, ((0, 0), (0, mlp.inputs - feats.shape[1])))))
        return np.concatenate(out) if out else np.zeros((0, mlp.outputs), np.int64)

    def dequantize(self, raw: np.ndarray) -> np.ndarray:
        return np.asarray(raw[:, :self.outputs], np.float64) * 2.0 ** -(self.act_frac + self.out_shift)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Float positions -> float outputs through the golden model (positions quantised to ``pos_bits``)."""
        return self.dequantize(self.golden(self.positions(x)))


def _weight_exponent(w: np.ndarray, bits: int, frac: int) -> int:
    top = ((1 << (bits - 1)) - 1) / (1 << frac)
    peak = float(np.max(np.abs(w)))
    return 0 if peak == 0 else math.floor(math.log2(top / peak))


def quantize_field(net: NeuralField, config, calibration_x: np.ndarray) -> FixedField:
    """Quantise ``net`` for the NFP ``config`` (an :class:`rtl.ngpc.nfp.NfpConfig`); see the module docstring."""
    enc, mlp = config.encoder, config.mlp
    if net.grid != enc.grid_config:
        raise ValueError("the network's grid is not the NFP encoder's")
    if [w.shape[0] for w in net.weights[:-1]] != [mlp.width] * mlp.hidden_layers or net.outputs > mlp.outputs:
        raise ValueError("the network's MLP does not fit the NFP's MLP engine")
    a = encode_float(net.grid, net.tables, calibration_x).astype(np.float64)
    feature_peak = peak = float(np.max(np.abs(a)))
    exps, scaled = [], []
    for k, w in enumerate(net.weights):
        y = a @ np.asarray(w, np.float64).T
        top = _weight_exponent(w, mlp.weight_bits, mlp.weight_frac)
        grow = float(np.max(np.abs(y)))
        balance = math.floor(math.log2(feature_peak / grow)) if grow > 0 and feature_peak > 0 else top
        exps.append(min(top, max(top - SPARE_WEIGHT_BITS, balance)))
        scaled.append(np.asarray(w, np.float64) * 2.0 ** exps[-1])
        a = y * 2.0 ** exps[-1]
        if k < len(net.weights) - 1:
            a = np.maximum(a, 0)
        peak = max(peak, float(np.max(np.abs(a))))
    limit = 0.8 * ((1 << (mlp.act_bits - 1)) - 1)
    act_frac = min(mlp.act_bits - 2, max(0, math.floor(math.log2(limit / peak)))) if peak > 0 else mlp.act_bits - 2
    tables = quantize_tables(enc.grid_config, net.tables, act_frac)
    lo, hi = -(1 << (mlp.weight_bits - 1)), (1 << (mlp.weight_bits - 1)) - 1
    weights = [np.clip(np.round(w * (1 << mlp.weight_frac)), lo, hi).astype(np.int64) for w in scaled]
    weights[0] = np.pad(weights[0], ((0, 0), (0, mlp.inputs - weights[0].shape[1])))
    weights[-1] = np.pad(weights[-1], ((0, mlp.outputs - weights[-1].shape[0]), (0, 0)))
    return FixedField(config, tables, weights, act_frac, sum(exps), net.outputs)
