"""Triton kernels of the STBP decay LIF (He et al. 2020; ASA arch A): forward and fused backward.

Forward, ``v`` the membrane after the previous step's reset (the state; rest = 0)::

    U[t] = decay * v + I[t] ;  S[t] = U >= thr (U > thr when strict) ;  v <- U * (1 - S)

(``functional/decay_lif.py: decay_lif_reference``, same expressions in the same order, float32).
Shapes: ``x [T, N]`` contiguous, ``v0 [N]`` of ``x``'s dtype; storage float32, bfloat16 or float16,
state arithmetic float32 (widened on load, rounded once on store). The forward is launched with
``enable_fp_fusion=False`` so that ``decay * v + I`` is not contracted into an FMA: ``S`` and ``v``
equal the reference's on the same float32 values, bit for bit.

Saved for backward (``keep=True``): ``U [T, N]`` float32, the only ``[T, N]`` tensor (``S`` is
recomputed from it exactly). Backward, reverse time, ``gv`` = gradient reaching ``v`` (a register)::

    gS = dL/dS[t] - gv * U        (the reset path; 0 when detach_reset)
    gU = gS * sg(U - thr) + gv * (1 - S)
    dL/dI[t] = gU ,  gv <- decay * gU ,  dL/dalpha += gS * dF/dalpha

``dL/dalpha`` is summed per neuron in registers, per program by ``tl.sum`` into a float32 buffer,
then by one device reduction (deterministic, no atomics, no host synchronisation).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import triton
import triton.language as tl
from torch import Tensor

from spikeflow.ops._triton._neuron import (block_size, check_scalar, check_sequence, reduce_parts,
                                           saved_buffer)
from spikeflow.ops._triton.surrogate import surrogate

__all__ = ["decay_lif_forward", "decay_lif_backward"]


@triton.jit(do_not_specialize=["T"])
def _decay_lif_forward_kernel(x_ptr, v0_ptr, s_ptr, vout_ptr, u_ptr, T, N, decay, thr,
                              STRICT: tl.constexpr, KEEP: tl.constexpr, BLOCK: tl.constexpr):
    """Neurons ``program_id(0) * BLOCK + [0, BLOCK)``, all ``T`` steps; ``x[t+1]`` loaded ahead."""
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    v = tl.load(v0_ptr + n, mask=mask, other=0.0).to(tl.float32)
    off = n  # int64 element offset of row t
    x_next = tl.load(x_ptr + off, mask=mask & (T > 0), other=0.0)
    for t in range(T):
        xv = x_next.to(tl.float32)
        x_next = tl.load(x_ptr + off + N, mask=mask & (t + 1 < T), other=0.0)
        u = decay * v + xv
        if STRICT:
            sf = (u > thr).to(tl.float32)
        else:
            sf = (u >= thr).to(tl.float32)
        v = u * (1.0 - sf)
        tl.store(s_ptr + off, sf.to(s_ptr.dtype.element_ty), mask=mask)
        if KEEP:
            tl.store(u_ptr + off, u, mask=mask)
        off += N
    tl.store(vout_ptr + n, v.to(vout_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["T"])
def _decay_lif_backward_kernel(u_ptr, gs_ptr, gv_ptr, a_ptr, gx_ptr, gv0_ptr, part_ptr, T, N,
                               decay, thr, STRICT: tl.constexpr, DETACH: tl.constexpr,
                               CODE: tl.constexpr, NEED_A: tl.constexpr, BLOCK: tl.constexpr):
    """Reverse time over neurons ``program_id(0) * BLOCK + [0, BLOCK)``: ``dL/dI`` rows,
    ``dL/dv0`` and the program's partial ``dL/dalpha``; row ``t-1`` loaded one iteration ahead."""
    pid = tl.program_id(0)
    n = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    a = tl.load(a_ptr).to(tl.float32)
    gv = tl.load(gv_ptr + n, mask=mask, other=0.0).to(tl.float32)
    if NEED_A:
        acc_a = tl.zeros([BLOCK], dtype=tl.float32)
    off = (T - 1).to(tl.int64) * N + n  # int64 element offset of row t
    u_next = tl.load(u_ptr + off, mask=mask & (T > 0), other=0.0)
    g_next = tl.load(gs_ptr + off, mask=mask & (T > 0), other=0.0)
    for i in range(T):
        t = T - 1 - i
        uu = u_next
        g = g_next.to(tl.float32)
        u_next = tl.load(u_ptr + off - N, mask=mask & (t > 0), other=0.0)
        g_next = tl.load(gs_ptr + off - N, mask=mask & (t > 0), other=0.0)
        sg, dp = surrogate(uu - thr, a, CODE)
        if STRICT:
            sp = uu > thr
        else:
            sp = uu >= thr
        if DETACH:
            gtot = g
        else:
            gtot = g - gv * uu
        gu = gtot * sg + tl.where(sp, 0.0, gv)
        if NEED_A:
            acc_a += gtot * dp
        tl.store(gx_ptr + off, gu.to(gx_ptr.dtype.element_ty), mask=mask)
        gv = decay * gu
        off -= N
    tl.store(gv0_ptr + n, gv.to(gv0_ptr.dtype.element_ty), mask=mask)
    if NEED_A:
        tl.store(part_ptr + pid, tl.sum(tl.where(mask, acc_a, 0.0), axis=0))


