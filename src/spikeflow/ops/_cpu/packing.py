"""Fused CPU kernels of spike bit-packing (numba): the CPU implementation of the ops
``spikeflow::pack_bits`` and ``spikeflow::unpack_bits``.

A float tensor, read flat, whose values are all ``+0.0`` or one constant ``c`` is stored as one bit
per element (bit ``k`` of byte ``j`` is element ``8 j + k``) plus ``c``. The test compares bit
patterns (the data viewed as same-width integers), so a third value, or NaNs of different
patterns, are rejected exactly and unpacking restores the exact values. Work is split into blocks
of ``BLOCK_BYTES`` packed bytes run by :func:`~spikeflow.ops._cpu._runtime.run_blocks`; a block
stops at its first value that is not ``0``/``c``, so non-binary tensors cost almost nothing.
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit
from torch import Tensor

from spikeflow._numba_cache import ensure_numba_cache
from spikeflow.ops._cpu._runtime import run_blocks

ensure_numba_cache()  # caches in the user cache folder (see _numba_cache.py)

__all__ = ["BLOCK_BYTES", "pack", "unpack"]

BLOCK_BYTES = 1 << 12  # packed bytes per work block (32768 elements)
_INT_VIEW = {torch.float32: torch.int32, torch.float64: torch.int64}


@njit(cache=True, nogil=True)
def _first_nonzero(xi):  # pragma: no cover - compiled
    for i in range(xi.size):
        if xi[i] != 0:
            return xi[i]
    return xi[:1][0] * 0  # all zero bit patterns


@njit(cache=True, nogil=True)
def _pack_bits(b0, b1, xi, ci, out, status):  # pragma: no cover - compiled
    # xi: the float data viewed as same-width integers; a value packs iff its bit pattern is 0
    # (+0.0) or ci (the constant), so a third value and NaNs of another pattern are rejected
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


def pack(x: Tensor) -> tuple[Tensor, Tensor, bool]:
    """``(bits, value, ok)`` of a float32/float64 CPU tensor read flat: ``bits`` uint8
    ``[ceil(numel / 8)]`` (meaningful only when ``ok``), ``value`` the constant (0-dim, ``x``'s
    dtype; 1.0 when every element is +0.0), ``ok`` whether every element is +0.0 or ``value``."""
    flat = x.detach().reshape(-1)
    xi = flat.view(_INT_VIEW[flat.dtype]).numpy()
    nbytes = -(-xi.size // 8)
    bits = torch.empty(nbytes, dtype=torch.uint8)
    nblocks = -(-nbytes // BLOCK_BYTES)
    status = np.zeros(nblocks, np.bool_)
    ci = _first_nonzero(xi) if xi.size else xi.dtype.type(0)
    if nblocks:
        run_blocks(_pack_bits, nblocks, xi.size, xi, ci, bits.numpy(), status)
    np_float = flat.numpy().dtype
    value = np.array(ci, dtype=xi.dtype).view(np_float) if ci else np.ones((), np_float)  # its bits
    return bits, torch.from_numpy(value), not status.any()


_BITS = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(np.bool_)  # [byte, k]: bit k set


def _table(value: Tensor) -> np.ndarray:
    """``[256, 8]``: the values of the 8 elements of each byte (``value`` where a bit is set,
    +0.0 elsewhere; a copy of ``value``'s exact bits, also for negative ``value`` or a NaN)."""
    v = value.detach().numpy()
    return np.where(_BITS, v, np.zeros((), v.dtype))


def unpack(bits: Tensor, value: Tensor, numel: int) -> Tensor:
    """The flat float tensor (``value``'s dtype, ``[numel]``) of :func:`pack`'s ``bits``."""
    out = torch.empty(numel, dtype=value.dtype)
    nblocks = -(-bits.numel() // BLOCK_BYTES)
    if numel:
        run_blocks(_unpack_bits, nblocks, numel, bits.contiguous().numpy(), _table(value),
                   out.numpy())
    return out
