"""Event -> frame integration: float32 frames ``[T, P, H, W]``.

:class:`FrameSpec` names every option that shapes the frames; :func:`to_frames` is the one-call
API. Integration is split in two so caches can store exact small integers:
:func:`integrate` gives integer-valued counts plus per-frame durations, and
:func:`~spikeflow.events.functional.normalize.normalize_frames` turns them into the final values.

Recipes of the seed papers:

* PLIF (SpikingJelly): ``FrameSpec(T, split_by="number")`` (counts, no normalisation).
* ASA / He2020: ``FrameSpec(T, split_by="window", window_us=dt_ms * 1000, ds=4)`` (counts in T
  consecutive dt bins from the first event of the (cropped) stream).
* snn-iir: ``FrameSpec.snn_iir(T, "or" | "max" | "avg")``; N-MNIST uses
  ``FrameSpec(T, split_by="window", window_us=(300 // T) * 1000, accumulate="or")``.

    >>> from spikeflow.events.types import make_events, SensorSize
    >>> ev = make_events(x=[0, 1, 1, 2], y=[0, 0, 0, 1], t=[0, 10, 20, 30], p=[1, 0, 0, 1])
    >>> fr = to_frames(ev, SensorSize(3, 2, 2), n_frames=2)
    >>> fr.shape, fr.dtype, fr[0].sum(), fr[1, 0, 0, 1]
    ((2, 2, 2, 3), dtype('float32'), np.float32(2.0), np.float32(1.0))
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np

from spikeflow.events.functional.accumulate import ACCUMULATE, accumulate, out_shape
from spikeflow.events.functional.bins import SPLITS, frame_slices
from spikeflow.events.functional.normalize import NORMALIZATIONS, normalize_frames
from spikeflow.events.types import SensorSize, as_events, sort_events


@dataclass(frozen=True)
class FrameSpec:
    """Every option that shapes event frames (hashable; ``integration_key()`` for caches).

    Args:
        n_frames: T, the number of frames.
        split_by: ``"number" | "time" | "window" | "iir"`` (see ``functional/bins.py``).
        accumulate: ``"sum" | "or" | "or_ms"`` (see ``functional/accumulate.py``).
        normalization: ``None | "frequency" | "max" | "norm" | "sum" | "frame_max" | "frame_sum"``.
        window_us: bin length for ``split_by="window"``.
        start_us: absolute start of the first window (default: the first event).
        ds: integer spatial downsampling factor (``x // ds``, ``y // ds``).
        merge_polarity: sum both polarities into one channel.
    """

    n_frames: int
    split_by: str = "number"
    accumulate: str = "sum"
    normalization: str | None = None
    window_us: int | None = None
    start_us: int | None = None
    ds: int = 1
    merge_polarity: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.n_frames, (int, np.integer)) or self.n_frames < 1:
            raise ValueError(f"n_frames (T) must be an integer >= 1, got {self.n_frames!r}")
        if self.split_by not in SPLITS:
            raise ValueError(f"split_by must be one of {SPLITS}, got {self.split_by!r}")
        if self.accumulate not in ACCUMULATE:
            raise ValueError(f"accumulate must be one of {ACCUMULATE}, got {self.accumulate!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, "
                             f"got {self.normalization!r}")
        if self.split_by == "window" and (self.window_us is None or self.window_us < 1):
            raise ValueError(f"split_by='window' needs window_us >= 1, got {self.window_us!r}")
        if not isinstance(self.ds, (int, np.integer)) or self.ds < 1:
            raise ValueError(f"ds must be an integer >= 1, got {self.ds!r}")

    @classmethod
    def snn_iir(cls, n_frames: int, variant: str = "or", ds: int = 1) -> FrameSpec:
        """snn-iir Gesture encodings: ``"or"`` (binary, T equal bins), ``"max"``, ``"avg"``."""
        presets = {"or": ("or", None), "max": ("or_ms", "frame_max"),
                   "avg": ("or_ms", "frame_sum")}
        if variant not in presets:
            raise ValueError(f"snn-iir variant must be one of {sorted(presets)}, got {variant!r}")
        acc, norm = presets[variant]
        return cls(n_frames, split_by="iir", accumulate=acc, normalization=norm, ds=ds)

    def shape(self, sensor: SensorSize) -> tuple[int, int, int, int]:
        """``(T, P, H, W)`` of the frames for ``sensor``."""
        return out_shape(sensor, self.n_frames, self.ds, self.merge_polarity)

    def integration_key(self) -> dict:
        """The options that shape the integer counts (everything except ``normalization``)."""
        key = asdict(self)
        key.pop("normalization")
        return {k: (int(v) if isinstance(v, np.integer) else v) for k, v in key.items()}


class Integrated(NamedTuple):
    """Integer-valued frames ``counts [T, P, H, W]`` (float32) and ``durations_us [T]``."""

    counts: np.ndarray
    durations_us: np.ndarray


def integrate(events: np.ndarray, sensor_size: SensorSize, spec: FrameSpec) -> Integrated:
    """Counts per frame before normalisation (exact small integers, float32).

    Unsorted events are sorted by ``t`` first (stable, :func:`~spikeflow.events.sort_events`).
    """
    events = sort_events(as_events(events))
    sensor = SensorSize(*sensor_size)
    starts, ends, durations, origin = frame_slices(
        events["t"], spec.n_frames, spec.split_by, window_us=spec.window_us,
        start_us=spec.start_us, ms_bins=spec.accumulate == "or_ms")
    counts = accumulate(events, sensor, starts, ends, accumulate=spec.accumulate, ds=spec.ds,
                        merge_polarity=spec.merge_polarity, origin_us=origin)
    return Integrated(counts, durations)


def frames_from_spec(events: np.ndarray, sensor_size: SensorSize, spec: FrameSpec) -> np.ndarray:
    """Frames ``[T, P, H, W]`` float32 for ``spec`` (integration + normalisation)."""
    counts, durations = integrate(events, sensor_size, spec)
    if spec.normalization is None:
        return counts
    return normalize_frames(counts, durations, spec.normalization)


def to_frames(events: np.ndarray, sensor_size: SensorSize, n_frames: int,
              split_by: str = "number", accumulate: str = "sum",
              normalization: str | None = None, *, window_us: int | None = None,
              start_us: int | None = None, ds: int = 1, merge_polarity: bool = False
              ) -> np.ndarray:
    """Integrate events into float32 frames ``[T, P, H, W]``.

    Events not sorted by ``t`` are sorted first (stable; equal timestamps keep their order), so
    they give exactly the frames of the sorted stream.

    ``split_by="number"``/``"time"`` reproduce SpikingJelly's bin edges exactly; ``"window"``
    gives ``n_frames`` bins of ``window_us`` from ``start_us`` (default: first event); ``"iir"``
    is snn-iir's equal-width binning. See :class:`FrameSpec` for every option.
    """
    spec = FrameSpec(n_frames, split_by, accumulate, normalization, window_us, start_us, ds,
                     merge_polarity)
    return frames_from_spec(events, sensor_size, spec)
