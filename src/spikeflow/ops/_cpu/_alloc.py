"""Output allocation for the fused kernels: large buffers on transparent huge pages.

A fresh 32 MiB tensor costs 8192 first-touch page faults; on the VMs we measured that was more CPU
time than the kernel itself (glibc serves allocations above 32 MiB with a fresh ``mmap`` every
time). When the kernel's transparent-huge-page mode is ``madvise``, :func:`empty` returns buffers of
at least 4 MiB aligned to 2 MiB and marked ``MADV_HUGEPAGE``: 512x fewer faults, which halved the
fused LIF forward+backward CPU time. This is what PyTorch's opt-in ``THP_MEM_ALLOC_ENABLE=1`` does
for all its CPU allocations.

Freed buffers are reused: each buffer handed out stays in a small cache (at most
``CACHE_PER_SIZE`` per byte size), and a buffer whose only remaining reference is the cache's (no
tensor, view or numpy array uses it any more) is handed out again instead of mapping fresh memory,
so a training loop that allocates the same shapes every step pays no page faults after its first
step (zeroing fresh pages cost ~2 ms per 32 MiB on the machines we measured, a quarter of the fused
LIF forward+backward). Like PyTorch's CUDA caching allocator, this keeps the memory of up to
``CACHE_PER_SIZE`` buffers per size mapped while they are unused. Set ``SPIKEFLOW_HUGEPAGES=0`` to
use plain ``torch.empty`` (no huge pages, no cache).

The tensors are ordinary CPU tensors backed by a numpy buffer (not resizable with ``resize_``).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import sys
import threading
from functools import lru_cache
from typing import Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

__all__ = ["empty", "empty_like", "hugepages_enabled"]

HUGE_PAGE = 1 << 21
MIN_BYTES = 1 << 22
MADV_HUGEPAGE = 14
CACHE_PER_SIZE = 4
_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}
_cache: dict[int, list[np.ndarray]] = {}  # byte size -> raw buffers handed out before
_offset: dict[int, int] = {}  # id of a raw buffer -> bytes from its start to the 2 MiB boundary
_cache_lock = threading.Lock()


@lru_cache(maxsize=1)
def _madvise() -> Optional[ctypes._CFuncPtr]:  # type: ignore[name-defined]
    """libc's ``madvise`` when huge pages are worth requesting, else ``None``."""
    if not sys.platform.startswith("linux") or os.environ.get("SPIKEFLOW_HUGEPAGES", "1") == "0":
        return None
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            if "[madvise]" not in f.read():  # "[always]": the kernel does it; "[never]": nothing to do
                return None
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.madvise
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def hugepages_enabled() -> bool:
    """Whether :func:`empty` requests transparent huge pages on this machine."""
    return _madvise() is not None


def empty(shape: Sequence[int], dtype: torch.dtype) -> Tensor:
    """An uninitialised CPU tensor, on huge pages when it is large and they are available."""
    madvise = _madvise()
    shape = tuple(shape)
    nbytes = math.prod(shape) * dtype.itemsize
    if madvise is None or nbytes < MIN_BYTES or dtype not in _NUMPY:
        return torch.empty(shape, dtype=dtype)
    with _cache_lock:  # the reuse test and the new reference must not interleave with another thread
        cached = _cache.setdefault(nbytes, [])
        raw = next((r for r in cached if sys.getrefcount(r) == _UNUSED_REFS), None)
        if raw is None:
            raw = np.empty(nbytes + HUGE_PAGE, dtype=np.uint8)  # untouched pages: no memory used yet
            address = raw.__array_interface__["data"][0]
            offset = (-address) % HUGE_PAGE
            if madvise(address + offset, nbytes - nbytes % HUGE_PAGE, MADV_HUGEPAGE) != 0:
                return torch.empty(shape, dtype=dtype)
            if len(cached) < CACHE_PER_SIZE:
                cached.append(raw)
                _offset[id(raw)] = offset  # cached buffers live for the process: ids stay theirs
        else:
            offset = _offset[id(raw)]
        buf = raw[offset:offset + nbytes].view(_NUMPY[dtype]).reshape(shape)
    return torch.from_numpy(buf)  # buf (and so the tensor's storage) holds a reference to raw


def _count_unused_refs() -> int:
    """``sys.getrefcount`` of a cached buffer that nothing else references (inside the search)."""
    probe = [np.empty(1)]
    return next(sys.getrefcount(r) for r in probe)


_UNUSED_REFS = _count_unused_refs()


def empty_like(t: Tensor) -> Tensor:
    """:func:`empty` with the shape and dtype of ``t`` (contiguous, CPU)."""
    return empty(t.shape, t.dtype)


_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def zeros(shape: Sequence[int], dtype: torch.dtype, device: Union[str, torch.device] = "cpu") -> Tensor:
    """``torch.zeros`` that, for CPU float32/float64, comes from numpy's ``calloc`` instead.

    torch fills large tensors in an OpenMP parallel region; its worker threads then spin for a
    millisecond or two on the cores that a fused kernel is about to use (measured: the LIF forward
    at T=32 took 5.0 instead of 2.7 ms on 2 threads). Zero pages from ``calloc`` need no fill.
    """
    if torch.device(device).type == "cpu" and dtype in _NUMPY_DTYPES:
        return torch.from_numpy(np.zeros(tuple(shape), dtype=_NUMPY_DTYPES[dtype]))
    return torch.zeros(tuple(shape), dtype=dtype, device=device)
