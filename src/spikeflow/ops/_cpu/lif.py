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
and loops over time outside (two steps per pass, the state in a register between them), neurons
inside (SIMD). The forward reads ``X`` and writes ``S``, and
when a gradient is needed also ``H``, the only tensor saved for backward (the input ``X`` is not
kept; ``S`` and ``V[t-1]`` follow from ``H``), and the backward writes ``dL/dX`` over it
(``_inplace.py``). Recomputing ``H`` in backward from a saved ``X``
("replay") needs no extra forward store but costs the forward's arithmetic again; measured for
LIF at T=32, 262,144 neurons (AMD Zen 4), saving ``H`` made forward+backward 17% faster on one
thread and 5% on two. Nothing is saved when no input needs a gradient.
"""
from __future__ import annotations

import math
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

__all__ = ["LIFConfig", "forward", "backward"]


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
def _charge(v, x, tau_or_k, vr, mode, decay):  # pragma: no cover - compiled
    """``H`` from ``V`` and ``X`` (the reference loop's expression, evaluated in the same order)."""
    if mode == 1:
        return v + (x - (v - vr)) / tau_or_k if decay else v - (v - vr) / tau_or_k + x
    if mode == 2:
        return v + (x - (v - vr)) * tau_or_k if decay else v - (v - vr) * tau_or_k + x
    return v + x


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _fire(hh, vr, thr, hard, strict):  # pragma: no cover - compiled
    """``(S, V)`` from ``H``: the spike and the membrane after the reset."""
    sp = (hh > thr) | ((hh == thr) & (not strict))
    return sp, ((vr if hard else hh - thr) if sp else hh)


@njit(cache=True, nogil=True, error_model="numpy")
def _step(xa, xb, v, sa, sb, ha, hb, n, tau_or_k, vr, thr, one, zero, hard, strict, mode, decay,
          pair):  # pragma: no cover - compiled
    """Step ``t`` (rows ``xa``, ``sa``, ``ha``) and, when ``pair``, step ``t + 1`` (``xb``, ``sb``,
    ``hb``) in one pass, the state kept in a register between the two: charge, fire, reset ``v``
    in place, ``S`` and ``H`` out. Called with constant ``mode``, ``decay`` (the charge formula)
    and ``pair`` (see :func:`_forward`): each combination is its own straight-line SIMD loop."""
    for i in range(n):
        hh = _charge(v[i], xa[i], tau_or_k, vr, mode, decay)
        sp, vv = _fire(hh, vr, thr, hard, strict)
        sa[i] = one if sp else zero
        ha[i] = hh
        if pair:
            hh = _charge(vv, xb[i], tau_or_k, vr, mode, decay)
            sp, vv = _fire(hh, vr, thr, hard, strict)
            sb[i] = one if sp else zero
            hb[i] = hh
        v[i] = vv


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _step_formula(xa, xb, v, sa, sb, ha, hb, n, tau_or_k, vr, thr, one, zero, hard, strict, mode,
                  decay, pair):  # pragma: no cover - compiled
    """:func:`_step` with ``mode``, ``decay`` and ``pair`` turned into constants."""
    if pair:
        if mode == 1 and decay:
            _step(xa, xb, v, sa, sb, ha, hb, n, tau_or_k, vr, thr, one, zero, hard, strict,
                  1, True, True)
        elif mode == 1:
            _step(xa, xb, v, sa, sb, ha, hb, n, tau_or_k, vr, thr, one, zero, hard, strict,
                  1, False, True)
        elif mode == 2 and decay:
            _step(xa, xb, v, sa, sb, ha, hb, n, tau_or_k, vr, thr, one, zero, hard, strict,
                  2, True, True)
        elif mode == 2:
            _step(xa, xb, v, sa, sb, ha, hb, n, tau_or_k, vr, thr, one, zero, hard, strict,
                  2, False, True)
        else:
            _step(xa, xb, v, sa, sb, ha, hb, n, tau_or_k, vr, thr, one, zero, hard, strict,
                  0, True, True)
    elif mode == 1 and decay:
        _step(xa, xb, v, sa, sb, ha, hb, n, tau_or_k, vr, thr, one, zero, hard, strict,
              1, True, False)
    elif mode == 1:
        _step(xa, xb, v, sa, sb, ha, hb, n, tau_or_k, vr, thr, one, zero, hard, strict,
              1, False, False)
    elif mode == 2 and decay:
        _step(xa, xb, v, sa, sb, ha, hb, n, tau_or_k, vr, thr, one, zero, hard, strict,
              2, True, False)
    elif mode == 2:
        _step(xa, xb, v, sa, sb, ha, hb, n, tau_or_k, vr, thr, one, zero, hard, strict,
              2, False, False)
    else:
        _step(xa, xb, v, sa, sb, ha, hb, n, tau_or_k, vr, thr, one, zero, hard, strict,
              0, True, False)


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(b0, b1, bs, x, v0, s, h, vout, p, f, c):  # pragma: no cover - compiled
    """Blocks ``[b0, b1)``: spikes into ``s``, ``H`` into ``h`` (``[T, N]``, or ``[0, N]`` when
    not needed: then ``H`` goes to scratch rows); two time steps per pass (the last alone when T
    is odd)."""
    T, N = x.shape
    tau_or_k, vr, thr = p[0], p[1], p[2]
    one, zero = c[ONE], c[ZERO]
    mode, decay, hard, strict = f[0], f[1] != 0, f[2] != 0, f[3] != 0
    keep = h.shape[0] == T
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
            ha = h[t, lo:hi] if keep else dump_a[:n]
            hb = h[tb, lo:hi] if keep else dump_b[:n]
            _step_formula(x[t, lo:hi], x[tb, lo:hi], v, s[t, lo:hi], s[tb, lo:hi], ha, hb, n,
                          tau_or_k, vr, thr, one, zero, hard, strict, mode, decay, pair)
            t += 2
        vout[lo:hi] = v[:n]


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _grad(hh, gsv, gvi, vr, thr, zero, hard, strict, detach, a, k, code):  # pragma: no cover
    """One neuron, one reverse step: ``(gH, dL/dalpha term)`` from ``H``, ``dL/dS`` and the
    gradient ``gvi`` reaching ``V[t]``."""
    sg, dp = surrogate(hh - thr, code, a, k)
    sp = (hh > thr) | ((hh == thr) & (not strict))
    dvds = (vr - hh) if hard else -thr
    gtot = gsv + (zero if detach else gvi * dvds)
    return gtot * sg + ((zero if sp else gvi) if hard else gvi), gtot * dp  # + gV dV/dH|S


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _dh_dk(hh, hprev, vr, thr, hard, strict, decay):  # pragma: no cover - compiled
    """PLIF's ``dH/dk * k`` (decay_input) or ``dH/dk``, ``V[t-1]`` recomputed from ``H[t-1]``."""
    vq = _fire(hprev, vr, thr, hard, strict)[1]
    return (hh - vq) if decay else (vr - vq)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=GRAD_MATH)
