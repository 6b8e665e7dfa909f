"""Event-driven ``y = x W^T + b`` for sparse (spike) inputs ``x [N, K]`` on the CPU (numba kernels).

Forward, two passes over ``x``:

1. :func:`_count` (parallel over row blocks): non-zeros per row and whether every non-zero value is
   exactly 1.0 ("binary": values need not be stored). The caller turns the counts into the density
   that picks the sparse or the dense path, and into CSR row pointers (a cumulative sum).
2. :func:`_forward` (parallel over row blocks): fills the CSR column indices (int32) and, unless
   binary, the values, then ``y[r, :] = b + sum_{j in row r} x[r, j] * Wt[j, :]`` with
   ``Wt = W^T [K, O]`` contiguous, so each term is a SIMD add of a contiguous weight row. Four terms
   are added per pass over a ``y`` row (one load/store of ``y`` per four weight rows); outputs wider
   than ``CHUNK`` are done in column chunks.

Backward keeps only the CSR: :func:`_transpose` turns it into CSC (rows of each column ``j``, in
increasing order; one serial counting-sort pass), then :func:`_grad_wt` (parallel over blocks of
``j``, race-free: each block owns its rows of ``gWt``) computes ``gWt[j, :] = sum_{r in col j}
x[r, j] * gY[r, :]``, again four terms per pass. ``grad_b`` and ``grad_x = gY W`` are dense torch
ops (see :mod:`spikeflow.layers.sparse_linear`).

Exactness: the sums are the dense ones without the zero terms, in another order, so results agree
with ``F.linear`` to rounding (not bit for bit). A zero input times an infinite or NaN weight gives
NaN in the dense product and is skipped here.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from numba import njit
from torch import Tensor

from spikeflow._numba_cache import ensure_numba_cache
from spikeflow.ops._cpu._runtime import run_blocks

ensure_numba_cache()  # caches in the user cache folder (see _numba_cache.py)

__all__ = ["CSR", "count_rows", "build_forward", "grad_weight_t", "ROWS", "CHUNK"]

ROWS = 32  # rows of x per forward block
COLS = 16  # columns of x (rows of gWt) per backward block
CHUNK = 1024  # output columns per pass (measured: per-pass overhead outweighs L2 reuse; 128 was
# 25% slower than 512 forward and backward at 784 -> 512)


class CSR(NamedTuple):
    """The non-zeros of ``x [N, K]``: ``rowptr [N+1]`` int64, ``idx [nnz]`` int32, ``val [nnz]``
    (``x``'s dtype; empty when ``binary``: every non-zero is exactly 1.0)."""

    rowptr: np.ndarray
    idx: np.ndarray
    val: np.ndarray
    binary: bool
    shape: tuple[int, int]

    def nbytes(self) -> int:
        return self.rowptr.nbytes + self.idx.nbytes + self.val.nbytes


@njit(cache=True, nogil=True)
def _count(b0, b1, bs, x, counts, nonbin):  # pragma: no cover - compiled
    """``counts[r]`` = non-zeros of row ``r``; ``nonbin[b]`` = 1 if block ``b`` has a value != 0, 1."""
    N, K = x.shape
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        other = 0
        for r in range(lo, hi):
            xr = x[r]
            c = 0
            o = 0
            for j in range(K):
                v = xr[j]
                c += v != 0
                o += (v != 0) & (v != 1)
            counts[r] = c
            other += o
        nonbin[b] = other != 0


@njit(cache=True, nogil=True, inline="always")
def _axpy4(yr, w0, w1, w2, w3, a0, a1, a2, a3, n, binary):  # pragma: no cover - compiled
    if binary:
        for k in range(n):
            yr[k] += (w0[k] + w1[k]) + (w2[k] + w3[k])
    else:
        for k in range(n):
            yr[k] += (a0 * w0[k] + a1 * w1[k]) + (a2 * w2[k] + a3 * w3[k])


@njit(cache=True, nogil=True, inline="always")
def _axpy1(yr, w0, a0, n, binary):  # pragma: no cover - compiled
    if binary:
        for k in range(n):
            yr[k] += w0[k]
    else:
        for k in range(n):
            yr[k] += a0 * w0[k]


@njit(cache=True, nogil=True)
def _gather(yr, src, sel, val, p, p1, c0, c1, binary, one):  # pragma: no cover - compiled
    """``yr[:] += sum_{q in [p, p1)} val[q] * src[sel[q], c0:c1]`` (val = 1 when binary);
    ``yr`` is the ``[c0, c1)`` slice of an output row (loops from 0: no index wrap-around checks,
    so LLVM vectorises them)."""
    n = c1 - c0
    a0 = a1 = a2 = a3 = one
    while p + 4 <= p1:
        if not binary:
            a0, a1, a2, a3 = val[p], val[p + 1], val[p + 2], val[p + 3]
        _axpy4(yr, src[sel[p], c0:c1], src[sel[p + 1], c0:c1], src[sel[p + 2], c0:c1],
               src[sel[p + 3], c0:c1], a0, a1, a2, a3, n, binary)
        p += 4
    while p < p1:
        if not binary:
            a0 = val[p]
        _axpy1(yr, src[sel[p], c0:c1], a0, n, binary)
        p += 1


@njit(cache=True, nogil=True)
def _forward(b0, b1, bs, x, rowptr, idx, val, binary, wt, bias, y, chunk, one):  # pragma: no cover
    """Fill the CSR of rows ``[b0*bs, b1*bs)`` and compute their output rows."""
    N, K = x.shape
    O = wt.shape[1]
    has_bias = bias.shape[0] == O
    tj = np.empty(K + 1, np.int32)  # branch-free fill of one row, then copied
    tv = np.empty(K + 1, x.dtype)
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        for r in range(lo, hi):
            xr = x[r]
            c = 0
            for j in range(K):
                v = xr[j]
                tj[c] = j
                tv[c] = v
                c += v != 0
            p = rowptr[r]
            idx[p:p + c] = tj[:c]
            if not binary:
                val[p:p + c] = tv[:c]
        for c0 in range(0, O, chunk):
            c1 = min(c0 + chunk, O)
            for r in range(lo, hi):
                yr = y[r, c0:c1]
                if has_bias:
                    yr[:] = bias[c0:c1]
                else:
                    yr[:] = 0
                _gather(yr, wt, idx, val, rowptr[r], rowptr[r + 1], c0, c1, binary, one)


@njit(cache=True, nogil=True)
def _transpose(rowptr, idx, val, binary, colptr, rows, cval):  # pragma: no cover - compiled
    """CSR -> CSC: ``colptr [K+1]``, ``rows`` (increasing within a column), ``cval``."""
    N = rowptr.shape[0] - 1
    K = colptr.shape[0] - 1
    colptr[:] = 0
    for p in range(idx.shape[0]):
        colptr[idx[p] + 1] += 1
    for j in range(K):
        colptr[j + 1] += colptr[j]
    pos = colptr[:K].copy()
    for r in range(N):
        for p in range(rowptr[r], rowptr[r + 1]):
            j = idx[p]
            q = pos[j]
            rows[q] = r
            if not binary:
                cval[q] = val[p]
            pos[j] = q + 1


@njit(cache=True, nogil=True)
def _grad_wt(b0, b1, bs, colptr, rows, cval, binary, gy, gwt, chunk, one):  # pragma: no cover
    """``gwt[j, :] = sum_{r in col j} x[r, j] * gy[r, :]`` for ``j`` in blocks ``[b0, b1)``."""
    K, O = gwt.shape
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, K)
        for c0 in range(0, O, chunk):
            c1 = min(c0 + chunk, O)
            for j in range(lo, hi):
                acc = gwt[j, c0:c1]
                acc[:] = 0
                _gather(acc, gy, rows, cval, colptr[j], colptr[j + 1], c0, c1, binary, one)


