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

from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch
from numba import njit
from torch import Tensor

from spikeflow.ops._cpu._alloc import empty_like
from spikeflow.ops._cpu._blocks import (GRAD_MATH, ONE, ZERO, consts, scratch,
                                                    sur_consts, surrogate)
from spikeflow.ops._cpu._runtime import block_size, run_blocks
from spikeflow.ops.codes import ATAN, GAUSSIAN, RECTANGLE, SIGMOID, TRIANGLE

__all__ = ["DecayLIFConfig", "forward", "backward"]


class DecayLIFConfig(NamedTuple):
    decay: float
    v_threshold: float
    strict: bool
    detach_reset: bool
    code: int


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _charge(xv, vv, decay, thr, one, zero, strict):  # pragma: no cover - compiled
    """One neuron, one step: ``(U, spike, state after the reset)``."""
    uu = decay * vv + xv
    sp = (uu > thr) | ((uu == thr) & (not strict))
    return uu, (one if sp else zero), (zero if sp else uu)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _step_loop(xa, xb, v, sa, sb, ua, ub, n, decay, thr, one, zero, strict,
               pair):  # pragma: no cover - compiled
    """Step ``t`` (rows ``xa``, ``sa``, ``ua``) and, when ``pair``, step ``t + 1`` (``xb``, ``sb``,
    ``ub``) in one pass, the state kept in a register between the two."""
    for i in range(n):
        uu, sv, vv = _charge(xa[i], v[i], decay, thr, one, zero, strict)
        ua[i] = uu
        sa[i] = sv
        if pair:
            uu, sv, vv = _charge(xb[i], vv, decay, thr, one, zero, strict)
            ub[i] = uu
            sb[i] = sv
        v[i] = vv


@njit(cache=True, nogil=True, error_model="numpy")
def _step(xa, xb, v, sa, sb, ua, ub, n, decay, thr, one, zero, strict,
          pair):  # pragma: no cover - compiled
    """One or two time steps of a block: ``U = decay * v + x``, spikes, ``v`` reset in place."""
    if pair:
        _step_loop(xa, xb, v, sa, sb, ua, ub, n, decay, thr, one, zero, strict, True)
    else:
        _step_loop(xa, xb, v, sa, sb, ua, ub, n, decay, thr, one, zero, strict, False)


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(b0, b1, bs, x, v0, s, u, vout, p, f, c):  # pragma: no cover - compiled
    """Blocks ``[b0, b1)``: spikes into ``s``, ``U`` into ``u`` (``[T, N]``, or ``[0, N]`` when
    not needed: then ``U`` goes to scratch rows); two time steps per pass (the last alone when T
    is odd)."""
    T, N = x.shape
    decay, thr = p[0], p[1]
    one, zero = c[ONE], c[ZERO]
    strict = f[0] != 0
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
                  one, zero, strict, pair)
            t += 2
        vout[lo:hi] = v[:n]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _grad(uu, gsv, gvi, thr, zero, strict, detach, a, k, code):  # pragma: no cover - compiled
    """One neuron, one reverse step: ``(dL/dU, dL/dalpha term)`` from ``U``, ``dL/dS`` and the
    gradient ``gvi`` reaching the state after the step."""
    sg, dp = surrogate(uu - thr, code, a, k)
    sp = (uu > thr) | ((uu == thr) & (not strict))
    gtot = gsv - (zero if detach else gvi * uu)
    return gtot * sg + (zero if sp else gvi), gtot * dp


@njit(cache=True, nogil=True, error_model="numpy", fastmath=GRAD_MATH)
def _reverse_loop(u1, g1, u0, g0, gv, acc_a, n, decay, thr, zero, strict, detach, a, k, code, acc,
                  pair):  # pragma: no cover - compiled
    """Reverse step ``t`` (rows ``u1``, ``g1``) and, when ``pair``, step ``t - 1`` (``u0``,
    ``g0``) in the same pass, the state gradient kept in a register between the two (half the
    traffic on the ``gv`` row). ``code``, ``acc`` and ``pair`` are compile-time literals (see
    :func:`_backward`): each combination is its own straight-line loop, compiled when first
    used."""
    for i in range(n):
        gu, da = _grad(u1[i], g1[i], gv[i], thr, zero, strict, detach, a, k, code)
        u1[i] = gu  # dL/dI[t] over U[t] (see _inplace.py)
        if acc:
            acc_a[i] += da
        if pair:
            gu, da = _grad(u0[i], g0[i], decay * gu, thr, zero, strict, detach, a, k, code)
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
    strict, detach, acc = f[0] != 0, f[1] != 0, f[3] != 0
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
                _reverse_loop(u1, g1, u0, g0, gv, acc_a, n, decay, thr, zero, strict, detach, a, k,
                              code, True, False)
            elif pair:
                _reverse_loop(u1, g1, u0, g0, gv, acc_a, n, decay, thr, zero, strict, detach, a, k,
                              code, False, True)
            else:
                _reverse_loop(u1, g1, u0, g0, gv, acc_a, n, decay, thr, zero, strict, detach, a, k,
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


def _cfg(params: Sequence[float], flags: Sequence[int]) -> DecayLIFConfig:
    decay, thr = params
    strict, detach, code = flags
    return DecayLIFConfig(float(decay), float(thr), bool(strict), bool(detach), int(code))


def forward(x: Tensor, states: Sequence[Tensor], tparams: Sequence[Tensor], params: Sequence[float],
            flags: Sequence[int], keep: bool) -> list[Tensor]:
    """CPU forward of ``spikeflow::decay_lif``: ``[spikes, v_final, U or [0, N]]`` for contiguous
    ``x [T, N]``, ``states = [v0]``, ``tparams = [alpha]``."""
    s, vout, u = _forward_np(x, states[0].to(x.dtype).contiguous(), _cfg(params, flags), keep_u=keep)
    return [s, vout, u if u is not None else x.new_empty((0, x.shape[1]))]


def backward(gx: Tensor, gs: Tensor, gstates: Sequence[Tensor], states: Sequence[Tensor],
             tparams: Sequence[Tensor], params: Sequence[float], flags: Sequence[int],
             needs: Sequence[bool]) -> list[Tensor]:
    """CPU backward: overwrites ``gx`` (the saved ``U`` or a copy) with ``dL/dI``; returns
    ``[dL/dv0, dL/dalpha]``."""
    cfg = _cfg(params, flags)
    need_a = bool(needs[0])
    T, N = gx.shape
    gs = gs.to(gx.dtype).contiguous()
    gv = gstates[0].to(gx.dtype).contiguous()
    dt = gx.numpy().dtype
    p = np.array([cfg.decay, cfg.v_threshold, float(tparams[0].detach())], dtype=dt)
    f = np.array([int(cfg.strict), int(cfg.detach_reset), cfg.code, int(need_a)], dtype=np.int64)
    bs = block_size(N)
    nblocks = -(-N // bs)
    gv0 = torch.empty(N, dtype=gx.dtype)
    apart = np.zeros(nblocks)
    run_blocks(_BACKWARD[cfg.code], nblocks, T * N, bs, gx.numpy(), gs.numpy(), gv.numpy(),
               gv0.numpy(), apart, p, f, consts(dt))
    return [gv0, torch.tensor(apart.sum() if need_a else 0.0, dtype=torch.float64)]
