"""Small helpers shared by the neuron dynamics in ``functional/``."""
from __future__ import annotations

from typing import Optional, Union

from torch import Tensor
import torch

__all__ = ["initial_state", "param_value"]


def initial_state(x: Tensor, state: Optional[Tensor], name: str) -> Tensor:
    """``state`` checked against one step of ``x [T, ...]`` (zeros = rest when ``None``)."""
    if x.dim() < 1:
        raise ValueError(f"x must have a leading time dimension [T, ...], got shape {tuple(x.shape)}")
    if state is None:
        return torch.zeros(x.shape[1:], dtype=x.dtype, device=x.device)
    if state.shape != x.shape[1:]:
        raise ValueError(f"{name} must have the shape of one step of x, {tuple(x.shape[1:])}, "
                         f"got {tuple(state.shape)}")
    return state.to(x.dtype)


def param_value(p: Union[float, Tensor]) -> tuple[Optional[Tensor], float]:
    """``(tensor or None, float value)`` of a surrogate parameter."""
    if isinstance(p, Tensor):
        return p, float(p.detach())
    return None, float(p)
