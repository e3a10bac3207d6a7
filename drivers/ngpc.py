"""Host side of the NGPC engines (grid encoder, MLP) in the native harness: numpy in, numpy out, no per-query Python.

:class:`EncoderHost` loads integer tables through the engine's write port (one entry per cycle) and streams batches
of integer positions through the ``query``/``features`` streams with :meth:`sim.harness.NativeSim.run_stimulus`
(one C call per batch). Formats: :mod:`models.ngpc.params`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from base import RampartError
from models.ngpc.mlp import MlpConfig
from rtl.ngpc.cluster import ClusterConfig
from rtl.ngpc.config import NgpcConfig
from rtl.ngpc.encoder import LATENCY
from rtl.ngpc.nfp import NfpConfig

__all__ = ["ClusterHost", "EncoderHost", "EncodeResult", "MlpHost", "NfpHost", "pack_fields", "stream_batch",
           "unpack_fields"]


def pack_fields(values: np.ndarray, bits: int) -> np.ndarray:
    """Rows of unsigned fields (field 0 in the low bits) -> (rows, words) uint32, 32-bit words little-endian."""
    values = np.asarray(values, dtype=np.uint64) & np.uint64((1 << bits) - 1)
    rows, fields = values.shape
    total = fields * bits
    words = np.zeros((rows, (total + 31) // 32), dtype=np.uint64)
    for i in range(fields):
        lo = i * bits
        word, shift = divmod(lo, 32)
        words[:, word] |= (values[:, i] << np.uint64(shift)) & np.uint64(0xFFFFFFFF)
        if shift + bits > 32:
            words[:, word + 1] |= values[:, i] >> np.uint64(32 - shift)
    return words.astype(np.uint32)


def unpack_fields(words: np.ndarray, bits: int, fields: int, signed: bool = True) -> np.ndarray:
    """Inverse of :func:`pack_fields` (``bits`` <= 32): (rows, words) uint32 -> (rows, fields) int64."""
    words = np.asarray(words, dtype=np.uint64)
    padded = np.concatenate([words, np.zeros((words.shape[0], 1), dtype=np.uint64)], axis=1)
    out = np.empty((words.shape[0], fields), dtype=np.int64)
    for i in range(fields):
        word, shift = divmod(i * bits, 32)
        pair = padded[:, word] | (padded[:, word + 1] << np.uint64(32))
        out[:, i] = ((pair >> np.uint64(shift)) & np.uint64((1 << bits) - 1)).astype(np.int64)
    if signed:
        out = np.where(out >= 1 << (bits - 1), out - (1 << bits), out)
    return out


@dataclass(frozen=True)
class EncodeResult:
    features: np.ndarray    #: (accepted queries, output fields) int64, in order
    accepted: np.ndarray    #: indices (into the stimulus) of the queries the engine accepted
    cycles: int             #: cycles run
    first_accept: int       #: cycle of the first accepted query
    first_output: int       #: cycle of the first output transfer
    last_output: int        #: cycle of the last output transfer

    @property
    def queries_per_cycle(self) -> float:
        """Steady-state throughput: outputs over the cycles from the first output to the last."""
        return len(self.features) / (self.last_output - self.first_output + 1)


class EncoderHost:
    def __init__(self, sim, config: NgpcConfig, reset: bool = True):
        self.sim, self.config = sim, config
        if reset:
            sim.reset()

    def load_tables(self, tables: list[np.ndarray]) -> int:
        """Write every level's integer table (shape (params_l, F)) through the write port; returns the cycles used."""
        cfg = self.config
        levels, addrs, datas = [], [], []
        for level, table in zip(cfg.level_geometry, tables, strict=True):
            table = np.asarray(table, dtype=np.int64)
            if table.shape != (level.params, cfg.features):
                need = (level.params, cfg.features)
                raise RampartError(f"level {level.index}: table shape {table.shape}, need {need}")
            levels.append(np.full(level.params, level.index))
            addrs.append(np.arange(level.params))
            datas.append(table)
        data = pack_fields(np.concatenate(datas), cfg.feature_bits)
        n = len(data)
        self.sim.run_stimulus({"table__en": np.ones(n, np.uint32), "table__level": np.concatenate(levels),
                               "table__addr": np.concatenate(addrs), "table__data": data,
                               "query__valid": np.zeros(n, np.uint32)}, [])
        self.sim.run_stimulus({"table__en": np.zeros(1, np.uint32)}, [])
        return n + 1

    def encode(self, u: np.ndarray, ready: np.ndarray | None = None) -> EncodeResult:
        """Offer query ``i`` on cycle ``i`` (valid every cycle), with ``features.ready`` from ``ready`` (default
        always), then drain. A query offered while ``query.ready`` is low is not taken (see ``accepted``)."""
        cfg = self.config
        return stream_batch(self.sim, "query", "features", pack_fields(u, cfg.pos_bits), LATENCY,
                            cfg.feature_bits, cfg.levels * cfg.features, ready)