def _reverse_loop(h1, h0, hq, g1, g0, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, zero, hard, strict,
                  detach, decay, a, k, code, mode, pair):  # pragma: no cover - compiled
    """Reverse step ``t`` (rows ``h1`` = ``H[t]``, ``g1``) and, when ``pair``, step ``t - 1``
    (``h0`` = ``H[t-1]``, ``g0``; ``hq`` = ``H[t-2]``) in the same pass, the state gradient kept
    in a register between the two. ``mode``: 0 no parameter gradient; 1 accumulate ``dL/dalpha``
    and ``dL/dk`` with ``dH/dk`` from the row ``dk`` (single steps only); 2 accumulate ``dL/dk``
    only, ``dH/dk`` from the previous row of ``H`` (pairs only). ``code``, ``mode`` and ``pair`` are
    compile-time literals (see :func:`_backward`): each combination is its own straight-line
    loop, compiled when first used."""
    for i in range(n):
        hh = h1[i]
        gh, da = _grad(hh, g1[i], gv[i], vr, thr, zero, hard, strict, detach, a, k, code)
        if mode == 1:
            acc_a[i] += da
            acc_k[i] += gh * dk[i]
        elif mode == 2:
            acc_k[i] += gh * _dh_dk(hh, h0[i], vr, thr, hard, strict, decay)
        h1[i] = gh * cx  # dL/dX[t] over H[t] (see _inplace.py)
        if pair:
            hh = h0[i]
            gh, da = _grad(hh, g0[i], gh * cv, vr, thr, zero, hard, strict, detach, a, k, code)
            if mode == 2:
                acc_k[i] += gh * _dh_dk(hh, hq[i], vr, thr, hard, strict, decay)
            h0[i] = gh * cx
        gv[i] = gh * cv


