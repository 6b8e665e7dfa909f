"""Small helpers shared by the neuron dynamics in ``functional/``."""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from spikeflow.ops import zeros

__all__ = ["initial_state", "StepLayout", "zeros"]


def initial_state(x: Tensor, state: Optional[Tensor], name: str) -> Tensor:
    """``state`` checked against one step of ``x [T, ...]`` (zeros = rest when ``None``)."""
    if x.dim() < 1:
        raise ValueError(f"x must have a leading time dimension [T, ...], got shape {tuple(x.shape)}")
    if state is None:
        if torch.compiler.is_compiling():  # a graph op, not a constant captured while tracing
            return torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device)
        return zeros(x.shape[1:], x.dtype, x.device)
    if state.shape != x.shape[1:]:
        raise ValueError(f"{name} must have the shape of one step of x, {tuple(x.shape[1:])}, "
                         f"got {tuple(state.shape)}")
    return state.to(x.dtype)


class StepLayout:
    """How the fused kernels see ``x [T, ...]``: as ``[T, N]`` over the memory order of one step.

    A contiguous ``x`` is reshaped (a view). A step stored in another dense order -- e.g. a
    channels-last ``[T, B, C, H, W]`` sequence from ``SeqToBatch`` on a channels-last conv -- is
    permuted so that its memory order is logical order, then reshaped: still a view, no copy, and
    the outputs are permuted back, so spikes and gradients keep the input's memory format (the
    next conv stays channels-last). Any other layout is copied once (``reshape``).
    """

    def __init__(self, x: Tensor) -> None:
        dims = list(range(1, x.dim()))
        self.order = [0] + sorted(dims, key=lambda d: (-x.stride(d), d))  # outer -> inner in memory
        if x.is_contiguous() or not x.permute(self.order).is_contiguous():
            self.order = list(range(x.dim()))
        self.inverse = [self.order.index(d) for d in range(x.dim())]
        self.shape = [x.shape[d] for d in self.order]
        self.permuted = self.order != list(range(x.dim()))  # else no permute (no autograd node)

    def flat(self, x: Tensor) -> Tensor:
        """``x [T, ...]`` -> ``[T, N]`` in this layout's element order."""
        return (x.permute(self.order) if self.permuted else x).reshape(x.shape[0], -1)

    def flat_state(self, v: Tensor) -> Tensor:
        """One step's state ``[...]`` -> ``[N]`` in the same element order."""
        return (v.permute([d - 1 for d in self.order[1:]]) if self.permuted else v).reshape(-1)

    def unflat(self, y: Tensor) -> Tensor:
        """``[T, N]`` -> ``[T, ...]`` (strides follow the input's memory order)."""
        y = y.view([y.shape[0]] + self.shape[1:])
        return y.permute(self.inverse) if self.permuted else y

    def unflat_state(self, v: Tensor) -> Tensor:
        """``[N]`` -> one step's ``[...]``."""
        v = v.view(self.shape[1:])
        return v.permute([i - 1 for i in self.inverse[1:]]) if self.permuted else v