def stream_batch(sim, source: str, sink: str, payload: np.ndarray, latency: int, out_bits: int, out_fields: int,
                 ready: np.ndarray | None = None) -> EncodeResult:
    """Offer row ``i`` of ``payload`` (packed words) on stream ``source`` at cycle ``i``, take ``sink`` whenever
    ``ready`` (default: always) is high, drain, and unpack the outputs (signed ``out_bits`` fields)."""
    n = len(payload)
    drain = latency + (0 if ready is None else int(np.count_nonzero(np.asarray(ready) == 0)))
    cycles = n + drain
    ready = np.ones(cycles, np.uint32) if ready is None else np.concatenate(
        [np.asarray(ready, np.uint32), np.ones(cycles - len(ready), np.uint32)])[:cycles]
    payload = np.concatenate([payload, np.zeros((drain, payload.shape[1]), np.uint32)])
    valid = np.concatenate([np.ones(n, np.uint32), np.zeros(drain, np.uint32)])
    out = sim.run_stimulus({f"{source}__valid": valid, f"{source}__payload": payload, f"{sink}__ready": ready},
                           [f"{source}__ready", f"{sink}__valid", f"{sink}__payload"])
    accepted = np.flatnonzero((out[f"{source}__ready"][:, 0] == 1) & (valid == 1))
    taken = np.flatnonzero((out[f"{sink}__valid"][:, 0] == 1) & (ready == 1))
    features = unpack_fields(out[f"{sink}__payload"][taken], out_bits, out_fields)
    first = int(accepted[0]) if len(accepted) else -1
    return EncodeResult(features, accepted, cycles, first, int(taken[0]) if len(taken) else -1,
                        int(taken[-1]) if len(taken) else -1)


class MlpHost:
    """The MLP engine (``ngpc_mlp``) in the native harness: weights through the write port, batches streamed."""

    def __init__(self, sim, config: MlpConfig, reset: bool = True, source: str = "inputs"):
        self.sim, self.config, self.source = sim, config, source   # source: the input stream held idle on loads
        if reset:
            sim.reset()

    def load_weights(self, weights: list[np.ndarray]) -> int:
        cfg = self.config
        widest = max(i for _, i in cfg.layer_shapes)
        layers, rows, datas = [], [], []
        for k, (w, shape) in enumerate(zip(weights, cfg.layer_shapes, strict=True)):
            w = np.asarray(w, dtype=np.int64)
            if w.shape != shape:
                raise RampartError(f"layer {k}: weights of shape {w.shape}, need {shape}")
            layers.append(np.full(shape[0], k))
            rows.append(np.arange(shape[0]))
            datas.append(np.pad(w, ((0, 0), (0, widest - shape[1]))))
        data = pack_fields(np.concatenate(datas), cfg.weight_bits)
        n = len(data)
        self.sim.run_stimulus({"weights__en": np.ones(n, np.uint32), "weights__layer": np.concatenate(layers),
                               "weights__row": np.concatenate(rows), "weights__data": data,
                               f"{self.source}__valid": np.zeros(n, np.uint32)}, [])
        self.sim.run_stimulus({"weights__en": np.zeros(1, np.uint32)}, [])
        return n + 1

    def run(self, x: np.ndarray, ready: np.ndarray | None = None) -> EncodeResult:
        cfg = self.config
        return stream_batch(self.sim, "inputs", "outputs", pack_fields(x, cfg.act_bits), len(cfg.layer_shapes),
                            cfg.act_bits, cfg.outputs, ready)


class NfpHost:
    """The neural-fields processor (``ngpc_nfp``): tables and weights through their write ports, queries streamed."""

    def __init__(self, sim, config: NfpConfig):
        self.sim, self.config = sim, config
        sim.reset()
        self.encoder = EncoderHost(sim, config.encoder, reset=False)
        self.mlp = MlpHost(sim, config.mlp, reset=False, source="query")

    def load(self, tables: list[np.ndarray], weights: list[np.ndarray]) -> int:
        return self.encoder.load_tables(tables) + self.mlp.load_weights(weights)

    def run(self, u: np.ndarray, ready: np.ndarray | None = None) -> EncodeResult:
        enc, mlp = self.config.encoder, self.config.mlp
        return stream_batch(self.sim, "query", "outputs", pack_fields(u, enc.pos_bits), self.config.latency,
                            mlp.act_bits, mlp.outputs, ready)


class ClusterHost:
    """The cluster (design ``ngpc``): the same tables and weights written once (broadcast to every lane), queries
    streamed N per batch (query ``k`` of the batch to lane ``k``); :meth:`run` pads the last batch with copies of
    query 0 and drops their results."""

    def __init__(self, sim, config: ClusterConfig):
        self.sim, self.config = sim, config
        sim.reset()
        self.encoder = EncoderHost(sim, config.nfp.encoder, reset=False)
        self.mlp = MlpHost(sim, config.nfp.mlp, reset=False, source="query")

    def load(self, tables: list[np.ndarray], weights: list[np.ndarray]) -> int:
        return self.encoder.load_tables(tables) + self.mlp.load_weights(weights)

    def batches(self, u: np.ndarray) -> np.ndarray:
        """Positions (Q, D) -> packed batches (ceil(Q / N), words), padded with query 0."""
        cfg, n = self.config, self.config.lanes
        u = np.asarray(u, dtype=np.int64)
        pad = -len(u) % n
        u = np.concatenate([u, np.repeat(u[:1], pad, axis=0)])
        return pack_fields(u.reshape(len(u) // n, n * cfg.nfp.encoder.dims), cfg.nfp.encoder.pos_bits)

    def run(self, u: np.ndarray, ready: np.ndarray | None = None) -> EncodeResult:
        """Stream ``u`` (Q, D) in batches of N, batch ``b`` offered on cycle ``b``; ``accepted`` indexes the batches
        taken and ``features`` holds their results, (N * len(accepted), outputs), query ``b * N + k`` in row
        ``i * N + k`` for ``b = accepted[i]`` (the padding's results included)."""
        cfg, mlp = self.config, self.config.nfp.mlp
        result = stream_batch(self.sim, "query", "results", self.batches(u), cfg.latency, mlp.act_bits,
                              cfg.lanes * mlp.outputs, ready)
        per_query = result.features.reshape(-1, mlp.outputs)
        return EncodeResult(per_query, result.accepted, result.cycles, result.first_accept, result.first_output,
                            result.last_output)
