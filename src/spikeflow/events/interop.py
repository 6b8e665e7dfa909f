"""Tonic interop: structured event arrays and ``sensor_size`` tuples in and out (numpy only).

Tonic and spikeflow use the same field names ``x, y, t, p`` and the same sensor order
``(width, height, polarities)``; :class:`~spikeflow.events.SensorSize` *is* such a tuple, so it
can be passed to tonic as ``sensor_size`` directly. What differs is the dtype (tonic datasets use
``int64`` fields, or ``bool`` polarity and ``int16`` coordinates, in varying field order) and the
guarantees: spikeflow events are ``EVENT_DTYPE``, ``p`` in ``{0, 1}``, sorted by ``t`` (int64 us).

    >>> from spikeflow.events.types import make_events
    >>> ev = make_events(x=[3, 1], y=[0, 2], t=[5, 9], p=[1, 0])
    >>> tn = to_tonic(ev)
    >>> tn.dtype.names, tn.dtype["x"] == np.int64
    (('x', 'y', 't', 'p'), True)
    >>> back, sensor = from_tonic(tn, (4, 3, 2))
    >>> sensor, bool((back == ev).all())
    (SensorSize(width=4, height=3, polarities=2), True)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from spikeflow.events.types import EVENT_DTYPE, SensorSize, as_events, sort_events

#: the dtype of tonic's N-MNIST and most of its datasets: ``[(x, int), (y, int), (t, int), (p, int)]``
TONIC_DTYPE = np.dtype([("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("p", "<i8")])

__all__ = ["TONIC_DTYPE", "to_tonic", "from_tonic", "sensor_size_of"]


def sensor_size_of(sensor_size: Sequence[int], what: str = "sensor_size") -> SensorSize:
    """A ``(width, height, polarities)`` tuple (tonic's order) as a checked :class:`SensorSize`."""
    try:
        values = tuple(int(v) for v in sensor_size)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a (width, height, polarities) tuple of ints, got "
                         f"{sensor_size!r}") from None
    if len(values) != 3 or min(values) < 1 or any(v != s for v, s in zip(values, sensor_size)):
        raise ValueError(f"{what} must be a (width, height, polarities) tuple of positive ints, "
                         f"got {sensor_size!r}")
    return SensorSize(*values)


def to_tonic(events: np.ndarray, dtype: np.dtype | str | list = TONIC_DTYPE) -> np.ndarray:
    """A copy of ``events`` as a tonic structured array (default :data:`TONIC_DTYPE`).

    ``dtype`` may be any structured dtype with fields ``x, y, t, p`` in any order, e.g. tonic's
    DVS Gesture ``[("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)]``.
    """
    events = as_events(events)
    dtype = np.dtype(dtype)
    names = dtype.names or ()
    missing = [k for k in ("x", "y", "t", "p") if k not in names]
    if missing:
        raise ValueError(f"to_tonic: dtype needs fields x, y, t, p; {dtype} lacks {missing}")
    out = np.zeros(len(events), dtype=dtype)
    for k in ("x", "y", "t", "p"):
        out[k] = events[k].astype(bool) if dtype[k] == np.bool_ else events[k]
    return out


def _integral(values: np.ndarray, field: str) -> np.ndarray:
    if np.issubdtype(values.dtype, np.bool_):
        return values.astype(np.int64)
    if np.issubdtype(values.dtype, np.floating):
        if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
            raise ValueError(f"from_tonic: field {field!r} holds non-integer values; spikeflow events "
                             f"have integer {field} ({'microseconds' if field == 't' else 'pixels'})")
        return values.astype(np.int64)
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"from_tonic: field {field!r} must be numeric, got {values.dtype}")
    return values.astype(np.int64)


def from_tonic(array: np.ndarray, sensor_size: Sequence[int]) -> tuple[np.ndarray, SensorSize]:
    """``(events, SensorSize)`` from a tonic event array and its ``sensor_size``.

    * fields ``x, y, t, p`` in any order and dtype (extra fields are ignored); an array without
      ``y`` (tonic's audio datasets) needs ``height == 1`` and gets ``y = 0``;
    * ``p``: ``bool`` or integers; ``-1/+1`` polarities become ``0/1``; must be ``< polarities``;
    * ``t``: integer microseconds (float timestamps must hold whole numbers);
    * coordinates must lie on the sensor; events are sorted by ``t`` (stable).

    Raises ``ValueError`` naming the field and the offending value otherwise.
    """
    sensor = sensor_size_of(sensor_size)
    names = getattr(getattr(array, "dtype", None), "names", None) or ()
    need = ("x", "t", "p") if sensor.height == 1 else ("x", "y", "t", "p")
    missing = [k for k in need if k not in names]
    if missing:
        raise ValueError(f"from_tonic: expected a structured array with fields x, y, t, p; missing "
                         f"{missing} (got fields {list(names)})")
    n = len(array)
    out = np.empty(n, dtype=EVENT_DTYPE)
    x = _integral(array["x"], "x")
    y = _integral(array["y"], "y") if "y" in names else np.zeros(n, dtype=np.int64)
    t = _integral(array["t"], "t")
    p = _integral(array["p"], "p")
    if n and p.min() < 0:
        if not np.all((p == -1) | (p == 1)):
            raise ValueError(f"from_tonic: negative polarities must be -1/+1 (OFF/ON), got values "
                             f"{sorted(set(np.unique(p).tolist()))[:5]}")
        p = (p > 0).astype(np.int64)
    for name, values, size in (("x", x, sensor.width), ("y", y, sensor.height),
                               ("p", p, sensor.polarities)):
        if n and (values.min() < 0 or values.max() >= size):
            bad = int(values.max() if values.max() >= size else values.min())
            raise ValueError(f"from_tonic: {name}={bad} lies outside the sensor_size "
                             f"{tuple(sensor)} (expected 0 <= {name} < {size})")
    out["x"], out["y"], out["t"], out["p"] = x, y, t, p
    return sort_events(out), sensor
