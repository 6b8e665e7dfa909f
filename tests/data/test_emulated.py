"""n_digits / n_fashion_mnist: generated once into the cache, read back through the nmnist class."""
import numpy as np
import pytest

import spikeflow as sf
from spikeflow.data import emulated as EM
from spikeflow.data.digits import digits_split_arrays
from spikeflow.events.emulator import EmulatorConfig, emulate
from spikeflow.events.io import read_nmnist


def test_n_digits_end_to_end(tmp_path, monkeypatch):
    opts = dict(cache_dir=tmp_path, T=5, workers=1, progress=False, precompute=False)
    tr = sf.data.create_dataset("n_digits", split="train", **opts)
    te = sf.data.create_dataset("n_digits", split="test", **opts)
    assert (len(tr), len(te)) == (1438, 359)
    x, y = te[0]
    assert tuple(x.shape) == (5, 2, 20, 20) and y == 0 and float(x.sum()) > 300
    # labels: the digits test split, class by class
    assert np.array_equal(te.targets, np.sort(digits_split_arrays(False)[1]))
    folders = list((tmp_path / "emulated").iterdir())
    assert len(folders) == 1 and (folders[0] / "meta.json").is_file()
    assert not [p for p in (tmp_path / "emulated").iterdir() if p.name.startswith(".")]
    # a file holds exactly the emulator's events for that image (index within the split)
    images, labels = digits_split_arrays(False, 16)
    i = int(np.flatnonzero(labels == 3)[0])
    ev = read_nmnist(folders[0] / "Test" / "3" / f"{i:05d}.bin")
    cfg = EmulatorConfig(sensor_size=(20, 20), threshold=0.3, background=0.2)
    assert np.array_equal(ev, emulate(images[i:i + 1], cfg, ids=[i], stream=1)[0])
    assert 800 < ev.size < 2500
    # second use: no regeneration; another option: another folder
    monkeypatch.setattr(EM, "emulate_dataset", lambda *a, **k: pytest.fail("regenerated"))
    again = sf.data.create_dataset("n_digits", split="val", holdout="accuracy_b", **opts)
    assert len(again) == 1438 - sum(int(np.ceil(0.85 * c)) for c in np.bincount(tr.targets))


def test_n_fashion_mnist_with_small_source(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    fake = {"Train": (rng.integers(0, 256, (20, 28, 28)).astype(np.uint8), np.arange(20) % 10),
            "Test": (rng.integers(0, 256, (10, 28, 28)).astype(np.uint8), np.arange(10))}
    monkeypatch.setitem(EM.SOURCES, "fashion_mnist", lambda root, size: fake)
    ds = sf.data.create_dataset("n_fashion_mnist", split="test", cache_dir=tmp_path, check_counts=False,
                                T=4, workers=1, progress=False, threshold=0.5)
    assert len(ds) == 10 and tuple(ds[0][0].shape) == (4, 2, 34, 34)
    with pytest.raises(FileNotFoundError, match="published split has 10000"):
        sf.data.create_dataset("n_fashion_mnist", split="test", cache_dir=tmp_path, T=4, progress=False,
                               threshold=0.5)


def test_emulate_source_for_cli(tmp_path):
    out = EM.emulate_source("digits", tmp_path / "nd", size=12, workers=1, progress=False,
                            config=EmulatorConfig(sensor_size=(16, 16)))
    assert len(list((out / "Train").rglob("*.bin"))) == 1438 and len(list((out / "Test").rglob("*.bin"))) == 359
    with pytest.raises(ValueError, match="unknown emulation source"):
        EM.emulate_source("cifar10", tmp_path / "x")
    with pytest.raises(ValueError, match="28x28"):
        EM.emulate_source("fashion_mnist", tmp_path / "y", size=16)
