"""Triton kernels of the snn-iir synapse filters (the CUDA implementation), with a fused backward.

One second-order IIR filter covers every synapse filter of ``functional/synapse.py``::

    psp[t] = a1 psp[t-1] + a2 psp[t-2] + b1 x[t]        (low pass: a2 = 0, b1 = 1)

Shapes: ``x [T, B, N]``, per-feature coefficients ``a1, a2, b1 [N]``, initial state ``p1 = psp[-1]``,
``p2 = psp[-2]`` ``[B, N]``; all contiguous and on one device. Storage may be float32, bfloat16 or
float16 (each tensor independently); every product and sum is float32, and results are rounded
once to their storage dtype.

Layout: one program per (batch row, block of features) with the loop over ``T`` inside, the filter
state in registers and the next step's input prefetched one iteration ahead. Offsets are 64-bit.

Backward, for an upstream gradient ``g = dL/dpsp``:

* ``dL/dx`` by the adjoint, the same filter run in reverse time (``lam[T] = lam[T+1] = 0``)::

      lam[t] = g[t] + a1 lam[t+1] + a2 lam[t+2],   dL/dx[t] = b1 lam[t]
      dL/dpsp[-1] = a1 lam[0] + a2 lam[1],         dL/dpsp[-2] = a2 lam[0]

* coefficient gradients in *forward* mode, so that ``psp`` is neither saved nor stored: the
  tangents ``d_c[t] = dpsp[t]/dc`` obey the filter itself, driven by what ``c`` multiplies::

      d_a1[t] = a1 d_a1[t-1] + a2 d_a1[t-2] + psp[t-1]
      d_a2[t] = a1 d_a2[t-1] + a2 d_a2[t-2] + psp[t-2]
      d_b1[t] = a1 d_b1[t-1] + a2 d_b1[t-2] + x[t]          (all zero before t = 0)
      dL/dc = sum_{b,t} g[t] d_c[t]

  which equals the reverse-mode ``sum_{b,t} lam[t] psp[t-1]`` etc. of the CPU kernel exactly in exact
  arithmetic (swap the two sums of the filter's impulse response). One forward sweep recomputes
  ``psp`` and the three tangents in registers (reading ``x`` and ``g``); the reverse sweep reads ``g``
  and writes ``dL/dx``. Per-row partial sums ``[B, N]`` (float32) are then summed over ``B``
  (deterministic, unlike float atomics).

Measured on one H200 (torch 2.11, triton 3.6; T=32, B=16, N=65536; a clone of x moves 3.6 TB/s):
forward 83 us float32 / 43 us bfloat16 (3.1-3.25 TB/s of x read + psp written); backward without
coefficients 87 / 49-74 us; with them 178 / 119 us (x and g read, g read again, dL/dx written).
The reference loop with autograd took 7.4 / 9.0 ms.

Module import needs ``triton``; launching needs CUDA tensors, or CPU tensors with
``TRITON_INTERPRET=1`` set before this module is first imported (the tests do so).
"""
from __future__ import annotations

from typing import Optional

import torch
import triton
import triton.language as tl
from torch import Tensor

__all__ = ["DTYPES", "iir2_forward", "iir2_backward", "block_size"]

DTYPES = (torch.float32, torch.bfloat16, torch.float16)  # storage dtypes; arithmetic is float32
_MAX_BLOCK = 1024  # features per program (4 warps from 1024 features)
_MIN_BLOCK = 128
_TARGET_PROGRAMS = 4096  # programs per launch: on an H200 (T=32, 16 x 65536) 256-feature blocks
# beat 1024 by 0-13% (bf16 backward most)


@triton.jit(do_not_specialize=["T"])
def _iir2_forward_kernel(x_ptr, a1_ptr, a2_ptr, b1_ptr, p1_ptr, p2_ptr, out_ptr,
                         T, N, stride, BLOCK: tl.constexpr):
    """One program: row ``program_id(0)`` of the batch, features ``program_id(1) * BLOCK + [0, BLOCK)``."""
    n = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    c1 = tl.load(a1_ptr + n, mask=mask, other=0.0).to(tl.float32)
    c2 = tl.load(a2_ptr + n, mask=mask, other=0.0).to(tl.float32)
    cb = tl.load(b1_ptr + n, mask=mask, other=0.0).to(tl.float32)
    off = tl.program_id(0).to(tl.int64) * N + n  # int64: row * N + n, then + t * stride
    y1 = tl.load(p1_ptr + off, mask=mask, other=0.0).to(tl.float32)  # psp[t-1]
    y2 = tl.load(p2_ptr + off, mask=mask, other=0.0).to(tl.float32)  # psp[t-2]
    x_next = tl.load(x_ptr + off, mask=mask & (T > 0), other=0.0)
    for t in range(T):
        xt = x_next.to(tl.float32)
        x_next = tl.load(x_ptr + off + stride, mask=mask & (t + 1 < T), other=0.0)  # prefetch
        y = c1 * y1 + c2 * y2 + cb * xt
        tl.store(out_ptr + off, y.to(out_ptr.dtype.element_ty), mask=mask)
        y2 = y1
        y1 = y
        off += stride


