"""Compiled (numba) event->frame accumulation: one pass over the events, no temporaries.

This module is imported on first use only, so ``import spikeflow.events`` stays numpy-only.
The kernels are tested against :func:`spikeflow.events.functional.accumulate.accumulate_numpy`.
Every kernel returns -1, or a value >= 0 when an event lies outside the sensor (the caller then
locates it exactly with numpy).

Design notes (measured with ``benchmarks/frames.py``): the plain ``ds == 1`` loop has no integer
division (``x // ds`` would cost more than the scatter itself); downsampling goes through small
lookup tables instead; flat indices are computed per block before the scatter (about 1.6x
faster than one fused loop); counts are kept in a reused int32 frame, converted once per frame.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

try:  # numba is a dependency, but keep the numpy path usable without it
    import numba
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None


BLOCK = 4096


def _count_sum(xy, p, starts, ends, width, height, polarities, pstride, size, xmap, ymap,
               binary, out):
    """Frame i of ``out`` = counts of ``p*pstride + ymap[y] + xmap[x]`` (clamped to 1 if
    ``binary``); returns the start of the first block holding an out-of-sensor event, or -1.

    ``xy`` is the little-endian uint32 ``x | y << 16`` of each event (both int16 fields read
    with one load). Two passes per block of events: flat indices with a branch-free range check
    (the strided field loads dominate), then the scatter into a reused int32 frame; each
    finished frame is written to ``out`` once, so ``out`` may be uninitialised.
    """
    plain = xmap.size == 0
    loc = np.zeros(size, np.int32)
    buf = np.empty(BLOCK, np.int64)
    uw, uh, up = np.uint64(width), np.uint64(height), np.uint64(polarities)
    for i in range(starts.size):
        j0, j1 = starts[i], ends[i]
        while j0 < j1:
            n = min(BLOCK, j1 - j0)
            bad = False
            if plain:
                for u in range(n):
                    v = xy[j0 + u]
                    xi = np.int64(np.int16(v & 0xFFFF))
                    yi = np.int64(np.int16(v >> 16))
                    pi = np.int64(p[j0 + u])
                    bad |= ((np.uint64(xi) >= uw) | (np.uint64(yi) >= uh)
                            | (np.uint64(pi) >= up))
                    buf[u] = pi * pstride + yi * width + xi
            else:
                for u in range(n):
                    v = xy[j0 + u]
                    xi = np.int64(np.int16(v & 0xFFFF))
                    yi = np.int64(np.int16(v >> 16))
                    pi = np.int64(p[j0 + u])
                    bad |= ((np.uint64(xi) >= uw) | (np.uint64(yi) >= uh)
                            | (np.uint64(pi) >= up))
                    xc = min(max(xi, 0), width - 1)  # keep table reads in bounds
                    yc = min(max(yi, 0), height - 1)
                    buf[u] = pi * pstride + ymap[yc] + xmap[xc]
            if bad:
                return j0
            for u in range(n):
                loc[buf[u]] += 1
            j0 += n
        base = i * size
        if binary:
            for k in range(size):
                out[base + k] = min(loc[k], 1)
                loc[k] = 0
        else:
            for k in range(size):
                out[base + k] = loc[k]
                loc[k] = 0
    return -1


def _count_ms(x, y, p, t, starts, ends, width, height, polarities, pstride, size, xmap, ymap,
              origin, last_key, out):
    """Distinct milliseconds per pixel and frame (``last_key`` holds ``ms * T + frame`` of the
    last counted event of each pixel; events are sorted, so equal keys are adjacent)."""
    n_frames = starts.size
    for i in range(n_frames):
        base = i * size
        for j in range(starts[i], ends[i]):
            xi = np.int64(x[j])
            yi = np.int64(y[j])
            pi = np.int64(p[j])
            if xi < 0 or xi >= width or yi < 0 or yi >= height or pi < 0 or pi >= polarities:
                return j
            k = pi * pstride + ymap[yi] + xmap[xi]
            key = ((t[j] - origin) // 1000) * n_frames + i
            if last_key[k] != key:
                last_key[k] = key
                out[base + k] += 1.0
    return -1


def _jit(fn: Callable) -> Callable | None:
    if numba is None:
        return None
    from spikeflow._numba_cache import ensure_numba_cache

    ensure_numba_cache()  # numba's cache in the user cache folder, not the package
    return numba.njit(cache=True, nogil=True, error_model="numpy")(fn)


_SUM = _jit(_count_sum)
_MS = _jit(_count_ms)


def kernels() -> tuple[Callable, Callable] | None:
    """``(sum kernel, distinct-ms kernel)``, or None when numba is unavailable."""
    return None if _SUM is None else (_SUM, _MS)
