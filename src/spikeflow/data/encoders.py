"""Spike encoders for static inputs: ``x [...]`` -> ``[T, ...]`` (time first).

* ``repeat``: the analog input copied along time (snn-iir's "copy along time"),
  ``out[t] = x``.
* ``poisson``: a Bernoulli draw per element per step with probability = intensity
  (snn-iir's Poisson input), ``out[t] = 1[u_t < x]``, ``u_t ~ U(0, 1)``; intensities are clipped
  to [0, 1]. Every call draws fresh spikes (a new pattern each epoch) from the given
  ``torch.Generator`` (or torch's global one), so a seeded generator reproduces them.

The "direct" encoding (a static conv applied once and repeated, PLIF) belongs to the model.
Apply encoders to a batch ``[B, C, H, W]`` to get ``[T, B, C, H, W]``.

    >>> import torch
    >>> x = torch.tensor([[0.0, 1.0]])
    >>> repeat(x, 3).shape
    torch.Size([3, 1, 2])
    >>> poisson(x, 4, torch.Generator().manual_seed(0)).sum(0).tolist()
    [[0.0, 4.0]]
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import Tensor

from spikeflow.registry import Registry

ENCODERS: Registry = Registry("encoder")


def repeat(x: Tensor, T: int) -> Tensor:
    """``[...] -> [T, ...]``: the input repeated ``T`` times (a view, no copy)."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    return x.unsqueeze(0).expand(T, *x.shape)


def poisson(x: Tensor, T: int, generator: torch.Generator | None = None) -> Tensor:
    """``[...] -> [T, ...]`` Bernoulli spikes with ``P(spike) = clip(x, 0, 1)`` per step."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    p = (x if x.is_floating_point() else x.float()).clamp(0.0, 1.0)
    u = torch.rand((T, *x.shape), generator=generator, dtype=p.dtype, device=p.device)
    return (u < p).to(p.dtype)


@ENCODERS.register("repeat")
@dataclass(frozen=True)
class RepeatEncoder:
    """Copy the analog input along ``T`` steps."""

    T: int
    random = False  # draws no random numbers (``generator`` is ignored)

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return repeat(x, self.T)


@ENCODERS.register("poisson")
@dataclass(frozen=True)
class PoissonEncoder:
    """Fresh Bernoulli spikes every call, rate = intensity; ``generator`` seeds them."""

    T: int
    random = True  # draws from ``generator``

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        return poisson(x, self.T, generator)


def create_encoder(name: str, T: int, **options: Any) -> Callable[..., Tensor]:
    """``create_encoder("poisson", T=25)(x, generator)`` -> ``[T, ...]``. An encoder is called as
    ``encoder(x, generator)`` and has a ``random`` attribute (whether it draws from ``generator``)."""
    return ENCODERS.get(name)(T=T, **options)


def list_encoders() -> list[str]:
    """Names of the registered encoders."""
    return ENCODERS.names()


__all__ = ["ENCODERS", "repeat", "poisson", "RepeatEncoder", "PoissonEncoder", "create_encoder",
           "list_encoders"]
