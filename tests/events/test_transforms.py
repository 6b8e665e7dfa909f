"""Augmentation functions and transforms: exact rules, no mutation, explicit randomness."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from spikeflow.events import FrameSpec, SensorSize, make_events
from spikeflow.events import transforms as T
from spikeflow.events.functional import drop, spatial, temporal

SENSOR = SensorSize(20, 10, 2)


def _events(rng, n=2000, sensor=SENSOR, t_max=1_000_000):
    return make_events(rng.integers(0, sensor.width, n), rng.integers(0, sensor.height, n),
                       np.sort(rng.integers(0, t_max, n)), rng.integers(0, 2, n))


ALL = [
    T.RandomConsecutiveSlice(300_000), T.MultiClip(3, 200_000), T.TimeJitter(50.0),
    T.EventDrop(SENSOR), T.DropByTime(0.3), T.DropByArea(SENSOR, 0.5), T.RandomDrop(0.5),
    T.SpatialJitter(SENSOR, 1.5, 1.5), T.RandomCrop(SENSOR, (8, 6)), T.RandomFlipLR(SENSOR, 1.0),
    T.Denoise(SENSOR, 5000), T.TimeWindow(100, 900_000), T.ToFrames(SENSOR, FrameSpec(4)),
    T.Compose((T.RandomConsecutiveSlice(500_000), T.RandomFlipLR(SENSOR))),
]


@pytest.mark.parametrize("tf", ALL, ids=lambda t: type(t).__name__)
def test_transforms_never_mutate_input_or_self(rng, tf):
    ev = _events(rng)
    before, state = ev.copy(), dataclasses.astuple(tf)
    out1 = tf(ev, np.random.default_rng(7))
    out2 = tf(ev, np.random.default_rng(7))
    np.testing.assert_array_equal(ev, before)
    assert dataclasses.astuple(tf) == state
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(tf, dataclasses.fields(tf)[0].name, None)
    # same generator seed -> same result (explicit randomness only)
    for a, b in zip(out1 if isinstance(out1, list) else [out1],
                    out2 if isinstance(out2, list) else [out2]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("tf", [t for t in ALL if type(t).__name__ in {
    "RandomConsecutiveSlice", "TimeJitter", "EventDrop", "RandomDrop", "RandomCrop",
    "SpatialJitter", "RandomFlipLR", "DropByTime", "DropByArea", "Compose"}],
    ids=lambda t: type(t).__name__)
def test_random_transforms_require_a_generator(rng, tf):
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        tf(_events(rng))


def test_rcs_window_bounds(rng):
    ev = _events(rng, t_max=10_000_000)
    starts = set()
    for seed in range(20):
        out = temporal.random_consecutive_slice(ev, 900_000, np.random.default_rng(seed))
        s = out["t"][0]
        assert out["t"][-1] - s < 900_000 and ev["t"][0] <= s
        starts.add(int(s))
    assert len(starts) > 10
    short = ev[ev["t"] < 500_000]
    np.testing.assert_array_equal(
        temporal.random_consecutive_slice(short, 900_000, np.random.default_rng(0)), short)


def test_clip_windows_follow_asa_formula():
    # gaps: D = 1000, n = 3, L = 200 -> gap = floor((1000 - 600) / 3) = 133 -> starts 0, 333, 666
    assert temporal.clip_windows(0, 1000, 3, 200).tolist() == [[0, 200], [333, 533], [666, 866]]
    # overlap: D = 500, n = 4, L = 200 -> o = floor(300 / 4) = 75 -> 0, 125, 250, 375 -> 300
    w = temporal.clip_windows(1000, 1500, 4, 200)
    assert w[:, 0].tolist() == [1000, 1125, 1250, 1300]
    assert (w[:, 1] - w[:, 0] == 200).all()


def test_multi_clip_slices(rng):
    ev = _events(rng)
    clips = temporal.multi_clip(ev, 4, 100_000)
    windows = temporal.clip_windows(ev["t"][0], ev["t"][-1], 4, 100_000)
    for c, (s, e) in zip(clips, windows):
        np.testing.assert_array_equal(c, ev[(ev["t"] >= s) & (ev["t"] < e)])


def test_drop_by_area_removes_a_box_only():
    ev = make_events(np.repeat(np.arange(20), 10), np.tile(np.arange(10), 20),
                     np.arange(200), np.zeros(200, int))
    out = drop.drop_by_area(ev, SENSOR, np.random.default_rng(3), area_ratio=0.5)
    gone = ev[~np.isin(ev["t"], out["t"])]
    assert 0 < len(gone) <= 10 * 5
    xs, ys = np.unique(gone["x"]), np.unique(gone["y"])
    assert len(gone) == len(xs) * len(ys)  # a full rectangle
    assert np.all(np.diff(xs) == 1) and np.all(np.diff(ys) == 1)


def test_drop_by_time_and_random_drop_counts(rng):
    ev = _events(rng)
    out = drop.random_drop(ev, np.random.default_rng(0), 0.3)
    assert len(out) == len(ev) - int(len(ev) * 0.3) and np.all(np.diff(out["t"]) >= 0)
    out = drop.drop_by_time(ev, np.random.default_rng(0), 0.25)
    gone = np.setdiff1d(np.arange(len(ev)), np.flatnonzero(np.isin(ev, out)))
    span = ev["t"][-1] - ev["t"][0]
    if len(gone):
        assert ev["t"][gone].max() - ev["t"][gone].min() <= 0.25 * span
    assert len(drop.event_drop(ev[:1], SENSOR, np.random.default_rng(1))) == 1  # never empty


def _denoise_reference(ev, sensor, filter_time):
    last = np.full((sensor.height, sensor.width), -(10**18), dtype=np.int64)
    keep = []
    for e in ev:
        x, y, t = int(e["x"]), int(e["y"]), int(e["t"])
        ok = False
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            qx, qy = x + dx, y + dy
            if 0 <= qx < sensor.width and 0 <= qy < sensor.height and t - last[qy, qx] < filter_time:
                ok = True
        keep.append(ok)
        last[y, x] = t
    return ev[np.array(keep, dtype=bool)]


def test_denoise_matches_per_event_loop(rng):
    ev = _events(rng, n=3000, t_max=300_000)
    np.testing.assert_array_equal(spatial.denoise(ev, SENSOR, 2000),
                                  _denoise_reference(ev, SENSOR, 2000))


def test_spatial_jitter_crop_and_flip(rng):
    ev = _events(rng)
    out = spatial.spatial_jitter(ev, SENSOR, 2.0, 2.0, np.random.default_rng(0))
    assert out["x"].max() < 20 and out["y"].max() < 10 and out["x"].min() >= 0
    assert len(out) < len(ev)  # border events fell off
    clamped = spatial.spatial_jitter(ev, SENSOR, 2.0, 2.0, np.random.default_rng(0), True)
    assert len(clamped) == len(ev)
    crop = T.RandomCrop(SENSOR, (8, 6))
    assert T.out_sensor(crop, SENSOR) == SensorSize(8, 6, 2)
    c = crop(ev, np.random.default_rng(1))
    assert c["x"].max() < 8 and c["y"].max() < 6
    np.testing.assert_array_equal(spatial.flip_lr(spatial.flip_lr(ev, SENSOR), SENSOR), ev)


def test_to_frames_transform_handles_clips(rng):
    ev = _events(rng)
    tf = T.Compose((T.MultiClip(3, 200_000),
                    T.ToFrames(SENSOR, FrameSpec(5, "window", window_us=40_000))))
    fr = tf(ev)
    assert fr.shape == (3, 5, 2, 10, 20) and fr.dtype == np.float32
