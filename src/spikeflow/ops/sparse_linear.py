"""``spikeflow::sparse_linear``: event-driven ``y = x W^T + b`` for sparse (spike) inputs.

The input of most Linear layers in an SNN is a spike tensor with 5-30% ones; a dense GEMM spends
most of its work multiplying zeros. For ``x [N, K]``, ``W [O, K]``, ``b [O]``::

    y[r, :] = b + sum_{j: x[r, j] != 0} x[r, j] W[:, j]           (forward, on the CSR of x)
    dL/dW = gY^T x  (on the CSR: sum over the non-zeros of each column of x),  dL/db = sum_r gY[r]
    dL/dx = gY W    (dense)

Implementations: reference (``F.linear`` and dense products: the oracle and the export form), CPU
(numba, ``_cpu/sparse_linear.py``, float32/float64: counts the non-zeros and takes the CSR path
when their fraction is below ``threshold``, ``F.linear`` otherwise), CUDA (the reference), fake,
and the backward op ``spikeflow::sparse_linear_backward`` as the autograd formula. Results equal
``F.linear`` to rounding (the sums skip the zero terms and run in another order).

:func:`sparse_linear` is what layers call. In eager mode on the CPU it counts the non-zeros itself,
runs ``F.linear`` when that pays (density at or above the threshold, too few rows or outputs)
and otherwise a lighter ``autograd.Function`` that keeps only the CSR of ``x`` for backward (int32
column indices and, unless every non-zero is exactly 1.0, the values) instead of the dense input.
While tracing (``torch.compile``, ``torch.export``) it calls the registered op, which keeps ``x``
and rebuilds its CSR in backward. Under an active ``TorchFunctionMode`` (e.g.
:func:`spikeflow.metrics.count_synops`, which watches ``F.linear``) and for CUDA or other dtypes it
is ``F.linear``.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

from spikeflow._compat import torch_function_mode_active
from spikeflow.ops._neuron_op import DECOMPOSITIONS, _module
from spikeflow.ops.dispatch import fused_problem, tracing

__all__ = ["sparse_linear", "sparse_capable", "auto_threshold", "reference_forward",
           "reference_backward", "DEFAULT_THRESHOLD", "SINGLE_THREAD_THRESHOLD", "MIN_ROWS",
           "MIN_OUT"]

# Density (fraction of non-zeros) below which the sparse path runs, and the smallest problems it
# runs on. Measured with benchmarks/sparse_linear.py on an AMD Zen 4 VM (2 threads) against
# F.linear, forward+backward: see docs/layers.md for the table and the reasoning.
DEFAULT_THRESHOLD = 0.25  # two or more threads (crossover about 0.27, docs/layers.md)
SINGLE_THREAD_THRESHOLD = 0.3  # one thread (crossover about 0.3 for 784 -> 512)
MIN_ROWS = 256  # fewer rows: the W^T copy and the gW transpose outweigh the saved work
MIN_OUT = 64  # narrower outputs: the per-non-zero overhead outweighs a (tiny) dense GEMM

_CPU = "spikeflow.ops._cpu.sparse_linear"


def auto_threshold() -> float:
    """The density threshold for the current ``torch.get_num_threads()`` (see module constants)."""
    return SINGLE_THREAD_THRESHOLD if torch.get_num_threads() == 1 else DEFAULT_THRESHOLD


# ---------------------------------------------------------------- reference (plain torch)
def reference_forward(x: Tensor, weight: Tensor, bias: Optional[Tensor],
                      threshold: Optional[float]) -> Tensor:
    """``F.linear(x, weight, bias)`` (``threshold`` only steers the CPU implementation)."""
    return F.linear(x, weight, bias)


def reference_backward(gy: Tensor, x: Tensor, weight: Tensor, threshold: Optional[float],
                       needs: Sequence[bool]) -> list[Tensor]:
    """``[dL/dx, dL/dW, dL/db]`` by dense products; an entry whose ``needs`` is false is an empty
    ``[0]`` tensor."""
    empty = gy.new_empty((0,))
    return [gy.mm(weight) if needs[0] else empty,
            gy.t().mm(x) if needs[1] else empty.clone(),
            gy.sum(0) if needs[2] else empty.clone()]


# ---------------------------------------------------------------- CPU implementation
def _fusable(x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> bool:
    """Whether the numba kernels can run on these tensors (device, dtype, layout; not density)."""
    if fused_problem(x) is not None or x.device.type != "cpu":
        return False
    if weight.device != x.device or weight.dtype != x.dtype or weight.layout != torch.strided:
        return False
    if bias is not None and (bias.device != x.device or bias.dtype != x.dtype):
        return False
    return not x.is_sparse and x.layout == torch.strided


def _weight_t(weight: Tensor) -> Tensor:
    # W^T by numpy, not torch: a torch copy runs an OpenMP region whose threads then spin on the
    # cores the numba kernel is about to use (the same holds for the backward's order)
    return torch.from_numpy(np.ascontiguousarray(weight.detach().numpy().T))


def _sparse_count(x: Tensor, threshold: float):
    """``(counts, binary)`` of a contiguous ``x`` when its density is below ``threshold``, else
    ``None``."""
    counts, binary = _module(_CPU).count_rows(x)
    if x.numel() and int(counts.sum()) >= threshold * x.numel():
        return None
    return counts, binary


def forward_impl(x: Tensor, weight: Tensor, bias: Optional[Tensor],
                 threshold: Optional[float]) -> Tensor:
    """The CSR path where the kernels run and ``x`` is sparse enough (``threshold=None``:
    :func:`auto_threshold` now), else the reference."""
    limit = auto_threshold() if threshold is None else threshold
    if x.dim() == 2 and _fusable(x, weight, bias) and limit > 0:
        x = x.detach().contiguous()
        found = _sparse_count(x, limit)
        if found is not None:
            b = None if bias is None else bias.detach().contiguous()
            y, _ = _module(_CPU).build_forward(x, _weight_t(weight), b, *found)
            return y
    return reference_forward(x, weight, bias, threshold)


def backward_impl(gy: Tensor, x: Tensor, weight: Tensor, threshold: Optional[float],
                  needs: Sequence[bool]) -> list[Tensor]:
    """As :func:`reference_backward`, with ``dL/dW`` from the CSR of ``x`` where the kernels run
    and ``x`` is sparse enough."""
    limit = auto_threshold() if threshold is None else threshold
    if not (needs[1] and x.dim() == 2 and _fusable(x, weight, None) and gy.dtype == x.dtype
            and limit > 0):
        return reference_backward(gy, x, weight, threshold, needs)
    gy = gy.contiguous()
    x = x.detach().contiguous()
    found = _sparse_count(x, limit)
    if found is None:
        return reference_backward(gy, x, weight, threshold, needs)
    kernels = _module(_CPU)
    _, csr = kernels.build_forward(x, x.new_empty((x.shape[1], 0)), None, *found)  # CSR only
    gw = kernels.grad_weight_t(csr, gy).t().contiguous()  # the numba kernel first (OpenMP above)
    out = reference_backward(gy, x, weight, threshold, [needs[0], False, needs[2]])
    out[1] = gw
    return out


# ---------------------------------------------------------------- the registered custom ops
@torch.library.custom_op("spikeflow::sparse_linear", mutates_args=())
def _sparse_linear_op(x: Tensor, weight: Tensor, bias: Optional[Tensor],
                      threshold: Optional[float]) -> Tensor:
    return reference_forward(x, weight, bias, threshold)


_sparse_linear_op.register_kernel("cpu")(forward_impl)


@_sparse_linear_op.register_fake
def _(x, weight, bias, threshold):
    return x.new_empty((x.shape[0], weight.shape[0]))


@torch.library.custom_op("spikeflow::sparse_linear_backward", mutates_args=())
def _sparse_linear_backward_op(gy: Tensor, x: Tensor, weight: Tensor,
                               threshold: Optional[float], needs: list[bool]) -> list[Tensor]:
    return reference_backward(gy, x, weight, threshold, needs)


_sparse_linear_backward_op.register_kernel("cpu")(backward_impl)


@_sparse_linear_backward_op.register_fake
def _(gy, x, weight, threshold, needs):
    return [gy.new_empty(x.shape if needs[0] else (0,)),
            gy.new_empty(weight.shape if needs[1] else (0,)),
            gy.new_empty((gy.shape[1],) if needs[2] else (0,))]


def _setup_context(ctx, inputs, output):
    x, weight, bias, threshold = inputs
    need = ctx.needs_input_grad
    ctx.needs = [bool(need[0]), bool(need[1]), bool(need[2]) and bias is not None]
    ctx.threshold = threshold
    ctx.save_for_backward(x if need[1] else None, weight if need[0] else None)
    ctx.shapes = (x.shape, weight.shape)


def _backward(ctx, gy):
    x, weight = ctx.saved_tensors
    x_shape, w_shape = ctx.shapes
    if x is None:  # stand-ins of the right shapes (not read)
        x = gy.new_empty(x_shape)
    if weight is None:
        weight = gy.new_empty(w_shape)
    gx, gw, gb = _SPARSE_LINEAR_BACKWARD(gy.contiguous(), x, weight, ctx.threshold, ctx.needs)
    return (gx if ctx.needs[0] else None, gw if ctx.needs[1] else None,
            gb if ctx.needs[2] else None, None)


_sparse_linear_op.register_autograd(_backward, setup_context=_setup_context)
_SPARSE_LINEAR = torch.ops.spikeflow.sparse_linear.default
_SPARSE_LINEAR_BACKWARD = torch.ops.spikeflow.sparse_linear_backward.default
DECOMPOSITIONS[_SPARSE_LINEAR] = reference_forward
DECOMPOSITIONS[_SPARSE_LINEAR_BACKWARD] = reference_backward


# ---------------------------------------------------------------- the eager path
class _Eager(torch.autograd.Function):
    """``y = x W^T + b`` on the CSR of ``x [N, K]``; keeps the CSR (and ``W`` if ``x`` needs a
    gradient) for backward."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor,  # type: ignore[override]
                bias: Optional[Tensor], counts, binary: bool):
        kernels = _module(_CPU)
        y, csr = kernels.build_forward(x.detach(), _weight_t(weight),
                                       None if bias is None else bias.detach(), counts, binary)
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if need_w:
            ctx.save_for_backward(torch.from_numpy(csr.rowptr), torch.from_numpy(csr.idx),
                                  torch.from_numpy(csr.val), weight if need_x else None)
        else:
            ctx.save_for_backward(None, None, None, weight if need_x else None)
        ctx.meta = (csr.binary, csr.shape)
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, gy: Tensor):  # type: ignore[override]
        rowptr, idx, val, weight = ctx.saved_tensors
        gy = gy.contiguous()
        gx = gw = gb = None
        if ctx.needs_input_grad[1]:  # the numba kernel first, before torch's OpenMP ops
            kernels = _module(_CPU)
            binary, shape = ctx.meta
            csr = kernels.CSR(rowptr.numpy(), idx.numpy(), val.numpy(), binary, shape)
            gw = kernels.grad_weight_t(csr, gy).t()
        if ctx.needs_input_grad[0]:
            gx = gy.mm(weight)
        if ctx.needs_input_grad[2]:
            gb = gy.sum(0)
        return gx, gw, gb, None, None


