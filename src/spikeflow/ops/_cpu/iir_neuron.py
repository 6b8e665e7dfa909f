"""Fused CPU kernel of the snn-iir neuron (Fang et al., IJCAI 2020) with a hand-written backward.

Forward, state ``(v, r)`` (rest = 0), ``a = exp(-1/tau_m)``, ``m = a`` with the membrane filter
else 0::

    V[t] = m * v + I[t] - r ;  S[t] = V > thr (V >= thr unless strict) ;  r <- a * r + reset_v * S

Backward, ``Gv``/``Gr`` = gradients reaching ``V[t]``/``r[t]`` from later steps::

    gS = dL/dS[t] + Gr * reset_v      (0 when detach_reset)
    gV = Gv + gS * sg(V - thr) ;  dL/dI[t] = gV ;  dL/dalpha += gS * dF/dalpha
    Gv <- m * gV ;  Gr <- a * Gr - gV

The forward writes ``V`` when a gradient is needed; it is the only tensor saved (as ``H`` in
``_kernels/lif.py``, which explains why ``V`` is saved rather than recomputed from ``x``); the
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
                                                    surrogate_block)
from spikeflow.ops._cpu._runtime import block_size, run_blocks

__all__ = ["IIRConfig", "forward", "backward"]


class IIRConfig(NamedTuple):
    m: float  # membrane decay (0 without the membrane filter)
    a: float  # reset-trace decay exp(-1/tau_m)
    v_threshold: float
    reset_v: float
    strict: bool
    detach_reset: bool
    code: int


@njit(cache=True, nogil=True, error_model="numpy")
def _step(xt, v, r, vt, st, n, m, a, thr, rv, one, zero, strict):  # pragma: no cover - compiled
    """One time step of a block: membrane ``vt``/``v``, spikes ``st``, reset trace ``r``."""
    for i in range(n):
        vv = m * v[i] + xt[i] - r[i]
        vt[i] = vv
        sp = (vv > thr) | ((vv == thr) & (not strict))
        st[i] = one if sp else zero
        v[i] = vv
        r[i] = a * r[i] + (rv if sp else zero)


@njit(cache=True, nogil=True, error_model="numpy")
def _forward(b0, b1, bs, x, v0, r0, s, vs, vout, rout, p, f, c):  # pragma: no cover - compiled
    """Blocks ``[b0, b1)``: spikes into ``s``, ``V`` into ``vs`` (``[T, N]``, or ``[0, N]`` when
    not needed: then ``V`` goes to a scratch row)."""
    T, N = x.shape
    m, a, thr, rv = p[0], p[1], p[2], p[3]
    one, zero = c[ONE], c[ZERO]
    strict = f[0] != 0
    keep = vs.shape[0] == T
    sc = scratch(3, bs, x.dtype)
    v, r, dump = sc[0, :bs], sc[1, :bs], sc[2, :bs]
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        v[:n] = v0[lo:hi]
        r[:n] = r0[lo:hi]
        for t in range(T):
            vt = vs[t, lo:hi] if keep else dump[:n]
            _step(x[t, lo:hi], v, r, vt, s[t, lo:hi], n, m, a, thr, rv, one, zero, strict)
        vout[lo:hi] = v[:n]
        rout[lo:hi] = r[:n]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=GRAD_MATH)
def _backward(b0, b1, bs, vs, gs, gvT, grT, gv0, gr0, apart, p, f, c):  # pragma: no cover
    """Blocks ``[b0, b1)`` in reverse time from the saved ``V`` (``vs``, ``[T, N]``), which
    becomes ``dL/dI`` row by row."""
    T, N = vs.shape
    m, a, thr, rv, sa = p[0], p[1], p[2], p[3], p[4]
    zero = c[ZERO]
    detach, code, need_a = f[1] != 0, f[2], f[3]
    sc = scratch(7, bs, vs.dtype)
    gv, gr, acc_a = sc[0, :bs], sc[1, :bs], sc[2, :bs]
    z, e, sg, dp = sc[3, :bs], sc[4, :bs], sc[5, :bs], sc[6, :bs]
    for b in range(b0, b1):
        lo = b * bs
        hi = min(lo + bs, N)
        n = hi - lo
        gv[:n] = gvT[lo:hi]
        gr[:n] = grT[lo:hi]
        acc_a[:] = zero
        for t in range(T - 1, -1, -1):
            gst = gs[t, lo:hi]
            gxt = vs[t, lo:hi]  # dL/dI[t] over V[t], read just before (see _inplace.py)
            surrogate_block(gxt, thr, n, code, sa, c, z, e, sg, dp)
            if need_a:
                for i in range(n):
                    gri = gr[i]
                    gtot = gst[i] + (zero if detach else gri * rv)
                    gvt = gv[i] + gtot * sg[i]
                    acc_a[i] += gtot * dp[i]
                    gxt[i] = gvt
                    gv[i] = m * gvt
                    gr[i] = a * gri - gvt
            else:
                for i in range(n):
                    gri = gr[i]
                    gvt = gv[i] + (gst[i] + (zero if detach else gri * rv)) * sg[i]
                    gxt[i] = gvt
                    gv[i] = m * gvt
                    gr[i] = a * gri - gvt
        gv0[lo:hi] = gv[:n]
        gr0[lo:hi] = gr[:n]
        ta = 0.0
        for i in range(n):
            ta += acc_a[i]
        apart[b] = ta


def _forward_np(x: Tensor, v0: Tensor, r0: Tensor, cfg: IIRConfig,
                keep_v: bool = False) -> tuple[Tensor, Tensor, Tensor, Optional[Tensor]]:
    """``(spikes, v_final, r_final, V or None)`` for contiguous ``x [T, N]``, ``(v0, r0) [N]``."""
    T, N = x.shape
    x, v0, r0 = x.detach(), v0.detach(), r0.detach()
    s = empty_like(x)  # huge pages for large outputs (see _alloc.py)
    vs = empty_like(x) if keep_v else x.new_empty((0, N))
    vout = torch.empty_like(v0)
    rout = torch.empty_like(r0)
    dt = x.numpy().dtype
    p = np.array([cfg.m, cfg.a, cfg.v_threshold, cfg.reset_v], dtype=dt)
    f = np.array([int(cfg.strict)], dtype=np.int64)
    bs = block_size(N)
    run_blocks(_forward, -(-N // bs), T * N, bs, x.numpy(), v0.numpy(), r0.numpy(), s.numpy(),
               vs.numpy(), vout.numpy(), rout.numpy(), p, f, consts(dt))
    return s, vout, rout, (vs if keep_v else None)


def _cfg(params: Sequence[float], flags: Sequence[int]) -> IIRConfig:
    m, a, thr, reset_v = params
    strict, detach, code = flags
    return IIRConfig(float(m), float(a), float(thr), float(reset_v), bool(strict), bool(detach),
                     int(code))


def forward(x: Tensor, states: Sequence[Tensor], tparams: Sequence[Tensor], params: Sequence[float],
            flags: Sequence[int], keep: bool) -> list[Tensor]:
    """CPU forward of ``spikeflow::iir_neuron``: ``[spikes, v_final, r_final, V or [0, N]]`` for
    contiguous ``x [T, N]``, ``states = [v0, r0]``, ``tparams = [alpha]``."""
    v0, r0 = (t.to(x.dtype).contiguous() for t in states)
    s, vout, rout, vs = _forward_np(x, v0, r0, _cfg(params, flags), keep_v=keep)
    return [s, vout, rout, vs if vs is not None else x.new_empty((0, x.shape[1]))]


def backward(gx: Tensor, gs: Tensor, gstates: Sequence[Tensor], states: Sequence[Tensor],
             tparams: Sequence[Tensor], params: Sequence[float], flags: Sequence[int],
             needs: Sequence[bool]) -> list[Tensor]:
    """CPU backward: overwrites ``gx`` (the saved ``V`` or a copy) with ``dL/dI``; returns
    ``[dL/dv0, dL/dr0, dL/dalpha]``."""
    cfg = _cfg(params, flags)
    need_a = bool(needs[0])
    T, N = gx.shape
    gs = gs.to(gx.dtype).contiguous()
    gv, gr = (g.to(gx.dtype).contiguous() for g in gstates)
    dt = gx.numpy().dtype
    p = np.array([cfg.m, cfg.a, cfg.v_threshold, cfg.reset_v, float(tparams[0].detach())], dtype=dt)
    f = np.array([int(cfg.strict), int(cfg.detach_reset), cfg.code, int(need_a)], dtype=np.int64)
    bs = block_size(N)
    nblocks = -(-N // bs)
    gv0 = torch.empty(N, dtype=gx.dtype)
    gr0 = torch.empty(N, dtype=gx.dtype)
    apart = np.zeros(nblocks)
    run_blocks(_backward, nblocks, T * N, bs, gx.numpy(), gs.numpy(), gv.numpy(), gr.numpy(),
               gv0.numpy(), gr0.numpy(), apart, p, f, consts(dt))
    return [gv0, gr0, torch.tensor(apart.sum() if need_a else 0.0, dtype=torch.float64)]
