"""NIR export and import (the Neuromorphic Intermediate Representation, the ``nir`` package).

:func:`export` walks a spikeflow model's module tree (a chain of layers, or SEW-ResNet's residual
blocks) and writes one NIR node per layer; :func:`load` builds a spikeflow ``nn.Module`` from a NIR
graph (written by spikeflow or by a peer: snnTorch, Norse, SpikingJelly): an ``nn.Sequential`` for a
chain, a :class:`GraphNet` for any other DAG. docs/nir.md has the table of registered models and the
peers' conventions.

    >>> import torch, nir, spikeflow as sf
    >>> from spikeflow.nir import export, load
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 3), sf.neurons.LIF(tau=2.0))
    >>> graph = export(net, torch.rand(5, 2, 4))        # sample [T, B, 4]
    >>> sorted(type(n).__name__ for n in graph.nodes.values())
    ['Affine', 'Input', 'LIF', 'Output']
    >>> x = torch.rand(5, 2, 4)
    >>> bool(torch.equal(load(graph)(x), net(x)))
    True

**Time.** spikeflow neurons are discrete (one update per step); NIR neurons are ODEs. spikeflow
reads a NIR ODE with the forward-Euler step of length ``dt`` (the convention of snnTorch, Norse and
SpikingJelly) and exports time constants so that this step reproduces the spikeflow update
exactly: a time constant of ``tau`` steps becomes ``tau * dt`` (default ``dt = 1``: NIR times in
steps; ``dt=1e-3`` gives seconds for 1 ms steps). Within a step every feed-forward edge is
instantaneous (a layer sees the current step's output of the layer before it); several edges into
one node are summed (NIR's rule); an edge that closes a cycle delivers the previous step's value
(snnTorch's recurrent-graph convention; spikeflow has one cycle, inside the IIR-neuron subgraph).

**SEW blocks** (connect ``ADD``, ``O = A + S``): the residual branch's last neuron ``A`` and the
shortcut ``S`` (the block input, or the down-sample path ``Conv1x1-BN-SN``) both get an edge into
each node that reads ``O``, which sums them; there is no extra node. ``AND``/``IAND`` are products
of spikes, which NIR cannot form (:class:`NIRExportError` naming the block).

**Neurons** (Euler with ``dt``; ``v_reset = v_leak`` where spikeflow charges towards ``v_reset``)::

    LIF(tau, decay_input=True)   H = V + (X - (V - v_reset))/tau  ->  LIF(tau=tau*dt, r=1,   v_leak=v_reset)
    LIF(tau, decay_input=False)  H = V - (V - v_reset)/tau + X    ->  LIF(tau=tau*dt, r=tau, v_leak=v_reset)
    PLIF (k = sigmoid(w))        as LIF with tau = 1/k (float64 of the float32 k)
    IF                           H = V + X                        ->  IF(r=1/dt)
    DecayLIF(decay)              u = decay*v + I                  ->  LIF(tau=dt/(1-decay), r=1/(1-decay), v_leak=0)
    IIRNeuron (no membrane leak) v = I - r[t-1], r = a r + reset_v s  ->  subgraph LIF(tau=dt) -> LI(trace)
                                                                           -> Scale(-1) -> back to LIF
    LowPassSynapse(a)            psp = a psp + x                  ->  LI(tau=dt/(1-a), r=1/(1-a), v_leak=0)
                                                                       (I(r=1/dt) where a == 1)
    DualExpSynapse(a1, a2, b1)   psp = a1 psp1 + a2 psp2 + b1 x   ->  CubaLI with the two real poles p, q
                                 (1 - a1 z^-1 - a2 z^-2 = (1 - p z^-1)(1 - q z^-1)):
                                 tau_syn = dt/(1-p), w_in = 1/(1-p), tau_mem = dt/(1-q), r = b1/(1-q)

with hard reset to ``v_reset``. NIR fires on ``v > v_threshold``; spikeflow's comparison (``">="``
for LIF/PLIF/IF by default) is kept in the node's ``metadata["compare"]`` and :func:`load` reads
it (``">"`` when absent). Not expressible (:class:`NIRExportError` naming the layer): the soft
reset (``v_reset=None``), the IIR neuron with ``membrane_filter=True`` (a leaky membrane that a
spike does not reset), dual-exp coefficients without two real poles in ``[0, 1)``, the read-out
filter, max pooling of non-spike values, ASA attention, SEW's ``AND``/``IAND`` connect functions
and every layer that mixes time steps or is not an SNN layer (RNN/LSTM/GRU baselines, last-step
read-outs).

**Layers**: ``Linear`` -> ``Affine``/``Linear``; ``Conv2d`` -> ``Conv2d``; ``BatchNorm`` (eval
statistics) folded into the preceding ``Linear``/``Conv2d`` in float64; ``AvgPool2d`` -> ``AvgPool2d``;
``AdaptiveAvgPool2d`` whose output size divides the input -> ``AvgPool2d`` (equal windows);
``MaxPool2d`` of spikes -> ``SumPool2d`` + ``Threshold(0)`` (the max of 0/1 values is "sum > 0");
``Flatten`` -> ``Flatten`` (dims of one step); ``SeqToBatch`` is transparent; dropout is dropped
(export is inference); ``VotingLayer(g)`` -> ``Linear`` with ``1/g`` blocks (read back as voting).

**Exactness.** :func:`load` inverts every mapping in float64 and snaps each recovered constant to
the float64 value that the export formula maps to the stored NIR number, so a spikeflow graph loads
with the original constants (``tau``, ``k``, ``decay``, filter coefficients bit for bit, checked in
tests/test_nir.py) and gives identical spikes. A folded BatchNorm computes ``conv(x)*s + t`` as one
convolution with scaled weights: the currents agree to float32 rounding (about 1e-7 relative).
"""
from __future__ import annotations

from spikeflow.nir._common import NIRExportError, NIRImportError, Scale, SumPool2d, Threshold
from spikeflow.nir._export import export
from spikeflow.nir._graph import GraphNet
from spikeflow.nir._load import load

__all__ = ["export", "load", "NIRExportError", "NIRImportError", "GraphNet", "Threshold", "Scale",
           "SumPool2d"]
