"""CIFAR10-DVS on a generated miniature folder: orientation, per-class split, manifest, counts."""
from __future__ import annotations

import json

import numpy as np
import pytest

from spikeflow.data import create_dataset
from spikeflow.data.cifar10_dvs import CLASSES, orient_cifar10_dvs
from spikeflow.data.event_options import MissingDataError
from spikeflow.events import SensorSize, make_events, to_frames
from spikeflow.events.io import read_aedat2, write_aedat2


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "CIFAR10DVS"
    for cls in CLASSES:
        (root / cls).mkdir(parents=True)
        for i in (0, 1, 2, 10):  # index >= test_start (3) -> test; 10 sorts numerically
            ev = make_events(rng.integers(0, 128, 300), rng.integers(0, 128, 300),
                             np.sort(rng.integers(0, 10**6, 300)), rng.integers(0, 2, 300))
            write_aedat2(root / cls / f"cifar10_{cls}_{i}.aedat", ev)
    return root


def _make(folder, tmp_path, split="train", **kw):
    kw.setdefault("check_counts", False)
    kw.setdefault("progress", False)
    kw.setdefault("test_start", 3)
    return create_dataset("cifar10_dvs", folder, split, cache_dir=tmp_path / "cache", **kw)


def test_orientation_known_answer():
    raw = make_events([0, 127], [5, 0], [1, 2], [0, 1])
    out = orient_cifar10_dvs(raw)
    assert out.tolist() == [(122, 127, 1, 1), (127, 0, 2, 0)]
    np.testing.assert_array_equal(orient_cifar10_dvs(out), raw)


def test_split_lengths_labels_and_frames(folder, tmp_path):
    train, test = _make(folder, tmp_path, T=4), _make(folder, tmp_path, "test", T=4)
    assert len(train) == 30 and len(test) == 10
    assert train.targets.tolist() == sorted(list(range(10)) * 3)
    assert train.split_manifest()["samples"][:3] == [
        "airplane/cifar10_airplane_0.aedat", "airplane/cifar10_airplane_1.aedat",
        "airplane/cifar10_airplane_2.aedat"]
    assert test.split_manifest()["samples"][0] == "airplane/cifar10_airplane_10.aedat"
    x, y = train[4]
    assert y == 1 and x.shape == (4, 2, 128, 128)
    ev = orient_cifar10_dvs(read_aedat2(folder / "automobile" / "cifar10_automobile_1.aedat"))
    np.testing.assert_array_equal(x.numpy(), to_frames(ev, SensorSize(128, 128, 2), 4))
    raw = _make(folder, tmp_path, T=4, orientation="raw")
    assert raw.cache.directory != train.cache.directory  # orientation is part of the cache key
    path = test.save_split_manifest(tmp_path / "run" / "split_test.json")
    doc = json.loads(path.read_text())
    assert doc["n"] == 10 and "index < 3" in doc["rule"]


def test_counts_checked(folder, tmp_path):
    with pytest.raises(MissingDataError, match=r"cifar10_airplane_3\.aedat"):
        _make(folder, tmp_path, check_counts=True)
    (folder / "truck").rename(folder / "lorry")
    with pytest.raises(MissingDataError, match=r"(?s)truck.*figshare"):
        _make(folder, tmp_path)
