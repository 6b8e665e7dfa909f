"""Fused CPU kernel of the STBP decay LIF (He et al. 2020; ASA arch A) with a hand-written backward.

Forward, with ``v`` the membrane after the reset of the previous step (the state; rest = 0)::

    U[t] = decay * v + I[t] ;  S[t] = U >= thr (U > thr when strict) ;  v <- U * (1 - S)

i.e. ``u[t] = decay * u[t-1] * (1 - s[t-1]) + I[t]``. Backward, ``gv`` = gradient reaching ``v``::

    gS = dL/dS[t] - gv * U      (the reset path; 0 when detach_reset)
    gU = gS * sg(U - thr) + gv * (1 - S)
    dL/dI[t] = gU ,  gv <- decay * gU ,  dL/dalpha += gS * dF/dalpha

The forward writes ``U`` when a gradient is needed; it is the only tensor saved (as ``H`` in
``_kernels/lif.py``, which explains why ``U`` is saved rather than recomputed from ``x``); the
backward writes ``dL/dI`` over it (``_inplace.py``).
"""
from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import torch
from numba import njit
from torch import Tensor
from torch.autograd.function import once_differentiable

from spikeflow.functional._common import zeros as _zeros
from spikeflow.functional._kernels._alloc import empty_like
from spikeflow.functional._kernels._blocks import (GRAD_MATH, ONE, ZERO, consts, scratch,
                                                    sur_consts, surrogate)
from spikeflow.functional._kernels._inplace import grad_buffer
from spikeflow.functional._kernels._runtime import block_size, run_blocks
from spikeflow.functional.surrogate import ATAN, GAUSSIAN, RECTANGLE, SIGMOID, TRIANGLE

__all__ = ["DecayLIFConfig", "decay_lif_fused"]


class DecayLIFConfig(NamedTuple):
    decay: float
    v_threshold: float
    strict: bool
    detach_reset: bool
    code: int


@njit(cache=True, nogil=True, error_model="numpy")
def _step(xt, v, st, ut, n, decay, thr, one, zero, ge):  # pragma: no cover - compiled
    """One time step of a block: ``U = decay * v + x`` into ``ut``, spikes into ``st``, reset
    ``v`` in place."""
    for i in range(n):
        uu = decay * v[i] + xt[i]
        sp = (uu > thr) | (ge & (uu == thr))
        v[i] = zero if sp else uu
        st[i] = one if sp else zero
        ut[i] = uu


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(b0, b1, bs, x, v0, s, u, vout, p, f, c):  # pragma: no cover - compiled
    """Blocks ``[b0, b1)``: spikes into ``s``, ``U`` into ``u`` (``[T, N]``, or ``[0, N]`` when
    not needed: then ``U`` goes to a scratch row)."""
    T, N = x.shape
    decay, thr = p[0], p[1]
    one, zero = c[ONE], c[ZERO]
    ge = f[0] == 0
    keep = u.shape[0] == T
    sc = scratch(2, bs, x.dtype)
    v, dump = sc[0, :bs], sc[1, :bs]
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        v[:n] = v0[lo:hi]
        for t in range(T):
            ut = u[t, lo:hi] if keep else dump[:n]
            _step(x[t, lo:hi], v, s[t, lo:hi], ut, n, decay, thr, one, zero, ge)
        vout[lo:hi] = v[:n]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _reverse_loop(ut, gst, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, code,
                  acc):  # pragma: no cover - compiled
    for i in range(n):
        uu = ut[i]
        sg, dp = surrogate(uu - thr, code, a, k)
        sp = (uu > thr) | (ge & (uu == thr))
        gvi = gv[i]
        gtot = gst[i] - (zero if detach else gvi * uu)
        gu = gtot * sg + (zero if sp else gvi)
        if acc:  # constant once inlined
            acc_a[i] += gtot * dp
        ut[i] = gu  # dL/dI[t] over U[t] (see _inplace.py)
        gv[i] = decay * gu


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _reverse_accs(ut, gst, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, code,
                  acc):  # pragma: no cover - compiled
    """One copy of :func:`_reverse_loop` per ``acc``, for the constant ``code`` of the caller."""
    if acc:
        _reverse_loop(ut, gst, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, code, True)
    else:
        _reverse_loop(ut, gst, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, code, False)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=GRAD_MATH)
def _reverse(ut, gst, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, code,
             acc):  # pragma: no cover - compiled
    """One reverse step of a block, surrogate fused in; one loop copy per surrogate ``code`` and
    per ``acc`` (whether ``dL/dalpha`` accumulates), so each loop body is straight-line code."""
    if code == SIGMOID:
        _reverse_accs(ut, gst, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, SIGMOID, acc)
    elif code == ATAN:
        _reverse_accs(ut, gst, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, ATAN, acc)
    elif code == RECTANGLE:
        _reverse_accs(ut, gst, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, RECTANGLE,
                      acc)
    elif code == GAUSSIAN:
        _reverse_accs(ut, gst, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, GAUSSIAN, acc)
    else:
        _reverse_accs(ut, gst, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, TRIANGLE, acc)