@njit(cache=True, nogil=True, error_model="numpy")
def _backward(b0, b1, bs, h, gs, v0, gvT, gv0, kpart, apart, p, f, c, code):  # pragma: no cover
    """Blocks ``[b0, b1)`` in reverse time from the saved ``H`` (``h``, ``[T, N]``), which
    becomes ``dL/dX`` row by row (row ``t`` after its last read). Two time steps per pass where
    no ``dk`` row is needed (no learnable surrogate parameter; PLIF down to t = 2, then single
    steps with a ``dk`` row). Four loop variants in all (:func:`_reverse_loop`). ``code`` (the
    surrogate) is a compile-time constant: one entry point per surrogate (:data:`_BACKWARD`), so
    numba compiles the loops of the surrogates in use only."""
    T, N = h.shape
    vr, thr, a, cx, cv = p[1], p[2], p[3], p[4], p[5]
    zero = c[ZERO]
    k = sur_consts(c)
    decay, hard, strict = f[1] != 0, f[2] != 0, f[3] != 0
    detach, need_k, need_a = f[4] != 0, f[6] != 0, f[7] != 0
    sc = scratch(4, bs, h.dtype)
    gv, acc_k, acc_a, dk = sc[0, :bs], sc[1, :bs], sc[2, :bs], sc[3, :bs]
    dk[:] = zero
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        gv[:n] = gvT[lo:hi]
        acc_k[:] = zero
        acc_a[:] = zero
        v0b = v0[lo:hi] if need_k else v0[:0]
        t = T - 1
        while t >= 0:
            ht, g1 = h[t, lo:hi], gs[t, lo:hi]
            hp = h[t - 1, lo:hi] if t > 0 else ht
            g0 = gs[t - 1, lo:hi] if t > 0 else g1
            if not (need_k or need_a):  # no parameter gradient: pairs (t, t - 1)
                if t > 0:
                    _reverse_loop(ht, hp, ht, g1, g0, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv,
                                  zero, hard, strict, detach, decay, a, k, code, 0, True)
                else:
                    _reverse_loop(ht, hp, ht, g1, g0, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv,
                                  zero, hard, strict, detach, decay, a, k, code, 0, False)
                t -= 2
            elif not need_a and t >= 2:  # PLIF: dH/dk fused in, pairs (t, t - 1) down to (2, 1)
                _reverse_loop(ht, hp, h[t - 2, lo:hi], g1, g0, gv, dk, acc_k, acc_a, n, vr, thr,
                              cx, cv, zero, hard, strict, detach, decay, a, k, code, 2, True)
                t -= 2
            else:  # single steps with a dk row: dH/dk from V[t-1] (from H[t-1], or v0 at t = 0)
                if need_k:
                    for i in range(n):
                        vq = _fire(hp[i], vr, thr, hard, strict)[1] if t > 0 else v0b[i]
                        dk[i] = (ht[i] - vq) if decay else (vr - vq)
                _reverse_loop(ht, hp, ht, g1, g0, gv, dk, acc_k, acc_a, n, vr, thr, cx, cv, zero,
                              hard, strict, detach, decay, a, k, code, 1, False)
                t -= 1
        gv0[lo:hi] = gv[:n]
        tk = 0.0
        ta = 0.0
        for i in range(n):
            tk += acc_k[i]
            ta += acc_a[i]
        kpart[b] = tk
        apart[b] = ta


