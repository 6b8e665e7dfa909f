"""``read(path)``: pick the event reader from the file suffix and, for ``.aedat``, the header."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from spikeflow.events.io._header import read_prefix, sniff_version
from spikeflow.events.io.aedat2 import read_aedat2
from spikeflow.events.io.aedat3 import read_aedat3
from spikeflow.events.io.hdf5 import read_hdf5
from spikeflow.events.io.nmnist import read_nmnist
from spikeflow.events.io.numpy_io import read_numpy
from spikeflow.events.types import EventFormatError

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
SUFFIXES = {".bin": "nmnist", ".aedat": "aedat", ".aedat2": "aedat", ".aedat3": "aedat",
            ".dat": "aedat", ".npy": "numpy", ".npz": "numpy", ".h5": "hdf5", ".hdf5": "hdf5"}


def detect_format(path: str | os.PathLike) -> str:
    """``"nmnist" | "aedat2" | "aedat3" | "numpy" | "hdf5"`` from the header, else the suffix."""
    path = Path(path)
    head = read_prefix(path, 64)
    version = sniff_version(head)
    if version is not None:
        if version.startswith("2"):
            return "aedat2"
        if version.startswith("3"):
            return "aedat3"
        raise EventFormatError(path, 0, f"AEDAT version {version!r} is not supported "
                               "(expected 2.0 or 3.1)")
    if head.startswith(_HDF5_MAGIC):
        return "hdf5"
    if head.startswith(b"\x93NUMPY") or head.startswith(b"PK\x03\x04"):
        return "numpy"
    kind = SUFFIXES.get(path.suffix.lower())
    if kind == "aedat":
        raise EventFormatError(path, 0, "expected an AEDAT header line '#!AER-DAT2.0' or "
                               "'#!AER-DAT3.1'")
    if kind is None:
        raise EventFormatError(path, None, f"unknown event file type {path.suffix!r}; known "
                               f"suffixes: {sorted(SUFFIXES)}")
    return kind


def read(path: str | os.PathLike, **options) -> np.ndarray:
    """Read any supported event file; ``options`` go to the chosen reader."""
    kind = detect_format(path)
    reader = {"nmnist": read_nmnist, "aedat2": read_aedat2, "aedat3": read_aedat3,
              "numpy": read_numpy, "hdf5": read_hdf5}[kind]
    return reader(path, **options)
