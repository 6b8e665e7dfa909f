"""DVS128 Gesture dataset on a generated miniature DvsGesture folder (AEDAT 3.1 + CSV, HDF5)."""
from __future__ import annotations

import numpy as np
import pytest

from spikeflow.data import create_dataset
from spikeflow.data.event_options import MissingDataError
from spikeflow.events import SensorSize, make_events, to_frames
from spikeflow.events.io import read_dvs_gesture_trial, write_aedat3, write_hdf5

SENSOR = SensorSize(128, 128, 2)
TRIALS = {"train": {"user01_led": [(3, 0, 400_000), (3, 500_000, 900_000), (11, 1_000_000, 1_900_000)],
                    "user02_natural": [(1, 100_000, 600_000), (5, 600_000, 1_200_000)]},
          "test": {"user24_led": [(2, 0, 700_000), (10, 800_000, 1_500_000)]}}


def _write(root, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for split, trials in TRIALS.items():
        (root / f"trials_to_{split}.txt").write_text("".join(f"{n}.aedat\n" for n in trials))
        for name, rows in trials.items():
            n = 6000
            ev = make_events(rng.integers(0, 128, n), rng.integers(0, 128, n),
                             np.sort(rng.integers(0, 2_000_000, n)), rng.integers(0, 2, n))
            write_aedat3(root / f"{name}.aedat", ev)
            (root / f"{name}_labels.csv").write_text(
                "class,startTime_usec,endTime_usec\r\n"
                + "".join(f"{c},{s},{e}\r\n" for c, s, e in rows))
    return root


@pytest.fixture
def folder(tmp_path):
    return _write(tmp_path / "DvsGesture")


def _make(folder, tmp_path, split="train", **kw):
    kw.setdefault("check_counts", False)
    kw.setdefault("progress", False)
    return create_dataset("dvs_gesture", folder, split, cache_dir=tmp_path / "cache", **kw)


def test_every_csv_row_is_a_sample(folder, tmp_path):
    ds = _make(folder, tmp_path, T=4, ds=4)
    assert len(ds) == 5 and ds.targets.tolist() == [2, 2, 10, 0, 4]
    assert ds.classes[0] == "hand_clapping" and ds.frame_shape() == (4, 2, 32, 32)
    trial = read_dvs_gesture_trial(folder / "user01_led.aedat")
    for i, (ev, label) in enumerate(trial):
        x, y = ds[i]
        assert y == label
        np.testing.assert_array_equal(x.numpy(), to_frames(ev, SENSOR, 4, ds=4))
    test = _make(folder, tmp_path, "test", T=4)
    assert len(test) == 2 and test.targets.tolist() == [1, 9]
    assert test.split_manifest()["samples"] == ["user24_led#0", "user24_led#1"]
    assert ds.cache.stats["built"] == 5
    assert _make(folder, tmp_path, T=4, ds=4).cache.stats["built"] == 0  # reused


def test_parent_folder_and_published_counts(folder, tmp_path):
    assert len(_make(folder.parent, tmp_path, T=2)) == 5  # root may be the parent of DvsGesture
    with pytest.raises(MissingDataError, match="5 samples found, the published split has 1176"):
        _make(folder, tmp_path, T=2, check_counts=True)


def test_rcs_uses_the_event_cache(folder, tmp_path):
    ds = _make(folder, tmp_path, T=5, dt_ms=20, ds=4, rcs=True, event_drop=True)
    assert ds.frame_cache is None and ds.event_cache is not None
    assert ds.event_cache.stats["built"] == 5
    ds.set_epoch(3)
    x, _ = ds[0]
    assert x.shape == (5, 2, 32, 32) and 0 < float(x.sum()) <= 6000
    np.testing.assert_array_equal(ds.events(0), read_dvs_gesture_trial(
        folder / "user01_led.aedat")[0][0])
    again = _make(folder, tmp_path, T=5, dt_ms=20, ds=4, rcs=True)
    assert again.event_cache.stats["built"] == 0


def test_asa_multi_clip_test_items(folder, tmp_path):
    ds = _make(folder, tmp_path, "test", T=6, dt_ms=15, ds=4, clips=3)
    x, y = ds[1]
    assert x.shape == (3, 6, 2, 32, 32) and y == 9


def test_missing_files_are_listed(folder, tmp_path):
    (folder / "user02_natural_labels.csv").unlink()
    with pytest.raises(MissingDataError, match=r"(?s)user02_natural_labels\.csv.*Expected layout"
                                               r".*trials_to_train\.txt.*ibm"):
        _make(folder, tmp_path)


def test_hdf5_layout(tmp_path):
    rng = np.random.default_rng(1)
    for split, labels in (("train", [0, 5, 10]), ("test", [3])):
        (tmp_path / "h5" / split).mkdir(parents=True)
        for i, lab in enumerate(labels):
            ev = make_events(rng.integers(0, 128, 300), rng.integers(0, 128, 300),
                             np.sort(rng.integers(0, 10**6, 300)), rng.integers(0, 2, 300))
            write_hdf5(tmp_path / "h5" / split / f"{i}.hdf5", ev, label=lab)
    ds = _make(tmp_path / "h5", tmp_path, layout="hdf5", T=3)
    assert len(ds) == 3 and ds.targets.tolist() == [0, 5, 10] and ds[2][0].shape == (3, 2, 128, 128)
