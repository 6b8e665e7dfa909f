"""MNIST and Fashion-MNIST from their IDX files (``.gz`` or raw), registered as ``mnist`` and
``fashion_mnist``.

Files searched under ``root`` (and ``root/raw``, ``root/MNIST/raw``, ``root/FashionMNIST/raw``):
``train-images-idx3-ubyte[.gz]``, ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``,
``t10k-labels-idx1-ubyte[.gz]``. The root follows the rule of every dataset
(:func:`resolve_root`): ``root``, else ``$SPIKEFLOW_MNIST`` / ``$SPIKEFLOW_FASHION_MNIST``, else
``$SPIKEFLOW_DATA/MNIST`` / ``$SPIKEFLOW_DATA/FashionMNIST``, else (Fashion-MNIST) the Debian
package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``); nothing found is a
``MissingDataError`` ("no root given"), never a silent look into the current folder. MNIST's
files: https://ossci-datasets.s3.amazonaws.com/mnist/ (PyTorch's maintained mirror; the original
yann.lecun.com page is often unreachable). Counts and shapes are always checked; Fashion-MNIST's
decompressed content is checked against its MD5s (the Debian ``.gz`` wrappers differ from the
upstream ones, so ``.gz`` MD5s are not used).

    >>> import spikeflow as sf
    >>> ds = sf.data.create_dataset("fashion_mnist", split="test")      # doctest: +SKIP
    >>> x, y = ds[0]; tuple(x.shape), y                                  # doctest: +SKIP
    ((1, 28, 28), 9)
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from spikeflow.data import register_dataset
from spikeflow.data.event_options import MissingDataError
from spikeflow.data.idx import IMAGES_MAGIC, LABELS_MAGIC, IDXFormatError, idx_md5, read_idx
from spikeflow.data.static import build_split

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
COUNTS = {True: 60000, False: 10000}
# MD5 of the DECOMPRESSED Fashion-MNIST files (Zalando release; same bytes in the Debian package).
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
_SUBDIRS = ("", "raw", "MNIST/raw", "FashionMNIST/raw")
#: where MNIST's four IDX files are published (PyTorch's maintained mirror of yann.lecun.com)
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
FASHION_MNIST_SOURCE = "https://github.com/zalandoresearch/fashion-mnist"
IDX_LAYOUT = ("  <root>/train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],\n"
              "  <root>/t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]\n"
              "  (also under <root>/raw, <root>/MNIST/raw or <root>/FashionMNIST/raw)")


def find_idx_file(root: Path, stem: str) -> Path | None:
    """The first existing ``stem`` / ``stem.gz`` / ``stem`` with ``.idx`` dot variant under ``root``."""
    variants = (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz")
    for sub in _SUBDIRS:
        for name in variants:
            p = root / sub / name
            if p.is_file():
                return p
    return None


def resolve_root(root: str | os.PathLike | None, env: str, defaults: tuple[Path, ...] = (), *,
                 dataset: str | None = None, dirname: str | None = None, layout: str = "",
                 source: str = "") -> Path:
    """The data folder, by the rule every dataset follows: ``root``, else ``$env``, else
    ``$SPIKEFLOW_DATA/<dirname>``, else the first of ``defaults`` (system-wide installs) that
    exists. Nothing given is a :class:`MissingDataError` ("no root given ..."), as is a root that
    is not a folder; ``dataset``/``layout``/``source`` fill in the message."""
    name = dataset or env.removeprefix("SPIKEFLOW_").lower()
    hint_data = f"$SPIKEFLOW_DATA/{dirname}" if dirname else "$SPIKEFLOW_DATA/<name>"
    if root is not None:
        path, how = Path(root).expanduser(), "root"
    elif os.environ.get(env):
        path, how = Path(os.environ[env]).expanduser(), f"${env}"
    elif os.environ.get("SPIKEFLOW_DATA") and dirname and (
            Path(os.environ["SPIKEFLOW_DATA"]).expanduser() / dirname).is_dir():
        path, how = Path(os.environ["SPIKEFLOW_DATA"]).expanduser() / dirname, "$SPIKEFLOW_DATA"
    else:
        for d in defaults:
            if d.is_dir():
                return d
        if os.environ.get("SPIKEFLOW_DATA") and dirname:
            path, how = Path(os.environ["SPIKEFLOW_DATA"]).expanduser() / dirname, "$SPIKEFLOW_DATA"
        else:
            raise MissingDataError(name, [f"no root given (root=None, ${env} and $SPIKEFLOW_DATA "
                                          "unset)"], layout or "  (see docs/data.md)",
                                   source or "docs/data.md",
                                   f"Pass root=<folder>, set ${env}, or put it at {hint_data}.")
    if not path.is_dir():
        raise MissingDataError(name, [f"root folder {path} (from {how})"],
                               layout or "  (see docs/data.md)", source or "docs/data.md",
                               f"Pass root=<folder>, set ${env}, or put it at {hint_data}.")
    return path


@functools.lru_cache(maxsize=8)
def _load_cached(images_path: str, labels_path: str, n: int, md5_key: str, mtime: float
                 ) -> tuple[np.ndarray, np.ndarray]:
    if md5_key:
        for p in (images_path, labels_path):
            stem = Path(p).name.removesuffix(".gz").replace(".idx", "-idx")
            want = FASHION_MNIST_MD5.get(stem)
            got = idx_md5(p) if want is not None else None
            if got != want:
                raise IDXFormatError(f"{p}: decompressed content MD5 {got} != expected {want} "
                                     f"for Fashion-MNIST {stem}")
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.shape[0] != n:
        raise IDXFormatError(f"{images_path}: expected {n} images of 28x28, got {images.shape}")
    if labels.shape != (n,) or labels.max(initial=0) > 9:
        raise IDXFormatError(f"{labels_path}: expected {n} labels in 0..9, got shape {labels.shape}")
    return images, labels


def load_idx_pair(root: Path, train: bool, dataset: str, verify_md5: bool = False
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Read and check the (images, labels) IDX pair of one split; clear error if files are missing."""
    stems = FILES[train]
    paths = [find_idx_file(root, s) for s in stems]
    missing = [s for s, p in zip(stems, paths) if p is None]
    if missing:
        hint = ("install the Debian package dataset-fashion-mnist (files land in "
                f"{DEBIAN_FASHION_MNIST}) or download them from {FASHION_MNIST_SOURCE}"
                if dataset == "fashion_mnist" else
                f"download them from {MNIST_MIRROR} (PyTorch's maintained mirror)")
        raise FileNotFoundError(
            f"{dataset}: missing {', '.join(m + '[.gz]' for m in missing)} under {root.resolve()}; "
            f"{hint} and pass root=<folder> (or set $SPIKEFLOW_{dataset.upper()})")
    mtime = max(p.stat().st_mtime for p in paths)
    return _load_cached(str(paths[0]), str(paths[1]), COUNTS[train], "fashion" if verify_md5 else "", mtime)


