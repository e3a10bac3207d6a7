"""The system model op by op against the RTL: where a whole network's cycles go, kick by kick (diagnosis only).

    .venv/bin/python benchmarks/system_model_ops.py NETWORK CONFIG [--events E1,E2,E3,E4] [--bandwidth B --latency L]

NETWORK is a name of ``models.npu.networks``. For every kernel op: its shape, the DMAs and command words before it,
the KERNEL_WAIT among them, the RTL's cycles from the previous kick's completion to its own (``KickCycles.cycles``,
sampled every 16 cycles), what the model adds between the same two points (its finish times, in stream order), the
difference, the model's load / run stage cycles and the RTL's PMU counters over the kick (four events, chosen with
``--events``; ``pmu_event_type`` names such as MAC_STALLED_BY_IB, MAC_STALLED_BY_WD, AXI0_RD_DATA_BEAT_RECEIVED).
The model is the stored calibration (``models/system/npu_costs.json``); nothing here is fitted.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers import npu_calibration as cal  # noqa: E402
from drivers.npu import PMU_EVENTS, run_on_npu  # noqa: E402
from models.npu import vela  # noqa: E402
from models.npu.networks import network  # noqa: E402
from models.system.npu_cost import NpuCostModel, schedule  # noqa: E402
from models.system.npu_ops import ops_from_commands  # noqa: E402


def model_finish(cost: NpuCostModel, ops, config: str, bandwidth: float, latency: float):
    """(each op's finish time from the start of the run, each op's load and run stage cycles)."""
    x = cost.matrix(ops, config)
    parts = cost.op_parts(x, config, latency)
    load, run = parts.durations(bandwidth)
    _, finish = schedule(parts.is_dma, load, run, parts.handover, parts.tail, parts.bus(bandwidth),
                         *parts.split_bus(bandwidth), parts.is_vec, parts.parse, parts.kernel_wait,
                         parts.dma_stall, parts.run_after)
    start = cost.start_cycles(config, latency)
    return [start + f for f in finish], load, run


def rows(name: str, config: str, bandwidth: int, latency: int, events: tuple[str, ...]):
    data = network(name).data
    cost = NpuCostModel.load()
    ops = ops_from_commands(vela.compile_cached(data, config).commands())
    finish, load, run = model_finish(cost, ops, config, bandwidth, latency)
    rtl = run_on_npu(data, cal.npu_config(config, bandwidth, latency), seed=1, pmu_events=events)
    kernel = [i for i, op in enumerate(ops) if op.is_kernel]
    frontier = cost.start_cycles(config, latency)
    before = 0
    out = []
    for kick, i in zip(rtl.kicks, kernel, strict=False):
        op = ops[i]
        between = ops[before:i]
        model = max(finish[i], frontier) - frontier
        frontier = max(frontier, finish[i])
        out.append(dict(op=op, dmas=sum(not o.is_kernel for o in between),
                        wait=max(o.kernel_wait for o in (*between, op)), rtl=kick.cycles, model=model,
                        load=load[i], run=run[i], pmu=kick.pmu or {}))
        before = i + 1
    return rtl.cycles, frontier, out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("network")
    parser.add_argument("config")
    parser.add_argument("--events", default=",".join(PMU_EVENTS), help="four PMU events")
    parser.add_argument("--bandwidth", type=int, default=8)
    parser.add_argument("--latency", type=int, default=8)
    args = parser.parse_args()
    total, predicted, table = rows(args.network, args.config, args.bandwidth, args.latency,
                                   tuple(args.events.split(",")))
    print(f"{args.network} on {args.config}: RTL {total:,} cycles, model {predicted:,.0f} "
          f"({100 * (predicted - total) / total:+.2f}%)")
    for k, r in enumerate(table):
        op = r["op"]
        kind = op.kind + (" (vector)" if op.vector else "")
        pmu = " ".join(f"{e}={v}" for e, v in r["pmu"].items() if e != "CYCLES")
        print(f"{k:3d} {kind:20} ifm {op.ifm} ofm {op.ofm} k{op.kernel} s{op.stride} dma {r['dmas']} "
              f"wait {r['wait']:2d} | RTL {r['rtl']:7d} model {r['model']:8.0f} diff {r['model'] - r['rtl']:+7.0f} "
              f"| load {r['load']:.0f} run {r['run']:.0f} | {pmu}")


if __name__ == "__main__":
    main()
