"""Synaptic operations per sample: ACs for spike inputs, MACs for analog inputs, dense MACs for RNNs.

Every ``nn.Linear`` / ``nn.Conv1d/2d/3d`` module (and subclasses; wherever it sits: inside
``SeqToBatch``, ``nn.Sequential``, custom blocks) is watched while it runs, and the ``F.linear`` /
``F.convNd`` calls it actually makes are counted (a read-out that applies its ``Linear`` to the
last step only is counted once, not ``T`` times):

    ops = sum over non-zero input elements x_i of fan_out(i)

with the fan-outs of :mod:`spikeflow.metrics.fanout` (exact at borders for every stride, padding,
dilation and group setting). An input whose values are all in ``{-1, 0, 1}`` is spikes, so its
operations are accumulates (ACs); any other input is analog (e.g. a direct-encoding first layer)
and its operations are multiply-accumulates (MACs) (NeuroBench's rule). Biases are not counted.
``dense`` counts every input as non-zero.

Recurrent baselines (``nn.RNN/LSTM/GRU``, their cells, ``spikeflow.layers.RecurrentBaseline``) are
counted densely with the gate formulas of :mod:`spikeflow.metrics.recurrent_ops` (all MACs); the
Linear/Conv modules inside them are not counted a second time.

Totals are divided by the number of samples (dim 1 of the model's time-first input ``[T, B, ...]``),
so they are per-sample totals over all ``T`` steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from spikeflow.metrics.fanout import CONV_FUNCTIONS, FanoutCache, conv_call_ops, linear_call_ops
from spikeflow.metrics.recorder import is_inside, is_recurrent_module
from spikeflow.metrics.recurrent_ops import conv_rnn_macs_per_step, rnn_macs_per_step

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class LayerOps:
    """Accumulated operations of one connection layer (totals over all calls and samples)."""

    name: str
    kind: str
    ac: float = 0.0
    mac: float = 0.0
    dense: float = 0.0
    calls: int = 0


class _CallCapture(TorchFunctionMode):
    """Counts the ``F.linear`` / ``F.convNd`` calls made while one connection module runs."""

    def __init__(self, counter: "SynOpCounter", name: str) -> None:
        super().__init__()
        self.counter, self.name = counter, name

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            self.counter._add(self.name, *linear_call_ops(args[0].detach(), args[1]))
        elif func in CONV_FUNCTIONS:
            self.counter._add(self.name, *conv_call_ops(CONV_FUNCTIONS[func], args, kwargs,
                                                        self.counter._fanouts))
        return func(*args, **kwargs)


class SynOpCounter:
    """Context manager counting synaptic operations of every forward call of ``model``.

    Example:
        >>> lin = nn.Linear(4, 3)
        >>> with SynOpCounter(lin) as ops:
        ...     _ = lin(torch.tensor([[[1.0, 0, 1, 0]]]))        # [T=1, B=1, 4] spikes
        >>> ops.totals()
        {'ac': 6.0, 'mac': 0.0, 'dense': 12.0}
    """

    def __init__(self, model: nn.Module, batch_dim: int = 1) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"SynOpCounter expects an nn.Module, got {type(model).__name__}")
        self.model = model
        self.batch_dim = int(batch_dim)
        self.samples = 0
        self.layers: dict[str, LayerOps] = {}
        self._fanouts = FanoutCache()
        self._active: list[Optional[_CallCapture]] = []
        self._handles: list[Any] = []
        self._targets = _find_connections(model)
        for name, _, kind in self._targets:
            self.layers[name] = LayerOps(name=name, kind=kind)

    def __enter__(self) -> "SynOpCounter":
        self.attach()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.detach()

    def attach(self) -> None:
        if self._handles:
            return
        self._handles.append(self.model.register_forward_pre_hook(self._count_samples))
        for name, module, kind in self._targets:
            if kind == "recurrent":
                self._handles.append(module.register_forward_hook(self._recurrent_hook(name)))
            else:
                self._handles.append(module.register_forward_pre_hook(self._enter_layer(name)))
                self._handles.append(module.register_forward_hook(self._leave_layer, always_call=True))

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        while self._active:
            self._leave_layer(None, (), None)

    # -- results ------------------------------------------------------------------------------
    def totals(self) -> dict[str, float]:
        """Per-sample totals over all steps: ``{"ac", "mac", "dense"}``."""
        if self.samples == 0:
            raise ValueError("SynOpCounter: no forward call was counted")
        return {
            "ac": sum(r.ac for r in self.layers.values()) / self.samples,
            "mac": sum(r.mac for r in self.layers.values()) / self.samples,
            "dense": sum(r.dense for r in self.layers.values()) / self.samples,
        }

    def per_layer(self) -> dict[str, dict[str, float]]:
        """Per-sample ``{"ac", "mac", "dense"}`` of each layer that was called."""
        if self.samples == 0:
            raise ValueError("SynOpCounter: no forward call was counted")
        return {
            name: {"kind": r.kind, "ac": r.ac / self.samples, "mac": r.mac / self.samples,
                   "dense": r.dense / self.samples}
            for name, r in self.layers.items() if r.calls
        }

    def all_reduce(self, group: Any = None) -> None:
        """Sum counts and samples over all ranks (no-op unless torch.distributed is up)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        device = torch.device("cuda", torch.cuda.current_device()) \
            if dist.get_backend(group) == "nccl" else torch.device("cpu")
        records = list(self.layers.values())
        flat = torch.tensor(
            [v for r in records for v in (r.ac, r.mac, r.dense, r.calls)] + [self.samples],
            dtype=torch.float64, device=device,
        )
        dist.all_reduce(flat, group=group)
        values = flat.cpu().tolist()
        for i, r in enumerate(records):
            r.ac, r.mac, r.dense, r.calls = values[4 * i:4 * i + 3] + [int(values[4 * i + 3])]
        self.samples = int(values[-1])

    # -- hooks --------------------------------------------------------------------------------
    def _count_samples(self, module: nn.Module, args: tuple) -> None:
        x = next((a for a in args if isinstance(a, Tensor)), None)
        if x is None or x.dim() <= self.batch_dim:
            raise ValueError(
                f"SynOpCounter: the model input must be a tensor with a batch dim {self.batch_dim} "
                f"([T, B, ...]); got {None if x is None else tuple(x.shape)}"
            )
        self.samples += int(x.shape[self.batch_dim])

    def _enter_layer(self, name: str):
        def pre_hook(module: nn.Module, args: tuple) -> None:
            if self._active:                      # nested connection module: the outer one counts
                self._active.append(None)
                return
            capture = _CallCapture(self, name)
            capture.__enter__()
            self._active.append(capture)
            self.layers[name].calls += 1

        return pre_hook

    def _leave_layer(self, module: Optional[nn.Module], args: tuple, output: Any) -> None:
        if self._active:
            capture = self._active.pop()
            if capture is not None:
                capture.__exit__(None, None, None)

    def _add(self, name: str, kind: str, ops: float, dense: float) -> None:
        record = self.layers[name]
        if kind == "analog":
            record.mac += ops
        else:
            record.ac += ops
        record.dense += dense

    def _recurrent_hook(self, name: str):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            macs = recurrent_call_macs(module, args[0])
            record = self.layers[name]
            record.mac += macs
            record.dense += macs
            record.calls += 1

        return hook


