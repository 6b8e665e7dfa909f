"""One generic driver for the multi-step neuron ops (LIF family, DecayLIF, IIR neuron).

A family is described by a :class:`Family`: its reference forward/backward in plain torch and the
modules of its fused CPU (numba) and CUDA (Triton) implementations, all with one calling
convention over ``x [T, N]`` (contiguous), ``states`` (``[N]`` each), ``tparams`` (0-dim tensors:
PLIF's ``k``, the surrogate parameter ``alpha``), ``params`` (floats) and ``flags`` (ints)::

    forward(x, states, tparams, params, flags, keep)  -> [spikes, *final_states, saved]
    backward(saved, gs, gstates, states, tparams, params, flags, needs)
                                                      -> [dL/dx, *dL/dstates, *dL/dtparams]

``saved`` is the one ``[T, N]`` tensor kept for backward (``[0, N]`` when ``keep`` is false), in
the *state dtype*: float32 for bfloat16/float16 inputs, else the input's dtype.

:func:`register` defines two ``torch.library`` custom ops, ``spikeflow::NAME`` (forward) and
``spikeflow::NAME_backward``, with CPU and CUDA kernels, fake implementations (torch.compile,
torch.export) and the backward op registered as the forward op's autograd formula. :func:`run` is
what the public functions call: while tracing it calls the registered op; in eager mode it calls
the same implementations through a lighter ``autograd.Function`` (a custom op costs 45-95 us of
Python dispatch per call, measured on the 2-core CI machine, against 25 us), and on CPU the
backward writes ``dL/dx`` over ``saved`` when nothing else can read it (``_cpu/_inplace.py``).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from spikeflow.ops.dispatch import CPU_DTYPES, fused_problem, tracing

__all__ = ["Family", "param_tensor", "register", "run", "state_dtype"]

Forward = Callable[..., list]
Backward = Callable[..., list]


@dataclass(frozen=True)
class Family:
    """A neuron family: ``name`` (op ``spikeflow::name``), ``n_states``, ``n_tparams``, its
    reference implementations and the modules of its fused ones (imported when first used)."""

    name: str
    n_states: int
    n_tparams: int
    reference_forward: Forward
    reference_backward: Backward
    cpu_module: str  # numba: forward(...) -> list, backward(gx_inout, ...) -> [*gstates, *gtparams]
    cuda_forward: Forward  # Triton (imported when called), same convention as reference_forward
    cuda_backward: Backward
    backward_reads_states: Callable[[Sequence[int]], bool] = lambda flags: False  # else stand-ins


def state_dtype(dtype: torch.dtype) -> torch.dtype:
    """Arithmetic/saved dtype for inputs of ``dtype``: float32 for half types, else ``dtype``."""
    return torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype


def param_tensor(value: Tensor | float, x: Tensor) -> Tensor:
    """A 0-dim tensor on ``x``'s device for a parameter given as a tensor (kept, so gradients
    flow) or a float (float64: the CPU kernels read it exactly; on CUDA, outside tracing, one
    cached tensor per value and device: no fill kernel per call, see :func:`constant`)."""
    if isinstance(value, Tensor):
        return value.reshape(())
    return constant(float(value), x.device, cache=x.device.type == "cuda" and not tracing(x))


_CONSTANTS: dict[tuple[float, torch.device], Tensor] = {}
_MAX_CONSTANTS = 256


def constant(value: float, device: torch.device, cache: bool = False) -> Tensor:
    """A 0-dim float64 tensor holding ``value`` on ``device``. With ``cache`` the same tensor is
    returned for the same ``(value, device)`` (at most 256 kept; the ops only read it): on a GPU
    each new one would cost a fill kernel in every eager call of an op."""
    if not cache:
        return torch.full((), value, dtype=torch.float64, device=device)
    key = (value, device)
    t = _CONSTANTS.get(key)
    if t is None:
        if len(_CONSTANTS) >= _MAX_CONSTANTS:
            _CONSTANTS.clear()
        with torch.inference_mode(False):  # a normal tensor: training may save it for backward
            t = _CONSTANTS[key] = torch.full((), value, dtype=torch.float64, device=device)
    return t


@lru_cache(maxsize=None)
def _module(name: str) -> ModuleType:
    if name.startswith("spikeflow.ops._cpu."):
        from spikeflow._numba_cache import ensure_numba_cache

        ensure_numba_cache()  # numba's cache in the user cache folder, before the kernels load
    return importlib.import_module(name)


def forward_impl(fam: Family, x: Tensor, states: Sequence[Tensor], tparams: Sequence[Tensor],
                 params: Sequence[float], flags: Sequence[int], keep: bool) -> list[Tensor]:
    """Forward on the fused kernel of ``x``'s device/dtype, or the reference implementation."""
    if fused_problem(x) is None:
        if x.device.type == "cpu":
            return _module(fam.cpu_module).forward(x, states, tparams, params, flags, keep)
        return fam.cuda_forward(x, states, tparams, params, flags, keep)
    return fam.reference_forward(x, states, tparams, params, flags, keep)


