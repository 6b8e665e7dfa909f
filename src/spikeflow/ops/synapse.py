"""``spikeflow::iir2``: the second-order IIR filter behind every synapse filter (snn-iir).

Over ``x [T, B, N]`` with per-feature coefficients ``a1, a2, b1 [N]`` and the initial state
``p1 = psp[-1]``, ``p2 = psp[-2]`` ``[B, N]``::

    psp[t] = a1 psp[t-1] + a2 psp[t-2] + b1 x[t]           (dual-exponential synapse)
    low pass:  a2 = 0, b1 = 1 ;   read-out:  gain * (lowpass(x, dm) - lowpass(x, ds))

Backward (the adjoint of a linear filter is the filter in reverse time, ``lam[T] = lam[T+1] = 0``)::

    lam[t] = g[t] + a1 lam[t+1] + a2 lam[t+2] ;  dL/dx[t] = b1 lam[t]
    dL/dp1 = a1 lam[0] + a2 lam[1] ;  dL/dp2 = a2 lam[0]
    dL/da1 = sum_{b,t} lam[t] psp[t-1] ;  dL/da2 = sum_{b,t} lam[t] psp[t-2]
    dL/db1 = sum_{b,t} lam[t] x[t]

Arithmetic runs in the state dtype (float32 for bfloat16/float16 ``x``, else ``x``'s dtype; the
coefficients and states are converted to it) and ``psp`` is rounded once to ``x``'s dtype. Only
``x`` (when a coefficient needs a gradient) and the small coefficients/states are kept for backward;
``psp`` is recomputed there.

Implementations: reference (plain torch below: the oracle, and what export decomposes to), CPU
(numba, ``_cpu/synapse.py``, float32/float64), CUDA (Triton, ``_triton/synapse.py``,
float32/bfloat16/float16), fake (compile/export), backward op ``spikeflow::iir2_backward`` as the
autograd formula. The public functions :func:`iir2`, :func:`low_pass`, :func:`readout` take any
trailing feature shape; while tracing they call the registered op, in eager mode the same
implementations through a lighter ``autograd.Function``.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
from torch import Tensor

from spikeflow.ops._neuron_op import DECOMPOSITIONS, _module, state_dtype
from spikeflow.ops.dispatch import fused_problem, tracing

__all__ = ["iir2", "low_pass", "readout", "reference_forward", "reference_backward"]

_CPU = "spikeflow.ops._cpu.synapse"
Coefficient = Tensor | float


# ---------------------------------------------------------------- reference (plain torch)
def _filter(x: Tensor, c1: Tensor, c2: Tensor, cb: Tensor, y1: Tensor, y2: Tensor,
            sd: torch.dtype) -> Tensor:
    """``psp`` in ``sd`` (``[T, B, N]``), every product and sum in ``sd`` in the kernels' order."""
    out = []
    for xt in x.unbind(0):
        y = c1 * y1 + c2 * y2 + cb * xt.to(sd)
        out.append(y)
        y2, y1 = y1, y
    return torch.stack(out) if out else x.new_empty(x.shape, dtype=sd)


def reference_forward(x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor,
                      p2: Tensor) -> Tensor:
    """Plain-torch forward: ``psp [T, B, N]`` in ``x``'s dtype."""
    sd = state_dtype(x.dtype)
    c1, c2, cb, y1, y2 = (t.to(sd) for t in (a1, a2, b1, p1, p2))
    return _filter(x, c1, c2, cb, y1, y2, sd).to(x.dtype)


