"""DVS128 Gesture trials: an AEDAT 3.1 recording plus its ``*_labels.csv`` of gesture windows.

The CSV has a header row ``class,startTime_usec,endTime_usec`` and one row per gesture; classes
1..11 are returned as labels 0..10 and a sample is the events with ``start <= t < end`` (half open,
as SpikingJelly). Every row is a sample, so a class repeated in one file (user26_fluorescent)
gives several samples, and overlapping windows (user22_led) share events.

    >>> import os, tempfile
    >>> d = tempfile.mkdtemp(); csv = os.path.join(d, "user01_led_labels.csv")
    >>> _ = open(csv, "w").write("class,startTime_usec,endTime_usec\\n3,100,200\\n")
    >>> read_gesture_labels(csv).tolist()
    [(2, 100, 200)]
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spikeflow.events.io.aedat3 import read_aedat3
from spikeflow.events.types import EventFormatError

LABEL_DTYPE = np.dtype([("label", "<i8"), ("start", "<i8"), ("end", "<i8")])
CSV_HEADER = ("class", "starttime_usec", "endtime_usec")
N_CLASSES = 11
CLASS_NAMES = (
    "hand_clapping", "right_hand_wave", "left_hand_wave", "right_arm_clockwise",
    "right_arm_counter_clockwise", "left_arm_clockwise", "left_arm_counter_clockwise",
    "arm_roll", "air_drums", "air_guitar", "other_gestures",
)


def labels_path_for(aedat_path: str | os.PathLike) -> Path:
    """``userXX_lighting.aedat`` -> ``userXX_lighting_labels.csv`` (same folder)."""
    p = Path(aedat_path)
    return p.with_name(f"{p.stem}_labels.csv")


def read_gesture_labels(path: str | os.PathLike) -> np.ndarray:
    """Parse a labels CSV into a ``LABEL_DTYPE`` array (label 0..10, start, end in µs)."""
    path = Path(path)
    raw = path.read_bytes()
    if not raw.strip():
        raise EventFormatError(path, 0, "empty labels file; expected the header row "
                               "'class,startTime_usec,endTime_usec'")
    rows: list[tuple[int, int, int]] = []
    offset = 0
    for i, line in enumerate(raw.split(b"\n")):
        at, offset = offset, offset + len(line) + 1
        text = line.decode("utf-8", "replace").strip().lstrip("\ufeff")
        if not text:
            continue
        cols = [c.strip() for c in text.split(",")]
        if i == 0:
            if tuple(c.lower() for c in cols) != CSV_HEADER:
                raise EventFormatError(path, at, f"expected the header row "
                                       f"'class,startTime_usec,endTime_usec', got {text!r}")
            continue
        if len(cols) != 3 or not all(c.lstrip("-").isdigit() for c in cols):
            raise EventFormatError(path, at, f"line {i + 1}: expected 3 integer columns "
                                   f"class,startTime_usec,endTime_usec, got {text!r}")
        cls, start, end = (int(c) for c in cols)
        if not 1 <= cls <= N_CLASSES or start < 0 or end <= start:
            raise EventFormatError(path, at, f"line {i + 1}: expected class in 1..{N_CLASSES} "
                                   f"and 0 <= start < end, got {text!r}")
        rows.append((cls - 1, start, end))
    return np.array(rows, dtype=LABEL_DTYPE)


def slice_trial(events: np.ndarray, labels: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """One ``(events with start <= t < end, label)`` per labels row (events sorted by ``t``)."""
    t = events["t"]
    lo = np.searchsorted(t, labels["start"], side="left")
    hi = np.searchsorted(t, labels["end"], side="left")
    return [(events[a:b].copy(), int(lab)) for a, b, lab in zip(lo, hi, labels["label"])]


def read_dvs_gesture_trial(aedat_path: str | os.PathLike,
                           labels_csv: str | os.PathLike | None = None
                           ) -> list[tuple[np.ndarray, int]]:
    """Read one DVS128 Gesture trial as a list of ``(events, label 0..10)``, one per CSV row.

    ``labels_csv`` defaults to ``<aedat stem>_labels.csv`` next to the recording.
    """
    labels = read_gesture_labels(labels_csv if labels_csv is not None
                                 else labels_path_for(aedat_path))
    return slice_trial(read_aedat3(aedat_path), labels)
