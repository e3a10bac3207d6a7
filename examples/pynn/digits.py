"""8x8 digits on spiking neurons, in plain PyNN: offline-trained weights, spike-count readout.

A softmax regression 64 -> 10 is trained in numpy on sklearn's bundled digits (70/30 split, fixed seed); its
weights become the synapses of 64 rate-coded inputs (SpikeSourceArray, Bernoulli spikes drawn with numpy) onto
10 non-leaky IF_curr_delta neurons, the biases their i_offset.  Each test image is presented for ``--steps``
ms (set the inputs' spike times, run, reset); the class is the neuron with the most spikes.

    python examples/pynn/digits.py [--images 100] [--steps 32]
    rampart snn compare examples/pynn/digits.py -o gap/ --images 20

Run it on Brian2 by changing the import line to ``import pyNN.brian2 as sim``.
"""
import argparse

import numpy as np
from pyNN.parameters import Sequence
from sklearn.datasets import load_digits

import drivers.pynn as sim  # or: import pyNN.brian2 as sim

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--images", type=int, default=100, help="test images to present")
parser.add_argument("--steps", type=int, default=32, help="ms per image")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

MAX_P = 0.5        # spike probability per step of a full-intensity pixel
rng = np.random.default_rng(args.seed)
x, y = load_digits(return_X_y=True)
order = rng.permutation(len(x))
n_train = int(0.7 * len(x))
xtr, ytr, xte, yte = x[order[:n_train]], y[order[:n_train]], x[order[n_train:]], y[order[n_train:]]

# softmax regression on the expected input rates (spikes per step)
rate_tr = xtr / 16 * MAX_P
w, b = rng.normal(0, 0.01, (64, 10)), np.zeros(10)
onehot = np.eye(10)[ytr]
for _ in range(500):
    z = rate_tr @ w + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    g = (p - onehot) / len(xtr)
    w -= 5.0 * (rate_tr.T @ g + 1e-3 * w)
    b -= 5.0 * g.sum(0)

# synapses in mV (voltage jumps); threshold: a typical winner fires ~4 times per presentation
mv = 2.0 / np.abs(w).max()
drive = (rate_tr @ w + b).max(1) * mv * args.steps
theta = float(np.median(drive) / 4)

sim.setup(timestep=1.0)
inputs = sim.Population(64, sim.SpikeSourceArray(spike_times=[[]] * 64), label="pixels")
out = sim.Population(10, sim.IF_curr_delta(tau_m=1e9, cm=1.0, v_rest=0.0, v_reset=0.0, v_thresh=theta,
                                           tau_refrac=1.0, i_offset=b * mv), initial_values={"v": 0.0},
                     label="classes")
exc = [(i, j, w[i, j] * mv, 1.0) for i in range(64) for j in range(10) if w[i, j] > 0]
inh = [(i, j, w[i, j] * mv, 1.0) for i in range(64) for j in range(10) if w[i, j] < 0]
sim.Projection(inputs, out, sim.FromListConnector(exc), receptor_type="excitatory")
sim.Projection(inputs, out, sim.FromListConnector(inh), receptor_type="inhibitory")
out.record("spikes")

correct = 0
for img, label in zip(xte[:args.images], yte[:args.images], strict=True):
    spikes = rng.random((args.steps, 64)) < img / 16 * MAX_P
    inputs.set(spike_times=[Sequence(np.flatnonzero(spikes[:, k]).astype(float)) for k in range(64)])
    sim.run(args.steps)
    counts = [len(t) for t in out.get_data("spikes", clear=True).segments[-1].spiketrains]
    correct += int(np.argmax(counts) == label)
    sim.reset()
print(f"digits: {correct} / {args.images} test images correct ({correct / args.images:.1%}); float softmax "
      f"accuracy {((xte / 16 * MAX_P @ w + b).argmax(1) == yte).mean():.1%}")
sim.end()
