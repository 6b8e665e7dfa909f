"""Triton kernels of the LIF family (IF, LIF, PLIF), forward and fused backward: the CUDA impl.

Dynamics per step, ``vr`` = v_reset (0.0 for a soft reset), state ``V`` (rest = 0)::

    H[t] = V + X                         IF                         (mode 0)
    H[t] = V + (X - (V - vr)) / tau      LIF, decay_input           (mode 1)
    H[t] = V - (V - vr) / tau + X        LIF, not decay_input
    H[t] = V + (X - (V - vr)) * k        PLIF (k = 1/tau = sigmoid(w), a tensor; mode 2), likewise
    S[t] = H >= thr   (H > thr when strict)
    V    = vr if S else H   (hard)   |   H - thr if S else H   (soft)

Shapes: ``x [T, N]`` contiguous, ``v0 [N]`` of ``x``'s dtype; storage float32, bfloat16 or float16,
state arithmetic float32 (``x`` and ``v0`` are widened on load; ``S`` and ``V`` rounded once to the
storage dtype on store). ``k`` (PLIF) and ``alpha`` (the surrogate parameter, learnable or not) are
0-dim float tensors (float32, or float64 as the op passes a fixed parameter) read by the kernels
through their pointer and rounded to float32 there: no host synchronisation, no conversion kernel.

Forward bit-exactness: ``H`` is the reference loop's expression (``functional/lif.py:
lif_reference``) evaluated in the same order, in float32, so ``S`` (and ``V``) equal the reference's
on the same float32 values. Two things the GPU would otherwise change are switched off: the forward
is launched with ``enable_fp_fusion=False`` (no mul+add -> FMA contraction, e.g. PLIF's ``(..) * k +
V``), and the division by ``tau`` is ``tl.div_rn`` (IEEE round-to-nearest; Triton's ``/`` is the
approximate ``div.full.f32``). When ``tau`` is a power of two the kernel multiplies by ``1/tau``
instead, which is the same correctly rounded value. (Note: torch's CUDA ``tensor / python_float``
multiplies by the float32 reciprocal; for a ``tau`` that is not a power of two the CUDA *eager*
reference loop can therefore differ in the last bit from this kernel, the CPU reference and the
numba kernel, which all divide.) The threshold test compares ``H`` with ``thr`` directly, the same
predicate as the reference's ``H - thr >= 0``.

Saved for backward (``keep=True``): ``H [T, N]`` in float32 (whatever the storage dtype), the only
``[T, N]`` tensor; ``S`` and ``V[t-1]`` are recomputed from it bit for bit. Backward, reverse time,
``gV`` = gradient reaching ``V[t]`` (kept in a register)::

    gS  = dL/dS[t] + gV * dV/dS      (dV/dS = vr - H hard, -thr soft; 0 if detach_reset)
    gH  = gS * sg(H - thr) + gV * dV/dH|S          (dV/dH|S = 1 - S hard, 1 soft)
    dL/dX[t] = gH * cx,  gV <- gH * cv     (cx = 1/tau or k with decay_input, else 1; cv = 1 - 1/tau
                                           or 1 - k; IF: cx = cv = 1)
    dL/dalpha += gS * dF/dalpha            (learnable surrogate parameter)
    dL/dk     += gH * (H - V[t-1]) / k  (decay_input)  or  gH * (vr - V[t-1])   (PLIF)

``V[t-1]`` comes from ``H[t-1]`` (read one step ahead anyway) or ``v0`` at ``t = 0``. ``dL/dk`` and
``dL/dalpha`` are summed per neuron in registers, per program by ``tl.sum`` (PLIF with decay_input:
then divided by ``k``) into a ``[2, programs]`` float32 buffer, then by one device reduction per
needed parameter (``torch.sum`` over the programs; deterministic, no atomics, no host sync).

Checked on one H200 (torch 2.11, triton 3.6): spikes and final states equal the CPU reference loop's
in every variant tried, gradients within 1e-6 relative of a float64 oracle; LIF forward + backward,
T = 32, 16 x 65,536 neurons: 0.214 ms float32 (~3.8 TB/s over the six [T, N] streams), 0.146 ms
bfloat16; PLIF with dL/dk about the same when the launch is not host-bound.

Module import needs ``triton``; launching needs CUDA tensors, or CPU tensors with
``TRITON_INTERPRET=1`` set before this module is first imported (the tests do so).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import triton
import triton.language as tl
from torch import Tensor

from spikeflow.ops._triton._neuron import (block_size, check_scalar, check_sequence, reduce_parts,
                                           saved_buffer)
from spikeflow.ops._triton.surrogate import surrogate

__all__ = ["lif_forward", "lif_backward"]

# LEAK (constexpr): how the charge leaks
# none | / tau (IEEE) | * scalar 1/tau (tau a power of two) | * k read from its tensor (PLIF)
_IF, _DIV, _MUL, _MUL_K = 0, 1, 2, 3


@triton.jit
def _charge(v, xv, tau_or_k, vr, LEAK: tl.constexpr, DECAY: tl.constexpr):
    """``H`` from ``V`` and ``X``: the reference loop's expression, evaluated in the same order."""
    if LEAK == 0:
        h = v + xv
    elif LEAK == 1:
        if DECAY:
            h = v + tl.div_rn(xv - (v - vr), tau_or_k)
        else:
            h = v - tl.div_rn(v - vr, tau_or_k) + xv
    else:
        if DECAY:
            h = v + (xv - (v - vr)) * tau_or_k
        else:
            h = v - (v - vr) * tau_or_k + xv
    return h


