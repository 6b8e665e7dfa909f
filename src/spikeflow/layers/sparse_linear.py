"""``SparseLinear``: an ``nn.Linear`` whose CPU forward/backward skip the zeros of spike inputs.

The input of most Linear layers in an SNN is a spike tensor with 5-30% ones; a dense GEMM spends
most of its work multiplying zeros. :class:`SparseLinear` is a subclass of ``nn.Linear`` (same
parameters, ``state_dict`` keys and hooks; ``isinstance(m, nn.Linear)`` holds) whose forward, for a
float32/float64 CPU input whose fraction of non-zeros is below :attr:`SparseLinear.threshold`,
builds a CSR of the input and sums only the weight rows of the non-zeros (numba kernels in
:mod:`spikeflow.ops._cpu.sparse_linear`). Backward keeps only that CSR (int32 column
indices and, unless every non-zero is exactly 1.0, the values) instead of the dense input.

Everything else runs ``F.linear`` unchanged: density at or above the threshold, CUDA or other
dtypes, ``torch.compile``/``torch.jit`` tracing, an active ``TorchFunctionMode`` (so
:func:`spikeflow.metrics.count_synops`, which watches ``F.linear`` calls, still counts the layer),
or numba missing.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from spikeflow._compat import is_compiling, torch_function_mode_active
from spikeflow.ops._cpu._runtime import NUMBA_AVAILABLE

__all__ = ["SparseLinear", "sparse_linear", "auto_threshold", "DEFAULT_THRESHOLD",
           "SINGLE_THREAD_THRESHOLD", "MIN_ROWS", "MIN_OUT"]

# Density (fraction of non-zeros) below which the sparse path runs, and the smallest problems it
# runs on. Measured with benchmarks/sparse_linear.py on an AMD Zen 4 VM (2 threads) against
# F.linear, forward+backward: see docs/layers.md for the table and the reasoning.
DEFAULT_THRESHOLD = 0.25  # two or more threads (crossover about 0.27, docs/layers.md)
SINGLE_THREAD_THRESHOLD = 0.3  # one thread (crossover about 0.3 for 784 -> 512)
MIN_ROWS = 256  # fewer rows: the W^T copy and the gW transpose outweigh the saved work
MIN_OUT = 64  # narrower outputs: the per-non-zero overhead outweighs a (tiny) dense GEMM
_DTYPES = (torch.float32, torch.float64)


class _SparseLinearFunction(torch.autograd.Function):
    """``y = x W^T + b`` on the CSR of ``x [N, K]``; saves the CSR (and ``W`` if ``x`` needs grad)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Optional[Tensor], counts, binary: bool):  # type: ignore[override]
        from spikeflow.ops._cpu.sparse_linear import build_forward

        # W^T by numpy, not torch: a torch copy runs an OpenMP region whose threads then spin on
        # the cores the numba kernel is about to use (the same holds for the backward's order)
        wt = torch.from_numpy(np.ascontiguousarray(weight.detach().numpy().T))
        y, csr = build_forward(x.detach(), wt, None if bias is None else bias.detach(), counts,
                               binary)
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
        from spikeflow.ops._cpu.sparse_linear import CSR, grad_weight_t

        rowptr, idx, val, weight = ctx.saved_tensors
        gy = gy.contiguous()
        gx = gw = gb = None
        if ctx.needs_input_grad[1]:  # the numba kernel first, before torch's OpenMP ops
            binary, shape = ctx.meta
            csr = CSR(rowptr.numpy(), idx.numpy(), val.numpy(), binary, shape)
            gw = grad_weight_t(csr, gy).t()
        if ctx.needs_input_grad[0]:
            gx = gy.mm(weight)
        if ctx.needs_input_grad[2]:
            gb = gy.sum(0)
        return gx, gw, gb, None, None


def _sparse_capable(x: Tensor, weight: Tensor, bias: Optional[Tensor]) -> bool:
    """Whether the numba path may run at all (before looking at the density)."""
    if not NUMBA_AVAILABLE or type(x) is not Tensor or x.dim() == 0:
        return False
    if x.device.type != "cpu" or weight.device.type != "cpu" or x.dtype not in _DTYPES:
        return False
    if weight.dtype != x.dtype or (bias is not None and (bias.dtype != x.dtype or bias.device.type != "cpu")):
        return False
    if x.is_sparse or x.layout != torch.strided or weight.layout != torch.strided:
        return False
    if torch.jit.is_scripting() or torch.jit.is_tracing() or is_compiling():
        return False
    return not torch_function_mode_active()


