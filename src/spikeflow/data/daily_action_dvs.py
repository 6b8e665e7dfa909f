"""DailyAction-DVS (Liu et al., IJCAI 2021): 12 daily actions, 15 subjects, 1440 recordings.

Layout under ``root`` (``$SPIKEFLOW_DAILY_ACTION_DVS`` or ``$SPIKEFLOW_DATA/DailyAction-DVS``)::

    <action>/*.aedat     jAER AEDAT 2.0, DAVIS address layout; 12 action folders x 120 files

Actions (label order, as ASA-SNN): climb, stand, jump, fall, sit, get up, walk, run, lift, lie,
bend, pick. Split: per action the first ``train_per_class = 96`` files (0.8 x 120) in sorted
name order are train, the rest test (ASA takes them in ``os.walk`` order, which depends on the
file system; sorting makes the split reproducible).

Events follow ASA's reader: DAVIS fields (APS/IMU and external events dropped), then
``x = 127 - x``, ``p = 1 - p``, keeping only ``0 <= x, y < 128``.

Frame geometry (``sensor``):

* ``"davis346"`` (default, ASA's ``datasets/action``): the frames keep the full DAVIS346 size,
  ``[T, 2, ceil(260/ds), ceil(346/ds)]`` = ``2 x 130 x 173`` at ``ds=2``, although only the
  ``128/ds`` x ``128/ds`` corner holds events. ASA stores ``[T, p, x, y]`` (``2 x 173 x 130``);
  spikeflow keeps its ``[T, P, H, W]`` order, which is the same network up to transposed kernels
  (same parameter counts: arch B's head input is ``128 * 4 * 5 = 2560`` either way, and the same
  neuron counts for NASFR).
* ``"crop128"``: only the populated 128 x 128 region (``64 x 64`` at ``ds=2``; spikeflow's
  earlier default, fewer parameters and a different NASFR denominator).

ASA recipe: ``T=36, dt_ms=120, ds=2`` (arch B), RCS on in training (``rcs=True``: a random
``T * dt`` window), ``clips=10`` for testing.
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
from spikeflow.events.io import read_aedat2

ACTION_SENSOR = SensorSize(128, 128, 2)
DAVIS_SENSOR = SensorSize(346, 260, 2)
SENSORS = {"davis346": DAVIS_SENSOR, "crop128": ACTION_SENSOR}
ACTIONS = ("climb", "stand", "jump", "fall", "sit", "get up", "walk", "run", "lift", "lie",
           "bend", "pick")
FILES_PER_CLASS = 120
LAYOUT = ("  <root>/<action>/*.aedat   (12 action folders: " + ", ".join(ACTIONS) +
          "; 120 AEDAT 2.0 files each)")
SOURCE = ("DailyAction-DVS, Liu et al. 'Event-based Action Recognition Using Motion Information "
          "and Spiking Neural Networks' (IJCAI 2021); distributed by the authors")


@dataclass(frozen=True)
class DailyActionReader:
    """DAVIS AEDAT 2.0 -> ASA's orientation (``x = 127 - x``, ``p = 1 - p``, 128x128 crop)."""

    def open(self, source: str) -> np.ndarray:
        ev = read_aedat2(source, layout="davis346")
        out = ev.copy()
        out["x"] = 127 - ev["x"]
        out["p"] = 1 - ev["p"]
        keep = (out["x"] >= 0) & (out["x"] < 128) & (out["y"] >= 0) & (out["y"] < 128)
        return out[keep]

    def take(self, opened: np.ndarray, sample: EventSample) -> np.ndarray:
        return opened


def _folder_of(root: Path, action: str) -> Path | None:
    for name in (action, action.replace(" ", "_"), action.replace(" ", "")):
        if (root / name).is_dir():
            return root / name
    return None


def action_samples(root: Path, split: str, train_per_class: int = 96,
                   check_counts: bool = True) -> list[EventSample]:
    """Per action, sorted files: the first ``train_per_class`` -> train, the rest -> test."""
    folders = {a: _folder_of(root, a) for a in ACTIONS}
    missing = [str(root / a) for a, f in folders.items() if f is None]
    if missing:
        raise MissingDataError("daily_action_dvs", missing, LAYOUT, SOURCE)
    samples = []
    for label, action in enumerate(ACTIONS):
        files = sorted(folders[action].glob("*.aedat"))
        if check_counts and len(files) != FILES_PER_CLASS:
            raise MissingDataError("daily_action_dvs", [f"{folders[action]}: {len(files)} .aedat "
                                                        f"files, expected {FILES_PER_CLASS}"],
                                   LAYOUT, SOURCE, "Pass check_counts=False to use a subset.")
        part = files[:train_per_class] if split == "train" else files[train_per_class:]
        samples += [EventSample(str(f), label, f"{folders[action].name}/{f.name}") for f in part]
    return samples


class DailyActionDVS(EventDataset):
    """DailyAction-DVS with the per-class first-96 split (see the module doc)."""

    def __init__(self, root: str | os.PathLike, split: str = "train", *,
                 train_per_class: int = 96, check_counts: bool = True, sensor: str = "davis346",
                 **options: Any) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"daily_action_dvs: split must be 'train' or 'test', got {split!r}")
        if sensor not in SENSORS:
            raise ValueError(f"daily_action_dvs: sensor must be one of {tuple(SENSORS)}, got {sensor!r}")
        self.root = Path(root)
        geometry = SENSORS[sensor]
        samples = action_samples(self.root, split, int(train_per_class), check_counts)
        super().__init__(samples, geometry, DailyActionReader(), name="daily_action_dvs",
                         split=split, classes=ACTIONS,
                         **event_kwargs(geometry, split, options, default_T=36))


@register_dataset("daily_action_dvs")
def daily_action_dvs(root: str | os.PathLike | None = None, split: str = "train",
                     **options: Any) -> DailyActionDVS:
    """DailyAction-DVS frames ``[T, 2, ceil(260/ds), ceil(346/ds)]`` (``sensor="davis346"``, ASA's)
    or ``[T, 2, 128/ds, 128/ds]`` (``sensor="crop128"``), default T=36; or raw events."""
    base = resolve_root(root, dataset="daily_action_dvs", env="SPIKEFLOW_DAILY_ACTION_DVS",
                        dirname="DailyAction-DVS", layout=LAYOUT, source=SOURCE)
    return DailyActionDVS(base, split, **options)
