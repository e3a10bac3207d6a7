"""models.system.ngpc: the cluster's service time is the RTL's cycle count, and the scaling study behaves (fitted
at N = 8, monotone, under the Amdahl bound, memory-bound when the bandwidth is starved)."""
from dataclasses import replace

import numpy as np
import simpy

from models.system.ngpc import NgpcClusterAccelerator, ScalingAssumptions, load_measurements, scaling_study
from models.system.soc import Request


def service_cycles(lanes: int, queries: int) -> float:
    env = simpy.Environment()
    acc = NgpcClusterAccelerator(env, None, lanes=lanes, measurements=load_measurements())
    env.process(acc.serve(Request(0, queries)))
    env.run()
    return env.now


def test_service_time_is_the_rtl_cycle_count():
    """First batch accepted to last result delivered, on the Verilated cluster, equals the model's service time
    (the measured latency plus one cycle per batch, counted here from the RTL run, not from the model)."""
    from drivers.ngpc import ClusterHost
    from models.ngpc.mlp import random_weights
    from rtl.designs import get_design
    from sim.build import build
    from sim.harness import NativeSim

    config = get_design("ngpc").config("hash2d-x2")
    enc = config.nfp.encoder
    rng = np.random.default_rng(3)
    u = rng.integers(0, 1 << enc.pos_bits, (999, enc.dims))
    with NativeSim(build("ngpc", "hash2d-x2")) as sim:
        host = ClusterHost(sim, config)
        host.load([rng.integers(-99, 99, (lv.params, enc.features)) for lv in enc.level_geometry],
                  random_weights(config.nfp.mlp, rng))
        result = host.run(u)
    rtl = result.last_output - result.first_accept + 1         # cycles the cluster was busy with the 999 queries
    assert service_cycles(2, 999) == rtl == 500 + config.latency


def test_study_fitted_monotone_bounded():
    study = scaling_study()
    rows = study["rows"]
    assert abs(rows[0]["speedup_mean"] - 12.0) < 0.05                  # A2 is fitted at N = 8
    means = [r["speedup_mean"] for r in rows]
    assert all(b >= a - 1e-9 for a, b in zip(means[:-1], means[1:], strict=True))
    assert all(m <= study["amdahl_bound"] + 1e-6 for m in means)
    assert rows[-1]["fps_nerf_4k"] > rows[0]["fps_nerf_4k"]


def test_memory_and_table_load_cost_time():
    m = load_measurements()
    a = ScalingAssumptions(**scaling_study(lanes=(8,))["assumptions"])
    free = scaling_study((64,), a, m, fit=False)["rows"][0]["speedup_mean"]
    starved = scaling_study((64,), replace(a, bandwidth_gbs=20.0), m, fit=False)["rows"][0]["speedup_mean"]
    tables = scaling_study((64,), replace(a, tables_per_frame=True), m, fit=False)["rows"][0]["speedup_mean"]
    assert starved < free / 2 and tables < free
