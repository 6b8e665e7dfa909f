"""Pixel-space event functions: flips, crops, jitter, and a vectorised nearest-neighbour denoise.

Inputs are never modified; random functions take an explicit ``numpy`` Generator. Unsorted input
is sorted by ``t`` first (stable); outputs keep the (sorted) order.
"""
from __future__ import annotations

import numpy as np

from spikeflow.events.types import SensorSize, sort_events


def flip_lr(events: np.ndarray, sensor: SensorSize) -> np.ndarray:
    """Mirror left/right: ``x -> width - 1 - x``."""
    out = sort_events(events).copy()
    out["x"] = sensor.width - 1 - out["x"]
    return out


def random_flip_lr(events: np.ndarray, sensor: SensorSize, p: float,
                   rng: np.random.Generator) -> np.ndarray:
    """:func:`flip_lr` with probability ``p``."""
    return flip_lr(events, sensor) if rng.random() < p else sort_events(events).copy()


def crop(events: np.ndarray, x0: int, y0: int, width: int, height: int) -> np.ndarray:
    """Events inside ``[x0, x0+width) x [y0, y0+height)``, shifted so the crop starts at 0."""
    events = sort_events(events)
    x, y = events["x"], events["y"]
    keep = (x >= x0) & (x < x0 + width) & (y >= y0) & (y < y0 + height)
    out = events[keep]  # boolean indexing copies
    out["x"] -= x0
    out["y"] -= y0
    return out


def random_crop(events: np.ndarray, sensor: SensorSize, size: tuple[int, int],
                rng: np.random.Generator) -> np.ndarray:
    """Crop a random ``size = (width, height)`` window of the sensor (coordinates re-based)."""
    w, h = int(size[0]), int(size[1])
    if not (0 < w <= sensor.width and 0 < h <= sensor.height):
        raise ValueError(f"crop size {size} must fit in the sensor {tuple(sensor)}")
    x0 = int(rng.integers(0, sensor.width - w + 1))
    y0 = int(rng.integers(0, sensor.height - h + 1))
    return crop(events, x0, y0, w, h)


def spatial_jitter(events: np.ndarray, sensor: SensorSize, sigma_x: float, sigma_y: float,
                   rng: np.random.Generator, clip_outliers: bool = False) -> np.ndarray:
    """Move every event by ``round(N(0, sigma))`` pixels in x and y.

    Events pushed off the sensor are dropped, or clamped to the border with ``clip_outliers``.
    """
    events = sort_events(events)
    n = len(events)
    x = events["x"].astype(np.int64) + np.rint(rng.normal(0.0, sigma_x, n)).astype(np.int64)
    y = events["y"].astype(np.int64) + np.rint(rng.normal(0.0, sigma_y, n)).astype(np.int64)
    if clip_outliers:
        keep = np.ones(n, dtype=bool)
        x, y = np.clip(x, 0, sensor.width - 1), np.clip(y, 0, sensor.height - 1)
    else:
        keep = (x >= 0) & (x < sensor.width) & (y >= 0) & (y < sensor.height)
    out = events[keep]
    out["x"], out["y"] = x[keep], y[keep]
    return out


def denoise(events: np.ndarray, sensor: SensorSize, filter_time_us: int) -> np.ndarray:
    """Keep an event iff one of its 4 neighbouring pixels had an earlier event within
    ``filter_time_us`` (``t_i - t_j < filter_time_us``, ``j`` before ``i`` in the stream).

    Vectorised: events are keyed ``pixel * N + index`` and sorted once; for each neighbour
    direction ``searchsorted`` finds the latest earlier event at that pixel. O(N log N).
    (Tonic's ``Denoise`` is a per-event Python loop with the same rule, except that it also
    keeps every event in the first ``filter_time`` µs.)
    """
    n = len(events)
    if n == 0:
        return events.copy()
    events = sort_events(events)
    x, y = events["x"].astype(np.int64), events["y"].astype(np.int64)
    t = events["t"]
    idx = np.arange(n, dtype=np.int64)
    keys = np.sort((y * sensor.width + x) * n + idx)
    keep = np.zeros(n, dtype=bool)
    for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        qx, qy = x + dx, y + dy
        ok = (qx >= 0) & (qx < sensor.width) & (qy >= 0) & (qy < sensor.height)
        qpix = qy * sensor.width + qx
        pos = np.searchsorted(keys, qpix * n + idx, side="left") - 1
        found = keys[np.maximum(pos, 0)]
        hit = ok & (pos >= 0) & (found // n == qpix)
        j = found % n
        keep |= hit & (t - t[j] < filter_time_us)
    return events[keep]
