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

import json
import math
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:  # pragma: no cover (imported lazily: importing spikeflow.nir needs no nir)
    import nir

__all__ = ["export", "load", "NIRExportError", "NIRImportError", "GraphNet", "Threshold", "Scale", "SumPool2d"]

PathLike = Union[str, "os.PathLike[str]"]


class NIRExportError(ValueError):
    """A layer that NIR cannot express exactly (the message names the layer and the reason)."""


class NIRImportError(ValueError):
    """A NIR node or graph that spikeflow cannot load (the message names the node)."""


# ----------------------------------------------------------------------------------- loaded layers
class Threshold(nn.Module):
    """NIR ``Threshold``: ``y = 1 if x > threshold else 0`` (elementwise, per step, no state).

    Shape: ``[T, B, ...] -> [T, B, ...]``; ``threshold`` broadcasts against one step.
    """

    def __init__(self, threshold: Tensor) -> None:
        super().__init__()
        self.register_buffer("threshold", threshold)

    def forward(self, x: Tensor) -> Tensor:
        return (x > self.threshold).to(x.dtype)


class Scale(nn.Module):
    """NIR ``Scale``: ``y = x * scale`` (elementwise; ``scale`` broadcasts against one step)."""

    def __init__(self, scale: Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


class SumPool2d(nn.AvgPool2d):
    """NIR ``SumPool2d``: the sum over each window (zero padding), ``[N, C, H, W]``."""

    def __init__(self, kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int]) -> None:
        super().__init__(tuple(kernel_size), tuple(stride), tuple(padding), divisor_override=1)


# --------------------------------------------------------------------------------- float64 helpers
def _snap(estimate: float, forward: Callable[[float], float], target: float, steps: int = 64,
          exhaustive: bool = False) -> float:
    """A float64 near ``estimate`` (within ``steps`` ulps) that ``forward`` maps exactly to ``target``
    (``estimate`` itself when none does: then it is within float64 rounding).

    Several neighbours may map to the same ``target`` (the NIR number cannot tell them apart); with
    ``exhaustive`` the one with the shortest decimal form is taken (``0.3`` rather than
    ``0.30000000000000004``), else the nearest.
    """
    if not math.isfinite(estimate):
        return estimate

    def hits(x: float) -> bool:
        try:
            return forward(x) == target
        except (ZeroDivisionError, ValueError, OverflowError):
            return False

    if hits(estimate) and not exhaustive:
        return estimate
    found = [estimate] if hits(estimate) else []
    lo = hi = estimate
    for _ in range(steps):
        lo, hi = math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf)
        found += [x for x in (lo, hi) if hits(x)]
        if found and not exhaustive:
            break
    if not found:
        return estimate
    return min(found, key=lambda x: (len(repr(x)), abs(x - estimate)))


def _full(shape: Sequence[int], value: float) -> np.ndarray:
    return np.full(tuple(int(d) for d in shape), float(value), dtype=np.float64)


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _uniform(node_name: str, field: str, a: Any) -> float:
    """The one value of a NIR parameter array (spikeflow neurons have one value per layer)."""
    arr = np.asarray(a, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise NIRImportError(f"NIR node {node_name!r}: {field} is empty")
    if not np.all(arr == arr[0]):
        raise NIRImportError(
            f"NIR node {node_name!r}: {field} has {np.unique(arr).size} distinct values; spikeflow's "
            "neurons take one value per layer (per-neuron values are not supported)")
    return float(arr[0])


def _close(a: float, b: float, rel: float = 1e-6) -> bool:
    """Equal up to float32 rounding: peers compute NIR parameters in float32 (e.g. r = tau/dt)."""
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-30)


# ------------------------------------------------------------------------------------ model walk
@dataclass
class _Leaf:
    name: str          # dotted path in the model
    module: nn.Module
    folded: bool       # runs on [T*B, ...] (inside SeqToBatch) rather than on [T, B, ...]


class _FlattenSteps(nn.Module):
    """``x.flatten(2)`` of He2020MLP's forward as a layer of the walk."""

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(2)


def _children(model: nn.Module, prefix: str) -> Optional[list[tuple[str, nn.Module]]]:
    """The ordered parts of a registered model class (lazy imports; ``None``: not a known class)."""
    from spikeflow.models.asa_nets import ASAArchA, ASAArchB
    from spikeflow.models.he2020 import He2020CNN, He2020MLP
    from spikeflow.models.iir_nets import IIRNet
    from spikeflow.models.plif_net import PLIFNet
    from spikeflow.models.plif_static import PLIFStaticNet
    from spikeflow.models.sew_resnet import SEWResNet

    if isinstance(model, PLIFNet):
        return [(f"{prefix}features", model.features), (f"{prefix}head", model.head)]
    if isinstance(model, PLIFStaticNet):
        from spikeflow.layers import SeqToBatch

        return [(f"{prefix}static_conv", SeqToBatch(model.static_conv)), (f"{prefix}conv", model.conv),
                (f"{prefix}fc", model.fc)]
    if isinstance(model, He2020MLP):
        return [(f"{prefix}flatten", _FlattenSteps()), (f"{prefix}layers", model.layers)]
    if isinstance(model, (He2020CNN, ASAArchA, ASAArchB, IIRNet)):
        return [(f"{prefix}layers", model.layers)]
    if isinstance(model, SEWResNet):   # its blocks are leaves of the walk (export's _export_sew_block)
        return [(f"{prefix}{k}", getattr(model, k))
                for k in ("stem", "stem_attn", "stem_sn", "pool", "layers", "head", "fc")]
    return None


def _walk(module: nn.Module, name: str, folded: bool = False) -> Iterator[_Leaf]:
    """Leaf layers of ``module`` in execution order."""
    from spikeflow.layers import SeqToBatch

    if isinstance(module, SeqToBatch):
        inner = module.module
        yield from _walk(inner, f"{name}.module" if name else "module", True)
        return
    if type(module).__name__ == "DroppedSpikes":   # He2020's neuron + the dropout masks of its reset
        yield _Leaf(f"{name}.neuron", module.neuron, folded)
        return
    if isinstance(module, nn.Sequential):
        for key, child in module.named_children():
            yield from _walk(child, f"{name}.{key}" if name else key, folded)
        return
    parts = _children(module, f"{name}." if name else "")
    if parts is not None:
        for key, child in parts:
            yield from _walk(child, key, folded)
        return
    yield _Leaf(name, module, folded)


# ------------------------------------------------------------------------------------------ export
def _neuron_meta(kind: str, m: nn.Module, dt: float) -> dict[str, Any]:
    """What NIR's neuron nodes do not hold: spikeflow's class, the firing comparison, and the training
    options (surrogate as JSON, detach_reset) that :func:`load` gives the rebuilt neuron back."""
    meta = {"spikeflow_type": kind, "compare": m.compare, "dt": float(dt)}
    if hasattr(m, "surrogate"):
        meta["surrogate"] = json.dumps(m.surrogate.config(), sort_keys=True)
    if hasattr(m, "detach_reset"):
        meta["detach_reset"] = int(bool(m.detach_reset))
    return meta