# one compiled entry point per surrogate: numba compiles only the surrogates in use
@njit(cache=True, nogil=True, error_model="numpy")
def _backward_sigmoid(b0, b1, bs, h, gs, v0, gvT, gv0, kpart, apart, p, f, c):  # pragma: no cover
    _backward(b0, b1, bs, h, gs, v0, gvT, gv0, kpart, apart, p, f, c, SIGMOID)


@njit(cache=True, nogil=True, error_model="numpy")
def _backward_atan(b0, b1, bs, h, gs, v0, gvT, gv0, kpart, apart, p, f, c):  # pragma: no cover
    _backward(b0, b1, bs, h, gs, v0, gvT, gv0, kpart, apart, p, f, c, ATAN)


@njit(cache=True, nogil=True, error_model="numpy")
def _backward_rectangle(b0, b1, bs, h, gs, v0, gvT, gv0, kpart, apart, p, f, c):  # pragma: no cover
    _backward(b0, b1, bs, h, gs, v0, gvT, gv0, kpart, apart, p, f, c, RECTANGLE)


@njit(cache=True, nogil=True, error_model="numpy")
def _backward_gaussian(b0, b1, bs, h, gs, v0, gvT, gv0, kpart, apart, p, f, c):  # pragma: no cover
    _backward(b0, b1, bs, h, gs, v0, gvT, gv0, kpart, apart, p, f, c, GAUSSIAN)


@njit(cache=True, nogil=True, error_model="numpy")
def _backward_triangle(b0, b1, bs, h, gs, v0, gvT, gv0, kpart, apart, p, f, c):  # pragma: no cover
    _backward(b0, b1, bs, h, gs, v0, gvT, gv0, kpart, apart, p, f, c, TRIANGLE)


_BACKWARD = {SIGMOID: _backward_sigmoid, ATAN: _backward_atan, RECTANGLE: _backward_rectangle,
             GAUSSIAN: _backward_gaussian, TRIANGLE: _backward_triangle}


def _flags(*values: int) -> np.ndarray:
    return np.array([int(v) for v in values], dtype=np.int64)


