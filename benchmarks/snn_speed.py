"""NeuroCore throughput: time steps per second of the engine in the native harness, and on silicon clocks.

    .venv/bin/python benchmarks/snn_speed.py [--config 256x256] [--cycles 600000] [--write BENCHMARKS.md]

The ``neurocore`` design is driven over its parallel host bus (no UART): per step, the input words, ``RUN 1``,
idle cycles until the step ends, then status, the step's cycle counter and the raster are read back. Steps are
batched into one ``run_stimulus`` call, so Python never sits in the per-cycle loop. Activity is set by the
neuron parameters rather than left to chance: a fixed random subset of neurons always spikes (threshold at the
minimum, no refractory period) and the others never do; inputs spike at random with the same probability. Every
step is checked against the golden model (spikes) and against :func:`rtl.neurocore.config.step_cycles` (the
cycle counter), so the numbers are those of a correct run. Rows: cycles per step (measured), wall-clock steps/s
of the simulation, simulated cycles/s, and the steps/s the same engine gives at 25 MHz (the ULX3S clock) and
100 MHz; with STDP on, once as a plain run (each step reuses the input sums of the previous step's depression
pass) and once with a host register write before every step (which makes every step integrate again). Each
scenario also runs on the same RTL built at another C++ optimisation level than the design's default
(``--compare-opt``; default: the other of Verilator's own -Os, the level every build used before, and -O3),
alternating with the default build ``--repeats`` times; the fastest run of each counts.
"""
import argparse
import os
import sys
import time

import numpy as np
from baseline import compare_opt
from report import write_section

from drivers.neurocore import global_values, neuron_field_values, weight_words
from models.snn.golden import GoldenCore
from models.snn.params import NeuronParams, StdpParams, SynapseParams
from rtl.designs import get_design
from rtl.neurocore.config import Command, GlobalReg, NeuroCoreConfig, Region, step_cycles
from sim.build import build, default_opt
from sim.harness import NativeSim
from sim.toolchain import VERILATOR_OPT_LEVELS

CLOCKS_MHZ = (25, 100)
READS = 2   # CTRL status, CTRL last-step cycles; then the raster words


def network(cfg: NeuroCoreConfig, activity: float, learn: bool, seed: int) -> GoldenCore:
    """A core where ``round(activity * N)`` fixed neurons spike every step and the rest never do."""
    rng = np.random.default_rng(seed)
    n, s = cfg.n_neurons, cfg.n_sources
    golden = GoldenCore(cfg.core_config)
    golden.set_weights(rng.integers(-40, 40, size=(s, n)))
    golden.set_plastic(rng.random((s, n)) < 0.5)
    theta = np.full(n, (1 << 23) - 1)
    theta[rng.choice(n, size=round(activity * n), replace=False)] = -(1 << 23)
    # full decay keeps |v| far below the never-firing threshold whatever STDP does to the weights
    golden.set_neuron_params(NeuronParams(theta=theta, d_v=4096, d_i=4096, t_ref=0))
    golden.set_synapse_params(SynapseParams(w_exp=0))
    stdp = StdpParams(d_x=300, d_y=300, a_pre=100, a_post=100, a_plus=40, a_minus=30, s_plus=6, s_minus=6)
    if learn:
        golden.enable_stdp(stdp)
    else:
        golden.set_stdp_params(stdp)
    return golden


def setup_writes(cfg: NeuroCoreConfig, golden: GoldenCore) -> list[tuple[int, int]]:
    writes = [(cfg.address(Region.WEIGHT, i), w)
              for i, w in enumerate(weight_words(cfg, golden.weights(), golden.plastic()))]
    nb = cfg.neuron_bits
    for field, values in neuron_field_values(cfg, golden.neuron_params()).items():
        writes += [(cfg.address(Region.NEURON, (field << nb) | i), int(v)) for i, v in enumerate(values)]
    regs = global_values(golden.stdp_params(), golden.synapse_params(), golden.neuron_params().reset_mode,
                         golden.learning)
    return writes + [(cfg.address(Region.GLOBAL, r), int(v)) for r, v in regs.items()]


