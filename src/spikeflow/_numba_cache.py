"""Where numba caches spikeflow's compiled kernels: a user cache folder, never the package.

``@njit(cache=True)`` writes machine code next to the source file by default (the package's
``__pycache__``), which fails on read-only installs, and keys each cached function on its own
source file only. (This module imports neither torch nor anything of spikeflow at import, so the
numpy-only event kernels of ``events/functional/_kernels.py`` use it too.) The kernels inline the scalar helpers of ``ops/_cpu/_blocks.py`` and the
surrogate codes of ``ops/codes.py``; after an edit there, a kernel's cache would still hold the old
code. :func:`ensure_numba_cache` (called before a kernel module defines its kernels; it is not
called on ``import spikeflow``) installs a numba cache locator, for spikeflow's own source files
only, that puts their caches in

    ``<root>/numba-<spikeflow version>-<digest>/<dir>_<hash of the dir>/``

where ``root`` is ``spikeflow.runtime.settings().numba_cache`` (``~/.cache/spikeflow`` by default,
see :mod:`spikeflow.runtime`) and ``digest`` covers every source of ``ops/_cpu`` and
``ops/codes.py``: a change in any of them makes a new folder, so stale code is never loaded
(nothing is deleted; old folders can be removed by hand). Nothing is created until numba saves a
compiled kernel. When the folder cannot be created or written, or the root is ``None``, numba's own
locators decide (``NUMBA_CACHE_DIR``, ``__pycache__``, its user-wide folder), as without spikeflow.
When numba's locator interface is missing (a future numba), numba's behaviour applies too.
"""
from __future__ import annotations

import hashlib
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

__all__ = ["ensure_numba_cache", "cache_folder", "inlined_sources_digest", "roots_in_use",
           "SOURCES"]

PACKAGE = Path(__file__).resolve().parent  # the spikeflow package folder: its files get the user cache folder
#: the sources that cached kernels may inline (digested into the folder name)
SOURCES = (PACKAGE / "ops" / "_cpu", PACKAGE / "ops" / "codes.py")

_lock = threading.Lock()
_installed = False
_roots: set[Optional[Path]] = set()  # roots of the folders kernels were loaded for (see runtime)


def _source_files() -> list[Path]:
    files: list[Path] = []
    for source in SOURCES:
        files.extend(sorted(source.glob("*.py")) if source.is_dir() else [source])
    return files


@lru_cache(maxsize=1)
def inlined_sources_digest() -> str:
    """SHA-256 over the names and contents of the sources that cached kernels may inline."""
    digest = hashlib.sha256()
    for path in _source_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def cache_folder(root: Optional[Path] = None) -> Optional[Path]:
    """The folder that holds spikeflow's numba caches under ``root`` (default: the root of
    :func:`spikeflow.runtime.settings`); ``None`` when the root is ``None``."""
    if root is None:
        from spikeflow import runtime

        root = runtime.settings().numba_cache
        if root is None:
            return None
    from spikeflow import __version__

    return Path(root) / f"numba-{__version__}-{inlined_sources_digest()[:16]}"


def roots_in_use() -> set[Optional[Path]]:
    """Cache roots that already-loaded kernels use (empty before the first kernel loads)."""
    with _lock:
        return set(_roots)


def _writable(path: Path) -> bool:
    """Whether ``path`` is a writable folder or could be created as one (creates nothing)."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            return False
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def _is_ours(py_file: str) -> bool:
    try:
        path = Path(os.path.realpath(py_file))
    except (OSError, ValueError):
        return False
    return PACKAGE in path.parents


def _make_locator() -> Any:
    """numba's cache-locator class for spikeflow's files (raises when numba's interface differs)."""
    from numba.core import caching

    class SpikeflowCacheLocator(caching._SourceFileBackedLocatorMixin, caching._CacheLocator):
        """Caches spikeflow's kernels in :func:`cache_folder`; other files are not its business."""

        def __init__(self, py_func: Any, py_file: str, folder: Path) -> None:
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = str(folder / self.get_suitable_cache_subpath(py_file))

        def get_cache_path(self) -> str:
            return self._cache_path

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            if not _is_ours(py_file) or not os.path.exists(py_file):
                return None
            from spikeflow import runtime

            root = runtime.settings().numba_cache
            folder = cache_folder(root) if root is not None else None
            if folder is None:
                with _lock:
                    _roots.add(None)
                return None
            locator = cls(py_func, py_file, folder)
            if not _writable(Path(locator._cache_path)):  # numba's own locators take over
                return None
            with _lock:
                _roots.add(root)
            return locator  # the folder is made when numba saves (ensure_cache_path)

    return SpikeflowCacheLocator


def ensure_numba_cache() -> Optional[Path]:
    """Route numba's caches of spikeflow's kernels to :func:`cache_folder` (idempotent).

    Call right before importing (or building) a module that defines ``@njit(cache=True)``
    kernels: numba picks the cache folder when a kernel is defined. Creates no file. Returns the
    folder kernels defined now will use, or ``None`` when numba's own locations apply (root
    ``None``, numba missing, or numba's locator interface changed).
    """
    global _installed
    with _lock:
        if not _installed:
            try:
                from numba.core import caching

                # CacheImpl in numba 0.68, _CacheImpl in older releases
                impl = getattr(caching, "CacheImpl", None) or caching._CacheImpl
                locators = impl._locator_classes
                locator = _make_locator()
                if not isinstance(locators, list):
                    raise TypeError("numba's _locator_classes is not a list")
            except (ImportError, AttributeError, TypeError):
                return None  # numba's behaviour: caches next to the sources
            locators.insert(0, locator)
            _installed = True
    folder = cache_folder()
    return folder if folder is not None and _writable(folder) else None
