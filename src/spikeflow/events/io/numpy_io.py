"""Event arrays stored with numpy: ``.npy`` / ``.npz`` files, and object arrays of samples.

* ``.npy``: a structured array with fields ``x, y, t, p`` (any integer types), or a 2-D numeric
  array whose column order is given by ``columns`` (e.g. ``"txyp"`` for ASA's DVS128 Gait data).
* ``.npz``: keys ``x, y, t, p`` (SpikingJelly's ``events_np`` files) or one key ``events``.
* :func:`load_object_array` reads ``.npy`` files of dtype ``object`` (one event array per sample,
  as in ASA's ``train_data.npy``) WITHOUT running arbitrary pickle code: only numpy's array
  reconstruction is allowed.

    >>> import os, tempfile
    >>> from spikeflow.events.types import make_events
    >>> ev = make_events(x=[1], y=[2], t=[3], p=[1])
    >>> path = os.path.join(tempfile.mkdtemp(), "sample.npz")
    >>> write_npz(path, ev)
    >>> bool((read_numpy(path) == ev).all())
    True
"""
from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

from spikeflow.events.types import EVENT_DTYPE, EventFormatError, as_events
from spikeflow.utils.atomic import atomic_open

_ALLOWED_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "scalar"), ("numpy.core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
}


def from_columns(array: np.ndarray, columns: str, what: object = "array") -> np.ndarray:
    """Events from a 2-D ``[N, len(columns)]`` array; ``columns`` names each column (x, y, t, p)."""
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[1] != len(columns) or sorted(columns) != sorted("xytp"):
        raise ValueError(f"{what}: expected a 2-D array with columns {columns!r} (a permutation "
                         f"of 'xytp'), got shape {array.shape}")
    ev = np.empty(array.shape[0], dtype=EVENT_DTYPE)
    for i, name in enumerate(columns):
        ev[name] = array[:, i]
    return ev


def _to_events(array: np.ndarray, path: object, columns: str | None) -> np.ndarray:
    if array.dtype.names:
        return as_events(array, path)
    if columns is None:
        raise EventFormatError(path, None, f"a plain {array.dtype} array of shape {array.shape}: "
                               "pass columns='txyp' (or the file's order) to name its columns")
    return from_columns(array, columns, path)


def read_numpy(path: str | os.PathLike, columns: str | None = None) -> np.ndarray:
    """Read events from ``.npy`` or ``.npz`` (no pickles); see the module doc for layouts."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as err:
        raise EventFormatError(path, None, f"not a readable .npy/.npz event file ({err})") from err
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            keys = set(data.files)
            if {"x", "y", "t", "p"} <= keys:
                return as_events(_stack_fields(data), path)
            if "events" in keys:
                return _to_events(data["events"], path, columns)
            raise EventFormatError(path, None, f"expected keys x, y, t, p or 'events', "
                                   f"found {sorted(keys)}")
    return _to_events(data, path, columns)


def _stack_fields(npz) -> np.ndarray:
    n = npz["t"].shape[0]
    ev = np.empty(n, dtype=EVENT_DTYPE)
    for k in ("x", "y", "t", "p"):
        ev[k] = npz[k]
    return ev


def write_npz(path: str | os.PathLike, events: np.ndarray, compressed: bool = True) -> None:
    """Write events as ``.npz`` with keys x, y, t, p, atomically (:mod:`spikeflow.utils.atomic`)."""
    save = np.savez_compressed if compressed else np.savez
    with atomic_open(path, "wb", fsync=False) as f:
        save(f, **{k: np.asarray(events[k]) for k in ("x", "y", "t", "p")})


def write_npy(path: str | os.PathLike, events: np.ndarray) -> None:
    """Write an ``EVENT_DTYPE`` structured ``.npy`` file atomically."""
    with atomic_open(path, "wb", fsync=False) as f:
        np.save(f, as_events(events))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")


def load_object_array(path: str | os.PathLike) -> np.ndarray:
    """Load a ``.npy`` file that may hold ``dtype=object`` (e.g. one array per sample) safely.

    Plain numeric files load normally; object files are unpickled with a restricted unpickler
    that only rebuilds numpy arrays, dtypes and scalars (anything else raises EventFormatError).
    """
    path = Path(path)
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(f)
        except ValueError as err:
            raise EventFormatError(path, 0, f"not a .npy file ({err})") from err
        if not dtype.hasobject:
            f.seek(0)
            return np.load(f, allow_pickle=False)
        at = f.tell()
        try:
            arr = _NumpyOnlyUnpickler(f).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, TypeError) as err:
            raise EventFormatError(path, at, f"object array payload rejected: {err}") from err
    if not isinstance(arr, np.ndarray) or arr.shape != tuple(shape):
        raise EventFormatError(path, at, f"expected an object array of shape {tuple(shape)}")
    return arr
