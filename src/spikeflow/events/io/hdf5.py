"""The per-sample HDF5 layout of the DECOLLE / torchneuromorphic DVS Gesture loaders (ASA, He2020).

Each file holds datasets ``times`` (``[N]`` µs), ``addrs`` (``[N, 3]`` columns x, y, p) and
optionally ``labels`` (the class index). ``h5py`` is imported only when these functions run.

    >>> import os, tempfile
    >>> from spikeflow.events.types import make_events
    >>> ev = make_events(x=[1, 2], y=[3, 4], t=[5, 6], p=[0, 1])
    >>> path = os.path.join(tempfile.mkdtemp(), "0.hdf5")
    >>> write_hdf5(path, ev, label=7)
    >>> got, label = read_hdf5_sample(path)
    >>> bool((got == ev).all()), label
    (True, 7)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spikeflow.events.io._checks import events_from_columns
from spikeflow.events.types import EventFormatError
from spikeflow.utils.atomic import atomic_path


MAX_EVENTS = 1 << 30
"""Largest number of events (rows of ``times``/``addrs``) a sample file may declare."""
MAX_FILTER_RATIO = 1100
"""A filtered (compressed) dataset may declare at most this many bytes per stored byte
(deflate's limit is about 1032:1)."""
# What h5py raises on damaged files (it maps HDF5 library errors to these).
_H5_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError,
              AttributeError, OverflowError)


def _h5py():
    import h5py  # lazy: only HDF5 users pay the import

    return h5py


def _open(path: Path):
    h5py = _h5py()
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise
    except _H5_ERRORS as err:
        raise EventFormatError(path, 0, f"not a readable HDF5 file ({err})") from err


def _dataset(node, name: str, path: Path):
    """``node[name]`` as a checked h5py Dataset: numeric, stored in this file (no external or
    virtual storage), and declaring no more data than is stored (see :func:`check_declared`)."""
    h5py = _h5py()
    obj = node[name]
    if not isinstance(obj, h5py.Dataset):
        raise EventFormatError(path, None, f"{name!r} is a {type(obj).__name__}; expected a "
                               f"dataset")
    if obj.dtype.kind not in "biuf":
        raise EventFormatError(path, None, f"dataset {name!r} has dtype {obj.dtype}; expected "
                               f"numbers")
    check_declared(obj, path, name)
    return obj


def check_declared(dset, path: Path, name: str, max_values: int = 3 * MAX_EVENTS) -> None:
    """Refuse a dataset whose declared size cannot be backed by the file, before allocating it.

    Rules: at most ``max_values`` values; storage inside this file (no external files, no
    virtual datasets); unfiltered data must be fully allocated (stored bytes >= declared bytes,
    and a contiguous block must lie inside the file); filtered data may declare at most
    :data:`MAX_FILTER_RATIO` bytes per stored byte; stored bytes never exceed the file size.
    Unallocated data would otherwise read as fill values: phantom events.
    """
    declared = int(dset.size) * dset.dtype.itemsize
    if dset.size > max_values:
        raise EventFormatError(path, None, f"dataset {name!r} declares shape {dset.shape} "
                               f"({dset.size} values); the limit is {max_values}")
    if dset.is_virtual or dset.external:
        raise EventFormatError(path, None, f"dataset {name!r} keeps its data outside the file "
                               f"(virtual or external storage); not supported")
    if declared == 0:
        return
    file_size = path.stat().st_size
    stored = int(dset.id.get_storage_size())
    filtered = dset.id.get_create_plist().get_nfilters() > 0
    offset = dset.id.get_offset()
    problem = None
    if stored > file_size:
        problem = f"claims {stored} stored bytes in a {file_size}-byte file"
    elif filtered and declared > MAX_FILTER_RATIO * stored:
        problem = f"has only {stored} bytes stored (compressed)"
    elif not filtered and stored < declared:
        problem = f"has only {stored} bytes stored"
    elif offset is not None and offset + declared > file_size:
        problem = f"would lie at bytes {offset}..{offset + declared} of a {file_size}-byte file"
    if problem:
        raise EventFormatError(path, offset, f"dataset {name!r} declares shape {dset.shape} of "
                               f"{dset.dtype} ({declared} bytes) but {problem}; truncated or "
                               f"forged file")