def reference_backward(g: Tensor, x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor,
                       p2: Tensor, needs: Sequence[bool]) -> list[Tensor]:
    """Plain-torch backward: ``[dL/dx, dL/da1, dL/da2, dL/db1, dL/dp1, dL/dp2]`` (``dL/dx`` and
    the state gradients in ``g``'s dtype, coefficient gradients in their coefficient's dtype;
    zeros for ``a1``/``a2`` unless ``needs[0]``, for ``b1`` unless ``needs[1]``). ``x`` is read
    only when a coefficient needs a gradient, ``p1``/``p2`` only for ``needs[0]``."""
    need_a, need_b = bool(needs[0]), bool(needs[1])
    sd = state_dtype(g.dtype)
    c1, c2, cb = (t.to(sd) for t in (a1, a2, b1))
    T, B, N = g.shape
    l1 = l2 = g.new_zeros((B, N), dtype=sd)
    lams = []
    for t in range(T - 1, -1, -1):
        lam = g[t].to(sd) + c1 * l1 + c2 * l2
        lams.append(lam)
        l2, l1 = l1, lam
    lam = torch.stack(lams[::-1]) if lams else g.new_zeros((T, B, N), dtype=sd)
    gx = (cb * lam).to(g.dtype)
    gp1, gp2 = (c1 * l1 + c2 * l2).to(g.dtype), (c2 * l1).to(g.dtype)
    ga1, ga2, gb1 = (g.new_zeros((N,), dtype=sd) for _ in range(3))
    if need_a:
        y1, y2 = p1.to(sd), p2.to(sd)
        psp = _filter(x, c1, c2, cb, y1, y2, sd)
        prev1 = torch.cat([y1[None], psp[:-1]])
        prev2 = torch.cat([y2[None], y1[None], psp[:-2]])[:T]
        ga1, ga2 = (lam * prev1).sum((0, 1)), (lam * prev2).sum((0, 1))
    if need_b:
        gb1 = (lam * x.to(sd)).sum((0, 1))
    return [gx, ga1.to(a1.dtype), ga2.to(a2.dtype), gb1.to(b1.dtype), gp1, gp2]


# ---------------------------------------------------------------- device dispatch
def _as(t: Tensor, dtype: torch.dtype) -> Tensor:
    return t if t.dtype == dtype else t.to(dtype)  # no dispatch when it is already (eager cost)


def _cast(sd: torch.dtype, *tensors: Tensor) -> list[Tensor]:
    return [_as(t, sd).contiguous() for t in tensors]


def cpu_forward(x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor, p2: Tensor) -> Tensor:
    """The numba forward (CPU float32/float64 ``x``)."""
    return _module(_CPU).forward(x.contiguous(), *_cast(x.dtype, a1, a2, b1, p1, p2))


def cuda_forward(x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor, p2: Tensor) -> Tensor:
    """The Triton forward (float32/bfloat16/float16 ``x``; coefficients and states in float32)."""
    from spikeflow.ops._triton.synapse import iir2_forward

    return iir2_forward(x.contiguous(), *_cast(state_dtype(x.dtype), a1, a2, b1, p1, p2))


def _backward_out(out: Sequence[Tensor], a1: Tensor, a2: Tensor, b1: Tensor,
                  g: Tensor) -> list[Tensor]:
    return [_as(out[0], g.dtype), _as(out[1], a1.dtype), _as(out[2], a2.dtype),
            _as(out[3], b1.dtype), _as(out[4], g.dtype), _as(out[5], g.dtype)]


def cpu_backward(g: Tensor, x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor, p2: Tensor,
                 needs: Sequence[bool]) -> list[Tensor]:
    """The numba backward (CPU float32/float64 ``g``), outputs as :func:`reference_backward`."""
    need_a, need_b = bool(needs[0]), bool(needs[1])
    dt = g.dtype
    c1, c2, cb = _cast(dt, a1, a2, b1)
    xs = _as(x, dt).contiguous() if need_a or need_b else x
    q1, q2 = _cast(dt, p1, p2) if need_a else (p1, p2)
    out = _module(_CPU).backward(g.contiguous(), xs, c1, c2, cb, q1, q2, need_a, need_b)
    return _backward_out(out, a1, a2, b1, g)


def cuda_backward(g: Tensor, x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor,
                  p2: Tensor, needs: Sequence[bool]) -> list[Tensor]:
    """The Triton backward (float32/bfloat16/float16 ``g``), outputs as :func:`reference_backward`
    (the coefficient sweep runs when either coefficient group needs a gradient)."""
    from spikeflow.ops._triton.synapse import iir2_backward

    need = bool(needs[0]) or bool(needs[1])
    c1, c2, cb = _cast(torch.float32, a1, a2, b1)
    xs = _as(x, g.dtype).contiguous() if need else x
    q1, q2 = _cast(torch.float32, p1, p2) if need else (p1, p2)
    out = list(iir2_backward(g.contiguous(), xs, c1, c2, cb, q1, q2, need))
    for i, wanted in ((1, needs[0]), (2, needs[0]), (3, needs[1])):  # zeros where not asked for
        if not wanted:
            out[i] = torch.zeros_like(out[i])
    return _backward_out(out, a1, a2, b1, g)


