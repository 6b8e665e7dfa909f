"""Drop numba's cached kernels when a module they inline has changed.

numba keys a cached function on its own source file only. The kernels of this package inline the
scalar helpers of ``_blocks.py`` and the surrogate codes of ``functional/surrogate.py``; after an
edit there, a kernel module's cache would still hold the old code. :func:`drop_stale_caches`
keeps a digest of those files next to the caches and deletes every cached kernel of the package
when it changes (the kernels recompile on their next call). Read-only installs are left alone.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["drop_stale_caches", "inlined_sources_digest"]

HERE = Path(__file__).resolve().parent
INLINED = (HERE / "_blocks.py", HERE.parent / "codes.py")
STAMP = "inlined-sources.sha256"


def inlined_sources_digest() -> str:
    """SHA-256 over the sources that the cached kernels inline."""
    digest = hashlib.sha256()
    for path in INLINED:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def drop_stale_caches(cache_dir: Path = HERE / "__pycache__") -> bool:
    """Delete the numba cache files (``*.nbi``, ``*.nbc``) in ``cache_dir`` when the inlined sources
    changed since the stamp was written; ``True`` when files were deleted."""
    try:
        current = inlined_sources_digest()
        stamp = cache_dir / STAMP
        if stamp.is_file() and stamp.read_text().strip() == current:
            return False
        stale = [*cache_dir.glob("*.nbi"), *cache_dir.glob("*.nbc")] if cache_dir.is_dir() else []
        for path in stale:
            path.unlink(missing_ok=True)
        cache_dir.mkdir(exist_ok=True)
        tmp = cache_dir / f"{STAMP}.{os.getpid()}.tmp"
        tmp.write_text(current + "\n")
        tmp.replace(stamp)  # atomic: another process never reads half a stamp
        return bool(stale)
    except OSError:  # read-only install: numba falls back to its own cache locations
        return False
