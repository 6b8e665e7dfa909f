"""DVS emulator: turn static grey images into event streams the way N-MNIST was recorded
(Orchard et al. 2015, "Converting static image datasets to spiking neuromorphic datasets using
saccades"). numpy only.

Model (all vectorised over images x pixels; one loop over frame intervals):

1. **Saccades.** The image is shown on a dark background (luminance ``background``) and moves in
   front of a ``width x height`` sensor along a triangle, three straight saccades of
   ``saccade_us`` each (default 100 ms): top-left offset ``(0, 0) -> (A/2, A) -> (A, 0) -> (0, 0)``
   pixels, amplitude ``A`` = the margin ``min(width - w, height - h)`` (34x34 for 28x28 images
   gives A = 6, like N-MNIST). Frames are rendered with bilinear sub-pixel shifts,
   ``frames_per_saccade`` per saccade.
2. **Pixels.** Each pixel sees ``L = log(background + (1 - background) * image)`` (float32), linearly
   interpolated in time between frames. It keeps a reference level ``L_ref`` (initially ``L`` at
   t = 0) and emits an ON (OFF) event at the exact sub-frame time ``L`` crosses
   ``L_ref + C_on`` (``L_ref - C_off``), then moves ``L_ref`` by that threshold. Per-pixel
   thresholds ``C = threshold * (1 + threshold_sigma * N(0, 1))`` (mismatch, clipped >= 0.01).
3. **Refractory period.** An event closer than ``refractory_us`` after the pixel's previous
   emitted event is dropped; its level crossing is still consumed (the pixel's reset switch
   holds it blind, as in the DVS pixel), so ``L_ref`` stays within one threshold of ``L``.
4. **Background noise.** ``noise_rate_hz`` events per pixel per second (half ON, half OFF) at
   uniform random pixels and times, independent of the signal.

Randomness (mismatch, noise) comes from ``numpy.random.default_rng([seed, stream, index])`` per
image, so an image's events depend only on the config, its pixels and its index: the same seed
gives identical bytes whatever the batching or the number of processes.

    >>> import numpy as np
    >>> img = np.zeros((28, 28)); img[8:20, 10:18] = 1.0
    >>> ev = emulate(img[None], EmulatorConfig())[0]
    >>> ev.dtype.names, bool(ev["t"].max() < 300_000), set(np.unique(ev["p"]).tolist())
    (('x', 'y', 't', 'p'), True, {0, 1})
"""
from __future__ import annotations

import json
import math
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, replace
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from spikeflow.events.io.nmnist import encode_nmnist
from spikeflow.events.types import EVENT_DTYPE
from spikeflow.utils.atomic import atomic_path

N_SACCADES = 3
_EPS = 1e-9


@dataclass(frozen=True)
class EmulatorConfig:
    """Options of the emulator (see the module docstring); times in µs, thresholds in log units."""

    sensor_size: tuple[int, int] | None = None  # (width, height); None = image + 6 px (28 -> 34)
    amplitude_px: float | None = None  # saccade amplitude A; None = the sensor margin
    saccade_us: int = 100_000
    frames_per_saccade: int = 20
    threshold: float = 0.3
    threshold_sigma: float = 0.03
    refractory_us: int = 0
    noise_rate_hz: float = 0.0
    background: float = 0.2
    seed: int = 0

    def validate(self, image_hw: tuple[int, int]) -> tuple[int, int, float]:
        """Check the options for images of ``image_hw``; return (width, height, amplitude)."""
        h, w = image_hw
        sw, sh = self.sensor_size if self.sensor_size is not None else (w + 6, h + 6)
        if sw < w or sh < h or max(sw, sh) > 240:
            raise ValueError(f"sensor_size {(sw, sh)} must hold the {w}x{h} image and be <= 240 px "
                             f"(N-MNIST files store x, y in one byte, y = 240 is reserved)")
        amp = float(min(sw - w, sh - h)) if self.amplitude_px is None else float(self.amplitude_px)
        if not 0 <= amp <= min(sw - w, sh - h):
            raise ValueError(f"amplitude_px {amp} must be in [0, {min(sw - w, sh - h)}] for a "
                             f"{w}x{h} image on a {sw}x{sh} sensor")
        checks = {"threshold": self.threshold > 0, "frames_per_saccade": self.frames_per_saccade >= 1,
                  "saccade_us": self.saccade_us > 0, "refractory_us": self.refractory_us >= 0,
                  "noise_rate_hz": self.noise_rate_hz >= 0, "threshold_sigma": self.threshold_sigma >= 0,
                  "background": 0 < self.background <= 1}
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid emulator option(s) {bad}: " + ", ".join(f"{k}={getattr(self, k)}" for k in bad))
        return int(sw), int(sh), amp

    @property
    def duration_us(self) -> int:
        return N_SACCADES * self.saccade_us


