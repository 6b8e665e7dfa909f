"""DVS128 Gesture (Amir et al. 2017): 11 hand/arm gestures, 29 subjects, 128x128x2.

``layout="aedat"`` (default), the published ``DvsGesture`` folder (``root`` may be the folder
itself or its parent; ``$SPIKEFLOW_DVS_GESTURE`` or ``$SPIKEFLOW_DATA/DvsGesture``)::

    trials_to_train.txt, trials_to_test.txt   the .aedat names of each split (users 1-23 / 24-29)
    userXX_<lighting>.aedat                   AEDAT 3.1 recordings
    userXX_<lighting>_labels.csv              class,startTime_usec,endTime_usec (classes 1..11)

Every CSV row is a sample (``start <= t < end``, label ``class - 1``), giving 1176 train and 288
test samples as SpikingJelly/snnTorch (Tonic drops some and gets 1077/264). Decoded samples are
cached once (``cache_events``) so random crops never re-read whole trials.

``layout="hdf5"``: the per-sample HDF5 files of the DECOLLE / torchneuromorphic loaders used by
ASA and He2020, ``root/{train,test}/*.hdf5`` with ``times``, ``addrs`` (x, y, p), ``labels``.

Seed recipes: PLIF ``T=20, split_by="number"``; ASA ``T=60, dt_ms=15, ds=4, rcs=True`` (train)
and ``clips=10`` (test); He2020 ``T=60, dt_ms=25, ds=4``; snn-iir
``frames=FrameSpec.snn_iir(30, "max")``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spikeflow.data import register_dataset
from spikeflow.data.event_build import EventSample, FileReader, WindowReader
from spikeflow.data.event_dataset import EventDataset, event_kwargs, with_holdout
from spikeflow.data.event_options import MissingDataError, resolve_root
from spikeflow.events import SensorSize
from spikeflow.events.io import read_aedat3, read_gesture_labels, read_hdf5, read_hdf5_label
from spikeflow.events.io.gesture import CLASS_NAMES, labels_path_for

GESTURE_SENSOR = SensorSize(128, 128, 2)
GESTURE_COUNTS = {"train": 1176, "test": 288}
LAYOUT = ("  <root>/trials_to_train.txt, <root>/trials_to_test.txt\n"
          "  <root>/userXX_<lighting>.aedat and userXX_<lighting>_labels.csv for each listed trial\n"
          "  (or layout='hdf5': <root>/train/*.hdf5, <root>/test/*.hdf5 with times/addrs/labels)")
SOURCE = ("IBM Research, https://research.ibm.com/interactive/dvsgesture/ "
          "(DvsGesture.tar.gz, manual download)")


def _find_folder(root: Path) -> Path:
    for cand in (root, root / "DvsGesture"):
        if (cand / "trials_to_train.txt").is_file() or (cand / "trials_to_test.txt").is_file():
            return cand
    return root


def gesture_samples(root: Path, split: str) -> list[EventSample]:
    """One sample per labels-CSV row of every trial listed for ``split``."""
    folder = _find_folder(root)
    listing = folder / f"trials_to_{split}.txt"
    if not listing.is_file():
        raise MissingDataError("dvs_gesture", [str(listing)], LAYOUT, SOURCE)
    names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
    missing = [str(folder / n) for n in names if not (folder / n).is_file()]
    missing += [str(labels_path_for(folder / n)) for n in names
                if not labels_path_for(folder / n).is_file()]
    if missing:
        raise MissingDataError("dvs_gesture", missing, LAYOUT, SOURCE)
    samples = []
    for name in names:
        aedat = folder / name
        for row, (label, start, end) in enumerate(read_gesture_labels(labels_path_for(aedat))):
            samples.append(EventSample(str(aedat), int(label), f"{aedat.stem}#{row}",
                                       (int(start), int(end))))
    return samples


def hdf5_samples(root: Path, split: str) -> list[EventSample]:
    """One sample per ``root/<split>/*.hdf5`` file; the label is read from ``labels``."""
    folder = root / split
    files = sorted(p for p in folder.glob("*") if p.suffix in (".hdf5", ".h5")) \
        if folder.is_dir() else []
    if not files:
        raise MissingDataError("dvs_gesture", [f"{folder}/*.hdf5"], LAYOUT, SOURCE)
    samples = []
    for f in files:
        label = read_hdf5_label(f)
        if label is None:
            raise MissingDataError("dvs_gesture", [f"{f}: dataset 'labels'"], LAYOUT, SOURCE)
        samples.append(EventSample(str(f), label, f"{split}/{f.name}"))
    return samples


class DVSGesture(EventDataset):
    """DVS128 Gesture samples (see the module doc for layouts and options)."""

    def __init__(self, root: str | os.PathLike, split: str = "train", *, layout: str = "aedat",
                 expected_count: int | None = None, **options: Any) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"dvs_gesture: split must be 'train' or 'test', got {split!r}")
        if layout == "aedat":
            samples, reader = gesture_samples(Path(root), split), WindowReader(read_aedat3)
        elif layout == "hdf5":
            samples, reader = hdf5_samples(Path(root), split), FileReader(read_hdf5)
        else:
            raise ValueError(f"dvs_gesture: layout must be 'aedat' or 'hdf5', got {layout!r}")
        if expected_count is not None and len(samples) != expected_count:
            raise MissingDataError("dvs_gesture", [f"{split}: {len(samples)} samples found, the "
                                                   f"published split has {expected_count}"],
                                   LAYOUT, SOURCE, "Pass check_counts=False to use a subset.")
        self.root = Path(root)
        super().__init__(samples, GESTURE_SENSOR, reader, name="dvs_gesture", split=split,
                         classes=CLASS_NAMES, **event_kwargs(
                             GESTURE_SENSOR, split, options, default_T=20,
                             cache_events=layout == "aedat"))


@register_dataset("dvs_gesture")
def dvs_gesture(root: str | os.PathLike | None = None, split: str = "train", *,
                layout: str = "aedat", check_counts: bool = True, holdout: str | None = None,
                split_file: str | os.PathLike | None = None, val_ratio: float | None = None,
                val_size: int | None = None, **options: Any) -> Any:
    """DVS128 Gesture frames ``[T, 2, 128 // ds, 128 // ds]`` (default T=20) or raw events."""
    base = resolve_root(root, dataset="dvs_gesture", env="SPIKEFLOW_DVS_GESTURE",
                        dirname="DvsGesture", layout=LAYOUT, source=SOURCE)
    split_options = {k: v for k, v in (("val_ratio", val_ratio), ("val_size", val_size))
                     if v is not None}

    def make(s: str) -> DVSGesture:
        count = GESTURE_COUNTS[s] if check_counts and layout == "aedat" else None
        return DVSGesture(base, s, layout=layout, expected_count=count, **options)

    return with_holdout(make, split, holdout, split_file, **split_options)