def _training_options(node: Any) -> dict[str, Any]:
    """``surrogate``/``detach_reset`` constructor options from a node's metadata (spikeflow's graphs)."""
    meta, out = _meta(node), {}
    if isinstance(meta.get("surrogate"), str):
        try:
            conf = json.loads(meta["surrogate"])
        except ValueError:
            conf = None
        if isinstance(conf, dict):
            out["surrogate"] = conf
    if "detach_reset" in meta:
        out["detach_reset"] = bool(meta["detach_reset"])
    return out


def _neuron_node(leaf: _Leaf, shape: Sequence[int], dt: float) -> Any:
    import nir

    from spikeflow import neurons

    m, name = leaf.module, leaf.name
    if isinstance(m, neurons.LIFFamily):
        if m.v_reset is None:
            raise NIRExportError(f"layer {name!r} ({type(m).__name__}) uses the soft reset (v_reset=None): "
                                 "NIR neurons reset to v_reset")
        vr, thr = float(m.v_reset), float(m.v_threshold)
        if isinstance(m, neurons.IF):
            return nir.IF(r=_full(shape, 1.0 / dt), v_threshold=_full(shape, thr), v_reset=_full(shape, vr),
                          metadata=_neuron_meta("IF", m, dt))
        if isinstance(m, neurons.PLIF):
            k = float(torch.sigmoid(m.w.detach()))          # the float32 k the neuron multiplies by
            tau, kind = 1.0 / k, "PLIF"
        else:
            tau, kind = float(m.tau), "LIF"
        r = 1.0 if m.decay_input else tau
        # decay_input in metadata too: with tau = 1 step both charges have r = 1 (equal maths,
        # different float32 rounding)
        return nir.LIF(tau=_full(shape, tau * dt), r=_full(shape, r), v_leak=_full(shape, vr),
                       v_threshold=_full(shape, thr), v_reset=_full(shape, vr),
                       metadata={**_neuron_meta(kind, m, dt), "decay_input": int(m.decay_input)})
    if type(m).__name__ == "DropoutResetDecayLIF":   # He2020's original: dropout gates the reset
        if m.p > 0.0 and m.eval_active:
            raise NIRExportError(f"layer {name!r} (DropoutResetDecayLIF, eval_active=True): a random dropout "
                                 "mask gates the reset in evaluation; a NIR graph is deterministic")
        m = neurons.DecayLIF(decay=m.decay, v_threshold=m.v_threshold, compare=m.compare,  # mask inactive
                             surrogate=m.surrogate)
    if isinstance(m, neurons.DecayLIF):
        if m.decay >= 1.0:
            raise NIRExportError(f"layer {name!r} (DecayLIF): decay = 1 has no NIR time constant")
        tau = 1.0 / (1.0 - m.decay)
        return nir.LIF(tau=_full(shape, tau * dt), r=_full(shape, tau), v_leak=_full(shape, 0.0),
                       v_threshold=_full(shape, m.v_threshold), v_reset=_full(shape, 0.0),
                       metadata=_neuron_meta("DecayLIF", m, dt))
    if isinstance(m, neurons.IIRNeuron):
        if m.membrane_filter:
            raise NIRExportError(
                f"layer {name!r} (IIRNeuron, membrane_filter=True): its leaky membrane is not reset by a "
                "spike (the reset is the inhibitory trace), but NIR's LIF resets v; only "
                "membrane_filter=False is exact")
        a = math.exp(-1.0 / m.tau_m)
        tau_r = 1.0 / (1.0 - a)
        shp = tuple(int(d) for d in shape)
        nodes = {
            "input": nir.Input(input_type=np.array(shp)),
            "membrane": nir.LIF(tau=_full(shp, dt), r=_full(shp, 1.0), v_leak=_full(shp, 0.0),
                                v_threshold=_full(shp, m.v_threshold), v_reset=_full(shp, 0.0),
                                metadata={"compare": m.compare}),
            "trace": nir.LI(tau=_full(shp, tau_r * dt), r=_full(shp, m.reset_v * tau_r),
                            v_leak=_full(shp, 0.0)),
            "inhibit": nir.Scale(scale=_full(shp, -1.0)),
            "output": nir.Output(output_type=np.array(shp)),
        }
        edges = [("input", "membrane"), ("membrane", "trace"), ("trace", "inhibit"),
                 ("inhibit", "membrane"), ("membrane", "output")]
        return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False,
                            metadata={**_neuron_meta("IIRNeuron", m, dt), "tau_m": float(m.tau_m)})
    raise NIRExportError(f"layer {name!r}: {type(m).__name__} is not a known spiking neuron")


