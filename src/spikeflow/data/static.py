"""In-memory image datasets and the split/transform options shared by ``mnist``, ``fashion_mnist``,
``cifar10`` and ``digits``.

An item is ``(image, label)``: ``image`` a float32 tensor ``[C, H, W]`` with values in [0, 1]
(then augmented and normalised when configured), ``label`` an int. Encoding to spikes over time
(``repeat``/``poisson``, see :mod:`spikeflow.data.encoders`) is applied to batches afterwards.

Split options of every static factory:

* ``split="train"`` / ``"test"``: the official files. ``split="val"`` needs ``holdout``.
* ``holdout="accuracy_b"`` (PLIF, per class first 85% -> train) or ``"random"`` (snn-iir,
  ``random_split`` with seed 42; ``val_size=10000`` for MNIST's 50k/10k): ``"train"`` and
  ``"val"`` are then the two parts of the official train set. ``split_file`` saves the split on
  first use and reloads it afterwards (a resumed run keeps its split).
* ``augment``: ``None``/``"plif"`` (default: the PLIF recipe on train and val, as PLIF's val set
  uses the train transforms), ``"snn_iir"``, or ``False``/``"none"``. ``normalize=True`` applies
  the per-dataset mean/std. ``transform`` replaces both with any callable on ``[C, H, W]``.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from spikeflow.data import transforms as T
from spikeflow.data.splits import holdout_subset


class ImageDataset(Dataset):
    """Images ``[N, H, W]`` or ``[N, H, W, C]`` (uint8 or float) with integer ``targets``.

    ``scale`` divides the stored values so images come out in [0, 1] (255 for uint8).
    """

    def __init__(self, images: np.ndarray, targets: Sequence[int] | np.ndarray, classes: Sequence[str],
                 transform: Callable[..., torch.Tensor] | None = None, scale: float = 255.0) -> None:
        images = np.asarray(images)
        targets = np.asarray(targets, dtype=np.int64)
        if images.ndim not in (3, 4) or len(images) != len(targets):
            raise ValueError(f"images must be [N, H, W] or [N, H, W, C] with N == len(targets); got "
                             f"{images.shape} and {targets.shape}")
        self.images = images
        self.targets = targets
        self.classes = list(classes)
        self.transform = transform
        self.scale = float(scale)

    def __len__(self) -> int:
        return len(self.targets)

    def image(self, i: int) -> torch.Tensor:
        """Image ``i`` as float32 ``[C, H, W]`` in [0, 1], before any transform."""
        x = torch.from_numpy(np.asarray(self.images[i], dtype=np.float32) / self.scale)
        return x.unsqueeze(0) if x.dim() == 2 else x.permute(2, 0, 1).contiguous()

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        x = self.image(i)
        if self.transform is not None:
            x = self.transform(x)
        return x, int(self.targets[i])


def make_transform(dataset: str, train: bool, augment: str | bool | None = None, normalize: bool = True
                   ) -> Callable[..., torch.Tensor] | None:
    """Augmentation recipe (train/val only) followed by the dataset's normalisation."""
    name = "plif" if augment is None or augment is True else ("none" if augment is False else str(augment))
    steps = [t for t in (T.recipe(name, dataset, train),) if t is not None]
    if normalize:
        if dataset not in T.NORMALIZATION:
            raise ValueError(f"no normalisation constants for {dataset!r}; pass normalize=False")
        steps.append(T.Normalize(*T.NORMALIZATION[dataset]))
    if not steps:
        return None
    return steps[0] if len(steps) == 1 else T.Compose(tuple(steps))


SPLIT_OPTIONS = ("val_ratio", "val_size", "seed")  # keyword arguments of splits.make_split


def build_split(name: str, split: str, load: Callable[[bool], tuple[np.ndarray, np.ndarray]],
                classes: Sequence[str], *, augment: str | bool | None = None, normalize: bool = True,
                transform: Callable[..., torch.Tensor] | None = None, holdout: str | None = None,
                split_file: str | os.PathLike | None = None, scale: float = 255.0,
                **split_options: Any) -> Dataset:
    """Assemble the dataset for ``split`` from ``load(train) -> (images, targets)``."""
    if split not in ("train", "val", "test"):
        raise ValueError(f"{name}: split must be 'train', 'val' or 'test', got {split!r}")
    unknown = sorted(set(split_options) - set(SPLIT_OPTIONS))
    if unknown:
        raise TypeError(f"{name}: unknown option(s) {unknown}; split options are {list(SPLIT_OPTIONS)} "
                        "besides augment, normalize, transform, holdout, split_file, size")
    if split == "val" and holdout is None:
        raise ValueError(f"{name}: split='val' needs holdout='accuracy_b' or holdout='random'")
    train = split != "test"
    if transform is None:
        transform = make_transform(name, train, augment, normalize)
    images, targets = load(train)
    ds = ImageDataset(images, targets, classes, transform, scale)
    if train and holdout is not None:
        return holdout_subset(ds, split, holdout, split_file, **split_options)
    return ds


__all__ = ["ImageDataset", "make_transform", "build_split"]
