"""Fold time into the batch so stateless layers run once per sequence.

``SeqToBatch(module)`` maps ``[T, B, ...] -> module([T*B, ...]) -> [T, B, ...]``. The fold and unfold
are views (no copies) whenever the ``T`` and ``B`` dims of ``x`` are contiguous with each other,
which holds for contiguous and channels-last-per-step tensors; the module sees an ordinary batch, so
Conv2d / BatchNorm2d (statistics over all ``T*B`` samples) / pooling / Linear / Flatten / Dropout run
one big call instead of ``T`` small ones. With ``compact_spikes=True``, when ``x`` is the spike
output of a built-in neuron, tensors the module saves for backward that share its memory (the
input of Linear / Conv / max-pool) are kept as uint8 (lossless, 4x smaller for float32, costs a
conversion each way; :mod:`spikeflow.functional.saved_spikes`).

BatchNorm statistics (``bn_stats``): with ``"all_steps"`` (default, spikeflow's choice) a BatchNorm
inside the module normalises with the statistics of all ``T*B`` samples of the call and updates its
running statistics once. With ``"per_step"`` every BatchNorm that uses batch statistics (training
mode, or ``track_running_stats=False``) runs once per step on the ``B`` samples of that step, in
step order, exactly as a per-step loop ``bn(x[t])`` (PLIF's ``self.conv(x[t])``; the running
statistics get ``T`` momentum updates per call). The other modules still run once on ``[T*B, ...]``;
in evaluation mode with running statistics the two settings are identical.

>>> import torch
>>> from torch import nn
>>> layer = SeqToBatch(nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8))
>>> layer(torch.rand(4, 3, 2, 16, 16)).shape
torch.Size([4, 3, 8, 16, 16])
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from spikeflow.functional.saved_spikes import compact_saved

__all__ = ["SeqToBatch", "fold_time", "unfold_time", "BN_STATS"]

BN_STATS = ("all_steps", "per_step")


def fold_time(x: Tensor) -> Tensor:
    """``[T, B, ...] -> [T*B, ...]`` (a view when possible)."""
    if not isinstance(x, Tensor) or x.dim() < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must have shape [T, B, ...] (at least 2 dims), got {shape}")
    return x.flatten(0, 1)


def unfold_time(y: Tensor, steps: int, batch: int) -> Tensor:
    """``[T*B, ...] -> [T, B, ...]`` (always a view)."""
    if not isinstance(y, Tensor):
        raise ValueError(f"expected the module to return one tensor, got {type(y).__name__}")
    if y.dim() < 1 or y.shape[0] != steps * batch:
        raise ValueError(
            f"expected the module output to keep the folded batch dim T*B = {steps}*{batch} = "
            f"{steps * batch}, got shape {tuple(y.shape)}"
        )
    return y.unflatten(0, (steps, batch))


class SeqToBatch(nn.Module):
    """Run a stateless module on every time step at once.

    Args:
        *modules: one module, or several that are chained in an ``nn.Sequential``.
        compact_spikes: keep spike inputs saved for backward as uint8 (see the module docstring).
        bn_stats: ``"all_steps"`` (BatchNorm statistics over ``T*B``) or ``"per_step"``
            (statistics of the ``B`` samples of each step, as a per-step loop).

    Shape: ``[T, B, *in] -> [T, B, *out]`` where the module maps ``[N, *in] -> [N, *out]``.
    """

    def __init__(self, *modules: nn.Module, compact_spikes: bool = False, bn_stats: str = "all_steps") -> None:
        super().__init__()
        self.compact_spikes = bool(compact_spikes)
        if not modules or not all(isinstance(m, nn.Module) for m in modules):
            raise ValueError(f"SeqToBatch needs one or more nn.Module arguments, got {modules!r}")
        if bn_stats not in BN_STATS:
            raise ValueError(f"SeqToBatch: bn_stats must be one of {BN_STATS}, got {bn_stats!r}")
        self.bn_stats = bn_stats
        self.module = modules[0] if len(modules) == 1 else nn.Sequential(*modules)

    def _call_per_step_bn(self, module: nn.Module, y: Tensor, steps: int) -> Tensor:
        """``module`` on the folded ``y [T*B, ...]``; BatchNorms with batch statistics per step."""
        if isinstance(module, nn.Sequential):
            for child in module:
                y = self._call_per_step_bn(child, y, steps)
            return y
        if isinstance(module, _BatchNorm) and (module.training or not module.track_running_stats):
            return torch.cat([module(part) for part in y.chunk(steps)])
        return module(y)

    def _run(self, x: Tensor, T: int, B: int) -> Tensor:
        if self.bn_stats == "all_steps" or T <= 1:
            return unfold_time(self.module(fold_time(x)), T, B)
        return unfold_time(self._call_per_step_bn(self.module, fold_time(x), T), T, B)

    def forward(self, x: Tensor) -> Tensor:
        T, B = x.shape[:2] if isinstance(x, Tensor) and x.dim() >= 2 else (0, 0)
        if not self.compact_spikes:
            return self._run(x, T, B)
        with compact_saved(x):
            return self._run(x, T, B)

    def extra_repr(self) -> str:
        return "bn_stats='per_step'" if self.bn_stats == "per_step" else ""
