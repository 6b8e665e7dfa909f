"""On-disk cache of integrated event frames (and of decoded event streams), compressed, atomic.

Layout: ``<cache root>/<dataset>/<kind>-<options hash>/<sample hash>.npz`` where the options
hash covers every option that shapes the stored arrays (frame spec minus normalisation, sensor,
reader options, clips, a format version) and the sample hash covers the source file identity
(path, size, mtime) and the sample's selector. An ``options.json`` next to the entries records
the options in clear text.

Frames are stored as their exact integer counts in the smallest unsigned dtype (uint8 when the
largest count is <= 255, else uint16/uint32) with ``np.savez_compressed``; the normalisation is
applied on load, so one cache serves every normalisation. Entries are written to a temp file and
renamed into place, so an interrupted run never leaves a broken entry; an unreadable entry is
rebuilt.

The cache root is ``cache_dir`` if given, else ``$SPIKEFLOW_CACHE_DIR``, else
``$XDG_CACHE_HOME/spikeflow`` (``~/.cache/spikeflow``).
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from spikeflow.events.types import EVENT_DTYPE
from spikeflow.utils.atomic import atomic_open, atomic_write_text

CACHE_VERSION = 1


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


def atomic_savez(path: Path, **arrays: np.ndarray) -> None:
    """``np.savez_compressed`` atomically (:mod:`spikeflow.utils.atomic`; not fsync-ed: a torn
    entry after a power loss fails :meth:`FrameCache.load` and is rebuilt)."""
    with atomic_open(path, "wb", fsync=False) as f:
        np.savez_compressed(f, **arrays)


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

    ``stats`` counts ``built`` (entries written by this process or its workers) and ``loaded``.
    """

    def __init__(self, root: str | os.PathLike, dataset: str, kind: str, options: dict) -> None:
        self.options = {"version": CACHE_VERSION, "kind": kind, **options}
        self.directory = Path(root) / dataset / f"{kind}-{stable_hash(self.options)}"
        self.stats = {"built": 0, "loaded": 0, "rebuilt": 0}

    def entry(self, sample_id: dict) -> Path:
        """The entry path of a sample (``sample_id`` = source identity + selector)."""
        return self.directory / f"{stable_hash(sample_id, 24)}.npz"

    def write_options(self) -> None:
        """Record the options in clear text (once)."""
        path = self.directory / "options.json"
        if not path.exists():
            atomic_write_text(path, json.dumps(self.options, indent=1, sort_keys=True, default=repr),
                              fsync=False)

    def load(self, path: Path) -> dict[str, np.ndarray] | None:
        """The arrays of an entry, or None when it is missing or unreadable (then deleted)."""
        try:
            with np.load(path, allow_pickle=False) as data:
                out = {k: data[k] for k in data.files}
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError):
            path.unlink(missing_ok=True)
            self.stats["rebuilt"] += 1
            return None
        self.stats["loaded"] += 1
        return out

    def size_bytes(self) -> int:
        """Total size of the entries on disk."""
        return sum(p.stat().st_size for p in self.directory.glob("*.npz"))
