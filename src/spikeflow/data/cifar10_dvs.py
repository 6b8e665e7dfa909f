"""CIFAR10-DVS (Li et al. 2017): CIFAR-10 images moved on a monitor, DVS128, 10 x 1000 files.

Layout under ``root`` (``$SPIKEFLOW_CIFAR10_DVS`` or ``$SPIKEFLOW_DATA/CIFAR10DVS``)::

    <class>/cifar10_<class>_<i>.aedat     jAER AEDAT 2.0, i = 0..999, 10 class folders

There is no official split; this dataset uses the common deterministic per-class rule
(SpikingJelly / PLIF): files ``i < 900`` train, ``i >= 900`` test (``test_start``). The split is
data: ``dataset.split_manifest()`` lists the files, ``save_split_manifest(run_dir / ...)``
writes it, so a run folder records exactly what was trained on.

Orientation. The files store DVS128 raw fields (bit 0 polarity, bits 1-7 and 8-14). Published
models (PLIF, SpikingJelly) were trained on ``x = 127 - raw_y, y = 127 - raw_x, p = 1 - raw_p``
(an axis swap, both flips and a polarity inversion, which gives upright images):
``orientation="spikingjelly"`` (default). ``orientation="raw"`` keeps the raw fields.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spikeflow.data import register_dataset
from spikeflow.data.event_build import EventSample
from spikeflow.data.event_dataset import EventDataset, event_kwargs, with_holdout
from spikeflow.data.event_options import MissingDataError, resolve_root
from spikeflow.events import SensorSize
from spikeflow.events.io import read_aedat2

CIFAR10_DVS_SENSOR = SensorSize(128, 128, 2)
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
FILES_PER_CLASS = 1000
LAYOUT = "  <root>/<class>/cifar10_<class>_<i>.aedat   (10 classes x 1000 files, i = 0..999)"
SOURCE = ("https://figshare.com/articles/dataset/CIFAR10-DVS_New/4724671 "
          "(Li et al. 2017, one zip per class)")
_INDEX = re.compile(r"_(\d+)\.aedat$")


def orient_cifar10_dvs(raw: np.ndarray) -> np.ndarray:
    """Raw DVS128 fields -> SpikingJelly's orientation (``x = 127 - y, y = 127 - x, p = 1 - p``).

    The map is its own inverse, so it also turns oriented events back into raw fields.
    """
    out = raw.copy()
    out["x"] = 127 - raw["y"]
    out["y"] = 127 - raw["x"]
    out["p"] = 1 - raw["p"]
    return out


@dataclass(frozen=True)
class Cifar10DVSReader:
    """Reads one recording and applies the orientation (``"spikingjelly"`` or ``"raw"``)."""

    orientation: str = "spikingjelly"

    def open(self, source: str) -> np.ndarray:
        raw = read_aedat2(source, layout="dvs128")
        return orient_cifar10_dvs(raw) if self.orientation == "spikingjelly" else raw

    def take(self, opened: np.ndarray, sample: EventSample) -> np.ndarray:
        return opened


def cifar10_dvs_samples(root: Path, split: str, test_start: int = 900,
                        check_counts: bool = True) -> list[EventSample]:
    """Files of ``split`` by the per-class index rule, in class then index order."""
    missing = [str(root / c) for c in CLASSES if not (root / c).is_dir()]
    if missing:
        raise MissingDataError("cifar10_dvs", missing, LAYOUT, SOURCE)
    samples = []
    for label, cls in enumerate(CLASSES):
        indexed = []
        for f in (root / cls).glob("*.aedat"):
            m = _INDEX.search(f.name)
            if m:
                indexed.append((int(m.group(1)), f))
        indexed.sort()
        if check_counts and len(indexed) != FILES_PER_CLASS:
            have = {i for i, _ in indexed}
            gaps = [f"{root / cls}/cifar10_{cls}_{i}.aedat" for i in range(FILES_PER_CLASS)
                    if i not in have] or [f"{root / cls}: {len(indexed)} files, expected 1000"]
            raise MissingDataError("cifar10_dvs", gaps, LAYOUT, SOURCE,
                                   "Pass check_counts=False to use a subset.")
        for i, f in indexed:
            if (i < test_start) == (split == "train"):
                samples.append(EventSample(str(f), label, f"{cls}/{f.name}"))
    if not samples:
        raise MissingDataError("cifar10_dvs", [f"{root}/<class>/*.aedat for split {split!r}"],
                               LAYOUT, SOURCE)
    return samples


class CIFAR10DVS(EventDataset):
    """CIFAR10-DVS with the deterministic per-class split (see the module doc)."""

    def __init__(self, root: str | os.PathLike, split: str = "train", *,
                 orientation: str = "spikingjelly", test_start: int = 900,
                 check_counts: bool = True, **options: Any) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"cifar10_dvs: split must be 'train' or 'test', got {split!r}")
        if orientation not in ("spikingjelly", "raw"):
            raise ValueError(f"orientation must be 'spikingjelly' or 'raw', got {orientation!r}")
        self.root, self.test_start = Path(root), int(test_start)
        samples = cifar10_dvs_samples(self.root, split, self.test_start, check_counts)
        super().__init__(samples, CIFAR10_DVS_SENSOR, Cifar10DVSReader(orientation),
                         name="cifar10_dvs", split=split, classes=CLASSES,
                         **event_kwargs(CIFAR10_DVS_SENSOR, split, options, default_T=20))

    def split_manifest(self) -> dict[str, Any]:
        doc = super().split_manifest()
        doc["rule"] = f"per class: file index < {self.test_start} -> train, else test"
        return doc


@register_dataset("cifar10_dvs")
def cifar10_dvs(root: str | os.PathLike | None = None, split: str = "train", *,
                holdout: str | None = None, split_file: str | os.PathLike | None = None,
                val_ratio: float | None = None, val_size: int | None = None,
                **options: Any) -> Any:
    """CIFAR10-DVS frames ``[T, 2, 128, 128]`` (default T=20, split_by="number") or events."""
    base = resolve_root(root, dataset="cifar10_dvs", env="SPIKEFLOW_CIFAR10_DVS",
                        dirname="CIFAR10DVS", layout=LAYOUT, source=SOURCE)
    split_options = {k: v for k, v in (("val_ratio", val_ratio), ("val_size", val_size))
                     if v is not None}
    return with_holdout(lambda s: CIFAR10DVS(base, s, **options), split, holdout, split_file,
                        **split_options)
