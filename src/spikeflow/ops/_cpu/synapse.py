"""Fused CPU kernels of the second-order IIR filter (numba): the CPU implementation of ``spikeflow::iir2``.

One second-order IIR kernel covers every synapse filter (:mod:`spikeflow.ops.synapse`)::

    psp[t] = a1 psp[t-1] + a2 psp[t-2] + b1 x[t]        (low pass: a2 = 0, b1 = 1)

Forward: one pass over ``x``; parallel over contiguous blocks of elements of one sample, the loop
over ``T`` inside, so each block's state stays in cache. Backward: the adjoint of a linear filter is
the same filter run in reverse time,

    lam[t] = g[t] + a1 lam[t+1] + a2 lam[t+2]
    dL/dx[t] = b1 lam[t]
    dL/da1 = sum_{b,t} lam[t] psp[t-1],  dL/da2 = sum_{b,t} lam[t] psp[t-2],  dL/db1 = sum_{b,t} lam[t] x[t]
    dL/dpsp[-1] = a1 lam[0] + a2 lam[1],  dL/dpsp[-2] = a2 lam[0]

with ``psp[-1], psp[-2]`` the initial state. Memory: the backward needs only the input ``x`` (which
the caller holds anyway), and only when a coefficient needs a gradient; instead of storing ``psp``
it recomputes it block by block into a cache-sized history (``(T + 2) x block`` values per job)
right before the reverse-time pass over that block. float32 and float64 contiguous CPU tensors,
all of one dtype (the op casts the ``[N]`` coefficients and ``[B, N]`` states).
"""
from __future__ import annotations

import numba
import numpy as np
import torch
from torch import Tensor

from spikeflow._numba_cache import ensure_numba_cache

ensure_numba_cache()  # caches in the user cache folder (see _numba_cache.py)

__all__ = ["BLOCK", "forward", "backward"]

BLOCK = 4096  # elements per parallel job: its state and coefficients (5 x 4096 values) stay in L2
HISTORY = 1 << 17  # backward: at most (T + 2) x block recomputed psp values per job (1 MB in float64)


@numba.njit(parallel=True, cache=True)
def _iir2_forward(x, a1, a2, b1, p1, p2, out, block):  # pragma: no cover - compiled
    T, B, N = x.shape
    nblocks = (N + block - 1) // block
    for job in numba.prange(B * nblocks):
        b = job // nblocks
        n0 = (job % nblocks) * block
        m = min(block, N - n0)
        c1 = a1[n0:n0 + m]
        c2 = a2[n0:n0 + m]
        cb = b1[n0:n0 + m]
        y1 = p1[b, n0:n0 + m].copy()
        y2 = p2[b, n0:n0 + m].copy()
        for t in range(T):
            xt = x[t, b, n0:n0 + m]
            ot = out[t, b, n0:n0 + m]
            for i in range(m):
                y = c1[i] * y1[i] + c2[i] * y2[i] + cb[i] * xt[i]
                ot[i] = y
                y2[i] = y1[i]
                y1[i] = y

@numba.njit(parallel=True, cache=True)
def _iir2_backward(g, x, a1, a2, b1, p1, p2, gx, ga1, ga2, gb1, gp1, gp2,
                   need_a, need_b, block):  # pragma: no cover - compiled
    T, B, N = g.shape
    nblocks = (N + block - 1) // block
    for job in numba.prange(B * nblocks):
        b = job // nblocks
        n0 = (job % nblocks) * block
        m = min(block, N - n0)
        c1 = a1[n0:n0 + m]
        c2 = a2[n0:n0 + m]
        cb = b1[n0:n0 + m]
        if need_a:  # recompute this block's psp into a cache-sized history:
            hist = np.empty((T + 2, m), dtype=g.dtype)  # hist[t + 2] = psp[t]
            hist[0] = p2[b, n0:n0 + m]
            hist[1] = p1[b, n0:n0 + m]
            for t in range(T):
                xt = x[t, b, n0:n0 + m]
                h0 = hist[t]
                h1 = hist[t + 1]
                h2 = hist[t + 2]
                for i in range(m):
                    h2[i] = c1[i] * h1[i] + c2[i] * h0[i] + cb[i] * xt[i]
        l1 = np.zeros(m, dtype=g.dtype)  # lam[t+1]
        l2 = np.zeros(m, dtype=g.dtype)  # lam[t+2]
        s1 = np.zeros(m, dtype=g.dtype)
        s2 = np.zeros(m, dtype=g.dtype)
        sb = np.zeros(m, dtype=g.dtype)
        for t in range(T - 1, -1, -1):
            gt = g[t, b, n0:n0 + m]
            gxt = gx[t, b, n0:n0 + m]
            for i in range(m):
                lam = gt[i] + c1[i] * l1[i] + c2[i] * l2[i]
                gxt[i] = cb[i] * lam
                l2[i] = l1[i]
                l1[i] = lam
            if need_a:
                q1 = hist[t + 1]  # psp[t-1]
                q2 = hist[t]  # psp[t-2]
                for i in range(m):
                    s1[i] += l1[i] * q1[i]
                    s2[i] += l1[i] * q2[i]
            if need_b:
                xt = x[t, b, n0:n0 + m]
                for i in range(m):
                    sb[i] += l1[i] * xt[i]
        for i in range(m):
            gp1[b, n0 + i] = c1[i] * l1[i] + c2[i] * l2[i]
            gp2[b, n0 + i] = c2[i] * l1[i]
            ga1[b, n0 + i] = s1[i]
            ga2[b, n0 + i] = s2[i]
            gb1[b, n0 + i] = sb[i]



def forward(x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor, p2: Tensor) -> Tensor:
    """``psp [T, B, N]`` from ``x [T, B, N]``, coefficients ``[N]``, states ``p1 = psp[-1]``,
    ``p2 = psp[-2]`` ``[B, N]`` (contiguous CPU tensors of one dtype, float32 or float64)."""
    out = torch.empty_like(x)
    if out.numel():
        _iir2_forward(*(t.detach().numpy() for t in (x, a1, a2, b1, p1, p2, out)), BLOCK)
    return out


def backward(g: Tensor, x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor, p2: Tensor,
             need_a: bool, need_b: bool) -> list[Tensor]:
    """``[dL/dx, dL/da1, dL/da2, dL/db1, dL/dp1, dL/dp2]`` for ``g = dL/dpsp`` (all in ``g``'s
    dtype; coefficient gradients summed over batch and time, zeros unless ``need_a`` (``a1``,
    ``a2``) / ``need_b`` (``b1``)). ``x`` is read only when a coefficient needs a gradient,
    ``p1``/``p2`` only for ``need_a``; any tensor of ``g``'s dtype may stand in otherwise."""
    T, B, N = g.shape
    gx = torch.empty_like(g)
    alloc = g.new_empty if g.numel() else g.new_zeros  # the kernel writes every element
    per_sample = [alloc((B, N)) for _ in range(5)]  # ga1, ga2, gb1 per sample, gp1, gp2
    if g.numel():
        x3 = x if (need_a or need_b) else g.new_empty((1, 1, 1))
        q1, q2 = (p1, p2) if need_a else (g.new_empty((1, 1)), g.new_empty((1, 1)))
        _iir2_backward(*(t.detach().numpy() for t in (g, x3, a1, a2, b1, q1, q2, gx, *per_sample)),
                       bool(need_a), bool(need_b), max(16, min(BLOCK, HISTORY // (T + 2))))
    ga1, ga2, gb1, gp1, gp2 = per_sample
    return [gx, ga1.sum(0), ga2.sum(0), gb1.sum(0), gp1, gp2]
