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


def accumulate_numpy(events: np.ndarray, sensor: SensorSize, starts: np.ndarray,
                     ends: np.ndarray, *, accumulate: str = "sum", ds: int = 1,
                     merge_polarity: bool = False, origin_us: int = 0) -> np.ndarray:
    """Reference implementation with ``np.bincount`` (one call per frame)."""
    _check(events, sensor, accumulate, ds)
    t_n, p_n, h_n, w_n = out_shape(sensor, len(starts), ds, merge_polarity)
    x, y, p = (events[k].astype(np.intp) for k in ("x", "y", "p"))
    bad = (x < 0) | (x >= sensor.width) | (y < 0) | (y >= sensor.height) | (p < 0) | (
        p >= sensor.polarities)
    sel = np.zeros(len(events), dtype=bool)
    for s, e in zip(starts, ends):
        sel[s:e] = True
    if np.any(bad & sel):
        raise _bad_event(events, int(np.flatnonzero(bad & sel)[0]), sensor)
    pix = (y // ds) * w_n + x // ds
    if not merge_polarity:
        pix += p * (h_n * w_n)
    size = p_n * h_n * w_n
    out = np.zeros((t_n, size), dtype=np.float32)
    for i, (s, e) in enumerate(zip(starts, ends)):
        if e <= s:
            continue
        idx = pix[s:e]
        if accumulate == "or_ms":
            ms = (events["t"][s:e] - origin_us) // 1000
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

    Uses the compiled kernel when numba is importable (disable with ``SPIKEFLOW_NUMBA=0``);
    otherwise :func:`accumulate_numpy`. Both give identical results.
    """
    kernel = None
    if _use_numba():
        from spikeflow.events.functional import _kernels

        kernel = _kernels.count_kernel()
    if kernel is None:
        return accumulate_numpy(events, sensor, starts, ends, accumulate=accumulate, ds=ds,
                                merge_polarity=merge_polarity, origin_us=origin_us)
    _check(events, sensor, accumulate, ds)
    shape = out_shape(sensor, len(starts), ds, merge_polarity)
    out = np.zeros(int(np.prod(shape)), dtype=np.float32)
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    if len(events) and (starts.min(initial=0) < 0 or ends.max(initial=0) > len(events)):
        raise ValueError(f"frame slices out of range for {len(events)} events")
    last_key = np.full(shape[1] * shape[2] * shape[3] if accumulate == "or_ms" else 1, -1,
                       dtype=np.int64)
    bad = kernel(events["x"], events["y"], events["p"], events["t"], starts, ends,
                 int(sensor.width), int(sensor.height), int(sensor.polarities), int(ds),
                 shape[3], shape[2], bool(merge_polarity), _MODE[accumulate], int(origin_us),
                 last_key, out)
    if bad >= 0:
        raise _bad_event(events, int(bad), sensor)
    return out.reshape(shape)
