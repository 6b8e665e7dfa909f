"""Fused CPU kernel of the STBP decay LIF (He et al. 2020; ASA arch A) with a hand-written backward.

Forward, with ``v`` the membrane after the reset of the previous step (the state; rest = 0)::

    U[t] = decay * v + I[t] ;  S[t] = U >= thr (U > thr when strict) ;  v <- U * (1 - S)

i.e. ``u[t] = decay * u[t-1] * (1 - s[t-1]) + I[t]``. Backward, ``gv`` = gradient reaching ``v``::

    gS = dL/dS[t] - gv * U      (the reset path; 0 when detach_reset)
    gU = gS * sg(U - thr) + gv * (1 - S)
    dL/dI[t] = gU ,  gv <- decay * gU ,  dL/dalpha += gS * dF/dalpha

Only ``U`` is stored for backward. Same block layout as ``_kernels/lif.py``.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import torch
from numba import njit
from torch import Tensor

from spikeflow.functional._kernels._blocks import ONE, ZERO, consts, surrogate_block
from spikeflow.functional._kernels._runtime import BLOCK, run_blocks

__all__ = ["DecayLIFConfig", "decay_lif_fused"]


class DecayLIFConfig(NamedTuple):
    decay: float
    v_threshold: float
    strict: bool
    detach_reset: bool
    code: int


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(b0, b1, bs, x, v0, s, u, vout, p, f, c):  # pragma: no cover - compiled
    T, N = x.shape
    decay, thr = p[0], p[1]
    one, zero = c[ONE], c[ZERO]
    ge, save = f[0] == 0, f[1]
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        v = v0[lo:hi].copy()
        for t in range(T):
            xt = x[t, lo:hi]
            st = s[t, lo:hi]
            ut = u[t * save, lo:hi]
            for i in range(n):
                uu = decay * v[i] + xt[i]
                ut[i] = uu
                sp = (uu > thr) | (ge & (uu == thr))
                st[i] = one if sp else zero
                v[i] = zero if sp else uu
        vout[lo:hi] = v


@njit(cache=True, nogil=True, error_model="numpy")
def _backward(b0, b1, bs, gs, u, gvT, gx, gv0, apart, p, f, c):  # pragma: no cover - compiled
    T, N = u.shape
    decay, thr, a = p[0], p[1], p[2]
    one, zero = c[ONE], c[ZERO]
    ge, detach, code = f[0] == 0, f[1] != 0, f[2]
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        gv = gvT[lo:hi].copy()
        acc_a = np.zeros(n, u.dtype)
        z = np.empty(n, u.dtype)
        e = np.empty(n, u.dtype)
        sg = np.empty(n, u.dtype)
        dp = np.empty(n, u.dtype)
        for t in range(T - 1, -1, -1):
            ut = u[t, lo:hi]
            gst = gs[t, lo:hi]
            gxt = gx[t, lo:hi]
            surrogate_block(ut, thr, n, code, a, c, z, e, sg, dp)
            for i in range(n):
                uu = ut[i]
                sp = (uu > thr) | (ge & (uu == thr))
                gvi = gv[i]
                gtot = gst[i] - (zero if detach else gvi * uu)
                gu = gtot * sg[i] + (zero if sp else gvi)
                acc_a[i] += gtot * dp[i]
                gxt[i] = gu
                gv[i] = decay * gu
        gv0[lo:hi] = gv
        ta = 0.0
        for i in range(n):
            ta += acc_a[i]
        apart[b] = ta


def _forward_np(x: Tensor, v0: Tensor, cfg: DecayLIFConfig, save: bool):
    T, N = x.shape
    x, v0 = x.detach(), v0.detach()
    s = torch.empty_like(x)
    vout = torch.empty_like(v0)
    u = torch.empty((T, N) if save else (1, N), dtype=x.dtype)
    dt = x.numpy().dtype
    p = np.array([cfg.decay, cfg.v_threshold], dtype=dt)
    f = np.array([int(cfg.strict), int(save)], dtype=np.int64)
    run_blocks(_forward, -(-N // BLOCK), T * N, BLOCK, x.numpy(), v0.numpy(), s.numpy(), u.numpy(),
               vout.numpy(), p, f, consts(dt))
    return s, vout, (u if save else None)


class _DecayLIFFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, v0: Tensor, alpha: Optional[Tensor], a: float,  # type: ignore[override]
                cfg: DecayLIFConfig):
        s, vout, u = _forward_np(x, v0, cfg, save=True)
        ctx.save_for_backward(u)
        ctx.cfg, ctx.a = cfg, a
        ctx.a_meta = (alpha.shape, alpha.dtype) if alpha is not None else None
        ctx.set_materialize_grads(False)
        return s, vout

    @staticmethod
    def backward(ctx, gs: Optional[Tensor], gv: Optional[Tensor]):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        cfg = ctx.cfg
        T, N = u.shape
        gs = torch.zeros_like(u) if gs is None else gs.contiguous()
        gv = torch.zeros(N, dtype=u.dtype) if gv is None else gv.contiguous()
        dt = u.numpy().dtype
        p = np.array([cfg.decay, cfg.v_threshold, ctx.a], dtype=dt)
        f = np.array([int(cfg.strict), int(cfg.detach_reset), cfg.code], dtype=np.int64)
        nblocks = -(-N // BLOCK)
        gx = torch.empty_like(u)
        gv0 = torch.empty(N, dtype=u.dtype)
        apart = np.zeros(nblocks)
        run_blocks(_backward, nblocks, T * N, BLOCK, gs.numpy(), u.numpy(), gv.numpy(), gx.numpy(),
                   gv0.numpy(), apart, p, f, consts(dt))
        ga = None
        if ctx.a_meta is not None and ctx.needs_input_grad[2]:
            ga = torch.tensor(apart.sum(), dtype=ctx.a_meta[1]).reshape(ctx.a_meta[0])
        return gx, gv0, ga, None, None


def decay_lif_fused(x: Tensor, v0: Tensor, cfg: DecayLIFConfig, alpha: Optional[Tensor] = None,
                    a: float = 0.5) -> tuple[Tensor, Tensor]:
    """Fused decay LIF over ``x [T, N]`` from ``v0 [N]``: ``(spikes [T, N], v_final [N])``."""
    grads = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, v0, alpha))
    v0 = v0.to(x.dtype).contiguous()
    if not grads:
        s, vout, _ = _forward_np(x.contiguous(), v0, cfg, save=False)
        return s, vout
    return _DecayLIFFunction.apply(x.contiguous(), v0, alpha, a, cfg)
