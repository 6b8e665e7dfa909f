"""Accumulate events into per-frame pixel values ``[T, P, H, W]`` (float32, integer valued).

``accumulate``:

* ``"sum"``: event count per (frame, polarity, y, x) — SpikingJelly / Tonic / ASA frames.
* ``"or"``: 1 where the pixel had at least one event in the frame (snn-iir binary frames).
* ``"or_ms"``: number of distinct milliseconds (``(t - origin) // 1000``) with an event at the
  pixel in the frame — snn-iir's "MAX"/"avg" encoding (1-ms OR, then summed per frame).

Coordinates are downsampled by an integer ``ds`` (``x // ds``, output ``ceil(W / ds)``), and
``merge_polarity`` sums both polarities into one channel. A compiled single-pass loop (numba)
is used when available; :func:`accumulate_numpy` (``np.bincount`` per frame) is the reference.
"""
from __future__ import annotations

import os

import numpy as np

from spikeflow.events.types import EVENT_DTYPE, SensorSize

ACCUMULATE = ("sum", "or", "or_ms")
# x (offset 0) and y (offset 2) of an EVENT_DTYPE record read as one little-endian uint32
_XY = np.dtype({"names": ["xy"], "formats": ["<u4"], "offsets": [0],
                "itemsize": EVENT_DTYPE.itemsize})
_MODE = {"sum": 0, "or": 1, "or_ms": 2}


def out_shape(sensor: SensorSize, n_frames: int, ds: int = 1, merge_polarity: bool = False
              ) -> tuple[int, int, int, int]:
    """``(T, P, H, W)`` of the frames for ``sensor`` after downsampling / polarity merge."""
    w, h, p = (int(v) for v in sensor)
    return (n_frames, 1 if merge_polarity else p, -(-h // ds), -(-w // ds))


def _check(events: np.ndarray, sensor: SensorSize, accumulate: str, ds: int) -> None:
    if accumulate not in _MODE:
        raise ValueError(f"accumulate must be one of {ACCUMULATE}, got {accumulate!r}")
    if int(ds) < 1:
        raise ValueError(f"ds (spatial downsampling factor) must be an integer >= 1, got {ds}")
    if events.dtype != EVENT_DTYPE:
        raise TypeError(f"events must have dtype EVENT_DTYPE, got {events.dtype}")


def _bad_event(events: np.ndarray, j: int, sensor: SensorSize) -> ValueError:
    e = events[j]
    return ValueError(f"event {j} (x={int(e['x'])}, y={int(e['y'])}, p={int(e['p'])}) lies outside "
                      f"the sensor {tuple(sensor)} (width, height, polarities)")


def _first_bad(events: np.ndarray, sensor: SensorSize, starts: np.ndarray,
               ends: np.ndarray) -> int:
    """Index of the first selected event outside the sensor, or -1 (min/max fast path)."""
    lo = int(min(starts.min(), ends.min())) if len(starts) else 0
    hi = int(ends.max()) if len(ends) else 0
    seg = events[lo:hi]
    if seg.size == 0:
        return -1
    limits = (("x", sensor.width), ("y", sensor.height), ("p", sensor.polarities))
    if all(seg[k].min() >= 0 and seg[k].max() < n for k, n in limits):
        return -1
    bad = np.zeros(len(events), dtype=bool)
    for k, n in limits:
        bad |= (events[k] < 0) | (events[k] >= n)
    sel = np.zeros(len(events), dtype=bool)
    for s, e in zip(starts, ends):
        sel[s:e] = True
    hits = np.flatnonzero(bad & sel)
    return int(hits[0]) if hits.size else -1


def accumulate_numpy(events: np.ndarray, sensor: SensorSize, starts: np.ndarray,
                     ends: np.ndarray, *, accumulate: str = "sum", ds: int = 1,
                     merge_polarity: bool = False, origin_us: int = 0) -> np.ndarray:
    """Reference implementation with ``np.bincount`` (one call per frame)."""
    _check(events, sensor, accumulate, ds)
    t_n, p_n, h_n, w_n = out_shape(sensor, len(starts), ds, merge_polarity)
    bad = _first_bad(events, sensor, starts, ends)
    if bad >= 0:
        raise _bad_event(events, bad, sensor)
    size = p_n * h_n * w_n
    out = np.zeros((t_n, size), dtype=np.float32)
    for i, (s, e) in enumerate(zip(starts, ends)):
        if e <= s:
            continue
        seg = events[s:e]
        idx = seg["y"].astype(np.intp) // ds * w_n
        idx += seg["x"] // ds
        if not merge_polarity:
            idx += seg["p"].astype(np.intp) * (h_n * w_n)
        if accumulate == "or_ms":
            ms = (seg["t"] - origin_us) // 1000
            idx = np.unique(ms * size + idx) % size
        counts = np.bincount(idx, minlength=size)
        out[i] = np.minimum(counts, 1) if accumulate == "or" else counts
    return out.reshape(t_n, p_n, h_n, w_n)


def _use_numba() -> bool:
    return os.environ.get("SPIKEFLOW_NUMBA", "1") not in ("0", "false", "no")


def accumulate(events: np.ndarray, sensor: SensorSize, starts: np.ndarray, ends: np.ndarray,
               *, accumulate: str = "sum", ds: int = 1, merge_polarity: bool = False,
               origin_us: int = 0) -> np.ndarray:
    """Frames ``[T, P, H, W]`` float32 from the event slices ``[starts[i], ends[i])``.

    Uses the compiled kernels when numba is importable (disable with ``SPIKEFLOW_NUMBA=0``);
    otherwise :func:`accumulate_numpy`. Both give identical results.
    """
    compiled = None
    if _use_numba():
        from spikeflow.events.functional import _kernels

        compiled = _kernels.kernels()
    if compiled is None:
        return accumulate_numpy(events, sensor, starts, ends, accumulate=accumulate, ds=ds,
                                merge_polarity=merge_polarity, origin_us=origin_us)
    _check(events, sensor, accumulate, ds)
    shape = out_shape(sensor, len(starts), ds, merge_polarity)
    t_n, p_n, h_n, w_n = shape
    size = p_n * h_n * w_n
    pstride = 0 if merge_polarity else h_n * w_n
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    if len(starts) and (starts.min() < 0 or ends.max() > len(events) or np.any(ends < starts)):
        raise ValueError(f"frame slices out of range for {len(events)} events")
    plain = ds == 1 and accumulate != "or_ms"
    xmap = np.zeros(0, np.int64) if plain else np.arange(sensor.width, dtype=np.int64) // ds
    ymap = (np.zeros(0, np.int64) if plain else
            (np.arange(sensor.height, dtype=np.int64) // ds) * w_n)
    w, h, n_pol = int(sensor.width), int(sensor.height), int(sensor.polarities)
    x, y, p = events["x"], events["y"], events["p"]
    if accumulate == "or_ms":
        out = np.zeros(t_n * size, dtype=np.float32)
        last_key = np.full(size, -1, dtype=np.int64)
        bad = compiled[1](x, y, p, events["t"], starts, ends, w, h, n_pol, pstride, size, xmap,
                          ymap, int(origin_us), last_key, out)
    else:
        out = np.empty(t_n * size, dtype=np.float32)  # the kernel writes every element
        bad = compiled[0](events.view(_XY)["xy"], p, starts, ends, w, h, n_pol, pstride, size,
                          xmap, ymap, accumulate == "or", out)
    if bad >= 0:
        raise _bad_event(events, _first_bad(events, sensor, starts, ends), sensor)
    return out.reshape(shape)
