"""Lossless compression of the tensors autograd keeps for backward (``train.pack_saved``).

Inside :func:`packed_saved_tensors`, every large CPU tensor that an op saves for backward and that
was computed in the forward (not an input or a parameter) is inspected once
(``torch.autograd.graph.saved_tensors_hooks``):

* a float tensor whose values are all ``0`` or one constant ``c`` -- spikes, pooled spikes, spikes
  scaled by dropout -- is stored as 1 bit per element (32x smaller for float32) plus ``c`` (the ops
  ``spikeflow::pack_bits`` / ``unpack_bits`` of :mod:`spikeflow.ops.packing`);
* an int64 tensor whose values fit in int32 (max-pool indices) is stored as int32 (2x smaller);
* anything else (membrane inputs, BN outputs, parameters) is kept as is; the check stops at the
  first value that is not ``0``/``c``, so it costs almost nothing on such tensors.

The test compares bit patterns (``+0.0`` or the constant's), so ``-0.0``, NaNs and any third value
are never packed and unpacking restores the exact values: gradients are bit-identical with and
without packing. CUDA tensors are left alone.

    >>> import torch
    >>> lin = torch.nn.Linear(4096, 8)
    >>> x = torch.rand(16, 4096, requires_grad=True)
    >>> with packed_saved_tensors() as stats:
    ...     spikes = (x > 0.8).float() + x * 0   # computed in the forward: 0/1 values
    ...     loss = lin(spikes).sum()
    >>> stats.saved_bytes, stats.packed_bytes       # 16*4096 floats -> 16*4096 bits
    (262144, 8192)
    >>> loss.backward()
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch import Tensor

from spikeflow import ops

MIN_ELEMENTS = 8192        # smaller tensors are not worth a kernel call
_FLOATS = (torch.float32, torch.float64)
_INT32 = torch.iinfo(torch.int32)


@dataclass
class PackStats:
    """Bytes of the tensors offered to the hook (``saved_bytes``) and of their packed forms."""

    saved_bytes: int = 0
    packed_bytes: int = 0
    tensors: int = 0


@dataclass(frozen=True)
class _Bits:
    bits: Tensor
    value: Tensor  # the constant (0-dim, the tensor's dtype; its exact bits are restored)
    shape: torch.Size  # in memory order (``order`` permutes the logical dims into it)
    dtype: torch.dtype
    order: tuple[int, ...]

    @property
    def scale(self) -> float:
        """The constant as a Python float."""
        return float(self.value)


@dataclass(frozen=True)
class _Narrow:
    values: Tensor
    shape: torch.Size


def _memory_order(t: Tensor) -> tuple[int, ...]:
    """Dims from outer to inner in memory when ``t`` is dense in some order (e.g. channels-last),
    so it can be read flat without a copy; the identity order otherwise (then it is copied)."""
    order = tuple(sorted(range(t.dim()), key=lambda d: (-t.stride(d), d)))
    return order if t.permute(order).is_contiguous() else tuple(range(t.dim()))


def pack_binary(t: Tensor) -> _Bits | None:
    """1-bit form of a float tensor whose values are all +0.0 or one constant; None otherwise
    (the op ``spikeflow::pack_bits``, :mod:`spikeflow.ops.packing`)."""
    order = _memory_order(t)
    dense = t.detach().permute(order).contiguous()
    bits, value, ok = ops.pack_bits(dense)
    if not bool(ok):
        return None
    return _Bits(bits, value, dense.shape, t.dtype, order)


def unpack_binary(p: _Bits) -> Tensor:
    out = ops.unpack_bits(p.bits, p.value, p.shape)
    return out.permute([p.order.index(d) for d in range(len(p.order))])


def narrow_int64(t: Tensor) -> _Narrow | None:
    """int32 copy of an int64 tensor whose values fit; None otherwise."""
    flat = t.detach().reshape(-1)
    if flat.numel():
        lo, hi = torch.aminmax(flat)
        if int(lo) < _INT32.min or int(hi) > _INT32.max:
            return None
    return _Narrow(flat.to(torch.int32), t.shape)


def _eligible(t: Tensor) -> bool:
    """Large CPU tensors computed inside the forward: float results of ops (inputs and parameters
    are alive anyway, packing them would only add a copy) and int64 index tensors."""
    if t.device.type != "cpu" or t.numel() < MIN_ELEMENTS or t.layout != torch.strided:
        return False
    if t.dtype in _FLOATS:
        base = t._base if t._base is not None else t  # views of parameters stay unpacked
        return base.grad_fn is not None
    return t.dtype == torch.int64


def make_hooks(stats: PackStats | None = None) -> tuple[Any, Any]:
    """The ``(pack, unpack)`` pair for ``torch.autograd.graph.saved_tensors_hooks``; ``pack``
    returns the tensor itself or a packed form, and counts bytes into ``stats``."""
    stats = PackStats() if stats is None else stats

    def pack(t: Tensor) -> Any:
        if not _eligible(t):
            return t
        stats.saved_bytes += t.numel() * t.element_size()
        stats.tensors += 1
        packed = pack_binary(t) if t.dtype in _FLOATS else narrow_int64(t)
        if packed is None:
            stats.packed_bytes += t.numel() * t.element_size()
            return t
        stats.packed_bytes += packed_nbytes(packed)
        return packed

    def unpack(p: Any) -> Tensor:
        if isinstance(p, _Bits):
            return unpack_binary(p)
        if isinstance(p, _Narrow):
            return p.values.to(torch.int64).view(p.shape)
        return p

    pack.packs_spikes = True  # type: ignore[attr-defined]  # saved_spikes leaves spikes to us
    return pack, unpack


def packed_nbytes(p: Any) -> int:
    """Bytes held by a packed form (or a tensor)."""
    store = p.bits if isinstance(p, _Bits) else p.values if isinstance(p, _Narrow) else p
    return store.numel() * store.element_size()


@contextmanager
def packed_saved_tensors(enabled: bool = True) -> Iterator[PackStats]:
    """Pack binary/two-valued float and int32-range int64 tensors saved for backward (see module
    docstring) while the block runs; yields running :class:`PackStats`."""
    stats = PackStats()
    if not enabled:
        yield stats
        return
    with torch.autograd.graph.saved_tensors_hooks(*make_hooks(stats)):
        yield stats


__all__ = ["packed_saved_tensors", "make_hooks", "packed_nbytes", "PackStats", "pack_binary", "unpack_binary", "narrow_int64",
           "MIN_ELEMENTS"]
