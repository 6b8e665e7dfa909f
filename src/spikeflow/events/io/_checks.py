"""Checks every event reader applies before returning events (one rule for all formats).

* **Negative timestamps** are never valid (no supported format can encode one except through a
  corrupted sign bit or overflow counter): :class:`EventFormatError` naming the file and the
  first bad event.
* **Order**: events are returned sorted by ``t``. A step back in file order of at most
  :data:`MAX_BACKSTEP_US` (1 s) is sensor/readout jitter (DAVIS APS/IMU samples, multi-packet
  recordings) and is sorted away (stable sort); a larger step back cannot come from a sensor
  clock and is reported as corruption, naming the first event whose ``t`` is smaller than its
  predecessor's by more than the limit.
* **Columns** of container formats (``.npy``/``.npz``/HDF5, written by any tool) must hold whole
  numbers that fit the event fields: ``0 <= x, y <= 32767``, ``p`` in ``{0, 1}``,
  ``0 <= t < 2**63`` µs (floats only when finite and integral).
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from spikeflow.events.types import EVENT_DTYPE, EventFormatError

MAX_BACKSTEP_US = 1_000_000
"""Largest step back in time (µs, file order) that is sorted rather than rejected."""

_LIMITS = {"x": (0, np.iinfo(np.int16).max), "y": (0, np.iinfo(np.int16).max), "p": (0, 1),
           "t": (np.iinfo(np.int64).min, np.iinfo(np.int64).max)}  # t < 0: finish_events


def finish_events(ev: np.ndarray, path: object,
                  offset_of: Callable[[int], int | None] | None = None) -> np.ndarray:
    """Validate the timestamps of decoded events (file order) and return them sorted by ``t``.

    ``offset_of(i)`` maps an event index to its byte offset in the file for the error message.
    """
    t = ev["t"]
    if t.size == 0:
        return ev
    where = (lambda i: offset_of(i)) if offset_of is not None else (lambda i: None)
    neg = np.flatnonzero(t < 0)
    if neg.size:
        i = int(neg[0])
        raise EventFormatError(path, where(i), f"event {i} (file order) has a negative timestamp "
                               f"t = {int(t[i])} µs; expected t >= 0 ({neg.size} such events)")
    if t.size > 1:
        step = np.diff(t)
        back = np.flatnonzero(step < -MAX_BACKSTEP_US)
        if back.size:
            i = int(back[0]) + 1
            raise EventFormatError(
                path, where(i), f"event {i} (file order) has t = {int(t[i])} µs, "
                f"{int(t[i - 1]) - int(t[i])} µs before event {i - 1} (t = {int(t[i - 1])}); "
                f"timestamps may step back by at most {MAX_BACKSTEP_US} µs (corrupt timestamp?)")
        if np.any(step < 0):
            ev = ev[np.argsort(t, kind="stable")]
    return ev


def events_from_columns(columns: Mapping[str, np.ndarray], path: object,
                        what: str = "column ") -> np.ndarray:
    """Build events from ``x, y, t, p`` columns of any numeric dtype, checking every value.

    Raises :class:`EventFormatError` naming the column and the first bad index when a column is
    not numeric, a float is not a whole number, a value does not fit (see the module doc) or the
    lengths differ. The result is validated and sorted by :func:`finish_events`.
    """
    n = None
    for name in ("x", "y", "t", "p"):
        col = np.asarray(columns[name])
        label = f"{what}{name!r}"
        if col.ndim != 1:
            raise EventFormatError(path, None, f"{label} has shape {col.shape}; "
                                   f"expected one value per event")
        if n is None:
            n = col.size
        elif col.size != n:
            raise EventFormatError(path, None, f"{label} has {col.size} values; expected "
                                   f"{n} (the length of the other columns)")
        kind = col.dtype.kind
        if kind not in "biuf":
            raise EventFormatError(path, None, f"{label} has dtype {col.dtype}; expected "
                                   f"integers (or whole-number floats)")
        lo, hi = _LIMITS[name]
        if kind == "f":
            bad = ~np.isfinite(col)
            bad |= ~bad & (col != np.floor(np.where(bad, 0, col)))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise EventFormatError(path, None, f"{label}: value {col[i].item()!r} at index "
                                       f"{i} is not a finite whole number")
            bad = (col < lo) | (col >= float(hi) + 1)
        elif col.size:
            bad = (col < lo) | (col > hi) if kind != "b" else np.zeros(col.size, bool)
        else:
            bad = np.zeros(0, bool)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise EventFormatError(path, None, f"{label}: value {col[i].item()!r} at index {i} "
                                   f"is outside {lo}..{hi}" + (" (map -1/+1 polarities to 0/1)"
                                                               if name == "p" else ""))
    ev = np.empty(n or 0, dtype=EVENT_DTYPE)
    for name in ("x", "y", "t", "p"):
        ev[name] = np.asarray(columns[name])
    return finish_events(ev, path)