def _read_label(node, path: Path) -> int | None:
    if "labels" not in node:
        return None
    dset = _dataset(node, "labels", path)
    if dset.size == 0:
        return None
    value = np.asarray(dset[(0,) * dset.ndim] if dset.ndim else dset[()]).reshape(-1)[0]
    if value.dtype.kind == "f" and not (np.isfinite(value) and value == np.floor(value)):
        raise EventFormatError(path, None, f"'labels' holds {value!r}; expected a whole number")
    if not -(1 << 62) < value < 1 << 62:
        raise EventFormatError(path, None, f"'labels' holds {value!r}; out of range")
    return int(value)


def read_hdf5_sample(path: str | os.PathLike, group: str | None = None
                     ) -> tuple[np.ndarray, int | None]:
    """``(events sorted by t, label or None)`` from ``times``/``addrs``[/``labels``] datasets.

    Declared sizes are checked before reading (:func:`check_declared`), values and timestamps
    as for every reader (:mod:`spikeflow.events.io._checks`); any damage raises
    :class:`EventFormatError` naming the file and the dataset.
    """
    path = Path(path)
    with _open(path) as f:
        try:
            node = f[group] if group else f
            missing = [k for k in ("times", "addrs") if k not in node]
            if missing:
                raise EventFormatError(path, None, f"missing HDF5 dataset(s) {missing}; expected "
                                       f"'times' [N] and 'addrs' [N, 3] (x, y, p)")
            times_ds, addrs_ds = _dataset(node, "times", path), _dataset(node, "addrs", path)
            if (len(addrs_ds.shape) != 2 or addrs_ds.shape[1] < 3
                    or addrs_ds.shape[0] != times_ds.size):
                raise EventFormatError(path, None, f"'addrs' has shape {addrs_ds.shape}; "
                                       f"expected [{times_ds.size}, 3] with columns x, y, p")
            if times_ds.size > MAX_EVENTS:
                raise EventFormatError(path, None, f"'times' declares {times_ds.size} events; "
                                       f"the limit is {MAX_EVENTS}")
            times = np.asarray(times_ds[()]).reshape(-1)
            addrs = np.asarray(addrs_ds[()])
            label = _read_label(node, path)
        except EventFormatError:
            raise
        except _H5_ERRORS as err:
            raise EventFormatError(path, None, f"damaged HDF5 file ({type(err).__name__}: "
                                   f"{err})") from err
    ev = events_from_columns({"t": times, "x": addrs[:, 0], "y": addrs[:, 1], "p": addrs[:, 2]},
                             path)
    return ev, label


def read_hdf5_label(path: str | os.PathLike, group: str | None = None) -> int | None:
    """Only the ``labels`` value of a sample file (None when absent), without reading events."""
    path = Path(path)
    with _open(path) as f:
        try:
            return _read_label(f[group] if group else f, path)
        except EventFormatError:
            raise
        except _H5_ERRORS as err:
            raise EventFormatError(path, None, f"damaged HDF5 file ({type(err).__name__}: "
                                   f"{err})") from err


def read_hdf5(path: str | os.PathLike, group: str | None = None) -> np.ndarray:
    """Events of one HDF5 sample file (see :func:`read_hdf5_sample`)."""
    return read_hdf5_sample(path, group)[0]


def write_hdf5(path: str | os.PathLike, events: np.ndarray, label: int | None = None) -> None:
    """Write ``times``/``addrs``[/``labels``] datasets atomically (:mod:`spikeflow.utils.atomic`)."""
    with atomic_path(path, fsync=False) as tmp, _h5py().File(tmp, "w") as f:
        f.create_dataset("times", data=np.asarray(events["t"], dtype=np.int64))
        addrs = np.stack([np.asarray(events[k], dtype=np.int16) for k in ("x", "y", "p")], 1)
        f.create_dataset("addrs", data=addrs.reshape(-1, 3))
        if label is not None:
            f.create_dataset("labels", data=np.int64(label))
