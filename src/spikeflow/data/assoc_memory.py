"""The associative-memory task of snn-iir (Fang et al., IJCAI 2020), registered as ``assoc_memory``.

Ten binary spike patterns of ``size`` input neurons x ``size`` steps (default 300 x 300): pattern
``c`` is an image of digit class ``c`` (rows = neurons, columns = time) masked by a sparse
lattice. A network reads a corrupted pattern and must reproduce the clean one, delayed by 4
steps, through the normalised dual-exponential read-out filter.

**Patterns.** snn-iir drew 10 pictures (300x300 PNGs, alpha > 0.5). spikeflow uses real images
that ship offline instead: the mean image of each class of scikit-learn's digits (train part of
the fixed split), scaled to max 1, bilinearly upscaled 8x8 -> size x size and thresholded at
0.5; then masked like snn-iir's lattice: only every 5th step is active, and in active step
``t`` the neurons ``r`` with ``(r - (t // 5)) % 3 == 0`` (rows spaced 3, offset shifting by one
per active column).

**Items** (``idx % 10`` = class, ``len = length``): with probability 0.4 the pattern is
corrupted: with p 0.7 every spike moves by ``round(N(0, 1))`` steps (clipped to the window),
then with p 0.5 either a 40x40 block or 40 consecutive neurons are silenced (1/2 each); then
noise spikes are added with p 0.005 per bin (all splits, as in snn-iir). Each item's randomness
is ``default_rng([seed, split, epoch, idx])``: reproducible, and fresh per epoch after
``set_epoch``. (snn-iir's script passes 40 for both block sides after overwriting its 30, and
draws from the global numpy RNG on every access.)

**Target**: the clean pattern delayed by 4 steps, filtered over time by
:func:`spikeflow.functional.synapse.readout_filter` (tau_m 8, tau_s 2; peak of one spike = 1).

Item: ``(input, target)``, both float32 time-first ``[T, N]`` = ``[300, 300]``. The class of item
``i`` is ``dataset.targets[i]``.

    >>> import spikeflow as sf
    >>> ds = sf.data.create_dataset("assoc_memory", split="train", size=60, length=20)
    >>> x, y = ds[3]
    >>> tuple(x.shape), tuple(y.shape), int(ds.targets[3])
    ((60, 60), (60, 60), 3)
"""
from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from spikeflow.data import register_dataset
from spikeflow.data.digits import digits_split_indices, load_digits_arrays, upscale
from spikeflow.functional.synapse import readout_filter

N_PATTERNS = 10
DELAY = 4
CORRUPT_P, JITTER_P, REMOVE_P, NOISE_P = 0.4, 0.7, 0.5, 0.005
REMOVE_SIZE = 40


