"""Fault-injection workload of the NGPC cluster (design ``ngpc``): load a model, then a batch of random queries.

The stimulus writes random integer tables (every level, every entry: one entry per cycle through the broadcast
``table`` port) and random MLP weights (one row per cycle), idles one cycle, then offers one batch of N queries
(one per lane) per cycle, ``results`` always ready, and drains the pipeline. Faults are injected over the whole run,
the model load included (a flip in a table word before it is written is overwritten: MASKED).

Observed: ``results.valid`` and ``results.payload`` on the cycles the fault-free run delivers a batch of results
(``results.valid`` high), which is what a consumer reading a fixed number of results sees. SDC is the engine's
verdict: any result bit differs (the any-bit mismatch). How large the error of an SDC is -- the batch's largest
output difference in LSB and its PSNR against the fault-free results -- is measured by :func:`output_error` (a
full replay of that injection); the workload's judge (:func:`visible_sdc`) records per SDC, in the campaign's
``top1`` column, whether it is *visible*: the largest difference exceeds
:func:`visible_lsb` ``= 2**(frac - 8)`` LSB, one step of an 8-bit display channel whose full scale is 1.0 at
``frac`` = ``act_bits - 4`` fraction bits (the Q3.12 format of 16-bit activations: 16 LSB).
"""
import numpy as np

from base import RampartError
from drivers.ngpc import pack_fields
from faultinj.workload import Workload

__all__ = ["delivered_results", "expected_results", "ngpc_queries", "output_error", "visible_lsb", "visible_sdc"]

DEFAULT_BATCHES = 64


def visible_lsb(config) -> int:
    """The SDC threshold in output LSB (module docstring): one 8-bit display step at ``act_bits - 4`` fraction bits."""
    return 1 << max(0, config.nfp.mlp.act_bits - 12)


def _model(config, rng):
    enc, mlp = config.nfp.encoder, config.nfp.mlp
    table_range = 1 << (enc.feature_bits - 4)                    # |value| < 1.0 at feature_bits - 4 fraction bits
    tables = [rng.integers(-table_range, table_range, (lv.params, enc.features)) for lv in enc.level_geometry]
    weight_range = min(1 << (mlp.weight_bits - 1), 1 << (mlp.weight_frac - 2))     # |w| <= 1/4: little saturation
    weights = [rng.integers(-weight_range, weight_range, shape) for shape in mlp.layer_shapes]
    return tables, weights


def _load_stimulus(config, tables, weights) -> dict[str, np.ndarray]:
    enc, mlp = config.nfp.encoder, config.nfp.mlp
    levels = np.concatenate([np.full(lv.params, lv.index) for lv in enc.level_geometry])
    addrs = np.concatenate([np.arange(lv.params) for lv in enc.level_geometry])
    widest = max(i for _, i in mlp.layer_shapes)
    layers = np.concatenate([np.full(o, k) for k, (o, _) in enumerate(mlp.layer_shapes)])
    rows = np.concatenate([np.arange(o) for o, _ in mlp.layer_shapes])
    t, w = len(levels), len(layers)
    n = t + w + 1
    zeros = np.zeros(n, np.uint32)
    stim = {"table__en": zeros.copy(), "table__level": zeros.copy(), "table__addr": zeros.copy(),
            "table__data": np.zeros((n, pack_fields(np.zeros((1, enc.features)), enc.feature_bits).shape[1]),
                                    np.uint32),
            "weights__en": zeros.copy(), "weights__layer": zeros.copy(), "weights__row": zeros.copy(),
            "weights__data": np.zeros((n, pack_fields(np.zeros((1, widest)), mlp.weight_bits).shape[1]),
                                      np.uint32)}
    stim["table__en"][:t], stim["table__level"][:t], stim["table__addr"][:t] = 1, levels, addrs
    stim["table__data"][:t] = pack_fields(np.concatenate(tables), enc.feature_bits)
    stim["weights__en"][t:t + w], stim["weights__layer"][t:t + w], stim["weights__row"][t:t + w] = 1, layers, rows
    stim["weights__data"][t:t + w] = pack_fields(
        np.concatenate([np.pad(x, ((0, 0), (0, widest - x.shape[1]))) for x in weights]), mlp.weight_bits)
    return stim


