"""Fused CPU kernel of the snn-iir neuron (Fang et al., IJCAI 2020) with a hand-written backward.

Forward, state ``(v, r)`` (rest = 0), ``a = exp(-1/tau_m)``, ``m = a`` with the membrane filter
else 0::

    V[t] = m * v + I[t] - r ;  S[t] = V > thr (V >= thr unless strict) ;  r <- a * r + reset_v * S

Backward, ``Gv``/``Gr`` = gradients reaching ``V[t]``/``r[t]`` from later steps::

    gS = dL/dS[t] + Gr * reset_v      (0 when detach_reset)
    gV = Gv + gS * sg(V - thr) ;  dL/dI[t] = gV ;  dL/dalpha += gS * dF/dalpha
    Gv <- m * gV ;  Gr <- a * Gr - gV

Only ``V`` is stored for backward. Same block layout as ``_kernels/lif.py``.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import torch
from numba import njit
from torch import Tensor

from spikeflow.functional._kernels._blocks import ONE, ZERO, consts, surrogate_block
from spikeflow.functional._kernels._runtime import BLOCK, run_blocks

__all__ = ["IIRConfig", "iir_neuron_fused"]


class IIRConfig(NamedTuple):
    m: float  # membrane decay (0 without the membrane filter)
    a: float  # reset-trace decay exp(-1/tau_m)
    v_threshold: float
    reset_v: float
    strict: bool
    detach_reset: bool
    code: int


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(b0, b1, bs, x, v0, r0, s, vs, vout, rout, p, f, c):  # pragma: no cover - compiled
    T, N = x.shape
    m, a, thr, rv = p[0], p[1], p[2], p[3]
    one, zero = c[ONE], c[ZERO]
    ge, save = f[0] == 0, f[1]
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        v = v0[lo:hi].copy()
        r = r0[lo:hi].copy()
        for t in range(T):
            xt = x[t, lo:hi]
            st = s[t, lo:hi]
            vt = vs[t * save, lo:hi]
            for i in range(n):
                vv = m * v[i] + xt[i] - r[i]
                vt[i] = vv
                sp = (vv > thr) | (ge & (vv == thr))
                st[i] = one if sp else zero
                v[i] = vv
                r[i] = a * r[i] + (rv if sp else zero)
        vout[lo:hi] = v
        rout[lo:hi] = r


@njit(cache=True, nogil=True, error_model="numpy")
def _backward(b0, b1, bs, gs, vs, gvT, grT, gx, gv0, gr0, apart, p, f, c):  # pragma: no cover
    T, N = vs.shape
    m, a, thr, rv, sa = p[0], p[1], p[2], p[3], p[4]
    zero = c[ZERO]
    detach, code = f[0] != 0, f[1]
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        gv = gvT[lo:hi].copy()
        gr = grT[lo:hi].copy()
        acc_a = np.zeros(n, vs.dtype)
        z = np.empty(n, vs.dtype)
        e = np.empty(n, vs.dtype)
        sg = np.empty(n, vs.dtype)
        dp = np.empty(n, vs.dtype)
        for t in range(T - 1, -1, -1):
            vt = vs[t, lo:hi]
            gst = gs[t, lo:hi]
            gxt = gx[t, lo:hi]
            surrogate_block(vt, thr, n, code, sa, c, z, e, sg, dp)
            for i in range(n):
                gri = gr[i]
                gtot = gst[i] + (zero if detach else gri * rv)
                gvt = gv[i] + gtot * sg[i]
                acc_a[i] += gtot * dp[i]
                gxt[i] = gvt
                gv[i] = m * gvt
                gr[i] = a * gri - gvt
        gv0[lo:hi] = gv
        gr0[lo:hi] = gr
        ta = 0.0
        for i in range(n):
            ta += acc_a[i]
        apart[b] = ta


def _forward_np(x: Tensor, v0: Tensor, r0: Tensor, cfg: IIRConfig, save: bool):
    T, N = x.shape
    x, v0, r0 = x.detach(), v0.detach(), r0.detach()
    s = torch.empty_like(x)
    vout = torch.empty_like(v0)
    rout = torch.empty_like(r0)
    vs = torch.empty((T, N) if save else (1, N), dtype=x.dtype)
    dt = x.numpy().dtype
    p = np.array([cfg.m, cfg.a, cfg.v_threshold, cfg.reset_v], dtype=dt)
    f = np.array([int(cfg.strict), int(save)], dtype=np.int64)
    run_blocks(_forward, -(-N // BLOCK), T * N, BLOCK, x.numpy(), v0.numpy(), r0.numpy(), s.numpy(),
               vs.numpy(), vout.numpy(), rout.numpy(), p, f, consts(dt))
    return s, vout, rout, (vs if save else None)


class _IIRFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, v0: Tensor, r0: Tensor, alpha: Optional[Tensor],  # type: ignore[override]
                sa: float, cfg: IIRConfig):
        s, vout, rout, vs = _forward_np(x, v0, r0, cfg, save=True)
        ctx.save_for_backward(vs)
        ctx.cfg, ctx.sa = cfg, sa
        ctx.a_meta = (alpha.shape, alpha.dtype) if alpha is not None else None
        ctx.set_materialize_grads(False)
        return s, vout, rout

    @staticmethod
    def backward(ctx, gs: Optional[Tensor], gv: Optional[Tensor], gr: Optional[Tensor]):  # type: ignore[override]
        (vs,) = ctx.saved_tensors
        cfg = ctx.cfg
        T, N = vs.shape
        gs = torch.zeros_like(vs) if gs is None else gs.contiguous()
        gv = torch.zeros(N, dtype=vs.dtype) if gv is None else gv.contiguous()
        gr = torch.zeros(N, dtype=vs.dtype) if gr is None else gr.contiguous()
        dt = vs.numpy().dtype
        p = np.array([cfg.m, cfg.a, cfg.v_threshold, cfg.reset_v, ctx.sa], dtype=dt)
        f = np.array([int(cfg.detach_reset), cfg.code], dtype=np.int64)
        nblocks = -(-N // BLOCK)
        gx = torch.empty_like(vs)
        gv0 = torch.empty(N, dtype=vs.dtype)
        gr0 = torch.empty(N, dtype=vs.dtype)
        apart = np.zeros(nblocks)
        run_blocks(_backward, nblocks, T * N, BLOCK, gs.numpy(), vs.numpy(), gv.numpy(), gr.numpy(),
                   gx.numpy(), gv0.numpy(), gr0.numpy(), apart, p, f, consts(dt))
        ga = None
        if ctx.a_meta is not None and ctx.needs_input_grad[3]:
            ga = torch.tensor(apart.sum(), dtype=ctx.a_meta[1]).reshape(ctx.a_meta[0])
        return gx, gv0, gr0, ga, None, None


def iir_neuron_fused(x: Tensor, v0: Tensor, r0: Tensor, cfg: IIRConfig,
                     alpha: Optional[Tensor] = None, sa: float = 0.4) -> tuple[Tensor, Tensor, Tensor]:
    """Fused snn-iir neuron over ``x [T, N]`` from ``(v0, r0) [N]``: ``(spikes, v_final, r_final)``."""
    grads = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, v0, r0, alpha))
    v0 = v0.to(x.dtype).contiguous()
    r0 = r0.to(x.dtype).contiguous()
    if not grads:
        s, vout, rout, _ = _forward_np(x.contiguous(), v0, r0, cfg, save=False)
        return s, vout, rout
    return _IIRFunction.apply(x.contiguous(), v0, r0, alpha, sa, cfg)
