"""N-MNIST (Orchard et al. 2015): saccading ATIS recordings of MNIST digits, 34x34x2.

Layout under ``root`` (``$SPIKEFLOW_NMNIST``, or ``$SPIKEFLOW_DATA/NMNIST``)::

    Train/<class>/<id>.bin     60000 files, class folders 0..9
    Test/<class>/<id>.bin      10000 files

The class folders are sorted (digit folders by value) and their index is the label; files are
sorted by name. :class:`NMNIST` also serves any folder in this layout with another sensor size
and class set (the ``n_digits`` / ``n_fashion_mnist`` emulated datasets reuse it). Example::

    ds = create_dataset("nmnist", "/data/NMNIST", "train", T=10)   # PLIF: split_by="number"
    x, y = ds[0]                                                     # x: [10, 2, 34, 34] float32
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from spikeflow.data import register_dataset
from spikeflow.data.event_build import EventSample, FileReader
from spikeflow.data.event_dataset import EventDataset, event_kwargs, with_holdout
from spikeflow.data.event_options import MissingDataError, resolve_root
from spikeflow.events import SensorSize
from spikeflow.events.io import read_nmnist

NMNIST_SENSOR = SensorSize(34, 34, 2)
NMNIST_COUNTS = {"train": 60000, "test": 10000}
SPLIT_DIRS = {"train": "Train", "test": "Test"}
LAYOUT = ("  <root>/Train/<class>/*.bin   (N-MNIST: 60000 files, classes 0..9)\n"
          "  <root>/Test/<class>/*.bin    (10000 files)")
SOURCE = ("https://www.garrickorchard.com/datasets/n-mnist (Mendeley Data 468j46mzdv: "
          "Train.zip, Test.zip)")


def _class_key(name: str) -> tuple[int, int | str]:
    return (0, int(name)) if name.isdigit() else (1, name)


def scan_class_folders(root: Path, split: str, *, dataset: str = "nmnist",
                       suffix: str = ".bin", layout: str = LAYOUT, source: str = SOURCE,
                       ) -> tuple[list[EventSample], list[str]]:
    """Samples of ``root/<Train|Test>/<class>/*<suffix>``: (samples, class names)."""
    folder = root / SPLIT_DIRS[split]
    if not folder.is_dir():
        raise MissingDataError(dataset, [str(folder)], layout, source)
    classes = sorted((d.name for d in folder.iterdir() if d.is_dir()), key=_class_key)
    samples = []
    for label, cls in enumerate(classes):
        for f in sorted((folder / cls).glob(f"*{suffix}")):
            samples.append(EventSample(str(f), label, f"{SPLIT_DIRS[split]}/{cls}/{f.name}"))
    if not samples:
        raise MissingDataError(dataset, [f"{folder}/<class>/*{suffix} (no files found)"],
                               layout, source)
    return samples, classes


class NMNIST(EventDataset):
    """An N-MNIST-layout folder as an :class:`EventDataset`.

    Args:
        root: the folder holding ``Train/`` and ``Test/``.
        split: ``"train"`` or ``"test"``.
        sensor_size: event geometry (34x34x2 for N-MNIST).
        expected_count: raise if the split does not hold exactly this many files.
        name: dataset name (cache folder, manifests).
        **options: frame / augmentation / cache options (``spikeflow.data.event_options``).
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", *,
                 sensor_size: SensorSize = NMNIST_SENSOR, expected_count: int | None = None,
                 name: str = "nmnist", default_T: int = 10, layout: str = LAYOUT,
                 source: str = SOURCE, **options: Any) -> None:
        if split not in SPLIT_DIRS:
            raise ValueError(f"{name}: split must be 'train' or 'test', got {split!r}")
        samples, classes = scan_class_folders(Path(root), split, dataset=name, layout=layout,
                                              source=source)
        if expected_count is not None and len(samples) != expected_count:
            raise MissingDataError(name, [f"{SPLIT_DIRS[split]}: found {len(samples)} .bin files, "
                                          f"the published split has {expected_count}"],
                                   layout, source, "Pass check_counts=False to use a subset.")
        self.root = Path(root)
        super().__init__(samples, sensor_size, FileReader(read_nmnist), name=name, split=split,
                         classes=classes, **event_kwargs(sensor_size, split, options,
                                                         default_T=default_T))


def nmnist_dataset(root: str | os.PathLike | None = None, split: str = "train", *,
                   name: str = "nmnist", sensor_size: SensorSize = NMNIST_SENSOR,
                   expected_counts: dict[str, int] | None = None, env: str = "SPIKEFLOW_NMNIST",
                   dirname: str = "NMNIST", layout: str = LAYOUT, source: str = SOURCE,
                   holdout: str | None = None, split_file: str | os.PathLike | None = None,
                   val_ratio: float | None = None, val_size: int | None = None,
                   **options: Any) -> Any:
    """Factory body shared by ``nmnist`` and datasets stored in the same layout."""
    base = resolve_root(root, dataset=name, env=env, dirname=dirname, layout=layout,
                        source=source)
    split_options = {k: v for k, v in (("val_ratio", val_ratio), ("val_size", val_size))
                     if v is not None}

    def make(s: str) -> NMNIST:
        count = expected_counts.get(s) if expected_counts else None
        return NMNIST(base, s, sensor_size=sensor_size, expected_count=count, name=name,
                      layout=layout, source=source, **options)

    return with_holdout(make, split, holdout, split_file, **split_options)


@register_dataset("nmnist")
def nmnist(root: str | os.PathLike | None = None, split: str = "train", *,
           check_counts: bool = True, **options: Any) -> Any:
    """N-MNIST frames ``[T, 2, 34, 34]`` (default T=10, split_by="number") or raw events."""
    return nmnist_dataset(root, split, expected_counts=NMNIST_COUNTS if check_counts else None,
                          **options)
