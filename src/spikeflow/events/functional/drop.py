"""EventDrop (Gu et al. 2021) as used by ASA-SNN: drop by time, by area, or at random.

Inputs are never modified; every function takes an explicit ``numpy`` Generator. Unsorted input
is sorted by ``t`` first (stable); outputs keep the (sorted) order. When a ratio
is None it is drawn from ASA's grids: time and random ratios ``k/10`` (k = 1..9), area ratios
``k/20`` (k = 1..19).
"""
from __future__ import annotations

import numpy as np

from spikeflow.events.types import SensorSize, sort_events


def _ratio(ratio: float | None, rng: np.random.Generator, steps: int) -> float:
    if ratio is None:
        return int(rng.integers(1, steps)) / steps
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"drop ratio must be in [0, 1], got {ratio}")
    return float(ratio)


def drop_by_time(events: np.ndarray, rng: np.random.Generator, ratio: float | None = None
                 ) -> np.ndarray:
    """Drop the events of a random interval covering ``ratio`` of the recording's duration.

    With ``D = t_last - t_first`` and ``a ~ U(0, 1)``, events with
    ``t_first + a*D <= t <= t_first + (a + ratio)*D`` are removed.
    """
    r = _ratio(ratio, rng, 10)
    a = rng.uniform(0.0, 1.0)
    if len(events) == 0:
        return events.copy()
    events = sort_events(events)
    t0 = float(events["t"][0])
    span = float(events["t"][-1]) - t0
    rel = events["t"] - t0
    keep = (rel < a * span) | (rel > (a + r) * span)
    return events[keep]


def drop_by_area(events: np.ndarray, sensor: SensorSize, rng: np.random.Generator,
                 area_ratio: float | None = None) -> np.ndarray:
    """Drop the events inside a random box of ``area_ratio * width`` by ``area_ratio * height``.

    The box centre is uniform over the sensor and the box is clipped to it. (ASA's version tests
    the wrong event columns and removes a cross instead of a box; this is the intended rule.)
    """
    r = _ratio(area_ratio, rng, 20)
    events = sort_events(events)
    cx, cy = rng.uniform(0, sensor.width), rng.uniform(0, sensor.height)
    bw, bh = sensor.width * r, sensor.height * r
    x0, y0 = max(0.0, cx - bw / 2), max(0.0, cy - bh / 2)
    x1, y1 = min(float(sensor.width), x0 + bw), min(float(sensor.height), y0 + bh)
    x, y = events["x"], events["y"]
    inside = (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
    return events[~inside]


def random_drop(events: np.ndarray, rng: np.random.Generator, ratio: float | None = None
                ) -> np.ndarray:
    """Drop ``floor(N * ratio)`` events chosen uniformly without replacement (order kept)."""
    r = _ratio(ratio, rng, 10)
    events = sort_events(events)
    n = len(events)
    keep = np.sort(rng.choice(n, n - int(n * r), replace=False))
    return events[keep]


def event_drop(events: np.ndarray, sensor: SensorSize, rng: np.random.Generator) -> np.ndarray:
    """ASA's EventDrop: one of identity / by time / by area / random, chosen uniformly; if every
    event would be dropped the input is returned unchanged (as a copy)."""
    events = sort_events(events)
    option = int(rng.integers(0, 4))
    if option == 0:
        return events.copy()
    if option == 1:
        out = drop_by_time(events, rng)
    elif option == 2:
        out = drop_by_area(events, sensor, rng)
    else:
        out = random_drop(events, rng)
    return out if len(out) else events.copy()
