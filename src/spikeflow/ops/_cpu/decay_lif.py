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

from spikeflow.ops._cpu._alloc import zeros as _zeros
from spikeflow.ops._cpu._alloc import empty_like
from spikeflow.ops._cpu._blocks import (GRAD_MATH, ONE, ZERO, consts, scratch,
                                                    sur_consts, surrogate)
from spikeflow.ops._cpu._inplace import grad_buffer
from spikeflow.ops._cpu._runtime import block_size, run_blocks
from spikeflow.ops.codes import ATAN, GAUSSIAN, RECTANGLE, SIGMOID, TRIANGLE

__all__ = ["DecayLIFConfig", "decay_lif_fused"]


class DecayLIFConfig(NamedTuple):
    decay: float
    v_threshold: float
    strict: bool
    detach_reset: bool
    code: int


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _charge(xv, vv, decay, thr, one, zero, ge):  # pragma: no cover - compiled
    """One neuron, one step: ``(U, spike, state after the reset)``."""
    uu = decay * vv + xv
    sp = (uu > thr) | (ge & (uu == thr))
    return uu, (one if sp else zero), (zero if sp else uu)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _step_loop(xa, xb, v, sa, sb, ua, ub, n, decay, thr, one, zero, ge,
               pair):  # pragma: no cover - compiled
    """Step ``t`` (rows ``xa``, ``sa``, ``ua``) and, when ``pair``, step ``t + 1`` (``xb``, ``sb``,
    ``ub``) in one pass, the state kept in a register between the two."""
    for i in range(n):
        uu, sv, vv = _charge(xa[i], v[i], decay, thr, one, zero, ge)
        ua[i] = uu
        sa[i] = sv
        if pair:
            uu, sv, vv = _charge(xb[i], vv, decay, thr, one, zero, ge)
            ub[i] = uu
            sb[i] = sv
        v[i] = vv


@njit(cache=True, nogil=True, error_model="numpy")
def _step(xa, xb, v, sa, sb, ua, ub, n, decay, thr, one, zero, ge,
          pair):  # pragma: no cover - compiled
    """One or two time steps of a block: ``U = decay * v + x``, spikes, ``v`` reset in place."""
    if pair:
        _step_loop(xa, xb, v, sa, sb, ua, ub, n, decay, thr, one, zero, ge, True)
    else:
        _step_loop(xa, xb, v, sa, sb, ua, ub, n, decay, thr, one, zero, ge, False)


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(b0, b1, bs, x, v0, s, u, vout, p, f, c):  # pragma: no cover - compiled
    """Blocks ``[b0, b1)``: spikes into ``s``, ``U`` into ``u`` (``[T, N]``, or ``[0, N]`` when
    not needed: then ``U`` goes to scratch rows); two time steps per pass (the last alone when T
    is odd)."""
    T, N = x.shape
    decay, thr = p[0], p[1]
    one, zero = c[ONE], c[ZERO]
    ge = f[0] == 0
    keep = u.shape[0] == T
    sc = scratch(3, bs, x.dtype)
    v, dump_a, dump_b = sc[0, :bs], sc[1, :bs], sc[2, :bs]
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        v[:n] = v0[lo:hi]
        t = 0
        while t < T:
            pair = t + 1 < T
            tb = t + 1 if pair else t
            ua = u[t, lo:hi] if keep else dump_a[:n]
            ub = u[tb, lo:hi] if keep else dump_b[:n]
            _step(x[t, lo:hi], x[tb, lo:hi], v, s[t, lo:hi], s[tb, lo:hi], ua, ub, n, decay, thr,
                  one, zero, ge, pair)
            t += 2
        vout[lo:hi] = v[:n]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _grad(uu, gsv, gvi, thr, zero, ge, detach, a, k, code):  # pragma: no cover - compiled
    """One neuron, one reverse step: ``(dL/dU, dL/dalpha term)`` from ``U``, ``dL/dS`` and the
    gradient ``gvi`` reaching the state after the step."""
    sg, dp = surrogate(uu - thr, code, a, k)
    sp = (uu > thr) | (ge & (uu == thr))
    gtot = gsv - (zero if detach else gvi * uu)
    return gtot * sg + (zero if sp else gvi), gtot * dp


