"""Dropout over time-first sequences ``[T, B, ...]``.

* :class:`TimeDropout` (PLIF / ASA "spike dropout"): a mask ``m = bernoulli(1 - p) / (1 - p)`` of shape
  ``[B, ...]`` is drawn once per call and applied to every step: ``y[t] = m * x[t]``. So a dropped
  neuron is silent for the whole sequence (Fang et al. 2021, SpikingJelly ``layer.Dropout``), and
  ``E[y] = x``. Identity in eval mode.
* :class:`StepDropout` (He et al. 2020's ``F.dropout`` inside the step loop): an independent mask
  ``m[t] = bernoulli(1 - p) / (1 - p)`` per step and element, ``y[t] = m[t] * x[t]``; with
  ``eval_active=True`` (the authors' scripts call ``F.dropout(x, p)``, whose ``training`` flag
  defaults to True) it also drops in evaluation mode.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

__all__ = ["TimeDropout", "time_dropout_mask", "time_dropout", "StepDropout", "step_dropout_mask"]


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


def step_dropout_mask(x: Tensor, p: float, generator: Optional[torch.Generator] = None) -> Tensor:
    """The scaled mask ``bernoulli(1-p)/(1-p)`` of shape ``x.shape`` (a new draw for every step and
    element, as ``F.dropout``; zeros when ``p == 1``)."""
    p = _check_p(p)
    mask = torch.empty_like(x).bernoulli_(1.0 - p, generator=generator)
    return mask.div_(1.0 - p) if p < 1.0 else mask


class StepDropout(nn.Module):
    """Dropout with a new mask per step and element (``F.dropout`` applied at every step).

    Args:
        p: drop probability in ``[0, 1]``.
        eval_active: also drop in evaluation mode (He et al. 2020's scripts; default True).

    Attributes:
        generator: optional ``torch.Generator`` for the masks (None: the global RNG).
        record_mask: keep the last mask in ``last_mask`` (tests, analysis; off by default because it
            holds a tensor of the input's size).

    Shape: ``[T, B, ...] -> [T, B, ...]``.
    """

    def __init__(self, p: float = 0.5, eval_active: bool = True) -> None:
        super().__init__()
        self.p = _check_p(p)
        self.eval_active = bool(eval_active)
        self.generator: Optional[torch.Generator] = None
        self.record_mask = False
        self.last_mask: Optional[Tensor] = None

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() < 2:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must have shape [T, B, ...] (at least 2 dims), got {shape}")
        if self.p == 0.0 or not (self.training or self.eval_active):
            return x
        mask = step_dropout_mask(x, self.p, self.generator)
        if self.record_mask:
            self.last_mask = mask
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}, eval_active={self.eval_active}"
