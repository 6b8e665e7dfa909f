"""The base torch Dataset of every event dataset: samples -> events -> (transform) -> frames.

An item is ``(x, label)`` with ``label`` an int and ``x``:

* frames (a :class:`~spikeflow.events.FrameSpec` given): float32 tensor ``[T, P, H, W]``
  (``[K, T, P, H, W]`` with ``clips=K``);
* raw events (``frames=None``): the ``EVENT_DTYPE`` array after ``transform``.

Deterministic frames (no ``transform``) are cached on disk on the first pass, which runs in
``workers`` processes with a progress bar (``precompute=True``); later passes only load. With a
random ``transform`` the frames are recomputed per item from the events, which themselves come
from an event cache when ``cache_events=True`` (for files holding many samples, e.g. Gesture).

Randomness: item ``i`` uses ``numpy.random.default_rng([seed, epoch, i])``. Call
:meth:`set_epoch` for results independent of the number of loader workers; without it the
epoch term is the DataLoader worker seed (new every epoch), or a per-process draw counter.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from spikeflow.data.event_build import (
    EventSample,
    FrameBuilder,
    build_entries,
    describe,
    pack_for_cache,
)
from spikeflow.data.frame_cache import (
    FrameCache,
    default_cache_root,
    file_identity,
    unpack_events,
)
from spikeflow.data.event_options import build_transform, clip_length, pop_frame_spec
from spikeflow.events import FrameSpec, SensorSize
from spikeflow.events.functional.normalize import normalize_frames
from spikeflow.events.transforms import out_sensor
from spikeflow.utils.atomic import atomic_write_text


class EventDataset(Dataset):
    """Event samples read by ``reader`` (see :mod:`spikeflow.data.event_build`).

    Args:
        samples: the samples of this split, in order.
        sensor_size: geometry of the events the reader returns.
        reader: frozen dataclass with ``open(source)`` / ``take(opened, sample)``.
        name, split, classes: dataset name (cache folder), split name, class names.
        frames: frame spec, or None for raw events.
        transform: ``transform(events, rng)`` applied to the events of every item.
        clips, clip_length_us: ASA multi-clip windows per sample (test protocol).
        cache, cache_dir: enable the on-disk cache and choose its root.
        cache_events: also cache decoded events (used when frames cannot be cached).
        workers, progress, precompute: first-pass processes, progress bar, build at init.
        seed: base seed of the per-item Generators.
    """

    def __init__(self, samples: Sequence[EventSample], sensor_size: SensorSize, reader: Any, *,
                 name: str, split: str, classes: Sequence[str], frames: FrameSpec | None = None,
                 transform: Any = None, clips: int | None = None,
                 clip_length_us: int | None = None, cache: bool = True,
                 cache_dir: str | os.PathLike | None = None, cache_events: bool = False,
                 workers: int | None = None, progress: bool = True, precompute: bool = True,
                 seed: int = 0) -> None:
        self.samples = list(samples)
        self.targets = np.array([s.label for s in self.samples], dtype=np.int64)
        self.sensor_size = SensorSize(*sensor_size)
        self.reader, self.name, self.split = reader, name, split
        self.classes = list(classes)
        self.frames, self.transform = frames, transform
        self.clips, self.clip_length_us = clips, clip_length_us
        if clips and frames is None:
            raise ValueError(f"{name}: clips={clips} needs frames (a FrameSpec)")
        self.frame_sensor = out_sensor(transform, self.sensor_size) if transform else \
            self.sensor_size
        self.builder = (FrameBuilder(self.frame_sensor, frames, clips or None, clip_length_us)
                        if frames is not None else None)
        self.seed, self.workers, self.progress = int(seed), workers, progress
        self._epoch: int | None = None
        self._draws = 0
        self._opened: tuple[str, Any] | None = None
        root = default_cache_root(cache_dir)
        reader_id = describe(reader)
        self.frame_cache = None
        if cache and frames is not None and transform is None:
            self.frame_cache = FrameCache(root, name, "frames", {
                "sensor": list(self.sensor_size), "frames": frames.integration_key(),
                "clips": clips or None, "clip_length_us": clip_length_us, "reader": reader_id},
                shapes={"counts": self.frame_shape()})
        self.event_cache = None
        if cache and cache_events and self.frame_cache is None:
            self.event_cache = FrameCache(root, name, "events", {"reader": reader_id})
        self._entries: list[Path | None] = [None] * len(self.samples)
        if precompute:
            self.prepare()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_opened"] = None  # never ship a decoded source file to loader workers
        return state

    # ------------------------------------------------------------------ cache
    @property
    def cache(self) -> FrameCache | None:
        """The active cache (frames, else events), or None."""
        return self.frame_cache or self.event_cache

    def _entry(self, i: int) -> Path:
        if self._entries[i] is None:
            s = self.samples[i]
            ident = {**file_identity(s.source), "selector": list(s.selector), "key": s.key}
            self._entries[i] = self.cache.entry(ident)
        return self._entries[i]

    def prepare(self, workers: int | None = None, progress: bool | None = None) -> int:
        """Build every missing cache entry (several processes, progress bar); returns the count."""
        cache = self.cache
        if cache is None:
            return 0
        if not cache.write_options():  # not writable: one warning, items computed on access
            return 0
        todo = [(s, str(self._entry(i))) for i, s in enumerate(self.samples)
                if not self._entry(i).exists()]
        kind = "frames" if cache is self.frame_cache else "events"
        built = build_entries(self.reader, self.builder if kind == "frames" else None, todo,
                              workers=self.workers if workers is None else workers,
                              progress=self.progress if progress is None else progress,
                              desc=f"{self.name} {self.split}: caching {kind}")
        cache.stats["built"] += built
        return built

    # ------------------------------------------------------------------ items
    def __len__(self) -> int:
        return len(self.samples)

    def set_epoch(self, epoch: int) -> None:
        """Fix the epoch term of the per-item Generators (reproducible augmentation)."""
        self._epoch = int(epoch)

    def rng(self, i: int) -> np.random.Generator:
        """The Generator of item ``i`` for the current epoch."""
        if self._epoch is not None:
            epoch = self._epoch
        else:
            info = torch.utils.data.get_worker_info()
            if info is not None:
                epoch = int(info.seed) % (1 << 63)
            else:
                self._draws += 1
                epoch = self._draws
        return np.random.default_rng([self.seed, epoch, int(i)])

    def _read(self, sample: EventSample) -> np.ndarray:
        if self._opened is None or self._opened[0] != sample.source:
            self._opened = (sample.source, self.reader.open(sample.source))
        return self.reader.take(self._opened[1], sample)

    def events(self, i: int) -> np.ndarray:
        """The events of sample ``i`` before any transform (from the event cache if enabled)."""
        sample = self.samples[i]
        if self.event_cache is None:
            return self._read(sample)
        path = self._entry(i)
        data = self.event_cache.load(path)
        if data is None:
            events = self._read(sample)
            self.event_cache.save(path, pack_for_cache(None, events))
            return events
        return unpack_events(data)

    def _cached_frames(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        path = self._entry(i)
        data = self.frame_cache.load(path)
        if data is None:
            data = pack_for_cache(self.builder, self._read(self.samples[i]))
            self.frame_cache.save(path, data)
        return data["counts"], data["durations"]

    def frame_counts(self, i: int) -> np.ndarray | None:
        """The cached event counts of item ``i`` (``[T, P, H, W]``, ``[K, T, ...]`` with clips)
        in their stored dtype (uint8 when every count is <= 255, else uint16/uint32; float32 for
        non-integer frames), when item ``i`` is exactly these values as float32: frames cached
        (no random transform) and no normalisation. None otherwise. Loaders use it to move 1 byte per value (the
        float conversion happens on the device)."""
        if self.frame_cache is None or self.frames.normalization is not None:
            return None
        return self._cached_frames(i)[0]

    def __getitem__(self, i: int) -> tuple[Any, int]:
        label = int(self.targets[i])
        if self.frame_cache is not None:
            counts, durations = self._cached_frames(i)
            frames = normalize_frames(counts, durations, self.frames.normalization)
            return torch.from_numpy(frames), label
        events = self.events(i)
        if self.transform is not None:
            events = self.transform(events, self.rng(i))
        if self.builder is None:
            return events, label
        counts, durations = self.builder.integrate(events)
        frames = normalize_frames(counts, durations, self.frames.normalization)
        return torch.from_numpy(frames), label

    # ------------------------------------------------------------------ metadata
    def frame_shape(self) -> tuple[int, ...] | None:
        """Shape of ``x`` for frames (``None`` for raw events)."""
        if self.frames is None:
            return None
        shape = self.frames.shape(self.frame_sensor)
        return (self.clips, *shape) if self.clips else shape

    def split_manifest(self) -> dict[str, Any]:
        """The split as data: sample keys and labels in order (a run folder saves this)."""
        return {"dataset": self.name, "split": self.split, "n": len(self.samples),
                "samples": [s.key for s in self.samples], "labels": self.targets.tolist()}

    def save_split_manifest(self, path: str | os.PathLike) -> Path:
        """Write :meth:`split_manifest` as JSON atomically; returns the path."""
        return atomic_write_text(path, json.dumps(self.split_manifest(), indent=1))

    def __repr__(self) -> str:
        what = f"frames {self.frame_shape()}" if self.frames is not None else "events"
        return (f"{type(self).__name__}(name={self.name!r}, split={self.split!r}, "
                f"n={len(self)}, classes={len(self.classes)}, {what})")


def event_kwargs(sensor_size: SensorSize, split: str, options: dict[str, Any], *,
                 default_T: int, cache_events: bool = False) -> dict[str, Any]:
    """:class:`EventDataset` keyword arguments from flat factory ``options`` (``event_options``):
    frame spec, split transform (RCS / EventDrop on train), clips and the remaining options."""
    options = dict(options)
    spec = pop_frame_spec(options, default_T)
    transform = build_transform(split, SensorSize(*sensor_size), spec,
                                transform=options.pop("transform", None),
                                rcs=bool(options.pop("rcs", False)),
                                random_start=bool(options.pop("random_start", False)),
                                event_drop=bool(options.pop("event_drop", False)))
    clips = options.pop("clips", None)
    clips = int(clips) if clips and int(clips) > 0 else None
    length = clip_length(spec, clips, options.pop("clip_length_us", None))
    options.setdefault("cache_events", cache_events)
    return {"frames": spec, "transform": transform, "clips": clips, "clip_length_us": length,
            **options}


def with_holdout(make: Any, split: str, holdout: str | None = None,
                 split_file: str | os.PathLike | None = None, **split_options: Any) -> Any:
    """``make(split)``; with ``holdout`` ("accuracy_b" | "random"), ``"train"``/``"val"`` are the
    two parts of the official train split (saved to / reloaded from ``split_file``)."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
    if split == "val" and holdout is None:
        raise ValueError("split='val' needs holdout='accuracy_b' or holdout='random'")
    if split == "test" or holdout is None:
        return make(split)
    from spikeflow.data.splits import holdout_subset

    return holdout_subset(make("train"), split, holdout, split_file, **split_options)