class Driver:
    """Builds per-cycle bus stimulus (one row per cycle) for the native harness."""

    def __init__(self, cfg: NeuroCoreConfig):
        self.cfg = cfg
        self.dwords = (cfg.data_width + 31) // 32
        self.rows: list[tuple[int, int, int, int]] = []   # (addr, data, we, re)

    def write(self, addr: int, data: int):
        self.rows.append((addr, data, 1, 0))

    def read(self, addr: int):
        self.rows.append((addr, 0, 0, 1))

    def idle(self, cycles: int):
        self.rows.extend([(0, 0, 0, 0)] * cycles)

    def arrays(self) -> dict[str, np.ndarray]:
        rows = np.array(self.rows, dtype=object).reshape(-1, 4)
        data = np.zeros((len(rows), self.dwords), dtype=np.uint32)
        for w in range(self.dwords):
            data[:, w] = [(int(d) >> (32 * w)) & 0xFFFFFFFF for d in rows[:, 1]]
        return {"bus__addr": rows[:, 0].astype(np.uint32), "bus__wdata": data,
                "bus__we": rows[:, 2].astype(np.uint32), "bus__re": rows[:, 3].astype(np.uint32)}


def plan_steps(cfg: NeuroCoreConfig, golden: GoldenCore, inputs: np.ndarray, drv: Driver, host_write: bool):
    """Append the stimulus of every step; returns (expected spikes, predicted cycles, read-row offsets).

    ``host_write``: rewrite the LEARN register before every step, as a host changing parameters would; that
    discards the sums a learning step leaves for the next one, so every step integrates again.
    """
    n_words = -(-cfg.n_neurons // 32)
    pending = np.zeros(cfg.n_sources, dtype=bool)
    integrated = False
    spikes, predicted, read_at = [], [], []
    for inp in inputs:
        spk = golden.run(1, inp[None, :])[0]
        now = np.concatenate([spk, inp])
        groups = int(spk.reshape(cfg.groups, cfg.lanes).any(axis=1).sum())
        integrated = integrated and not host_write
        cycles = step_cycles(cfg, int(pending.sum()), int(now.sum()), groups, golden.learning, integrated=integrated)
        padded = np.zeros(-(-cfg.n_inputs // 32) * 32, dtype=bool)
        padded[:cfg.n_inputs] = inp
        for c, word in enumerate(np.packbits(padded.reshape(-1, 32), axis=1, bitorder="little").view("<u4")[:, 0]):
            drv.write(cfg.address(Region.INPUT, c), int(word))
        if host_write:
            drv.write(cfg.address(Region.GLOBAL, GlobalReg.LEARN), int(golden.learning))
        drv.write(cfg.address(Region.CTRL, 0), Command.RUN | 1 << 8)
        drv.idle(cycles)
        read_at.append(len(drv.rows))
        for addr in [cfg.address(Region.CTRL, 0), cfg.address(Region.CTRL, 2)] + \
                [cfg.address(Region.SPIKES, c) for c in range(n_words)]:
            drv.read(addr)
        spikes.append(spk)
        predicted.append(cycles)
        pending, integrated = now, golden.learning
    drv.idle(1)
    return np.array(spikes), np.array(predicted), read_at


def measure(sim: NativeSim, cfg: NeuroCoreConfig, activity: float, learn: bool, host_write: bool, cycles: int,
            seed: int) -> dict:
    golden = network(cfg, activity, learn, seed)
    rng = np.random.default_rng(seed + 1)
    sim.reset()
    sim.poke("raster__ready", 1)
    setup = Driver(cfg)
    for addr, data in setup_writes(cfg, golden):
        setup.write(addr, data)
    setup.write(cfg.address(Region.CTRL, 0), Command.SOFT_RESET)
    setup.idle(max(cfg.groups, cfg.src_groups) + 4)
    sim.run_stimulus(setup.arrays(), ["busy"])

    per_step = step_cycles(cfg, round(activity * cfg.n_sources), round(activity * cfg.n_sources),
                           cfg.groups, learn)
    steps = max(3, cycles // per_step)
    inputs = rng.random((steps, cfg.n_inputs)) < activity
    drv = Driver(cfg)
    spikes, predicted, read_at = plan_steps(cfg, golden, inputs, drv, host_write)
    stim = drv.arrays()
    start = time.perf_counter()
    out = sim.run_stimulus(stim, ["bus__rdata"])
    seconds = time.perf_counter() - start

    rdata = out["bus__rdata"][:, 0].astype(np.int64)
    measured = np.array([rdata[r + 2] for r in read_at])   # read data arrives one cycle after re
    n_words = -(-cfg.n_neurons // 32)
    raster = np.array([np.unpackbits(rdata[r + 1 + READS:r + 1 + READS + n_words].astype("<u4").view(np.uint8),
                                     bitorder="little")[:cfg.n_neurons] for r in read_at]).astype(bool)
    if not np.array_equal(measured, predicted):
        raise SystemExit(f"cycle model mismatch: measured {measured[:5]}..., predicted {predicted[:5]}...")
    if not np.array_equal(raster, spikes):
        raise SystemExit("RTL spikes differ from the golden model")
    sources = (spikes.sum(axis=1) + inputs.sum(axis=1)) / cfg.n_sources
    steady = measured[1:]   # the first step has nothing pending
    return {"activity": activity, "learn": learn, "host_write": host_write, "steps": steps,
            "cycles": float(steady.mean()), "min": int(steady.min()), "max": int(steady.max()),
            "sources": float(sources.mean()),
            "steps_per_s": steps / seconds, "cycles_per_s": len(stim["bus__we"]) / seconds}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="256x256")
    parser.add_argument("--cycles", type=int, default=600_000, help="simulated cycles per scenario (about)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="runs per scenario and build, the fastest counts")
    parser.add_argument("--compare-opt", choices=tuple(VERILATOR_OPT_LEVELS),
                        help="C++ optimisation level to compare the default build with (default: the other of -Os, "
                             "Verilator's default, and -O3)")
    parser.add_argument("--write", metavar="BENCHMARKS.md", help="replace the snn_speed section of this file")
    args = parser.parse_args()

    cfg = get_design("neurocore").config(args.config)
    opts = default_opt("neurocore"), compare_opt("neurocore", args.compare_opt)
    rows = []
    with (NativeSim(build("neurocore", cfg)) as sim,
          NativeSim(build("neurocore", cfg, opt=opts[1])) as baseline):
        for activity in (0.1, 1.0):
            for learn, host_write in ((False, False), (True, False), (True, True)):
                runs = {"default": [], "baseline": []}
                for _ in range(args.repeats):
                    for key, native in (("default", sim), ("baseline", baseline)):
                        runs[key].append(measure(native, cfg, activity, learn, host_write, args.cycles, args.seed))
                best = max(runs["default"], key=lambda r: r["cycles_per_s"])
                best["baseline_cycles_per_s"] = max(r["cycles_per_s"] for r in runs["baseline"])
                rows.append(best)
    report = render(args, cfg, rows, opts)
    print(report)
    if args.write:
        write_section(args.write, "snn_speed", report)


def render(args, cfg: NeuroCoreConfig, rows: list[dict], opts: tuple[str, str]) -> str:
    lines = [
        f"## NeuroCore throughput: N = {cfg.n_neurons} neurons + M = {cfg.n_inputs} inputs, P = {cfg.lanes}",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {sys.platform}, one core, in one run of "
        f"`.venv/bin/python benchmarks/snn_speed.py --config {args.config} --cycles {args.cycles} --repeats "
        f"{args.repeats}` (design `neurocore`, parallel host bus, every step checked against the golden model and "
        f"`step_cycles`; C++ -{opts[0]}, best of {args.repeats} alternating with the -{opts[1]} build of the same RTL; "
        f"load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores at the end).",
        "Cycles are the engine's (`busy`); the simulated steps/s also pay ~"
        f"{-(-cfg.n_inputs // 32) + 1 + READS + -(-cfg.n_neurons // 32)} host-bus cycles per step.",
        "",
        "Cycles per step: mean (min-max) over every step but the first, which has nothing pending. With STDP on,",
        "a step reuses the input sums of the previous step's depression pass unless the host wrote something other",
        "than inputs in between (rows \"host write\": LEARN rewritten before every step, so every step integrates).",
        "",
        "| activity (sources/step) | STDP | cycles/step | simulated steps/s | sim cycles/s | "
        f"at -{opts[1]} | " + " | ".join(f"steps/s at {f} MHz" for f in CLOCKS_MHZ) + " |",
        "|---|---|---:|---:|---:|---:|" + "---:|" * len(CLOCKS_MHZ),
    ]
    for r in rows:
        name = "worst case: every source" if r["activity"] == 1.0 else f"{r['activity']:.0%} ({r['sources']:.1%})"
        rates = " | ".join(f"{f * 1e6 / r['cycles']:,.0f}" for f in CLOCKS_MHZ)
        stdp = ("on, host write" if r["host_write"] else "on") if r["learn"] else "off"
        lines.append(f"| {name} | {stdp} | {r['cycles']:,.0f} ({r['min']:,}-{r['max']:,}) | "
                     f"{r['steps_per_s']:,.1f} | {r['cycles_per_s']:,.0f} | {r['baseline_cycles_per_s']:,.0f} | "
                     f"{rates} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