def _fused_backward(saved: Tensor) -> Optional[str]:
    """The fused backward module kind for ``saved`` (``"cpu"``/``"cuda"``), or ``None``."""
    if saved.shape[0] == 0 or fused_problem(saved) is not None:
        return None
    if saved.device.type == "cpu":
        return "cpu" if saved.dtype in CPU_DTYPES else None
    return "cuda" if saved.dtype == torch.float32 else None


def backward_impl(fam: Family, buffer: Tensor, gs: Tensor, gstates: Sequence[Tensor],
                  states: Sequence[Tensor], tparams: Sequence[Tensor], params: Sequence[float],
                  flags: Sequence[int], needs: Sequence[bool], x_dtype: torch.dtype) -> list[Tensor]:
    """Backward from ``buffer`` (the saved tensor; the CPU kernel overwrites it with ``dL/dx``)."""
    if buffer.shape != gs.shape:
        raise RuntimeError(f"spikeflow::{fam.name}: no gradient without the saved tensor (the "
                           f"forward ran with keep=False); saved {tuple(buffer.shape)}, "
                           f"gradient {tuple(gs.shape)}")
    kind = _fused_backward(buffer)
    if kind == "cpu":
        rest = _module(fam.cpu_module).backward(buffer, gs, gstates, states, tparams, params, flags,
                                                needs)
        out = [buffer, *rest]
    elif kind == "cuda":
        out = fam.cuda_backward(buffer, gs, gstates, states, tparams, params, flags, needs)
    else:
        out = fam.reference_backward(buffer, gs, gstates, states, tparams, params, flags, needs)
    out[0] = out[0].to(x_dtype)
    for i, s in enumerate(states):
        out[1 + i] = out[1 + i].to(s.dtype)
    return out


# ---------------------------------------------------------------- the registered custom ops
_OPS: dict[str, tuple] = {}
DECOMPOSITIONS: dict = {}  # op overload -> its reference implementation (torch.export decompositions)


def _zeros_like_meta(t: Tensor, dtype: Optional[torch.dtype] = None) -> Tensor:
    return torch.zeros(t.shape, dtype=dtype or t.dtype, device=t.device)


def register(fam: Family) -> None:
    """Define ``spikeflow::<name>`` and ``spikeflow::<name>_backward`` for ``fam``."""
    name = fam.name

    @torch.library.custom_op(f"spikeflow::{name}", mutates_args=())
    def op(x: Tensor, states: list[Tensor], tparams: list[Tensor], params: list[float],
           flags: list[int], keep: bool) -> list[Tensor]:
        return fam.reference_forward(x, states, tparams, params, flags, keep)

    def fused_forward(x, states, tparams, params, flags, keep):
        return forward_impl(fam, x, states, tparams, params, flags, keep)

    op.register_kernel("cpu")(fused_forward)
    op.register_kernel("cuda")(fused_forward)

    @op.register_fake
    def _(x, states, tparams, params, flags, keep):
        T, N = x.shape
        saved = x.new_empty((T if keep else 0, N), dtype=state_dtype(x.dtype))
        return [torch.empty_like(x), *(torch.empty_like(s) for s in states), saved]

    @torch.library.custom_op(f"spikeflow::{name}_backward", mutates_args=())
    def op_backward(saved: Tensor, gs: Tensor, gstates: list[Tensor], states: list[Tensor],
                    tparams: list[Tensor], params: list[float], flags: list[int],
                    needs: list[bool], x_dtype: torch.dtype) -> list[Tensor]:
        # only the CPU kernel writes dL/dx over its buffer; an op may not mutate its input, so it
        # gets a copy. The CUDA and reference backwards read `saved` and allocate their outputs:
        # no copy (one [T, N] read + write per neuron layer and step saved in compiled training)
        buffer = saved.clone() if _fused_backward(saved) == "cpu" else saved
        return backward_impl(fam, buffer, gs, gstates, states, tparams, params, flags, needs,
                             x_dtype)

    @op_backward.register_fake
    def _(saved, gs, gstates, states, tparams, params, flags, needs, x_dtype):
        return [saved.new_empty(saved.shape, dtype=x_dtype), *(torch.empty_like(s) for s in states),
                *(saved.new_empty((), dtype=torch.float64) for _ in tparams)]

    def setup_context(ctx, inputs, output):
        x, states, tparams, params, flags, keep = inputs
        _save(ctx, fam, output[-1], states, tparams, flags)
        ctx.params, ctx.flags, ctx.x_dtype = list(params), list(flags), x.dtype
        ctx.set_materialize_grads(False)

    def backward(ctx, grads):
        saved, *rest = ctx.saved_tensors
        gs, gstates = _materialize(grads, saved, ctx.state_dtypes, ctx.x_dtype)
        states, tparams = _unpack(ctx, rest, gstates)
        needs = [bool(t.requires_grad) for t in tparams]
        out = _OPS[name][1](
            saved, gs, gstates, list(states), list(tparams), ctx.params, ctx.flags, needs,
            ctx.x_dtype)
        gx, gst, gtp = out[0], out[1:1 + len(states)], out[1 + len(states):]
        gtp = [g.to(t.dtype) for g, t in zip(gtp, tparams)]
        return gx, gst, gtp, None, None, None

    op.register_autograd(backward, setup_context=setup_context)
    _OPS[name] = (getattr(torch.ops.spikeflow, name).default,
                  getattr(torch.ops.spikeflow, f"{name}_backward").default)
    DECOMPOSITIONS[_OPS[name][0]] = fam.reference_forward
    DECOMPOSITIONS[_OPS[name][1]] = lambda saved, *args: fam.reference_backward(saved, *args[:-1])


