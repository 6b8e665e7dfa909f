"""DCLL's random training windows (the loader He et al. 2020 used), transcribed from
``compute_start_time``: ``start = randint(t_begin, t_end - 2 T dt)``, window ``[start, start + T dt)``."""
from __future__ import annotations

import numpy as np
import pytest

from spikeflow.data.event_options import build_transform
from spikeflow.events import FrameSpec, SensorSize, make_events
from spikeflow.events import transforms as T
from spikeflow.events.functional.temporal import random_window_start


def _events(n: int = 500) -> np.ndarray:
    rng = np.random.default_rng(0)
    return make_events(rng.integers(0, 8, n), rng.integers(0, 8, n), np.sort(rng.integers(1_000, 90_000, n)),
                       rng.integers(0, 2, n))


def test_matches_the_dcll_rule() -> None:
    ev = _events()
    t0, t1 = int(ev["t"][0]), int(ev["t"][-1])
    length, pad = 10_000, 20_000
    for seed in range(20):
        start = np.random.default_rng(seed).integers(t0, t1 - pad)   # numpy randint: high excluded
        want = ev[(ev["t"] >= start) & (ev["t"] < start + length)]
        got = random_window_start(ev, length, pad, np.random.default_rng(seed))
        np.testing.assert_array_equal(got, want)
        same = T.RandomWindowStart(length, pad)(ev, np.random.default_rng(seed))
        np.testing.assert_array_equal(same, want)
    starts = [random_window_start(ev, 1, pad, np.random.default_rng(s))["t"] for s in range(200)]
    assert all(len(s) == 0 or s[0] < t1 - pad for s in starts)
    short = random_window_start(ev, length, t1 - t0, np.random.default_rng(0))   # no room: from t_first
    assert short["t"][0] == t0 and short["t"][-1] < t0 + length
    with pytest.raises(ValueError, match="length_us"):
        random_window_start(ev, 0, pad, np.random.default_rng(0))


def test_random_start_option_builds_the_dcll_window_on_train_only() -> None:
    sensor, spec = SensorSize(8, 8, 2), FrameSpec(4, split_by="window", window_us=1000)
    assert build_transform("train", sensor, spec, random_start=True) == T.RandomWindowStart(4000, 8000)
    assert build_transform("test", sensor, spec, random_start=True) is None
    with pytest.raises(ValueError, match="choose one"):
        build_transform("train", sensor, spec, random_start=True, rcs=True)
    with pytest.raises(ValueError, match="window frames"):
        build_transform("train", sensor, FrameSpec(4, split_by="number"), random_start=True)


def test_random_start_is_a_dataset_option() -> None:
    from spikeflow.data.event_dataset import event_kwargs

    kw = event_kwargs(SensorSize(8, 8, 2), "train", {"T": 4, "dt_ms": 1, "random_start": True}, default_T=8)
    assert kw["transform"] == T.RandomWindowStart(4000, 8000) and "random_start" not in kw