def _dual_exp_poles(a1: np.ndarray, a2: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    disc = a1 * a1 + 4.0 * a2
    if np.any(disc < 0):
        raise NIRExportError(f"layer {name!r} (DualExpSynapse): {int(np.sum(disc < 0))} elements have complex "
                             "poles (a1^2 + 4 a2 < 0), not a cascade of two real first-order filters")
    s = np.sqrt(disc)
    p, q = (a1 + s) / 2.0, (a1 - s) / 2.0
    if np.any(p >= 1.0) or np.any(q < 0.0):
        raise NIRExportError(f"layer {name!r} (DualExpSynapse): poles outside [0, 1) (unstable or "
                             "oscillating filter) have no positive NIR time constants")
    return p, q


def _filter_node(leaf: _Leaf, dt: float) -> Any:
    import nir

    from spikeflow.layers import DualExpReadout, DualExpSynapse, LowPassSynapse

    m, name = leaf.module, leaf.name
    if isinstance(m, LowPassSynapse):
        a = _np(m.a).astype(np.float64)
        if np.all(a == 1.0):
            return nir.I(r=np.full(a.shape, 1.0 / dt))
        if np.any(a >= 1.0) or np.any(a < 0.0):
            raise NIRExportError(f"layer {name!r} (LowPassSynapse): coefficients outside [0, 1) have no "
                                 "NIR time constant")
        tau = 1.0 / (1.0 - a)
        return nir.LI(tau=tau * dt, r=tau, v_leak=np.zeros_like(a),
                      metadata={"spikeflow_type": "LowPassSynapse", "dt": float(dt)})
    if isinstance(m, DualExpSynapse):
        a1, a2, b1 = (_np(t).astype(np.float64) for t in (m.a1, m.a2, m.b1))
        p, q = _dual_exp_poles(a1, a2, name)
        ts, tm = 1.0 / (1.0 - p), 1.0 / (1.0 - q)
        return nir.CubaLI(tau_syn=ts * dt, tau_mem=tm * dt, r=b1 * tm, v_leak=np.zeros_like(a1), w_in=ts,
                          metadata={"spikeflow_type": "DualExpSynapse", "dt": float(dt)})
    if isinstance(m, DualExpReadout):
        raise NIRExportError(f"layer {name!r} (DualExpReadout): out = v0 (m - s) answers one step late "
                             "(a delayed cascade with a gain), no NIR neuron node computes it exactly")
    raise NIRExportError(f"layer {name!r}: {type(m).__name__} is not a known filter")


def _pair(v: Any) -> np.ndarray:
    return np.array(v if isinstance(v, (tuple, list)) else (v, v), dtype=np.int64)


def _stateless_node(leaf: _Leaf, in_shape: Sequence[int], lead: int) -> Any:
    """NIR node of a stateless layer (``None`` to drop it); ``in_shape`` = one step's shape."""
    import nir

    from spikeflow.layers import SparseLinear, TimeDropout, VotingLayer

    m, name = leaf.module, leaf.name
    if isinstance(m, (nn.Dropout, TimeDropout, nn.Identity)):
        return None
    if type(m).__name__ == "StepDropout":
        if m.p > 0.0 and m.eval_active:
            raise NIRExportError(f"layer {name!r} (StepDropout, eval_active=True): draws a dropout mask in "
                                 "evaluation too (He2020's original); a NIR graph is deterministic")
        return None
    if isinstance(m, (nn.Linear, SparseLinear)):
        w = _np(m.weight)
        return nir.Linear(weight=w) if m.bias is None else nir.Affine(weight=w, bias=_np(m.bias))
    if isinstance(m, nn.Conv2d):
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise NIRExportError(f"layer {name!r} (Conv2d): only numeric zero padding is supported")
        bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels, dtype=np.float32)
        node = nir.Conv2d(input_shape=tuple(int(d) for d in in_shape[1:]), weight=_np(m.weight),
                          stride=_pair(m.stride), padding=_pair(m.padding), dilation=_pair(m.dilation),
                          groups=int(m.groups), bias=bias)
        node.metadata = {"bias": m.bias is not None}
        return node
    if isinstance(m, nn.AvgPool2d):
        if m.ceil_mode or (not m.count_include_pad and np.any(_pair(m.padding))) or m.divisor_override:
            raise NIRExportError(f"layer {name!r} (AvgPool2d): ceil_mode, divisor_override and "
                                 "count_include_pad=False with padding have no NIR form")
        stride = m.kernel_size if m.stride is None else m.stride
        return nir.AvgPool2d(kernel_size=_pair(m.kernel_size), stride=_pair(stride), padding=_pair(m.padding))
    if isinstance(m, nn.AdaptiveAvgPool2d):
        hw = np.array(in_shape[-2:], dtype=np.int64)
        out = m.output_size if isinstance(m.output_size, (tuple, list)) else (m.output_size, m.output_size)
        size = np.array([h if o is None else int(o) for o, h in zip(out, hw)], dtype=np.int64)  # None: keep
        if len(in_shape) < 3 or np.any(size < 1) or np.any(hw % size):
            raise NIRExportError(f"layer {name!r} (AdaptiveAvgPool2d): output size {tuple(size)} does not divide "
                                 f"the input size {tuple(hw)}; only equal windows have a NIR (AvgPool2d) form")
        kernel = hw // size
        return nir.AvgPool2d(kernel_size=kernel, stride=kernel, padding=np.zeros(2, dtype=np.int64),
                             metadata={"spikeflow_type": "AdaptiveAvgPool2d"})
    if isinstance(m, nn.Flatten):
        ndim = len(in_shape) + lead
        start = m.start_dim % ndim - lead
        end = m.end_dim % ndim - lead
        if start < 0:
            raise NIRExportError(f"layer {name!r} (Flatten): flattens the time or batch dim")
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start, end_dim=end)
    if isinstance(m, _FlattenSteps):
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0, end_dim=-1)
    if isinstance(m, VotingLayer):
        k = in_shape[-1] // m.group
        w = np.zeros((k, in_shape[-1]), dtype=np.float32)
        for i in range(k):
            w[i, i * m.group:(i + 1) * m.group] = np.float32(1.0 / m.group)
        return nir.Linear(weight=w, metadata={"spikeflow_type": "VotingLayer", "group": int(m.group)})
    raise NIRExportError(f"layer {name!r}: {type(m).__name__} has no NIR form (supported: Linear, Conv2d, "
                         "BatchNorm after them, AvgPool2d, MaxPool2d of spikes, Flatten, dropout, voting, "
                         "spikeflow neurons and synapse filters)")


def _fold_bn(prev: Any, bn: nn.Module, name: str) -> Any:
    """``bn(prev(x))`` as one affine node: ``W' = W s``, ``b' = b s + t`` (float64, then float32)."""
    import nir

    if bn.running_mean is None or bn.running_var is None:
        raise NIRExportError(f"layer {name!r} ({type(bn).__name__}): no running statistics to fold")
    var = bn.running_var.detach().double().cpu().numpy()
    mean = bn.running_mean.detach().double().cpu().numpy()
    gamma = bn.weight.detach().double().cpu().numpy() if bn.weight is not None else np.ones_like(var)
    beta = bn.bias.detach().double().cpu().numpy() if bn.bias is not None else np.zeros_like(var)
    s = gamma / np.sqrt(var + bn.eps)
    t = beta - mean * s
    w = np.asarray(prev.weight, dtype=np.float64)
    b = np.asarray(getattr(prev, "bias", np.zeros(w.shape[0])), dtype=np.float64)
    dtype = np.asarray(prev.weight).dtype
    w2 = (w * s.reshape((-1,) + (1,) * (w.ndim - 1))).astype(dtype)
    b2 = (b * s + t).astype(dtype)
    if isinstance(prev, nir.Conv2d):
        return nir.Conv2d(input_shape=tuple(int(d) for d in prev.input_shape), weight=w2, stride=prev.stride,
                          padding=prev.padding, dilation=prev.dilation, groups=prev.groups, bias=b2,
                          metadata={"bias": True, "folded_batchnorm": name})
    return nir.Affine(weight=w2, bias=b2, metadata={"folded_batchnorm": name})


def _maxpool_node(leaf: _Leaf, spikes: bool) -> Any:
    import nir

    m = leaf.module
    if m.ceil_mode or np.any(_pair(m.dilation) != 1) or m.return_indices:
        raise NIRExportError(f"layer {leaf.name!r} (MaxPool2d): ceil_mode/dilation have no NIR form")
    if not spikes:
        raise NIRExportError(
            f"layer {leaf.name!r} (MaxPool2d): its input is not the spikes of a neuron; NIR has no max pooling (the "
            "max of spikes is exported as SumPool2d + Threshold(0), which needs spike inputs)")
    stride = m.kernel_size if m.stride is None else m.stride
    return nir.SumPool2d(kernel_size=_pair(m.kernel_size), stride=_pair(stride), padding=_pair(m.padding),
                         metadata={"spikeflow_type": "MaxPool2d"})


@dataclass
class _Path:
    """The export walk at one point of the model: the value on the sample input, the graph nodes
    whose outputs sum to it (NIR sums the edges into a node), and whether it holds 0/1 spikes."""
    x: Tensor
    src: list[str]
    spikes: bool


