"""Event file readers and writers (numpy only). Every reader returns an ``EVENT_DTYPE`` array
sorted by ``t``; every writer is atomic (temp file + rename); malformed files raise
:class:`~spikeflow.events.types.EventFormatError` naming the file, byte offset and expectation.
Timestamps follow one rule in every reader (:mod:`spikeflow.events.io._checks`): never negative,
a step back of at most 1 s is sorted, a larger one is an error.
"""
from spikeflow.events.io.aedat2 import decode_aedat2, encode_aedat2, read_aedat2, write_aedat2
from spikeflow.events.io.aedat3 import decode_aedat3, encode_aedat3, read_aedat3, write_aedat3
from spikeflow.events.io.dispatch import detect_format, read
from spikeflow.events.io.gesture import (
    labels_path_for,
    read_dvs_gesture_trial,
    read_gesture_labels,
    slice_trial,
)
from spikeflow.events.io.hdf5 import read_hdf5, read_hdf5_label, read_hdf5_sample, write_hdf5
from spikeflow.events.io.nmnist import decode_nmnist, encode_nmnist, read_nmnist, write_nmnist
from spikeflow.events.io.numpy_io import (
    from_columns,
    load_object_array,
    read_npz_arrays,
    read_numpy,
    SAFE_NUMPY_GLOBALS,
    SafeNumpyUnpickler,
    plain_dtype,
    scan_pickle,
    write_npy,
    write_npz,
)

__all__ = [
    "read", "detect_format",
    "read_nmnist", "write_nmnist", "encode_nmnist", "decode_nmnist",
    "read_aedat3", "write_aedat3", "encode_aedat3", "decode_aedat3",
    "read_aedat2", "write_aedat2", "encode_aedat2", "decode_aedat2",
    "read_dvs_gesture_trial", "read_gesture_labels", "slice_trial", "labels_path_for",
    "read_numpy", "write_npz", "write_npy", "load_object_array", "from_columns", "read_npz_arrays",
    "scan_pickle", "SafeNumpyUnpickler", "SAFE_NUMPY_GLOBALS", "plain_dtype",
    "read_hdf5", "read_hdf5_sample", "read_hdf5_label", "write_hdf5",
]
