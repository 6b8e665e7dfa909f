"""Event arrays stored with numpy: ``.npy`` / ``.npz`` files, and object arrays of samples.

* ``.npy``: a structured array with fields ``x, y, t, p`` (any integer types), or a 2-D numeric
  array whose column order is given by ``columns`` (e.g. ``"txyp"`` for ASA's DVS128 Gait data).
* ``.npz``: keys ``x, y, t, p`` (SpikingJelly's ``events_np`` files) or one key ``events``.

Both are parsed here, not by ``np.load``: the declared shape of every array must match the bytes
stored (for a deflated member, at most :data:`MAX_DEFLATE_RATIO` times its compressed size), so a
forged header never allocates more than the file can hold; values are checked and timestamps
validated/sorted by :mod:`spikeflow.events.io._checks`.
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

import io
import math
import os
import pickle
import pickletools
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from spikeflow.events.io._checks import events_from_columns
from spikeflow.events.types import EventFormatError, as_events
from spikeflow.utils.atomic import atomic_open

def from_columns(array: np.ndarray, columns: str, what: object = "array",
                 time_scale: float = 1.0) -> np.ndarray:
    """Events from a 2-D ``[N, len(columns)]`` array; ``columns`` names each column (x, y, t, p).

    ``t`` is multiplied by ``time_scale`` and rounded to whole microseconds first (e.g. ``1e6`` for
    seconds). Every value is checked as the file readers do
    (:func:`spikeflow.events.io._checks.events_from_columns`: whole numbers, ``0 <= x, y <= 32767``,
    ``p`` in {0, 1}, the timestamp rule of docs/events.md); :class:`EventFormatError` naming
    ``what``, the column and the first bad index otherwise. Sorted by ``t``.
    """
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[1] != len(columns) or sorted(columns) != sorted("xytp"):
        raise EventFormatError(what, None, f"expected a 2-D array with columns {columns!r} (a "
                               f"permutation of 'xytp'), got shape {array.shape}")
    cols = {k: array[:, columns.index(k)] for k in "xytp"}
    if time_scale != 1.0:
        t = cols["t"]
        if t.dtype.kind not in "biuf":
            raise EventFormatError(what, None, f"column 't' has dtype {t.dtype}; expected numbers")
        with np.errstate(invalid="ignore", over="ignore"):
            cols["t"] = np.rint(t.astype(np.float64) * float(time_scale))
    return events_from_columns(cols, what, "column ")


# Errors numpy / zipfile / zlib raise on malformed bytes (numpy parses the .npy header with
# tokenize + ast; zipfile raises NotImplementedError for unknown compression methods and
# RuntimeError for members flagged as encrypted).
_DECODE_ERRORS = (ValueError, OSError, EOFError, KeyError, TypeError, SyntaxError, RuntimeError,
                  UnicodeDecodeError, OverflowError, RecursionError, NotImplementedError,
                  struct.error, zlib.error, zipfile.BadZipFile, tokenize.TokenError)
MAX_DEFLATE_RATIO = 1100
"""A deflated member may expand at most this much (deflate's limit is about 1032:1)."""


def _npy_header(fh: IO[bytes], available: int, path: object, what: str
                ) -> tuple[tuple[int, ...], bool, np.dtype]:
    """``(shape, fortran_order, dtype)`` of a ``.npy`` header; the header length field is
    checked against ``available`` bytes before numpy parses (and allocates) the header."""
    magic = fh.read(8)
    if len(magic) < 8 or magic[:6] != b"\x93NUMPY" or magic[6] not in (1, 2, 3):
        raise EventFormatError(path, 0, f"{what}: not a .npy file (expected the magic "
                               f"b'\\x93NUMPY' and version 1, 2 or 3)")
    size_bytes = fh.read(2 if magic[6] == 1 else 4)
    if len(size_bytes) < (2 if magic[6] == 1 else 4):
        raise EventFormatError(path, 8, f"{what}: truncated .npy header")
    length = int.from_bytes(size_bytes, "little")
    if length > min(available, 1 << 20) - 8 - len(size_bytes):
        raise EventFormatError(path, 8, f"{what}: .npy header length {length} exceeds the "
                               f"{available} bytes stored")
    text = fh.read(length)
    try:
        header = io.BytesIO(magic + size_bytes + text)
        version = np.lib.format.read_magic(header)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        return read_header(header)
    except _DECODE_ERRORS as err:
        raise EventFormatError(path, 0, f"{what}: not a valid .npy header ({err})") from err


def _read_npy(fh: IO[bytes], available: int, path: object, what: str) -> np.ndarray:
    """One ``.npy`` payload from ``fh``, checking the declared shape against ``available`` bytes
    (so a forged shape never allocates more than the stored data) and refusing object dtypes."""
    shape, fortran, dtype = _npy_header(fh, available, path, what)
    if dtype.hasobject:
        raise EventFormatError(path, None, f"{what}: dtype {dtype} holds Python objects; event "
                               f"files must be numeric (object arrays: load_object_array)")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    header_end = fh.tell()
    if nbytes != available - header_end:
        raise EventFormatError(path, header_end, f"{what}: header declares shape {shape} of "
                               f"{dtype} ({nbytes} bytes) but {available - header_end} bytes "
                               f"follow the header")
    data = fh.read(nbytes)
    if len(data) != nbytes or fh.read(1):
        raise EventFormatError(path, header_end, f"{what}: expected {nbytes} data bytes, "
                               f"read {len(data)}")
    array = np.frombuffer(data, dtype=dtype, count=count)
    return array.reshape(shape, order="F" if fortran else "C")


def _to_events(array: np.ndarray, path: object, columns: str | None, what: str = ""
               ) -> np.ndarray:
    if array.dtype.names:
        missing = [k for k in ("x", "y", "t", "p") if k not in array.dtype.names]
        if missing or array.ndim != 1:
            raise EventFormatError(path, None, f"{what}structured array of shape {array.shape} "
                                   f"with fields {list(array.dtype.names)}; expected one "
                                   f"dimension and fields x, y, t, p")
        return events_from_columns({k: array[k] for k in "xytp"}, path, f"{what}field ")
    if columns is None:
        raise EventFormatError(path, None, f"a plain {array.dtype} array of shape {array.shape}: "
                               "pass columns='txyp' (or the file's order) to name its columns")
    if array.ndim != 2 or array.shape[1] != len(columns) or sorted(columns) != sorted("xytp"):
        raise EventFormatError(path, None, f"{what}expected a 2-D array with columns {columns!r} "
                               f"(a permutation of 'xytp'), got shape {array.shape}")
    return events_from_columns({k: array[:, columns.index(k)] for k in "xytp"}, path,
                               f"{what}column ")


def _read_member(zf: zipfile.ZipFile, name: str, size: int, path: Path) -> np.ndarray:
    """One ``.npy`` member of an open archive (``size``: the archive's size in bytes)."""
    what = f"member {name!r}"
    try:
        info = zf.getinfo(name)
        limit = (info.compress_size if info.compress_type == zipfile.ZIP_STORED
                 else MAX_DEFLATE_RATIO * info.compress_size + 1024)
        if info.compress_size > size or info.file_size > limit:
            raise EventFormatError(path, info.header_offset, f"{what} declares {info.file_size} "
                                   f"bytes from {info.compress_size} stored bytes in a "
                                   f"{size}-byte file")
        with zf.open(info) as fh:
            return _read_npy(fh, info.file_size, path, what)
    except EventFormatError:
        raise
    except _DECODE_ERRORS as err:
        raise EventFormatError(path, None, f"{what}: unreadable ({type(err).__name__}: "
                               f"{err})") from err


def read_npz_arrays(path: str | os.PathLike, keys: list[str] | None = None
                    ) -> dict[str, np.ndarray]:
    """The arrays of a ``.npz`` archive (all, or ``keys``), read with the checks of
    :func:`read_numpy` (declared sizes bounded by the stored bytes, no pickles, CRC verified).

    Raises :class:`EventFormatError` for any damage, ``KeyError`` naming a missing key.
    """
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise
    except _DECODE_ERRORS as err:
        raise EventFormatError(path, None, f"not a readable .npz archive ({err})") from err
    with zf:
        members = {name[:-4] if name.endswith(".npy") else name: name for name in zf.namelist()}
        missing = [k for k in keys or () if k not in members]
        if missing:
            raise KeyError(f"{path}: missing key(s) {missing}; found {sorted(members)}")
        size = path.stat().st_size
        return {k: _read_member(zf, members[k], size, path) for k in keys or members}


def _npz_keys(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except FileNotFoundError:
        raise
    except _DECODE_ERRORS as err:
        raise EventFormatError(path, None, f"not a readable .npz archive ({err})") from err
    return [name[:-4] if name.endswith(".npy") else name for name in names]


def _read_npz(path: Path, columns: str | None) -> np.ndarray:
    keys = set(_npz_keys(path))
    if {"x", "y", "t", "p"} <= keys:
        return events_from_columns(read_npz_arrays(path, ["x", "y", "t", "p"]), path, "key ")
    if "events" in keys:
        return _to_events(read_npz_arrays(path, ["events"])["events"], path, columns,
                          "'events': ")
    raise EventFormatError(path, None, f"expected keys x, y, t, p or 'events', found "
                           f"{sorted(keys)}")


def read_numpy(path: str | os.PathLike, columns: str | None = None) -> np.ndarray:
    """Read events from ``.npy`` or ``.npz`` (no pickles); see the module doc for layouts.

    Every value is checked (:func:`spikeflow.events.io._checks.events_from_columns`): any
    malformed, truncated or corrupt file raises :class:`EventFormatError` naming the file.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        magic = fh.read(4)
        if magic.startswith(b"PK"):
            fh.close()
            return _read_npz(path, columns)
        fh.seek(0)
        array = _read_npy(fh, os.fstat(fh.fileno()).st_size, path, ".npy file")
    return _to_events(array, path, columns)


def write_npz(path: str | os.PathLike, events: np.ndarray, compressed: bool = True) -> None:
    """Write events as ``.npz`` with keys x, y, t, p, atomically (:mod:`spikeflow.utils.atomic`)."""
    save = np.savez_compressed if compressed else np.savez
    with atomic_open(path, "wb", fsync=False) as f:
        save(f, **{k: np.asarray(events[k]) for k in ("x", "y", "t", "p")})


def write_npy(path: str | os.PathLike, events: np.ndarray) -> None:
    """Write an ``EVENT_DTYPE`` structured ``.npy`` file atomically."""
    with atomic_open(path, "wb", fsync=False) as f:
        np.save(f, as_events(events))


_MEMO_OPS = {"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"}


def scan_pickle(data: bytes, path: object = "<bytes>", offset: int = 0) -> None:
    """Check a pickle's opcodes (``pickletools.genops``, pure Python) before unpickling it.

    CPython's unpickler sizes its memo table by the largest memo index it sees, so one
    corrupted ``LONG_BINPUT`` can allocate gigabytes before failing; here every memo index must
    be smaller than the number of opcodes so far (picklers number them 0, 1, 2, ...) and the
    stream must decode to its ``STOP``. Raises :class:`EventFormatError` otherwise.
    """
    try:
        n = 0
        for n, (op, arg, pos) in enumerate(pickletools.genops(data)):
            if op.name == "FRAME" and arg > len(data):
                raise EventFormatError(path, offset + (pos or 0), f"pickle frame of {arg} bytes "
                                       f"in a {len(data)}-byte payload")
            if op.name in _MEMO_OPS and isinstance(arg, int) and not 0 <= arg <= n:
                raise EventFormatError(path, offset + (pos or 0), f"pickle memo index {arg} "
                                       f"at opcode {n}: corrupt payload")
    except EventFormatError:
        raise
    except Exception as err:  # noqa: BLE001 - genops raises ValueError and friends
        raise EventFormatError(path, offset, f"corrupt pickle payload ({type(err).__name__}: "
                               f"{err})") from err


def plain_dtype(dtype: object, allow_object: bool) -> bool:
    """A builtin numeric (or object) dtype exactly as numpy itself would build it: no fields,
    no subarrays, and flags/size/alignment equal to the canonical descriptor (a pickled dtype
    state can set e.g. the "holds references" flag on an integer type)."""
    if not isinstance(dtype, np.dtype) or dtype.names is not None or dtype.subdtype is not None:
        return False
    if dtype.kind not in ("biufcO" if allow_object else "biufc"):
        return False
    canon = np.dtype(dtype.str)
    return (canon == dtype and canon.flags == dtype.flags and canon.itemsize == dtype.itemsize
            and canon.alignment == dtype.alignment and canon.byteorder == dtype.byteorder)


def _reconstruct(subtype: object, shape: object, dtype: object) -> np.ndarray:
    # numpy pickles every array as _reconstruct(ndarray, (0,), b'b') + BUILD(state): the empty
    # shell is all that is needed (a forged shape here would allocate before BUILD is checked)
    if subtype is not np.ndarray:
        raise pickle.UnpicklingError(f"_reconstruct of {subtype!r}; only numpy.ndarray")
    return np.empty(0, np.uint8)


def _dtype(obj: object, align: object = False, copy: object = True) -> np.dtype:
    # always a fresh copy: BUILD must never modify numpy's shared builtin descriptors;
    # Python 2 pickles (CIFAR-10) name the type with a byte string
    if isinstance(obj, bytes) and obj.isascii():
        obj = obj.decode("ascii")
    if not isinstance(obj, str):
        raise pickle.UnpicklingError(f"dtype({obj!r}): only dtype names")
    return np.dtype(obj, bool(align), True)


def _scalar(dtype: object, data: object = None) -> object:
    if not plain_dtype(dtype, False) or not isinstance(data, bytes) \
            or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f"numpy scalar of {dtype!r} from {type(data).__name__}")
    return np.frombuffer(data, dtype)[0]


def _latin1(text: object, encoding: object = "utf-8") -> bytes:
    # protocol 2 pickles bytes as _codecs.encode(str, 'latin1')
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("_codecs.encode: only latin1 text")
    return text.encode("latin1")


SAFE_NUMPY_GLOBALS: dict[tuple[str, str], object] = {
    **{(m, "_reconstruct"): _reconstruct for m in ("numpy.core.multiarray",
                                                    "numpy._core.multiarray")},
    **{(m, "scalar"): _scalar for m in ("numpy.core.multiarray", "numpy._core.multiarray")},
    ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): _dtype, ("_codecs", "encode"): _latin1,
}
"""The globals a numpy array pickle needs, each replaced by a checked equivalent."""


def _check_array_state(state: object) -> None:
    if not isinstance(state, tuple) or len(state) not in (4, 5):
        raise pickle.UnpicklingError("ndarray state: expected (version, shape, dtype, fortran, "
                                     "data)")
    shape, dtype, fortran, raw = state[-4:]
    if not isinstance(shape, tuple) or not all(type(d) is int and d >= 0 for d in shape):
        raise pickle.UnpicklingError(f"ndarray state: bad shape {shape!r}")
    if not plain_dtype(dtype, True) or not isinstance(fortran, (bool, int)):
        raise pickle.UnpicklingError(f"ndarray state: unsupported dtype {dtype!r}")
    n = math.prod(shape)
    if dtype.hasobject:
        ok = isinstance(raw, list) and len(raw) == n
    else:
        ok = isinstance(raw, (bytes, bytearray)) and len(raw) == n * dtype.itemsize
    if not ok:
        raise pickle.UnpicklingError(f"ndarray state: data ({type(raw).__name__}) does not "
                                     f"match shape {shape} of {dtype}")


def _check_dtype_state(dtype: np.dtype, state: object) -> None:
    """A dtype ``__setstate__`` argument that only sets what numpy itself would: versions 1-4
    ``(version, endian, subarray, names, fields, elsize, alignment[, flags[, metadata]])`` with
    no subarray/fields/metadata, the canonical size, alignment and flags, and a byte order the
    type can have (numpy's ``__setstate__`` trusts these values; a datetime dtype given an
    object dtype's state crashed the process)."""
    if not plain_dtype(dtype, True) or not isinstance(state, tuple) or not 7 <= len(state) <= 9 \
            or state[0] not in (1, 2, 3, 4) or (len(state) == 7) != (state[0] < 3):
        raise pickle.UnpicklingError(f"dtype state {state!r:.80}: unsupported layout")
    endian, subarray, names, fields, elsize, alignment = state[1:7]
    if isinstance(endian, bytes):  # Python 2 pickles
        endian = endian.decode("latin1")
    canon = np.dtype(dtype.str)
    flags = state[7] if len(state) > 7 else canon.flags
    metadata = state[8] if len(state) > 8 else None
    if (endian not in ("<", ">", "=", "|") or (endian == "|") != (canon.byteorder == "|")
            or (subarray, names, fields, metadata) != (None, None, None, None)
            or elsize not in (-1, canon.itemsize) or alignment not in (-1, canon.alignment)
            or flags != canon.flags):
        raise pickle.UnpicklingError(f"dtype state {state!r:.80} does not describe {canon}")


class SafeNumpyUnpickler(pickle._Unpickler):
    """A pure-Python unpickler for numpy array pickles from untrusted files.

    Globals come only from ``allowed`` (default :data:`SAFE_NUMPY_GLOBALS`: checked stand-ins
    for numpy's array reconstruction), ``BUILD`` is only applied to arrays and dtypes, and
    every array state is validated first (plain numeric or object dtype, data exactly as long
    as the shape says, object data as a list), so a corrupt payload raises instead of building
    an array over wrong memory (numpy's own ``__setstate__`` trusts the dtype it is given).
    The memo is a dict, so forged memo indices cost nothing.
    """

    allowed: dict[tuple[str, str], object] = SAFE_NUMPY_GLOBALS
    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str) -> object:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}") from None

    def _load_build(self) -> None:
        if len(self.stack) < 2:
            raise pickle.UnpicklingError("BUILD without an object")
        state, inst = self.stack[-1], self.stack[-2]
        if isinstance(inst, np.ndarray):
            _check_array_state(state)
        elif isinstance(inst, np.dtype):
            _check_dtype_state(inst, state)
        else:
            raise pickle.UnpicklingError(f"BUILD on {type(inst).__name__}")
        pickle._Unpickler.load_build(self)
        if isinstance(inst, np.dtype) and not plain_dtype(inst, True):
            raise pickle.UnpicklingError(f"dtype state gives a non-standard {inst!r}")

    dispatch[pickle.BUILD[0]] = _load_build


def load_object_array(path: str | os.PathLike) -> np.ndarray:
    """Load a ``.npy`` file that may hold ``dtype=object`` (e.g. one array per sample) safely.

    Plain numeric files load like :func:`read_numpy` loads a ``.npy`` (declared shape checked
    against the stored bytes); object files are unpickled with a restricted unpickler that only
    rebuilds numpy arrays, dtypes and scalars. Anything else, and any malformed payload, raises
    EventFormatError.
    """
    path = Path(path)
    with open(path, "rb") as f:
        shape, _, dtype = _npy_header(f, os.fstat(f.fileno()).st_size, path, ".npy file")
        if not dtype.hasobject:
            f.seek(0)
            return _read_npy(f, os.fstat(f.fileno()).st_size, path, ".npy file")
        at = f.tell()
        try:
            # From memory: a forged length opcode then fails at the end of the data instead of
            # asking the file for (and allocating) that many bytes; opcodes checked first.
            payload = f.read()
            scan_pickle(payload, path, at)
            arr = SafeNumpyUnpickler(io.BytesIO(payload)).load()
        except EventFormatError:
            raise
        except Exception as err:  # noqa: BLE001 - a corrupt pickle can raise almost anything
            raise EventFormatError(path, at, f"object array payload rejected "
                                   f"({type(err).__name__}: {err})") from err
    if not isinstance(arr, np.ndarray) or arr.shape != tuple(shape):
        raise EventFormatError(path, at, f"expected an object array of shape {tuple(shape)}")
    return arr
