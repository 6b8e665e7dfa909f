"""DVS Gesture labels/trials, numpy and HDF5 event files."""
from __future__ import annotations

import io

import numpy as np
import pytest

from spikeflow.events import EventFormatError, make_events
from spikeflow.events.io import (
    load_object_array,
    read,
    read_dvs_gesture_trial,
    read_gesture_labels,
    read_hdf5_sample,
    read_numpy,
    write_aedat3,
    write_hdf5,
    write_npy,
    write_npz,
)


def test_gesture_trial_slicing_with_repeated_label(tmp_path):
    t = np.arange(0, 1000, 10)
    ev = make_events(t % 128, (t // 10) % 128, t, t % 2)
    write_aedat3(tmp_path / "user26_fluorescent.aedat", ev)
    (tmp_path / "user26_fluorescent_labels.csv").write_text(
        "class,startTime_usec,endTime_usec\r\n8,100,200\r\n8,150,300\r\n11,990,5000\r\n")
    trial = read_dvs_gesture_trial(tmp_path / "user26_fluorescent.aedat")
    assert [lab for _, lab in trial] == [7, 7, 10]
    assert trial[0][0]["t"].tolist() == list(range(100, 200, 10))  # start <= t < end
    assert trial[1][0]["t"].tolist() == list(range(150, 300, 10))  # overlapping window
    assert trial[2][0]["t"].tolist() == [990]


@pytest.mark.parametrize("content,line_at,what", [
    ("cls,start,end\n1,0,5\n", 0, "header row"),
    ("class,startTime_usec,endTime_usec\n1,0\n", 34, "3 integer columns"),
    ("class,startTime_usec,endTime_usec\n1,0,5\n12,0,5\n", 40, "class in 1..11"),
    ("class,startTime_usec,endTime_usec\n1,9,5\n", 34, "start < end"),
    ("", 0, "empty labels file"),
])
def test_gesture_labels_bad_columns(tmp_path, content, line_at, what):
    path = tmp_path / "user01_led_labels.csv"
    path.write_text(content)
    with pytest.raises(EventFormatError, match=rf"labels\.csv at byte {line_at}: .*{what}"):
        read_gesture_labels(path)


def test_numpy_formats_round_trip(tmp_path, rng):
    ev = make_events(rng.integers(0, 128, 50), rng.integers(0, 128, 50),
                     np.sort(rng.integers(0, 10**6, 50)), rng.integers(0, 2, 50))
    write_npz(tmp_path / "a.npz", ev)
    write_npy(tmp_path / "a.npy", ev)
    np.testing.assert_array_equal(read(tmp_path / "a.npz"), ev)
    np.testing.assert_array_equal(read(tmp_path / "a.npy"), ev)
    plain = np.stack([ev["t"], ev["x"], ev["y"], ev["p"]], 1)
    np.save(tmp_path / "plain.npy", plain)
    np.testing.assert_array_equal(read_numpy(tmp_path / "plain.npy", columns="txyp"), ev)
    with pytest.raises(EventFormatError, match="columns="):
        read_numpy(tmp_path / "plain.npy")


def test_object_array_loaded_without_arbitrary_pickles(tmp_path):
    samples = np.empty(2, dtype=object)
    samples[0] = np.arange(8).reshape(2, 4)
    samples[1] = np.ones((3, 4))
    np.save(tmp_path / "train_data.npy", samples, allow_pickle=True)
    got = load_object_array(tmp_path / "train_data.npy")
    assert got.shape == (2,) and got[1].shape == (3, 4)
    np.testing.assert_array_equal(got[0], samples[0])

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = np.empty(1, dtype=object)
    bad[0] = Evil()
    buf = io.BytesIO()
    np.save(buf, bad, allow_pickle=True)
    (tmp_path / "evil.npy").write_bytes(buf.getvalue())
    with pytest.raises(EventFormatError, match="refusing to load global builtins.print"):
        load_object_array(tmp_path / "evil.npy")


def test_hdf5_layout(tmp_path):
    ev = make_events([1, 2, 3], [4, 5, 6], [30, 10, 20], [1, 0, 1])  # make_events sorts
    write_hdf5(tmp_path / "s.hdf5", ev, label=4)
    got, label = read_hdf5_sample(tmp_path / "s.hdf5")
    assert label == 4 and got.tolist() == ev.tolist()
    np.testing.assert_array_equal(read(tmp_path / "s.hdf5"), ev)

    import h5py

    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f.create_dataset("times", data=np.arange(3))
    with pytest.raises(EventFormatError, match=r"missing HDF5 dataset\(s\) \['addrs'\]"):
        read(tmp_path / "bad.h5")
