"""Fused CPU kernel of the STBP decay LIF (He et al. 2020; ASA arch A) with a hand-written backward.

Forward, with ``v`` the membrane after the reset of the previous step (the state; rest = 0)::

    U[t] = decay * v + I[t] ;  S[t] = U >= thr (U > thr when strict) ;  v <- U * (1 - S)

i.e. ``u[t] = decay * u[t-1] * (1 - s[t-1]) + I[t]``. Backward, ``gv`` = gradient reaching ``v``::

    gS = dL/dS[t] - gv * U      (the reset path; 0 when detach_reset)
    gU = gS * sg(U - thr) + gv * (1 - S)
    dL/dI[t] = gU ,  gv <- decay * gU ,  dL/dalpha += gS * dF/dalpha

Only ``x`` is saved; the backward replays each block's ``U`` into a cache-resident buffer, as in
``_kernels/lif.py``.
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
from spikeflow.functional._kernels._blocks import ONE, ZERO, consts, scratch, sur_consts, surrogate
from spikeflow.functional._kernels._runtime import BLOCK, replay_block, run_blocks
from spikeflow.functional.surrogate import ATAN, GAUSSIAN, RECTANGLE, SIGMOID, TRIANGLE

__all__ = ["DecayLIFConfig", "decay_lif_fused"]


class DecayLIFConfig(NamedTuple):
    decay: float
    v_threshold: float
    strict: bool
    detach_reset: bool
    code: int


@njit(cache=True, nogil=True, error_model="numpy")
def _step(xt, v, out, n, decay, thr, one, zero, ge, keep_u):  # pragma: no cover - compiled
    """One time step of a block: ``U = decay * v + x``, fire, reset ``v`` in place; ``out`` gets
    ``U`` when ``keep_u`` (backward replay) else ``S``."""
    for i in range(n):
        uu = decay * v[i] + xt[i]
        sp = (uu > thr) | (ge & (uu == thr))
        v[i] = zero if sp else uu
        out[i] = uu if keep_u else (one if sp else zero)


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(b0, b1, bs, x, v0, s, vout, p, f, c):  # pragma: no cover - compiled
    T, N = x.shape
    decay, thr = p[0], p[1]
    one, zero = c[ONE], c[ZERO]
    ge = f[0] == 0
    sc = scratch(1, bs, x.dtype)
    v = sc[0, :bs]
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        v[:n] = v0[lo:hi]
        for t in range(T):
            _step(x[t, lo:hi], v, s[t, lo:hi], n, decay, thr, one, zero, ge, False)
        vout[lo:hi] = v[:n]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _reverse_loop(ut, gst, gxt, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, code,
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
        gxt[i] = gu
        gv[i] = decay * gu


@njit(cache=True, nogil=True, error_model="numpy")
def _reverse_acc(ut, gst, gxt, gv, acc_a, n, decay, thr, zero, ge, detach, a, k,
                 code):  # pragma: no cover - compiled
    """:func:`_reverse` with the surrogate-parameter accumulator."""
    if code == SIGMOID:
        _reverse_loop(ut, gst, gxt, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, SIGMOID, True)
    elif code == ATAN:
        _reverse_loop(ut, gst, gxt, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, ATAN, True)
    elif code == RECTANGLE:
        _reverse_loop(ut, gst, gxt, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, RECTANGLE, True)
    elif code == GAUSSIAN:
        _reverse_loop(ut, gst, gxt, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, GAUSSIAN, True)
    else:
        _reverse_loop(ut, gst, gxt, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, TRIANGLE, True)


@njit(cache=True, nogil=True, error_model="numpy")
def _reverse(ut, gst, gxt, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, code,
             acc):  # pragma: no cover - compiled
    """One reverse step of a block, surrogate fused in; one loop copy per surrogate ``code`` and
    per ``acc`` (whether ``dL/dalpha`` accumulates), so each loop body is straight-line code."""
    if acc:
        _reverse_acc(ut, gst, gxt, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, code)
        return
    if code == SIGMOID:
        _reverse_loop(ut, gst, gxt, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, SIGMOID, False)
    elif code == ATAN:
        _reverse_loop(ut, gst, gxt, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, ATAN, False)
    elif code == RECTANGLE:
        _reverse_loop(ut, gst, gxt, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, RECTANGLE, False)
    elif code == GAUSSIAN:
        _reverse_loop(ut, gst, gxt, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, GAUSSIAN, False)
    else:
        _reverse_loop(ut, gst, gxt, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, TRIANGLE, False)


@njit(cache=True, nogil=True, error_model="numpy")
def _backward(b0, b1, bs, x, gs, v0, gvT, gx, gv0, apart, p, f, c):  # pragma: no cover
    T, N = x.shape
    decay, thr, a = p[0], p[1], p[2]
    one, zero = c[ONE], c[ZERO]
    k = sur_consts(c)
    ge, detach, code, acc = f[0] == 0, f[1] != 0, f[2], f[3] != 0
    ub = scratch(T, bs, x.dtype)  # replayed U of one block, all steps (cache resident)
    sc = scratch(3, bs, x.dtype)
    v, gv, acc_a = sc[0, :bs], sc[1, :bs], sc[2, :bs]
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        v[:n] = v0[lo:hi]
        for t in range(T):
            _step(x[t, lo:hi], v, ub[t], n, decay, thr, one, zero, ge, True)
        gv[:n] = gvT[lo:hi]
        acc_a[:] = zero
        for t in range(T - 1, -1, -1):
            _reverse(ub[t], gs[t, lo:hi], gx[t, lo:hi], gv, acc_a, n, decay, thr, zero, ge, detach,
                     a, k, code, acc)
        gv0[lo:hi] = gv[:n]
        ta = 0.0
        for i in range(n):
            ta += acc_a[i]
        apart[b] = ta


def _forward_np(x: Tensor, v0: Tensor, cfg: DecayLIFConfig) -> tuple[Tensor, Tensor]:
    T, N = x.shape
    x, v0 = x.detach(), v0.detach()
    s = empty_like(x)  # huge pages for large outputs (see _alloc.py)
    vout = torch.empty_like(v0)
    dt = x.numpy().dtype
    p = np.array([cfg.decay, cfg.v_threshold], dtype=dt)
    f = np.array([int(cfg.strict)], dtype=np.int64)
    run_blocks(_forward, -(-N // BLOCK), T * N, BLOCK, x.numpy(), v0.numpy(), s.numpy(),
               vout.numpy(), p, f, consts(dt))
    return s, vout


class _DecayLIFFunction(torch.autograd.Function):
    """Saves only ``x`` and ``v0``; backward replays the forward block by block."""

    @staticmethod
    def forward(ctx, x: Tensor, v0: Tensor, alpha: Optional[Tensor], a: float,  # type: ignore[override]
                cfg: DecayLIFConfig):
        s, vout = _forward_np(x, v0, cfg)
        ctx.save_for_backward(x, v0)
        ctx.cfg, ctx.a = cfg, a
        ctx.a_meta = (alpha.shape, alpha.dtype) if alpha is not None else None
        ctx.set_materialize_grads(False)
        return s, vout

    @staticmethod
    @once_differentiable
    def backward(ctx, gs: Optional[Tensor], gv: Optional[Tensor]):  # type: ignore[override]
        x, v0 = (t.detach() for t in ctx.saved_tensors)
        cfg = ctx.cfg
        T, N = x.shape
        gs = _zeros(x.shape, x.dtype) if gs is None else gs.contiguous()
        gv = _zeros(v0.shape, v0.dtype) if gv is None else gv.contiguous()
        dt = x.numpy().dtype
        p = np.array([cfg.decay, cfg.v_threshold, ctx.a], dtype=dt)
        need_a = ctx.a_meta is not None and ctx.needs_input_grad[2]
        f = np.array([int(cfg.strict), int(cfg.detach_reset), cfg.code, int(need_a)], dtype=np.int64)
        bs = replay_block(T, x.element_size())
        nblocks = -(-N // bs)
        gx = empty_like(x)
        gv0 = torch.empty_like(v0)
        apart = np.zeros(nblocks)
        run_blocks(_backward, nblocks, T * N, bs, x.numpy(), gs.numpy(), v0.numpy(), gv.numpy(),
                   gx.numpy(), gv0.numpy(), apart, p, f, consts(dt))
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
        return _forward_np(x.contiguous(), v0, cfg)
    return _DecayLIFFunction.apply(x.contiguous(), v0, alpha, a, cfg)
