"""Where each frame's events start and end: index ranges ``[starts[i], ends[i])`` into ``t``.

Events are sorted by ``t``, so every frame is a contiguous slice. Modes (``M`` = ``n_frames``):

* ``"number"`` (SpikingJelly): ``di = N // M``; frame i = events ``[i*di, (i+1)*di)``, the last
  frame takes the remainder (``ends[-1] = N``).
* ``"time"`` (SpikingJelly): ``dt = (t_last - t_first) // M``; frame i = events with
  ``t_first + i*dt <= t < t_first + (i+1)*dt``; the last frame extends to the last event.
* ``"window"`` (He2020, ASA): frame i = ``origin + i*window_us <= t < origin + (i+1)*window_us``
  with ``origin = start_us`` or the first event; events outside the M windows are dropped.
* ``"iir"`` (snn-iir Gesture): ``width = (t_last - t_first + 1) // M`` µs from the first event;
  events past ``M * width`` (the partial last bin) are dropped. With ``ms_bins=True`` (the
  snn-iir "MAX" variant) the width is computed in whole milliseconds,
  ``width = ((t_last - t_first) // 1000 + 1) // M`` ms.

``durations[i]`` is the frame's length in µs (for ``"frequency"`` normalisation): the bin width,
the last ``"time"`` frame's actual span, or for ``"number"`` the span of the frame's events.
"""
from __future__ import annotations

import numpy as np

SPLITS = ("number", "time", "window", "iir")


def _by_edges(t: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    idx = np.searchsorted(t, edges, side="left")
    return idx[:-1].astype(np.int64), idx[1:].astype(np.int64)


def frame_slices(t: np.ndarray, n_frames: int, split_by: str = "number", *,
                 window_us: int | None = None, start_us: int | None = None,
                 ms_bins: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(starts, ends, durations_us, origin_us)`` for ``n_frames`` frames over sorted ``t``.

    ``origin_us`` is the time the first frame starts at (the first event unless ``start_us``).
    Raises ``ValueError`` when ``t`` is not sorted.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be >= 1, got {n_frames}")
    t = np.asarray(t)  # a strided field view is fine
    if t.size > 1 and not bool(np.all(t[1:] >= t[:-1])):
        raise ValueError("frame_slices: timestamps t must be sorted (non-decreasing): frames are "
                         "contiguous index ranges; sort the events first "
                         "(spikeflow.events.sort_events; to_frames/integrate do it for you)")
    if t.dtype != np.int64:
        t = t.astype(np.int64)
    n, m = t.size, int(n_frames)
    first = int(t[0]) if n else 0
    if split_by == "number":
        di = n // m
        starts = np.arange(m, dtype=np.int64) * di
        ends = starts + di
        ends[-1] = n
        nonempty = ends > starts
        durations = np.zeros(m, dtype=np.int64)
        durations[nonempty] = t[ends[nonempty] - 1] - t[starts[nonempty]]
        return starts, ends, durations, first
    if split_by == "time":
        dt = (int(t[-1]) - first) // m if n else 0
        edges = first + np.arange(m + 1, dtype=np.int64) * dt
        starts, ends = _by_edges(t, edges)
        ends[-1] = n
        durations = np.full(m, dt, dtype=np.int64)
        durations[-1] = (int(t[-1]) if n else first) - int(edges[m - 1])
        return starts, ends, durations, first
    if split_by == "window":
        if window_us is None or window_us < 1:
            raise ValueError(f"split_by='window' needs window_us >= 1, got {window_us}")
        origin = first if start_us is None else int(start_us)
        edges = origin + np.arange(m + 1, dtype=np.int64) * int(window_us)
        starts, ends = _by_edges(t, edges)
        return starts, ends, np.full(m, int(window_us), dtype=np.int64), origin
    if split_by == "iir":
        span = int(t[-1]) - first if n else 0
        width = max((span // 1000 + 1) // m, 1) * 1000 if ms_bins else max((span + 1) // m, 1)
        edges = first + np.arange(m + 1, dtype=np.int64) * width
        starts, ends = _by_edges(t, edges)
        return starts, ends, np.full(m, width, dtype=np.int64), first
    raise ValueError(f"split_by must be one of {SPLITS}, got {split_by!r}")
