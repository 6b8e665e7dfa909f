"""spikeflow model -> ``nir.NIRGraph`` (the mapping is described in :mod:`spikeflow.nir`)."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from spikeflow.nir._common import NIRExportError, _full, _np
from spikeflow.nir._walk import _FlattenSteps, _Leaf, _walk

if TYPE_CHECKING:  # pragma: no cover (imported lazily: importing spikeflow.nir needs no nir)
    import nir


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


