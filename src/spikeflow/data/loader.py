"""Time-first batches: :class:`DataLoader` and :func:`collate_time_first`.

spikeflow's sequences are time-first everywhere (``[T, B, ...]``); a dataset item is
``(x [T, ...], label)``. ``torch.utils.data.DataLoader`` stacks items along a new dim 0 and
gives ``[B, T, ...]``, which a time-first net would silently read as ``B`` steps of ``T``
samples. :class:`DataLoader` is torch's loader with the time-first collate:

    >>> import torch
    >>> items = [(torch.full((4, 2), float(i)), i) for i in range(6)]     # T=4 steps, 2 features
    >>> x, y = next(iter(DataLoader(items, batch_size=3, T=4)))
    >>> tuple(x.shape), y.tolist()                                         # [T, B, F]
    ((4, 3, 2), [0, 1, 2])

Items of a batch must have the same ``T``; with ``T=`` given every item is checked against it,
and a mismatch names the item and says when the item looks batch-first or time-last.
Targets stay batch-first: ``[B]`` class indices or ``[B, ...]`` tensors.
"""
from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader as TorchDataLoader

__all__ = ["DataLoader", "TimeFirstCollate", "collate_time_first", "stack_targets",
           "check_time_first"]


def stack_targets(ys: Sequence[Any]) -> Tensor:
    """Labels -> ``[B]`` (ints or floats), tensors/arrays -> stacked ``[B, ...]``."""
    first = ys[0]
    if isinstance(first, (Tensor, np.ndarray)) and np.ndim(first) > 0:
        return torch.stack([torch.as_tensor(y) for y in ys], 0)
    return torch.as_tensor([int(y) if not isinstance(y, float) else y for y in ys])


def check_time_first(x: Tensor, T: Optional[int], what: str = "the input") -> None:
    """Raise ``ValueError`` unless ``x`` is ``[T, B, ...]`` with ``x.shape[0] == T``.

    ``T=None`` only checks that ``x`` has a batch dim. When ``x.shape[1] == T`` the message says
    that time and batch look swapped (``[B, T, ...]``, e.g. from ``torch.utils.data.DataLoader``).
    """
    if not isinstance(x, Tensor) or x.dim() < 2:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{what} must be time-first [T, B, ...], got {shape}")
    if T is None or x.shape[0] == T:
        return
    hint = ""
    if x.shape[1] == T:
        hint = ("; dim 1 equals T, so time and batch look swapped ([B, T, ...], e.g. from "
                "torch.utils.data.DataLoader): batch with spikeflow.data.DataLoader or "
                "x.transpose(0, 1)")
    raise ValueError(f"{what} has {x.shape[0]} steps in dim 0 (shape {tuple(x.shape)}) but "
                     f"T={T}{hint}")


class TimeFirstCollate:
    """Collate ``[(x [T, ...], y), ...]`` into ``(x [T, B, ...], targets)`` (picklable for workers).

    Args:
        T: expected steps per item (None: any, but equal within a batch).
    """

    def __init__(self, T: Optional[int] = None) -> None:
        if T is not None and (not isinstance(T, int) or T < 1):
            raise ValueError(f"T must be a positive int or None, got {T!r}")
        self.T = T

    def __call__(self, batch: Sequence[tuple[Any, Any]]) -> tuple[Tensor, Tensor]:
        if not batch:
            raise ValueError("collate_time_first: empty batch")
        try:
            xs, ys = zip(*batch)
        except (TypeError, ValueError):
            raise ValueError(f"collate_time_first: items must be (input, label) pairs, got "
                             f"{type(batch[0]).__name__}") from None
        xs = [torch.as_tensor(x) for x in xs]
        steps = self.T if self.T is not None else (xs[0].shape[0] if xs[0].dim() else None)
        for i, x in enumerate(xs):
            if x.dim() < 1 or x.shape[0] != steps:
                raise ValueError(self._mismatch(i, x, steps))
        return torch.stack(xs, 1), stack_targets(ys)

    def _mismatch(self, i: int, x: Tensor, steps: Optional[int]) -> str:
        shape = tuple(x.shape)
        where = "T" if self.T is not None else "the first item's T"
        msg = (f"collate_time_first: item {i} of the batch has shape {shape} but items must be "
               f"[T, ...] with {where} = {steps} steps in dim 0")
        if steps is not None and x.dim() >= 1 and steps in shape[1:]:
            msg += (f"; it has {steps} in dim {shape.index(steps, 1)}: the dataset gives a "
                    "different layout (time must be dim 0 of an item)")
        return msg

    def __repr__(self) -> str:
        return f"TimeFirstCollate(T={self.T})"


def collate_time_first(batch: Sequence[tuple[Any, Any]]) -> tuple[Tensor, Tensor]:
    """Items ``([T, ...], y)`` -> ``([T, B, ...], targets)`` (one contiguous copy, no transpose)."""
    return TimeFirstCollate()(batch)


class DataLoader(TorchDataLoader):
    """``torch.utils.data.DataLoader`` yielding time-first batches ``([T, B, ...], targets)``.

    Takes every argument of torch's loader; ``collate_fn`` defaults to
    :class:`TimeFirstCollate` ``(T)``. ``T``: the steps each item must have (checked per item,
    with an error naming a swapped layout); None accepts any ``T`` equal within a batch.
    Items must be sequences ``[T, ...]``; static items ``[C, H, W]`` are encoded first
    (:mod:`spikeflow.data.encoders`, or ``data.encoding`` in a training config).
    """

    def __init__(self, dataset: Any, batch_size: Optional[int] = 1, shuffle: Optional[bool] = None,
                 *args: Any, T: Optional[int] = None, collate_fn: Any = None, **kwargs: Any) -> None:
        if collate_fn is None:
            collate_fn = TimeFirstCollate(T)
        elif T is not None:
            raise ValueError("DataLoader: pass either T (checked by the time-first collate) or "
                             "your own collate_fn, not both")
        self.T = T
        super().__init__(dataset, batch_size, shuffle, *args, collate_fn=collate_fn, **kwargs)