def ngpc_queries(config, seed: int = 0, cycles: int | None = None) -> Workload:
    """A random model (tables and weights) written to the cluster, then 64 batches of N random queries (or as many
    as fit in ``cycles``); SDC: any result bit of a delivered batch differs (its size: :func:`output_error`)."""
    rng = np.random.default_rng(seed)
    enc, n = config.nfp.encoder, config.lanes
    tables, weights = _model(config, rng)
    load = _load_stimulus(config, tables, weights)
    start = len(load["table__en"])
    tail = config.latency + 1
    batches = DEFAULT_BATCHES if cycles is None else cycles - start - tail
    if batches < 1:
        raise RampartError(f"ngpc_queries needs more than {start + tail} cycles (model load and pipeline), "
                           f"not {cycles}")
    total = start + batches + tail
    u = rng.integers(0, 1 << enc.pos_bits, (batches * n, enc.dims))
    inputs = {k: np.concatenate([v, np.zeros((total - start,) + v.shape[1:], np.uint32)]) for k, v in load.items()}
    payload = pack_fields(u.reshape(batches, n * enc.dims), enc.pos_bits)
    inputs["query__valid"] = np.zeros(total, np.uint32)
    inputs["query__valid"][start:start + batches] = 1
    inputs["query__payload"] = np.zeros((total, payload.shape[1]), np.uint32)
    inputs["query__payload"][start:start + batches] = payload
    inputs["results__ready"] = np.ones(total, np.uint32)
    observe = np.zeros(total, dtype=bool)
    first = start + config.latency
    observe[first:first + batches] = True
    params = {"seed": seed, "batches": batches, "first_result": first, "tables": tables, "weights": weights,
              "u": u, "visible_lsb": visible_lsb(config)}
    return Workload("ngpc_queries", "ngpc", config, inputs, ("results__valid", "results__payload"), observe, params,
                    judge="faultinj.workloads.ngpc:visible_sdc")


def expected_results(workload: Workload) -> np.ndarray:
    """The results the workload's queries must give, (batches * N, outputs), from the golden models (not the RTL)."""
    from models.ngpc.golden import encode_fixed
    from models.ngpc.mlp import mlp_fixed

    config, p = workload.config, workload.params
    mlp = config.nfp.mlp
    features = encode_fixed(config.nfp.encoder.grid_config, p["tables"], p["u"])
    return mlp_fixed(mlp, p["weights"], np.pad(features, ((0, 0), (0, mlp.inputs - features.shape[1]))))


def delivered_results(workload: Workload, trace: dict) -> np.ndarray:
    """The results in a ``run_stimulus`` trace's ``results__payload`` on the observed cycles: (batches * N, outputs)."""
    from drivers.ngpc import unpack_fields

    mlp, n = workload.config.nfp.mlp, workload.config.lanes
    words = trace["results__payload"][np.asarray(workload.observe)]
    return unpack_fields(words, mlp.act_bits, n * mlp.outputs).reshape(-1, mlp.outputs)


def output_error(workload: Workload, build_, site: int, cycle: int, upset: int = 1) -> dict:
    """Replay one injection (fresh model, ``upset`` bits flipped after ``cycle`` edges as the engine does, run to the
    end) and measure its results against the fault-free ones: ``max_lsb`` (largest |difference|), ``mismatched``
    (outputs that differ), ``psnr_db`` (peak: the activation range; inf when equal), ``visible`` (max_lsb above the
    threshold)."""
    from sim.harness import NativeSim

    with NativeSim(build_) as sim:
        clean = sim.run_stimulus(workload.inputs, ["results__payload"])
    with NativeSim(build_) as sim:          # as the engine's runs: from the model's initial state, no reset
        sim.run_stimulus({k: v[:cycle] for k, v in workload.inputs.items()}, [])
        sim.flip_upset(int(site), upset)
        tail = sim.run_stimulus({k: v[cycle:] for k, v in workload.inputs.items()}, ["results__payload"])
    faulty = {"results__payload": np.concatenate([clean["results__payload"][:cycle], tail["results__payload"]])}
    good = delivered_results(workload, clean).astype(np.float64)
    bad = delivered_results(workload, faulty).astype(np.float64)
    diff = np.abs(bad - good)
    mse = float(np.mean(diff ** 2))
    peak = float(1 << workload.config.nfp.mlp.act_bits)
    max_lsb = int(diff.max())
    return {"max_lsb": max_lsb, "mismatched": int(np.count_nonzero(diff)),
            "psnr_db": float("inf") if mse == 0 else float(10 * np.log10(peak ** 2 / mse)),
            "visible": max_lsb > workload.params["visible_lsb"]}


def visible_sdc(workload: Workload, build_, sites, cycles, upset: int = 1) -> np.ndarray:
    """The workload's judge (:mod:`faultinj.workload`): 1 per SDC fault whose error is visible, else 0."""
    return np.array([int(output_error(workload, build_, int(s), int(c), upset)["visible"])
                     for s, c in zip(sites, cycles, strict=True)], dtype=np.int8)