@register_dataset("mnist")
def mnist(root: str | os.PathLike | None = None, split: str = "train", **options: Any):
    """MNIST (60k train / 10k test, 28x28 grey). Items ``([1, 28, 28] float32, label)``.

    Options: ``augment`` (default PLIF RandomAffine on train/val), ``normalize`` (0.1307/0.3081),
    ``transform``, ``holdout``, ``split_file``, ``val_ratio``, ``val_size``, ``seed``
    (see :mod:`spikeflow.data.static`).
    """
    base = resolve_root(root, "SPIKEFLOW_MNIST", (), dataset="mnist", dirname="MNIST",
                        layout=IDX_LAYOUT, source=MNIST_MIRROR)
    return build_split("mnist", split, lambda train: load_idx_pair(base, train, "mnist"),
                       MNIST_CLASSES, **options)


@register_dataset("fashion_mnist")
def fashion_mnist(root: str | os.PathLike | None = None, split: str = "train", *, verify: bool = True,
                  **options: Any):
    """Fashion-MNIST (60k / 10k, 28x28 grey). Items ``([1, 28, 28] float32, label)``.

    Defaults: no augmentation (PLIF), normalisation 0.2860/0.3530; ``verify`` checks the MD5 of
    the decompressed files. Other options as :func:`mnist`.
    """
    base = resolve_root(root, "SPIKEFLOW_FASHION_MNIST", (DEBIAN_FASHION_MNIST,),
                        dataset="fashion_mnist", dirname="FashionMNIST", layout=IDX_LAYOUT,
                        source=FASHION_MNIST_SOURCE)
    return build_split("fashion_mnist", split,
                       lambda train: load_idx_pair(base, train, "fashion_mnist", verify),
                       FASHION_CLASSES, **options)


__all__ = ["mnist", "fashion_mnist", "load_idx_pair", "find_idx_file", "resolve_root",
           "FASHION_MNIST_MD5", "FASHION_CLASSES", "DEBIAN_FASHION_MNIST", "MNIST_MIRROR"]
