"""The event array type, the sensor size and the error raised for malformed event files.

Events are numpy structured arrays with fields ``x, y, t, p`` (tonic-compatible names), sorted by
``t``; ``t`` is int64 microseconds, ``p`` is 0 (OFF) or 1 (ON). Functions that need the order sort
unsorted input first (:func:`sort_events`, stable) or, at the index level
(:func:`~spikeflow.events.functional.bins.frame_slices`), raise.

    >>> ev = make_events(x=[1, 2], y=[0, 3], t=[10, 20], p=[1, 0])
    >>> ev.dtype.names, int(ev["t"][-1])
    (('x', 'y', 't', 'p'), 20)
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "<i1")])


class SensorSize(NamedTuple):
    """Sensor geometry: ``width`` (x range), ``height`` (y range), number of ``polarities``."""

    width: int
    height: int
    polarities: int


class EventFormatError(ValueError):
    """A malformed event file: the message names the file, the byte offset and what was expected."""

    def __init__(self, path: object, offset: int | None, message: str) -> None:
        where = f"{path}" + (f" at byte {offset}" if offset is not None else "")
        super().__init__(f"{where}: {message}")
        self.path = path
        self.offset = offset


def empty_events(n: int = 0) -> np.ndarray:
    """A zero-filled event array of length ``n``."""
    return np.zeros(n, dtype=EVENT_DTYPE)


def as_events(array: np.ndarray, what: object = "events") -> np.ndarray:
    """Convert a structured array with fields ``x, y, t, p`` to ``EVENT_DTYPE`` (copy only if needed).

    Raises ``ValueError`` naming ``what`` when a field is missing. Order is kept as given.
    """
    names = array.dtype.names or ()
    missing = [k for k in ("x", "y", "t", "p") if k not in names]
    if missing:
        raise ValueError(f"{what}: expected a structured array with fields x, y, t, p; "
                         f"missing {missing} (got fields {list(names)})")
    if array.dtype == EVENT_DTYPE:
        return array
    out = np.empty(array.shape[0], dtype=EVENT_DTYPE)
    for k in ("x", "y", "t", "p"):
        out[k] = array[k]
    return out


def is_time_sorted(t: np.ndarray) -> bool:
    """True when the timestamps ``t`` are non-decreasing."""
    t = np.asarray(t)
    return t.size < 2 or bool(np.all(t[1:] >= t[:-1]))


def sort_events(events: np.ndarray) -> np.ndarray:
    """``events`` sorted by ``t``, stably (events with equal ``t`` keep their order).

    Already sorted input is returned as is (no copy); otherwise a sorted copy (the input is never
    modified). Every frame integration and event transform of spikeflow sorts its input with it,
    so unsorted streams give the frames of the sorted stream, never silently wrong ones.
    """
    if is_time_sorted(events["t"]):
        return events
    return events[np.argsort(events["t"], kind="stable")]


def make_events(x, y, t, p) -> np.ndarray:
    """Build an event array (sorted by ``t``, stable) from four equal-length sequences."""
    x, y, t, p = (np.asarray(a) for a in (x, y, t, p))
    n = len(t)
    if not (len(x) == len(y) == len(p) == n):
        raise ValueError(f"x, y, t, p must have equal lengths, got {len(x)}, {len(y)}, {n}, {len(p)}")
    ev = np.empty(n, dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["t"], ev["p"] = x, y, t, p
    return sort_events(ev)
