"""Event -> frame integration: invariants, known answers, seed recipes and peer parity."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from spikeflow.events import FrameSpec, SensorSize, integrate, make_events, to_frames
from spikeflow.events.functional import accumulate, accumulate_numpy, frame_slices
from spikeflow.events.functional.normalize import normalize_frames

SENSOR = SensorSize(16, 12, 2)


def _events(rng, n=3000, sensor=SENSOR, t_max=1_000_000):
    return make_events(rng.integers(0, sensor.width, n), rng.integers(0, sensor.height, n),
                       np.sort(rng.integers(0, t_max, n)), rng.integers(0, sensor.polarities, n))


@pytest.mark.parametrize("split_by", ["number", "time"])
def test_sum_conserves_counts_per_polarity(rng, split_by):
    ev = _events(rng)
    fr = to_frames(ev, SENSOR, 7, split_by=split_by)
    assert fr.shape == (7, 2, 12, 16) and fr.dtype == np.float32
    for p in (0, 1):
        assert fr[:, p].sum() == np.count_nonzero(ev["p"] == p)


def test_number_bins_equal_but_last(rng):
    ev = _events(rng, n=1003)
    per_frame = to_frames(ev, SENSOR, 10).sum(axis=(1, 2, 3))
    assert per_frame[:-1].tolist() == [100.0] * 9 and per_frame[-1] == 103


def test_known_answer_pixel_positions():
    ev = make_events(x=[0, 15, 15, 3], y=[0, 11, 11, 2], t=[0, 1, 2, 3], p=[0, 1, 1, 0])
    fr = to_frames(ev, SENSOR, 2)
    expected = np.zeros((2, 2, 12, 16), np.float32)
    expected[0, 0, 0, 0] = 1
    expected[0, 1, 11, 15] = 1
    expected[1, 1, 11, 15] = 1
    expected[1, 0, 2, 3] = 1
    np.testing.assert_array_equal(fr, expected)


def test_time_split_edges():
    t = np.array([0, 5, 9, 10, 19, 20, 29, 31])  # dt = 31 // 3 = 10; last frame takes 30, 31
    ev = make_events(np.zeros(8, int), np.zeros(8, int), t, np.zeros(8, int))
    starts, ends, durations, origin = frame_slices(ev["t"], 3, "time")
    assert starts.tolist() == [0, 3, 5] and ends.tolist() == [3, 5, 8]
    assert durations.tolist() == [10, 10, 11] and origin == 0


def test_window_bins_drop_outside_and_start_time():
    t = np.array([90, 100, 149, 150, 199, 200, 260])
    ev = make_events(np.zeros(7, int), np.zeros(7, int), t, np.zeros(7, int))
    fr = to_frames(ev, SensorSize(1, 1, 1), 2, split_by="window", window_us=50, start_us=100)
    assert fr.reshape(-1).tolist() == [2, 2]
    fr = to_frames(ev, SensorSize(1, 1, 1), 3, split_by="window", window_us=50)  # from t=90
    assert fr.reshape(-1).tolist() == [2, 2, 2]


def test_downsample_merge_and_or(rng):
    ev = _events(rng, sensor=SensorSize(128, 128, 2))
    fr = to_frames(ev, SensorSize(128, 128, 2), 4, ds=4, merge_polarity=True)
    assert fr.shape == (4, 1, 32, 32) and fr.sum() == len(ev)
    ref = to_frames(ev, SensorSize(128, 128, 2), 4).reshape(4, 2, 32, 4, 32, 4).sum((1, 3, 5))
    np.testing.assert_array_equal(fr[:, 0], ref)
    odd = to_frames(ev, SensorSize(128, 128, 2), 4, ds=3)
    assert odd.shape == (4, 2, 43, 43)
    binary = to_frames(ev, SensorSize(128, 128, 2), 4, accumulate="or")
    np.testing.assert_array_equal(binary, (to_frames(ev, SensorSize(128, 128, 2), 4) > 0))


@pytest.mark.parametrize("spec", [
    FrameSpec(5), FrameSpec(5, "time"), FrameSpec(6, "window", window_us=70_000),
    FrameSpec(5, "window", window_us=90_000, start_us=123_456, ds=3, merge_polarity=True),
    FrameSpec.snn_iir(4, "or"), FrameSpec.snn_iir(4, "max"), FrameSpec(3, accumulate="or_ms"),
    FrameSpec(1), FrameSpec(40, "number"),
])
def test_compiled_kernel_matches_numpy_reference(rng, spec):
    ev = _events(rng, n=5000, t_max=40_000)  # dense: many events share a millisecond
    sensor = SENSOR
    starts, ends, _, origin = frame_slices(ev["t"], spec.n_frames, spec.split_by,
                                           window_us=spec.window_us, start_us=spec.start_us,
                                           ms_bins=spec.accumulate == "or_ms")
    kw = dict(accumulate=spec.accumulate, ds=spec.ds, merge_polarity=spec.merge_polarity,
              origin_us=origin)
    np.testing.assert_array_equal(accumulate(ev, sensor, starts, ends, **kw),
                                  accumulate_numpy(ev, sensor, starts, ends, **kw))


@pytest.mark.parametrize("ds", [1, 3])
def test_large_sensor_kernel_matches_reference(rng, ds):
    sensor = SensorSize(346, 260, 2)  # DAVIS346: flat indices overflow int16
    ev = _events(rng, n=4000, sensor=sensor)
    starts, ends, _, _ = frame_slices(ev["t"], 3, "number")
    fast = accumulate(ev, sensor, starts, ends, ds=ds)
    np.testing.assert_array_equal(fast, accumulate_numpy(ev, sensor, starts, ends, ds=ds))
    assert fast.sum() == len(ev) and fast[:, :, -1].sum() == np.count_nonzero(
        ev["y"] // ds == fast.shape[2] - 1)


def test_empty_and_tiny_inputs():
    ev = make_events([], [], [], [])
    for split in ("number", "time", "iir"):
        assert to_frames(ev, SENSOR, 3, split_by=split).sum() == 0
    one = make_events([1], [1], [5], [1])
    assert to_frames(one, SENSOR, 3, split_by="time")[-1].sum() == 1
    assert to_frames(one, SENSOR, 3)[-1].sum() == 1  # N < T: the last frame takes all


@pytest.mark.parametrize("bad,msg", [
    (dict(x=[16]), r"x=16, y=0, p=0\) lies outside the sensor \(16, 12, 2\)"),
    (dict(p=[2]), "p=2"),
    (dict(y=[-1]), "y=-1"),
])
def test_out_of_sensor_events_raise(bad, msg):
    fields = dict(x=[0], y=[0], t=[0], p=[0])
    fields.update(bad)
    ev = make_events(**fields)
    with pytest.raises(ValueError, match=msg):
        to_frames(ev, SENSOR, 1)
    with pytest.raises(ValueError, match=msg):
        accumulate_numpy(ev, SENSOR, np.array([0]), np.array([1]))


def test_bad_options_raise():
    with pytest.raises(ValueError, match="split_by must be one of"):
        FrameSpec(3, "sometimes")
    with pytest.raises(ValueError, match="needs window_us"):
        FrameSpec(3, "window")
    with pytest.raises(ValueError, match="n_frames"):
        FrameSpec(0)
    with pytest.raises(ValueError, match="normalization must be one of"):
        FrameSpec(3, normalization="l2")
    with pytest.raises(ValueError, match="ds must be"):
        FrameSpec(3, ds=0)


# ---------------------------------------------------------------- normalisation
def test_normalizations_known_answers():
    f = np.zeros((2, 2, 1, 2), np.float32)
    f[0, 0, 0] = [1, 3]
    f[0, 1, 0] = [2, 2]
    f[1, 1, 0] = [4, 0]
    d = np.array([2, 4])
    np.testing.assert_allclose(normalize_frames(f, d, "frequency")[0, 0, 0], [0.5, 1.5])
    np.testing.assert_allclose(normalize_frames(f, d, "max")[0, :, 0], [[1 / 3, 1], [1, 1]])
    np.testing.assert_allclose(normalize_frames(f, d, "sum")[0, :, 0], [[.25, .75], [.5, .5]])
    np.testing.assert_allclose(normalize_frames(f, d, "norm")[0, 0, 0], [-1, 1], rtol=1e-5)
    np.testing.assert_allclose(normalize_frames(f, d, "frame_max")[0, :, 0], [[1 / 3, 1],
                                                                               [2 / 3, 2 / 3]])
    np.testing.assert_allclose(normalize_frames(f, d, "frame_sum")[1, :, 0], [[0, 0], [1, 0]])
    assert normalize_frames(np.zeros_like(f), d, "frame_max").sum() == 0  # no NaN
    assert normalize_frames(f, d, None) is not f


# ---------------------------------------------------------------- seed recipes (slow references)
def _snn_iir_or_reference(ev, sensor, T):
    t = ev["t"] - ev["t"].min()
    bw = (t.max() + 1) // T
    b = t // bw
    out = np.zeros((T + 1, 2, sensor.height, sensor.width), bool)
    for bi, p, y, x in zip(b, ev["p"], ev["y"], ev["x"]):
        if bi <= T:
            out[bi, p, y, x] = True
    return out[:T].astype(np.float32)


def _snn_iir_max_reference(ev, sensor, T, divide="max"):
    t_ms = (ev["t"] - ev["t"].min()) // 1000
    bw = (t_ms.max() + 1) // T
    active = np.zeros(((T + 1) * bw, 2, sensor.height, sensor.width), bool)
    for tm, p, y, x in zip(t_ms, ev["p"], ev["y"], ev["x"]):
        if tm < (T + 1) * bw:
            active[tm, p, y, x] = True
    frames = active.reshape(T + 1, bw, 2, sensor.height, sensor.width).sum(1)[:T].astype(float)
    for i in range(T):
        ref = frames[i].max() if divide == "max" else frames[i].sum()
        frames[i] /= ref if ref > 0 else 1
    return frames.astype(np.float32)


def test_snn_iir_variants_match_literal_reference(rng):
    ev = _events(rng, n=4000, t_max=95_123)
    T = 6
    np.testing.assert_array_equal(to_frames(ev, SENSOR, T, split_by="iir", accumulate="or"),
                                  _snn_iir_or_reference(ev, SENSOR, T))
    from spikeflow.events import frames_from_spec

    np.testing.assert_allclose(frames_from_spec(ev, SENSOR, FrameSpec.snn_iir(T, "max")),
                               _snn_iir_max_reference(ev, SENSOR, T), rtol=1e-6)
    np.testing.assert_allclose(frames_from_spec(ev, SENSOR, FrameSpec.snn_iir(T, "avg")),
                               _snn_iir_max_reference(ev, SENSOR, T, "sum"), rtol=1e-6)


def test_asa_window_frames_match_literal_reference(rng):
    ev = _events(rng, n=3000, sensor=SensorSize(128, 128, 2), t_max=2_000_000)
    T, dt, ds = 8, 15_000, 4
    fr = to_frames(ev, SensorSize(128, 128, 2), T, split_by="window", window_us=dt, ds=ds)
    ref = np.zeros((T, 2, 32, 32))
    t0 = ev["t"][0]
    for e in ev:  # ASA chunk_evs_pol_dvs_gesture: bins [t0 + i dt, t0 + (i+1) dt)
        i = (e["t"] - t0) // dt
        if i < T:
            ref[i, e["p"], e["y"] // ds, e["x"] // ds] += 1
    np.testing.assert_array_equal(fr, ref)


def test_integrate_returns_durations(rng):
    ev = _events(rng)
    counts, durations = integrate(ev, SENSOR, FrameSpec(4, "window", window_us=1000))
    assert durations.tolist() == [1000] * 4 and counts.dtype == np.float32


# ---------------------------------------------------------------- peers (bin-edge parity)
def _peers():
    """``benchmarks/_peers.py`` (peer code lives outside the package), loaded by path."""
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "_peers.py"
    spec = importlib.util.spec_from_file_location("spikeflow_bench_peers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.peers
@pytest.mark.parametrize("split_by", ["number", "time"])
def test_parity_with_spikingjelly(rng, split_by):
    pytest.importorskip("spikingjelly")
    spikingjelly_integration = _peers().spikingjelly_integration

    sj = spikingjelly_integration()
    assert sj is not None
    ev = _events(rng, n=2000, sensor=SensorSize(128, 128, 2))
    for T in (1, 3, 16):
        ref = sj({k: ev[k] for k in "txyp"}, split_by, T, 128, 128)
        np.testing.assert_array_equal(to_frames(ev, SensorSize(128, 128, 2), T, split_by), ref)


@pytest.mark.peers
def test_parity_with_tonic(rng):
    pytest.importorskip("tonic")
    tonic_to_frame = _peers().tonic_to_frame

    to_frame_numpy = tonic_to_frame()
    sensor = SensorSize(34, 34, 2)
    ev = _events(rng, n=2000, sensor=sensor, t_max=300_000)
    tev = ev.copy()
    # fixed windows from a start time == tonic's time_window slicing with start/end time
    ref = to_frame_numpy(tev, tuple(sensor), time_window=10_000, start_time=0, end_time=300_000)
    np.testing.assert_array_equal(
        to_frames(ev, sensor, 30, split_by="window", window_us=10_000, start_us=0), ref)
    # equal-count bins agree when the count divides evenly (tonic drops the remainder)
    ref = to_frame_numpy(ev.copy(), tuple(sensor), n_event_bins=20)
    np.testing.assert_array_equal(to_frames(ev, sensor, 20), ref)
