"""Time-axis event functions: windows, ASA's random consecutive slice and multi-clip test windows,
time jitter. Inputs are never modified; random functions take an explicit ``numpy`` Generator.
Unsorted input is sorted by ``t`` first (stable); outputs are sorted.
"""
from __future__ import annotations

import numpy as np

from spikeflow.events.types import sort_events


def time_window(events: np.ndarray, start_us: int, end_us: int) -> np.ndarray:
    """Events with ``start_us <= t < end_us`` (a sorted copy)."""
    events = sort_events(events)
    t = events["t"]
    lo, hi = np.searchsorted(t, [start_us, end_us], side="left")
    return events[lo:hi].copy()


def random_consecutive_slice(events: np.ndarray, length_us: int, rng: np.random.Generator
                             ) -> np.ndarray:
    """ASA's "RCS" training crop: a random window ``[s, s + length_us)`` of the recording.

    ``s`` is uniform over the integers ``[t_first, t_last - length_us]``; a recording no longer
    than ``length_us`` starts at ``t_first`` (ASA ``sample_train``).
    """
    if length_us < 1:
        raise ValueError(f"length_us must be >= 1, got {length_us}")
    if len(events) == 0:
        return events.copy()
    events = sort_events(events)
    t0, t1 = int(events["t"][0]), int(events["t"][-1])
    start = t0 if t1 - t0 <= length_us else int(rng.integers(t0, t1 - length_us, endpoint=True))
    return time_window(events, start, start + length_us)


def random_window_start(events: np.ndarray, length_us: int, pad_us: int, rng: np.random.Generator
                        ) -> np.ndarray:
    """DCLL's training window (the DVS Gesture loader of He et al. 2020, ``compute_start_time``):
    ``[s, s + length_us)`` with ``s`` uniform over the integers ``[t_first, t_last - pad_us)``
    (numpy ``randint``: end excluded; DCLL pads by ``2 T dt`` for a ``T dt`` window). A recording
    with ``t_last - pad_us <= t_first`` starts at ``t_first`` (DCLL would fail there). DCLL draws
    between the label's start/end times; here the first/last event stand in for them.
    """
    if length_us < 1 or pad_us < 0:
        raise ValueError(f"need length_us >= 1 and pad_us >= 0, got {length_us}, {pad_us}")
    if len(events) == 0:
        return events.copy()
    events = sort_events(events)
    t0, t1 = int(events["t"][0]), int(events["t"][-1])
    start = int(rng.integers(t0, t1 - pad_us)) if t1 - pad_us > t0 else t0
    return time_window(events, start, start + length_us)


def clip_windows(t_first: int, t_last: int, n_clips: int, length_us: int) -> np.ndarray:
    """ASA's test clips: ``[n_clips, 2]`` absolute ``(start, end)`` windows of ``length_us``.

    With duration ``D = t_last - t_first`` and ``L = length_us`` (ASA ``sample_test``):
    if ``n*L > D`` the clips overlap by ``o = floor((n*L - D) / n)`` and start at ``j*(L - o)``;
    otherwise they are separated by ``g = floor((D - n*L) / n)`` and start at ``j*(L + g)``.
    A clip that would end after ``D`` is shifted back to end at ``D``.
    """
    if n_clips < 1 or length_us < 1:
        raise ValueError(f"need n_clips >= 1 and length_us >= 1, got {n_clips}, {length_us}")
    dur, n, L = int(t_last) - int(t_first), int(n_clips), int(length_us)
    j = np.arange(n, dtype=np.int64)
    if n * L - dur > 0:
        starts = j * (L - (n * L - dur) // n)
    else:
        starts = j * (L + (dur - n * L) // n)
    starts = np.where(starts + L > dur, dur - L, starts)
    starts = starts + int(t_first)
    return np.stack([starts, starts + L], axis=1)


def multi_clip(events: np.ndarray, n_clips: int, length_us: int) -> list[np.ndarray]:
    """Cut ``events`` into the ``n_clips`` test windows of :func:`clip_windows`."""
    if len(events) == 0:
        return [events.copy() for _ in range(n_clips)]
    events = sort_events(events)
    windows = clip_windows(int(events["t"][0]), int(events["t"][-1]), n_clips, length_us)
    return [time_window(events, int(s), int(e)) for s, e in windows]


def time_jitter(events: np.ndarray, std_us: float, rng: np.random.Generator,
                clip_negative: bool = True) -> np.ndarray:
    """Add ``round(N(0, std_us))`` to every timestamp, then re-sort (stable).

    With ``clip_negative`` timestamps below 0 become 0.
    """
    out = sort_events(events).copy()
    t = out["t"] + np.rint(rng.normal(0.0, std_us, len(out))).astype(np.int64)
    out["t"] = np.maximum(t, 0) if clip_negative else t
    return out[np.argsort(out["t"], kind="stable")]
