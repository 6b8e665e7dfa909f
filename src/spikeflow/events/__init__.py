"""Event streams: types, file I/O, event->frame integration, transforms, DVS emulator (numpy only)."""
from spikeflow.events import io
from spikeflow.events.types import EVENT_DTYPE, EventFormatError, SensorSize, make_events

__all__ = ["EVENT_DTYPE", "EventFormatError", "SensorSize", "make_events", "io"]
