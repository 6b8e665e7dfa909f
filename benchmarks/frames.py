"""Event -> frame integration speed vs Tonic and SpikingJelly, and frame-cache size on disk.

Measured in this one run, on the same DVS128-Gesture-sized samples (default 8 samples of
300k events, 128x128x2, 6 s; synthetic moving blobs, or real trials with --gesture DIR):

* ``split_by="number"``, T=20: spikeflow ``to_frames`` vs SpikingJelly's
  ``integrate_events_by_fixed_frames_number(..., "number", ...)`` vs Tonic's
  ``ToFrame(n_event_bins=T)``; also spikeflow's numpy-only path (``SPIKEFLOW_NUMBA=0``);
* ``split_by="time"``, T=20: vs SpikingJelly ``"time"`` and Tonic ``ToFrame(n_time_bins=T)``;
* ASA windows (T=60, 15 ms, ds=4): vs Tonic ``ToFrame(time_window=15000)`` + 4x4 sum pooling;
* cache size: spikeflow's entries (uint8/uint16 counts, ``savez_compressed``) vs a
  SpikingJelly-style uncompressed ``np.savez`` of float32 frames, and of float64 frames (what
  SpikingJelly 2.0 writes by default).

Times are per sample the best of ``--repeat`` calls, interleaved call by call across methods, and
summed over the samples: the best call is the least disturbed by other processes on a shared
machine (as ``timeit`` recommends).
Usage: ``python benchmarks/frames.py [--samples 8] [--events 300000] [--repeat 7]
[--gesture DIR]``. ``main(argv)`` returns the rows (for ``spikeflow bench``).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

import spikeflow.runtime

spikeflow.runtime.configure()  # before any torch import (peers): docs/runtime.md
from spikeflow.data.frame_cache import atomic_savez, pack_counts
from spikeflow.events import FrameSpec, SensorSize, integrate, make_events, to_frames
from spikeflow.events.functional import accumulate_numpy, frame_slices

if str(Path(__file__).resolve().parent) not in sys.path:  # benchmarks/_peers.py
    sys.path.insert(0, str(Path(__file__).resolve().parent))
from _peers import spikingjelly_integration, tonic_to_frame  # noqa: E402

SENSOR = SensorSize(128, 128, 2)


def synthetic_gesture(rng: np.random.Generator, n: int, duration_us: int = 6_000_000
                      ) -> np.ndarray:
    """Two blobs (hands) moving on circles plus 5% background noise: Gesture-like density."""
    t = np.sort(rng.integers(0, duration_us, n))
    phase = 2 * np.pi * t / 1_500_000
    hand = rng.integers(0, 2, n)
    cx = 64 + (hand * 2 - 1) * 25 + 20 * np.cos(phase)
    cy = 60 + 25 * np.sin(phase + hand)
    x = np.clip(np.rint(cx + rng.normal(0, 6, n)), 0, 127)
    y = np.clip(np.rint(cy + rng.normal(0, 6, n)), 0, 127)
    noise = rng.random(n) < 0.05
    x[noise], y[noise] = rng.integers(0, 128, noise.sum()), rng.integers(0, 128, noise.sum())
    return make_events(x.astype(int), y.astype(int), t, rng.integers(0, 2, n))


def gesture_samples(folder: str, limit: int) -> list[np.ndarray]:
    """Real DVS Gesture samples from the first trials of ``trials_to_train.txt``."""
    from spikeflow.events.io import read_dvs_gesture_trial

    root = Path(folder)
    names = [n.strip() for n in (root / "trials_to_train.txt").read_text().split() if n.strip()]
    out: list[np.ndarray] = []
    for name in names:
        out += [ev for ev, _ in read_dvs_gesture_trial(root / name)]
        if len(out) >= limit:
            break
    return out[:limit]


def _numpy_path(events: np.ndarray, T: int, split_by: str) -> np.ndarray:
    starts, ends, _, origin = frame_slices(events["t"], T, split_by)
    return accumulate_numpy(events, SENSOR, starts, ends, origin_us=origin)


def _time_all(methods: dict[str, Callable[[np.ndarray], object]], samples: list[np.ndarray],
              repeat: int) -> dict[str, float]:
    """Sum over samples of the best of ``repeat`` calls; calls of all methods are interleaved
    one by one, so background load hits every method alike."""
    for fn in methods.values():  # warm up (numba compile / caches), outside the timing
        fn(samples[0])
    best = {k: np.full(len(samples), np.inf) for k in methods}
    for _ in range(repeat):
        for i, ev in enumerate(samples):
            for name, fn in methods.items():
                t0 = time.perf_counter()
                fn(ev)
                best[name][i] = min(best[name][i], time.perf_counter() - t0)
    return {k: float(v.sum()) for k, v in best.items()}


def speed_rows(samples: list[np.ndarray], repeat: int) -> list[dict]:
    sj, tonic = spikingjelly_integration(), tonic_to_frame()
    rows = []
    for split_by, T in (("number", 20), ("time", 20)):
        methods: dict[str, Callable] = {
            "spikeflow": lambda ev, s=split_by: to_frames(ev, SENSOR, T, split_by=s),
            "spikeflow (numpy only)": lambda ev, s=split_by: _numpy_path(ev, T, s)}
        if sj is not None:
            methods["spikingjelly"] = lambda ev, s=split_by: sj(
                {k: ev[k] for k in "txyp"}, s, T, SENSOR.height, SENSOR.width)
        if tonic is not None:
            key = "n_event_bins" if split_by == "number" else "n_time_bins"
            methods["tonic ToFrame"] = lambda ev, k=key: tonic(ev, tuple(SENSOR), **{k: T})
        rows += _rows(f"split_by={split_by}, T={T}", _time_all(methods, samples, repeat), samples)
    methods = {"spikeflow": lambda ev: to_frames(ev, SENSOR, 60, split_by="window",
                                                 window_us=15_000, ds=4)}
    if tonic is not None:
        def tonic_asa(ev):
            f = tonic(ev, tuple(SENSOR), time_window=15_000, start_time=int(ev["t"][0]),
                      end_time=int(ev["t"][0]) + 60 * 15_000)
            return f.reshape(f.shape[0], 2, 32, 4, 32, 4).sum((3, 5))
        methods["tonic ToFrame"] = tonic_asa
    rows += _rows("ASA windows T=60, 15 ms, ds=4", _time_all(methods, samples, repeat), samples)
    return rows


def _rows(case: str, times: dict[str, float], samples: list[np.ndarray]) -> list[dict]:
    ours = times["spikeflow"]
    n_events = sum(len(s) for s in samples)
    return [{"case": case, "method": name, "ms_per_sample": 1e3 * t / len(samples),
             "Mevents_per_s": n_events / t / 1e6, "time_vs_spikeflow": t / ours}
            for name, t in times.items()]


def cache_rows(samples: list[np.ndarray], T: int = 20) -> list[dict]:
    spec = FrameSpec(T, "number")
    with tempfile.TemporaryDirectory() as tmp:
        ours = sj32 = sj64 = 0
        for i, ev in enumerate(samples):
            counts, durations = integrate(ev, SENSOR, spec)
            p = Path(tmp) / f"ours{i}.npz"
            atomic_savez(p, counts=pack_counts(counts), durations=durations)
            ours += p.stat().st_size
            for dtype, name in ((np.float32, "f32"), (np.float64, "f64")):
                q = Path(tmp) / f"sj{name}{i}.npz"
                np.savez(q, frames=counts.astype(dtype))
                if dtype is np.float32:
                    sj32 += q.stat().st_size
                else:
                    sj64 += q.stat().st_size
    n = len(samples)
    return [{"case": f"cache T={T}", "method": m, "kB_per_sample": b / n / 1024,
             "fraction_of_sj_float32": b / sj32}
            for m, b in (("spikeflow (uint counts, compressed)", ours),
                         ("SJ-style npz float32", sj32), ("SJ 2.0 npz float64", sj64))]


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--gesture", default=None, help="DvsGesture folder: use real samples")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    samples = (gesture_samples(args.gesture, args.samples) if args.gesture else
               [synthetic_gesture(rng, args.events) for _ in range(args.samples)])
    rows = speed_rows(samples, args.repeat) + cache_rows(samples)
    if not args.quiet:
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.1f}; {len(samples)} samples, "
              f"{np.mean([len(s) for s in samples]):.0f} events each")
        for r in rows:
            if "ms_per_sample" in r:
                print(f"{r['case']:<32} {r['method']:<24} {r['ms_per_sample']:8.2f} ms/sample "
                      f"{r['Mevents_per_s']:7.1f} Mev/s   {r['time_vs_spikeflow']:6.2f}x "
                      "spikeflow's time")
            else:
                print(f"{r['case']:<32} {r['method']:<36} {r['kB_per_sample']:8.1f} kB/sample "
                      f"{r['fraction_of_sj_float32']:6.3f} of SJ float32")
    return rows


if __name__ == "__main__":
    main()
