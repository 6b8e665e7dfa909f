"""Fan-out maps and spike detection: the per-call ingredients of synaptic-operation counting.

For a connection call ``y = W x`` (linear or convolution) the operations triggered by input element
``x_i`` are its fan-out, the number of (output, weight) products that read it:

* linear: ``out_features``;
* convolution: the number of (output channel, output position, kernel tap) triples reading
  ``x_i``, which depends on kernel, stride, padding, dilation, groups and the border. It equals the
  input-gradient of ``sum(conv(x; W = 1))`` (the transposed convolution of ones), computed once per
  configuration in float64 (exact integers).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikeflow.metrics.recorder import exact_sum

CONV_FUNCTIONS = {F.conv1d: 1, F.conv2d: 2, F.conv3d: 3}
_CONV_MODULES = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


def spike_kind(x: Tensor) -> str:
    """``"binary"`` (all values in {0, 1}), ``"signed"`` ({-1, 0, 1}) or ``"analog"``."""
    if x.dtype == torch.bool or x.numel() == 0:
        return "binary"
    lo, hi = torch.aminmax(x)
    lo, hi = float(lo), float(hi)
    if lo < -1 or hi > 1 or not torch.equal(x, x.round()):
        return "analog"
    return "binary" if lo >= 0 else "signed"


def is_spike_tensor(x: Tensor) -> bool:
    """True when every element is -1, 0 or 1 (binary or signed spikes)."""
    return spike_kind(x) != "analog"


def nonzero_mask(x: Tensor, kind: str) -> Tensor:
    """A tensor that is 1 where ``x`` is non-zero and 0 elsewhere (``x`` itself for binary spikes)."""
    if kind == "binary":
        return x if x.dtype != torch.bool else x.view(torch.uint8)
    if kind == "signed":
        return x.abs()
    return x.ne(0).view(torch.uint8)


def conv_fanout_map(conv: nn.Module, input_shape: tuple[int, ...]) -> Tensor:
    """Fan-out of every input element of the module ``conv`` for one sample: float64 ``[C_in, *spatial]``.

    Uses the module's own convolution (``_conv_forward``), so every padding mode is handled.
    """
    if not isinstance(conv, _CONV_MODULES):
        raise TypeError(f"conv_fanout_map expects nn.Conv1d/2d/3d, got {type(conv).__name__}")
    with torch.enable_grad():
        x = torch.zeros((1, *input_shape), dtype=torch.float64, requires_grad=True)
        ones = torch.ones(conv.weight.shape, dtype=torch.float64)
        (grad,) = torch.autograd.grad(conv._conv_forward(x, ones, None).sum(), x)
    return grad[0].detach().round()


def fanout_map(dims: int, weight_shape: Sequence[int], input_shape: Sequence[int], stride: Any = 1,
               padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Tensor:
    """Fan-out map of a functional ``conv{dims}d`` call for one sample ``input_shape = (C, *spatial)``."""
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims]
    with torch.enable_grad():
        x = torch.zeros((1, *input_shape), dtype=torch.float64, requires_grad=True)
        ones = torch.ones(tuple(weight_shape), dtype=torch.float64)
        (grad,) = torch.autograd.grad(conv(x, ones, None, stride, padding, dilation, groups).sum(), x)
    return grad[0].detach().round()


def conv_call_args(args: tuple, kwargs: dict) -> tuple[Tensor, Tensor, Any, Any, Any, int]:
    """``(input, weight, stride, padding, dilation, groups)`` of a ``F.convNd`` call."""
    names = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
    defaults = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}
    values = {**defaults, **dict(zip(names, args)), **kwargs}
    return (values["input"], values["weight"], values["stride"], values["padding"],
            values["dilation"], int(values["groups"]))


def _key(value: Any) -> Any:
    return tuple(value) if isinstance(value, (list, tuple)) else value


class FanoutCache:
    """Fan-out maps per convolution configuration and device."""

    def __init__(self) -> None:
        self._maps: dict[tuple, Tensor] = {}

    def get(self, dims: int, weight_shape: Sequence[int], input_shape: Sequence[int], stride: Any,
            padding: Any, dilation: Any, groups: int, device: torch.device) -> Tensor:
        key = (dims, tuple(weight_shape), tuple(input_shape), _key(stride), _key(padding), _key(dilation),
               groups, str(device))
        if key not in self._maps:
            fan = fanout_map(dims, weight_shape, input_shape, stride, padding, dilation, groups)
            dtype = torch.float32 if device.type == "mps" else torch.float64
            self._maps[key] = fan.to(device, dtype)
        return self._maps[key]


def linear_call_ops(x: Tensor, weight: Tensor) -> tuple[str, float, float]:
    """``(spike kind, effective ops, dense ops)`` of ``F.linear(x, weight)``."""
    kind = spike_kind(x)
    out_f, in_f = weight.shape[0], weight.shape[-1]
    rows = x.numel() // in_f if in_f else 0
    mask = nonzero_mask(x, kind)
    nonzero = float(exact_sum(mask.reshape(-1, 1), dim=0)[0]) if mask.numel() else 0.0
    return kind, nonzero * out_f, float(rows) * in_f * out_f


def conv_call_ops(dims: int, args: tuple, kwargs: dict, cache: FanoutCache) -> tuple[str, float, float]:
    """``(spike kind, effective ops, dense ops)`` of a ``F.conv{dims}d`` call."""
    x, weight, stride, padding, dilation, groups = conv_call_args(args, kwargs)
    x = x.detach()
    per_sample = tuple(x.shape[-(dims + 1):])
    fan = cache.get(dims, weight.shape, per_sample, stride, padding, dilation, groups, x.device)
    kind = spike_kind(x)
    counts = exact_sum(nonzero_mask(x, kind).reshape(-1, *per_sample), dim=0).to(fan.dtype)
    return kind, float((counts * fan).sum()), float(fan.sum()) * (x.numel() // fan.numel())


__all__ = [
    "CONV_FUNCTIONS", "spike_kind", "is_spike_tensor", "nonzero_mask", "conv_fanout_map", "fanout_map",
    "conv_call_args", "FanoutCache", "linear_call_ops", "conv_call_ops",
]