def _unpack(params: Sequence[float], flags: Sequence[int]) -> tuple:
    if len(params) != 2 or len(flags) != 3:
        raise ValueError("decay_lif: expected params [decay, v_threshold] and flags [strict, "
                         f"detach_reset, surrogate_code], got {params!r}, {flags!r}")
    decay, thr = (float(p) for p in params)
    strict, detach, code = (int(f) for f in flags)
    if code not in range(5):
        raise ValueError(f"decay_lif: surrogate code must be 0..4 (spikeflow.ops.codes), "
                         f"got {code}")
    return decay, thr, bool(strict), bool(detach), code


def decay_lif_forward(x: Tensor, v0: Tensor, alpha: Optional[Tensor], params: Sequence[float],
                      flags: Sequence[int], keep: bool, *, block: Optional[int] = None,
                      num_warps: int = 4) -> tuple[Tensor, Tensor, Tensor]:
    """Decay LIF over ``x [T, N]`` from ``v0 [N]``: ``(S [T, N], v_final [N], saved)``.

    ``params = [decay, v_threshold]``, ``flags = [strict, detach_reset, surrogate_code]``;
    ``alpha`` is not used by the forward. ``saved``: ``U`` float32 ``[T, N]`` when ``keep``, else
    ``[0, N]`` (nothing written).
    """
    decay, thr, strict, _, _ = _unpack(params, flags)
    T, N = check_sequence("decay_lif_forward", x, [("v0", v0)])
    s = torch.empty_like(x)
    vout = torch.empty_like(v0)
    saved = saved_buffer(x, keep)
    if N == 0:
        return s, vout, saved
    if T == 0:
        return s, vout.copy_(v0), saved
    bs = block_size(N, block)
    _decay_lif_forward_kernel[(triton.cdiv(N, bs),)](
        x, v0, s, vout, saved if keep else s, T, N, decay, thr, STRICT=strict, KEEP=bool(keep),
        BLOCK=bs, num_warps=num_warps, enable_fp_fusion=False)
    return s, vout, saved


def decay_lif_backward(saved: Tensor, gs: Tensor, gv: Tensor, alpha: Tensor,
                       params: Sequence[float], flags: Sequence[int], need_a: bool, *,
                       block: Optional[int] = None,
                       num_warps: int = 4) -> tuple[Tensor, Tensor, Tensor]:
    """Fused backward from the saved ``U`` (float32 ``[T, N]``): ``(dL/dx, dL/dv0, dL/dalpha)``.

    ``gs [T, N]`` = dL/dS, ``gv [N]`` = dL/dv_final (zeros when no gradient flowed). ``dL/dx`` has
    ``gs``'s dtype, ``dL/dv0`` ``gv``'s; ``dL/dalpha`` is a 0-dim float32 device tensor (zero
    unless ``need_a``).
    """
    decay, thr, strict, detach, code = _unpack(params, flags)
    if saved.dtype != torch.float32 or saved.dim() != 2 or not saved.is_contiguous():
        raise ValueError(f"decay_lif_backward: expected the saved U, contiguous float32 [T, N], "
                         f"got {tuple(saved.shape)} {saved.dtype}")
    T, N = check_sequence("decay_lif_backward", gs, [("gv", gv)])
    if saved.shape != gs.shape or saved.device != gs.device:
        raise ValueError(f"decay_lif_backward: saved {tuple(saved.shape)} and gs "
                         f"{tuple(gs.shape)} differ")
    check_scalar("decay_lif_backward", "alpha", alpha, gs.device)
    need_a = bool(need_a)
    gx = torch.empty_like(gs)
    gv0 = torch.empty_like(gv)
    bs = block_size(N, block)
    grid = triton.cdiv(N, bs)
    parts = torch.empty((1, max(grid, 1)), dtype=torch.float32, device=gs.device)
    if N == 0 or T == 0:
        gv0.copy_(gv)
        parts.zero_()
    else:
        _decay_lif_backward_kernel[(grid,)](
            saved, gs, gv, alpha, gx, gv0, parts, T, N, decay, thr, STRICT=strict, DETACH=detach,
            CODE=code, NEED_A=need_a, BLOCK=bs, num_warps=num_warps)
    return gx, gv0, *reduce_parts(parts, (need_a,))