@njit(cache=True, nogil=True, error_model="numpy")
def _backward(b0, b1, bs, u, gs, gvT, gv0, apart, p, f, c):  # pragma: no cover
    """Blocks ``[b0, b1)`` in reverse time from the saved ``U`` (``u``, ``[T, N]``), which
    becomes ``dL/dI`` row by row."""
    T, N = u.shape
    decay, thr, a = p[0], p[1], p[2]
    zero = c[ZERO]
    k = sur_consts(c)
    ge, detach, code, acc = f[0] == 0, f[1] != 0, f[2], f[3] != 0
    sc = scratch(2, bs, u.dtype)
    gv, acc_a = sc[0, :bs], sc[1, :bs]
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        gv[:n] = gvT[lo:hi]
        acc_a[:] = zero
        for t in range(T - 1, -1, -1):
            _reverse(u[t, lo:hi], gs[t, lo:hi], gv, acc_a, n, decay, thr, zero, ge,
                     detach, a, k, code, acc)
        gv0[lo:hi] = gv[:n]
        ta = 0.0
        for i in range(n):
            ta += acc_a[i]
        apart[b] = ta


def _forward_np(x: Tensor, v0: Tensor, cfg: DecayLIFConfig,
                keep_u: bool = False) -> tuple[Tensor, Tensor, Optional[Tensor]]:
    """``(spikes, v_final, U or None)`` for contiguous ``x [T, N]``, ``v0 [N]``."""
    T, N = x.shape
    x, v0 = x.detach(), v0.detach()
    s = empty_like(x)  # huge pages for large outputs (see _alloc.py)
    u = empty_like(x) if keep_u else x.new_empty((0, N))
    vout = torch.empty_like(v0)
    dt = x.numpy().dtype
    p = np.array([cfg.decay, cfg.v_threshold], dtype=dt)
    f = np.array([int(cfg.strict)], dtype=np.int64)
    bs = block_size(N)
    run_blocks(_forward, -(-N // bs), T * N, bs, x.numpy(), v0.numpy(), s.numpy(), u.numpy(),
               vout.numpy(), p, f, consts(dt))
    return s, vout, (u if keep_u else None)


class _DecayLIFFunction(torch.autograd.Function):
    """Saves only ``U``, written by the forward kernel."""

    @staticmethod
    def forward(ctx, x: Tensor, v0: Tensor, alpha: Optional[Tensor], a: float,  # type: ignore[override]
                cfg: DecayLIFConfig):
        s, vout, u = _forward_np(x, v0, cfg, keep_u=True)
        ctx.save_for_backward(u)
        ctx.v0_meta = (v0.shape, v0.dtype)
        ctx.cfg, ctx.a = cfg, a
        ctx.a_meta = (alpha.shape, alpha.dtype) if alpha is not None else None
        ctx.set_materialize_grads(False)
        return s, vout

    @staticmethod
    @once_differentiable
    def backward(ctx, gs: Optional[Tensor], gv: Optional[Tensor]):  # type: ignore[override]
        (u,) = ctx.saved_tensors
        cfg = ctx.cfg
        T, N = u.shape
        gs = _zeros(u.shape, u.dtype) if gs is None else gs.contiguous()
        gv = _zeros(*ctx.v0_meta) if gv is None else gv.contiguous()
        dt = u.numpy().dtype
        p = np.array([cfg.decay, cfg.v_threshold, ctx.a], dtype=dt)
        need_a = ctx.a_meta is not None and ctx.needs_input_grad[2]
        f = np.array([int(cfg.strict), int(cfg.detach_reset), cfg.code, int(need_a)], dtype=np.int64)
        bs = block_size(N)
        nblocks = -(-N // bs)
        gx = grad_buffer(u)  # U itself unless the graph is retained (see _inplace.py)
        del u
        gv0 = torch.empty(ctx.v0_meta[0], dtype=gx.dtype)
        apart = np.zeros(nblocks)
        run_blocks(_backward, nblocks, T * N, bs, gx.numpy(), gs.numpy(), gv.numpy(), gv0.numpy(),
                   apart, p, f, consts(dt))
        ga = None
        if need_a:
            ga = torch.tensor(apart.sum(), dtype=ctx.a_meta[1]).reshape(ctx.a_meta[0])
        return gx, gv0, ga, None, None


def decay_lif_fused(x: Tensor, v0: Tensor, cfg: DecayLIFConfig, alpha: Optional[Tensor] = None,
                    a: float = 0.5) -> tuple[Tensor, Tensor]:
    """Fused decay LIF over ``x [T, N]`` from ``v0 [N]``: ``(spikes [T, N], v_final [N])``."""
    grads = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, v0, alpha))
    v0 = v0.to(x.dtype).contiguous()
    if not grads:
        return _forward_np(x.contiguous(), v0, cfg)[:2]
    return _DecayLIFFunction.apply(x.contiguous(), v0, alpha, a, cfg)
