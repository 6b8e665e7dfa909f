"""assoc_memory: shapes, lattice sparsity, target construction, corruption statistics, seeding."""
import numpy as np
import pytest
import torch

import spikeflow as sf
from spikeflow.data.assoc_memory import (corrupt, delayed_filtered_targets, lattice_mask, make_patterns)


def test_shapes_and_classes():
    ds = sf.data.create_dataset("assoc_memory", split="train")
    assert len(ds) == 1000 and ds.targets[:12].tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    x, y = ds[13]
    assert x.shape == (300, 300) and y.shape == (300, 300) and x.dtype == y.dtype == torch.float32
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(y, torch.from_numpy(ds.filtered[3]))


def test_lattice_and_pattern_sparsity():
    m = lattice_mask(300)
    assert m.mean() == pytest.approx(1 / 15, abs=1e-3)
    assert m[:, 1:5].sum() == 0 and m[:, 0].nonzero()[0][:3].tolist() == [0, 3, 6]
    assert m[:, 5].nonzero()[0][:3].tolist() == [1, 4, 7]  # offset shifts by one per active column
    p = make_patterns(300)
    assert p.shape == (10, 300, 300) and set(np.unique(p).tolist()) == {0.0, 1.0}
    assert np.all(p <= m[None])
    density = p.mean(axis=(1, 2))
    assert np.all((density > 0.01) & (density < 0.04))
    flat = p.reshape(10, -1)
    overlap = (flat @ flat.T) / np.sqrt(np.outer(flat.sum(1), flat.sum(1)))
    assert np.all(overlap[~np.eye(10, dtype=bool)] < 0.9)  # ten distinct patterns


def test_target_is_delayed_dual_exp_filter():
    p = make_patterns(60)
    tgt = delayed_filtered_targets(p)
    assert tgt.shape == (10, 60, 60)
    tm, ts = np.exp(-1 / 8), np.exp(-1 / 2)
    eta = 4.0
    v0 = eta ** (eta / (eta - 1)) / (eta - 1)
    m = s = np.zeros(60)
    for t in range(60):  # snn-iir's filter_spike loop, on the pattern delayed by 4 steps
        x = p[2][:, t - 4] if t >= 4 else np.zeros(60)
        m, s = m * tm + x, s * ts + x
        assert np.allclose(tgt[2][t], (m - s) * v0, atol=1e-6)
    assert np.all(tgt[:, :5] == 0)  # delay 4 + the filter's zero response at the spike step
    one = np.zeros((1, 1, 40), np.float32)
    one[0, 0, 0] = 1
    assert delayed_filtered_targets(one, delay=0)[0, :, 0].max() == pytest.approx(1.0, abs=3e-3)


def test_corruption_statistics():
    rng = np.random.default_rng(0)
    assert corrupt(np.zeros((300, 300), np.float32), rng).mean() == pytest.approx(0.005, abs=5e-4)
    ds = sf.data.create_dataset("assoc_memory", size=60, length=400)
    intact = [bool(torch.all(ds[i][0] >= torch.tensor(ds.patterns[i % 10].T))) for i in range(400)]
    assert 0.55 < np.mean(intact) < 0.77  # 1 - 0.4 * (1 - 0.3 * 0.5) = 0.66


def test_seeding_epochs_and_splits():
    a = sf.data.create_dataset("assoc_memory", size=60, length=50)
    b = sf.data.create_dataset("assoc_memory", size=60, length=50)
    assert all(torch.equal(a[i][0], b[i][0]) for i in range(10))
    b.set_epoch(1)
    assert not all(torch.equal(a[i][0], b[i][0]) for i in range(10))
    t = sf.data.create_dataset("assoc_memory", split="test", size=60, length=50)
    assert not all(torch.equal(a[i][0], t[i][0]) for i in range(10))
    with pytest.raises(ValueError, match="split"):
        sf.data.create_dataset("assoc_memory", split="dev")
    with pytest.raises(TypeError, match="unknown option"):
        sf.data.create_dataset("assoc_memory", T=25)
    with pytest.raises(IndexError):
        a[50]
