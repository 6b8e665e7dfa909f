"""Issue 17 item 7, frame cache: damaged or valid-but-wrong entries are rebuilt, never served or
unpickled; a read-only cache folder computes without caching after one warning."""
from __future__ import annotations

import io
import os
import struct
import warnings
import zipfile

import numpy as np
import pytest

from spikeflow.data import create_dataset
from spikeflow.data import frame_cache as fc
from spikeflow.events import SensorSize, make_events, to_frames
from spikeflow.events.io import read_nmnist, write_nmnist


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("Train", 2), ("Test", 1)):
        for c in range(2):
            d = tmp_path / "NMNIST" / split / str(c)
            d.mkdir(parents=True)
            for i in range(n):
                k = 200 + 50 * (2 * c + i)  # every sample has another event count
                write_nmnist(d / f"{i:05d}.bin", make_events(
                    rng.integers(0, 34, k), rng.integers(0, 34, k),
                    np.sort(rng.integers(0, 300_000, k)), rng.integers(0, 2, k)))
    return tmp_path / "NMNIST"


def _make(folder, cache, **kw):
    return create_dataset("nmnist", folder, "train", cache_dir=cache, check_counts=False,
                          progress=False, workers=1, T=4, **kw)


def _expected(folder, i):
    return to_frames(read_nmnist(folder / "Train" / str(i // 2) / f"{i % 2:05d}.bin"),
                     SensorSize(34, 34, 2), 4)


def _check_rebuilt(ds, folder, i):
    x, _ = ds[i]
    np.testing.assert_array_equal(x.numpy(), _expected(folder, i))
    assert ds.cache.stats["rebuilt"] == 1
    assert ds.cache.load(ds._entry(i)) is not None  # rewritten valid


def _flip_deflate(path):  # bytes in the middle of the first member's deflate stream
    data = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack_from("<HH", data, 26)
    start = 30 + name_len + extra_len
    for k in range(start + 5, start + 25):
        data[k] ^= 0x77
    path.write_bytes(bytes(data))


def test_zlib_error_entry_is_rebuilt(folder, tmp_path):
    ds = _make(folder, tmp_path / "c")
    _flip_deflate(ds._entry(1))  # used to raise zlib.error out of __getitem__
    _check_rebuilt(ds, folder, 1)


@pytest.mark.parametrize("damage", ["truncate", "method", "garbage"])
def test_other_damage_is_rebuilt(folder, tmp_path, damage):
    ds = _make(folder, tmp_path / "c")
    entry = ds._entry(2)
    data = bytearray(entry.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "method":  # unknown compression method: NotImplementedError in zipfile
        at = data.find(b"PK\x01\x02")
        struct.pack_into("<H", data, at + 10, 99)
        struct.pack_into("<H", data, 8, 99)
    else:
        data = b"PK\x03\x04" + bytes(200)
    entry.write_bytes(bytes(data))
    _check_rebuilt(ds, folder, 2)


def test_entry_of_another_sample_is_rebuilt(folder, tmp_path):
    ds = _make(folder, tmp_path / "c")
    ds._entry(3).write_bytes(ds._entry(0).read_bytes())  # a valid entry, for sample 0
    _check_rebuilt(ds, folder, 3)


def test_wrong_shape_with_consistent_header_is_rebuilt(folder, tmp_path):
    ds = _make(folder, tmp_path / "c")
    fc.atomic_savez(ds._entry(2), counts=np.zeros((3, 2, 34, 34), np.uint8),
                    durations=np.ones(3, np.int64))
    _check_rebuilt(ds, folder, 2)


def test_altered_values_fail_the_checksum(folder, tmp_path):
    ds = _make(folder, tmp_path / "c")
    entry = ds._entry(0)
    with zipfile.ZipFile(entry) as zf:
        arrays = {n[:-4]: np.load(io.BytesIO(zf.read(n))) for n in zf.namelist()}
    arrays["counts"] = arrays["counts"].copy()
    arrays["counts"][0, 0, 0, 0] += 1
    with open(entry, "wb") as f:  # same header, one count changed
        np.savez_compressed(f, **arrays)
    _check_rebuilt(ds, folder, 0)


def test_pickle_payload_is_never_loaded(folder, tmp_path):
    ds = _make(folder, tmp_path / "c")
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    with open(ds._entry(1), "wb") as f:
        np.savez(f, counts=np.array([Evil()], dtype=object), durations=np.ones(4))
    _check_rebuilt(ds, folder, 1)
    assert not marker.exists()


def test_read_only_cache_folder_computes_with_one_warning(folder, tmp_path, monkeypatch):
    cache = tmp_path / "ro"
    cache.mkdir()
    cache.chmod(0o555)
    if os.geteuid() == 0:  # root ignores permissions: make writes fail as they would
        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(cache))
        monkeypatch.setattr(fc.tempfile, "NamedTemporaryFile", refuse)
        monkeypatch.setattr(fc, "atomic_open", refuse)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = _make(folder, cache)
            xs = [ds[i][0].numpy() for i in range(len(ds))] + [ds[0][0].numpy()]
        assert [str(w.message) for w in caught if "not writable" in str(w.message)] == [
            str(caught[0].message)] and len(caught) == 1
        for i in range(len(ds)):
            np.testing.assert_array_equal(xs[i], _expected(folder, i))
        assert ds.cache.stats["built"] == 0 and not list(cache.rglob("*.npz"))
    finally:
        cache.chmod(0o755)


def test_read_only_folder_with_valid_entries_still_loads(folder, tmp_path, monkeypatch):
    ds = _make(folder, tmp_path / "c")
    again = _make(folder, tmp_path / "c", precompute=False)
    monkeypatch.setattr(fc, "atomic_open", lambda *a, **k: (_ for _ in ()).throw(
        PermissionError(13, "Permission denied")))
    x, _ = again[1]
    np.testing.assert_array_equal(x.numpy(), _expected(folder, 1))
    assert again.cache.stats == {"built": 0, "loaded": 1, "rebuilt": 0}
    assert ds.cache.directory == again.cache.directory