class _Builder:
    """Nodes and edges of the graph being exported (node names are module paths, made unique)."""

    def __init__(self, dt: float) -> None:
        self.dt = dt
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node: Any, src: Sequence[str]) -> str:
        if len(set(src)) != len(src):
            raise NIRExportError(f"layer {name!r}: an input that is summed with itself has no NIR edge form")
        key = name.replace("/", "_") or "layer"
        while key in self.nodes or key == "output":     # "input"/"output": the graph's Input/Output
            key += "_"
        self.nodes[key] = node
        self.edges += [(s, key) for s in src]
        return key

    def sole_fresh(self, src: Sequence[str]) -> Optional[str]:
        """The one node ``src`` names when nothing reads it yet (BatchNorm folds into it), else None."""
        if len(src) == 1 and not any(a == src[0] for a, _ in self.edges):
            return src[0]
        return None


def _export_leaf(b: _Builder, leaf: _Leaf, p: _Path) -> _Path:
    """Writes the node(s) of one leaf layer after ``p``; returns the path after it."""
    import nir

    from spikeflow import neurons
    from spikeflow.layers import StatefulFilter
    from spikeflow.models.sew_resnet import SEWBasicBlock

    m = leaf.module
    if not leaf.name:
        raise NIRExportError(
            f"{type(m).__name__} is not a graph of layers known to spikeflow.nir (a chain of layers, or "
            "SEW-ResNet's residual blocks); modules with their own forward have no NIR form")
    if isinstance(m, SEWBasicBlock):
        return _export_sew_block(b, leaf, p)
    step_shape = tuple(int(d) for d in p.x.shape[2:])
    x = _apply(leaf, p.x)
    src = p.src
    if isinstance(m, neurons.BaseNeuron):
        src = [b.add(leaf.name, _neuron_node(leaf, step_shape, b.dt), src)]
    elif isinstance(m, StatefulFilter):
        src = [b.add(leaf.name, _filter_node(leaf, b.dt), src)]
    elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
        key = b.sole_fresh(src)
        prev = b.nodes[key] if key is not None else None
        if not isinstance(prev, (nir.Affine, nir.Linear, nir.Conv2d)):
            raise NIRExportError(f"layer {leaf.name!r} ({type(m).__name__}): BatchNorm must follow "
                                 "a Linear or Conv2d to be folded (NIR has no BatchNorm)")
        b.nodes[key] = _fold_bn(prev, m, leaf.name)
    elif isinstance(m, nn.MaxPool2d):
        pool = b.add(leaf.name, _maxpool_node(leaf, p.spikes), src)
        shp = tuple(int(d) for d in x.shape[2:])      # Threshold(0): the max of 0/1 values is "sum > 0"
        src = [b.add(f"{leaf.name}.threshold", nir.Threshold(threshold=np.zeros(shp, dtype=np.float32),
                                                               metadata={"spikeflow_type": "MaxPool2d"}), [pool])]
    elif isinstance(m, (nn.RNNBase, nn.RNNCellBase)) or type(m).__name__ in (
            "ASA", "LastStepReadout") or _is_recurrent(m):
        raise NIRExportError(f"layer {leaf.name!r}: {type(m).__name__} mixes time steps or is not "
                             "a spiking layer; NIR has no such node")
    else:
        node = _stateless_node(leaf, step_shape, 1 if leaf.folded else 2)
        if node is not None:
            src = [b.add(leaf.name, node, src)]
    spikes = isinstance(m, (neurons.BaseNeuron, nn.MaxPool2d)) or (p.spikes and (isinstance(
        m, (nn.Dropout, nn.Identity, nn.Flatten, _FlattenSteps))
        or type(m).__name__ in ("TimeDropout", "StepDropout")))
    return _Path(x, src, spikes)


def _export_sew_block(b: _Builder, leaf: _Leaf, p: _Path) -> _Path:
    """A SEW block ``O = A + S`` (connect ``ADD``): the residual branch's last neuron and the shortcut
    (the block input, or the down-sample path's neuron) both feed the next node, which sums them."""
    from spikeflow.models.sew_resnet import sew_connect

    blk, name = leaf.module, leaf.name
    if blk.connect != "ADD":
        rule = "A AND S = A * S" if blk.connect == "AND" else "(NOT A) AND S = (1 - A) * S"
        raise NIRExportError(
            f"layer {name!r} (SEWBasicBlock, connect={blk.connect!r}): O = {rule} is a product of the two "
            "branches' spikes; NIR combines the edges into a node only by summation (connect='ADD' exports)")
    short = p
    if blk.downsample is not None:
        for sub in _walk(blk.downsample, f"{name}.downsample", leaf.folded):
            short = _export_leaf(b, sub, short)
    res = p
    for key in ("conv1", "attn1", "sn1", "conv2", "attn2", "sn2"):
        for sub in _walk(getattr(blk, key), f"{name}.{key}", leaf.folded):
            res = _export_leaf(b, sub, res)
    return _Path(sew_connect(res.x, short.x, "ADD"), res.src + short.src, False)


