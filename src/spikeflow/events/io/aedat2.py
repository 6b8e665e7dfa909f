"""jAER AEDAT 2.0 files (CIFAR10-DVS, DailyAction-DVS): big-endian ``uint32 address, uint32 t``.

The ASCII header is a run of ``#`` lines (first ``#!AER-DAT2.0``, last ``#End Of ASCII Header``
in newer jAER files and always in spikeflow's; how marker-less headers end:
:mod:`spikeflow.events.io._header`); the 8-byte records follow.
Two address layouts:

* ``"dvs128"`` (CIFAR10-DVS): polarity = bit 0, x = bits 1-7, y = bits 8-14. These are returned
  as the RAW fields; a dataset maps them to image axes (CIFAR10-DVS: see
  :func:`spikeflow.data.cifar10_dvs.orient_cifar10_dvs`).
* ``"davis346"``: polarity = bit 11, x = bits 12-21, y = bits 22-30, bit 31 = APS/IMU sample and
  bit 10 = external (trigger) event; events with either bit set are dropped unless
  ``keep_special=True``.

Timestamps are unwrapped at the 2**32 µs rollover and checked and sorted by the rule of
:mod:`spikeflow.events.io._checks` (a step back of more than 1 s is an error).

    >>> import os, tempfile
    >>> from spikeflow.events.types import make_events
    >>> ev = make_events(x=[3, 127], y=[4, 0], t=[10, 20], p=[1, 0])
    >>> path = os.path.join(tempfile.mkdtemp(), "cifar10_cat_0.aedat")
    >>> write_aedat2(path, ev)
    >>> bool((read_aedat2(path) == ev).all())
    True
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spikeflow.events.io._checks import finish_events
from spikeflow.events.io._header import AEDAT2_END, read_prefix, split_aedat2_header
from spikeflow.events.types import EVENT_DTYPE, EventFormatError
from spikeflow.utils.atomic import atomic_write_bytes

RECORD_DTYPE = np.dtype([("addr", ">u4"), ("t", ">u4")])
# name -> (polarity shift, x shift, x mask, y shift, y mask, special-bits mask)
LAYOUTS: dict[str, tuple[int, int, int, int, int, int]] = {
    "dvs128": (0, 1, 0x7F, 8, 0x7F, 0),
    "davis346": (11, 12, 0x3FF, 22, 0x1FF, (1 << 31) | (1 << 10)),
}


def _layout(layout: str) -> tuple[int, int, int, int, int, int]:
    try:
        return LAYOUTS[layout]
    except KeyError:
        raise ValueError(f"unknown AEDAT 2.0 layout {layout!r}; expected one of "
                         f"{sorted(LAYOUTS)}") from None


def decode_aedat2(records: np.ndarray, layout: str = "dvs128", keep_special: bool = False,
                  path: object = "<bytes>", data_offset: int = 0) -> np.ndarray:
    """Decode ``RECORD_DTYPE`` records (address, timestamp) into a sorted event array.

    ``path`` and ``data_offset`` (of the first record) only name the place of a bad timestamp.
    """
    ps, xs, xm, ys, ym, special = _layout(layout)
    addr = records["addr"].astype(np.uint32)
    t = records["t"].astype(np.int64)
    if t.size > 1:  # unwrap the 32-bit µs counter (rolls over every ~71.6 minutes)
        wraps = np.cumsum(np.diff(t) < -(1 << 31))
        if wraps[-1]:
            t[1:] += wraps.astype(np.int64) << 32
    index = None
    if special and not keep_special:
        keep = (addr & special) == 0
        addr, t = addr[keep], t[keep]
        index = np.flatnonzero(keep)
    ev = np.empty(addr.size, dtype=EVENT_DTYPE)
    ev["x"] = (addr >> xs) & xm
    ev["y"] = (addr >> ys) & ym
    ev["p"] = (addr >> ps) & 1
    ev["t"] = t
    return finish_events(ev, path, lambda i: data_offset + RECORD_DTYPE.itemsize * int(
        index[i] if index is not None else i))


def read_aedat2(path: str | os.PathLike, layout: str = "dvs128", keep_special: bool = False
                ) -> np.ndarray:
    """Read a jAER AEDAT 2.0 file (memory-mapped body) into an event array sorted by ``t``."""
    _layout(layout)
    path = Path(path)
    size = path.stat().st_size
    _, data_offset = split_aedat2_header(read_prefix(path), path, size, RECORD_DTYPE.itemsize)
    body = size - data_offset
    if body % 4:
        raise EventFormatError(path, data_offset + body - body % 4,
                               f"body of {body} bytes is not a whole number of 32-bit words")
    if body % RECORD_DTYPE.itemsize:
        raise EventFormatError(path, data_offset + body - 4,
                               f"odd number of 32-bit words ({body // 4}) in the body; expected "
                               f"(address, timestamp) pairs of 8 bytes")
    if body == 0:
        return np.zeros(0, dtype=EVENT_DTYPE)
    records = np.memmap(path, dtype=RECORD_DTYPE, mode="r", offset=data_offset)
    return decode_aedat2(records, layout, keep_special, path, data_offset)


def encode_aedat2(events: np.ndarray, layout: str = "dvs128",
                  header: tuple[str, ...] = ("# This is a raw AE data file - do not edit",),
                  eol: str = "\r\n") -> bytes:
    """AEDAT 2.0 bytes for ``events`` (raw address fields of ``layout``; t must fit in uint32).

    ``header`` lines (each starting with ``#``, text without line breaks) go between the version
    line and the ``#End Of ASCII Header`` line, which makes the data offset unambiguous.
    """
    ps, xs, xm, ys, ym, _ = _layout(layout)
    for line in header:
        if (not line.startswith("#") or not all(" " <= c <= "~" or c == "\t" for c in line)
                or line.strip().lower().replace(" ", "") == "#endofasciiheader"):
            raise ValueError(f"AEDAT 2.0 header lines must be ASCII text starting with '#' "
                             f"(no line breaks, not the end line), got {line!r}")
    x, y, p, t = (np.asarray(events[k], dtype=np.int64) for k in ("x", "y", "p", "t"))
    if x.size and (x.min() < 0 or y.min() < 0 or x.max() > xm or y.max() > ym
                   or p.min() < 0 or p.max() > 1):
        raise ValueError(f"layout {layout!r} needs 0 <= x <= {xm}, 0 <= y <= {ym}, p in {{0, 1}}")
    if t.size and (t.min() < 0 or t.max() >= 1 << 32):
        raise ValueError("AEDAT 2.0 timestamps must fit in 32 bits (0 <= t < 2**32 µs)")
    rec = np.empty(x.size, RECORD_DTYPE)
    rec["addr"] = (p << ps) | (x << xs) | (y << ys)
    rec["t"] = t
    head = eol.join(["#!AER-DAT2.0", *header, AEDAT2_END.decode()]) + eol
    return head.encode("ascii") + rec.tobytes()


def write_aedat2(path: str | os.PathLike, events: np.ndarray, layout: str = "dvs128",
                 **options) -> None:
    """Write events as a jAER AEDAT 2.0 file atomically (:mod:`spikeflow.utils.atomic`)."""
    atomic_write_bytes(path, encode_aedat2(events, layout, **options), fsync=False)