def _materialize(grads: Sequence[Optional[Tensor]], saved: Tensor, state_dtypes: Sequence[torch.dtype],
                 x_dtype: torch.dtype) -> tuple[Tensor, list[Tensor]]:
    """Gradients of ``[spikes, *final_states, saved]`` with zeros where none flowed."""
    T, N = saved.shape
    gs = grads[0] if grads[0] is not None else saved.new_zeros((T, N), dtype=x_dtype)
    gstates = [g if g is not None else saved.new_zeros((N,), dtype=dt)
               for g, dt in zip(grads[1:1 + len(state_dtypes)], state_dtypes)]
    return gs.contiguous(), [g.contiguous() for g in gstates]


def _save(ctx, fam: Family, saved: Tensor, states: Sequence[Tensor], tparams: Sequence[Tensor],
          flags: Sequence[int]) -> None:
    """Keep ``saved``, the 0-dim ``tparams`` and, when the backward reads them, the states."""
    ctx.reads_states = fam.backward_reads_states(flags)
    ctx.save_for_backward(saved, *(states if ctx.reads_states else ()), *tparams)
    ctx.state_dtypes = [s.dtype for s in states]


def _unpack(ctx, rest: list[Tensor], gstates: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """``(states, tparams)`` from the saved tensors after the first (``ctx.saved_tensors`` may be
    read only once: activation checkpointing); states the backward does not read are stood in
    for by tensors of their shape and dtype (the state gradients)."""
    n = len(ctx.state_dtypes)
    if ctx.reads_states:
        return rest[:n], rest[n:]
    return list(gstates), rest


# ---------------------------------------------------------------- the eager path
class _Eager(torch.autograd.Function):
    """Eager autograd of a family (the same implementations as the registered op)."""

    @staticmethod
    def forward(ctx, fam: Family, params: list, flags: list, n_states: int,  # type: ignore[override]
                x: Tensor, *tensors: Tensor):
        states, tparams = list(tensors[:n_states]), list(tensors[n_states:])
        out = forward_impl(fam, x, states, tparams, params, flags, True)
        _save(ctx, fam, out[-1], states, tparams, flags)
        ctx.fam, ctx.params, ctx.flags, ctx.n_states, ctx.x_dtype = fam, params, flags, n_states, x.dtype
        ctx.set_materialize_grads(False)
        return tuple(out[:-1])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grads: Optional[Tensor]):  # type: ignore[override]
        saved, *rest = ctx.saved_tensors
        n = ctx.n_states
        gs, gstates = _materialize(grads, saved, ctx.state_dtypes, ctx.x_dtype)
        states, tparams = _unpack(ctx, rest, gstates)
        needs = [bool(g) for g in ctx.needs_input_grad[5 + n:]]
        if _fused_backward(saved) == "cpu":
            from spikeflow.ops._cpu._inplace import grad_buffer

            buffer = grad_buffer(saved)  # saved itself unless something else can read it
        else:
            buffer = saved
        del saved
        out = backward_impl(ctx.fam, buffer, gs, gstates, states, tparams, ctx.params, ctx.flags,
                            needs, ctx.x_dtype)
        gtp = [g.to(t.dtype) if need else None for g, t, need in zip(out[1 + n:], tparams, needs)]
        return (None, None, None, None, out[0], *out[1:1 + n], *gtp)


def run(fam: Family, x: Tensor, states: list[Tensor], tparams: list[Tensor],
        params: list[float], flags: list[int]) -> list[Tensor]:
    """``[spikes, *final_states]`` of ``fam`` over ``x [T, N]``: through the registered op while
    tracing, else eagerly (autograd only when a gradient is needed)."""
    x = x.contiguous()
    states = [s.to(x.dtype).contiguous() for s in states]
    grads = torch.is_grad_enabled() and any(t.requires_grad for t in (x, *states, *tparams))
    if tracing(x):
        return list(_OPS[fam.name][0](x, states, tparams, params, flags, grads)[:-1])
    if grads:
        return list(_Eager.apply(fam, params, flags, len(states), x, *states, *tparams))
    with torch.no_grad():
        return forward_impl(fam, x, states, tparams, params, flags, False)[:-1]