def saccade_offsets(cfg: EmulatorConfig, image_hw: tuple[int, int]) -> np.ndarray:
    """Top-left offsets ``[3 * frames_per_saccade + 1, 2]`` (x, y) of the image at every frame."""
    sw, sh, amp = cfg.validate(image_hw)
    h, w = image_hw
    start = np.array([(sw - w - amp) / 2, (sh - h - amp) / 2])
    verts = start + amp * np.array([[0.0, 0.0], [0.5, 1.0], [1.0, 0.0], [0.0, 0.0]])
    f = cfg.frames_per_saccade
    u = np.arange(f) / f
    path = [verts[s] + u[:, None] * (verts[s + 1] - verts[s]) for s in range(N_SACCADES)]
    return np.concatenate(path + [verts[-1:]])


def render(images: np.ndarray, offset: np.ndarray, sensor_wh: tuple[int, int], fill: float = 0.0,
           out: np.ndarray | None = None) -> np.ndarray:
    """Images ``[B, h, w]`` bilinearly shifted to top-left ``offset`` (x, y) on a sensor of
    value ``fill``: ``[B, height, width]`` (a view into ``out``, a ``[B, height+1, width+1]``
    scratch buffer, when given)."""
    b, h, w = images.shape
    sw, sh = sensor_wh
    ix, iy = int(math.floor(offset[0])), int(math.floor(offset[1]))
    fx, fy = offset[0] - ix, offset[1] - iy
    canvas = np.empty((b, sh + 1, sw + 1), images.dtype) if out is None else out
    canvas.fill(fill)
    for dy, dx, wgt in ((0, 0, (1 - fy) * (1 - fx)), (1, 0, fy * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 1, fy * fx)):
        if wgt > 0:
            canvas[:, iy + dy: iy + dy + h, ix + dx: ix + dx + w] += images.dtype.type(wgt) * images
    return canvas[:, :sh, :sw]


def log_intensity(images: np.ndarray, offset: np.ndarray, sensor_wh: tuple[int, int], background: float,
                  out: np.ndarray | None = None) -> np.ndarray:
    """float32 ``[B, height, width]`` log luminance ``log(background + (1 - background) * image)``
    seen by the sensor with the images (``[B, h, w]`` in [0, 1]) at ``offset``."""
    lum = ((1.0 - background) * images).astype(np.float32)
    return np.log(render(lum, offset, sensor_wh, background, out))


def _image_rngs(cfg: EmulatorConfig, ids: np.ndarray, stream: int) -> list[np.random.Generator]:
    return [np.random.default_rng([cfg.seed, stream, int(i)]) for i in ids]


