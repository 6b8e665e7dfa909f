"""Unsorted events give the frames/transforms of the sorted stream; Tonic arrays in and out."""
from __future__ import annotations

import numpy as np
import pytest

from spikeflow.events import (EVENT_DTYPE, SensorSize, from_tonic, is_time_sorted, make_events,
                              sort_events, to_frames, to_tonic, transforms)
from spikeflow.events.frames import FrameSpec
from spikeflow.events.functional.bins import frame_slices

SENSOR = SensorSize(12, 9, 2)


def stream(n: int = 400, seed: int = 0, unique: bool = True) -> np.ndarray:
    g = np.random.default_rng(seed)
    t = np.sort(g.choice(50_000, n, replace=False)) if unique else np.sort(g.integers(0, 500, n))
    return make_events(g.integers(0, SENSOR.width, n), g.integers(0, SENSOR.height, n), t,
                       g.integers(0, 2, n))


def shuffled(ev: np.ndarray, seed: int = 1) -> np.ndarray:
    out = ev[np.random.default_rng(seed).permutation(len(ev))]
    assert not is_time_sorted(out["t"])
    return out


@pytest.mark.parametrize("split_by,extra", [("number", {}), ("time", {}), ("iir", {}),
                                            ("window", {"window_us": 7000})])
def test_to_frames_of_shuffled_events_equal_the_sorted_frames(split_by, extra):
    ev = stream()
    mixed = shuffled(ev)
    before = mixed.copy()
    want = to_frames(ev, SENSOR, 7, split_by, **extra)
    assert want.sum() > 0
    np.testing.assert_array_equal(to_frames(mixed, SENSOR, 7, split_by, **extra), want)
    assert (mixed == before).all()  # the input is not sorted in place


def test_sort_is_stable_and_frame_slices_refuses_unsorted_t():
    ev = make_events([0, 1, 2, 3], [0, 0, 0, 0], [5, 5, 5, 5], [0, 1, 0, 1])
    assert sort_events(ev) is ev                             # sorted input: no copy
    tied = ev[[2, 0, 3, 1]]
    tied["t"][0] = 9                                         # x=2 moves to the end
    assert sort_events(tied)["x"].tolist() == [0, 3, 1, 2]  # ties keep their input order
    with pytest.raises(ValueError, match="must be sorted"):
        frame_slices(np.array([0, 5, 3]), 2, "number")


def _transforms():
    spec = FrameSpec(5, "number")
    return [
        transforms.TimeWindow(10_000, 30_000), transforms.RandomConsecutiveSlice(8_000),
        transforms.MultiClip(3, 9_000), transforms.TimeJitter(300.0),
        transforms.EventDrop(SENSOR), transforms.DropByTime(0.3), transforms.DropByArea(SENSOR, 0.5),
        transforms.RandomDrop(0.4), transforms.SpatialJitter(SENSOR, 1.0, 1.0),
        transforms.RandomCrop(SENSOR, (8, 6)), transforms.RandomFlipLR(SENSOR, p=1.0),
        transforms.Denoise(SENSOR, 3_000), transforms.ToFrames(SENSOR, spec),
        transforms.Compose((transforms.RandomFlipLR(SENSOR, p=1.0), transforms.ToFrames(SENSOR, spec))),
    ]


@pytest.mark.parametrize("t", _transforms(), ids=lambda t: type(t).__name__)
def test_every_transform_treats_shuffled_events_as_sorted(t):
    ev = stream(600, seed=2)
    for seed in range(3):
        want = t(ev, np.random.default_rng(seed))
        got = t(shuffled(ev, seed + 5), np.random.default_rng(seed))
        for w, g in zip(want if isinstance(want, list) else [want], got if isinstance(got, list) else [got]):
            if w.dtype == EVENT_DTYPE:
                assert is_time_sorted(g["t"])
            np.testing.assert_array_equal(g, w)


