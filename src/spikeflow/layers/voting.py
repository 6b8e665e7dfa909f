"""Voting read-out: average ``group`` consecutive output neurons per class (PLIF: 10 per class).

``y[..., k] = mean(x[..., k*group : (k+1)*group])`` (``AvgPool1d(group, group)`` over the last dim).
"""
from __future__ import annotations

from torch import Tensor, nn

__all__ = ["VotingLayer"]


class VotingLayer(nn.Module):
    """Average groups of ``group`` consecutive neurons of the last dim.

    Args:
        group: neurons per class (>= 1).

    Shape: ``[..., K*group] -> [..., K]`` (e.g. ``[T, B, 110] -> [T, B, 11]``).
    """

    def __init__(self, group: int = 10) -> None:
        super().__init__()
        if isinstance(group, bool) or not isinstance(group, int) or group < 1:
            raise ValueError(f"group must be an int >= 1, got {group!r}")
        self.group = group

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 1 or x.shape[-1] % self.group:
            raise ValueError(
                f"VotingLayer(group={self.group}) needs a last dim divisible by {self.group}, got x of "
                f"shape {tuple(x.shape)}"
            )
        return x.unflatten(-1, (x.shape[-1] // self.group, self.group)).mean(-1)

    def extra_repr(self) -> str:
        return f"group={self.group}"
