"""Fused CPU kernel of the LIF family (LIF, PLIF, IF) with a hand-written backward.

Dynamics per step (``vr`` = v_reset, 0 in the charge when the reset is soft)::

    H[t] = V + (X - (V - vr)) / tau      LIF, decay_input      (mode 1; PLIF: "* k", mode 2)
    H[t] = V - (V - vr) / tau + X        LIF, not decay_input  (PLIF: "* k")
    H[t] = V + X                         IF                     (mode 0)
    S[t] = H >= thr  (H > thr when strict)
    V[t] = vr if S else H  (hard)   |   H - thr if S else H  (soft)

The expressions and their order are those of the reference loop (and SpikingJelly), so the spikes
are bit-identical. Backward, in reverse time, with ``gV`` the gradient reaching ``V[t]``::

    gS  = dL/dS[t] + gV * dV/dS     (dV/dS = vr - H hard, -thr soft; 0 if detach_reset)
    gH  = gS * sg(H - thr) + gV * dV/dH|S          (dV/dH|S = 1 - S hard, 1 soft)
    dL/dX[t] = gH * dH/dX ,  gV <- gH * dH/dV ,  dL/dalpha += gS * dF/dalpha
    PLIF: dL/dk += gH * (H - V[t-1]) / k  (decay_input)  or  gH * (vr - V[t-1])

Work is split into blocks of contiguous neurons; each block keeps its state in a small local array
and loops over time outside, neurons inside (SIMD). The forward reads ``X`` and writes ``S`` only.
For backward only the input ``X`` is saved (often alive anyway, and no new tensor); the backward
replays each block's forward into a ``[T, block]`` cache-resident buffer (bit-identical ``H``,
hence ``S`` and ``V[t-1]``) and then runs the reverse loop on it. Nothing is saved when no input
needs a gradient.
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

__all__ = ["LIFConfig", "lif_fused"]


class LIFConfig(NamedTuple):
    mode: int  # 0 IF, 1 divide by tau, 2 multiply by k (PLIF)
    tau: float  # mode 1 only
    v_reset: float  # 0.0 for soft reset
    v_threshold: float
    decay_input: bool
    hard: bool
    strict: bool
    detach_reset: bool
    code: int  # surrogate code


@njit(cache=True, nogil=True, error_model="numpy")
def _charge(v, x, leak, vr, mode, decay):  # pragma: no cover - compiled
    """``H`` from ``V`` and ``X`` (the reference loop's expression, evaluated in the same order)."""
    if mode == 1:
        return v + (x - (v - vr)) / leak if decay else v - (v - vr) / leak + x
    if mode == 2:
        return v + (x - (v - vr)) * leak if decay else v - (v - vr) * leak + x
    return v + x


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _step_loop(xt, v, out, n, leak, vr, thr, one, zero, hard, ge, keep_h, mode, decay):  # pragma: no cover
    for i in range(n):
        hh = _charge(v[i], xt[i], leak, vr, mode, decay)
        sp = (hh > thr) | (ge & (hh == thr))
        v[i] = (vr if hard else hh - thr) if sp else hh
        out[i] = hh if keep_h else (one if sp else zero)


@njit(cache=True, nogil=True, error_model="numpy")
def _step(xt, v, out, n, leak, vr, thr, one, zero, mode, decay, hard, ge, keep_h):  # pragma: no cover
    """One time step of a block: charge, fire, reset ``v`` in place; ``out`` gets ``H`` when
    ``keep_h`` (backward replay) else ``S``. One loop copy per charge formula (constant ``mode``
    and ``decay`` once inlined), so each loop body is straight-line SIMD code."""
    if mode == 1 and decay:
        _step_loop(xt, v, out, n, leak, vr, thr, one, zero, hard, ge, keep_h, 1, True)
    elif mode == 1:
        _step_loop(xt, v, out, n, leak, vr, thr, one, zero, hard, ge, keep_h, 1, False)
    elif mode == 2 and decay:
        _step_loop(xt, v, out, n, leak, vr, thr, one, zero, hard, ge, keep_h, 2, True)
    elif mode == 2:
        _step_loop(xt, v, out, n, leak, vr, thr, one, zero, hard, ge, keep_h, 2, False)
    else:
        _step_loop(xt, v, out, n, leak, vr, thr, one, zero, hard, ge, keep_h, 0, True)


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(b0, b1, bs, x, v0, s, vout, p, f, c):  # pragma: no cover - compiled
    T, N = x.shape
    leak, vr, thr = p[0], p[1], p[2]
    one, zero = c[ONE], c[ZERO]
    mode, decay, hard, ge = f[0], f[1] != 0, f[2] != 0, f[3] == 0
    sc = scratch(1, bs, x.dtype)
    v = sc[0, :bs]
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        v[:n] = v0[lo:hi]
        for t in range(T):
            _step(x[t, lo:hi], v, s[t, lo:hi], n, leak, vr, thr, one, zero, mode, decay, hard, ge,
                  False)
        vout[lo:hi] = v[:n]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _reverse_loop(ht, gst, gxt, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one, zero, hard, ge,
                  detach, a, k, code, acc):  # pragma: no cover - compiled
    for i in range(n):
        hh = ht[i]
        sg, dp = surrogate(hh - thr, code, a, k)
        sp = (hh > thr) | (ge & (hh == thr))
        gvi = gv[i]
        dvds = (vr - hh) if hard else -thr
        dvdh = (zero if sp else one) if hard else one
        gtot = gst[i] + (zero if detach else gvi * dvds)
        gh = gtot * sg + gvi * dvdh
        if acc:  # constant once inlined
            acc_a[i] += gtot * dp
            acc_k[i] += gh * dk[i]
        gxt[i] = gh * cx
        gv[i] = gh * cv


@njit(cache=True, nogil=True, error_model="numpy")
def _reverse_acc(ht, gst, gxt, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one, zero, hard, ge,
                 detach, a, k, code):  # pragma: no cover - compiled
    """:func:`_reverse` with the parameter accumulators."""
    if code == SIGMOID:
        _reverse_loop(ht, gst, gxt, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one, zero, hard, ge,
                      detach, a, k, SIGMOID, True)
    elif code == ATAN:
        _reverse_loop(ht, gst, gxt, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one, zero, hard, ge,
                      detach, a, k, ATAN, True)
    elif code == RECTANGLE:
        _reverse_loop(ht, gst, gxt, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one, zero, hard, ge,
                      detach, a, k, RECTANGLE, True)
    elif code == GAUSSIAN:
        _reverse_loop(ht, gst, gxt, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one, zero, hard, ge,
                      detach, a, k, GAUSSIAN, True)
    else:
        _reverse_loop(ht, gst, gxt, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one, zero, hard, ge,
                      detach, a, k, TRIANGLE, True)


@njit(cache=True, nogil=True, error_model="numpy")
def _reverse(ht, gst, gxt, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one, zero, hard, ge, detach,
             a, k, code, acc):  # pragma: no cover - compiled
    """One reverse step of a block, surrogate fused in; one loop copy per surrogate ``code`` and
    per ``acc`` (whether the parameter gradients accumulate; ``dk`` is 0 unless PLIF's k needs
    one), so each loop body is straight-line code."""
    if acc:
        _reverse_acc(ht, gst, gxt, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one, zero, hard, ge,
                     detach, a, k, code)
        return
    if code == SIGMOID:
        _reverse_loop(ht, gst, gxt, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one, zero, hard, ge,
                      detach, a, k, SIGMOID, False)
    elif code == ATAN:
        _reverse_loop(ht, gst, gxt, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one, zero, hard, ge,
                      detach, a, k, ATAN, False)
    elif code == RECTANGLE:
        _reverse_loop(ht, gst, gxt, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one, zero, hard, ge,
                      detach, a, k, RECTANGLE, False)
    elif code == GAUSSIAN:
        _reverse_loop(ht, gst, gxt, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one, zero, hard, ge,
                      detach, a, k, GAUSSIAN, False)
    else:
        _reverse_loop(ht, gst, gxt, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one, zero, hard, ge,
                      detach, a, k, TRIANGLE, False)


@njit(cache=True, nogil=True, error_model="numpy")
def _backward(b0, b1, bs, x, gs, v0, gvT, gx, gv0, kpart, apart, p, f, c):  # pragma: no cover
    T, N = x.shape
    leak, vr, thr, a, cx, cv = p[0], p[1], p[2], p[3], p[4], p[5]
    one, zero = c[ONE], c[ZERO]
    k = sur_consts(c)
    mode, decay, hard, ge = f[0], f[1] != 0, f[2] != 0, f[3] == 0
    detach, code, need_k = f[4] != 0, f[5], f[6] != 0
    acc = need_k or f[7] != 0
    hb = scratch(T, bs, x.dtype)  # replayed H of one block, all steps (cache resident)
    sc = scratch(5, bs, x.dtype)
    v, gv, acc_k, acc_a, dk = sc[0, :bs], sc[1, :bs], sc[2, :bs], sc[3, :bs], sc[4, :bs]
    dk[:] = zero
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        v[:n] = v0[lo:hi]
        for t in range(T):  # replay the forward: H is recomputed bit for bit
            _step(x[t, lo:hi], v, hb[t], n, leak, vr, thr, one, zero, mode, decay, hard, ge, True)
        gv[:n] = gvT[lo:hi]
        acc_k[:] = zero
        acc_a[:] = zero
        for t in range(T - 1, -1, -1):
            ht = hb[t]
            if need_k:  # dH/dk * k (decay_input) or dH/dk, from V[t-1] recomputed from H[t-1]
                if t > 0:
                    hp = hb[t - 1]
                    for i in range(n):
                        hq = hp[i]
                        sq = (hq > thr) | (ge & (hq == thr))
                        vq = (vr if hard else hq - thr) if sq else hq
                        dk[i] = (ht[i] - vq) if decay else (vr - vq)
                else:
                    for i in range(n):
                        dk[i] = (ht[i] - v0[lo + i]) if decay else (vr - v0[lo + i])
            _reverse(ht, gs[t, lo:hi], gx[t, lo:hi], gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, one,
                     zero, hard, ge, detach, a, k, code, acc)
        gv0[lo:hi] = gv[:n]
        tk = 0.0
        ta = 0.0
        for i in range(n):
            tk += acc_k[i]
            ta += acc_a[i]
        kpart[b] = tk
        apart[b] = ta


def _flags(*values: int) -> np.ndarray:
    return np.array([int(v) for v in values], dtype=np.int64)


def _forward_np(x: Tensor, v0: Tensor, leak: float, cfg: LIFConfig) -> tuple[Tensor, Tensor]:
    """Run the forward kernel on contiguous ``x [T, N]``, ``v0 [N]``: ``(spikes, v_final)``."""
    T, N = x.shape
    x, v0 = x.detach(), v0.detach()
    s = empty_like(x)  # huge pages for large outputs (see _alloc.py)
    vout = torch.empty_like(v0)
    dt = x.numpy().dtype
    p = np.array([leak, cfg.v_reset, cfg.v_threshold], dtype=dt)
    f = _flags(cfg.mode, cfg.decay_input, cfg.hard, cfg.strict)
    run_blocks(_forward, -(-N // BLOCK), T * N, BLOCK, x.numpy(), v0.numpy(), s.numpy(),
               vout.numpy(), p, f, consts(dt))
    return s, vout


class _LIFFunction(torch.autograd.Function):
    """Saves only the input ``x`` (and ``v0``); backward replays the forward block by block."""

    @staticmethod
    def forward(ctx, x: Tensor, v0: Tensor, k: Optional[Tensor], alpha: Optional[Tensor],  # type: ignore[override]
                leak: float, a: float, cfg: LIFConfig):
        s, vout = _forward_np(x, v0, leak, cfg)
        ctx.save_for_backward(x, v0)
        ctx.cfg, ctx.leak, ctx.a = cfg, leak, a
        ctx.k_meta = (k.shape, k.dtype) if k is not None else None
        ctx.a_meta = (alpha.shape, alpha.dtype) if alpha is not None else None
        ctx.set_materialize_grads(False)
        return s, vout

    @staticmethod
    @once_differentiable
    def backward(ctx, gs: Optional[Tensor], gv: Optional[Tensor]):  # type: ignore[override]
        x, v0 = (t.detach() for t in ctx.saved_tensors)
        cfg, leak = ctx.cfg, ctx.leak
        T, N = x.shape
        gs = _zeros(x.shape, x.dtype) if gs is None else gs.contiguous()
        gv = _zeros(v0.shape, v0.dtype) if gv is None else gv.contiguous()
        need_k = ctx.k_meta is not None and ctx.needs_input_grad[2]
        need_a = ctx.a_meta is not None and ctx.needs_input_grad[3]
        if cfg.mode == 0:
            cx, cv = 1.0, 1.0
        elif cfg.mode == 1:
            cx, cv = (1.0 / leak if cfg.decay_input else 1.0), 1.0 - 1.0 / leak
        else:
            cx, cv = (leak if cfg.decay_input else 1.0), 1.0 - leak
        dt = x.numpy().dtype
        p = np.array([leak, cfg.v_reset, cfg.v_threshold, ctx.a, cx, cv], dtype=dt)
        f = _flags(cfg.mode, cfg.decay_input, cfg.hard, cfg.strict, cfg.detach_reset, cfg.code,
                   need_k, need_a)
        bs = replay_block(T, x.element_size())
        nblocks = -(-N // bs)
        gx = empty_like(x)
        gv0 = torch.empty_like(v0)
        kpart = np.zeros(nblocks)
        apart = np.zeros(nblocks)
        run_blocks(_backward, nblocks, T * N, bs, x.numpy(), gs.numpy(), v0.numpy(), gv.numpy(),
                   gx.numpy(), gv0.numpy(), kpart, apart, p, f, consts(dt))
        gk = ga = None
        if need_k:
            total = kpart.sum() / leak if cfg.decay_input else kpart.sum()
            gk = torch.tensor(total, dtype=ctx.k_meta[1]).reshape(ctx.k_meta[0])
        if need_a:
            ga = torch.tensor(apart.sum(), dtype=ctx.a_meta[1]).reshape(ctx.a_meta[0])
        return gx, gv0, gk, ga, None, None, None


def lif_fused(x: Tensor, v0: Tensor, cfg: LIFConfig, k: Optional[Tensor] = None,
              alpha: Optional[Tensor] = None, a: float = 4.0) -> tuple[Tensor, Tensor]:
    """Fused LIF/PLIF/IF over ``x [T, N]`` from ``v0 [N]`` (both CPU, same float dtype).

    ``k`` (0-dim tensor, mode 2) is PLIF's ``1/tau``; ``alpha`` the learnable surrogate parameter
    (``a`` its float value). Returns ``(spikes [T, N], v_final [N])``.
    """
    leak = float(k.detach()) if cfg.mode == 2 else float(cfg.tau)
    grads = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (x, v0, k, alpha))
    v0 = v0.to(x.dtype).contiguous()
    if not grads:
        return _forward_np(x.contiguous(), v0, leak, cfg)
    return _LIFFunction.apply(x.contiguous(), v0, k, alpha, leak, a, cfg)
