"""Compiled (numba) event->frame accumulation: one pass over the events, no temporaries.

This module is imported on first use only, so ``import spikeflow.events`` stays numpy-only.
The kernel is tested against :func:`spikeflow.events.functional.accumulate.accumulate_numpy`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

try:  # numba is a dependency, but keep the numpy path usable without it
    import numba
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None


def _count(x, y, p, t, starts, ends, width, height, polarities, ds, w_out, h_out, merge,
           mode, origin, last_key, out):
    """Accumulate into flat ``out``; returns the index of the first out-of-sensor event or -1.

    ``mode``: 0 sum, 1 or, 2 distinct milliseconds (``last_key`` holds ``ms * T + frame`` of
    the last counted event per pixel; events are sorted, so equal keys are adjacent in time).
    """
    hw = h_out * w_out
    size = hw if merge else polarities * hw
    n_frames = starts.size
    for i in range(n_frames):
        base = i * size
        for j in range(starts[i], ends[i]):
            xi = np.int64(x[j])
            yi = np.int64(y[j])
            pi = np.int64(p[j])
            if xi < 0 or xi >= width or yi < 0 or yi >= height or pi < 0 or pi >= polarities:
                return j
            k = (yi // ds) * w_out + xi // ds
            if not merge:
                k += pi * hw
            if mode == 0:
                out[base + k] += 1.0
            elif mode == 1:
                out[base + k] = 1.0
            else:
                key = ((t[j] - origin) // 1000) * n_frames + i
                if last_key[k] != key:
                    last_key[k] = key
                    out[base + k] += 1.0
    return -1


_COMPILED = numba.njit(cache=True, nogil=True)(_count) if numba is not None else None


def count_kernel() -> Callable | None:
    """The compiled kernel, or None when numba is unavailable."""
    return _COMPILED
