"""DVS emulator throughput on Fashion-MNIST (28x28 -> 34x34, three saccades).

Prints, measured in this one run:
  * the vectorised emulator vs a per-pixel Python reference loop (same events) on a few images;
  * the full pipeline (emulate + write N-MNIST .bin files) with 1 and with N worker processes
    on a subset, its rate in images/s and the extrapolated time for all 70,000 images;
  * with --full: the real generation of all 70,000 images (folder written to a temp dir and
    deleted unless --keep DIR).

Usage: python benchmarks/emulator.py [--n 4000] [--workers 2] [--full] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import spikeflow.runtime

spikeflow.runtime.configure()  # before any torch import (peers): docs/runtime.md
from spikeflow.data.mnist import DEBIAN_FASHION_MNIST, load_idx_pair, resolve_root
from spikeflow.events.emulator import EmulatorConfig, emulate, emulate_dataset, log_intensity, saccade_offsets


def reference_loop(img: np.ndarray, cfg: EmulatorConfig) -> np.ndarray:
    """Per-pixel, per-crossing Python loop of the same model (no mismatch, no refractory period):
    the baseline; returns its events as an ``[n, 4]`` array (x, y, t, p)."""
    h, w = img.shape
    sw, sh, _ = cfg.validate((h, w))
    levels = [log_intensity(img[None], o, (sw, sh), cfg.background)[0].astype(np.float64)
              for o in saccade_offsets(cfg, (h, w))]
    dt, c = cfg.saccade_us / cfg.frames_per_saccade, cfg.threshold
    out = []
    for y in range(sh):
        for x in range(sw):
            ref = levels[0][y, x]
            for k in range(len(levels) - 1):
                a, b = levels[k][y, x], levels[k + 1][y, x]
                for sign, pol in ((1, 1), (-1, 0)):
                    while sign * (b - ref) >= c - 1e-9:
                        ref += sign * c
                        out.append((x, y, int(np.rint(k * dt + (ref - a) / (b - a) * dt)), pol))
    return np.array(out, dtype=np.int64).reshape(-1, 4)


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*.bin"))


def run_pipeline(out: Path, splits: dict, cfg: EmulatorConfig, workers: int) -> tuple[float, dict]:
    t0 = time.perf_counter()
    emulate_dataset(out, splits, cfg, workers=workers, progress=False)
    return time.perf_counter() - t0, {"bytes": folder_size(out), "files": sum(1 for _ in out.rglob("*.bin"))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=None, help="Fashion-MNIST IDX folder (default: Debian package)")
    ap.add_argument("--n", type=int, default=4000, help="images in the subset runs")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--full", action="store_true", help="also generate all 70,000 images")
    ap.add_argument("--keep", default=None, help="keep the --full folder here")
    args = ap.parse_args()

    base = resolve_root(args.root, "SPIKEFLOW_FASHION_MNIST", (DEBIAN_FASHION_MNIST,))
    train, test = load_idx_pair(base, True, "fashion_mnist"), load_idx_pair(base, False, "fashion_mnist")
    cfg = EmulatorConfig(sensor_size=(34, 34))
    cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
                         capture_output=True, text=True).stdout.strip()
    print(f"machine: {os.cpu_count()} CPUs ({cpu}); load average {os.getloadavg()[0]:.1f}")
    print(f"config: {cfg}")

    ref_cfg = EmulatorConfig(sensor_size=(34, 34), threshold_sigma=0.0)
    t0 = time.perf_counter()
    ref_events = sum(len(reference_loop(im.astype(np.float64) / 255, ref_cfg)) for im in train[0][:4])
    t_ref = (time.perf_counter() - t0) / 4
    t0 = time.perf_counter()
    vec = emulate(train[0][:64], ref_cfg)
    t_vec = (time.perf_counter() - t0) / 64
    print(f"\n[1] per image: reference loop {t_ref * 1e3:.1f} ms, vectorised (batch of 64) "
          f"{t_vec * 1e3:.2f} ms -> {t_ref / t_vec:.0f}x; events of the first 4 images: "
          f"{sum(e.size for e in vec[:4])} (loop: {ref_events})")

    n = min(args.n, len(train[1]))
    splits = {"Train": (train[0][:n], train[1][:n])}
    tmp = Path(tempfile.mkdtemp(prefix="sf-emu-bench-"))
    try:
        rates = {}
        for w in sorted({1, args.workers}):
            dt, info = run_pipeline(tmp / f"w{w}", splits, cfg, w)
            rates[w] = n / dt
            print(f"[2] {n} images, workers={w}: {dt:.1f} s = {rates[w]:.0f} images/s, "
                  f"{info['bytes'] / info['files'] / 5:.0f} events/image, "
                  f"extrapolated 70,000 images: {70000 / rates[w] / 60:.1f} min")
        if len(rates) > 1:
            print(f"    {args.workers} workers vs 1: {rates[args.workers] / rates[1]:.2f}x")
        same = all((tmp / "w1" / p.relative_to(tmp / f"w{args.workers}")).read_bytes() == p.read_bytes()
                   for p in (tmp / f"w{args.workers}").rglob("*.bin"))
        print(f"    identical bytes across worker counts: {same}")
        if args.full:
            out = Path(args.keep) if args.keep else tmp / "full"
            dt, info = run_pipeline(out, {"Train": train, "Test": test}, cfg, args.workers)
            print(f"[3] ALL 70,000 images, workers={args.workers}: {dt:.1f} s ({dt / 60:.2f} min) = "
                  f"{70000 / dt:.0f} images/s; {info['files']} files, {info['bytes'] / 2**20:.0f} MiB, "
                  f"{info['bytes'] / info['files'] / 5:.0f} events/image"
                  f" -> {'under' if dt < 600 else 'OVER'} the 10 minute target")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
