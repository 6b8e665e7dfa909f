"""DVS128-Gait (ASA npy layout) and DailyAction-DVS (AEDAT 2.0 DAVIS) on generated folders."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeflow.data import create_dataset
from spikeflow.data.daily_action_dvs import ACTIONS
from spikeflow.data.event_options import MissingDataError
from spikeflow.events import SensorSize, make_events, to_frames
from spikeflow.events.io import write_aedat2


def _gait_folder(root, rng):
    for split, n in (("train", 5), ("test", 2)):
        (root / split).mkdir(parents=True)
        data = np.empty(n, dtype=object)
        for i in range(n):
            k = 200 + 10 * i
            data[i] = np.stack([np.sort(rng.integers(0, 10**6, k)), rng.integers(0, 128, k),
                                rng.integers(0, 128, k), rng.integers(0, 2, k)], 1)
        np.save(root / split / f"{split}_data.npy", data, allow_pickle=True)
        np.save(root / split / f"{split}_target.npy", np.arange(n) % 20)
    return root


def test_dvs_gait(tmp_path):
    root = _gait_folder(tmp_path / "gait", np.random.default_rng(0))
    ds = create_dataset("dvs_gait", root, "train", T=6, dt_ms=15, ds=4,
                        cache_dir=tmp_path / "c", progress=False)
    assert len(ds) == 5 and ds.targets.tolist() == [0, 1, 2, 3, 4]
    x, y = ds[3]
    arr = np.load(root / "train" / "train_data.npy", allow_pickle=True)[3]
    ev = make_events(arr[:, 1], arr[:, 2], arr[:, 0], arr[:, 3])
    np.testing.assert_array_equal(
        x.numpy(), to_frames(ev, SensorSize(128, 128, 2), 6, split_by="window", window_us=15_000,
                             ds=4))
    assert y == 3 and ds.cache.stats["built"] == 5
    aug = create_dataset("dvs_gait", root, "train", T=6, dt_ms=15, ds=4, rcs=True,
                         event_drop=True, cache_dir=tmp_path / "c", progress=False)
    aug.set_epoch(0)
    assert aug[1][0].shape == (6, 2, 32, 32)
    test = create_dataset("dvs_gait", root, "test", T=6, dt_ms=15, ds=4, clips=3,
                          cache_dir=tmp_path / "c", progress=False)
    assert test[0][0].shape == (3, 6, 2, 32, 32)
    with pytest.raises(MissingDataError, match="test_target.npy"):
        (root / "test" / "test_target.npy").unlink()
        create_dataset("dvs_gait", root, "test", cache_dir=tmp_path / "c")


def test_daily_action_dvs(tmp_path):
    rng = np.random.default_rng(1)
    root = tmp_path / "DailyAction-DVS"
    for a in ACTIONS:
        (root / a).mkdir(parents=True)
        for i in range(3):
            n = 400
            ev = make_events(rng.integers(0, 346, n), rng.integers(0, 260, n),
                             np.sort(rng.integers(0, 10**6, n)), rng.integers(0, 2, n))
            write_aedat2(root / a / f"s{i}.aedat", ev, layout="davis346")
    ds = create_dataset("daily_action_dvs", root, "train", train_per_class=2, check_counts=False,
                        T=4, cache_dir=tmp_path / "c", progress=False)
    test = create_dataset("daily_action_dvs", root, "test", train_per_class=2,
                          check_counts=False, T=4, cache_dir=tmp_path / "c", progress=False)
    assert len(ds) == 24 and len(test) == 12 and test.targets.tolist() == list(range(12))
    x, y = ds[2]
    assert y == 1 and x.shape == (4, 2, 260, 346)  # ASA keeps the DAVIS346 frame size
    from spikeflow.events.io import read_aedat2

    raw = read_aedat2(root / "stand" / "s0.aedat", layout="davis346")
    keep = (raw["x"] < 128) & (raw["y"] < 128)
    assert float(x.sum()) == keep.sum()
    crop = create_dataset("daily_action_dvs", root, "train", train_per_class=2, check_counts=False,
                          T=4, sensor="crop128", cache_dir=tmp_path / "c", progress=False)
    assert torch.equal(crop[2][0], x[:, :, :128, :128]) and float(x[:, :, 128:].sum() + x[..., 128:].sum()) == 0
    # ASA's datasets/action transcribed: xo = 127 - x, yo = y, pol = 1 - p, keep 0 <= xo, yo < 128,
    # counts into [2, 346 // ds, 260 // ds] (x before y); spikeflow's [P, H, W] is its transpose
    one = create_dataset("daily_action_dvs", root, "train", train_per_class=2, check_counts=False,
                         T=1, split_by="number", ds=2, cache_dir=tmp_path / "c", progress=False)
    want = np.zeros((2, 346 // 2, 260 // 2))
    for xr, yr, pr in zip(raw["x"].astype(int), raw["y"].astype(int), raw["p"].astype(int)):
        xo, yo = 127 - xr, yr
        if 0 <= xo < 128 and 0 <= yo < 128:
            want[1 - pr, xo // 2, yo // 2] += 1
    np.testing.assert_array_equal(one[2][0][0].numpy(), want.transpose(0, 2, 1))
    with pytest.raises(ValueError, match="sensor"):
        create_dataset("daily_action_dvs", root, "train", check_counts=False, sensor="vga")
    with pytest.raises(MissingDataError, match="3 .aedat files, expected 120"):
        create_dataset("daily_action_dvs", root, "train", cache_dir=tmp_path / "c")


@pytest.mark.parametrize("column,value,match", [
    (3, -1, r"column 'p': value -1\.0 at index 7 is outside 0\.\.1"),       # -1/+1 polarity
    (1, 70000, r"column 'x': value 70000\.0 at index 7 is outside"),        # wrapped to int16 before
    (0, 12.5, r"column 't': value 12\.5 at index 7 is not a finite whole number"),
    (0, -5, r"event 7 \(file order\) has a negative timestamp")])
def test_dvs_gait_checks_every_value(tmp_path, column, value, match):
    """Gait samples go through the same value checks as the file readers (issue 17 item 6): a
    polarity of -1, an x that does not fit, a fractional or negative t raise, naming the sample."""
    from spikeflow.events.io import from_columns
    from spikeflow.events.types import EventFormatError

    arr = np.stack([np.arange(20) * 100, np.arange(20) % 128, np.arange(20) % 128,
                    np.arange(20) % 2], 1).astype(np.float64)
    assert from_columns(arr, "txyp", "gait#0").size == 20
    arr[7, column] = value
    with pytest.raises(EventFormatError, match=r"gait#0: " + match):
        from_columns(arr, "txyp", "gait#0")
    seconds = np.stack([np.arange(5) * 1e-3, np.zeros(5), np.zeros(5), np.ones(5)], 1)
    assert from_columns(seconds, "txyp", "s", time_scale=1e6)["t"].tolist() == [0, 1000, 2000,
                                                                                 3000, 4000]
