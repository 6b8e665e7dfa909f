"""``nir.NIRGraph`` -> spikeflow module (the inverse mapping of :mod:`spikeflow.nir`, in float64)."""
from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np
import torch
from torch import Tensor, nn

from spikeflow.nir._common import (NIRImportError, Scale, SumPool2d, Threshold, _close, _meta,
                                   _snap, _uniform)
from spikeflow.nir._graph import GraphNet, _topology

if TYPE_CHECKING:  # pragma: no cover (imported lazily: importing spikeflow.nir needs no nir)
    import nir

PathLike = Union[str, "os.PathLike[str]"]


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