@triton.jit
def _fire(h, thr, vr, HARD: tl.constexpr, STRICT: tl.constexpr):
    """``(S, V)`` from ``H``: the spike (a boolean) and the membrane after the reset."""
    if STRICT:
        sp = h > thr
    else:
        sp = h >= thr
    if HARD:
        v = tl.where(sp, vr, h)
    else:
        v = tl.where(sp, h - thr, h)
    return sp, v


@triton.jit(do_not_specialize=["T"])
def _lif_forward_kernel(x_ptr, v0_ptr, k_ptr, s_ptr, vout_ptr, h_ptr, T, N, tau_or_k, thr, vr,
                        LEAK: tl.constexpr, DECAY: tl.constexpr, HARD: tl.constexpr,
                        STRICT: tl.constexpr, KEEP: tl.constexpr, BLOCK: tl.constexpr):
    """Neurons ``program_id(0) * BLOCK + [0, BLOCK)``, all ``T`` steps: ``S`` (and ``H`` when
    ``KEEP``) out, the final ``V``; ``x[t+1]`` is loaded one iteration ahead."""
    n = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    if LEAK == 3:
        lk = tl.load(k_ptr).to(tl.float32)
    else:
        lk = tau_or_k
    v = tl.load(v0_ptr + n, mask=mask, other=0.0).to(tl.float32)
    off = n  # int64 element offset of row t
    x_next = tl.load(x_ptr + off, mask=mask & (T > 0), other=0.0)
    for t in range(T):
        xv = x_next.to(tl.float32)
        x_next = tl.load(x_ptr + off + N, mask=mask & (t + 1 < T), other=0.0)
        h = _charge(v, xv, lk, vr, LEAK, DECAY)
        sp, v = _fire(h, thr, vr, HARD, STRICT)
        tl.store(s_ptr + off, sp.to(tl.float32).to(s_ptr.dtype.element_ty), mask=mask)
        if KEEP:
            tl.store(h_ptr + off, h, mask=mask)
        off += N
    tl.store(vout_ptr + n, v.to(vout_ptr.dtype.element_ty), mask=mask)