def lattice_mask(size: int) -> np.ndarray:
    """Sparse lattice ``[neurons, steps]``: step ``t`` active iff ``t % 5 == 0``; there neuron
    ``r`` iff ``(r - t // 5) % 3 == 0``."""
    r = np.arange(size)[:, None]
    t = np.arange(size)[None, :]
    return (t % 5 == 0) & ((r - t // 5) % 3 == 0)


@functools.lru_cache(maxsize=4)
def make_patterns(size: int = 300) -> np.ndarray:
    """The 10 clean binary patterns, float32 ``[10, neurons=size, steps=size]`` (read-only)."""
    images, targets = load_digits_arrays()
    train = digits_split_indices()[0]
    means = np.stack([images[train][targets[train] == c].mean(0) for c in range(N_PATTERNS)])
    means /= means.max(axis=(1, 2), keepdims=True)
    binary = upscale(means, size) > 0.5
    patterns = (binary & lattice_mask(size)[None]).astype(np.float32)
    patterns.setflags(write=False)
    return patterns


def delayed_filtered_targets(patterns: np.ndarray, delay: int = DELAY, tau_m: float = 8.0,
                             tau_s: float = 2.0) -> np.ndarray:
    """Patterns ``[K, N, T]`` delayed by ``delay`` steps and read-out filtered: ``[K, T, N]``."""
    delayed = np.zeros_like(patterns)
    delayed[:, :, delay:] = patterns[:, :, :-delay] if delay else patterns
    time_first = np.ascontiguousarray(delayed.transpose(2, 0, 1))  # [T, K, N]
    return np.ascontiguousarray(readout_filter(time_first, tau_m, tau_s).transpose(1, 0, 2))


def corrupt(pattern: np.ndarray, rng: np.random.Generator, remove_size: int = REMOVE_SIZE) -> np.ndarray:
    """snn-iir's per-item augmentation of a ``[N, T]`` pattern (see module doc); returns a copy."""
    x = pattern.copy()
    n, t = x.shape
    if rng.random() > 1 - CORRUPT_P:
        if rng.random() < JITTER_P:
            rows, times = np.nonzero(x)
            times = np.clip(times + np.rint(rng.normal(0.0, 1.0, times.size)).astype(np.int64), 0, t - 1)
            x = np.zeros_like(x)
            x[rows, times] = 1.0
        choice = rng.integers(2)
        if rng.random() < REMOVE_P:
            size = min(remove_size, n - 1, t - 1)
            top = rng.integers(0, n - size)
            if choice == 0:
                left = rng.integers(0, t - size)
                x[top:top + size, left:left + size] = 0.0
            else:
                x[top:top + size, :] = 0.0
    noise = rng.random(x.shape) > 1 - NOISE_P
    return np.maximum(x, noise.astype(x.dtype))


class AssocMemoryDataset(Dataset):
    """``length`` corrupted copies of the 10 patterns (item ``i`` has class ``i % 10``)."""

    def __init__(self, size: int = 300, length: int = 1000, seed: int = 0, stream: int = 0) -> None:
        if size < 10 or length < 1:
            raise ValueError(f"size must be >= 10 and length >= 1, got size={size}, length={length}")
        self.patterns = make_patterns(size)
        self.filtered = delayed_filtered_targets(self.patterns)
        self.length, self.seed, self.stream, self.epoch = length, seed, stream, 0
        self.targets = np.arange(length, dtype=np.int64) % N_PATTERNS
        self.classes = [str(c) for c in range(N_PATTERNS)]

    def set_epoch(self, epoch: int) -> None:
        """Draw fresh corruptions for ``epoch`` (items stay reproducible per epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self.length:
            raise IndexError(f"index {i} out of range for length {self.length}")
        c = i % N_PATTERNS
        rng = np.random.default_rng([self.seed, self.stream, self.epoch, i])
        x = corrupt(self.patterns[c], rng)
        return torch.from_numpy(np.ascontiguousarray(x.T)), torch.from_numpy(self.filtered[c].copy())


@register_dataset("assoc_memory")
def assoc_memory(root: str | os.PathLike | None = None, split: str = "train", *, size: int = 300,
                 length: int = 1000, seed: int = 0, **options: Any) -> AssocMemoryDataset:
    """Associative-memory patterns (snn-iir). ``root`` is unused (built from sklearn's digits).

    ``split`` "train"/"val"/"test" differ only in their random stream (the test set is a freshly
    corrupted set of the same 10 patterns, as in snn-iir). Items ``([size, size], [size, size])``
    time-first float32.
    """
    if options:
        raise TypeError(f"assoc_memory: unknown option(s) {sorted(options)}")
    streams = {"train": 0, "val": 1, "test": 2}
    if split not in streams:
        raise ValueError(f"assoc_memory: split must be one of {list(streams)}, got {split!r}")
    return AssocMemoryDataset(size, length, seed, streams[split])


__all__ = ["assoc_memory", "AssocMemoryDataset", "lattice_mask", "make_patterns",
           "delayed_filtered_targets", "corrupt"]
