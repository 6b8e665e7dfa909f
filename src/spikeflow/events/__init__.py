"""Event streams: types, file I/O, event->frame integration, transforms (numpy only).

``spikeflow.events.transforms`` and ``spikeflow.events.emulator`` are imported on first access.
"""
from __future__ import annotations

import importlib
from typing import Any

from spikeflow.events import io
from spikeflow.events.frames import FrameSpec, Integrated, frames_from_spec, integrate, to_frames
from spikeflow.events.interop import TONIC_DTYPE, from_tonic, to_tonic
from spikeflow.events.types import (
    EVENT_DTYPE,
    EventFormatError,
    SensorSize,
    as_events,
    empty_events,
    is_time_sorted,
    make_events,
    sort_events,
)

_LAZY = ("transforms", "emulator")

__all__ = ["EVENT_DTYPE", "EventFormatError", "SensorSize", "make_events", "as_events",
           "empty_events", "io", "to_frames", "FrameSpec", "Integrated", "integrate",
           "frames_from_spec", "sort_events", "is_time_sorted", "to_tonic", "from_tonic",
           "TONIC_DTYPE", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f"spikeflow.events.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module 'spikeflow.events' has no attribute {name!r}")
