"""Dropout with one mask per sample shared over all time steps (PLIF / ASA "spike dropout").

For ``x [T, B, ...]`` a mask ``m = bernoulli(1 - p) / (1 - p)`` of shape ``[B, ...]`` is drawn once per
call and applied to every step: ``y[t] = m * x[t]``. So a dropped neuron is silent for the whole
sequence (Fang et al. 2021, SpikingJelly ``layer.Dropout``), and ``E[y] = x``. Identity in eval mode.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["TimeDropout", "time_dropout_mask", "time_dropout"]


def _check_p(p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}")
    return float(p)


def time_dropout_mask(x: Tensor, p: float, generator: Optional[torch.Generator] = None) -> Tensor:
    """The scaled mask ``bernoulli(1-p)/(1-p)`` of shape ``x.shape[1:]`` (zeros when ``p == 1``)."""
    p = _check_p(p)
    keep = torch.full(x.shape[1:], 1.0 - p, dtype=x.dtype, device=x.device)
    mask = torch.bernoulli(keep, generator=generator)
    return mask.div_(1.0 - p) if p < 1.0 else mask


def time_dropout(x: Tensor, p: float, training: bool = True,
                 generator: Optional[torch.Generator] = None) -> Tensor:
    """Apply one mask over all steps of ``x [T, B, ...]`` (identity if not ``training`` or ``p == 0``)."""
    if not isinstance(x, Tensor) or x.dim() < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must have shape [T, B, ...] (at least 2 dims), got {shape}")
    if not training or _check_p(p) == 0.0:
        return x
    return x * time_dropout_mask(x, p, generator)


class TimeDropout(nn.Module):
    """Dropout whose mask is drawn once per forward and shared over ``T``.

    Args:
        p: drop probability in ``[0, 1]``.

    Shape: ``[T, B, ...] -> [T, B, ...]``.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.p = _check_p(p)

    def forward(self, x: Tensor) -> Tensor:
        return time_dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
