"""DVS emulator: parity with a per-pixel reference loop, physics checks, determinism, folders."""
import math

import numpy as np
import pytest

from spikeflow.events import emulator as E
from spikeflow.events.emulator import (EmulatorConfig, emulate, emulate_dataset, log_intensity, render,
                                       saccade_offsets)
from spikeflow.events.io import read_nmnist
from spikeflow.events.io.nmnist import encode_nmnist


def _blob_images(rng, n=4, size=10):
    imgs = np.zeros((n, size, size))
    for i in range(n):
        a, b = rng.integers(1, size // 2, 2)
        imgs[i, a:a + size // 2, b:b + size // 3] = rng.uniform(0.3, 1.0)
        imgs[i] += 0.3 * rng.random((size, size)) * (rng.random((size, size)) < 0.3)
    return np.clip(imgs, 0, 1)


def _reference(img, cfg):
    """Slow oracle: walk every pixel's level crossings one by one (no mismatch, no noise)."""
    h, w = img.shape
    sw, sh, _ = cfg.validate((h, w))
    offs = saccade_offsets(cfg, (h, w))
    L = [log_intensity(img[None], o, (sw, sh), cfg.background)[0].astype(np.float64) for o in offs]
    dt = cfg.saccade_us / cfg.frames_per_saccade
    c = cfg.threshold
    out = []
    for y in range(sh):
        for x in range(sw):
            ref, last = L[0][y, x], -math.inf
            for k in range(len(L) - 1):
                a, b = L[k][y, x], L[k + 1][y, x]
                for sign, pol in ((1, 1), (-1, 0)):
                    while sign * (b - ref) >= c - 1e-9:
                        ref += sign * c
                        t = k * dt + (ref - a) / (b - a) * dt
                        if t >= last + cfg.refractory_us - 1e-6:
                            out.append((x, y, int(np.rint(t)), pol))
                            last = t
    out.sort(key=lambda e: (e[2], e[1] * sw + e[0], e[3]))
    return out


@pytest.mark.parametrize("refractory", [0, 3000])
def test_matches_reference_loop(rng, refractory):
    cfg = EmulatorConfig(sensor_size=(14, 13), threshold=0.2, threshold_sigma=0.0, refractory_us=refractory,
                         frames_per_saccade=6)
    imgs = _blob_images(rng, n=3)
    for img, ev in zip(imgs, emulate(imgs, cfg)):
        got = [(int(e["x"]), int(e["y"]), int(e["t"]), int(e["p"])) for e in ev]
        ref = _reference(img, cfg)
        assert len(ref) > 20 and got == ref


def test_render_bilinear_shift():
    img = np.zeros((1, 2, 2))
    img[0, 0, 0] = 1.0
    out = render(img, np.array([1.25, 0.5]), (4, 3))
    expect = np.zeros((3, 4))
    expect[0, 1], expect[0, 2], expect[1, 1], expect[1, 2] = 0.375, 0.125, 0.375, 0.125
    assert out.shape == (1, 3, 4) and np.allclose(out[0], expect)
    assert np.allclose(render(np.ones((1, 2, 2)), np.array([0.3, 0.7]), (4, 3)).sum(), 4.0)


def test_blank_image_gives_no_events():
    cfg = EmulatorConfig(threshold_sigma=0.05)
    ev = emulate(np.zeros((2, 28, 28), np.uint8), cfg)
    assert [e.size for e in ev] == [0, 0]


def test_event_count_grows_with_contrast(rng):
    img = _blob_images(rng, n=1, size=16)[0]
    counts = [emulate((c * img)[None], EmulatorConfig())[0].size for c in (0.1, 0.25, 0.5, 1.0)]
    assert counts == sorted(counts) and len(set(counts)) == 4 and counts[0] < counts[-1] / 3


def test_on_off_balance_over_full_cycle(rng):
    imgs = _blob_images(rng, n=3, size=12)
    for ev in emulate(imgs, EmulatorConfig(threshold_sigma=0.0)):
        pix = ev["y"].astype(int) * 18 + ev["x"]
        on = np.bincount(pix[ev["p"] == 1], minlength=18 * 18)
        off = np.bincount(pix[ev["p"] == 0], minlength=18 * 18)
        assert np.abs(on - off).max() <= 1  # the path returns to its start: net change < 1 threshold
    ev = np.concatenate(emulate(imgs, EmulatorConfig(threshold_sigma=0.05)))
    assert abs(ev["p"].mean() - 0.5) < 0.05


def test_refractory_period_respected(rng):
    cfg = EmulatorConfig(threshold=0.05, threshold_sigma=0.0, refractory_us=2000)
    ev = emulate(_blob_images(rng, n=1, size=20), cfg)[0]
    free = emulate(_blob_images(np.random.default_rng(0), n=1, size=20), EmulatorConfig(threshold=0.05))[0]
    assert 0 < ev.size < free.size
    pix = ev["y"].astype(np.int64) * 1000 + ev["x"]
    order = np.lexsort((ev["t"], pix))
    same = np.diff(pix[order]) == 0
    assert np.diff(ev["t"][order])[same].min() >= 2000 - 1


def test_events_sorted_in_range_and_sensor():
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, 5:23, 9:19] = 255
    ev = emulate(img, EmulatorConfig())[0]
    assert ev.size > 500 and np.all(np.diff(ev["t"]) >= 0)
    assert ev["t"].min() >= 0 and ev["t"].max() <= 300_000
    assert ev["x"].max() < 34 and ev["y"].max() < 34 and set(np.unique(ev["p"])) == {0, 1}
    # events in all three saccades
    assert np.all(np.histogram(ev["t"], bins=[0, 100_000, 200_000, 300_001])[0] > 100)


def test_noise_rate():
    cfg = EmulatorConfig(noise_rate_hz=50.0, sensor_size=(20, 20))
    ev = emulate(np.zeros((1, 10, 10)), cfg)[0]
    expected = 50.0 * 400 * 0.3
    assert abs(ev.size - expected) < 5 * math.sqrt(expected)
    assert np.all(np.diff(ev["t"]) >= 0) and abs(ev["p"].mean() - 0.5) < 0.1


def test_seed_and_batching_determinism(rng):
    imgs = _blob_images(rng, n=5)
    cfg = EmulatorConfig(noise_rate_hz=5.0)
    all_at_once = emulate(imgs, cfg, ids=np.arange(5))
    one_by_one = [emulate(imgs[i:i + 1], cfg, ids=[i])[0] for i in range(5)]
    assert all(np.array_equal(a, b) for a, b in zip(all_at_once, one_by_one))
    other = emulate(imgs, EmulatorConfig(noise_rate_hz=5.0, seed=1))
    assert not all(np.array_equal(a, b) for a, b in zip(all_at_once, other))


def test_dataset_folder_bytes_identical_across_workers(tmp_path, rng):
    imgs = (255 * _blob_images(rng, n=12)).astype(np.uint8)
    labels = np.arange(12) % 3
    splits = {"Train": (imgs[:8], labels[:8]), "Test": (imgs[8:], labels[8:])}
    a = emulate_dataset(tmp_path / "a", splits, workers=1, chunk_size=3, progress=False)
    b = emulate_dataset(tmp_path / "b", splits, workers=2, chunk_size=5, progress=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*.bin"))
    assert len(files) == 12 and files[0].parts == ("Test", "0", "00001.bin")  # index within the split
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes()
    direct = emulate(imgs[:8], EmulatorConfig(), ids=np.arange(8), stream=0)
    assert np.array_equal(read_nmnist(a / "Train" / "1" / "00004.bin"), direct[4])
    assert not list(tmp_path.glob(".*tmp*"))
    with pytest.raises(FileExistsError):
        emulate_dataset(tmp_path / "a", splits, progress=False)


def test_fast_encoder_matches_nmnist_encoder(rng):
    ev = emulate((255 * _blob_images(rng, n=1)).astype(np.uint8), EmulatorConfig())[0]
    assert ev.size > 100 and E.encode_bin(ev) == encode_nmnist(ev)
    late = ev.copy()
    late["t"] += 1 << 23  # needs overflow markers: falls back to the general encoder
    assert E.encode_bin(late) == encode_nmnist(late) and len(E.encode_bin(late)) > 5 * ev.size


def test_interrupted_generation_leaves_nothing(tmp_path, rng, monkeypatch):
    calls = []

    def boom(task):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real(task)

    real = E._work
    monkeypatch.setattr(E, "_work", boom)
    imgs = (255 * _blob_images(rng, n=6)).astype(np.uint8)
    with pytest.raises(KeyboardInterrupt):
        emulate_dataset(tmp_path / "out", {"Train": (imgs, np.zeros(6, int))}, workers=1, chunk_size=2,
                        progress=False)
    assert list(tmp_path.iterdir()) == []


def test_bad_options():
    with pytest.raises(ValueError, match="sensor_size"):
        emulate(np.zeros((1, 28, 28)), EmulatorConfig(sensor_size=(20, 20)))
    with pytest.raises(ValueError, match="threshold"):
        emulate(np.zeros((1, 8, 8)), EmulatorConfig(threshold=0.0))
    with pytest.raises(ValueError, match=r"\[B, h, w\]"):
        emulate(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="amplitude_px"):
        EmulatorConfig(amplitude_px=9).validate((28, 28))
