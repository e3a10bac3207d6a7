"""STDP finds a repeating spike pattern hidden in noise (Masquelier et al. 2008 style), in plain PyNN.

64 inputs fire 20 Hz Poisson noise; 24 of them also repeat a frozen 20 ms pattern, pasted in at random times
(a quarter of the time).  One IF_curr_exp neuron learns with additive pair STDP (depression 1.5x stronger
than potentiation).  After training it fires during the pattern, and the weights of the pattern inputs end up
above those of the others.  The input spikes are drawn with numpy from a fixed seed, so both simulators see the
same trains.

    python examples/pynn/stdp_pattern.py [--time 20000]
    rampart snn compare examples/pynn/stdp_pattern.py -o gap/ --time 5000

Run it on Brian2 by changing the import line to ``import pyNN.brian2 as sim``.
"""
import argparse

import numpy as np

import drivers.pynn as sim  # or: import pyNN.brian2 as sim

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--time", type=float, default=20000.0, help="training time (ms)")
parser.add_argument("--seed", type=int, default=1)
args = parser.parse_args()

N_IN, N_PAT, LENGTH, RATE, FRAC = 64, 24, 20, 0.02, 0.25
steps = int(args.time)
rng = np.random.default_rng(args.seed)
pattern = np.zeros((LENGTH, N_PAT), dtype=bool)
pattern[rng.integers(0, LENGTH, N_PAT), np.arange(N_PAT)] = True
raster = rng.random((steps, N_IN)) < RATE
onsets, t = [], int(rng.integers(LENGTH, 3 * LENGTH))
gap = LENGTH * (1 / FRAC - 1)
while t + LENGTH <= steps:
    onsets.append(t)
    raster[t:t + LENGTH, :N_PAT] = pattern
    t += LENGTH + int(rng.integers(int(0.5 * gap), int(1.5 * gap) + 1))
spike_times = [np.flatnonzero(raster[:, k]).astype(float) for k in range(N_IN)]

sim.setup(timestep=1.0)
inputs = sim.Population(N_IN, sim.SpikeSourceArray(spike_times=spike_times), label="inputs")
neuron = sim.Population(1, sim.IF_curr_exp(tau_m=20.0, tau_syn_E=5.0, tau_refrac=6.0, v_thresh=-60.0,
                                           v_rest=-65.0, v_reset=-65.0), label="detector")
w_max = 0.14
stdp = sim.STDPMechanism(
    timing_dependence=sim.SpikePairRule(tau_plus=20.0, tau_minus=20.0, A_plus=0.16, A_minus=0.24),
    weight_dependence=sim.AdditiveWeightDependence(w_min=0.0, w_max=w_max),
    weight=sim.RandomDistribution("normal_clipped", mu=0.045, sigma=0.01, low=0.0, high=w_max,
                                  rng=sim.NumpyRNG(seed=args.seed)),
    delay=1.0, dendritic_delay_fraction=0)
prj = sim.Projection(inputs, neuron, sim.AllToAllConnector(), stdp)
w_before = prj.get("weight", format="array")[:, 0]
neuron.record("spikes")
sim.run(args.time)

w = prj.get("weight", format="array")[:, 0]
out = neuron.get_data("spikes").segments[0].spiketrains[0].magnitude
inside = np.zeros(steps, dtype=bool)
for t0 in onsets:
    inside[t0:t0 + LENGTH + 5] = True
last = out[out > args.time * 0.75].astype(int)
hits = inside[last].mean() if last.size else float("nan")
print(f"weights: pattern inputs {w_before[:N_PAT].mean():.4f} -> {w[:N_PAT].mean():.4f} nA, "
      f"other inputs {w_before[N_PAT:].mean():.4f} -> {w[N_PAT:].mean():.4f} nA; above w_max/2: "
      f"{int((w[:N_PAT] > w_max / 2).sum())} of {N_PAT} pattern inputs, {int((w[N_PAT:] > w_max / 2).sum())} of "
      f"{N_IN - N_PAT} others")
print(f"output spikes {out.size}; in the last quarter {last.size}, {hits:.0%} of them during a pattern "
      f"(the pattern covers {inside.mean():.0%} of the time)")
sim.end()