@njit(cache=True, nogil=True, error_model="numpy", fastmath=GRAD_MATH)
def _reverse_loop(u1, g1, u0, g0, gv, acc_a, n, decay, thr, zero, ge, detach, a, k, code, acc,
                  pair):  # pragma: no cover - compiled
    """Reverse step ``t`` (rows ``u1``, ``g1``) and, when ``pair``, step ``t - 1`` (``u0``,
    ``g0``) in the same pass, the state gradient kept in a register between the two (half the
    traffic on the ``gv`` row). ``code``, ``acc`` and ``pair`` are compile-time literals (see
    :func:`_backward`): each combination is its own straight-line loop, compiled when first
    used."""
    for i in range(n):
        gu, da = _grad(u1[i], g1[i], gv[i], thr, zero, ge, detach, a, k, code)
        u1[i] = gu  # dL/dI[t] over U[t] (see _inplace.py)
        if acc:
            acc_a[i] += da
        if pair:
            gu, da = _grad(u0[i], g0[i], decay * gu, thr, zero, ge, detach, a, k, code)
            u0[i] = gu
            if acc:
                acc_a[i] += da
        gv[i] = decay * gu


@njit(cache=True, nogil=True, error_model="numpy")
def _backward(b0, b1, bs, u, gs, gvT, gv0, apart, p, f, c, code):  # pragma: no cover
    """Blocks ``[b0, b1)`` in reverse time from the saved ``U`` (``u``, ``[T, N]``), which
    becomes ``dL/dI`` row by row; two time steps per pass (the first alone when T is odd) unless
    ``dL/dalpha`` accumulates (a learnable surrogate parameter is rare; each loop variant costs
    compile time). ``code`` (the surrogate) is a compile-time constant: one entry point per
    surrogate (:data:`_BACKWARD`), so numba compiles the loops of the surrogates in use only."""
    T, N = u.shape
    decay, thr, a = p[0], p[1], p[2]
    zero = c[ZERO]
    k = sur_consts(c)
    ge, detach, acc = f[0] == 0, f[1] != 0, f[3] != 0
    sc = scratch(2, bs, u.dtype)
    gv, acc_a = sc[0, :bs], sc[1, :bs]
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        gv[:n] = gvT[lo:hi]
        acc_a[:] = zero
        t = T - 1
        while t >= 0:
            pair = not acc and t % 2 == 1  # pairs (t, t - 1) down to (1, 0); odd T: t = T-1 alone
            tb = t - 1 if pair else t
            u1, g1, u0, g0 = u[t, lo:hi], gs[t, lo:hi], u[tb, lo:hi], gs[tb, lo:hi]
            if acc:  # literal code, acc, pair: one specialisation each
                _reverse_loop(u1, g1, u0, g0, gv, acc_a, n, decay, thr, zero, ge, detach, a, k,
                              code, True, False)
            elif pair:
                _reverse_loop(u1, g1, u0, g0, gv, acc_a, n, decay, thr, zero, ge, detach, a, k,
                              code, False, True)
            else:
                _reverse_loop(u1, g1, u0, g0, gv, acc_a, n, decay, thr, zero, ge, detach, a, k,
                              code, False, False)
            t -= 2 if pair else 1
        gv0[lo:hi] = gv[:n]
        ta = 0.0
        for i in range(n):
            ta += acc_a[i]
        apart[b] = ta


# one compiled entry point per surrogate: numba compiles only the surrogates in use
@njit(cache=True, nogil=True, error_model="numpy")
def _backward_sigmoid(b0, b1, bs, u, gs, gvT, gv0, apart, p, f, c):  # pragma: no cover
    _backward(b0, b1, bs, u, gs, gvT, gv0, apart, p, f, c, SIGMOID)


@njit(cache=True, nogil=True, error_model="numpy")
def _backward_atan(b0, b1, bs, u, gs, gvT, gv0, apart, p, f, c):  # pragma: no cover
    _backward(b0, b1, bs, u, gs, gvT, gv0, apart, p, f, c, ATAN)


@njit(cache=True, nogil=True, error_model="numpy")
def _backward_rectangle(b0, b1, bs, u, gs, gvT, gv0, apart, p, f, c):  # pragma: no cover
    _backward(b0, b1, bs, u, gs, gvT, gv0, apart, p, f, c, RECTANGLE)


@njit(cache=True, nogil=True, error_model="numpy")
def _backward_gaussian(b0, b1, bs, u, gs, gvT, gv0, apart, p, f, c):  # pragma: no cover
    _backward(b0, b1, bs, u, gs, gvT, gv0, apart, p, f, c, GAUSSIAN)


@njit(cache=True, nogil=True, error_model="numpy")
def _backward_triangle(b0, b1, bs, u, gs, gvT, gv0, apart, p, f, c):  # pragma: no cover
    _backward(b0, b1, bs, u, gs, gvT, gv0, apart, p, f, c, TRIANGLE)


_BACKWARD = {SIGMOID: _backward_sigmoid, ATAN: _backward_atan, RECTANGLE: _backward_rectangle,
             GAUSSIAN: _backward_gaussian, TRIANGLE: _backward_triangle}


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
        run_blocks(_BACKWARD[cfg.code], nblocks, T * N, bs, gx.numpy(), gs.numpy(), gv.numpy(),
                   gv0.numpy(), apart, p, f, consts(dt))
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
