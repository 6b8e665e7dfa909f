"""``spikeflow::pack_bits`` / ``spikeflow::unpack_bits``: lossless 1-bit storage of spike tensors.

A float tensor, read flat (in memory order), whose values are all ``+0.0`` or one constant ``c``
(spikes, pooled spikes, spikes scaled by dropout) packs into ``ceil(numel / 8)`` bytes (bit ``k``
of byte ``j`` is element ``8 j + k``) plus ``c``; 32x smaller for float32::

    pack_bits(x)                 -> (bits uint8 [ceil(n/8)], value [] x.dtype, ok [] bool)
    unpack_bits(bits, value, n)  -> [n] value.dtype:  value where a bit is set, +0.0 elsewhere

``ok`` is false when a third value occurs (then ``bits`` is not meaningful). The test compares bit
patterns, so ``value`` is the first element whose pattern is not ``+0.0`` (1.0 when there is none)
and unpacking restores every value bit for bit (``-0.0`` packs only as the constant). Neither op is
differentiable (they store tensors saved for backward, ``spikeflow.train.memory``).

Implementations: reference (plain torch below, any float dtype and device: the oracle and the
export form), CPU (numba, ``_cpu/packing.py``, float32/float64), CUDA (the reference), fake.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import torch
from torch import Tensor

from spikeflow.ops._neuron_op import DECOMPOSITIONS, _module
from spikeflow.ops.dispatch import CPU_DTYPES, fused_problem, tracing

__all__ = ["pack_bits", "unpack_bits", "packed_size", "reference_pack", "reference_unpack"]

_CPU = "spikeflow.ops._cpu.packing"
_INT_VIEW = {torch.float64: torch.int64, torch.float32: torch.int32, torch.float16: torch.int16,
             torch.bfloat16: torch.int16}


def packed_size(numel: int) -> int:
    """Bytes of the packed bits of ``numel`` elements."""
    return -(-numel // 8)


def _check_float(x: Tensor, what: str) -> None:
    if x.dtype not in _INT_VIEW:
        raise ValueError(f"{what}: expected a float64/float32/float16/bfloat16 tensor, "
                         f"got {x.dtype}")


# ---------------------------------------------------------------- reference (plain torch)
def reference_pack(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Plain-torch ``(bits, value, ok)`` of ``x`` read flat (no host synchronisation)."""
    _check_float(x, "pack_bits")
    flat = x.detach().reshape(-1)
    xi = flat.view(_INT_VIEW[flat.dtype])
    nz = xi != 0
    n = flat.numel()
    if n == 0:
        return (torch.empty(0, dtype=torch.uint8, device=x.device), flat.new_ones(()),
                torch.ones((), dtype=torch.bool, device=x.device))
    first = nz.to(torch.uint8).argmax()  # the first non-zero pattern (0 when there is none)
    any_nz = nz[first]
    value = torch.where(any_nz, flat[first], flat.new_ones(()))
    ok = (~nz | (xi == xi[first])).all()
    padded = torch.zeros(packed_size(n) * 8, dtype=torch.int32, device=x.device)
    padded[:n] = nz.to(torch.int32)
    shifts = torch.arange(8, dtype=torch.int32, device=x.device)
    bits = (padded.view(-1, 8) << shifts).sum(1).to(torch.uint8)
    return bits, value, ok


def reference_unpack(bits: Tensor, value: Tensor, numel: int) -> Tensor:
    """Plain-torch flat ``[numel]`` tensor of ``bits`` (``value``'s dtype and device)."""
    shifts = torch.arange(8, dtype=torch.int32, device=bits.device)
    set_ = ((bits.to(torch.int32).unsqueeze(1) >> shifts) & 1).bool().reshape(-1)[:numel]
    return torch.where(set_, value.to(bits.device), torch.zeros((), dtype=value.dtype,
                                                                device=bits.device))


# ---------------------------------------------------------------- device dispatch
def _fused(x: Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype in CPU_DTYPES and fused_problem(x) is None


def pack_impl(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """numba on CPU float32/float64, else the reference."""
    if not _fused(x):
        return reference_pack(x)
    bits, value, ok = _module(_CPU).pack(x)  # reads x flat (a copy only if not contiguous)
    return bits, value, torch.from_numpy(np.array(ok))


def unpack_impl(bits: Tensor, value: Tensor, numel: int) -> Tensor:
    """numba on CPU float32/float64, else the reference."""
    if bits.device.type != "cpu" or not _fused(value):
        return reference_unpack(bits, value, numel)
    return _module(_CPU).unpack(bits, value.detach(), numel)


# ---------------------------------------------------------------- the registered custom ops
@torch.library.custom_op("spikeflow::pack_bits", mutates_args=())
def _pack_op(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    return reference_pack(x)


_pack_op.register_kernel("cpu")(pack_impl)


@_pack_op.register_fake
def _(x):
    return (x.new_empty((packed_size(x.numel()),), dtype=torch.uint8), x.new_empty(()),
            x.new_empty((), dtype=torch.bool))


@torch.library.custom_op("spikeflow::unpack_bits", mutates_args=())
def _unpack_op(bits: Tensor, value: Tensor, numel: int) -> Tensor:
    return reference_unpack(bits, value, numel)


_unpack_op.register_kernel("cpu")(unpack_impl)


@_unpack_op.register_fake
def _(bits, value, numel):
    return bits.new_empty((numel,), dtype=value.dtype)


_PACK = torch.ops.spikeflow.pack_bits.default
_UNPACK = torch.ops.spikeflow.unpack_bits.default
DECOMPOSITIONS[_PACK] = reference_pack
DECOMPOSITIONS[_UNPACK] = reference_unpack


# ---------------------------------------------------------------- public functions
def pack_bits(x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(bits, value, ok)`` of ``x`` (any shape, read flat in its logical order; see the module
    docstring). ``ok`` is a 0-dim bool tensor; ``bits`` holds ``ceil(x.numel() / 8)`` bytes."""
    if not isinstance(x, Tensor):
        raise TypeError(f"pack_bits: x must be a torch.Tensor, got {type(x).__name__}")
    _check_float(x, "pack_bits")
    if tracing(x):
        return _PACK(x)
    return pack_impl(x)


def unpack_bits(bits: Tensor, value: Tensor, shape: Optional[torch.Size | tuple[int, ...]] = None,
                numel: Optional[int] = None) -> Tensor:
    """The tensor packed by :func:`pack_bits`: ``value`` where a bit is set, +0.0 elsewhere, of
    ``value``'s dtype and ``shape`` (or flat ``[numel]``; one of the two is needed)."""
    if shape is None and numel is None:
        raise ValueError("unpack_bits: give the shape (or the number of elements) to restore")
    n = int(numel) if shape is None else int(torch.Size(shape).numel())
    if bits.dtype != torch.uint8 or bits.dim() != 1 or bits.numel() != packed_size(n):
        raise ValueError(f"unpack_bits: bits must be uint8 [{packed_size(n)}] for {n} elements, "
                         f"got {bits.dtype} {tuple(bits.shape)}")
    _check_float(value, "unpack_bits")
    value = value.reshape(())
    out = _UNPACK(bits, value, n) if tracing(bits) else unpack_impl(bits, value, n)
    return out if shape is None else out.view(shape)
