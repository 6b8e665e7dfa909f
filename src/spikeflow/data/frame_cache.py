"""On-disk cache of integrated event frames (and of decoded event streams), compressed, atomic.

Layout: ``<cache root>/<dataset>/<kind>-<options hash>/<sample hash>.npz`` where the options
hash covers every option that shapes the stored arrays (frame spec minus normalisation, sensor,
reader options, clips, a format version) and the sample hash covers the source file identity
(path, size, mtime) and the sample's selector. An ``options.json`` next to the entries records
the options in clear text.

Frames are stored as their exact integer counts in the smallest unsigned dtype (uint8 when the
largest count is <= 255, else uint16/uint32) with ``np.savez_compressed``; the normalisation is
applied on load, so one cache serves every normalisation. Entries are written to a temp file and
renamed into place, so an interrupted run never leaves a broken entry.

Every entry carries a ``__header__`` member (JSON as uint8: the entry key = its file name, and
per array the shape, dtype and a sha256 of the bytes). :meth:`FrameCache.load` reads entries with
:func:`spikeflow.events.io.read_npz_arrays` (sizes bounded by the stored bytes, never unpickling)
and verifies the header; an unreadable, damaged or valid-but-wrong entry (another sample's
arrays, a shape other than the expected one) is deleted and rebuilt. When the cache folder
cannot be written (read-only, full disk), frames are computed without caching, with one warning.

The cache root is ``cache_dir`` if given, else ``$SPIKEFLOW_CACHE_DIR``, else
``$XDG_CACHE_HOME/spikeflow`` (``~/.cache/spikeflow``).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from spikeflow.events.io import read_npz_arrays
from spikeflow.events.types import EVENT_DTYPE, EventFormatError
from spikeflow.utils.atomic import atomic_open, atomic_write_text

CACHE_VERSION = 2  # 2: entries carry a verified __header__
HEADER_KEY = "__header__"


def default_cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir`` > ``$SPIKEFLOW_CACHE_DIR`` > ``$XDG_CACHE_HOME/spikeflow`` > ``~/.cache``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("SPIKEFLOW_CACHE_DIR"):
        return Path(os.environ["SPIKEFLOW_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spikeflow"


def stable_hash(obj: Any, n: int = 16) -> str:
    """Short sha256 of a JSON-serialisable object (sorted keys, ``repr`` for the rest)."""
    text = json.dumps(obj, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:n]


def file_identity(path: str | os.PathLike) -> dict[str, Any]:
    """Path, size and mtime (ns) of a source file: changes when the file is replaced or edited."""
    st = os.stat(path)
    return {"path": os.path.abspath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:32]


def entry_header(key: str, arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """The header stored with an entry: its key and the shape, dtype and checksum of each array."""
    return {"format": "spikeflow-cache", "version": CACHE_VERSION, "key": key,
            "arrays": {k: {"shape": list(np.shape(v)), "dtype": np.asarray(v).dtype.str,
                           "sha256": _digest(np.asarray(v))} for k, v in sorted(arrays.items())}}


def atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` of ``arrays`` plus their :func:`entry_header` (key = file stem),
    atomically (:mod:`spikeflow.utils.atomic`; not fsync-ed: a torn entry after a power loss fails
    :meth:`FrameCache.load` and is rebuilt)."""
    path = Path(path)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    header = json.dumps(entry_header(path.stem, arrays), sort_keys=True).encode()
    with atomic_open(path, "wb", fsync=False) as f:
        np.savez_compressed(f, **arrays, **{HEADER_KEY: np.frombuffer(header, np.uint8)})


def verify_entry(path: Path, data: dict[str, np.ndarray],
                 shapes: Mapping[str, tuple[int, ...]] | None = None) -> str | None:
    """Why the arrays read from entry ``path`` are not a valid entry for it (None when valid):
    header missing/unparsable, another key, other arrays, shape/dtype/checksum mismatch, or a
    shape other than ``shapes[name]``."""
    raw = data.pop(HEADER_KEY, None)
    if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
        return "no header"
    try:
        header = json.loads(raw.tobytes().decode())
        key, specs = header["key"], header["arrays"]
        if header.get("format") != "spikeflow-cache" or not isinstance(specs, dict):
            return "not a spikeflow cache header"
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        return f"unreadable header ({err})"
    if key != path.stem:
        return f"entry of another sample ({key})"
    if set(specs) != set(data):
        return f"arrays {sorted(data)} differ from the header's {sorted(specs)}"
    for name, array in data.items():
        spec = specs[name]
        if not isinstance(spec, dict) or [spec.get("shape"), spec.get("dtype")] != [
                list(array.shape), array.dtype.str]:
            return f"{name!r}: shape/dtype {array.shape} {array.dtype} differ from the header"
        if spec.get("sha256") != _digest(array):
            return f"{name!r}: checksum mismatch"
        if shapes and name in shapes and tuple(shapes[name]) != array.shape:
            return f"{name!r}: shape {array.shape}, expected {tuple(shapes[name])}"
    return None