def auto_threshold() -> float:
    """The density threshold for the current ``torch.get_num_threads()`` (see module constants)."""
    return SINGLE_THREAD_THRESHOLD if torch.get_num_threads() == 1 else DEFAULT_THRESHOLD


def sparse_linear(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None,
                  threshold: Optional[float] = None, min_rows: int = MIN_ROWS,
                  min_out: int = MIN_OUT) -> Tensor:
    """``F.linear(x, weight, bias)`` computed on the non-zeros of ``x`` when that pays.

    Args:
        x: ``[..., K]`` input (spikes or any values; the sparse path needs a float32/float64 CPU
            tensor with a fraction of non-zeros below ``threshold``).
        weight: ``[O, K]``; bias: ``[O]`` or ``None``.
        threshold: density at or above which ``F.linear`` runs (0 forces it, > 1 never);
            ``None``: :func:`auto_threshold` (0.3 on one thread, 0.25 on more).
        min_rows, min_out: ``F.linear`` runs for fewer rows (product of the leading dims of
            ``x``) or fewer output features than these (0: no limit).

    Returns:
        ``[..., O]``, equal to ``F.linear`` up to rounding (summation order differs).
    """
    if threshold is None:
        threshold = auto_threshold()
    if not _sparse_capable(x, weight, bias) or threshold <= 0:
        return F.linear(x, weight, bias)
    K = x.shape[-1]
    if weight.dim() != 2 or weight.shape[1] != K or K == 0 or weight.shape[0] < min_out:
        return F.linear(x, weight, bias)  # F.linear raises the usual shape errors
    if x.numel() // K < min_rows:
        return F.linear(x, weight, bias)
    from spikeflow.ops._cpu.sparse_linear import count_rows

    x2 = x.reshape(-1, K).contiguous()
    counts, binary = count_rows(x2)
    if x2.numel() and int(counts.sum()) >= threshold * x2.numel():
        return F.linear(x, weight, bias)
    y = _SparseLinearFunction.apply(x2, weight, bias, counts, binary)
    return y.reshape(*x.shape[:-1], weight.shape[0])


class SparseLinear(nn.Linear):
    """Drop-in ``nn.Linear`` with an event-driven CPU path for sparse inputs.

    Args:
        in_features, out_features, bias, device, dtype: as for ``nn.Linear``.
        threshold: input density (fraction of non-zeros) below which the sparse path runs;
            default ``None`` = :func:`auto_threshold` (0.3 on one thread, 0.25 on more).
        min_rows, min_out: the sparse path runs only for at least ``min_rows`` input rows (the
            product of the leading dims) and ``out_features >= min_out`` (defaults
            :data:`MIN_ROWS` = 256, :data:`MIN_OUT` = 64; 0 = no limit). None of the three is
            part of the ``state_dict``.

    Shapes: ``[..., in_features] -> [..., out_features]`` (leading dims are flattened into rows).

    Example:
        >>> layer = SparseLinear(784, 512)
        >>> spikes = (torch.rand(16, 8, 784) < 0.1).float()      # [T, B, in], 10% ones
        >>> layer(spikes).shape
        torch.Size([16, 8, 512])
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None,
                 dtype=None, threshold: Optional[float] = None, min_rows: int = MIN_ROWS,
                 min_out: int = MIN_OUT) -> None:
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        self.threshold = None if threshold is None else float(threshold)
        self.min_rows, self.min_out = int(min_rows), int(min_out)

    @classmethod
    def from_linear(cls, linear: nn.Linear, threshold: Optional[float] = None,
                    min_rows: int = MIN_ROWS, min_out: int = MIN_OUT) -> "SparseLinear":
        """A :class:`SparseLinear` sharing ``linear``'s parameters (no copy)."""
        layer = cls.__new__(cls)
        nn.Module.__init__(layer)
        layer.in_features, layer.out_features = linear.in_features, linear.out_features
        layer.register_parameter("weight", linear.weight)
        layer.register_parameter("bias", linear.bias)
        layer.threshold = None if threshold is None else float(threshold)
        layer.min_rows, layer.min_out = int(min_rows), int(min_out)
        return layer

    def forward(self, input: Tensor) -> Tensor:
        return sparse_linear(input, self.weight, self.bias, self.threshold, self.min_rows,
                             self.min_out)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, threshold={self.threshold}, min_rows={self.min_rows}, "
                f"min_out={self.min_out}")
