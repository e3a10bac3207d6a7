"""Brette et al. (2007) CUBA-style balanced network, scaled to one NeuroCore (plain PyNN).

Excitatory and inhibitory IF_curr_exp populations (4:1), random sparse connectivity, driven by Poisson inputs.
Scaled to fit the 256-neuron core: ``--neurons`` cells in all (default 200: 160 E + 40 I) with the connection
probability raised so each neuron keeps ~20 excitatory inputs, weights scaled to keep the input per neuron of
the 4000-cell original.  Two departures from the benchmark, both for the core: tau_syn_I = tau_syn_E = 5 ms
(the core has one synaptic current per neuron) and the activity is started by Poisson inputs rather than by
random initial membranes (the core starts every neuron at rest).

    python examples/pynn/balanced_network.py [--neurons 200] [--external 32] [--time 1000] [--target golden|rtl]
    rampart snn compare examples/pynn/balanced_network.py -o gap/     # against pyNN.brian2

Run it on Brian2 by changing the import line to ``import pyNN.brian2 as sim``.
"""
import argparse

import drivers.pynn as sim  # or: import pyNN.brian2 as sim

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--neurons", type=int, default=200)
parser.add_argument("--external", type=int, default=32, help="Poisson input sources")
parser.add_argument("--time", type=float, default=1000.0, help="ms")
parser.add_argument("--target", default="golden", help="NeuroCore target (ignored by Brian2)")
args = parser.parse_args()

extra = {"target": args.target} if sim.__name__ == "drivers.pynn" else {}
sim.setup(timestep=1.0, **extra)

n_exc = args.neurons * 4 // 5
n_inh = args.neurons - n_exc
n_ext = args.external
p_conn = min(1.0, 20 / n_exc)             # ~20 excitatory and ~5 inhibitory synapses per neuron
scale = 0.02 * 4000 / (p_conn * args.neurons)   # the original: p = 0.02 of 4000 cells (64 E + 16 I inputs)
rng = sim.NumpyRNG(seed=20070601)

cell = sim.IF_curr_exp(tau_m=20.0, cm=1.0, v_rest=-60.0, v_reset=-60.0, v_thresh=-50.0, tau_refrac=5.0,
                       tau_syn_E=5.0, tau_syn_I=5.0)
exc = sim.Population(n_exc, cell, initial_values={"v": -60.0}, label="excitatory")
inh = sim.Population(n_inh, cell, initial_values={"v": -60.0}, label="inhibitory")
ext = sim.Population(n_ext, sim.SpikeSourcePoisson(rate=20.0), label="external")

w_exc, w_inh, w_ext = 0.27 * scale, -4.5 * scale, 1.2
connector = sim.FixedProbabilityConnector(p_conn, rng=rng)
sim.Projection(exc, exc, connector, sim.StaticSynapse(weight=w_exc), receptor_type="excitatory")
sim.Projection(exc, inh, connector, sim.StaticSynapse(weight=w_exc), receptor_type="excitatory")
sim.Projection(inh, exc, connector, sim.StaticSynapse(weight=w_inh), receptor_type="inhibitory")
sim.Projection(inh, inh, connector, sim.StaticSynapse(weight=w_inh), receptor_type="inhibitory")
drive = sim.FixedProbabilityConnector(0.25, rng=rng)
sim.Projection(ext, exc, drive, sim.StaticSynapse(weight=w_ext), receptor_type="excitatory")
sim.Projection(ext, inh, drive, sim.StaticSynapse(weight=w_ext), receptor_type="excitatory")

exc.record("spikes")
inh.record("spikes")
exc[0:4].record("v")
sim.run(args.time)

for pop in (exc, inh):
    trains = pop.get_data("spikes").segments[0].spiketrains
    rate = sum(len(t) for t in trains) / pop.size / (args.time / 1000)
    print(f"{pop.label}: {pop.size} neurons, mean rate {rate:.1f} Hz")
if sim.__name__ == "drivers.pynn":
    print(sim.mapping_report())
sim.end()