def _find_connections(model: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """Linear/Conv layers outside recurrent modules, and the outermost recurrent modules."""
    found: list[tuple[str, nn.Module, str]] = []
    recurrent_prefixes: list[str] = []
    for name, module in model.named_modules():
        if is_inside(name, recurrent_prefixes):
            continue
        if is_recurrent_module(module):
            found.append((name, module, "recurrent"))
            recurrent_prefixes.append(name)
        elif isinstance(module, nn.Linear):
            found.append((name, module, "linear"))
        elif isinstance(module, _CONVS):
            found.append((name, module, "conv"))
    return found


def recurrent_call_macs(module: nn.Module, x: Tensor) -> float:
    """Dense MACs of one call of a recurrent module on input ``x`` (all samples, all steps)."""
    if isinstance(module, nn.RNNCellBase):
        batch = x.shape[0] if x.dim() == 2 else 1
        mode = {nn.LSTMCell: "lstm", nn.GRUCell: "gru"}.get(type(module), "rnn")
        return float(batch * rnn_macs_per_step(module.input_size, module.hidden_size, mode))
    if isinstance(module, nn.RNNBase):
        if x.dim() == 2:
            steps, batch = x.shape[0], 1
        else:
            steps, batch = (x.shape[1], x.shape[0]) if module.batch_first else (x.shape[0], x.shape[1])
        per_step = rnn_macs_per_step(
            module.input_size, module.hidden_size, module.mode.lower(), module.num_layers,
            module.bidirectional, getattr(module, "proj_size", 0),
        )
        return float(steps * batch * per_step)
    return float(_baseline_macs(module, x))


def _baseline_macs(module: nn.Module, x: Tensor) -> int:
    """MACs of a ``spikeflow.layers.RecurrentBaseline`` call on time-first ``x``."""
    spec = getattr(module, "ops_spec", None)
    if spec is None:
        raise TypeError(
            f"{type(module).__name__} is a recurrent baseline without an ops_spec(); cannot count its MACs"
        )
    info = spec() if callable(spec) else spec
    steps, batch = x.shape[0], x.shape[1]
    mode = info["mode"]
    if info.get("conv", False):
        per_step = conv_rnn_macs_per_step(
            info["input_size"], info["hidden_size"], tuple(x.shape[3:]), info["kernel_size"],
            mode, info.get("num_layers", 1), info.get("padding"),
        )
    else:
        per_step = rnn_macs_per_step(
            info["input_size"], info["hidden_size"], mode, info.get("num_layers", 1),
            info.get("bidirectional", False),
        )
    return steps * batch * per_step


def count_synops(model: nn.Module, x: Tensor, batch_dim: int = 1) -> SynOpCounter:
    """Run ``model(x)`` without gradients under a :class:`SynOpCounter` and return the counter."""
    counter = SynOpCounter(model, batch_dim=batch_dim)
    with torch.no_grad(), counter:
        model(x)
    return counter


def synops(model: nn.Module, x: Tensor) -> dict[str, float]:
    """Per-sample synaptic operations over all ``T`` steps of ``model(x)``: ``{"ac": ..., "mac": ...}``.

    ``x`` is time-first ``[T, B, ...]``; the model is run once without gradients (put it in
    ``eval()`` mode first so that dropout does not turn spikes into scaled values).
    """
    totals = count_synops(model, x).totals()
    return {"ac": totals["ac"], "mac": totals["mac"]}


__all__ = [
    "LayerOps", "SynOpCounter", "count_synops", "recurrent_call_macs", "synops",
]
