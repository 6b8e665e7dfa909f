"""IDX files (the MNIST / Fashion-MNIST container), gzipped or raw.

Layout (LeCun et al.): a big-endian ``>i4`` magic number whose low byte is the number of
dimensions and whose third byte is the element type (``0x08`` = uint8), then one ``>i4`` size per
dimension, then the elements in row-major order. MNIST uses magic 2051 (``0x00000803``, images
``[n, rows, cols]``) and 2049 (``0x00000801``, labels ``[n]``).

    >>> import tempfile, os, numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
    >>> write_idx(path, np.array([9, 0, 3], dtype=np.uint8))
    >>> read_idx(path, expect_magic=LABELS_MAGIC).tolist()
    [9, 0, 3]
"""
from __future__ import annotations

import gzip
import hashlib
import os
import zlib
from pathlib import Path

import numpy as np

from spikeflow.utils.atomic import atomic_write_bytes

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
_UBYTE = 0x08
_GZIP_HEADER = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """A malformed IDX file; the message names the file and what was expected."""


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as f:
        head = f.read(2)
    if head == _GZIP_HEADER:
        try:
            with gzip.open(path, "rb") as f:
                return f.read()
        except (OSError, EOFError, zlib.error) as err:  # truncated or corrupt gzip stream
            raise IDXFormatError(f"{path}: corrupt or truncated gzip stream ({err})") from None
    return path.read_bytes()


def parse_idx(raw: bytes, path: object = "<bytes>", expect_magic: int | None = None) -> np.ndarray:
    """Decode the bytes of an (uncompressed) IDX uint8 file into an array of its dimensions."""
    if len(raw) < 4:
        raise IDXFormatError(f"{path}: {len(raw)} bytes is too short for an IDX header (needs >= 4)")
    magic = int.from_bytes(raw[:4], "big")
    ndim, dtype_code = magic & 0xFF, (magic >> 8) & 0xFF
    if expect_magic is not None and magic != expect_magic:
        raise IDXFormatError(
            f"{path}: bad IDX magic number {magic}, expected {expect_magic} "
            f"({'images' if expect_magic == IMAGES_MAGIC else 'labels'} file)")
    if magic >> 16 != 0 or dtype_code != _UBYTE or ndim == 0:
        raise IDXFormatError(
            f"{path}: bad IDX magic number {magic}; expected an unsigned-byte IDX file "
            f"(2049 labels, 2051 images)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXFormatError(f"{path}: truncated header, {len(raw)} bytes < {header}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    count = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != count:
        raise IDXFormatError(
            f"{path}: header says {dims} = {count} bytes of data but the file holds "
            f"{len(raw) - header} ({'truncated' if len(raw) - header < count else 'trailing bytes'})")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def read_idx(path: str | os.PathLike, expect_magic: int | None = None) -> np.ndarray:
    """Read an IDX uint8 file (``.gz`` detected by content, not by name) into a numpy array."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    return parse_idx(_read_bytes(path), path, expect_magic)


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes of a uint8 array (1 to 255 dimensions)."""
    array = np.ascontiguousarray(array)
    if array.dtype != np.uint8 or not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX needs a uint8 array with 1..255 dims, got {array.dtype} {array.shape}")
    magic = (_UBYTE << 8) | array.ndim
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return magic.to_bytes(4, "big") + dims + array.tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file atomically; gzipped when the name ends in ``.gz``."""
    path = Path(path)
    data = encode_idx(array)
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data, fsync=False)


def idx_md5(path: str | os.PathLike) -> str:
    """MD5 of the decompressed content (stable across gzip wrappers, unlike the ``.gz`` MD5)."""
    return hashlib.md5(_read_bytes(Path(path))).hexdigest()


__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "IDXFormatError", "parse_idx", "read_idx",
           "encode_idx", "write_idx", "idx_md5"]