# ---------------------------------------------------------------- public functions
def sparse_capable(x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> bool:
    """Whether the eager CSR path may run at all (before looking at the density): a plain
    float32/float64 CPU tensor with matching weight/bias, numba present, no tracing, no active
    ``TorchFunctionMode``."""
    if type(x) is not Tensor or x.dim() == 0 or not _fusable(x, weight, bias):
        return False
    if weight.layout != torch.strided or torch.jit.is_scripting() or tracing(x):
        return False
    return not torch_function_mode_active()


def sparse_linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                  threshold: Optional[float] = None, min_rows: int = MIN_ROWS,
                  min_out: int = MIN_OUT) -> Tensor:
    """``F.linear(x, weight, bias)`` computed on the non-zeros of ``x`` when that pays.

    Args:
        x: ``[..., K]`` input (spikes or any values; the sparse path needs a float32/float64 CPU
            tensor with a fraction of non-zeros below ``threshold``).
        weight: ``[O, K]``; bias: ``[O]`` or ``None``.
        threshold: density at or above which ``F.linear`` runs (0 forces it, > 1 never);
            ``None``: :func:`auto_threshold` (0.3 on one thread, 0.25 on more), read when the
            op runs (also inside a compiled graph).
        min_rows, min_out: ``F.linear`` runs for fewer rows (product of the leading dims of
            ``x``) or fewer output features than these (0: no limit).

    Returns:
        ``[..., O]``, equal to ``F.linear`` up to rounding (summation order differs).
    """
    if threshold is not None and threshold <= 0:
        return F.linear(x, weight, bias)
    if not isinstance(x, Tensor) or x.dim() == 0 or torch_function_mode_active():
        return F.linear(x, weight, bias)
    K = x.shape[-1]
    if weight.dim() != 2 or weight.shape[1] != K or K == 0 or weight.shape[0] < min_out:
        return F.linear(x, weight, bias)  # F.linear raises the usual shape errors
    if x.numel() // K < min_rows:
        return F.linear(x, weight, bias)
    if tracing(x):
        if x.device.type != "cpu" or weight.dtype != x.dtype or (
                bias is not None and bias.dtype != x.dtype):
            return F.linear(x, weight, bias)
        y = _SPARSE_LINEAR(x.reshape(-1, K), weight, bias,
                           None if threshold is None else float(threshold))
        return y.reshape(*x.shape[:-1], weight.shape[0])
    if not sparse_capable(x, weight, bias):
        return F.linear(x, weight, bias)
    x2 = x.reshape(-1, K).contiguous()
    found = _sparse_count(x2, auto_threshold() if threshold is None else float(threshold))
    if found is None:
        return F.linear(x, weight, bias)
    y = _Eager.apply(x2, weight, bias, *found)
    return y.reshape(*x.shape[:-1], weight.shape[0])
