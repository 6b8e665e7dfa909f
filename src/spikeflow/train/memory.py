"""Lossless compression of the tensors autograd keeps for backward (``train.pack_saved``).

Inside :func:`packed_saved_tensors`, every large CPU tensor that an op saves for backward and that
was computed in the forward (not an input or a parameter) is inspected once
(``torch.autograd.graph.saved_tensors_hooks``):

* a float tensor whose values are all ``0`` or one constant ``c`` -- spikes, pooled spikes, spikes
  scaled by dropout -- is stored as 1 bit per element (32x smaller for float32) plus ``c``;
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

import numpy as np
import torch
from numba import njit
from torch import Tensor

from spikeflow.ops._cpu._numba_cache import ensure_numba_cache
from spikeflow.ops._cpu._runtime import run_blocks

ensure_numba_cache()  # the user cache folder; creates no file (ops/_cpu/_numba_cache.py)

MIN_ELEMENTS = 8192        # smaller tensors are not worth a kernel call
BLOCK_BYTES = 1 << 12      # packed bytes per work block (32768 elements)
_FLOATS = (torch.float32, torch.float64)


@njit(cache=True, nogil=True)
def _first_nonzero(xi):  # pragma: no cover - compiled
    for i in range(xi.size):
        if xi[i] != 0:
            return xi[i]
    return xi[:1][0] * 0  # all zero bit patterns


@njit(cache=True, nogil=True)
def _pack_bits(b0, b1, xi, ci, out, status):  # pragma: no cover - compiled
    # xi: the float data viewed as same-width integers; a value packs iff its bit pattern is 0
    # (+0.0) or ci (the constant), so -0.0, NaNs and any third value are rejected exactly
    n = xi.size
    nbytes = out.size
    for b in range(b0, b1):
        lo = b * BLOCK_BYTES
        hi = min(lo + BLOCK_BYTES, nbytes)
        full = min(hi, n // 8)
        bad = False
        j = lo
        while j < full:
            stop = min(j + 64, full)
            for jj in range(j, stop):
                byte = 0
                for k in range(8):
                    v = xi[jj * 8 + k]
                    nz = v != 0
                    byte |= np.uint8(nz) << np.uint8(k)
                    bad |= nz & (v != ci)
                out[jj] = byte
            if bad:
                break
            j = stop
        if not bad and hi > full:  # the last, partial byte
            byte = 0
            for i in range(full * 8, n):
                v = xi[i]
                nz = v != 0
                byte |= np.uint8(nz) << np.uint8(i - full * 8)
                bad |= nz & (v != ci)
            out[full] = byte
        status[b] = bad


@njit(cache=True, nogil=True)
def _unpack_bits(b0, b1, bits, table, out):  # pragma: no cover - compiled
    # table[byte] holds the 8 values of one packed byte
    n = out.size
    full = n // 8
    for b in range(b0, b1):
        lo = b * BLOCK_BYTES
        hi = min(lo + BLOCK_BYTES, bits.size)
        for j in range(lo, min(hi, full)):
            row = table[bits[j]]
            for k in range(8):
                out[j * 8 + k] = row[k]
        if hi > full:
            row = table[bits[full]]
            for i in range(full * 8, n):
                out[i] = row[i - full * 8]


@njit(cache=True, nogil=True)
def _narrow_int(b0, b1, x, out, status):  # pragma: no cover - compiled
    n = x.size
    for b in range(b0, b1):
        lo = b * BLOCK_BYTES * 8
        hi = min(lo + BLOCK_BYTES * 8, n)
        for i in range(lo, hi):
            v = x[i]
            if v < -2147483648 or v > 2147483647:
                status[b] = 1
                break
            out[i] = v


@dataclass
class PackStats:
    """Bytes of the tensors offered to the hook (``saved_bytes``) and of their packed forms."""

    saved_bytes: int = 0
    packed_bytes: int = 0
    tensors: int = 0


@dataclass(frozen=True)
class _Bits:
    bits: Tensor
    scale: float
    shape: torch.Size  # in memory order (``order`` permutes the logical dims into it)
    dtype: torch.dtype
    order: tuple[int, ...]


@dataclass(frozen=True)
class _Narrow:
    values: Tensor
    shape: torch.Size


_INT_VIEW = {torch.float32: torch.int32, torch.float64: torch.int64}


def _memory_order(t: Tensor) -> tuple[int, ...]:
    """Dims from outer to inner in memory when ``t`` is dense in some order (e.g. channels-last),
    so it can be read flat without a copy; the identity order otherwise (then it is copied)."""
    order = tuple(sorted(range(t.dim()), key=lambda d: (-t.stride(d), d)))
    return order if t.permute(order).is_contiguous() else tuple(range(t.dim()))


def pack_binary(t: Tensor) -> _Bits | None:
    """1-bit form of a float tensor whose values are all +0.0 or one constant; None otherwise."""
    order = _memory_order(t)
    dense = t.detach().permute(order).contiguous()
    flat = dense.view(-1)
    xi = flat.view(_INT_VIEW[flat.dtype]).numpy()
    nbytes = -(-xi.size // 8)
    bits = torch.empty(nbytes, dtype=torch.uint8)
    nblocks = -(-nbytes // BLOCK_BYTES)
    status = np.zeros(nblocks, np.bool_)
    ci = _first_nonzero(xi)
    run_blocks(_pack_bits, nblocks, xi.size, xi, ci, bits.numpy(), status)
    if status.any():
        return None
    c = float(torch.tensor([int(ci)], dtype=_INT_VIEW[flat.dtype]).view(flat.dtype)) if ci else 1.0
    return _Bits(bits, c, dense.shape, t.dtype, order)


def _table(c: float, dtype: torch.dtype) -> np.ndarray:
    codes = torch.arange(256).unsqueeze(1)
    return (((codes >> torch.arange(8)) & 1).to(dtype) * c).numpy()


def unpack_binary(p: _Bits) -> Tensor:
    out = torch.empty(p.shape, dtype=p.dtype)
    flat = out.view(-1).numpy()
    nblocks = -(-p.bits.numel() // BLOCK_BYTES)
    run_blocks(_unpack_bits, nblocks, flat.size, p.bits.numpy(), _table(p.scale, p.dtype), flat)
    return out.permute([p.order.index(d) for d in range(len(p.order))])


def narrow_int64(t: Tensor) -> _Narrow | None:
    """int32 copy of an int64 tensor whose values fit; None otherwise."""
    x = t.detach().contiguous().view(-1).numpy()
    out = torch.empty(x.size, dtype=torch.int32)
    nblocks = -(-x.size // (BLOCK_BYTES * 8))
    status = np.zeros(nblocks, np.int8)
    run_blocks(_narrow_int, nblocks, x.size, x, out.numpy(), status)
    return None if status.any() else _Narrow(out, t.shape)


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