def _thresholds(cfg: EmulatorConfig, rngs: list[np.random.Generator], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    if cfg.threshold_sigma == 0:
        c = np.full((len(rngs), 2, *shape), cfg.threshold)
    else:
        c = np.stack([cfg.threshold * (1 + cfg.threshold_sigma * r.standard_normal((2, *shape)))
                      for r in rngs])
    c = np.maximum(c, 0.01)
    return c[:, 0].reshape(-1), c[:, 1].reshape(-1)


def _emit(n: np.ndarray, t_first: np.ndarray, spacing: np.ndarray, last: np.ndarray, refractory: float
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kept crossings of candidate pixels: ``n`` evenly spaced crossings from ``t_first``.

    Returns (repeat counts, event times, new last-event times). Without a refractory period all
    crossings are kept; with one, the first kept is the first at >= ``last + refractory`` and then
    every ``m = ceil(refractory / spacing)``-th.
    """
    if refractory <= 0:
        j0 = np.ones_like(n)
        m = np.ones_like(n)
    else:
        j0 = np.maximum(1, np.ceil((last + refractory - t_first) / spacing - _EPS).astype(np.int64) + 1)
        m = np.maximum(1, np.ceil(refractory / spacing - _EPS).astype(np.int64))
    count = np.where(j0 <= n, (n - j0) // m + 1, 0)
    rep = np.repeat(np.arange(n.size), count)
    k = np.arange(rep.size) - np.repeat(np.cumsum(count) - count, count)
    j = j0[rep] + m[rep] * k
    t = t_first[rep] + (j - 1) * spacing[rep]
    new_last = np.where(count > 0, t_first + (j0 + (count - 1) * m - 1) * spacing, last)
    return count, t, new_last


def emulate(images: np.ndarray, config: EmulatorConfig = EmulatorConfig(), ids: Sequence[int] | None = None,
            stream: int = 0) -> list[np.ndarray]:
    """Events of each image of ``images`` ``[B, h, w]`` (uint8 0..255 or float 0..1).

    ``ids`` (default ``0..B-1``) and ``stream`` pick each image's random stream. Returns ``B``
    event arrays (``EVENT_DTYPE``, sorted by ``t``, ``t`` in [0, 3 * saccade_us]).
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"images must be [B, h, w] grey images, got shape {images.shape}")
    img = images.astype(np.float64) / 255.0 if images.dtype == np.uint8 else np.clip(images.astype(np.float64), 0, 1)
    b, h, w = img.shape
    sw, sh, _ = config.validate((h, w))
    ids = np.arange(b) if ids is None else np.asarray(ids)
    rngs = _image_rngs(config, ids, stream)
    c_on, c_off = _thresholds(config, rngs, (sh, sw))
    offsets = saccade_offsets(config, (h, w))
    dt = config.saccade_us / config.frames_per_saccade
    lum = ((1.0 - config.background) * img).astype(np.float32)  # luminance above the dark level
    scratch = np.empty((b, sh + 1, sw + 1), np.float32)

    def log_frame(k: int) -> np.ndarray:
        return np.log(render(lum, offsets[k], (sw, sh), config.background, scratch)).reshape(-1)

    level = log_frame(0)
    ref = level.astype(np.float64)
    last = np.full(level.size, -1e12)  # time of each pixel's last emitted event (µs)
    on_min, off_max = c_on - _EPS, -(c_off - _EPS)
    out_pix, out_t, out_p = [], [], []
    for k in range(len(offsets) - 1):
        nxt = log_frame(k + 1)
        diff = nxt - ref
        for pol, cand, c in ((1, np.flatnonzero(diff >= on_min), c_on), (0, np.flatnonzero(diff <= off_max), c_off)):
            if cand.size == 0:
                continue
            cc = c[cand]
            step = cc if pol else -cc
            n = np.floor(np.abs(diff[cand]) / cc + _EPS).astype(np.int64)
            slope = np.maximum(np.abs(nxt[cand] - level[cand]), 1e-12)  # log units per interval
            frac = np.minimum(np.abs(ref[cand] + step - level[cand]) / slope, 1.0)
            count, t, last[cand] = _emit(n, (k + frac) * dt, cc / slope * dt, last[cand], config.refractory_us)
            ref[cand] += step * n
            out_pix.append(np.repeat(cand, count))
            out_t.append(t)
            out_p.append(np.full(t.size, pol, dtype=np.int64))
        level = nxt
    pix = np.concatenate(out_pix) if out_pix else np.zeros(0, np.int64)
    t_all = np.concatenate(out_t) if out_t else np.zeros(0)
    p_all = np.concatenate(out_p) if out_p else np.zeros(0, np.int64)
    return _split_per_image(pix, t_all, p_all, b, (sw, sh), config, rngs)


def _split_per_image(pix: np.ndarray, t: np.ndarray, p: np.ndarray, b: int, sensor_wh: tuple[int, int],
                     cfg: EmulatorConfig, rngs: list[np.random.Generator]) -> list[np.ndarray]:
    """Sort by (image, t, pixel, polarity) and cut per image.

    The sort runs on one packed int64 key: equal keys mean identical events, so the (unstable,
    fast) sort gives the same bytes however the images were batched.
    """
    sw, sh = sensor_wh
    npix, span = sw * sh, cfg.duration_us + 1
    t_us = np.clip(np.rint(t), 0, cfg.duration_us).astype(np.int64)
    if b * span * npix * 2 >= 2 ** 62:
        raise ValueError(f"batch of {b} images is too large to sort at once; use a smaller chunk")
    key = np.sort(((pix // npix * span + t_us) * npix + pix % npix) * 2 + p)
    pol = (key & 1).astype(np.int8)
    key >>= 1
    local = key % npix
    key //= npix
    t_sorted, img_idx = key % span, key // span
    bounds = np.searchsorted(img_idx, np.arange(b + 1))
    events = np.empty(key.size, dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = local % sw, local // sw, t_sorted, pol
    out = [events[bounds[i]: bounds[i + 1]] for i in range(b)]
    if cfg.noise_rate_hz > 0:
        out = [_add_noise(ev, rng, cfg, sensor_wh) for ev, rng in zip(out, rngs)]
    return out


def _add_noise(ev: np.ndarray, rng: np.random.Generator, cfg: EmulatorConfig, sensor_wh: tuple[int, int]) -> np.ndarray:
    sw, sh = sensor_wh
    n = int(rng.poisson(cfg.noise_rate_hz * sw * sh * cfg.duration_us * 1e-6))
    noise = np.empty(n, dtype=EVENT_DTYPE)
    noise["x"] = rng.integers(0, sw, n)
    noise["y"] = rng.integers(0, sh, n)
    noise["t"] = rng.integers(0, cfg.duration_us + 1, n)
    noise["p"] = rng.integers(0, 2, n)
    both = np.concatenate([ev, noise])
    return both[np.argsort(both["t"], kind="stable")]


# ----------------------------------------------------------------------------- folders
def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(n, start + size)


def encode_bin(events: np.ndarray) -> bytes:
    """N-MNIST ``.bin`` bytes; a fast path of :func:`~spikeflow.events.io.nmnist.encode_nmnist`
    for sorted events with ``t < 2**23`` µs (no overflow markers needed), the same bytes."""
    t = events["t"]
    if t.size and (t[-1] >= 1 << 23 or t[0] < 0):
        return encode_nmnist(events)
    out = np.empty((t.size, 5), np.uint8)
    out[:, 0], out[:, 1] = events["x"], events["y"]
    out[:, 2] = (events["p"].astype(np.int64) << 7) | (t >> 16)
    out[:, 3], out[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    return out.tobytes()


def _work(task: tuple) -> int:
    """Emulate one chunk and write its ``.bin`` files; returns the number of events written."""
    images, labels, ids, stream, cfg, folder, width = task
    total = 0
    for ev, label, i in zip(emulate(images, cfg, ids, stream), labels, ids):
        fd = os.open(os.path.join(folder, str(int(label)), f"{int(i):0{width}d}.bin"),
                     os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, encode_bin(ev))
        finally:
            os.close(fd)
        total += ev.size
    return total


def emulate_dataset(out_dir: str | os.PathLike, splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
                    config: EmulatorConfig = EmulatorConfig(), *, workers: int | None = None,
                    chunk_size: int | None = None, progress: bool = True, overwrite: bool = False,
                    start_method: str | None = None) -> Path:
    """Write an N-MNIST-format folder ``out_dir/<split>/<label>/<index>.bin`` from grey images.

    ``splits`` maps folder names (``"Train"``, ``"Test"``) to ``(images [N, h, w], labels [N])``.
    The folder appears atomically: everything is written into a temporary sibling folder (with a
    ``meta.json`` of the config and counts) that is renamed at the end, so an interrupted run
    leaves no partial ``out_dir``. ``workers`` processes (default: CPU count, 1 for small jobs)
    share the chunks (``chunk_size`` images each; default about 74k sensor pixels per chunk, 64
    images at 34x34); the bytes do not depend on ``workers`` or ``chunk_size``. Workers start with
    ``start_method`` (default ``"fork"`` where available: they run numpy only, never torch, and
    fork works from notebooks and stdin; else ``"spawn"``).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} already exists (pass overwrite=True to replace it)")
    with atomic_path(out_dir, fsync=False) as tmp:  # the folder appears whole or not at all
        tmp.mkdir()
        meta = _emulate_into(tmp, splits, config, workers, chunk_size, progress, start_method,
                             out_dir.name)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if out_dir.exists():  # overwrite=True
            shutil.rmtree(out_dir)
    return out_dir


def _emulate_into(tmp: Path, splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
                  config: EmulatorConfig, workers: int | None, chunk_size: int | None,
                  progress: bool, start_method: str | None, label: str) -> dict:
    """Write the ``.bin`` files of :func:`emulate_dataset` under ``tmp``; returns its meta."""
    tasks, counts = [], {}
    for stream, (name, (images, labels)) in enumerate(splits.items()):
        images, labels = np.asarray(images), np.asarray(labels).astype(np.int64)
        if images.ndim != 3 or len(images) != len(labels):
            raise ValueError(f"split {name!r}: images must be [N, h, w] with N labels, got {images.shape}, {labels.shape}")
        for label_id in np.unique(labels):
            (tmp / name / str(int(label_id))).mkdir(parents=True, exist_ok=True)
        width = max(5, len(str(len(labels) - 1)))
        sw, sh, _ = config.validate(images.shape[1:])
        size = chunk_size or max(16, (64 * 34 * 34) // (sw * sh))
        counts[name] = {"samples": int(len(labels)), "per_class": np.bincount(labels).tolist()}
        for a, b in _chunks(len(labels), size):
            tasks.append((images[a:b], labels[a:b], np.arange(a, b), stream, config, str(tmp / name), width))
    n_images = sum(len(t[0]) for t in tasks)
    workers = (os.cpu_count() or 1) if workers is None else workers
    workers = max(1, min(workers, len(tasks)))
    bar = _progress(n_images, progress, label)
    try:
        events = 0
        if workers == 1:
            for task in tasks:
                events += _work(task)
                bar.update(len(task[0]))
        else:
            if start_method is None:
                start_method = "fork" if "fork" in get_all_start_methods() else "spawn"
            with ProcessPoolExecutor(workers, mp_context=get_context(start_method)) as pool:
                for task, n_ev in zip(tasks, pool.map(_work, tasks)):
                    events += n_ev
                    bar.update(len(task[0]))
    finally:
        bar.close()
    return {"config": asdict(config), "splits": counts, "events": events, "format": "nmnist-bin"}


def _progress(total: int, enabled: bool, desc: str):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        enabled = False
    if not enabled:
        class _Null:
            def update(self, n: int) -> None: ...

            def close(self) -> None: ...
        return _Null()
    return tqdm(total=total, desc=f"emulating {desc}", unit="img")


__all__ = ["EmulatorConfig", "N_SACCADES", "saccade_offsets", "render", "log_intensity", "emulate",
           "encode_bin", "emulate_dataset"]
