"""cAER AEDAT 3.1 files as recorded for DVS128 Gesture: polarity packets only.

Layout (libcaer ``common.h`` / ``polarity.h``): ``#`` header lines ending with ``#!END-HEADER``
(CRLF or LF), then packets. Each packet is a 28-byte little-endian header::

    int16 eventType (1 = polarity) | int16 eventSource | int32 eventSize | int32 eventTSOffset
    int32 eventTSOverflow | int32 eventCapacity | int32 eventNumber | int32 eventValid

followed by ``eventCapacity * eventSize`` bytes. A polarity event is ``uint32 data, int32 ts``
with ``valid = data & 1``, ``p = (data >> 1) & 1``, ``y = (data >> 2) & 0x7FFF``,
``x = (data >> 17) & 0x7FFF`` and the 64-bit time ``t = (eventTSOverflow << 31) | ts`` µs.
The reader keeps only polarity packets and, inside them, only the first ``eventNumber`` slots
whose valid bit is set (SpikingJelly ignores the valid bit; Tonic also ignores the packet type).
Timestamps are 31-bit: a negative ``ts`` (sign bit set) is an error, and so is a step back of
more than 1 s in file order (:mod:`spikeflow.events.io._checks`); smaller steps are sorted.

    >>> import os, tempfile
    >>> from spikeflow.events.types import make_events
    >>> ev = make_events(x=[1, 127], y=[2, 0], t=[5, (1 << 31) + 7], p=[0, 1])
    >>> path = os.path.join(tempfile.mkdtemp(), "user01_led.aedat")
    >>> write_aedat3(path, ev)
    >>> bool((read_aedat3(path) == ev).all())
    True
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spikeflow.events.io._checks import finish_events
from spikeflow.events.io._header import read_prefix, split_header
from spikeflow.events.types import EVENT_DTYPE, EventFormatError
from spikeflow.utils.atomic import atomic_write_bytes

END_HEADER = b"#!END-HEADER"
POLARITY_EVENT = 1
PACKET_HEADER_DTYPE = np.dtype([
    ("type", "<i2"), ("source", "<i2"), ("size", "<i4"), ("ts_offset", "<i4"),
    ("ts_overflow", "<i4"), ("capacity", "<i4"), ("number", "<i4"), ("valid", "<i4"),
])
PACKET_HEADER_BYTES = PACKET_HEADER_DTYPE.itemsize  # 28
POLARITY_DTYPE = np.dtype([("data", "<u4"), ("ts", "<i4")])
_TS_BITS = 31


def _walk_packets(buf: np.ndarray, start: int, path: object) -> list[tuple[int, int, int]]:
    """(data offset, event count, ts overflow) of every polarity packet; checks each header."""
    found: list[tuple[int, int, int]] = []
    pos, end = start, buf.size
    while pos < end:
        if end - pos < PACKET_HEADER_BYTES:
            raise EventFormatError(path, pos, f"truncated packet header: {end - pos} bytes left, "
                                   f"expected {PACKET_HEADER_BYTES}")
        h = buf[pos:pos + PACKET_HEADER_BYTES].view(PACKET_HEADER_DTYPE)[0]
        size, cap, num = int(h["size"]), int(h["capacity"]), int(h["number"])
        if size <= 0 or cap < 0 or not 0 <= num <= cap:
            raise EventFormatError(path, pos, f"bad packet header: eventSize={size}, "
                                   f"eventCapacity={cap}, eventNumber={num} (expected size > 0 "
                                   f"and 0 <= number <= capacity)")
        data_at = pos + PACKET_HEADER_BYTES
        nxt = data_at + cap * size
        if nxt > end:
            raise EventFormatError(path, pos, f"packet (type {int(h['type'])}) declares "
                                   f"{cap} x {size} bytes of events but only {end - data_at} "
                                   f"bytes remain in the file")
        if int(h["type"]) == POLARITY_EVENT:
            if size != POLARITY_DTYPE.itemsize or int(h["ts_offset"]) != 4:
                raise EventFormatError(path, pos, f"polarity packet with eventSize={size}, "
                                       f"eventTSOffset={int(h['ts_offset'])}; expected 8 and 4")
            if int(h["ts_overflow"]) < 0:
                raise EventFormatError(path, pos, "negative eventTSOverflow")
            found.append((data_at, num, int(h["ts_overflow"])))
        pos = nxt
    return found


def decode_aedat3(buf: np.ndarray, data_offset: int, path: object = "<bytes>") -> np.ndarray:
    """Decode the packets of a uint8 buffer (the whole file) starting at ``data_offset``."""
    packets = _walk_packets(buf, data_offset, path)
    if not packets:
        return np.zeros(0, dtype=EVENT_DTYPE)
    counts = np.array([n for _, n, _ in packets], dtype=np.int64)
    raw = np.concatenate([buf[off:off + n * 8] for off, n, _ in packets]).view(POLARITY_DTYPE)
    overflow = np.repeat(np.array([o for _, _, o in packets], dtype=np.int64), counts)
    data = raw["data"]
    keep = (data & 1).astype(bool)
    data = data[keep]
    ts = raw["ts"][keep].astype(np.int64)

    def offset_of(i: int) -> int:  # byte offset of kept event i (only computed for errors)
        slot = int(np.flatnonzero(keep)[i])
        k = int(np.searchsorted(np.cumsum(counts), slot, side="right"))
        return packets[k][0] + 8 * (slot - int(counts[:k].sum()))

    neg = np.flatnonzero(ts < 0)
    if neg.size:
        i = int(neg[0])
        raise EventFormatError(path, offset_of(i), f"polarity event {i} has a negative timestamp "
                               f"field ts = {int(ts[i])}; expected 0 <= ts < 2**31 µs")
    ev = np.empty(data.size, dtype=EVENT_DTYPE)
    ev["x"] = (data >> 17) & 0x7FFF
    ev["y"] = (data >> 2) & 0x7FFF
    ev["p"] = (data >> 1) & 1
    ev["t"] = (overflow[keep] << _TS_BITS) | ts
    return finish_events(ev, path, offset_of)


def read_aedat3(path: str | os.PathLike) -> np.ndarray:
    """Read the polarity events of an AEDAT 3.1 file (memory-mapped), sorted by ``t``."""
    path = Path(path)
    _, data_offset = split_header(read_prefix(path), path, end_marker=END_HEADER)
    size = path.stat().st_size
    buf = np.memmap(path, dtype=np.uint8, mode="r") if size else np.zeros(0, np.uint8)
    return decode_aedat3(buf, data_offset, path)


def encode_aedat3(events: np.ndarray, *, packet_events: int = 4096, source: int = 1,
                  header: tuple[str, ...] = ("#Format: RAW", "#Source 1: DVS128"),
                  eol: str = "\r\n") -> bytes:
    """AEDAT 3.1 bytes: a header and polarity packets (all events valid).

    A packet never spans two ``t >> 31`` overflow epochs.
    """
    t = np.asarray(events["t"], dtype=np.int64)
    if t.size and (t.min() < 0 or np.any(np.diff(t) < 0)):
        raise ValueError("events must have non-negative timestamps sorted ascending")
    x, y, p = (np.asarray(events[k], dtype=np.int64) for k in ("x", "y", "p"))
    if x.size and (min(x.min(), y.min()) < 0 or max(x.max(), y.max()) > 0x7FFF
                   or p.min() < 0 or p.max() > 1):
        raise ValueError("AEDAT 3.1 polarity events need 0 <= x, y <= 32767 and p in {0, 1}")
    lines = ["#!AER-DAT3.1", *header, "#!END-HEADER"]
    out = [eol.join(lines).encode("ascii") + eol.encode("ascii")]
    data = ((x << 17) | (y << 2) | (p << 1) | 1).astype("<u4")
    epoch = t >> _TS_BITS
    cuts = np.flatnonzero(np.diff(epoch)) + 1
    for seg in np.split(np.arange(t.size), cuts):
        for start in range(0, seg.size, packet_events):
            idx = seg[start:start + packet_events]
            ev = np.empty(idx.size, POLARITY_DTYPE)
            ev["data"] = data[idx]
            ev["ts"] = t[idx] & ((1 << _TS_BITS) - 1)
            hdr = np.array([(POLARITY_EVENT, source, 8, 4, int(epoch[idx[0]]), idx.size, idx.size,
                             idx.size)], PACKET_HEADER_DTYPE)
            out += [hdr.tobytes(), ev.tobytes()]
    return b"".join(out)


def write_aedat3(path: str | os.PathLike, events: np.ndarray, **options) -> None:
    """Write events as an AEDAT 3.1 file atomically; ``options`` go to :func:`encode_aedat3`."""
    atomic_write_bytes(path, encode_aedat3(events, **options), fsync=False)