def export(model: nn.Module, sample_input: Tensor, *, dt: float = 1.0) -> "nir.NIRGraph":
    """The NIR graph of ``model`` (a chain of spikeflow layers, or a SEW-ResNet), checked on ``sample_input``.

    Args:
        model: a spikeflow model (e.g. ``create_model(name)``) or an ``nn.Sequential`` of layers;
            it is run in eval mode (BatchNorm running statistics, no dropout) and from rest
            (``persistent=True`` states are set aside), and restored afterwards.
        sample_input: ``[T, B, ...]``; gives every layer's per-step shape. The walk is verified:
            running the walked layers on it must give ``model(sample_input)`` exactly.
        dt: the step length in NIR time units (time constants are ``tau_steps * dt``).

    Returns: a ``nir.NIRGraph`` ``input -> ... -> output`` (node names are module paths); a chain,
    except for SEW blocks (connect ``ADD``), whose two branches both feed the next node (NIR sums them).

    Raises: :class:`NIRExportError` naming the first layer NIR cannot express exactly.
    """
    import nir

    from spikeflow import __version__
    from spikeflow.neurons import StatefulModule

    if not isinstance(sample_input, Tensor) or sample_input.dim() < 3:
        raise ValueError("export: sample_input must be a tensor [T, B, ...] (one step at least 1-d), got "
                         f"{tuple(sample_input.shape) if isinstance(sample_input, Tensor) else type(sample_input)}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise ValueError(f"export: dt must be a finite number > 0, got {dt!r}")
    dt = float(dt)
    was_training = model.training
    # a NIR graph starts from rest: modules built with persistent=True run from rest here and get
    # their stored state back afterwards
    kept = [(m, m.persistent, m._stored_state) for m in model.modules()
            if isinstance(m, StatefulModule) and m.persistent]
    for m, _, _ in kept:
        m.persistent, m._stored_state = False, None
    model.eval()
    b = _Builder(dt)
    in_shape = tuple(int(d) for d in sample_input.shape[2:])
    b.nodes["input"] = nir.Input(input_type=np.array(in_shape))
    try:
        with torch.no_grad():
            p = _Path(sample_input, ["input"], False)
            for leaf in _walk(model, ""):
                p = _export_leaf(b, leaf, p)
            expected = model(sample_input)
            if not (isinstance(expected, Tensor) and expected.shape == p.x.shape and torch.equal(expected, p.x)):
                raise NIRExportError(
                    f"export: the layers found in {type(model).__name__} do not reproduce its forward; NIR "
                    "export needs a chain of layers (or a SEW-ResNet) whose forward is their composition")
    finally:
        model.train(was_training)
        for m, persistent, state in kept:
            m.persistent, m._stored_state = persistent, state
    out_shape = tuple(int(d) for d in p.x.shape[2:])
    b.nodes["output"] = nir.Output(output_type=np.array(out_shape))
    b.edges += [(s, "output") for s in p.src]
    return nir.NIRGraph(nodes=b.nodes, edges=b.edges, type_check=False,
                        metadata={"producer": f"spikeflow {__version__}", "dt": float(dt)})


def _is_recurrent(m: nn.Module) -> bool:
    from spikeflow.layers import RecurrentBaseline

    return isinstance(m, RecurrentBaseline) or type(m).__name__.endswith("Cell")


def _apply(leaf: _Leaf, x: Tensor) -> Tensor:
    if leaf.folded:
        from spikeflow.layers import fold_time, unfold_time

        return unfold_time(leaf.module(fold_time(x)), x.shape[0], x.shape[1])
    return leaf.module(x)


# -------------------------------------------------------------------------------------------- load
def _topology(graph: Any, where: str) -> tuple[str, str, list[str], dict[str, list[str]]]:
    """Input and Output node, the other nodes in an execution (topological) order, and each node's
    predecessors in edge order. Checks: one Input and one Output, edges name nodes, no cycle, every
    node fed (reachable from the Input) and feeding the Output."""
    import heapq

    import nir

    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise NIRImportError(f"{where}: spikeflow loads graphs with one Input and one Output node, got "
                             f"{len(inputs)} and {len(outputs)}")
    preds: dict[str, list[str]] = {k: [] for k in graph.nodes}
    succ: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for edge in graph.edges:
        a, b = edge
        if a not in graph.nodes or b not in graph.nodes:
            raise NIRImportError(f"{where}: edge ({a!r}, {b!r}) names a node that is not in the graph")
        if b in succ[a]:
            raise NIRImportError(f"{where}: edge ({a!r}, {b!r}) appears twice")
        preds[b].append(a)
        succ[a].append(b)
    inp, out = inputs[0], outputs[0]
    if preds[inp] or succ[out]:
        raise NIRImportError(f"{where}: an edge leads into the Input {inp!r} or out of the Output {out!r}")
    rank: dict[str, int] = {}      # ties: first appearance in the edges (nir.read sorts the nodes by name)
    for k in [k for e in graph.edges for k in e] + list(graph.nodes):
        rank.setdefault(k, len(rank))
    missing = {k: len(v) for k, v in preds.items()}
    ready, order = [(rank[inp], inp)], []
    while ready:
        _, k = heapq.heappop(ready)
        order.append(k)
        for s in succ[k]:
            missing[s] -= 1
            if missing[s] == 0:
                heapq.heappush(ready, (rank[s], s))
    done = set(order)
    left = [k for k in graph.nodes if k not in done]
    if left:
        orphans = [k for k in left if not preds[k]]
        if orphans:
            raise NIRImportError(f"{where}: nodes {orphans} have no incoming edge (not fed by the Input {inp!r})")
        cyc, peeled = set(left), True
        while peeled:   # peel nodes that feed nothing, or are fed by nothing, in the rest: cycles remain
            keep = {k for k in cyc if any(s in cyc for s in succ[k]) and any(a in cyc for a in preds[k])}
            peeled, cyc = keep != cyc, keep
        raise NIRImportError(f"{where}: the graph has a cycle through nodes {[k for k in left if k in cyc]}; "
                             "spikeflow loads DAGs (a cycle only inside the IIR-neuron subgraph)")
    feeds, stack = {out}, [out]
    while stack:
        for a in preds[stack.pop()]:
            if a not in feeds:
                feeds.add(a)
                stack.append(a)
    dead = [k for k in order if k not in feeds]
    if dead:
        raise NIRImportError(f"{where}: nodes {dead} do not lead to the Output {out!r}")
    return inp, out, [k for k in order if k not in (inp, out)], preds


class GraphNet(nn.Module):
    """A loaded NIR graph that is not a chain (e.g. SEW-ResNet's residual sums): its nodes run in a
    topological order, each on the whole sequence ``[T, B, ...]``, and a node's input is the sum of
    its predecessors' outputs (NIR's rule for several edges into one node).

    ``layers`` (an ``nn.ModuleDict``, keys: node names with ``.`` as ``_``) holds one spikeflow layer
    per node (an ``nn.Sequential`` where a node needs several, e.g. ``Scale`` + neuron);
    ``sources[key]`` names the nodes summed into it (``"input"`` for the graph's Input).
    Shape: ``[T, B, *in] -> [T, B, *out]``.
    """

    def __init__(self, layers: "OrderedDict[str, nn.Module]", sources: dict[str, list[str]],
                 output_sources: list[str]) -> None:
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.sources = {k: list(v) for k, v in sources.items()}
        self.output_sources = list(output_sources)
        last: dict[str, int] = {}
        keys = list(self.layers.keys())
        for i, k in enumerate(keys + ["<output>"]):
            srcs = self.sources.get(k) if k != "<output>" else self.output_sources
            bad = [s for s in srcs or [None] if s != "input" and s not in keys[:i]]
            if bad:
                raise ValueError(f"GraphNet: node {k!r} reads {bad}; sources must be 'input' or earlier layers "
                                 f"(a non-empty list each; layers in execution order)")
            for s in srcs if k != "<output>" else []:
                last[s] = i
        self._free = [[s for s, j in last.items() if j == i and s not in self.output_sources]
                      for i in range(len(keys))]

    @staticmethod
    def _sum(values: dict[str, Tensor], names: list[str]) -> Tensor:
        u = values[names[0]]
        for s in names[1:]:
            u = u + values[s]
        return u

    def forward(self, x: Tensor) -> Tensor:
        values = {"input": x}
        for (key, layer), free in zip(self.layers.items(), self._free):
            values[key] = layer(self._sum(values, self.sources[key]))
            for s in free:               # no later node reads it
                del values[s]
        return self._sum(values, self.output_sources)


def _meta(node: Any) -> dict[str, Any]:
    meta = getattr(node, "metadata", None)
    if not isinstance(meta, dict):
        return {}
    return {k: (v.decode() if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v)
            for k, v in meta.items()}


def _compare(node: Any, default: str) -> str:
    """The node's ``metadata["compare"]`` (spikeflow writes it), else ``default``."""
    cmp = _meta(node).get("compare", default)
    return cmp if cmp in (">=", ">") else default


def _t(a: Any, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.as_tensor(np.asarray(a), dtype=dtype).clone()


def _snap_tau(tau_nir: float, dt: float) -> float:
    """Steps ``tau`` with ``tau * dt == tau_nir`` (the export formula) where one exists."""
    return _snap(tau_nir / dt, lambda t: t * dt, tau_nir, exhaustive=True)


def _plif_w(k: float) -> Tensor:
    """A float32 ``w`` with ``torch.sigmoid(w) == float32(k)`` (searched around ``logit(k)``)."""
    target = torch.tensor(k, dtype=torch.float32)
    w0 = torch.tensor(math.log(k / (1.0 - k)), dtype=torch.float32)
    cands = [w0]
    lo = hi = w0
    for _ in range(256):
        lo, hi = torch.nextafter(lo, torch.tensor(-math.inf)), torch.nextafter(hi, torch.tensor(math.inf))
        cands += [lo, hi]
    for w in cands:
        if torch.equal(torch.sigmoid(w), target):
            return w
    return w0


def _load_lif(name: str, node: Any, dt: float, default_compare: str) -> list[nn.Module]:
    """A NIR LIF as a spikeflow LIF / PLIF / DecayLIF (after a Scale where the input gain needs one)."""
    from spikeflow import neurons

    tau = _uniform(name, "tau", node.tau)
    r = _uniform(name, "r", node.r)
    v_leak = _uniform(name, "v_leak", node.v_leak)
    thr = _uniform(name, "v_threshold", node.v_threshold)
    v_reset = _uniform(name, "v_reset", node.v_reset if node.v_reset is not None else 0.0)
    meta, compare = _meta(node), _compare(node, default_compare)
    kind = meta.get("spikeflow_type")
    if tau <= 0:
        raise NIRImportError(f"NIR node {name!r} (LIF): tau must be > 0, got {tau}")
    steps = tau / dt                        # time constant in steps
    gain = r / steps                        # input gain of one Euler step: dt/tau * r
    scale: list[nn.Module] = []
    if kind == "DecayLIF" or (kind is None and v_leak == 0.0 and v_reset == 0.0 and _close(gain, 1.0)):
        if v_leak != 0.0 or v_reset != 0.0:
            raise NIRImportError(f"NIR node {name!r}: DecayLIF needs v_leak = v_reset = 0")
        decay = _snap(1.0 - dt / tau, lambda d: _decay_tau(d, dt), tau, exhaustive=True)
        if not 0.0 <= decay <= 1.0:
            raise NIRImportError(f"NIR node {name!r} (LIF): tau = {tau} gives a decay {decay} per step of "
                                 f"dt = {dt} outside [0, 1]; pass the graph's dt to load()")
        if not _close(gain, 1.0):
            scale = [Scale(torch.tensor(gain, dtype=torch.float32))]
        return scale + [neurons.DecayLIF(decay=decay, v_threshold=thr, compare=compare,
                                         **_training_options(node))]
    if v_leak != v_reset:
        raise NIRImportError(
            f"NIR node {name!r} (LIF): v_leak = {v_leak} differs from v_reset = {v_reset}; spikeflow's LIF "
            "charges towards its reset potential (and DecayLIF needs both 0)")
    t_steps = _snap_tau(tau, dt)
    if t_steps < 1.0:
        raise NIRImportError(f"NIR node {name!r} (LIF): tau = {tau} is shorter than one step dt = {dt}; "
                             "pass the graph's dt to load()")
    decay_input = not (_close(r, t_steps) and not _close(r, 1.0))
    if "decay_input" in meta and _close(r, 1.0 if meta["decay_input"] else t_steps):
        decay_input = bool(meta["decay_input"])
    if decay_input and not _close(r, 1.0):
        scale = [Scale(torch.tensor(r, dtype=torch.float32))]
    if kind == "PLIF":
        k = 1.0 / t_steps
        plif = neurons.PLIF(init_tau=max(t_steps, 1.0 + 1e-6), v_threshold=thr, v_reset=v_reset,
                            **_training_options(node),
                            decay_input=decay_input, compare=compare)
        with torch.no_grad():
            plif.w.copy_(_plif_w(k))
        return scale + [plif]
    return scale + [neurons.LIF(tau=t_steps, v_threshold=thr, v_reset=v_reset, decay_input=decay_input,
                                **_training_options(node),
                                compare=compare)]


def _load_if(name: str, node: Any, dt: float, default_compare: str) -> list[nn.Module]:
    from spikeflow import neurons

    gain = _uniform(name, "r", node.r) * dt
    thr = _uniform(name, "v_threshold", node.v_threshold)
    vr = _uniform(name, "v_reset", node.v_reset if node.v_reset is not None else 0.0)
    scale = [] if _close(gain, 1.0) else [Scale(torch.tensor(gain, dtype=torch.float32))]
    return scale + [neurons.IF(v_threshold=thr, v_reset=vr, compare=_compare(node, default_compare),
                               **_training_options(node))]


def _decay_tau(a: Any, dt: float) -> Any:
    """The export formula of a per-step decay ``a``: ``tau = 1/(1-a) * dt`` (float64)."""
    return (1.0 / (1.0 - a)) * dt


def _snap_decays(tau: np.ndarray, dt: float) -> np.ndarray:
    """Per-step decays ``a = 1 - dt/tau`` of an array, each snapped so that ``_decay_tau(a) == tau``."""
    a = 1.0 - dt / tau
    bad = _decay_tau(a, dt) != tau
    for i in zip(*np.nonzero(bad)):
        a[i] = _snap(float(a[i]), lambda x: _decay_tau(x, dt), float(tau[i]))
    return a


def _low_pass(a: np.ndarray) -> Any:
    """A LowPassSynapse with coefficients ``a`` (its informational ``tau`` from ``a`` when uniform)."""
    from spikeflow.layers import LowPassSynapse

    syn = LowPassSynapse(tuple(a.shape) or (1,))
    with torch.no_grad():
        syn.a.copy_(_t(a).reshape(syn.a.shape))
    first = float(a.reshape(-1)[0])
    syn.tau = -1.0 / math.log(first) if np.all(a == first) and 0.0 < first < 1.0 else float("nan")
    return syn


def _load_low_pass(name: str, node: Any, dt: float, shape: tuple) -> list[nn.Module]:
    tau = np.asarray(node.tau, dtype=np.float64)
    r = np.asarray(node.r, dtype=np.float64)
    if np.any(np.asarray(node.v_leak) != 0):
        raise NIRImportError(f"NIR node {name!r} (LI): v_leak must be 0 for a spikeflow synapse filter")
    if np.any(tau < dt):
        raise NIRImportError(f"NIR node {name!r} (LI): tau shorter than dt = {dt}; pass the graph's dt")
    a = _snap_decays(tau, dt)
    gain = r * dt / tau
    syn = _low_pass(a)
    if np.allclose(gain, 1.0, rtol=1e-6, atol=0):
        return [syn]
    return [Scale(_t(gain)), syn]


def _load_dual_exp(name: str, node: Any, dt: float) -> list[nn.Module]:
    from spikeflow.layers import DualExpSynapse

    if np.any(np.asarray(node.v_leak) != 0):
        raise NIRImportError(f"NIR node {name!r} (CubaLI): v_leak must be 0 for a spikeflow synapse filter")
    ts, tm = np.asarray(node.tau_syn, np.float64), np.asarray(node.tau_mem, np.float64)
    r, w_in = np.asarray(node.r, np.float64), np.asarray(node.w_in, np.float64)
    p, q = _snap_decays(ts, dt), _snap_decays(tm, dt)
    b1 = (w_in * dt / ts) * (r * dt / tm)
    syn = DualExpSynapse(tuple(ts.shape))
    with torch.no_grad():
        syn.a1.copy_(_t(p + q))
        syn.a2.copy_(_t(-(p * q)))
        syn.b1.copy_(_t(b1))
    return [syn]


def _load_cuba_lif(name: str, node: Any, dt: float, default_compare: str) -> list[nn.Module]:
    """A peer's CubaLIF as a low-pass current followed by a neuron (current updated first)::

        I <- (1 - dt/tau_syn) I + (dt/tau_syn) w_in x       LowPassSynapse (after a Scale if the gain != 1)
        v <- v + (dt/tau_mem) (v_leak - v + r I)            the neuron of LIF(tau_mem, r, v_leak, ...)
    """
    import nir

    tau_syn = np.asarray(node.tau_syn, np.float64)
    if np.any(tau_syn < dt):
        raise NIRImportError(f"NIR node {name!r} (CubaLIF): tau_syn shorter than dt = {dt}; pass the graph's dt")
    syn = _low_pass(_snap_decays(tau_syn, dt))
    gain = np.asarray(node.w_in, np.float64) * dt / tau_syn
    front = [] if np.allclose(gain, 1.0, rtol=1e-6, atol=0) else [Scale(_t(gain))]
    lif = nir.LIF(tau=np.asarray(node.tau_mem), r=np.asarray(node.r), v_leak=np.asarray(node.v_leak),
                  v_threshold=np.asarray(node.v_threshold), v_reset=np.asarray(node.v_reset),
                  metadata=dict(getattr(node, "metadata", {}) or {}))
    if not tau_syn.shape:  # 0-d parameters: one value for the whole layer (any input shape)
        raise NIRImportError(f"NIR node {name!r} (CubaLIF): needs per-element parameters (got 0-d arrays)")
    return front + [syn] + _load_lif(name, lif, dt, default_compare)


def _load_iir(name: str, graph: Any, dt: float, default_compare: str) -> list[nn.Module]:
    """The IIR-neuron subgraph (LIF with tau = dt, an LI trace fed back through Scale(-1))."""
    import nir

    from spikeflow import neurons

    by_type: dict[type, list[str]] = {}
    for k, n in graph.nodes.items():
        by_type.setdefault(type(n), []).append(k)
    want = {nir.Input: 1, nir.Output: 1, nir.LIF: 1, nir.LI: 1, nir.Scale: 1}
    if {t: len(v) for t, v in by_type.items()} != want:
        raise NIRImportError(f"NIR subgraph {name!r}: spikeflow loads one kind of subgraph, the IIR neuron "
                             "(Input, LIF, LI, Scale, Output); got "
                             + ", ".join(f"{t.__name__} x{len(v)}" for t, v in by_type.items()))
    inp, out = by_type[nir.Input][0], by_type[nir.Output][0]
    lif, li, sc = by_type[nir.LIF][0], by_type[nir.LI][0], by_type[nir.Scale][0]
    if set(map(tuple, graph.edges)) != {(inp, lif), (lif, li), (li, sc), (sc, lif), (lif, out)}:
        raise NIRImportError(f"NIR subgraph {name!r}: edges {graph.edges} are not the IIR neuron's "
                             "input -> LIF -> output with LIF -> LI -> Scale -> LIF")
    mem, tr = graph.nodes[lif], graph.nodes[li]
    if not (_close(_uniform(name, "LIF tau", mem.tau), dt) and _uniform(name, "LIF r", mem.r) == 1.0
            and _uniform(name, "LIF v_leak", mem.v_leak) == 0.0):
        raise NIRImportError(f"NIR subgraph {name!r}: the membrane LIF must have tau = dt ({dt}), r = 1, "
                             "v_leak = 0 (no membrane leak)")
    if _uniform(name, "Scale", graph.nodes[sc].scale) != -1.0 or _uniform(name, "LI v_leak", tr.v_leak) != 0.0:
        raise NIRImportError(f"NIR subgraph {name!r}: the trace must feed back through Scale(-1), v_leak 0")
    tau = _uniform(name, "LI tau", tr.tau)
    r_tr = _uniform(name, "LI r", tr.r)
    a = _snap(1.0 - dt / tau, lambda x: _decay_tau(x, dt), tau, exhaustive=True)
    if not 0.0 < a < 1.0:
        raise NIRImportError(f"NIR subgraph {name!r}: trace tau = {tau} gives a decay {a} outside (0, 1)")
    tau_m = _snap(-1.0 / math.log(a), lambda t: math.exp(-1.0 / t), a, exhaustive=True)
    reset_v = _snap(r_tr * dt / tau, lambda rv: rv * (1.0 / (1.0 - a)), r_tr, exhaustive=True)
    meta = _meta(graph)
    compare = meta.get("compare", _compare(mem, default_compare))
    return [neurons.IIRNeuron(tau_m=tau_m, membrane_filter=False, **_training_options(graph),
                              v_threshold=_uniform(name, "LIF v_threshold", mem.v_threshold),
                              reset_v=reset_v, compare=compare if compare in (">", ">=") else ">")]


def _voting_group(w: np.ndarray) -> int:
    """``g`` when ``w`` is VotingLayer(g)'s matrix (``1/g`` on consecutive blocks), else 0."""
    k, n = w.shape
    if k == 0 or n % k:
        return 0
    g = n // k
    ref = np.zeros_like(w)
    for i in range(k):
        ref[i, i * g:(i + 1) * g] = w.dtype.type(1.0 / g)
    return g if np.array_equal(w, ref) else 0


def _load_node(name: str, node: Any, dt: float, shape: Optional[tuple], compare: str) -> list[nn.Module]:
    import nir

    from spikeflow.layers import SeqToBatch, VotingLayer

    if isinstance(node, nir.NIRGraph):
        return _load_iir(name, node, dt, compare)
    if isinstance(node, nir.LIF):
        return _load_lif(name, node, dt, compare)
    if isinstance(node, nir.IF):
        return _load_if(name, node, dt, compare)
    if isinstance(node, nir.LI):
        return _load_low_pass(name, node, dt, shape or ())
    if isinstance(node, nir.I):
        from spikeflow.layers import LowPassSynapse

        r = np.asarray(node.r, np.float64)
        syn = LowPassSynapse(tuple(r.shape))
        with torch.no_grad():
            syn.a.fill_(1.0)
        gain = r * dt
        return [syn] if np.all(gain == 1.0) else [Scale(_t(gain)), syn]
    if isinstance(node, nir.CubaLI):
        return _load_dual_exp(name, node, dt)
    if isinstance(node, nir.CubaLIF):
        return _load_cuba_lif(name, node, dt, compare)
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = np.asarray(node.weight)
        if w.ndim != 2:
            raise NIRImportError(f"NIR node {name!r}: weight must be 2-d, got shape {w.shape}")
        bias = np.asarray(node.bias) if isinstance(node, nir.Affine) else None
        if bias is not None and not np.any(bias):
            bias = None
        if bias is None:
            g = _voting_group(w)
            if g and (_meta(node).get("spikeflow_type") == "VotingLayer" or g > 1):
                return [VotingLayer(g)]
        lin = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
        with torch.no_grad():
            lin.weight.copy_(_t(w))
            if bias is not None:
                lin.bias.copy_(_t(bias))
        return [SeqToBatch(lin)]
    if isinstance(node, nir.Conv2d):
        w = np.asarray(node.weight)
        bias = np.asarray(node.bias) if node.bias is not None else None
        has_bias = bias is not None and (bool(_meta(node).get("bias", True)) or bool(np.any(bias)))
        conv = nn.Conv2d(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[-2:]),
                         stride=tuple(int(s) for s in np.atleast_1d(node.stride)) if np.size(node.stride) > 1
                         else int(np.asarray(node.stride).reshape(-1)[0]),
                         padding=tuple(int(s) for s in np.atleast_1d(node.padding)) if np.size(node.padding) > 1
                         else int(np.asarray(node.padding).reshape(-1)[0]),
                         dilation=tuple(int(s) for s in np.atleast_1d(node.dilation)) if np.size(node.dilation) > 1
                         else int(np.asarray(node.dilation).reshape(-1)[0]),
                         groups=int(node.groups), bias=has_bias)
        with torch.no_grad():
            conv.weight.copy_(_t(w))
            if has_bias:
                conv.bias.copy_(_t(bias))
        return [SeqToBatch(conv)]
    if isinstance(node, nir.AvgPool2d):
        return [SeqToBatch(nn.AvgPool2d(tuple(int(k) for k in node.kernel_size),
                                        tuple(int(s) for s in node.stride), tuple(int(p) for p in node.padding)))]
    if isinstance(node, nir.SumPool2d):
        if _meta(node).get("spikeflow_type") == "MaxPool2d":
            # spikeflow's max pooling of spikes: max == (sum > 0) on 0/1 values, and a real max pool
            # passes gradients (the Threshold's step would not), so the loaded net trains
            return [SeqToBatch(nn.MaxPool2d(tuple(int(k) for k in node.kernel_size),
                                            tuple(int(s) for s in node.stride),
                                            tuple(int(q) for q in node.padding)))]
        return [SeqToBatch(SumPool2d(node.kernel_size, node.stride, node.padding))]
    if isinstance(node, nir.Threshold):
        if _meta(node).get("spikeflow_type") == "MaxPool2d":
            return [nn.Identity()]   # the max pool above already gives the 0/1 values
        return [Threshold(_t(node.threshold))]
    if isinstance(node, nir.Scale):
        return [Scale(_t(node.scale))]
    if isinstance(node, nir.Flatten):
        in_t = node.input_type.get("input") if isinstance(node.input_type, dict) else None
        ndim = len(np.asarray(in_t).reshape(-1)) if in_t is not None else (len(shape) if shape else None)
        start, end = int(node.start_dim), int(node.end_dim)
        if ndim:
            start, end = start % ndim + 1, end % ndim + 1
        else:
            start, end = start + 1 if start >= 0 else start, end + 1 if end >= 0 else end
        return [SeqToBatch(nn.Flatten(start, end))]
    raise NIRImportError(f"NIR node {name!r}: {type(node).__name__} is not supported by spikeflow.nir.load "
                         "(supported: Affine, Linear, Conv2d, AvgPool2d, SumPool2d, Flatten, Scale, Threshold, "
                         "LIF, IF, LI, I, CubaLI, CubaLIF and the IIR-neuron subgraph)")


def load(graph: Union["nir.NIRGraph", PathLike], *, dt: Optional[float] = None,
         compare: str = ">") -> nn.Module:
    """A spikeflow module running the NIR ``graph`` on ``[T, B, ...]`` inputs.

    Args:
        graph: a ``nir.NIRGraph`` or the path of a ``.nir`` file (``nir.read``).
        dt: the step length in NIR time units; default: the graph's ``metadata["dt"]`` (spikeflow
            writes it), else 1. snnTorch and SpikingJelly use ``dt = 1e-4`` by default.
        compare: the firing test of neurons whose node has no ``metadata["compare"]``: ``">"``
            (``v > v_threshold``, the NIR definition; snnTorch, Norse) or ``">="`` (SpikingJelly).

    Returns: for a chain graph an ``nn.Sequential`` of spikeflow layers (stateless ones in
    ``SeqToBatch``) whose names are the graph's node names; for any other DAG a :class:`GraphNet`
    (nodes in topological order, the edges into a node summed). It starts from rest on every call
    like every spikeflow model.

    Raises: :class:`NIRImportError` naming the node (or the cycle) that spikeflow cannot express.
    """
    import nir

    if isinstance(graph, (str, os.PathLike)):
        graph = nir.read(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise NIRImportError(f"load: expected a nir.NIRGraph or a .nir path, got {type(graph).__name__}")
    if dt is None:
        dt = float(_meta(graph).get("dt", 1.0))
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"load: dt must be a finite number > 0, got {dt!r}")
    if compare not in (">", ">="):
        raise ValueError(f"load: compare must be '>' or '>=', got {compare!r}")
    inp, out, order, preds = _topology(graph, "load")
    shape_out: dict[str, Optional[tuple]] = {
        inp: tuple(int(d) for d in np.asarray(graph.nodes[inp].input_type["input"]).reshape(-1))}
    parts: dict[str, list[nn.Module]] = {}
    for name in order:
        node = graph.nodes[name]
        shape = shape_out[preds[name][0]]
        parts[name] = _load_node(name, node, dt, shape, compare)
        out_t = getattr(node, "output_type", None)
        out_shape = out_t.get("output") if isinstance(out_t, dict) else None
        shape_out[name] = (tuple(int(d) for d in np.asarray(out_shape).reshape(-1))
                           if out_shape is not None and np.asarray(out_shape).size else shape)
    chain = all(len(preds[k]) == 1 for k in order + [out]) and len(graph.edges) == len(order) + 1
    if chain:
        modules: dict[str, nn.Module] = {}
        for name in order:
            key = name.replace(".", "_")
            for i, part in enumerate(parts[name]):
                modules[key if i == len(parts[name]) - 1 else f"{key}_{type(part).__name__.lower()}"] = part
        return nn.Sequential(OrderedDict(modules))
    keys: dict[str, str] = {inp: "input"}
    for name in order:
        key = name.replace(".", "_") or "node"
        while key in keys.values():
            key += "_"
        keys[name] = key
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for name in order:
        p = parts[name]
        layers[keys[name]] = p[0] if len(p) == 1 else nn.Sequential(OrderedDict(
            (f"{type(m).__name__.lower()}{i}", m) for i, m in enumerate(p)))
    return GraphNet(layers, {keys[k]: [keys[s] for s in preds[k]] for k in order}, [keys[s] for s in preds[out]])
