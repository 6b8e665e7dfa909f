"""Atomic writes: a reader sees the old file or the complete new one, never a partial one.

Every writer of spikeflow (checkpoints, run-folder logs, reports, event files, dataset caches)
goes through this module::

    atomic_write_bytes(path, b"...")            # bytes
    atomic_write_text(path, "...")              # text, UTF-8
    with atomic_open(path, "wb") as fh:         # a writer that takes a file object
        np.save(fh, array)
    with atomic_path(path) as tmp:              # a writer that opens by name (h5py) or a folder
        h5py.File(tmp, "w").close()

The data goes to a temporary sibling ``.NAME.tmp-PID-TOKEN`` in the target's folder (created if
missing), is flushed and, when ``fsync`` (the default), ``os.fsync``-ed, then ``os.replace``-d
over ``path``, and the folder entry is synced too. On any error, ``KeyboardInterrupt`` included,
the temporary file or folder is removed and ``path`` is left as it was. Files get the permissions
of a plain ``open(path, "w")`` (``0o666`` less the umask). ``fsync=False`` keeps atomicity but
not durability across a power loss: the bulk data writers (event files, IDX files, the frame
cache, the emulator's folder) use it, as they write many files that can be made again; run
folders (checkpoints, metrics, configs) and reports are synced.
"""
from __future__ import annotations

import os
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator, Union

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_open", "atomic_path"]

PathLike = Union[str, os.PathLike]


def _temp_sibling(path: Path) -> Path:
    """A fresh name next to ``path`` (unique per process and call; dot-prefixed, so hidden)."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")


def _remove(tmp: Path) -> None:
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _commit(tmp: Path, path: Path, fsync: bool) -> None:
    try:
        os.replace(tmp, path)
    except OSError as err:
        if tmp.is_dir() and path.is_dir():  # a non-empty folder is in the way
            raise FileExistsError(f"cannot move the new folder into place: {path} exists "
                                  f"(created concurrently?)") from err
        raise
    if fsync:
        _sync_folder(path.parent)


@contextmanager
def atomic_path(path: PathLike, *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` for the caller to create (a file or a folder);
    on a clean exit it replaces ``path``. Nothing is created at the yielded path beforehand.

    A file is fsync-ed before the rename when ``fsync``; a folder is moved as it is (its files
    are the caller's to sync). Replacing an existing non-empty folder raises
    ``FileExistsError``: remove it first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(path)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"atomic_path({path}): nothing was written at {tmp}")
        if fsync and tmp.is_file():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _commit(tmp, path, fsync)
    except BaseException:
        _remove(tmp)
        raise


@contextmanager
def atomic_open(path: PathLike, mode: str = "wb", *, encoding: str | None = None,
                fsync: bool = True) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing (``mode`` ``"wb"`` or ``"w"``; text is
    UTF-8 unless ``encoding``); on a clean exit it is flushed, synced and renamed to ``path``."""
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open: mode must be 'wb' or 'w', got {mode!r}")
    if mode == "w" and encoding is None:
        encoding = "utf-8"
    with atomic_path(path, fsync=False) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with open(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
    if fsync:
        _sync_folder(Path(path).parent)


def atomic_write_bytes(path: PathLike, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path`` as a :class:`~pathlib.Path`."""
    with atomic_open(path, "wb", fsync=fsync) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: PathLike, text: str, *, encoding: str = "utf-8",
                      fsync: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically (encoded as ``encoding``, no newline translation)."""
    return atomic_write_bytes(path, text.encode(encoding), fsync=fsync)
