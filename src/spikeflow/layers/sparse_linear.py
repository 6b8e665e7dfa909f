"""``SparseLinear``: an ``nn.Linear`` whose CPU forward/backward skip the zeros of spike inputs.

The input of most Linear layers in an SNN is a spike tensor with 5-30% ones; a dense GEMM spends
most of its work multiplying zeros. :class:`SparseLinear` is a subclass of ``nn.Linear`` (same
parameters, ``state_dict`` keys and hooks; ``isinstance(m, nn.Linear)`` holds) whose forward is
:func:`spikeflow.ops.sparse_linear` (the op ``spikeflow::sparse_linear``): for a float32/float64 CPU
input whose fraction of non-zeros is below :attr:`SparseLinear.threshold`, it builds a CSR of the
input and sums only the weight rows of the non-zeros (numba kernels), and backward keeps only that
CSR (int32 column indices and, unless every non-zero is exactly 1.0, the values) instead of the
dense input.

Everything else runs ``F.linear`` unchanged: density at or above the threshold, CUDA or other
dtypes, an active ``TorchFunctionMode`` (so :func:`spikeflow.metrics.count_synops`, which watches
``F.linear`` calls, still counts the layer), or numba missing. Under ``torch.compile`` and
``torch.export`` the layer is the op ``spikeflow::sparse_linear`` (export decomposes it to
``F.linear``).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from spikeflow.ops.sparse_linear import (DEFAULT_THRESHOLD, MIN_OUT, MIN_ROWS,
                                         SINGLE_THREAD_THRESHOLD, auto_threshold, sparse_capable,
                                         sparse_linear)

__all__ = ["SparseLinear", "sparse_linear", "auto_threshold", "DEFAULT_THRESHOLD",
           "SINGLE_THREAD_THRESHOLD", "MIN_ROWS", "MIN_OUT"]

_sparse_capable = sparse_capable  # the name tests/test_compat.py checks


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

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return sparse_linear(input, self.weight, self.bias, self.threshold, self.min_rows,
                             self.min_out)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, threshold={self.threshold}, min_rows={self.min_rows}, "
                f"min_out={self.min_out}")