@triton.jit(do_not_specialize=["T"])
def _iir2_backward_kernel(g_ptr, x_ptr, a1_ptr, a2_ptr, b1_ptr, p1_ptr, p2_ptr,
                          gx_ptr, ga1_ptr, ga2_ptr, gb1_ptr, gp1_ptr, gp2_ptr,
                          T, N, stride, NEED_COEF: tl.constexpr, BLOCK: tl.constexpr):
    """Forward-mode coefficient sweep (when ``NEED_COEF``), then the reverse-time adjoint sweep.

    ``ga1/ga2/gb1`` are float32 ``[B, N]`` per-row partials; ``gx [T, B, N]``, ``gp1/gp2 [B, N]``.
    """
    n = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = n < N
    c1 = tl.load(a1_ptr + n, mask=mask, other=0.0).to(tl.float32)
    c2 = tl.load(a2_ptr + n, mask=mask, other=0.0).to(tl.float32)
    cb = tl.load(b1_ptr + n, mask=mask, other=0.0).to(tl.float32)
    row = tl.program_id(0).to(tl.int64) * N + n
    if NEED_COEF:
        y1 = tl.load(p1_ptr + row, mask=mask, other=0.0).to(tl.float32)  # psp[t-1]
        y2 = tl.load(p2_ptr + row, mask=mask, other=0.0).to(tl.float32)  # psp[t-2]
        # One tl.zeros per loop-carried name: names bound to one shared tensor fool the compiler's
        # loop-carried analysis (``u2 = u1`` then looks unchanged and u2 stays 0; the interpreter
        # cannot show this, an H200 did).
        u1 = tl.zeros([BLOCK], dtype=tl.float32)  # d_a1[t-1]
        u2 = tl.zeros([BLOCK], dtype=tl.float32)  # d_a1[t-2]
        v1 = tl.zeros([BLOCK], dtype=tl.float32)  # d_a2[t-1]
        v2 = tl.zeros([BLOCK], dtype=tl.float32)  # d_a2[t-2]
        w1 = tl.zeros([BLOCK], dtype=tl.float32)  # d_b1[t-1]
        w2 = tl.zeros([BLOCK], dtype=tl.float32)  # d_b1[t-2]
        s1 = tl.zeros([BLOCK], dtype=tl.float32)  # sum_t g[t] d_a1[t]
        s2 = tl.zeros([BLOCK], dtype=tl.float32)
        sb = tl.zeros([BLOCK], dtype=tl.float32)
        off = row
        x_next = tl.load(x_ptr + off, mask=mask & (T > 0), other=0.0)
        g_next = tl.load(g_ptr + off, mask=mask & (T > 0), other=0.0)
        for t in range(T):
            xt = x_next.to(tl.float32)
            gt = g_next.to(tl.float32)
            x_next = tl.load(x_ptr + off + stride, mask=mask & (t + 1 < T), other=0.0)
            g_next = tl.load(g_ptr + off + stride, mask=mask & (t + 1 < T), other=0.0)
            u = c1 * u1 + c2 * u2 + y1
            v = c1 * v1 + c2 * v2 + y2
            w = c1 * w1 + c2 * w2 + xt
            y = c1 * y1 + c2 * y2 + cb * xt
            s1 += gt * u
            s2 += gt * v
            sb += gt * w
            u2 = u1
            u1 = u
            v2 = v1
            v1 = v
            w2 = w1
            w1 = w
            y2 = y1
            y1 = y
            off += stride
        tl.store(ga1_ptr + row, s1, mask=mask)
        tl.store(ga2_ptr + row, s2, mask=mask)
        tl.store(gb1_ptr + row, sb, mask=mask)
    l1 = tl.zeros([BLOCK], dtype=tl.float32)  # lam[t+1]
    l2 = tl.zeros([BLOCK], dtype=tl.float32)  # lam[t+2]
    off = row + (T - 1).to(tl.int64) * stride  # step T-1
    g_next = tl.load(g_ptr + off, mask=mask & (T > 0), other=0.0)
    for t in range(T):
        gt = g_next.to(tl.float32)
        g_next = tl.load(g_ptr + off - stride, mask=mask & (t + 1 < T), other=0.0)
        lam = gt + c1 * l1 + c2 * l2
        tl.store(gx_ptr + off, (cb * lam).to(gx_ptr.dtype.element_ty), mask=mask)
        l2 = l1
        l1 = lam
        off -= stride
    tl.store(gp1_ptr + row, (c1 * l1 + c2 * l2).to(gp1_ptr.dtype.element_ty), mask=mask)
    tl.store(gp2_ptr + row, (c2 * l1).to(gp2_ptr.dtype.element_ty), mask=mask)


