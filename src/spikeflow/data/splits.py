"""Train/validation hold-out splits as data (index arrays) that a run folder saves and reuses.

Two recipes from the seed papers:

* ``accuracy_b`` (PLIF, ``codes/train_val.py``): for every class ``c`` with ``n_c`` samples, the
  first ``ceil((1 - val_ratio) * n_c)`` samples in dataset order go to train, the rest to val.
  Fashion-MNIST (6000 per class) -> 51000 / 9000 with ``val_ratio=0.15``.
* ``random`` (snn-iir): ``torch.utils.data.random_split(ds, [n - n_val, n_val],
  generator=torch.Generator().manual_seed(42))``. This module reproduces that permutation exactly
  (``torch.randperm(n, generator=Generator().manual_seed(seed))``, train = first ``n - n_val``),
  so indices equal torch's for the same torch version. MNIST 60k -> 50k / 10k with
  ``val_size=10000``.

    >>> import numpy as np
    >>> s = accuracy_b_split(np.array([0, 0, 1, 1, 0, 1]), val_ratio=0.34)
    >>> s.train.tolist(), s.val.tolist()
    ([0, 1, 2, 3], [4, 5])
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from spikeflow.utils.atomic import atomic_write_text

HOLDOUTS = ("accuracy_b", "random")


@dataclass(frozen=True)
class Split:
    """Index arrays into one base dataset: ``train`` and ``val`` (int64, disjoint)."""

    train: np.ndarray
    val: np.ndarray
    n: int
    meta: dict[str, Any] = field(default_factory=dict)

    def indices(self, part: str) -> np.ndarray:
        """The indices of ``part`` (``"train"`` or ``"val"``)."""
        if part not in ("train", "val"):
            raise ValueError(f"split part must be 'train' or 'val', got {part!r}")
        return self.train if part == "train" else self.val


def accuracy_b_split(targets: Sequence[int] | np.ndarray, val_ratio: float = 0.15) -> Split:
    """PLIF's per-class split: first ``ceil((1-val_ratio) n_c)`` of each class -> train."""
    if not 0.0 <= val_ratio < 1.0:
        raise ValueError(f"val_ratio must be in [0, 1), got {val_ratio}")
    targets = np.asarray(targets).reshape(-1)
    train, val = [], []
    for c in np.unique(targets):
        idx = np.flatnonzero(targets == c)
        k = math.ceil((1.0 - val_ratio) * idx.size)
        train.append(idx[:k])
        val.append(idx[k:])
    return Split(np.sort(np.concatenate(train)).astype(np.int64),
                 np.sort(np.concatenate(val)).astype(np.int64), int(targets.size),
                 {"kind": "accuracy_b", "val_ratio": val_ratio})


def random_split_indices(n: int, val_size: int, seed: int = 42) -> Split:
    """``torch.utils.data.random_split(range(n), [n - val_size, val_size], Generator(seed))``."""
    if not 0 <= val_size <= n:
        raise ValueError(f"val_size must be in [0, {n}], got {val_size}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return Split(perm[: n - val_size].astype(np.int64), perm[n - val_size:].astype(np.int64), n,
                 {"kind": "random", "val_size": val_size, "seed": seed})


def make_split(kind: str, targets: Sequence[int] | np.ndarray, *, val_ratio: float = 0.15,
               val_size: int | None = None, seed: int = 42) -> Split:
    """Build hold-out ``kind`` ("accuracy_b" or "random") for a dataset with labels ``targets``.

    For ``random`` the validation size is ``val_size`` or ``round(val_ratio * n)``.
    """
    targets = np.asarray(targets)
    if kind == "accuracy_b":
        return accuracy_b_split(targets, val_ratio)
    if kind == "random":
        n = int(targets.size)
        return random_split_indices(n, round(val_ratio * n) if val_size is None else val_size, seed)
    raise ValueError(f"unknown holdout {kind!r}; expected one of {HOLDOUTS}")


def save_split(path: str | os.PathLike, split: Split) -> None:
    """Write ``split`` as JSON atomically (:mod:`spikeflow.utils.atomic`)."""
    doc = {"n": split.n, "meta": split.meta,
           "train": split.train.tolist(), "val": split.val.tolist()}
    atomic_write_text(path, json.dumps(doc, separators=(",", ":")))


def load_split(path: str | os.PathLike) -> Split:
    """Read a split written by :func:`save_split`, checking its fields."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        n, train, val = int(doc["n"]), np.asarray(doc["train"], np.int64), np.asarray(doc["val"], np.int64)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a valid split file (needs JSON with n, train, val): {err}") from None
    both = np.concatenate([train, val])
    if both.size and (both.min() < 0 or both.max() >= n or np.unique(both).size != both.size):
        raise ValueError(f"{path}: split indices must be distinct and in [0, {n})")
    return Split(train, val, n, dict(doc.get("meta", {})))


class SubsetDataset(Dataset):
    """``dataset`` restricted to ``indices`` (keeps ``targets`` and ``classes`` when present)."""

    def __init__(self, dataset: Any, indices: Sequence[int] | np.ndarray) -> None:
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)
        if self.indices.size and (self.indices.min() < 0 or self.indices.max() >= len(dataset)):
            raise IndexError(f"subset indices out of range for a dataset of length {len(dataset)}")

    def __len__(self) -> int:
        return int(self.indices.size)

    def __getitem__(self, i: int) -> Any:
        return self.dataset[int(self.indices[i])]

    @property
    def targets(self) -> np.ndarray:
        return np.asarray(self.dataset.targets)[self.indices]

    def __getattr__(self, name: str) -> Any:  # classes, sensor_size, ... of the base dataset
        if name in ("dataset", "indices"):
            raise AttributeError(name)
        return getattr(self.dataset, name)


def holdout_subset(dataset: Any, part: str, holdout: str, split_file: str | os.PathLike | None = None,
                   **split_options: Any) -> SubsetDataset:
    """The ``part`` ("train"/"val") of ``dataset`` under hold-out ``holdout``.

    With ``split_file`` the split is loaded from it when it exists (a resumed run reuses its
    split) and saved there otherwise.
    """
    if split_file is not None and Path(split_file).is_file():
        split = load_split(split_file)
        if split.n != len(dataset):
            raise ValueError(f"{split_file}: split is for {split.n} samples, dataset has {len(dataset)}")
    else:
        split = make_split(holdout, dataset.targets, **split_options)
        if split_file is not None:
            save_split(split_file, split)
    return SubsetDataset(dataset, split.indices(part))


__all__ = ["HOLDOUTS", "Split", "accuracy_b_split", "random_split_indices", "make_split",
           "save_split", "load_split", "SubsetDataset", "holdout_subset"]