def forward_impl(x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor, p2: Tensor) -> Tensor:
    """Forward on the fused kernel of ``x``'s device/dtype, or the reference implementation."""
    if fused_problem(x) is not None:
        return reference_forward(x, a1, a2, b1, p1, p2)
    fused = cpu_forward if x.device.type == "cpu" else cuda_forward
    return fused(x, a1, a2, b1, p1, p2)


def backward_impl(g: Tensor, x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor,
                  p2: Tensor, needs: Sequence[bool]) -> list[Tensor]:
    """Backward on the fused kernel of ``g``'s device/dtype, or the reference implementation
    (outputs as :func:`reference_backward`)."""
    if fused_problem(g) is not None:
        return reference_backward(g, x, a1, a2, b1, p1, p2, needs)
    fused = cpu_backward if g.device.type == "cpu" else cuda_backward
    return fused(g, x, a1, a2, b1, p1, p2, needs)


# ---------------------------------------------------------------- the registered custom ops
@torch.library.custom_op("spikeflow::iir2", mutates_args=())
def _iir2_op(x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor, p2: Tensor) -> Tensor:
    return reference_forward(x, a1, a2, b1, p1, p2)


_iir2_op.register_kernel("cpu")(forward_impl)
_iir2_op.register_kernel("cuda")(forward_impl)


@_iir2_op.register_fake
def _(x, a1, a2, b1, p1, p2):
    return x.new_empty(x.shape)


@torch.library.custom_op("spikeflow::iir2_backward", mutates_args=())
def _iir2_backward_op(g: Tensor, x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor,
                      p2: Tensor, needs: list[bool]) -> list[Tensor]:
    return reference_backward(g, x, a1, a2, b1, p1, p2, needs)


_iir2_backward_op.register_kernel("cpu")(backward_impl)
_iir2_backward_op.register_kernel("cuda")(backward_impl)


@_iir2_backward_op.register_fake
def _(g, x, a1, a2, b1, p1, p2, needs):
    T, B, N = g.shape
    return [g.new_empty(g.shape), a1.new_empty((N,)), a2.new_empty((N,)), b1.new_empty((N,)),
            g.new_empty((B, N)), g.new_empty((B, N))]


def _save(ctx, x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, p1: Tensor, p2: Tensor,
          needs_input_grad: Sequence[bool]) -> None:
    """Keep the coefficients, ``x`` only when a coefficient needs a gradient and the states only
    when ``a1``/``a2`` do (stand-ins from ``g`` in backward otherwise)."""
    need_a = bool(needs_input_grad[1] or needs_input_grad[2])
    need_b = bool(needs_input_grad[3])
    ctx.needs = [need_a, need_b]
    ctx.save_for_backward(x if need_a or need_b else None, a1, a2, b1,
                          p1 if need_a else None, p2 if need_a else None)
    ctx.dtypes = (x.dtype, p1.dtype, p2.dtype)


def _backward_args(ctx, g: Tensor) -> tuple:
    x, a1, a2, b1, p1, p2 = ctx.saved_tensors
    g = g.contiguous()
    if x is None:
        x = g
    if p1 is None:
        p1 = p2 = g[0]
    return g, x, a1, a2, b1, p1, p2


def _grads(ctx, out: Sequence[Tensor]) -> tuple:
    gx, ga1, ga2, gb1, gp1, gp2 = out
    need = ctx.needs_input_grad
    x_dtype, p1_dtype, p2_dtype = ctx.dtypes
    return (_as(gx, x_dtype) if need[0] else None, ga1 if need[1] else None,
            ga2 if need[2] else None, gb1 if need[3] else None,
            _as(gp1, p1_dtype) if need[4] else None, _as(gp2, p2_dtype) if need[5] else None)


def _setup_context(ctx, inputs, output):
    _save(ctx, *inputs, ctx.needs_input_grad)


def _backward(ctx, g):
    return _grads(ctx, _IIR2_BACKWARD(*_backward_args(ctx, g), ctx.needs))


_iir2_op.register_autograd(_backward, setup_context=_setup_context)
_IIR2 = torch.ops.spikeflow.iir2.default
_IIR2_BACKWARD = torch.ops.spikeflow.iir2_backward.default
DECOMPOSITIONS[_IIR2] = reference_forward
DECOMPOSITIONS[_IIR2_BACKWARD] = reference_backward


