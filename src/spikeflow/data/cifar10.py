"""CIFAR-10 from the official python batches, read with a restricted unpickler; registered as
``cifar10``.

Files (from ``cifar-10-python.tar.gz``, https://www.cs.toronto.edu/~kriz/cifar.html), under
``root`` or ``root/cifar-10-batches-py`` (root: ``root``, else ``$SPIKEFLOW_CIFAR10``, else
``$SPIKEFLOW_DATA/CIFAR10``; none is a ``MissingDataError``, "no root given"): ``data_batch_1`` ..
``data_batch_5`` (train, 50000) and ``test_batch`` (10000). Each is a pickled dict with
``data`` (uint8 ``[10000, 3072]``, channel-major RGB 32x32) and ``labels`` (list of int).

The unpickler admits only what those files hold: dicts, lists, bytes/str, ints and numpy's
array-reconstruction pieces (``numpy ... _reconstruct``, ``_frombuffer``, ``numpy.ndarray``,
``numpy.dtype``, ``_codecs.encode``), each replaced by a checked stand-in, and every array state
is validated before numpy sees it (:class:`spikeflow.events.io.SafeNumpyUnpickler`). Any other
global (``os.system``, ``builtins.eval``, ...) is refused, so a tampered file cannot run code,
and a corrupt one raises ``ValueError`` instead of building an array over wrong memory.
"""
from __future__ import annotations

import functools
import io
import math
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from spikeflow.data import register_dataset
from spikeflow.data.mnist import resolve_root
from spikeflow.data.static import build_split
from spikeflow.events.io.numpy_io import (
    SAFE_NUMPY_GLOBALS,
    SafeNumpyUnpickler,
    plain_dtype,
    scan_pickle,
)

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
COUNTS = {True: 50000, False: 10000}
SOURCE = "https://www.cs.toronto.edu/~kriz/cifar.html (cifar-10-python.tar.gz)"
LAYOUT = ("  <root>/data_batch_1 .. data_batch_5, <root>/test_batch\n"
          "  (or the same under <root>/cifar-10-batches-py/, as extracted)")
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """Checked stand-in for numpy's ``_frombuffer`` (pickle protocol 5)."""
    if not isinstance(buf, (bytes, bytearray, pickle.PickleBuffer)) or not plain_dtype(dtype, False) \
            or not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape) \
            or order not in ("C", "F") or len(memoryview(buf)) != math.prod(shape) * dtype.itemsize:
        raise pickle.UnpicklingError("_frombuffer: data does not match its shape and dtype")
    return np.frombuffer(bytes(buf), dtype).reshape(shape, order=order)


_ALLOWED: dict[tuple[str, str], Any] = {
    **SAFE_NUMPY_GLOBALS,  # _reconstruct, numpy.ndarray, numpy.dtype, _codecs.encode (checked)
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,  # pickle protocol 5
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
}


class RestrictedUnpickler(SafeNumpyUnpickler):
    """An unpickler that admits only numpy array reconstruction, with every array state checked
    (:class:`spikeflow.events.io.SafeNumpyUnpickler`; see the module doc)."""

    allowed = _ALLOWED

    def __init__(self, file: io.BufferedIOBase, source: object = "<bytes>") -> None:
        super().__init__(file, encoding="bytes")
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"{self.source}: refusing to unpickle global {module}.{name} (only plain data and "
                f"numpy arrays are allowed in a CIFAR-10 batch)") from None


def safe_load(data: bytes, source: object = "<bytes>") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`, after checking its opcodes
    (:func:`spikeflow.events.io.scan_pickle`)."""
    scan_pickle(data, source)
    return RestrictedUnpickler(io.BytesIO(data), source).load()


def read_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file -> (images uint8 ``[N, 32, 32, 3]``, labels int64 ``[N]``)."""
    path = Path(path)
    try:
        obj = safe_load(path.read_bytes(), path)
    except pickle.UnpicklingError:
        raise
    except Exception as err:  # truncated / garbage bytes
        raise ValueError(f"{path}: not a readable CIFAR-10 pickle batch ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict, got {type(obj).__name__}")
    d = {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}
    data, labels = d.get("data"), d.get("labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{path}: 'data' must be a uint8 array [N, 3072], got "
                         f"{getattr(data, 'dtype', type(data).__name__)} {getattr(data, 'shape', '')}")
    labels = np.asarray(labels, dtype=np.int64) if isinstance(labels, list) else None
    if labels is None or labels.shape != (data.shape[0],) or labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise ValueError(f"{path}: 'labels' must be a list of {data.shape[0]} ints in 0..9")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


@functools.lru_cache(maxsize=4)
def _load(folder: str, train: bool, mtime: float) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_batch(Path(folder) / f) for f in (TRAIN_FILES if train else TEST_FILES)]
    images = np.ascontiguousarray(np.concatenate([p[0] for p in parts]))
    return images, np.concatenate([p[1] for p in parts])


def load_cifar10(root: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[N, 32, 32, 3]`` and labels of one split; names the missing files otherwise."""
    names = TRAIN_FILES if train else TEST_FILES
    for folder in (root, root / "cifar-10-batches-py"):
        if all((folder / n).is_file() for n in names):
            images, labels = _load(str(folder), train, max((folder / n).stat().st_mtime for n in names))
            expected = COUNTS[train]
            if len(labels) != expected:
                raise ValueError(f"{folder}: expected {expected} {'train' if train else 'test'} images, "
                                 f"got {len(labels)}")
            return images, labels
    raise FileNotFoundError(
        f"cifar10: missing {', '.join(names)} under {root.resolve()} (or its cifar-10-batches-py/); "
        "extract cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and pass "
        "root=<folder> (or set $SPIKEFLOW_CIFAR10)")


@register_dataset("cifar10")
def cifar10(root: str | os.PathLike | None = None, split: str = "train", **options: Any):
    """CIFAR-10 (50k / 10k, 32x32 RGB). Items ``([3, 32, 32] float32, label)``.

    Defaults: PLIF augmentation on train/val (RandomCrop(32, pad 4) + horizontal flip) and
    per-channel normalisation. Options as :func:`spikeflow.data.mnist.mnist`.
    """
    base = resolve_root(root, "SPIKEFLOW_CIFAR10", (), dataset="cifar10", dirname="CIFAR10",
                        layout=LAYOUT, source=SOURCE)
    return build_split("cifar10", split, lambda train: load_cifar10(base, train), CLASSES, **options)


__all__ = ["RestrictedUnpickler", "safe_load", "read_batch", "load_cifar10", "cifar10", "CLASSES"]
