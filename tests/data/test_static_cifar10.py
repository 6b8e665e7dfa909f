"""cifar10: pickled batches read by the restricted unpickler; malicious pickles are refused."""
import os
import pickle

import numpy as np
import pytest
import torch

import spikeflow as sf
from spikeflow.data import cifar10 as C
from spikeflow.data.cifar10 import TEST_FILES, TRAIN_FILES, read_batch, safe_load


def _write_batch(path, n, seed, py2_keys=True):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    k = (lambda s: s.encode()) if py2_keys else (lambda s: s)
    obj = {k("batch_label"): b"testing batch", k("labels"): labels, k("data"): data,
           k("filenames"): [b"f%d.png" % i for i in range(n)]}
    path.write_bytes(pickle.dumps(obj, protocol=2))
    return data, labels


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "COUNTS", {True: 500, False: 100})  # small fixture files
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i, name in enumerate(TRAIN_FILES):
        _write_batch(folder / name, 100, i)
    _write_batch(folder / TEST_FILES[0], 100, 9, py2_keys=False)
    return tmp_path


def test_read_batch_layout(tmp_path):
    data, labels = _write_batch(tmp_path / "b", 4, 0)
    images, got = read_batch(tmp_path / "b")
    assert images.shape == (4, 32, 32, 3) and got.tolist() == labels
    # channel-major rows: the first 1024 bytes are the red plane
    assert np.array_equal(images[1, :, :, 0].reshape(-1), data[1, :1024])
    assert np.array_equal(images[1, :, :, 2].reshape(-1), data[1, 2048:])


def test_dataset_items(cifar_root, monkeypatch):
    ds = sf.data.create_dataset("cifar10", root=cifar_root, split="test", normalize=False)
    x, y = ds[0]
    assert len(ds) == 100 and x.shape == (3, 32, 32) and 0 <= y < 10
    tr = sf.data.create_dataset("cifar10", root=cifar_root, split="train", holdout="accuracy_b")
    assert len(tr) + len(sf.data.create_dataset("cifar10", root=cifar_root, split="val",
                                                holdout="accuracy_b")) == 500
    torch.manual_seed(0)
    assert tr[0][0].shape == (3, 32, 32)  # PLIF crop+flip keep the shape
    with monkeypatch.context() as m:
        m.setattr(C, "COUNTS", {True: 50000, False: 10000})
        C._load.cache_clear()
        with pytest.raises(ValueError, match="expected 10000 test images, got 100"):
            sf.data.create_dataset("cifar10", root=cifar_root, split="test")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


class _EvalEvil:
    def __reduce__(self):
        return (eval, ("1+1",))


@pytest.mark.parametrize("payload", [_Evil(), _EvalEvil(), {b"data": _Evil()}])
def test_malicious_pickle_refused(tmp_path, payload):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match=r"data_batch_1.*refusing.*(system|eval)"):
        read_batch(path)


def test_numpy_arrays_allowed_by_safe_load():
    a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    for proto in (2, 4, 5):
        got = safe_load(pickle.dumps({"a": a, "b": [1, "x", b"y"]}, protocol=proto))
        assert np.array_equal(got["a"], a) and got["b"] == [1, "x", b"y"]


def test_bad_content_and_missing(tmp_path):
    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({b"data": [1, 2]}, protocol=2))
    with pytest.raises(ValueError, match="data_batch_1.*uint8"):
        read_batch(tmp_path / "data_batch_1")
    (tmp_path / "data_batch_2").write_bytes(b"\x80\x02}q\x00")  # truncated
    with pytest.raises(ValueError, match="data_batch_2"):
        read_batch(tmp_path / "data_batch_2")
    with pytest.raises(FileNotFoundError, match="(?s)test_batch.*kriz"):  # MissingDataError
        sf.data.create_dataset("cifar10", root=tmp_path / "none", split="test")
