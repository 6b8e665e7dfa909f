"""Triton kernels of the snn-iir neuron (Fang et al., IJCAI 2020): forward and fused backward.

Forward, state ``(v, r)`` (rest = 0), ``a = exp(-1/tau_m)``, ``m = a`` with the membrane filter
else 0::

    V[t] = m * v + I[t] - r ;  S[t] = V >= thr (V > thr when strict) ;  r <- a * r + reset_v * S

(``functional/iir_neuron.py: iir_neuron_reference``, same expressions in the same order, float32).
Shapes: ``x [T, N]`` contiguous, ``v0, r0 [N]`` of ``x``'s dtype; storage float32, bfloat16 or
float16, state arithmetic float32 (widened on load, rounded once on store). The forward is launched
with ``enable_fp_fusion=False`` (no FMA contraction of ``m * v + I`` or ``a * r + reset_v * S``):
``S``, ``v`` and ``r`` equal the reference's on the same float32 values, bit for bit.

Saved for backward (``keep=True``): ``V [T, N]`` float32, the only ``[T, N]`` tensor. Backward,
reverse time, ``Gv``/``Gr`` = gradients reaching ``V[t]``/``r[t]`` from later steps (registers)::

    gS = dL/dS[t] + Gr * reset_v      (0 when detach_reset)
    gV = Gv + gS * sg(V - thr) ;  dL/dI[t] = gV ;  dL/dalpha += gS * dF/dalpha
    Gv <- m * gV ;  Gr <- a * Gr - gV

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

__all__ = ["iir_neuron_forward", "iir_neuron_backward"]


@triton.jit(do_not_specialize=["T"])
def _iir_forward_kernel(x_ptr, v0_ptr, r0_ptr, s_ptr, vout_ptr, rout_ptr, vs_ptr, T, N, m, a, thr,
                        rv, STRICT: tl.constexpr, KEEP: tl.constexpr, BLOCK: tl.constexpr):
    """Neurons ``program_id(0) * BLOCK + [0, BLOCK)``, all ``T`` steps; ``x[t+1]`` loaded ahead."""
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    v = tl.load(v0_ptr + n, mask=mask, other=0.0).to(tl.float32)
    r = tl.load(r0_ptr + n, mask=mask, other=0.0).to(tl.float32)
    off = n  # int64 element offset of row t
    x_next = tl.load(x_ptr + off, mask=mask & (T > 0), other=0.0)
    for t in range(T):
        xv = x_next.to(tl.float32)
        x_next = tl.load(x_ptr + off + N, mask=mask & (t + 1 < T), other=0.0)
        v = m * v + xv - r
        if STRICT:
            sf = (v > thr).to(tl.float32)
        else:
            sf = (v >= thr).to(tl.float32)
        r = a * r + rv * sf
        tl.store(s_ptr + off, sf.to(s_ptr.dtype.element_ty), mask=mask)
        if KEEP:
            tl.store(vs_ptr + off, v, mask=mask)
        off += N
    tl.store(vout_ptr + n, v.to(vout_ptr.dtype.element_ty), mask=mask)
    tl.store(rout_ptr + n, r.to(rout_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["T"])
def _iir_backward_kernel(vs_ptr, gs_ptr, gv_ptr, gr_ptr, a_ptr, gx_ptr, gv0_ptr, gr0_ptr, part_ptr,
                         T, N, m, a, thr, rv, DETACH: tl.constexpr, CODE: tl.constexpr,
                         NEED_A: tl.constexpr, BLOCK: tl.constexpr):
    """Reverse time over neurons ``program_id(0) * BLOCK + [0, BLOCK)``: ``dL/dI`` rows,
    ``dL/dv0``, ``dL/dr0`` and the program's partial ``dL/dalpha``; row ``t-1`` loaded ahead."""
    pid = tl.program_id(0)
    n = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    sa = tl.load(a_ptr).to(tl.float32)
    gv = tl.load(gv_ptr + n, mask=mask, other=0.0).to(tl.float32)
    gr = tl.load(gr_ptr + n, mask=mask, other=0.0).to(tl.float32)
    if NEED_A:
        acc_a = tl.zeros([BLOCK], dtype=tl.float32)
    off = (T - 1).to(tl.int64) * N + n  # int64 element offset of row t
    v_next = tl.load(vs_ptr + off, mask=mask & (T > 0), other=0.0)
    g_next = tl.load(gs_ptr + off, mask=mask & (T > 0), other=0.0)
    for i in range(T):
        t = T - 1 - i
        vv = v_next
        g = g_next.to(tl.float32)
        v_next = tl.load(vs_ptr + off - N, mask=mask & (t > 0), other=0.0)
        g_next = tl.load(gs_ptr + off - N, mask=mask & (t > 0), other=0.0)
        sg, dp = surrogate(vv - thr, sa, CODE)
        if DETACH:
            gtot = g
        else:
            gtot = g + gr * rv
        gvt = gv + gtot * sg
        if NEED_A:
            acc_a += gtot * dp
        tl.store(gx_ptr + off, gvt.to(gx_ptr.dtype.element_ty), mask=mask)
        gv = m * gvt
        gr = a * gr - gvt
        off -= N
    tl.store(gv0_ptr + n, gv.to(gv0_ptr.dtype.element_ty), mask=mask)
    tl.store(gr0_ptr + n, gr.to(gr0_ptr.dtype.element_ty), mask=mask)
    if NEED_A:
        tl.store(part_ptr + pid, tl.sum(tl.where(mask, acc_a, 0.0), axis=0))


