"""HAR-DVS / HARDVS (Wang et al., "HARDVS: Revisiting Human Activity Recognition with Dynamic Vision
Sensors", AAAI 2024; github.com/Event-AHU/HARDVS): 300 human activities recorded with a DAVIS346
(346 x 260). The ASA-SNN paper's last table row (SEW-Res-SNN-18 45.5 -> 47.1 with ASA) uses it; its
repository holds no HAR-DVS code, so the exact input pipeline of that row is not known.

The authors publish the recordings in two forms, "Event Images" and "Compact Event file" (their
README; the raw event files are "to be updated"); both are read from a user folder ``root``
(``$SPIKEFLOW_HAR_DVS`` or ``$SPIKEFLOW_DATA/HARDVS``), and both use the split lists::

    <root>/train_label.txt, <root>/val_label.txt, <root>/test_label.txt
        one sample per non-empty line: "action_NNN/<sample>[ more tokens]"; label = NNN - 1 (0..299)

* ``format="events"`` (default; the compact event files as SpikingJelly's ``HARDVS`` reads them,
  per-class archives ``MINI_HARDVS_files/action_NNN.zip`` unpacked: one numpy archive per recording)::

      <root>/action_NNN/<sample>.npz        arrays t (us), x, y, p   (x < 346, y < 260)

  Items are frames ``[T, 2, ceil(260/ds), ceil(346/ds)]`` built by the shared event pipeline
  (every :mod:`~spikeflow.data.event_options` key: ``T``, ``split_by``, ``dt_ms``, ``ds``, ``rcs``,
  ``clips``..., default ``T=8``, ``split_by="number"``), or raw events with
  ``representation="events"``.
* ``format="frames"`` (the full release's event images, one folder of images per recording)::

      <root>/action_NNN/<sample>/*.png      (or .jpg), sorted by file name

  An item is ``T`` of a recording's ``n`` images -> float32 ``[T, C, H, W]`` in [0, 1], ``C = 3``
  (``channels="rgb"``) or 1 (``"gray"``), optionally resized to ``size = (H, W)`` (bilinear).
  ``sampling="consecutive"`` (default) is the dataset authors' recipe (their ESTF config:
  mmaction2 ``SampleFrames(clip_len=T, frame_interval=1, num_clips=1)``): ``T`` consecutive images
  from a start drawn uniformly in ``[0, n - T]`` for training, from ``int((n - T + 1) / 2)`` for
  val/test, indices taken modulo ``n`` when ``n < T``. ``sampling="uniform"``: indices
  ``floor((i + 0.5) n / T)`` (evenly spaced over the whole recording, every split). Reading needs
  Pillow (installed with matplotlib).

Missing files are reported with the expected layout at construction (``check_files=True``); a file
that cannot be decoded raises ``ValueError`` naming it.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from spikeflow.data import register_dataset
from spikeflow.data.event_build import EventSample
from spikeflow.data.event_dataset import EventDataset, event_kwargs
from spikeflow.data.event_options import MissingDataError, resolve_root
from spikeflow.events import SensorSize
from spikeflow.events.io import read_numpy
from spikeflow.events.types import EventFormatError

HARDVS_SENSOR = SensorSize(346, 260, 2)
N_CLASSES = 300
SPLITS = ("train", "val", "test")
FORMATS = ("events", "frames")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
LAYOUT = ("  <root>/{train,val,test}_label.txt   lines 'action_NNN/<sample> ...' (NNN = 001..300)\n"
          "  format='events': <root>/action_NNN/<sample>.npz        (arrays t, x, y, p)\n"
          "  format='frames': <root>/action_NNN/<sample>/*.png       (event images of one recording)")
SOURCE = ("HARDVS, Wang et al. (AAAI 2024), https://github.com/Event-AHU/HARDVS (event files and "
          "event images; the split lists train_label.txt / val_label.txt / test_label.txt)")
_ENTRY = re.compile(r"^action_(\d{3})/([^/\s]+)$")


def read_split_list(path: Path) -> list[tuple[str, str, int]]:
    """``(class folder, sample name, label)`` per non-empty line of a ``*_label.txt`` file."""
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        entry = line.split()[0]
        m = _ENTRY.match(entry)
        if m is None or not 1 <= int(m.group(1)) <= N_CLASSES:
            raise ValueError(f"har_dvs: {path}, line {n}: expected 'action_NNN/<sample>' with NNN in "
                             f"001..{N_CLASSES}, got {line.strip()!r}")
        out.append((f"action_{m.group(1)}", m.group(2), int(m.group(1)) - 1))
    return out


def split_entries(root: Path, split: str, fmt: str, check_files: bool = True) -> list[EventSample]:
    """The samples of ``split``: ``source`` = the ``.npz`` file (events) or image folder (frames)."""
    if split not in SPLITS:
        raise ValueError(f"har_dvs: split must be one of {SPLITS}, got {split!r}")
    if fmt not in FORMATS:
        raise ValueError(f"har_dvs: format must be one of {FORMATS}, got {fmt!r}")
    listing = root / f"{split}_label.txt"
    if not listing.is_file():
        raise MissingDataError("har_dvs", [str(listing)], LAYOUT, SOURCE)
    samples = []
    for folder, name, label in read_split_list(listing):
        source = root / folder / (f"{name}.npz" if fmt == "events" else name)
        samples.append(EventSample(str(source), label, f"{folder}/{name}"))
    if check_files:
        exists = Path.is_file if fmt == "events" else Path.is_dir
        missing = [s.source for s in samples if not exists(Path(s.source))]
        if missing:
            raise MissingDataError("har_dvs", missing, LAYOUT, SOURCE,
                                   f"{len(missing)} of {len(samples)} samples listed in {listing} are "
                                   "missing; pass check_files=False to skip this check.")
    return samples


@dataclass(frozen=True)
class HarDvsNpzReader:
    """One recording per ``.npz`` (arrays t, x, y, p); checks the DAVIS346 geometry, sorts by ``t``."""

    def open(self, source: str) -> np.ndarray:
        try:
            ev = read_numpy(source)
        except EventFormatError as err:
            raise ValueError(f"har_dvs: cannot read {source}: {err}") from err
        if ev.size and (ev["x"].min() < 0 or ev["y"].min() < 0 or ev["x"].max() >= HARDVS_SENSOR.width
                        or ev["y"].max() >= HARDVS_SENSOR.height or not np.isin(ev["p"], (0, 1)).all()):
            raise ValueError(f"har_dvs: {source}: events outside the 346 x 260 sensor or polarity not 0/1 "
                             f"(x {ev['x'].min()}..{ev['x'].max()}, y {ev['y'].min()}..{ev['y'].max()})")
        if ev.size > 1 and np.any(np.diff(ev["t"]) < 0):
            ev = ev[np.argsort(ev["t"], kind="stable")]
        return ev

    def take(self, opened: np.ndarray, sample: EventSample) -> np.ndarray:
        return opened


def frame_indices(n: int, T: int) -> np.ndarray:
    """``floor((i + 0.5) n / T)`` for ``i = 0..T-1``: ``T`` evenly spaced picks out of ``n`` images."""
    if n < 1 or T < 1:
        raise ValueError(f"need n >= 1 images and T >= 1, got n={n}, T={T}")
    return np.floor((np.arange(T) + 0.5) * n / T).astype(np.int64)


def consecutive_indices(n: int, T: int, train: bool, rng: np.random.Generator | None = None) -> np.ndarray:
    """mmaction2 ``SampleFrames(clip_len=T, frame_interval=1, num_clips=1)`` on ``n`` frames:
    start ``~ U{0..n-T}`` (train) or ``int((n - T + 1) / 2)`` (test), 0 when ``n < T``; the ``T``
    indices ``start + 0..T-1`` taken modulo ``n``."""
    if n < 1 or T < 1:
        raise ValueError(f"need n >= 1 images and T >= 1, got n={n}, T={T}")
    if n < T:
        start = 0
    elif train:
        if rng is None:
            raise ValueError("consecutive_indices(train=True) needs a numpy Generator")
        start = int(rng.integers(0, n - T + 1))
    else:
        start = int((n - T + 1) / 2.0)
    return (start + np.arange(T)) % n


def read_image(path: str | os.PathLike, channels: str = "rgb") -> np.ndarray:
    """One event image as uint8 ``[C, H, W]`` (``C`` 3 for ``"rgb"``, 1 for ``"gray"``)."""
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415 (optional, comes with matplotlib)

    try:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB" if channels == "rgb" else "L"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise ValueError(f"har_dvs: cannot decode image {path}: {err}") from err
    return arr.transpose(2, 0, 1) if arr.ndim == 3 else arr[None]


class HARDVSFrames(Dataset):
    """HARDVS event images: item ``(x [T, C, H, W] float32 in [0, 1], label)`` (module doc)."""

    def __init__(self, root: str | os.PathLike, split: str = "train", *, T: int = 8, channels: str = "rgb",
                 size: Sequence[int] | int | None = None, sampling: str = "consecutive", seed: int = 0,
                 check_files: bool = True) -> None:
        if channels not in ("rgb", "gray"):
            raise ValueError(f"har_dvs: channels must be 'rgb' or 'gray', got {channels!r}")
        if sampling not in ("consecutive", "uniform"):
            raise ValueError(f"har_dvs: sampling must be 'consecutive' or 'uniform', got {sampling!r}")
        self.sampling, self.seed, self._epoch, self._draws = sampling, int(seed), None, 0
        if int(T) < 1:
            raise ValueError(f"har_dvs: T must be >= 1, got {T!r}")
        self.root, self.split, self.T, self.channels = Path(root), split, int(T), channels
        self.size = None if size is None else ((int(size), int(size)) if isinstance(size, int)
                                               else tuple(int(v) for v in size))
        self.samples = split_entries(self.root, split, "frames", check_files)
        self.targets = np.array([s.label for s in self.samples], dtype=np.int64)
        self.classes = [f"action_{i + 1:03d}" for i in range(N_CLASSES)]

    def __len__(self) -> int:
        return len(self.samples)

    def images(self, i: int) -> list[Path]:
        """The sorted image files of sample ``i``."""
        folder = Path(self.samples[i].source)
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
        if not files:
            raise MissingDataError("har_dvs", [f"{folder}: no {'/'.join(IMAGE_SUFFIXES)} images"], LAYOUT, SOURCE)
        return files

    def set_epoch(self, epoch: int) -> None:
        """Fix the epoch term of the per-item Generators (reproducible training clips)."""
        self._epoch = int(epoch)

    def indices(self, i: int, n: int) -> np.ndarray:
        """The image indices of item ``i`` out of ``n`` images (``sampling``; module doc)."""
        if self.sampling == "uniform":
            return frame_indices(n, self.T)
        if self.split != "train":
            return consecutive_indices(n, self.T, False)
        if self._epoch is None:
            self._draws += 1
        epoch = self._draws if self._epoch is None else self._epoch
        return consecutive_indices(n, self.T, True, np.random.default_rng([self.seed, epoch, int(i)]))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        files = self.images(i)
        picks = [read_image(files[j], self.channels) for j in self.indices(i, len(files))]
        shapes = {p.shape for p in picks}
        if len(shapes) != 1:
            raise ValueError(f"har_dvs: images of {self.samples[i].source} differ in size: {sorted(shapes)}")
        x = torch.from_numpy(np.stack(picks)).float().div_(255.0)
        if self.size is not None and tuple(x.shape[-2:]) != self.size:
            x = torch.nn.functional.interpolate(x, size=self.size, mode="bilinear", align_corners=False)
        return x, int(self.targets[i])

    def frame_shape(self) -> tuple[int, ...] | None:
        if self.size is None:
            return None
        return (self.T, 3 if self.channels == "rgb" else 1, *self.size)

    def __repr__(self) -> str:
        return f"HARDVSFrames(split={self.split!r}, n={len(self)}, T={self.T}, channels={self.channels!r})"


class HARDVSEvents(EventDataset):
    """HARDVS event recordings (``.npz``) through the shared frame pipeline (module doc)."""

    def __init__(self, root: str | os.PathLike, split: str = "train", *, check_files: bool = True,
                 **options: Any) -> None:
        self.root = Path(root)
        samples = split_entries(self.root, split, "events", check_files)
        if not {"dt_ms", "window_us", "split_by", "frames"} & set(options):
            options["split_by"] = "number"
        super().__init__(samples, HARDVS_SENSOR, HarDvsNpzReader(), name="har_dvs", split=split,
                         classes=[f"action_{i + 1:03d}" for i in range(N_CLASSES)],
                         **event_kwargs(HARDVS_SENSOR, split, options, default_T=8))


@register_dataset("har_dvs")
def har_dvs(root: str | os.PathLike | None = None, split: str = "train", format: str = "events",
            **options: Any) -> Dataset:
    """HARDVS (300 classes; splits train/val/test): ``format="events"`` -> frames
    ``[T, 2, ceil(260/ds), ceil(346/ds)]`` from the ``.npz`` recordings (default T 8, split by
    number), ``format="frames"`` -> ``[T, C, H, W]`` event images."""
    base = resolve_root(root, dataset="har_dvs", env="SPIKEFLOW_HAR_DVS", dirname="HARDVS",
                        layout=LAYOUT, source=SOURCE)
    if format not in FORMATS:
        raise ValueError(f"har_dvs: format must be one of {FORMATS}, got {format!r}")
    if format == "frames":
        return HARDVSFrames(base, split, **options)
    return HARDVSEvents(base, split, **options)


__all__ = ["HARDVSEvents", "HARDVSFrames", "HarDvsNpzReader", "har_dvs", "read_split_list", "split_entries",
           "frame_indices", "consecutive_indices", "read_image", "HARDVS_SENSOR", "N_CLASSES"]