@triton.jit(do_not_specialize=["T"])
def _lif_backward_kernel(h_ptr, gs_ptr, gv_ptr, v0_ptr, k_ptr, a_ptr, gx_ptr, gv0_ptr, part_ptr,
                         T, N, thr, vr, cx, cv,
                         LEAK: tl.constexpr, DECAY: tl.constexpr, HARD: tl.constexpr,
                         STRICT: tl.constexpr, DETACH: tl.constexpr, CODE: tl.constexpr,
                         NEED_K: tl.constexpr, NEED_A: tl.constexpr, BLOCK: tl.constexpr):
    """Reverse time over neurons ``program_id(0) * BLOCK + [0, BLOCK)``: ``dL/dX`` rows, ``dL/dv0``,
    per-program partial sums of ``dL/dk`` (``part[0]``) and ``dL/dalpha`` (``part[1]``);
    ``H[t-1]`` and ``dL/dS[t-1]`` are loaded one iteration ahead."""
    pid = tl.program_id(0)
    n = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    a = tl.load(a_ptr).to(tl.float32)
    if LEAK == 3:
        kk = tl.load(k_ptr).to(tl.float32)
        cvv = 1.0 - kk
        if DECAY:
            cxv = kk
        else:
            cxv = cx
    else:
        cxv = cx
        cvv = cv
    gv = tl.load(gv_ptr + n, mask=mask, other=0.0).to(tl.float32)
    if NEED_K:
        v0 = tl.load(v0_ptr + n, mask=mask, other=0.0).to(tl.float32)
        acc_k = tl.zeros([BLOCK], dtype=tl.float32)
    if NEED_A:
        acc_a = tl.zeros([BLOCK], dtype=tl.float32)
    off = (T - 1).to(tl.int64) * N + n  # int64 element offset of row t
    h_next = tl.load(h_ptr + off, mask=mask & (T > 0), other=0.0)
    g_next = tl.load(gs_ptr + off, mask=mask & (T > 0), other=0.0)
    for i in range(T):
        t = T - 1 - i
        hh = h_next
        g = g_next.to(tl.float32)
        h_next = tl.load(h_ptr + off - N, mask=mask & (t > 0), other=0.0)  # H[t-1]
        g_next = tl.load(gs_ptr + off - N, mask=mask & (t > 0), other=0.0)
        sg, dp = surrogate(hh - thr, a, CODE)
        if STRICT:
            sp = hh > thr
        else:
            sp = hh >= thr
        if DETACH:
            gtot = g
        elif HARD:
            gtot = g + gv * (vr - hh)
        else:
            gtot = g - gv * thr
        if HARD:
            gh = gtot * sg + tl.where(sp, 0.0, gv)
        else:
            gh = gtot * sg + gv
        if NEED_A:
            acc_a += gtot * dp
        if NEED_K:
            _, vprev = _fire(h_next, thr, vr, HARD, STRICT)
            vq = tl.where(t > 0, vprev, v0)  # V[t-1]
            if DECAY:
                acc_k += gh * (hh - vq)
            else:
                acc_k += gh * (vr - vq)
        tl.store(gx_ptr + off, (gh * cxv).to(gx_ptr.dtype.element_ty), mask=mask)
        gv = gh * cvv
        off -= N
    tl.store(gv0_ptr + n, gv.to(gv0_ptr.dtype.element_ty), mask=mask)
    if NEED_K:
        part_k = tl.sum(tl.where(mask, acc_k, 0.0), axis=0)
        if DECAY:  # dH/dk = (H - V[t-1]) / k
            part_k = part_k / kk
        tl.store(part_ptr + pid, part_k)
    if NEED_A:
        tl.store(part_ptr + tl.num_programs(0) + pid, tl.sum(tl.where(mask, acc_a, 0.0), axis=0))


def _leak(mode: int, tau: float) -> tuple[int, float]:
    """``(LEAK, scalar)``: how the kernels apply the leak of ``mode`` (see the module docstring)."""
    if mode == 0:
        return _IF, 1.0
    if mode == 2:
        return _MUL_K, 1.0
    if mode != 1:
        raise ValueError(f"lif: mode must be 0 (IF), 1 (LIF) or 2 (PLIF), got {mode!r}")
    mantissa, exponent = math.frexp(tau)
    if mantissa == 0.5 and -100 < exponent < 100:  # x / 2^e == x * 2^-e, bit for bit
        return _MUL, 1.0 / tau
    return _DIV, float(tau)


def _unpack(params: Sequence[float], flags: Sequence[int]) -> tuple:
    if len(params) != 3 or len(flags) != 6:
        raise ValueError("lif: expected params [tau, v_threshold, v_reset] and flags [mode, "
                         "decay_input, hard, strict, detach_reset, surrogate_code], got "
                         f"{params!r}, {flags!r}")
    tau, thr, vr = (float(p) for p in params)
    mode, decay, hard, strict, detach, code = (int(f) for f in flags)
    if code not in range(5):
        raise ValueError(f"lif: surrogate code must be 0..4 (spikeflow.ops.codes), got {code}")
    return tau, thr, vr, mode, bool(decay), bool(hard), bool(strict), bool(detach), code