# ---------------------------------------------------------------- the eager path
class _Eager(torch.autograd.Function):
    """Eager autograd of ``iir2`` (the same implementations as the registered op)."""

    @staticmethod
    def forward(ctx, x, a1, a2, b1, p1, p2):  # type: ignore[override]
        _save(ctx, x, a1, a2, b1, p1, p2, ctx.needs_input_grad)
        return forward_impl(x, a1, a2, b1, p1, p2)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):  # type: ignore[override]
        return _grads(ctx, backward_impl(*_backward_args(ctx, g), ctx.needs))


# ---------------------------------------------------------------- public functions
def _flat_coefficient(c: Coefficient, features: torch.Size, n: int, x: Tensor,
                      sd: torch.dtype) -> Tensor:
    if isinstance(c, Tensor):
        try:
            c = _as(c, sd)
            return (c if c.shape == features else c.expand(features)).reshape(n).contiguous()
        except RuntimeError as err:
            raise ValueError(f"iir2: a coefficient of shape {tuple(c.shape)} does not broadcast "
                             f"to the feature shape {tuple(features)}") from err
    return torch.full((n,), float(c), dtype=sd, device=x.device)


def iir2(x: Tensor, a1: Coefficient, a2: Coefficient, b1: Coefficient,
         p1: Optional[Tensor] = None, p2: Optional[Tensor] = None) -> Tensor:
    """``psp[t] = a1 psp[t-1] + a2 psp[t-2] + b1 x[t]`` over ``x [T, B, *features]``.

    Coefficients (tensors, learnable, or floats) broadcast against ``features``; ``p1``/``p2``
    are ``psp[-1]``/``psp[-2]`` of shape ``[B, *features]`` (``None`` = 0). Returns ``psp``
    shaped and typed like ``x``.
    """
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] < 1:
        got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"iir2: x must have shape [T, B, ...] with T >= 1, got {got}")
    if not x.is_floating_point():
        raise ValueError(f"iir2: x must be a floating-point tensor, got {x.dtype}")
    T, B = x.shape[:2]
    features = x.shape[2:]
    n = math.prod(features)
    sd = state_dtype(x.dtype)
    coefficients = [_flat_coefficient(c, features, n, x, sd) for c in (a1, a2, b1)]
    zeros = None
    states = []
    for name, p in (("p1", p1), ("p2", p2)):
        if p is None:
            zeros = x.new_zeros((B, n), dtype=sd) if zeros is None else zeros
            states.append(zeros)
        elif not isinstance(p, Tensor) or p.shape != x.shape[1:]:
            got = tuple(p.shape) if isinstance(p, Tensor) else type(p).__name__
            raise ValueError(f"iir2: {name} must have shape {tuple(x.shape[1:])} (one step of x), "
                             f"got {got}")
        else:
            states.append(_as(p, sd).reshape(B, n).contiguous())
    x3 = x.reshape(T, B, n).contiguous()
    if tracing(x3):
        out = _IIR2(x3, *coefficients, *states)
    elif torch.is_grad_enabled() and any(t.requires_grad for t in (x3, *coefficients, *states)):
        out = _Eager.apply(x3, *coefficients, *states)
    else:
        with torch.no_grad():
            out = forward_impl(x3, *coefficients, *states)
    return out.reshape(x.shape)


def low_pass(x: Tensor, a: Coefficient, p: Optional[Tensor] = None) -> Tensor:
    """``psp[t] = a psp[t-1] + x[t]`` over ``x [T, B, *features]`` from ``psp[-1] = p``
    (``None`` = 0): :func:`iir2` with ``a2 = 0``, ``b1 = 1``."""
    return iir2(x, a, 0.0, 1.0, p, None)


def readout(x: Tensor, dm: float, ds: float, gain: float, m: Optional[Tensor] = None,
            s: Optional[Tensor] = None) -> tuple[Tensor, Tensor, Tensor]:
    """Dual-exponential read-out: ``(out, m_seq, s_seq)`` with ``m[t] = dm m[t-1] + x[t]``,
    ``s[t] = ds s[t-1] + x[t]`` (from ``m``, ``s``; ``None`` = 0) and ``out = gain (m - s)``, all
    shaped like ``x [T, B, ...]``; ``dm = e^{-1/tau_m}``, ``ds = e^{-1/tau_s}``."""
    m_seq = low_pass(x, dm, m)
    s_seq = low_pass(x, ds, s)
    return (m_seq - s_seq) * gain, m_seq, s_seq
