"""Spike tensors saved for backward as uint8 instead of float (lossless, 4x smaller for float32).

The built-in neurons mark the spike tensors they return (:func:`mark_spikes`: values exactly
``+0.0`` / ``1.0``). When :class:`~spikeflow.layers.SeqToBatch` runs its module on a marked tensor
(``Linear`` / ``Conv`` / ``MaxPool`` after a neuron), :func:`compact_saved` keeps every tensor that
the module saves for backward *and that shares the spikes' memory* as uint8, and converts it back
in backward. A ``Linear(512, 10)`` on ``[T*B, 512]`` spikes then holds ``T*B*512`` bytes instead
of ``4*T*B*512`` until backward; gradients are identical (the restored values are exactly the
saved ones).

Safety: a mark is valid only while the tensor's version counter is unchanged (an in-place edit
after the neuron, e.g. ``mul_``, drops the mark); nothing is compacted while compiling. Other
saved-tensor hooks active around the call (``torch.autograd.graph.save_on_cpu``, a memory
probe) are chained: they receive the uint8 form. Hooks that pack spikes better themselves
(``train.pack_saved``: 1 bit per spike; their pack function has ``packs_spikes = True``) keep full
control and nothing is compacted here.

>>> import torch
>>> s = mark_spikes((torch.rand(64, 512) > 0.8).float())
>>> lin = torch.nn.Linear(512, 10)
>>> with compact_saved(s):
...     y = lin(s)              # addmm saves `s` for the weight gradient: kept as 64*512 bytes
>>> y.sum().backward()
"""
from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Any, Iterator

import torch
from torch import Tensor

from spikeflow import _compat

__all__ = ["mark_spikes", "is_marked", "compact_saved"]

_MARK = "_spikeflow_spikes_version"
_FLOATS = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def mark_spikes(spikes: Tensor) -> Tensor:
    """Mark ``spikes`` (values exactly 0 or 1) as compactable; returns the same tensor."""
    if spikes.dtype in _FLOATS:
        setattr(spikes, _MARK, spikes._version)
    return spikes


def is_marked(x: Any) -> bool:
    """Whether ``x`` is a marked spike tensor not modified in place since it was marked."""
    return isinstance(x, Tensor) and getattr(x, _MARK, None) == x._version


def _outer_hooks() -> tuple[Any, Any] | None:
    """The saved-tensor hooks active now (``None`` if none); ``False`` if they cannot be read."""
    try:
        return _compat.saved_tensors_hooks()
    except _compat.Unsupported:
        return False


def _same_memory(t: Tensor, x: Tensor) -> bool:
    return (t.device == x.device and t.dtype == x.dtype and t.numel() == x.numel()
            and t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr()
            and t.storage_offset() == x.storage_offset())


def _identity(t: Any) -> Any:
    return t


class _Compact:
    """A uint8 copy of saved spikes (after the outer pack hook) and the dtype to restore."""

    __slots__ = ("payload", "dtype")

    def __init__(self, payload: Any, dtype: torch.dtype) -> None:
        self.payload, self.dtype = payload, dtype


def _hooks(x: Tensor, outer: tuple[Any, Any] | None = None) -> tuple[Any, Any]:
    outer_pack, outer_unpack = outer if outer else (_identity, _identity)

    def pack(t: Tensor) -> Any:
        if _same_memory(t, x) and t._version == x._version:
            return _Compact(outer_pack(t.to(torch.uint8)), t.dtype)
        return outer_pack(t)

    def unpack(p: Any) -> Tensor:
        if isinstance(p, _Compact):
            return outer_unpack(p.payload).to(p.dtype)
        return outer_unpack(p)

    return pack, unpack


def compact_saved(x: Any):
    """Context in which tensors saved for backward that share ``x``'s memory are kept as uint8.

    A no-op context unless ``x`` is a marked spike tensor (:func:`is_marked`), gradients are
    enabled, nothing is being compiled and the active hooks (if any) do not pack spikes
    themselves.
    """
    if not is_marked(x) or not torch.is_grad_enabled() or _compat.is_compiling():
        return nullcontext()
    outer = _outer_hooks()
    if outer is False or (outer and getattr(outer[0], "packs_spikes", False)):
        return nullcontext()
    return _compacting(x, outer)


@contextmanager
def _compacting(x: Tensor, outer: tuple[Any, Any] | None) -> Iterator[None]:
    with torch.autograd.graph.saved_tensors_hooks(*_hooks(x, outer)):
        yield
