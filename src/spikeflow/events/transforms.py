"""Event transforms: frozen dataclasses over the pure functions in ``events/functional``.

Every transform is called as ``transform(events, rng)``; random ones REQUIRE an explicit
``numpy.random.Generator`` (no global random state) and none modifies itself or its input.
Events not sorted by ``t`` are sorted first (stable: equal timestamps keep their order) and every
transform returns sorted events, so an unsorted stream gives exactly what its sorted copy gives.
A transform that changes the sensor geometry exposes ``out_sensor(sensor)``.

    >>> import numpy as np
    >>> from spikeflow.events.types import make_events, SensorSize
    >>> ev = make_events(x=[0, 5, 9], y=[1, 1, 1], t=[0, 500, 1000], p=[1, 0, 1])
    >>> aug = Compose((RandomConsecutiveSlice(600), RandomFlipLR(SensorSize(10, 2, 2), p=1.0)))
    >>> out = aug(ev, np.random.default_rng(0))
    >>> len(out) <= 2, ev["x"].tolist()   # the input is untouched
    (True, [0, 5, 9])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeflow.events.frames import FrameSpec, frames_from_spec
from spikeflow.events.functional import drop, spatial, temporal
from spikeflow.events.types import SensorSize


def _need(rng: np.random.Generator | None, who: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{type(who).__name__} is random: call it as t(events, rng) with a "
                        f"numpy.random.Generator (got {type(rng).__name__})")
    return rng


def out_sensor(transform: object, sensor: SensorSize) -> SensorSize:
    """The sensor geometry after ``transform`` (unchanged unless it defines ``out_sensor``)."""
    fn = getattr(transform, "out_sensor", None)
    return SensorSize(*fn(sensor)) if fn is not None else SensorSize(*sensor)


@dataclass(frozen=True)
class Compose:
    """Apply ``transforms`` in order, passing the same Generator to each."""

    transforms: tuple

    def __call__(self, events, rng: np.random.Generator | None = None):
        for t in self.transforms:
            events = t(events, rng)
        return events

    def out_sensor(self, sensor: SensorSize) -> SensorSize:
        for t in self.transforms:
            sensor = out_sensor(t, sensor)
        return sensor


@dataclass(frozen=True)
class TimeWindow:
    """Keep events with ``start_us <= t < end_us``."""

    start_us: int
    end_us: int

    def __call__(self, events, rng=None):
        return temporal.time_window(events, self.start_us, self.end_us)


@dataclass(frozen=True)
class RandomConsecutiveSlice:
    """ASA "RCS": a random ``length_us`` window (``T * dt`` for T frames of dt)."""

    length_us: int

    def __call__(self, events, rng=None):
        return temporal.random_consecutive_slice(events, self.length_us, _need(rng, self))


@dataclass(frozen=True)
class RandomWindowStart:
    """DCLL / He et al. 2020 training window: ``length_us`` from a random start in
    ``[t_first, t_last - pad_us)`` (:func:`~spikeflow.events.functional.temporal.random_window_start`)."""

    length_us: int
    pad_us: int

    def __call__(self, events, rng=None):
        return temporal.random_window_start(events, self.length_us, self.pad_us, _need(rng, self))


@dataclass(frozen=True)
class MultiClip:
    """ASA's test protocol: ``n_clips`` windows of ``length_us`` -> a list of event arrays."""

    n_clips: int
    length_us: int

    def __call__(self, events, rng=None):
        return temporal.multi_clip(events, self.n_clips, self.length_us)


@dataclass(frozen=True)
class TimeJitter:
    """Gaussian timestamp noise (``std_us``), re-sorted."""

    std_us: float
    clip_negative: bool = True

    def __call__(self, events, rng=None):
        return temporal.time_jitter(events, self.std_us, _need(rng, self), self.clip_negative)


@dataclass(frozen=True)
class EventDrop:
    """ASA's EventDrop: identity / drop by time / by area / at random, chosen uniformly."""

    sensor_size: SensorSize

    def __call__(self, events, rng=None):
        return drop.event_drop(events, SensorSize(*self.sensor_size), _need(rng, self))


@dataclass(frozen=True)
class DropByTime:
    """Drop a random time interval of ``ratio`` of the duration (None: ASA's k/10 grid)."""

    ratio: float | None = None

    def __call__(self, events, rng=None):
        return drop.drop_by_time(events, _need(rng, self), self.ratio)


@dataclass(frozen=True)
class DropByArea:
    """Drop a random box of ``area_ratio`` of the sensor sides (None: ASA's k/20 grid)."""

    sensor_size: SensorSize
    area_ratio: float | None = None

    def __call__(self, events, rng=None):
        return drop.drop_by_area(events, SensorSize(*self.sensor_size), _need(rng, self),
                                 self.area_ratio)


@dataclass(frozen=True)
class RandomDrop:
    """Drop ``ratio`` of the events uniformly (None: ASA's k/10 grid)."""

    ratio: float | None = None

    def __call__(self, events, rng=None):
        return drop.random_drop(events, _need(rng, self), self.ratio)


@dataclass(frozen=True)
class SpatialJitter:
    """Gaussian pixel noise; events pushed off the sensor are dropped (or clamped)."""

    sensor_size: SensorSize
    sigma_x: float = 1.0
    sigma_y: float = 1.0
    clip_outliers: bool = False

    def __call__(self, events, rng=None):
        return spatial.spatial_jitter(events, SensorSize(*self.sensor_size), self.sigma_x,
                                      self.sigma_y, _need(rng, self), self.clip_outliers)


@dataclass(frozen=True)
class RandomCrop:
    """Random ``size = (width, height)`` crop; coordinates re-based to the crop."""

    sensor_size: SensorSize
    size: tuple[int, int]

    def __call__(self, events, rng=None):
        return spatial.random_crop(events, SensorSize(*self.sensor_size), self.size,
                                   _need(rng, self))

    def out_sensor(self, sensor: SensorSize) -> SensorSize:
        return SensorSize(int(self.size[0]), int(self.size[1]), sensor.polarities)


@dataclass(frozen=True)
class RandomFlipLR:
    """Mirror left/right with probability ``p``."""

    sensor_size: SensorSize
    p: float = 0.5

    def __call__(self, events, rng=None):
        return spatial.random_flip_lr(events, SensorSize(*self.sensor_size), self.p,
                                      _need(rng, self))


@dataclass(frozen=True)
class Denoise:
    """Drop events with no 4-neighbour event in the previous ``filter_time_us`` (vectorised)."""

    sensor_size: SensorSize
    filter_time_us: int = 10_000

    def __call__(self, events, rng=None):
        return spatial.denoise(events, SensorSize(*self.sensor_size), self.filter_time_us)


@dataclass(frozen=True)
class ToFrames:
    """Events (or a list of clips) -> float32 frames ``[T, P, H, W]`` (``[K, T, P, H, W]``)."""

    sensor_size: SensorSize
    spec: FrameSpec

    def __call__(self, events, rng=None):
        sensor = SensorSize(*self.sensor_size)
        if isinstance(events, list):
            return np.stack([frames_from_spec(e, sensor, self.spec) for e in events])
        return frames_from_spec(events, sensor, self.spec)


__all__ = ["Compose", "TimeWindow", "RandomConsecutiveSlice", "RandomWindowStart", "MultiClip", "TimeJitter",
           "EventDrop", "DropByTime", "DropByArea", "RandomDrop", "SpatialJitter", "RandomCrop",
           "RandomFlipLR", "Denoise", "ToFrames", "out_sensor"]
