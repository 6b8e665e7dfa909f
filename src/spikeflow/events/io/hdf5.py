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

from spikeflow.events.types import EVENT_DTYPE, EventFormatError
from spikeflow.utils.atomic import atomic_path


def _h5py():
    import h5py  # lazy: only HDF5 users pay the import

    return h5py


def read_hdf5_sample(path: str | os.PathLike, group: str | None = None
                     ) -> tuple[np.ndarray, int | None]:
    """``(events sorted by t, label or None)`` from ``times``/``addrs``[/``labels``] datasets."""
    path = Path(path)
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise EventFormatError(path, 0, f"not a readable HDF5 file ({err})") from err
    with f:
        node = f[group] if group else f
        missing = [k for k in ("times", "addrs") if k not in node]
        if missing:
            raise EventFormatError(path, None, f"missing HDF5 dataset(s) {missing}; expected "
                                   f"'times' [N] and 'addrs' [N, 3] (x, y, p)")
        times = np.asarray(node["times"][()], dtype=np.int64).reshape(-1)
        addrs = np.asarray(node["addrs"][()])
        label = None
        if "labels" in node:
            lab = np.asarray(node["labels"][()]).reshape(-1)
            label = int(lab[0]) if lab.size else None
    if addrs.ndim != 2 or addrs.shape[1] < 3 or addrs.shape[0] != times.size:
        raise EventFormatError(path, None, f"'addrs' has shape {addrs.shape}; expected "
                               f"[{times.size}, 3] with columns x, y, p")
    ev = np.empty(times.size, dtype=EVENT_DTYPE)
    ev["t"], ev["x"], ev["y"], ev["p"] = times, addrs[:, 0], addrs[:, 1], addrs[:, 2]
    if ev.size > 1 and np.any(np.diff(times) < 0):
        ev = ev[np.argsort(times, kind="stable")]
    return ev, label


def read_hdf5_label(path: str | os.PathLike, group: str | None = None) -> int | None:
    """Only the ``labels`` value of a sample file (None when absent), without reading events."""
    path = Path(path)
    try:
        f = _h5py().File(path, "r")
    except OSError as err:
        raise EventFormatError(path, 0, f"not a readable HDF5 file ({err})") from err
    with f:
        node = f[group] if group else f
        if "labels" not in node:
            return None
        lab = np.asarray(node["labels"][()]).reshape(-1)
        return int(lab[0]) if lab.size else None


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
