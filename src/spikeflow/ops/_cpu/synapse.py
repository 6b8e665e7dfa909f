"""Fused CPU kernels of the snn-iir synapse filters (numba), with a hand-written backward.

One second-order IIR kernel covers every filter of ``functional/synapse.py``::

    psp[t] = a1 psp[t-1] + a2 psp[t-2] + b1 x[t]        (low pass: a2 = 0, b1 = 1)

Forward: one pass over ``x``; parallel over contiguous blocks of elements of one sample, the loop
over ``T`` inside, so each block's state stays in cache. Backward: the adjoint of a linear filter is
the same filter run in reverse time,

    lam[t] = g[t] + a1 lam[t+1] + a2 lam[t+2]
    dL/dx[t] = b1 lam[t]
    dL/da1 = sum_{b,t} lam[t] psp[t-1],  dL/da2 = sum_{b,t} lam[t] psp[t-2],  dL/db1 = sum_{b,t} lam[t] x[t]
    dL/dpsp[-1] = a1 lam[0] + a2 lam[1],  dL/dpsp[-2] = a2 lam[0]

with ``psp[-1], psp[-2]`` the initial state. Memory: it keeps only the input ``x`` (which the caller
holds anyway) and only when a coefficient needs a gradient; instead of storing ``psp`` the backward
recomputes it block by block into a cache-sized history (``(T + 2) x block`` values per job) right
before the reverse-time pass over that block. Supports float32 and float64 CPU tensors; autograd handles the
broadcasting of coefficients (they are expanded to the feature shape before the kernel).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


try:  # numba is a hard dependency, but keep the reference path usable without it
    import numba
    import numpy as np

    AVAILABLE = True
except ImportError:  # pragma: no cover - exercised only in broken installs
    AVAILABLE = False

__all__ = ["AVAILABLE", "BLOCK", "supports", "iir2", "low_pass_fused", "dual_exp_readout_fused"]

BLOCK = 4096  # elements per parallel job: its state and coefficients (5 x 4096 values) stay in L2
HISTORY = 1 << 17  # backward: at most (T + 2) x block recomputed psp values per job (1 MB in float64)

if AVAILABLE:

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


def supports(x: Tensor) -> bool:
    """True when the fused kernel can run on ``x`` (numba present, CPU, float32/float64)."""
    return AVAILABLE and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)


def _np(t: Tensor):
    return t.detach().numpy()


class _IIR2(torch.autograd.Function):
    """``x [T, B, N]``, coefficients ``[N]``, states ``[B, N]`` (all contiguous, same dtype)."""

    @staticmethod
    def forward(ctx, x, a1, a2, b1, p1, p2):  # type: ignore[override]
        out = torch.empty_like(x)
        _iir2_forward(_np(x), _np(a1), _np(a2), _np(b1), _np(p1), _np(p2), _np(out), BLOCK)
        need_a = ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        need_b = ctx.needs_input_grad[3]
        ctx.need_a, ctx.need_b = need_a, need_b
        ctx.save_for_backward(x if need_a or need_b else None, a1, a2, b1,
                              p1 if need_a else None, p2 if need_a else None)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g):  # type: ignore[override]
        x, a1, a2, b1, p1, p2 = ctx.saved_tensors
        g = g.contiguous()
        empty, empty2 = g.new_empty((1, 1, 1)), g.new_empty((1, 1))
        gx = torch.empty_like(g)
        per_sample = [g.new_empty(g.shape[1:]) for _ in range(5)]  # ga1, ga2, gb1, gp1, gp2 per sample
        _iir2_backward(
            _np(g), _np(x if x is not None else empty), _np(a1), _np(a2), _np(b1), _np(empty2 if p1 is None else p1), _np(empty2 if p2 is None else p2),
            _np(gx), *(_np(t) for t in per_sample),
            ctx.need_a, ctx.need_b, max(16, min(BLOCK, HISTORY // (g.shape[0] + 2))),
        )
        ga1, ga2, gb1, gp1, gp2 = per_sample
        need = ctx.needs_input_grad
        return (
            gx if need[0] else None,
            ga1.sum(0) if need[1] else None,
            ga2.sum(0) if need[2] else None,
            gb1.sum(0) if need[3] else None,
            gp1 if need[4] else None,
            gp2 if need[5] else None,
        )


def _flat_coefficient(c: Tensor | float, x: Tensor, features: torch.Size) -> Tensor:
    c = c.to(x.dtype) if isinstance(c, Tensor) else torch.tensor(float(c), dtype=x.dtype)
    return c.expand(features).reshape(-1).contiguous()


def iir2(
    x: Tensor, a1: Tensor | float, a2: Tensor | float, b1: Tensor | float,
    psp1: Optional[Tensor] = None, psp2: Optional[Tensor] = None,
) -> Tensor:
    """Fused ``psp[t] = a1 psp[t-1] + a2 psp[t-2] + b1 x[t]`` for ``x [T, B, ...]`` on CPU.

    Coefficients broadcast against one sample's features ``x.shape[2:]``; ``psp1``/``psp2`` are the
    initial ``psp[-1]``/``psp[-2]`` of shape ``x.shape[1:]`` (``None`` = 0). Returns ``psp`` like ``x``.
    """
    if not supports(x):
        raise ValueError(
            f"the fused synapse kernel needs numba and a float32/float64 CPU tensor, got "
            f"{x.dtype} on {x.device}; use backend='reference'"
        )
    if x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(f"x must have shape [T, B, ...] with T >= 1, got {tuple(x.shape)}")
    T, B = x.shape[:2]
    features = x.shape[2:]
    n = math.prod(features)
    zeros = None
    states = []
    for p in (psp1, psp2):
        if p is None:
            zeros = x.new_zeros((B, n)) if zeros is None else zeros
            states.append(zeros)
        else:
            states.append(p.to(x.dtype).reshape(B, n).contiguous())
    coefficients = [_flat_coefficient(c, x, features) for c in (a1, a2, b1)]
    out = _IIR2.apply(x.reshape(T, B, n).contiguous(), *coefficients, *states)
    return out.reshape(x.shape)


def low_pass_fused(x: Tensor, a: Tensor | float, psp: Optional[Tensor] = None) -> Tensor:
    """Fused ``psp[t] = a psp[t-1] + x[t]`` (the kernel with ``a2 = 0``, ``b1 = 1``)."""
    return iir2(x, a, 0.0, 1.0, psp, None)


def dual_exp_readout_fused(
    x: Tensor, tau_m: float, tau_s: float, v0: float, m: Optional[Tensor] = None,
    s: Optional[Tensor] = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Fused read-out filter: returns ``(out, m, s)`` with ``m``, ``s`` the full traces."""
    m_seq = low_pass_fused(x, math.exp(-1.0 / tau_m), m)
    s_seq = low_pass_fused(x, math.exp(-1.0 / tau_s), s)
    return (m_seq - s_seq) * v0, m_seq, s_seq
