"""DVS128-Gait (Wang et al., EV-Gait, CVPR 2019) in the numpy layout of ASA-SNN, 128x128x2.

Layout under ``root`` (``$SPIKEFLOW_DVS_GAIT`` or ``$SPIKEFLOW_DATA/DVS128Gait``), one folder per
recording condition (day / night)::

    train/train_data.npy     object array: one [N, 4] event array per sample, columns t, x, y, p
    train/train_target.npy   int labels (20 subjects)
    test/test_data.npy, test/test_target.npy

Object arrays are read with a restricted unpickler (numpy arrays only, no arbitrary code).
Timestamps are taken as microseconds (``time_scale`` multiplies them otherwise).

ASA recipe: ``T=60, dt_ms=15, ds=4, rcs=True, event_drop=True`` for training and ``clips=10``
for testing (arch A day / arch D night).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spikeflow.data import register_dataset
from spikeflow.data.event_build import EventSample
from spikeflow.data.event_dataset import EventDataset, event_kwargs
from spikeflow.data.event_options import MissingDataError, resolve_root
from spikeflow.events import SensorSize
from spikeflow.events.io import from_columns, load_object_array

GAIT_SENSOR = SensorSize(128, 128, 2)
N_CLASSES = 20
LAYOUT = ("  <root>/train/train_data.npy, <root>/train/train_target.npy\n"
          "  <root>/test/test_data.npy,  <root>/test/test_target.npy\n"
          "  (data: object array of [N, 4] event arrays with columns t, x, y, p)")
SOURCE = ("DVS128-Gait, Wang et al. 'EV-Gait' (CVPR 2019), "
          "https://github.com/zhangxiann/TPAMI_Gait_Identification; npy layout of "
          "https://github.com/BICLab/ASA-SNN")


@dataclass(frozen=True)
class GaitReader:
    """Opens a ``*_data.npy`` object array; a sample is one entry (``selector = (index,)``)."""

    columns: str = "txyp"
    time_scale: float = 1.0

    def open(self, source: str) -> np.ndarray:
        return load_object_array(source)

    def take(self, opened: np.ndarray, sample: EventSample) -> np.ndarray:
        arr = np.asarray(opened[sample.selector[0]])
        # every value checked and the timestamp rule applied (docs/events.md), never cast silently
        return from_columns(arr, self.columns, f"{sample.source}[{sample.selector[0]}]",
                            time_scale=self.time_scale)


def gait_samples(root: Path, split: str) -> list[EventSample]:
    """One sample per entry of ``<split>_data.npy``, labelled by ``<split>_target.npy``."""
    data, target = root / split / f"{split}_data.npy", root / split / f"{split}_target.npy"
    missing = [str(p) for p in (data, target) if not p.is_file()]
    if missing:
        raise MissingDataError("dvs_gait", missing, LAYOUT, SOURCE)
    raw = np.asarray(load_object_array(target))
    labels = raw.reshape(len(raw), -1).astype(np.float64)
    labels = labels.argmax(1) if labels.shape[1] > 1 else labels[:, 0]  # one-hot or index
    return [EventSample(str(data), int(lab), f"{split}/{split}_data.npy#{i}", (i,))
            for i, lab in enumerate(labels.astype(np.int64))]


class DVSGait(EventDataset):
    """DVS128-Gait samples from ASA's numpy files."""

    def __init__(self, root: str | os.PathLike, split: str = "train", *,
                 time_scale: float = 1.0, **options: Any) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"dvs_gait: split must be 'train' or 'test', got {split!r}")
        self.root = Path(root)
        samples = gait_samples(self.root, split)
        super().__init__(samples, GAIT_SENSOR, GaitReader("txyp", float(time_scale)),
                         name="dvs_gait", split=split, classes=[str(i) for i in range(N_CLASSES)],
                         **event_kwargs(GAIT_SENSOR, split, options, default_T=60))


@register_dataset("dvs_gait")
def dvs_gait(root: str | os.PathLike | None = None, split: str = "train", **options: Any
             ) -> DVSGait:
    """DVS128-Gait frames (default T=60, split_by="number"; ASA uses dt_ms=15, ds=4)."""
    base = resolve_root(root, dataset="dvs_gait", env="SPIKEFLOW_DVS_GAIT", dirname="DVS128Gait",
                        layout=LAYOUT, source=SOURCE)
    if split not in ("train", "test"):
        raise ValueError(f"dvs_gait: split must be 'train' or 'test', got {split!r}")
    return DVSGait(base, split, **options)