def pack_counts(counts: np.ndarray) -> np.ndarray:
    """Integer-valued float frames -> the smallest unsigned dtype that holds them exactly."""
    top = float(counts.max()) if counts.size else 0.0
    if counts.size and (counts.min() < 0 or not np.array_equal(counts, np.rint(counts))):
        return counts.astype(np.float32)
    for dtype in (np.uint8, np.uint16, np.uint32):
        if top <= np.iinfo(dtype).max:
            return counts.astype(dtype)
    return counts.astype(np.float32)


def pack_events(events: np.ndarray) -> dict[str, np.ndarray]:
    """Event arrays in compact columns: x, y uint16, p uint8, t as t0 + uint32 deltas."""
    t = events["t"].astype(np.int64)
    dt = np.diff(t, prepend=t[:1]) if t.size else t
    small = dt.size == 0 or (dt.min() >= 0 and dt.max() < 1 << 32)
    return {"x": events["x"].astype(np.uint16), "y": events["y"].astype(np.uint16),
            "p": events["p"].astype(np.uint8), "t0": np.int64(t[0] if t.size else 0),
            "dt": dt.astype(np.uint32 if small else np.int64)}


def unpack_events(data: Any) -> np.ndarray:
    """Inverse of :func:`pack_events`."""
    ev = np.empty(data["x"].shape[0], dtype=EVENT_DTYPE)
    ev["x"], ev["y"], ev["p"] = data["x"], data["y"], data["p"]
    dt = data["dt"].astype(np.int64)
    if dt.size:
        dt[0] = 0
    ev["t"] = int(data["t0"]) + np.cumsum(dt)
    return ev


class FrameCache:
    """One folder of cache entries for one dataset and one set of options.

    ``stats`` counts ``built`` (entries written by this process or its workers), ``loaded`` and
    ``rebuilt`` (entries found damaged or wrong and deleted). ``shapes`` (array name -> shape),
    when given, is checked on every load.
    """

    def __init__(self, root: str | os.PathLike, dataset: str, kind: str, options: dict,
                 shapes: Mapping[str, tuple[int, ...]] | None = None) -> None:
        self.options = {"version": CACHE_VERSION, "kind": kind, **options}
        self.directory = Path(root) / dataset / f"{kind}-{stable_hash(self.options)}"
        self.stats = {"built": 0, "loaded": 0, "rebuilt": 0}
        self.shapes = dict(shapes) if shapes else None
        self._writable: bool | None = None

    def writable(self) -> bool:
        """Whether entries can be written (checked once by creating a temporary file in the
        folder); when not, warns once and the caller computes without caching."""
        if self._writable is None:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
                with tempfile.NamedTemporaryFile(dir=self.directory, prefix=".probe-"):
                    pass
                self._writable = True
            except OSError as err:
                self._disable(err)
        return bool(self._writable)

    def _disable(self, err: BaseException) -> None:
        self._writable = False
        warnings.warn(f"frame cache {self.directory} is not writable ({err}); computing without "
                      f"caching", RuntimeWarning, stacklevel=3)

    def save(self, path: Path, arrays: Mapping[str, np.ndarray]) -> bool:
        """Write an entry (:func:`atomic_savez`); False, after one warning, when the folder
        cannot be written. Arrays of another shape than ``shapes`` are a bug of the builder and
        raise ``ValueError`` (they would otherwise be rebuilt on every load)."""
        for name, shape in (self.shapes or {}).items():
            if name in arrays and tuple(np.shape(arrays[name])) != tuple(shape):
                raise ValueError(f"{self.directory}: built {name!r} of shape "
                                 f"{np.shape(arrays[name])}, expected {tuple(shape)}")
        if not self.writable():
            return False
        try:
            atomic_savez(path, **arrays)
        except OSError as err:  # read-only remount, full disk
            self._disable(err)
            return False
        self.stats["built"] += 1
        return True

    def entry(self, sample_id: dict) -> Path:
        """The entry path of a sample (``sample_id`` = source identity + selector)."""
        return self.directory / f"{stable_hash(sample_id, 24)}.npz"

    def write_options(self) -> bool:
        """Record the options in clear text (once); False when the folder is not writable."""
        if not self.writable():
            return False
        path = self.directory / "options.json"
        if not path.exists():
            try:
                atomic_write_text(path, json.dumps(self.options, indent=1, sort_keys=True,
                                                   default=repr), fsync=False)
            except OSError as err:
                self._disable(err)
                return False
        return True

    def load(self, path: Path) -> dict[str, np.ndarray] | None:
        """The verified arrays of an entry, or None when it is missing, unreadable or wrong
        (then deleted, counted in ``stats["rebuilt"]``)."""
        try:
            data = read_npz_arrays(path)
            problem = verify_entry(path, data, self.shapes)
        except FileNotFoundError:
            return None
        except (EventFormatError, OSError, KeyError) as err:
            problem = str(err)
        if problem is not None:
            try:
                path.unlink(missing_ok=True)
            except OSError:  # read-only folder: rebuilt in memory each time
                pass
            self.stats["rebuilt"] += 1
            return None
        self.stats["loaded"] += 1
        return data

    def size_bytes(self) -> int:
        """Total size of the entries on disk."""
        return sum(p.stat().st_size for p in self.directory.glob("*.npz"))
