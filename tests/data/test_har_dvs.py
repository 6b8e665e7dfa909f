"""HAR-DVS reader on small folders in the published layouts the test writes itself: split lists,
``action_NNN/<sample>.npz`` event files (t, x, y, p) and ``action_NNN/<sample>/*.png`` event images."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from spikeflow.data import create_dataset
from spikeflow.data.event_options import MissingDataError
from spikeflow.data.har_dvs import consecutive_indices, frame_indices

PNG = pytest.importorskip("PIL.Image")  # Pillow comes with matplotlib (a dependency)

SAMPLES = {"train": [("action_001", "dvSave-2021_10_15_19_18_02"), ("action_300", "dvSave-b"),
                     ("action_007", "dvSave-c")],
           "val": [("action_002", "dvSave-d")], "test": [("action_300", "dvSave-e")]}


def _lists(root, extra: str = " 0") -> None:
    root.mkdir(parents=True, exist_ok=True)
    for split, entries in SAMPLES.items():
        (root / f"{split}_label.txt").write_text("".join(f"{c}/{s}{extra}\n" for c, s in entries) + "\n")


def _events(rng, n: int) -> dict:
    return {"t": np.sort(rng.integers(0, 2_000_000, n)).astype(np.int64), "x": rng.integers(0, 346, n),
            "y": rng.integers(0, 260, n), "p": rng.integers(0, 2, n).astype(np.int8)}


def _event_folder(root, rng) -> dict:
    _lists(root)
    written = {}
    for entries in SAMPLES.values():
        for i, (c, s) in enumerate(entries):
            (root / c).mkdir(exist_ok=True)
            ev = _events(rng, 300 + 7 * i)
            np.savez_compressed(root / c / f"{s}.npz", **ev)
            written[f"{c}/{s}"] = ev
    return written


def _count_frames(ev: dict, T: int, ds: int) -> np.ndarray:
    """Independent transcription: split by number (frame i = events [i*n//T, (i+1)*n//T), the last
    frame takes the rest), counts per (polarity, y // ds, x // ds) on the 346 x 260 sensor."""
    n = len(ev["t"])
    h, w = -(-260 // ds), -(-346 // ds)
    out = np.zeros((T, 2, h, w), np.float32)
    di = n // T
    for i in range(T):
        lo, hi = i * di, (n if i == T - 1 else (i + 1) * di)
        for k in range(lo, hi):
            out[i, ev["p"][k], ev["y"][k] // ds, ev["x"][k] // ds] += 1
    return out


def test_event_frames_round_trip(tmp_path):
    root = tmp_path / "HARDVS"
    written = _event_folder(root, np.random.default_rng(0))
    ds = create_dataset("har_dvs", root, "train", T=4, ds=2, cache_dir=tmp_path / "cache", progress=False, workers=0)
    assert len(ds) == 3 and ds.targets.tolist() == [0, 299, 6]
    assert ds.frame_shape() == (4, 2, 130, 173)
    for i, (c, s) in enumerate(SAMPLES["train"]):
        x, y = ds[i]
        assert x.dtype == torch.float32 and y == ds.targets[i]
        np.testing.assert_array_equal(x.numpy(), _count_frames(written[f"{c}/{s}"], 4, 2))
    assert [len(create_dataset("har_dvs", root, sp, cache=False, progress=False)) for sp in ("val", "test")] == [1, 1]
    raw = create_dataset("har_dvs", root, "test", representation="events", cache=False, progress=False)
    ev, label = raw[0]
    want = written["action_300/dvSave-e"]
    assert label == 299
    for k in ("t", "x", "y", "p"):
        np.testing.assert_array_equal(ev[k], want[k])


def test_event_reader_errors(tmp_path):
    root = tmp_path / "HARDVS"
    _event_folder(root, np.random.default_rng(1))
    (root / "val_label.txt").unlink()
    with pytest.raises(MissingDataError, match="val_label.txt"):
        create_dataset("har_dvs", root, "val", cache=False, progress=False)
    (root / "action_007" / "dvSave-c.npz").unlink()
    with pytest.raises(MissingDataError, match=r"action_007/dvSave-c\.npz"):
        create_dataset("har_dvs", root, "train", cache=False, progress=False)
    (root / "action_300" / "dvSave-e.npz").write_bytes(b"not a zip archive")
    ds = create_dataset("har_dvs", root, "test", cache=False, progress=False)
    with pytest.raises(ValueError, match=r"dvSave-e\.npz"):
        ds[0]
    np.savez(root / "action_300" / "dvSave-e.npz", t=np.array([1]), x=np.array([346]), y=np.array([0]),
             p=np.array([1]))
    with pytest.raises(ValueError, match="346 x 260"):
        create_dataset("har_dvs", root, "test", cache=False, progress=False)[0]
    (root / "test_label.txt").write_text("action_301/x 1\n")
    with pytest.raises(ValueError, match="line 1"):
        create_dataset("har_dvs", root, "test", cache=False, progress=False)
    with pytest.raises(ValueError, match="split"):
        create_dataset("har_dvs", root, "dev")
    with pytest.raises(ValueError, match="format"):
        create_dataset("har_dvs", root, "test", format="video")


def _image_folder(root, rng, n_images: int = 5) -> dict:
    _lists(root, extra="")
    written = {}
    for entries in SAMPLES.values():
        for c, s in entries:
            folder = root / c / s
            folder.mkdir(parents=True)
            imgs = rng.integers(0, 256, (n_images, 4, 6, 3), dtype=np.uint8)
            for j, img in enumerate(imgs):
                PNG.fromarray(img, "RGB").save(folder / f"img_{j + 1:05d}.png")
            written[f"{c}/{s}"] = imgs
    return written


def test_image_frames_round_trip(tmp_path):
    root = tmp_path / "HARDVS"
    written = _image_folder(root, np.random.default_rng(2))
    assert frame_indices(5, 3).tolist() == [0, 2, 4] and frame_indices(2, 4).tolist() == [0, 0, 1, 1]
    ds = create_dataset("har_dvs", root, "train", format="frames", T=3, sampling="uniform")
    x, y = ds[1]
    assert y == 299 and x.shape == (3, 3, 4, 6)
    want = written["action_300/dvSave-b"][[0, 2, 4]].transpose(0, 3, 1, 2) / 255.0
    np.testing.assert_allclose(x.numpy(), want, rtol=0, atol=1e-7)
    gray = create_dataset("har_dvs", root, "train", format="frames", T=3, channels="gray")[1][0]
    assert gray.shape == (3, 1, 4, 6)
    big = create_dataset("har_dvs", root, "train", format="frames", T=2, size=(8, 12))[0][0]
    assert big.shape == (2, 3, 8, 12)
    (root / "action_001" / "dvSave-2021_10_15_19_18_02" / "img_00003.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match="img_00003.png"):
        ds[0]
    for f in (root / "action_002" / "dvSave-d").iterdir():
        f.unlink()
    with pytest.raises(MissingDataError, match="no .png"):
        create_dataset("har_dvs", root, "val", format="frames")[0]


def _sample_frames(n: int, clip_len: int, test_mode: bool, draw) -> list[int]:
    """mmaction2 SampleFrames(clip_len, frame_interval=1, num_clips=1), transcribed: train offset =
    randint(n - clip_len + 1) if that is > 0 else 0; test offset = int((n - clip_len + 1) / 2) if
    n > clip_len - 1 else 0; indices offset + 0..clip_len-1, looped modulo n."""
    if test_mode:
        offset = int((n - clip_len + 1) / 2.0) if n > clip_len - 1 else 0
    else:
        avg = n - clip_len + 1
        offset = draw(avg) if avg > 0 else 0
    return [(offset + k) % n for k in range(clip_len)]


def test_consecutive_sampling_is_the_authors_sample_frames(tmp_path):
    for n, T in ((5, 3), (9, 8), (8, 8), (5, 7), (1, 4)):
        assert consecutive_indices(n, T, False).tolist() == _sample_frames(n, T, True, None)
        for seed in range(5):
            got = consecutive_indices(n, T, True, np.random.default_rng(seed))
            want = _sample_frames(n, T, False, lambda hi: int(np.random.default_rng(seed).integers(0, hi)))
            assert got.tolist() == want
    root = tmp_path / "HARDVS"
    written = _image_folder(root, np.random.default_rng(3))
    val = create_dataset("har_dvs", root, "val", format="frames", T=3)
    want = written["action_002/dvSave-d"][[1, 2, 3]].transpose(0, 3, 1, 2) / 255.0
    np.testing.assert_allclose(val[0][0].numpy(), want, rtol=0, atol=1e-7)
    train = create_dataset("har_dvs", root, "train", format="frames", T=3, seed=7)
    train.set_epoch(2)
    start = int(np.random.default_rng([7, 2, 0]).integers(0, 3))
    want = written["action_001/dvSave-2021_10_15_19_18_02"][start:start + 3].transpose(0, 3, 1, 2) / 255.0
    np.testing.assert_allclose(train[0][0].numpy(), want, rtol=0, atol=1e-7)
    with pytest.raises(ValueError, match="sampling"):
        create_dataset("har_dvs", root, "train", format="frames", sampling="random")
