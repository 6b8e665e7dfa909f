"""Host-side helpers shared by the Triton neuron kernels (``lif.py``, ``decay_lif.py``,
``iir_neuron.py``): argument checks, launch geometry, reduction of per-program partial sums.

Layout of every neuron kernel: ``x [T, N]`` contiguous, one program per block of ``BLOCK``
contiguous neurons, the loop over ``T`` inside with the state in float32 registers, element
offsets in int64 (``t * N`` may pass 2^31). ``BLOCK`` is a power of two chosen by
:func:`block_size` unless the caller gives one.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import triton
from torch import Tensor

__all__ = ["DTYPES", "block_size", "check_sequence", "check_scalar", "saved_buffer", "reduce_parts"]

DTYPES = (torch.float32, torch.bfloat16, torch.float16)  # storage dtypes; state math is float32
_MAX_BLOCK = 1024  # neurons per program: 8 float32 values per thread with 4 warps
_MIN_BLOCK = 128
_TARGET_PROGRAMS = 1024  # enough programs in flight to keep an H200's memory system busy


def block_size(n: int, block: Optional[int] = None) -> int:
    """Neurons per program: ``block`` if given (a power of two >= 16), else the smallest power of
    two in [128, 1024] that gives at most ~1024 programs."""
    if block is not None:
        if block < 16 or block & (block - 1):
            raise ValueError(f"block must be a power of two >= 16, got {block}")
        return block
    return max(_MIN_BLOCK, min(_MAX_BLOCK, triton.next_power_of_2(triton.cdiv(max(n, 1),
                                                                              _TARGET_PROGRAMS))))


def check_sequence(what: str, x: Tensor, states: Sequence[tuple[str, Tensor]]) -> tuple[int, int]:
    """``(T, N)`` of ``x [T, N]``; raise ``ValueError`` unless ``x`` and each state ``[N]`` are
    contiguous, of one storage dtype in :data:`DTYPES` and on one device."""
    if x.dim() != 2 or not x.is_contiguous():
        raise ValueError(f"{what}: expected a contiguous x [T, N], got shape {tuple(x.shape)} "
                         f"(contiguous={x.is_contiguous()})")
    if x.dtype not in DTYPES:
        raise ValueError(f"{what}: storage dtype must be one of {DTYPES}, got {x.dtype}")
    T, N = x.shape
    for name, s in states:
        if s.shape != (N,) or not s.is_contiguous() or s.dtype != x.dtype or s.device != x.device:
            raise ValueError(f"{what}: expected {name} contiguous [{N}] {x.dtype} on {x.device}, "
                             f"got {tuple(s.shape)} {s.dtype} on {s.device} "
                             f"(contiguous={s.is_contiguous()})")
    return T, N


def check_scalar(what: str, name: str, t: Tensor, device: torch.device) -> None:
    """Raise ``ValueError`` unless ``t`` is a 0-dim (or one-element) float tensor on ``device``."""
    if (not isinstance(t, Tensor) or t.numel() != 1 or not t.is_floating_point()
            or t.device != device):
        raise ValueError(f"{what}: expected {name} a 0-dim float tensor on {device}, got "
                         + (f"{tuple(t.shape)} {t.dtype} on {t.device}" if isinstance(t, Tensor)
                            else type(t).__name__))


def saved_buffer(x: Tensor, keep: bool) -> Tensor:
    """The tensor kept for backward: float32 ``[T, N]`` when ``keep``, else ``[0, N]``."""
    T, N = x.shape
    return torch.empty((T if keep else 0, N), dtype=torch.float32, device=x.device)


def reduce_parts(parts: Tensor, needs: Sequence[bool]) -> list[Tensor]:
    """One 0-dim float32 tensor per row of the per-program partial sums ``parts [rows, programs]``:
    the row's sum where ``needs[row]``, else zero. Each is a device reduction in a fixed order
    (deterministic; no atomics, no host synchronisation) and its own tensor (no aliasing)."""
    return [parts[i].sum() if need else parts.new_zeros(()) for i, need in enumerate(needs)]
