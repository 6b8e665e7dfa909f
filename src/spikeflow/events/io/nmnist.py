"""N-MNIST / N-Caltech101 ATIS ``.bin`` files: 5 bytes per event, no header.

Record layout (Orchard et al. 2015): byte 0 = x, byte 1 = y, bit 7 of byte 2 = polarity,
bits 22..0 of bytes 2-4 (big-endian) = timestamp in µs. Records with ``y == 240`` are overflow
markers, not events: each adds ``2**13`` µs to the timestamps of all later events. Events are
checked and sorted by the rule of :mod:`spikeflow.events.io._checks`.

    >>> import tempfile, os
    >>> from spikeflow.events.types import make_events
    >>> ev = make_events(x=[3, 4], y=[5, 6], t=[100, 9_000_000], p=[1, 0])
    >>> path = os.path.join(tempfile.mkdtemp(), "00001.bin")
    >>> write_nmnist(path, ev)
    >>> bool((read_nmnist(path) == ev).all())
    True
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spikeflow.events.io._checks import finish_events
from spikeflow.events.types import EVENT_DTYPE, EventFormatError
from spikeflow.utils.atomic import atomic_write_bytes

RECORD_BYTES = 5
OVERFLOW_Y = 240
OVERFLOW_US = 1 << 13
_TS_MAX = (1 << 23) - 1


def decode_nmnist(raw: np.ndarray, path: object = "<bytes>") -> np.ndarray:
    """Decode a uint8 buffer of 5-byte ATIS records into an event array."""
    if raw.size % RECORD_BYTES:
        whole = raw.size - raw.size % RECORD_BYTES
        raise EventFormatError(
            path, whole, f"size {raw.size} bytes is not a multiple of {RECORD_BYTES} "
            f"(N-MNIST .bin = 5 bytes per event); the last record is truncated")
    rec = raw.reshape(-1, RECORD_BYTES).astype(np.int64)
    ts = ((rec[:, 2] & 0x7F) << 16) | (rec[:, 3] << 8) | rec[:, 4]
    overflow = rec[:, 1] == OVERFLOW_Y
    if overflow.any():
        ts = ts + np.cumsum(overflow) * OVERFLOW_US
    keep = ~overflow
    ev = np.empty(int(keep.sum()), dtype=EVENT_DTYPE)
    ev["x"] = rec[keep, 0]
    ev["y"] = rec[keep, 1]
    ev["t"] = ts[keep]
    ev["p"] = rec[keep, 2] >> 7
    return finish_events(ev, path, lambda i: RECORD_BYTES * int(np.flatnonzero(keep)[i]))


def read_nmnist(path: str | os.PathLike) -> np.ndarray:
    """Read an ATIS ``.bin`` file into an event array sorted by ``t``."""
    path = Path(path)
    size = path.stat().st_size
    raw = np.fromfile(path, dtype=np.uint8) if size else np.zeros(0, np.uint8)
    return decode_nmnist(raw, path)


def encode_nmnist(events: np.ndarray) -> bytes:
    """Encode events as ATIS records, inserting ``y == 240`` overflow markers where t >= 2**23."""
    t = np.asarray(events["t"], dtype=np.int64)
    if t.size and (t.min() < 0 or np.any(np.diff(t) < 0)):
        raise ValueError("events must have non-negative timestamps sorted ascending")
    x, y, p = (np.asarray(events[k], dtype=np.int64) for k in ("x", "y", "p"))
    if x.size and (min(x.min(), y.min()) < 0 or max(x.max(), y.max()) > 255):
        raise ValueError("x and y must fit in one byte (0..255) for the N-MNIST format")
    if np.any(y == OVERFLOW_Y):
        raise ValueError("y == 240 is reserved for overflow markers in the N-MNIST format")
    # Markers only where needed: an event stores t - (markers so far) * 2**13 in 23 bits.
    markers_before = np.where(t > _TS_MAX, t // OVERFLOW_US, 0)
    ts = t - markers_before * OVERFLOW_US
    out_events = np.stack([x, y, (p << 7) | (ts >> 16), (ts >> 8) & 0xFF, ts & 0xFF], axis=1)
    # Before event i emit (markers_before[i] - markers_before[i-1]) overflow records.
    extra = np.diff(markers_before, prepend=0)
    at = np.repeat(np.arange(t.size), extra)
    marker = np.array([0, OVERFLOW_Y, 0, 0, 0], dtype=np.int64)
    return np.insert(out_events, at, marker, axis=0).astype(np.uint8).tobytes()


def write_nmnist(path: str | os.PathLike, events: np.ndarray) -> None:
    """Write events to an ATIS ``.bin`` file atomically (:mod:`spikeflow.utils.atomic`)."""
    atomic_write_bytes(path, encode_nmnist(events), fsync=False)
