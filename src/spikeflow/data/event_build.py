"""Sample readers and the (parallel) first pass that fills a frame / event cache.

A *reader* is a small frozen dataclass with ``open(source)`` (read one file, e.g. a whole
DVS Gesture trial) and ``take(opened, sample)`` (cut one sample out of it). Samples that share
a source are built together so each file is read once; the first pass runs in several worker
processes with a progress bar.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from spikeflow.data.frame_cache import atomic_savez, pack_counts, pack_events
from spikeflow.events import FrameSpec, SensorSize, integrate
from spikeflow.events.functional.temporal import multi_clip, time_window


@dataclass(frozen=True)
class EventSample:
    """One sample: the ``source`` file, its ``label``, a dataset-unique ``key`` (used in split
    manifests) and a reader-specific ``selector`` (e.g. a ``(start_us, end_us)`` window)."""

    source: str
    label: int
    key: str
    selector: tuple = ()


@dataclass(frozen=True)
class FileReader:
    """One sample per file: ``read(path) -> events`` (a module-level function, picklable)."""

    read: Callable[[str], np.ndarray]

    def open(self, source: str) -> np.ndarray:
        return self.read(source)

    def take(self, opened: np.ndarray, sample: EventSample) -> np.ndarray:
        return opened


@dataclass(frozen=True)
class WindowReader:
    """Many samples per file, each the ``start <= t < end`` window in ``selector``."""

    read: Callable[[str], np.ndarray]

    def open(self, source: str) -> np.ndarray:
        return self.read(source)

    def take(self, opened: np.ndarray, sample: EventSample) -> np.ndarray:
        start, end = sample.selector
        return time_window(opened, start, end)


@dataclass(frozen=True)
class FrameBuilder:
    """Events -> stored arrays: packed integer ``counts`` (``[T,P,H,W]`` or ``[K,T,P,H,W]`` with
    ``clips=K``) and ``durations`` (µs per frame)."""

    sensor: SensorSize
    spec: FrameSpec
    clips: int | None = None
    clip_length_us: int | None = None

    def integrate(self, events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.clips:
            parts = [integrate(c, self.sensor, self.spec)
                     for c in multi_clip(events, self.clips, self.clip_length_us)]
            return np.stack([p.counts for p in parts]), np.stack([p.durations_us for p in parts])
        counts, durations = integrate(events, self.sensor, self.spec)
        return counts, durations

    def __call__(self, events: np.ndarray) -> dict[str, np.ndarray]:
        counts, durations = self.integrate(events)
        return {"counts": pack_counts(counts), "durations": durations}


def describe(obj: Any) -> Any:
    """A stable, process-independent description of a reader/transform for cache keys."""
    if callable(obj) and hasattr(obj, "__qualname__") and not is_dataclass(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    if is_dataclass(obj) and not isinstance(obj, type):
        return {"type": f"{type(obj).__module__}.{type(obj).__qualname__}",
                **{f.name: describe(getattr(obj, f.name)) for f in fields(obj)}}
    if isinstance(obj, (list, tuple)):
        return [describe(o) for o in obj]
    return obj if isinstance(obj, (int, float, str, bool, type(None))) else repr(obj)


def pack_for_cache(builder: FrameBuilder | None, events: np.ndarray) -> dict[str, np.ndarray]:
    """What an entry stores: frames (with a builder) or the compact events (without)."""
    return builder(events) if builder is not None else pack_events(events)


def _build_task(reader: Any, builder: FrameBuilder | None,
                groups: list[tuple[str, list[tuple[EventSample, str]]]]) -> int:
    """Worker: open each source once and write every requested entry. Returns entries built."""
    done = 0
    for source, items in groups:
        opened = reader.open(source)
        for sample, path in items:
            atomic_savez(Path(path), **pack_for_cache(builder, reader.take(opened, sample)))
            done += 1
    return done


def _tasks(todo: Sequence[tuple[EventSample, str]], per_task: int
           ) -> list[list[tuple[str, list[tuple[EventSample, str]]]]]:
    by_source: dict[str, list[tuple[EventSample, str]]] = {}
    for sample, path in todo:
        by_source.setdefault(sample.source, []).append((sample, path))
    tasks, current, size = [], [], 0
    for source, items in by_source.items():
        for k in range(0, len(items), per_task):
            chunk = items[k:k + per_task]
            current.append((source, chunk))
            size += len(chunk)
            if size >= per_task:
                tasks.append(current)
                current, size = [], 0
    if current:
        tasks.append(current)
    return tasks


def default_workers() -> int:
    """Worker processes for the first pass: ``$SPIKEFLOW_WORKERS`` or min(4, CPUs)."""
    env = os.environ.get("SPIKEFLOW_WORKERS")
    return max(1, int(env)) if env else max(1, min(4, os.cpu_count() or 1))


def build_entries(reader: Any, builder: FrameBuilder | None,
                  todo: Sequence[tuple[EventSample, str]], *, workers: int | None = None,
                  progress: bool = True, desc: str = "caching", per_task: int | None = None
                  ) -> int:
    """Build the missing cache entries ``todo`` ((sample, path) pairs); returns how many.

    Samples are grouped by source file into tasks of about ``per_task`` samples (default: 64,
    fewer for small jobs so that every worker gets several tasks).
    """
    if not todo:
        return 0
    workers = default_workers() if workers is None else max(1, int(workers))
    if per_task is None:
        per_task = max(1, min(64, -(-len(todo) // (4 * workers))))
    tasks = _tasks(todo, per_task)
    from tqdm.auto import tqdm

    built = 0
    with tqdm(total=len(todo), desc=desc, unit="sample", disable=not progress) as bar:
        if workers == 1 or len(tasks) == 1:
            for task in tasks:
                n = _build_task(reader, builder, task)
                built += n
                bar.update(n)
            return built
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
            futures = [pool.submit(_build_task, reader, builder, task) for task in tasks]
            for fut in as_completed(futures):
                n = fut.result()
                built += n
                bar.update(n)
    return built
