"""PyNN on NeuroCore: wall-clock time of a 256-neuron PyNN network, 1,000 steps, on the golden model and the RTL.

    .venv/bin/python benchmarks/pynn_speed.py [--neurons 256] [--time 1000] [--repeats 3] [--write BENCHMARKS.md]

The network is ``examples/pynn/balanced_network.py`` unmodified (``--neurons 256``: 204 excitatory + 52
inhibitory IF_curr_exp cells, 32 Poisson inputs, ~20 + 5 recurrent synapses per neuron, spikes of all and the
membranes of 4 recorded), run through :func:`drivers.pynn.compare.run_script` on ``target="golden"`` and
``target="rtl"`` (the Verilated ``neurocore_uart`` 256x256 design through its simulated UART pins, 4 clocks per
bit).  The time is the whole script: building the PyNN network, converting and loading it onto the core, the
run, reading the data back.  The RTL build is made (or found in the cache) before timing.  Targets: golden < 2 s,
RTL < 60 s.  Both runs must give identical spikes (checked).
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from report import write_section

from drivers.pynn import compare

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "pynn" / "balanced_network.py"
TARGETS_S = {"golden": 2.0, "rtl": 60.0}


def prebuild(config: str) -> float:
    from rtl.designs import get_design
    from rtl.neurocore.uart_top import NeuroCoreUartConfig
    from sim.build import build

    start = time.monotonic()
    core = get_design("neurocore").config(config)
    build("neurocore_uart", NeuroCoreUartConfig(core, divisor=4, timeout_cycles=1500, max_payload=512))
    return time.monotonic() - start


def spikes_of(run) -> list:
    return [p["spikes"] for p in run.pops if p["spikes"] is not None]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--neurons", type=int, default=256)
    parser.add_argument("--time", type=float, default=1000.0, help="ms (1 ms steps)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per target; the fastest counts")
    parser.add_argument("--write", type=Path, help="write the section into this markdown file")
    args = parser.parse_args()
    argv = ["--neurons", str(args.neurons), "--time", str(args.time)]
    build_s = prebuild("256x256")
    rows, runs = [], {}
    for target in ("golden", "rtl"):
        times, cpu = [], []
        for _ in range(args.repeats):
            run = compare.run_script(SCRIPT, "neurocore", target=target, config="256x256", argv=argv)
            times.append(run.seconds)
            cpu.append(run.cpu_seconds)
        runs[target] = run
        state = run.state
        cost = compare.cost_model(state, 25e6, 115_200)
        n_spikes = sum(len(t) for trains in spikes_of(run) for t in trains)
        best = min(times)
        rows.append(f"| {target} | {best:.2f} | {np.median(times):.2f} | {min(cpu):.2f} | {args.time / best:,.0f} | "
                    f"{n_spikes:,} | "
                    f"{cost['mean_cycles_per_step']:,.0f} | < {TARGETS_S[target]:g} s: "
                    f"{'met' if best < TARGETS_S[target] else 'MISSED'} |")
        print(rows[-1], flush=True)
    same = all(all(np.array_equal(a, b) for a, b in zip(ga, ra, strict=True))
               for ga, ra in zip(spikes_of(runs["golden"]), spikes_of(runs["rtl"]), strict=True))
    print(f"golden and RTL spikes identical: {same}")
    load = os.getloadavg()[0]
    body = "\n".join([
        "## PyNN on NeuroCore: a 256-neuron network, 1,000 steps",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {sys.platform}, in one run of `.venv/bin/python "
        f"benchmarks/pynn_speed.py --neurons {args.neurons} --time {args.time:g} --repeats {args.repeats}` "
        f"(load average {load:.1f} on 2 cores at the end; RTL build {build_s:.1f} s before timing, cached).",
        f"`examples/pynn/balanced_network.py --neurons {args.neurons}` through `drivers.pynn` on the 256x256 "
        "core: whole script (PyNN network construction, mapping and loading, the run, data read back).  RTL: the "
        "Verilated `neurocore_uart` design behind its simulated UART pins (4 clocks per bit); the script records "
        "the membranes of 4 neurons, so both targets run one step per RUN command and read them back after each.  "
        "Wall time on a loaded machine is far above the CPU time.  Golden and RTL "
        f"spikes identical: {'yes' if same else 'NO'}.",
        "",
        "| target | best of runs (s) | median (s) | CPU of the best (s) | simulated ms per wall s | spikes | "
        "core cycles/step (step_cycles) | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
        *rows,
    ])
    if args.write:
        write_section(args.write, "pynn_speed", body)
    if not same:
        raise SystemExit("golden and RTL spikes differ")


if __name__ == "__main__":
    main()
