"""mnist / fashion_mnist factories: tiny fixture files, split options, and the real Debian files."""
from pathlib import Path

import numpy as np
import pytest
import torch

import spikeflow as sf
from spikeflow.data import mnist as M
from spikeflow.data.idx import write_idx
from spikeflow.data.splits import load_split


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    """A MNIST folder with 6000/1000 images (pixel (0, 0) = 20 * label); counts patched to match."""
    monkeypatch.setattr(M, "COUNTS", {True: 6000, False: 1000})
    rng = np.random.default_rng(1)
    for train, n in ((True, 6000), (False, 1000)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 0, 0] = labels * 20
        stem_i, stem_l = M.FILES[train]
        write_idx(tmp_path / (stem_i + ".gz"), images)
        write_idx(tmp_path / stem_l, labels)  # raw (not gzipped) also accepted
    return tmp_path


def test_mnist_items_and_normalisation(fake_root):
    ds = sf.data.create_dataset("mnist", root=fake_root, split="test", augment=False)
    x, y = ds[3]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and isinstance(y, int)
    assert torch.allclose(x[0, 0, 0], torch.tensor((y * 20 / 255 - 0.1307) / 0.3081))
    assert torch.allclose(x[0, 5, 5], torch.tensor(-0.1307 / 0.3081))
    raw = sf.data.create_dataset("mnist", root=fake_root, split="test", normalize=False)
    assert float(raw[3][0][0, 0, 0]) == pytest.approx(y * 20 / 255)


def test_mnist_holdouts_and_saved_split(fake_root, tmp_path):
    tr = sf.data.create_dataset("mnist", root=fake_root, split="train", holdout="random", val_size=1000,
                                split_file=tmp_path / "run" / "split.json")
    va = sf.data.create_dataset("mnist", root=fake_root, split="val", holdout="random", val_size=1000,
                                split_file=tmp_path / "run" / "split.json")
    assert (len(tr), len(va)) == (5000, 1000)
    assert not set(tr.indices.tolist()) & set(va.indices.tolist())
    saved = load_split(tmp_path / "run" / "split.json")
    assert np.array_equal(saved.val, va.indices)
    ref = torch.utils.data.random_split(range(6000), [5000, 1000], generator=torch.Generator().manual_seed(42))
    assert va.indices.tolist() == list(ref[1].indices)
    b = sf.data.create_dataset("mnist", root=fake_root, split="val", holdout="accuracy_b")
    assert len(b) == 6000 - sum(np.ceil(0.85 * np.bincount(b.dataset.targets)).astype(int))


def test_val_without_holdout_and_bad_split(fake_root):
    with pytest.raises(ValueError, match="holdout"):
        sf.data.create_dataset("mnist", root=fake_root, split="val")
    with pytest.raises(ValueError, match="split must be"):
        sf.data.create_dataset("mnist", root=fake_root, split="dev")


def test_missing_files_message(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"t10k-images-idx3-ubyte\[\.gz\].*root="):
        sf.data.create_dataset("mnist", root=tmp_path, split="test")


def test_wrong_count_is_reported(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(ValueError, match="expected 10000 images"):
        sf.data.create_dataset("mnist", root=tmp_path, split="test")


def test_fashion_md5_mismatch(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10000, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(10000, np.uint8))
    with pytest.raises(ValueError, match="MD5"):
        sf.data.create_dataset("fashion_mnist", root=tmp_path, split="test")
    ok = sf.data.create_dataset("fashion_mnist", root=tmp_path, split="test", verify=False)
    assert len(ok) == 10000


@pytest.mark.skipif(not M.DEBIAN_FASHION_MNIST.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("SPIKEFLOW_FASHION_MNIST", raising=False)
    tr = sf.data.create_dataset("fashion_mnist", split="train")
    te = sf.data.create_dataset("fashion_mnist", split="test", normalize=False)
    assert (len(tr), len(te)) == (60000, 10000)
    assert tr.targets[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert te.targets[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    assert np.bincount(tr.targets).tolist() == [6000] * 10
    assert float(tr.images.mean()) == pytest.approx(72.94, abs=0.01)
    assert te[0][0].shape == (1, 28, 28) and 0.0 <= float(te[0][0].min()) <= float(te[0][0].max()) <= 1.0
    val = sf.data.create_dataset("fashion_mnist", split="val", holdout="accuracy_b")
    assert len(val) == 9000