def _unpack(params: Sequence[float], flags: Sequence[int]) -> tuple:
    if len(params) != 4 or len(flags) != 3:
        raise ValueError("iir_neuron: expected params [m, a, v_threshold, reset_v] and flags "
                         f"[strict, detach_reset, surrogate_code], got {params!r}, {flags!r}")
    m, a, thr, rv = (float(p) for p in params)
    strict, detach, code = (int(f) for f in flags)
    if code not in range(5):
        raise ValueError(f"iir_neuron: surrogate code must be 0..4 (spikeflow.ops.codes), "
                         f"got {code}")
    return m, a, thr, rv, bool(strict), bool(detach), code


def iir_neuron_forward(x: Tensor, v0: Tensor, r0: Tensor, alpha: Optional[Tensor],
                       params: Sequence[float], flags: Sequence[int], keep: bool, *,
                       block: Optional[int] = None,
                       num_warps: int = 4) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """snn-iir neuron over ``x [T, N]`` from ``(v0, r0) [N]``: ``(S, v_final, r_final, saved)``.

    ``params = [m, a, v_threshold, reset_v]``, ``flags = [strict, detach_reset, surrogate_code]``;
    ``alpha`` is not used by the forward. ``saved``: ``V`` float32 ``[T, N]`` when ``keep``, else
    ``[0, N]`` (nothing written).
    """
    m, a, thr, rv, strict, _, _ = _unpack(params, flags)
    T, N = check_sequence("iir_neuron_forward", x, [("v0", v0), ("r0", r0)])
    s = torch.empty_like(x)
    vout = torch.empty_like(v0)
    rout = torch.empty_like(r0)
    saved = saved_buffer(x, keep)
    if N == 0:
        return s, vout, rout, saved
    if T == 0:
        return s, vout.copy_(v0), rout.copy_(r0), saved
    bs = block_size(N, block)
    _iir_forward_kernel[(triton.cdiv(N, bs),)](
        x, v0, r0, s, vout, rout, saved if keep else s, T, N, m, a, thr, rv, STRICT=strict,
        KEEP=bool(keep), BLOCK=bs, num_warps=num_warps, enable_fp_fusion=False)
    return s, vout, rout, saved


def iir_neuron_backward(saved: Tensor, gs: Tensor, gv: Tensor, gr: Tensor, alpha: Tensor,
                        params: Sequence[float], flags: Sequence[int], need_a: bool, *,
                        block: Optional[int] = None,
                        num_warps: int = 4) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Fused backward from the saved ``V`` (float32 ``[T, N]``):
    ``(dL/dx, dL/dv0, dL/dr0, dL/dalpha)``.

    ``gs [T, N]`` = dL/dS, ``gv``, ``gr [N]`` = dL/dv_final, dL/dr_final (zeros when no gradient
    flowed). ``dL/dx`` has ``gs``'s dtype, ``dL/dv0`` ``gv``'s, ``dL/dr0`` ``gr``'s; ``dL/dalpha``
    is a 0-dim float32 device tensor (zero unless ``need_a``).
    """
    m, a, thr, rv, _, detach, code = _unpack(params, flags)
    if saved.dtype != torch.float32 or saved.dim() != 2 or not saved.is_contiguous():
        raise ValueError(f"iir_neuron_backward: expected the saved V, contiguous float32 [T, N], "
                         f"got {tuple(saved.shape)} {saved.dtype}")
    T, N = check_sequence("iir_neuron_backward", gs, [("gv", gv), ("gr", gr)])
    if saved.shape != gs.shape or saved.device != gs.device:
        raise ValueError(f"iir_neuron_backward: saved {tuple(saved.shape)} and gs "
                         f"{tuple(gs.shape)} differ")
    check_scalar("iir_neuron_backward", "alpha", alpha, gs.device)
    need_a = bool(need_a)
    gx = torch.empty_like(gs)
    gv0 = torch.empty_like(gv)
    gr0 = torch.empty_like(gr)
    bs = block_size(N, block)
    grid = triton.cdiv(N, bs)
    parts = torch.empty((1, max(grid, 1)), dtype=torch.float32, device=gs.device)
    if N == 0 or T == 0:
        gv0.copy_(gv)
        gr0.copy_(gr)
        parts.zero_()
    else:
        _iir_backward_kernel[(grid,)](
            saved, gs, gv, gr, alpha, gx, gv0, gr0, parts, T, N, m, a, thr, rv, DETACH=detach,
            CODE=code, NEED_A=need_a, BLOCK=bs, num_warps=num_warps)
    return gx, gv0, gr0, *reduce_parts(parts, (need_a,))