def count_rows(x: Tensor) -> tuple[np.ndarray, bool]:
    """Non-zeros per row of a contiguous CPU float ``x [N, K]`` (int64 ``[N]``) and whether all
    non-zeros are exactly 1.0."""
    N, K = x.shape
    counts = np.empty(N, np.int64)
    nblocks = -(-N // ROWS)
    nonbin = np.zeros(max(nblocks, 1), np.int8)
    if N:
        run_blocks(_count, nblocks, N * K, ROWS, x.detach().numpy(), counts, nonbin)
    return counts, not nonbin.any()


def build_forward(x: Tensor, wt: Tensor, bias: Tensor | None, counts: np.ndarray,
                  binary: bool) -> tuple[Tensor, CSR]:
    """CSR of ``x [N, K]`` (from its row ``counts``) and ``y [N, O] = x Wt + bias``; ``wt [K, O]``
    contiguous, all contiguous CPU tensors of one float dtype."""
    N, K = x.shape
    O = wt.shape[1]
    rowptr = np.zeros(N + 1, np.int64)
    np.cumsum(counts, out=rowptr[1:])
    nnz = int(rowptr[-1])
    idx = np.empty(nnz, np.int32)
    dt = x.detach().numpy().dtype
    val = np.empty(0 if binary else nnz, dt)
    y = torch.empty(N, O, dtype=x.dtype)
    b = bias.detach().numpy() if bias is not None else np.empty(0, dt)
    if N:
        run_blocks(_forward, -(-N // ROWS), N * K + nnz * O, ROWS, x.detach().numpy(), rowptr,
                   idx, val, binary, wt.detach().numpy(), b, y.numpy(), CHUNK, dt.type(1))
    return y, CSR(rowptr, idx, val, binary, (N, K))


def grad_weight_t(csr: CSR, gy: Tensor) -> Tensor:
    """``gWt [K, O] = x^T gy`` from the CSR of ``x`` and a contiguous ``gy [N, O]``."""
    N, K = csr.shape
    O = gy.shape[1]
    nnz = csr.idx.shape[0]
    colptr = np.empty(K + 1, np.int64)
    rows = np.empty(nnz, np.int32)
    cval = np.empty(0 if csr.binary else nnz, csr.val.dtype)
    _transpose(csr.rowptr, csr.idx, csr.val, csr.binary, colptr, rows, cval)
    gwt = torch.empty(K, O, dtype=gy.dtype)
    if K:
        run_blocks(_grad_wt, -(-K // COLS), nnz * O + K * O, COLS, colptr, rows, cval,
                   csr.binary, gy.numpy(), gwt.numpy(), CHUNK, gy.numpy().dtype.type(1))
    return gwt