def test_tonic_round_trip_dtypes_and_polarity_conventions():
    ev = stream(50)
    tn = to_tonic(ev)
    assert tn.dtype.names == ("x", "y", "t", "p") and tn.dtype["t"] == np.int64
    back, sensor = from_tonic(tn, tuple(SENSOR))
    assert sensor == SENSOR and isinstance(sensor, tuple) and back.dtype == EVENT_DTYPE
    np.testing.assert_array_equal(back, ev)
    gesture = [("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)]   # tonic DVSGesture
    g = to_tonic(ev, gesture)
    assert g.dtype.names == ("x", "y", "p", "t") and g["p"].tolist() == ev["p"].astype(bool).tolist()
    np.testing.assert_array_equal(from_tonic(g, SENSOR)[0], ev)
    signed = to_tonic(ev)
    signed["p"] = 2 * signed["p"] - 1                                            # -1/+1 polarities
    np.testing.assert_array_equal(from_tonic(signed[::-1], SENSOR)[0], ev)      # and re-sorted
    floats = np.zeros(3, dtype=[("x", float), ("y", float), ("t", float), ("p", float)])
    floats["t"] = [3.0, 1.0, 2.0]
    assert from_tonic(floats, (1, 1, 1))[0]["t"].tolist() == [1, 2, 3]
    audio = np.zeros(2, dtype=[("x", int), ("t", int), ("p", int)])              # tonic SHD: no y
    audio["x"], audio["t"] = [699, 3], [0, 5]
    out, s = from_tonic(audio, (700, 1, 1))
    assert out["y"].tolist() == [0, 0] and s == (700, 1, 1)


def test_from_tonic_errors_name_the_field():
    tn = to_tonic(stream(20))
    with pytest.raises(ValueError, match=r"x=.* outside the sensor_size \(5, 9, 2\)"):
        from_tonic(tn, (5, 9, 2))
    floats = np.zeros(1, dtype=[("x", int), ("y", int), ("t", float), ("p", int)])
    floats["t"] = 0.5
    with pytest.raises(ValueError, match="'t' holds non-integer values"):
        from_tonic(floats, (1, 1, 2))
    with pytest.raises(ValueError, match=r"missing \['y'\]"):
        from_tonic(np.zeros(1, dtype=[("x", int), ("t", int), ("p", int)]), (4, 4, 2))
    with pytest.raises(ValueError, match="positive ints"):
        from_tonic(tn, (12, 9))
    with pytest.raises(ValueError, match="-1/\\+1"):
        bad = tn.copy()
        bad["p"][0] = -2
        from_tonic(bad, SENSOR)


def test_frames_equal_tonic_to_frame_where_the_semantics_match():
    tonic = pytest.importorskip("tonic")
    ev = stream(420, seed=3)
    tn = to_tonic(ev)
    span = int(ev["t"][-1] - ev["t"][0])
    # tonic n_time_bins=M: M bins of (t_last - t_first) // M from the first event (last events
    # past M bins dropped) = spikeflow split_by="window" with that window
    ours = to_frames(ev, SENSOR, 6, "window", window_us=span // 6)
    theirs = tonic.transforms.ToFrame(sensor_size=SENSOR, n_time_bins=6)(tn.copy())
    np.testing.assert_array_equal(ours, theirs)
    # tonic n_event_bins=M: M bins of N // M events = spikeflow "number" when M divides N
    theirs = tonic.transforms.ToFrame(sensor_size=SENSOR, n_event_bins=7)(tn.copy())
    np.testing.assert_array_equal(to_frames(ev, SENSOR, 7, "number"), theirs)
    # tonic time_window=W: floor((span - W) / W) + 1 windows of W us from the first event
    theirs = tonic.transforms.ToFrame(sensor_size=SENSOR, time_window=9_000)(tn.copy())
    n = (span - 9_000) // 9_000 + 1
    np.testing.assert_array_equal(to_frames(ev, SENSOR, n, "window", window_us=9_000), theirs)
    # the converted array round-trips through tonic's own dtype unchanged
    np.testing.assert_array_equal(from_tonic(tn, SENSOR)[0], ev)