def _forward_np(x: Tensor, v0: Tensor, tau_or_k: float, cfg: LIFConfig,
                keep_h: bool = False) -> tuple[Tensor, Tensor, Optional[Tensor]]:
    """Run the forward kernel on contiguous ``x [T, N]``, ``v0 [N]``:
    ``(spikes, v_final, H or None)``."""
    T, N = x.shape
    x, v0 = x.detach(), v0.detach()
    s = empty_like(x)  # huge pages for large outputs (see _alloc.py)
    h = empty_like(x) if keep_h else x.new_empty((0, N))
    vout = torch.empty_like(v0)
    dt = x.numpy().dtype
    p = np.array([tau_or_k, cfg.v_reset, cfg.v_threshold], dtype=dt)
    f = _flags(cfg.mode, cfg.decay_input, cfg.hard, cfg.strict)
    bs = block_size(N)
    run_blocks(_forward, -(-N // bs), T * N, bs, x.numpy(), v0.numpy(), s.numpy(), h.numpy(),
               vout.numpy(), p, f, consts(dt))
    return s, vout, (h if keep_h else None)


def _cfg(params: Sequence[float], flags: Sequence[int]) -> LIFConfig:
    tau, thr, vr = params
    mode, decay, hard, strict, detach, code = flags
    return LIFConfig(int(mode), float(tau), float(vr), float(thr), bool(decay), bool(hard),
                     bool(strict), bool(detach), int(code))


def _tau_or_k(cfg: LIFConfig, k: Tensor) -> tuple[LIFConfig, float]:
    """The kernel's ``(config, tau_or_k)``: PLIF reads ``k``; LIF with a power-of-two ``tau``
    multiplies by ``1/tau`` (bit-identical, see :func:`_exact_reciprocal`)."""
    tau_or_k = float(k.detach()) if cfg.mode == 2 else float(cfg.tau)
    if cfg.mode == 1 and _exact_reciprocal(tau_or_k):  # x / tau == x * (1/tau) bit for bit
        return cfg._replace(mode=2), 1.0 / tau_or_k
    return cfg, tau_or_k


def forward(x: Tensor, states: Sequence[Tensor], tparams: Sequence[Tensor], params: Sequence[float],
            flags: Sequence[int], keep: bool) -> list[Tensor]:
    """CPU forward of ``spikeflow::lif``: ``[spikes, v_final, H or [0, N]]`` for contiguous
    ``x [T, N]`` (float32/float64), ``states = [v0 [N]]``, ``tparams = [k, alpha]``."""
    cfg, tau_or_k = _tau_or_k(_cfg(params, flags), tparams[0])
    s, vout, h = _forward_np(x, states[0].to(x.dtype).contiguous(), tau_or_k, cfg, keep_h=keep)
    return [s, vout, h if h is not None else x.new_empty((0, x.shape[1]))]


def backward(gx: Tensor, gs: Tensor, gstates: Sequence[Tensor], states: Sequence[Tensor],
             tparams: Sequence[Tensor], params: Sequence[float], flags: Sequence[int],
             needs: Sequence[bool]) -> list[Tensor]:
    """CPU backward of ``spikeflow::lif``: overwrites ``gx`` (the saved ``H``, or a copy of it)
    with ``dL/dX`` and returns ``[dL/dv0, dL/dk, dL/dalpha]`` (0-dim float64 parameter grads)."""
    cfg, tau_or_k = _tau_or_k(_cfg(params, flags), tparams[0])
    need_k, need_a = bool(needs[0]) and cfg.mode == 2, bool(needs[1])
    T, N = gx.shape
    v0 = states[0].detach().to(gx.dtype).contiguous() if need_k else gx.new_empty(0)
    gs = gs.to(gx.dtype).contiguous()
    gv = gstates[0].to(gx.dtype).contiguous()
    if cfg.mode == 0:
        cx, cv = 1.0, 1.0
    elif cfg.mode == 1:
        cx, cv = (1.0 / tau_or_k if cfg.decay_input else 1.0), 1.0 - 1.0 / tau_or_k
    else:
        cx, cv = (tau_or_k if cfg.decay_input else 1.0), 1.0 - tau_or_k
    dt = gx.numpy().dtype
    p = np.array([tau_or_k, cfg.v_reset, cfg.v_threshold, float(tparams[1].detach()), cx, cv], dtype=dt)
    f = _flags(cfg.mode, cfg.decay_input, cfg.hard, cfg.strict, cfg.detach_reset, cfg.code,
               need_k, need_a)
    bs = block_size(N)
    nblocks = -(-N // bs)
    gv0 = torch.empty(N, dtype=gx.dtype)
    kpart = np.zeros(nblocks)
    apart = np.zeros(nblocks)
    run_blocks(_BACKWARD[cfg.code], nblocks, T * N, bs, gx.numpy(), gs.numpy(), v0.numpy(),
               gv.numpy(), gv0.numpy(), kpart, apart, p, f, consts(dt))
    gk = kpart.sum() / tau_or_k if cfg.decay_input else kpart.sum()
    return [gv0, torch.tensor(gk if need_k else 0.0, dtype=torch.float64),
            torch.tensor(apart.sum() if need_a else 0.0, dtype=torch.float64)]


def _exact_reciprocal(tau: float) -> bool:
    """Whether ``tau`` is a power of two: then ``x / tau`` and ``x * (1 / tau)`` are the same
    correctly rounded value of the same real number, and the kernels multiply (a vector division
    costs about as much as the rest of the forward step). tau = 2 is the usual LIF default."""
    mantissa, exponent = math.frexp(tau)
    return mantissa == 0.5 and -100 < exponent < 100  # 1/tau normal in float32 too
