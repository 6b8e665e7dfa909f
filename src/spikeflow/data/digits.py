"""scikit-learn's bundled handwritten digits (1797 images, 8x8, values 0..16), registered as
``digits``; no download, works offline.

The train/test split is fixed and saved in the package (:mod:`spikeflow.data._digits_split`):
359 test images, 20% of every class; 1438 train images. ``n_digits`` and the training defaults
use the same split.

    >>> import spikeflow as sf
    >>> ds = sf.data.create_dataset("digits", split="test")
    >>> x, y = ds[0]
    >>> len(ds), tuple(x.shape), float(x.max()) <= 1.0
    (359, (1, 8, 8), True)
"""
from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from spikeflow.data import register_dataset
from spikeflow.data._digits_split import DIGITS_TEST_INDICES
from spikeflow.data.static import build_split

N_DIGITS_SAMPLES = 1797
CLASSES = [str(i) for i in range(10)]


@functools.lru_cache(maxsize=1)
def load_digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """All digits as float32 ``[1797, 8, 8]`` in [0, 1] (value / 16) and int64 labels ``[1797]``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (np.asarray(d.images, dtype=np.float32) / 16.0)
    targets = np.asarray(d.target, dtype=np.int64)
    if images.shape != (N_DIGITS_SAMPLES, 8, 8):
        raise ValueError(f"sklearn digits: expected (1797, 8, 8) images, got {images.shape}")
    images.setflags(write=False)
    targets.setflags(write=False)
    return images, targets


def digits_split_indices() -> tuple[np.ndarray, np.ndarray]:
    """(train, test) index arrays of the fixed split, sorted."""
    test = np.asarray(DIGITS_TEST_INDICES, dtype=np.int64)
    train = np.setdiff1d(np.arange(N_DIGITS_SAMPLES), test)
    return train, test


def upscale(images: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of ``[N, h, w]`` float images to ``[N, size, size]`` (align_corners=False)."""
    x = torch.from_numpy(np.array(images, dtype=np.float32, copy=True)).unsqueeze(1)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).squeeze(1).numpy()


def digits_split_arrays(train: bool, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (optionally upscaled to ``size``) and labels of the train or test part."""
    images, targets = load_digits_arrays()
    idx = digits_split_indices()[0 if train else 1]
    out = images[idx]
    if size is not None and size != 8:
        out = upscale(out, size)
    return out, targets[idx]


@register_dataset("digits")
def digits(root: str | os.PathLike | None = None, split: str = "train", *, size: int | None = None,
           normalize: bool = False, augment: str | bool | None = False, **options: Any):
    """sklearn digits. Items ``([1, 8, 8] float32 in [0, 1], label)`` (``[1, size, size]`` with
    ``size``, bilinear). ``root`` is unused (the data ships inside scikit-learn). Split options as
    :mod:`spikeflow.data.static` (``holdout`` splits the 1438 train images further).
    """
    return build_split("digits", split, lambda train: digits_split_arrays(train, size), CLASSES,
                       normalize=normalize, augment=augment, scale=1.0, **options)


__all__ = ["digits", "load_digits_arrays", "digits_split_indices", "digits_split_arrays", "upscale"]