def block_size(B: int, N: int) -> int:
    """Features per program: the largest power of two in ``[128, 1024]`` (below ``2 N``) that still
    gives ``_TARGET_PROGRAMS`` programs over the ``B x ceil(N / block)`` grid."""
    block = _MAX_BLOCK
    while block > _MIN_BLOCK and (B * triton.cdiv(N, block) < _TARGET_PROGRAMS or block >= 2 * N):
        block //= 2
    return block


def _launch_config(B: int, N: int, block: Optional[int]) -> tuple[int, int]:
    if block is None:
        block = block_size(B, N)
    elif block < 1 or block & (block - 1):
        raise ValueError(f"block must be a power of two >= 1, got {block}")
    return block, max(1, min(4, block // 256))  # (BLOCK, num_warps)


def _check(name: str, t: Tensor, shape: tuple[int, ...], device: torch.device) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(t.shape)}")
    if t.dtype not in DTYPES:
        raise ValueError(f"{name} must be float32, bfloat16 or float16, got {t.dtype}")
    if t.device != device:
        raise ValueError(f"{name} must be on {device} (like x), got {t.device}")
    if not t.is_contiguous():
        raise ValueError(f"{name} must be contiguous")


def _check_inputs(seq: Tensor, seq_name: str, coefficients: dict[str, Tensor],
                  states: dict[str, Tensor]) -> tuple[int, int, int]:
    if not isinstance(seq, Tensor) or seq.dim() != 3:
        got = tuple(seq.shape) if isinstance(seq, Tensor) else type(seq).__name__
        raise ValueError(f"{seq_name} must be a tensor of shape [T, B, N], got {got}")
    T, B, N = seq.shape
    _check(seq_name, seq, (T, B, N), seq.device)
    for name, c in coefficients.items():
        _check(name, c, (N,), seq.device)
    for name, p in states.items():
        _check(name, p, (B, N), seq.device)
    return T, B, N


def iir2_forward(x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor, p2: Tensor,
                 *, block: Optional[int] = None) -> Tensor:
    """``psp[t] = a1 psp[t-1] + a2 psp[t-2] + b1 x[t]`` from ``psp[-1] = p1``, ``psp[-2] = p2``.

    ``x [T, B, N]``, ``a1, a2, b1 [N]``, ``p1, p2 [B, N]``; contiguous, one device. Returns ``psp``
    ``[T, B, N]`` in ``x.dtype``. ``block`` (a power of two) overrides the features per program.
    """
    T, B, N = _check_inputs(x, "x", {"a1": a1, "a2": a2, "b1": b1}, {"p1": p1, "p2": p2})
    out = torch.empty_like(x)
    if out.numel() == 0:
        return out
    BLOCK, warps = _launch_config(B, N, block)
    _iir2_forward_kernel[(B, triton.cdiv(N, BLOCK))](
        x, a1, a2, b1, p1, p2, out, T, N, B * N, BLOCK=BLOCK, num_warps=warps)
    return out


def iir2_backward(g: Tensor, x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor,
                  p2: Tensor, need_coef: bool, *, block: Optional[int] = None,
                  ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients of ``iir2_forward`` for ``g = dL/dpsp [T, B, N]`` (see the module doc).

    Returns ``(gx [T, B, N], ga1 [N], ga2 [N], gb1 [N], gp1 [B, N], gp2 [B, N])``: ``gx``, ``gp1``,
    ``gp2`` in ``g.dtype``; ``ga1, ga2, gb1`` float32, summed over batch and time (zeros when
    ``need_coef`` is False). ``x``, ``p1``, ``p2`` are read (and checked) only when ``need_coef``;
    otherwise any tensor on the device may stand in for them.
    """
    states = {"p1": p1, "p2": p2} if need_coef else {}
    T, B, N = _check_inputs(g, "g", {"a1": a1, "a2": a2, "b1": b1}, states)
    if need_coef:
        _check("x", x, (T, B, N), g.device)
    gx = torch.empty_like(g)
    gp1 = g.new_empty((B, N))
    gp2 = g.new_empty((B, N))
    if B * N == 0:
        return gx, *(g.new_zeros(N, dtype=torch.float32) for _ in range(3)), gp1, gp2
    if need_coef:
        partial = torch.empty((3, B, N), dtype=torch.float32, device=g.device)
        parts = partial.unbind(0)
        xin, p1in, p2in = x, p1, p2
    else:
        parts = (gx, gx, gx)  # never written: the coefficient sweep is compiled out
        xin, p1in, p2in = g, gp1, gp2  # never read
    BLOCK, warps = _launch_config(B, N, block)
    _iir2_backward_kernel[(B, triton.cdiv(N, BLOCK))](
        g, xin, a1, a2, b1, p1in, p2in, gx, *parts, gp1, gp2, T, N, B * N,
        NEED_COEF=bool(need_coef), BLOCK=BLOCK, num_warps=warps)
    if need_coef:
        ga1, ga2, gb1 = partial.sum(1).unbind(0)
    else:
        ga1, ga2, gb1 = (g.new_zeros(N, dtype=torch.float32) for _ in range(3))
    return gx, ga1, ga2, gb1, gp1, gp2
