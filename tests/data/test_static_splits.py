"""Splits: accuracy-B per-class rule, torch random_split parity, atomic save/load, Subset."""
import math

import numpy as np
import pytest
import torch

from spikeflow.data.splits import (SubsetDataset, accuracy_b_split, load_split, make_split,
                                   random_split_indices, save_split)


def test_accuracy_b_rule(rng):
    y = rng.integers(0, 4, 103)
    s = accuracy_b_split(y, 0.15)
    for c in range(4):
        idx = np.flatnonzero(y == c)
        k = math.ceil(0.85 * idx.size)
        assert set(s.train[y[s.train] == c].tolist()) == set(idx[:k].tolist())
        assert set(s.val[y[s.val] == c].tolist()) == set(idx[k:].tolist())


def test_accuracy_b_sizes_of_the_paper():
    # PLIF logs: F-MNIST 51000/9000 (6000 per class), CIFAR10 42500/7500
    s = accuracy_b_split(np.repeat(np.arange(10), 6000))
    assert (s.train.size, s.val.size) == (51000, 9000)
    s = accuracy_b_split(np.tile(np.arange(10), 5000))
    assert (s.train.size, s.val.size) == (42500, 7500)


def test_random_split_matches_torch():
    s = random_split_indices(1000, 200, seed=42)
    a, b = torch.utils.data.random_split(range(1000), [800, 200], generator=torch.Generator().manual_seed(42))
    assert s.train.tolist() == list(a.indices) and s.val.tolist() == list(b.indices)
    assert make_split("random", np.zeros(1000), val_ratio=0.2).val.tolist() == list(b.indices)


def test_save_load_round_trip(tmp_path):
    s = make_split("accuracy_b", np.arange(50) % 3)
    save_split(tmp_path / "r" / "split.json", s)
    t = load_split(tmp_path / "r" / "split.json")
    assert np.array_equal(s.train, t.train) and np.array_equal(s.val, t.val) and t.n == 50
    assert t.meta["kind"] == "accuracy_b"
    assert not list((tmp_path / "r").glob(".*tmp*"))


def test_load_rejects_bad_files(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(ValueError, match="a.json"):
        load_split(tmp_path / "a.json")
    (tmp_path / "b.json").write_text('{"n": 3, "train": [0, 1], "val": [1]}')
    with pytest.raises(ValueError, match="distinct"):
        load_split(tmp_path / "b.json")
    with pytest.raises(ValueError, match="unknown holdout"):
        make_split("kfold", [0, 1])


class _DS:
    targets = np.array([5, 6, 7, 8])
    classes = ["a"]

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return i * 10, int(self.targets[i])


def test_subset():
    sub = SubsetDataset(_DS(), [3, 1])
    assert len(sub) == 2 and sub[0] == (30, 8) and sub.targets.tolist() == [8, 6] and sub.classes == ["a"]
    with pytest.raises(IndexError):
        SubsetDataset(_DS(), [4])


def test_random_split_matches_snn_iir_gesture_split():
    # snn-iir: random_split(train, [928, 128], generator=Generator().manual_seed(42)) of 1056 samples
    s = random_split_indices(1056, 128, seed=42)
    a, b = torch.utils.data.random_split(range(1056), [928, 128], generator=torch.Generator().manual_seed(42))
    assert s.indices("train").tolist() == list(a.indices) and s.indices("val").tolist() == list(b.indices)
