"""N-MNIST dataset on a generated miniature folder (3 classes x 4 files): items, cache, errors."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from spikeflow.data import create_dataset
from spikeflow.data.event_options import MissingDataError
from spikeflow.data.nmnist import NMNIST, nmnist_dataset
from spikeflow.events import FrameSpec, SensorSize, make_events, to_frames
from spikeflow.events.io import read_nmnist, write_nmnist


def _write_folder(root, per_class=(4, 2), classes=3, n_events=400, size=34, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in zip(("Train", "Test"), per_class):
        for c in range(classes):
            d = root / split / str(c)
            d.mkdir(parents=True)
            for i in range(n):
                ev = make_events(rng.integers(0, size, n_events), rng.integers(0, size, n_events),
                                 np.sort(rng.integers(0, 300_000, n_events)),
                                 rng.integers(0, 2, n_events))
                write_nmnist(d / f"{i:05d}.bin", ev)
    return root


@pytest.fixture
def folder(tmp_path):
    return _write_folder(tmp_path / "NMNIST")


def _make(folder, tmp_path, split="train", **kw):
    kw.setdefault("check_counts", False)
    kw.setdefault("progress", False)
    return create_dataset("nmnist", folder, split, cache_dir=tmp_path / "cache", **kw)


def test_lengths_labels_shapes_and_values(folder, tmp_path):
    ds = _make(folder, tmp_path, T=5)
    assert len(ds) == 12 and ds.targets.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert ds.classes == ["0", "1", "2"] and ds.frame_shape() == (5, 2, 34, 34)
    x, y = ds[5]
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32 and y == 1
    ev = read_nmnist(folder / "Train" / "1" / "00001.bin")
    np.testing.assert_array_equal(x.numpy(), to_frames(ev, SensorSize(34, 34, 2), 5))
    test = _make(folder, tmp_path, "test", T=5)
    assert len(test) == 6 and test.targets.tolist() == [0, 0, 1, 1, 2, 2]


def test_cache_is_reused_on_second_pass(folder, tmp_path):
    first = _make(folder, tmp_path, T=4, workers=2)
    assert first.cache.stats["built"] == 12
    entries = sorted(first.cache.directory.glob("*.npz"))
    mtimes = [p.stat().st_mtime_ns for p in entries]
    assert len(entries) == 12 and (first.cache.directory / "options.json").exists()
    second = _make(folder, tmp_path, T=4, normalization="max")  # normalisation is applied on load
    assert second.cache.directory == first.cache.directory
    xs = [second[i][0] for i in range(len(second))]
    assert second.cache.stats == {"built": 0, "loaded": 12, "rebuilt": 0}
    assert [p.stat().st_mtime_ns for p in entries] == mtimes
    assert all(float(x.max()) <= 1.0 for x in xs)
    other = _make(folder, tmp_path, T=6, precompute=False)  # another T -> another entry folder
    assert other.cache.directory != first.cache.directory


def test_cache_entries_are_small_integers(folder, tmp_path):
    ds = _make(folder, tmp_path, T=4)
    with np.load(next(ds.cache.directory.glob("*.npz"))) as data:
        assert data["counts"].dtype == np.uint8 and data["counts"].shape == (4, 2, 34, 34)


def test_changed_source_file_invalidates_its_entry(folder, tmp_path):
    ds = _make(folder, tmp_path, T=4)
    f = folder / "Train" / "0" / "00000.bin"
    ev = read_nmnist(f)[:100]
    write_nmnist(f, ev)
    os.utime(f, ns=(1, 1))
    again = _make(folder, tmp_path, T=4)
    assert again.cache.stats["built"] == 1
    assert float(again[0][0].sum()) == 100
    assert ds.cache.directory == again.cache.directory


def test_corrupt_entry_is_rebuilt(folder, tmp_path):
    ds = _make(folder, tmp_path, T=4)
    entry = ds._entry(3)
    entry.write_bytes(b"not a zip")
    x, _ = ds[3]
    assert ds.cache.stats["rebuilt"] == 1 and float(x.sum()) == 400


def test_raw_events_and_random_transform(folder, tmp_path):
    ev_ds = _make(folder, tmp_path, representation="events")
    ev, y = ev_ds[0]
    np.testing.assert_array_equal(ev, read_nmnist(folder / "Train" / "0" / "00000.bin"))
    assert ev_ds.cache is None
    aug = _make(folder, tmp_path, T=5, dt_ms=10, rcs=True)
    assert aug.frames.split_by == "window" and aug.frame_cache is None
    aug.set_epoch(0)
    a = aug[2][0]
    aug.set_epoch(0)
    np.testing.assert_array_equal(a, aug[2][0])  # same epoch -> same crop
    aug.set_epoch(1)
    assert not torch.equal(a, aug[2][0])
    test = _make(folder, tmp_path, "test", T=5, dt_ms=10, rcs=True)  # rcs is train-only
    assert test.transform is None and test.frame_cache is not None


def test_clips_and_holdout(folder, tmp_path):
    ds = _make(folder, tmp_path, "test", T=3, dt_ms=20, clips=4)
    x, _ = ds[0]
    assert x.shape == (4, 3, 2, 34, 34)
    train = _make(folder, tmp_path, "train", T=3, holdout="accuracy_b", val_ratio=0.25)
    val = _make(folder, tmp_path, "val", T=3, holdout="accuracy_b", val_ratio=0.25)
    assert len(train) == 9 and len(val) == 3 and val.targets.tolist() == [0, 1, 2]


def test_reusable_class_with_custom_sensor(tmp_path):
    root = _write_folder(tmp_path / "N", per_class=(2, 1), classes=2, size=28)
    ds = NMNIST(root, "train", sensor_size=SensorSize(28, 28, 2), name="n_digits",
                frames=FrameSpec(4, ds=2), cache_dir=tmp_path / "c", progress=False)
    assert len(ds) == 4 and ds[0][0].shape == (4, 2, 14, 14)
    assert (tmp_path / "c" / "n_digits").is_dir()
    via = nmnist_dataset(root, "test", name="n_digits", sensor_size=SensorSize(28, 28, 2),
                         T=2, cache_dir=tmp_path / "c", progress=False)
    assert len(via) == 2 and via[1][1] == 1


def test_errors_name_what_is_missing(folder, tmp_path, monkeypatch):
    with pytest.raises(MissingDataError, match=r"found 12 \.bin files, the published split "
                                               r"has 60000"):
        _make(folder, tmp_path, check_counts=True)
    with pytest.raises(MissingDataError, match=r"(?s)root folder .*nowhere.*Expected layout.*"
                                               r"Train/<class>/\*\.bin.*garrickorchard"):
        _make(tmp_path / "nowhere", tmp_path)
    monkeypatch.delenv("SPIKEFLOW_NMNIST", raising=False)
    monkeypatch.delenv("SPIKEFLOW_DATA", raising=False)
    with pytest.raises(MissingDataError, match="no root given"):
        create_dataset("nmnist", None, "train")
    monkeypatch.setenv("SPIKEFLOW_NMNIST", str(folder))
    assert len(create_dataset("nmnist", None, "test", check_counts=False, T=2,
                              cache_dir=tmp_path / "cache", progress=False)) == 6
    with pytest.raises(ValueError, match="split must be"):
        _make(folder, tmp_path, "valid")
    with pytest.raises(TypeError, match="unexpected keyword"):
        _make(folder, tmp_path, T=2, frobnicate=1)


def test_parallel_first_pass_and_dataloader_workers(folder, tmp_path):
    from torch.utils.data import DataLoader

    from spikeflow.data.event_build import _tasks

    ds = _make(folder, tmp_path, T=3, workers=2)  # 12 samples -> 6 tasks in 2 processes
    assert ds.cache.stats["built"] == 12 and len(_tasks([(s, "") for s in ds.samples], 2)) == 6
    ref = torch.stack([ds[i][0] for i in range(len(ds))])
    batches = list(DataLoader(ds, batch_size=4, num_workers=2))
    assert torch.equal(torch.cat([b[0] for b in batches]), ref)
    assert torch.cat([b[1] for b in batches]).tolist() == ds.targets.tolist()


def test_pickled_dataset_drops_opened_source(folder, tmp_path):
    import pickle

    ds = _make(folder, tmp_path, representation="events")
    ds[0]
    assert ds._opened is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._opened is None and len(clone) == 12
    np.testing.assert_array_equal(clone[3][0], ds[3][0])