def lif_forward(x: Tensor, v0: Tensor, k: Optional[Tensor], alpha: Optional[Tensor],
                params: Sequence[float], flags: Sequence[int], keep: bool, *,
                block: Optional[int] = None, num_warps: int = 4) -> tuple[Tensor, Tensor, Tensor]:
    """LIF/PLIF/IF over ``x [T, N]`` from ``v0 [N]``: ``(S [T, N], V_final [N], saved)``.

    ``params = [tau, v_threshold, v_reset]`` (``v_reset`` 0.0 for a soft reset; ``tau`` used by
    mode 1 only); ``flags = [mode, decay_input, hard, strict, detach_reset, surrogate_code]``.
    ``k`` (mode 2): 0-dim float tensor ``1/tau``; ``alpha`` is not used by the forward.
    ``saved``: ``H`` float32 ``[T, N]`` when ``keep``, else ``[0, N]`` (nothing written).
    """
    tau, thr, vr, mode, decay, hard, strict, _, _ = _unpack(params, flags)
    T, N = check_sequence("lif_forward", x, [("v0", v0)])
    leak_kind, tau_or_k = _leak(mode, tau)
    if leak_kind == _MUL_K:
        check_scalar("lif_forward", "k", k, x.device)
    s = torch.empty_like(x)
    vout = torch.empty_like(v0)
    saved = saved_buffer(x, keep)
    if N == 0:
        return s, vout, saved
    if T == 0:
        return s, vout.copy_(v0), saved
    bs = block_size(N, block)
    _lif_forward_kernel[(triton.cdiv(N, bs),)](
        x, v0, k if leak_kind == _MUL_K else v0, s, vout, saved if keep else s, T, N, tau_or_k, thr,
        vr, LEAK=leak_kind, DECAY=decay, HARD=hard, STRICT=strict, KEEP=bool(keep), BLOCK=bs,
        num_warps=num_warps, enable_fp_fusion=False)
    return s, vout, saved


def lif_backward(saved: Tensor, gs: Tensor, gv: Tensor, v0: Tensor, k: Optional[Tensor],
                 alpha: Tensor, params: Sequence[float], flags: Sequence[int], need_k: bool,
                 need_a: bool, *, block: Optional[int] = None,
                 num_warps: int = 4) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Fused backward from the saved ``H`` (float32 ``[T, N]``):
    ``(dL/dx, dL/dv0, dL/dk, dL/dalpha)``.

    ``gs [T, N]`` = dL/dS and ``gv [N]`` = dL/dV_final (zeros when no gradient flowed). ``dL/dx``
    has ``gs``'s dtype, ``dL/dv0`` ``v0``'s; ``dL/dk`` (PLIF, ``need_k``) and ``dL/dalpha``
    (``need_a``) are 0-dim float32 device tensors, zero when not needed.
    """
    tau, thr, vr, mode, decay, hard, strict, detach, code = _unpack(params, flags)
    leak_kind, _ = _leak(mode, tau)
    if saved.dtype != torch.float32 or saved.dim() != 2 or not saved.is_contiguous():
        raise ValueError(f"lif_backward: expected the saved H, contiguous float32 [T, N], got "
                         f"{tuple(saved.shape)} {saved.dtype}")
    T, N = check_sequence("lif_backward", gs, [("gv", gv), ("v0", v0)])
    if saved.shape != gs.shape or saved.device != gs.device:
        raise ValueError(f"lif_backward: saved {tuple(saved.shape)} and gs {tuple(gs.shape)} "
                         "differ")
    need_k = bool(need_k) and leak_kind == _MUL_K
    need_a = bool(need_a)
    check_scalar("lif_backward", "alpha", alpha, gs.device)
    if leak_kind == _MUL_K:
        check_scalar("lif_backward", "k", k, gs.device)
    if mode == 1:
        cx, cv = (1.0 / tau if decay else 1.0), 1.0 - 1.0 / tau
    else:  # IF; PLIF reads k in the kernel
        cx, cv = 1.0, 1.0
    gx = torch.empty_like(gs)
    gv0 = torch.empty_like(v0)
    bs = block_size(N, block)
    grid = triton.cdiv(N, bs)
    parts = torch.empty((2, max(grid, 1)), dtype=torch.float32, device=gs.device)
    if N == 0 or T == 0:
        gv0.copy_(gv)
        parts.zero_()
    else:
        _lif_backward_kernel[(grid,)](
            saved, gs, gv, v0, k if leak_kind == _MUL_K else alpha, alpha, gx, gv0, parts, T, N,
            thr, vr, cx, cv, LEAK=leak_kind, DECAY=decay, HARD=hard, STRICT=strict, DETACH=detach,
            CODE=code, NEED_K=need_k, NEED_A=need_a, BLOCK=bs, num_warps=num_warps)
    return (gx, gv0, *reduce_parts(parts, (need_k, need_a)))
