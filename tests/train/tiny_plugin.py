"""Tiny model and datasets for engine tests, imported via ``run.imports`` (also in subprocesses).

* dataset ``tiny_seq``: ``n`` sequences ``[T, F]``; class ``c`` has a fixed random pattern, every
  sample adds seeded noise (depends only on its index). ``sleep_ms`` slows ``__getitem__``.
* dataset ``tiny_static``: ``[1, 4, 4]`` images in [0, 1] (for the repeat/Poisson encoders).
* ``$TINY_STALL_AFTER=N``: the N+1-th ``__getitem__`` of the process touches ``$TINY_STALL_MARK``
  and sleeps (so a test can kill the process at a known point mid-epoch).
* model ``tiny_mlp``: SeqToBatch(Linear) -> tanh (``spiking=True``: a LIF neuron) -> [BatchNorm]
  -> [Dropout] -> SeqToBatch(Linear), returns ``[T, B, K]``; ``nan_after`` makes outputs NaN
  after that many training forwards.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from spikeflow.data import DATASETS, register_dataset
from spikeflow.layers import SeqToBatch
from spikeflow.models import MODELS, register_model
from spikeflow.neurons import LIF


_CALLS = [0]


def _maybe_stall() -> None:
    after = os.environ.get("TINY_STALL_AFTER")
    if after is None:
        return
    _CALLS[0] += 1
    if _CALLS[0] > int(after):
        Path(os.environ["TINY_STALL_MARK"]).touch()
        time.sleep(600)


class TinySeq(torch.utils.data.Dataset):
    def __init__(self, split: str, n: int, T: int, features: int, classes: int, noise: float,
                 sleep_ms: float, clips: int = 0) -> None:
        self.T, self.features, self.noise, self.sleep = T, features, noise, sleep_ms / 1000
        self.clips = clips
        rng = np.random.default_rng(1234)
        self.patterns = rng.normal(size=(classes, T, features)).astype(np.float32)
        self.offset = 0 if split == "train" else 10**6
        self.targets = np.arange(n) % classes
        self.classes = [str(c) for c in range(classes)]

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        if self.sleep:
            time.sleep(self.sleep)
        _maybe_stall()
        rng = np.random.default_rng(self.offset + i)
        y = int(self.targets[i])
        shape = (self.clips, self.T, self.features) if self.clips else (self.T, self.features)
        x = self.patterns[y] + self.noise * rng.normal(size=shape)
        return torch.from_numpy(x.astype(np.float32)), y


def tiny_seq(root=None, split="train", n=64, T=4, features=6, classes=3, noise=1.0, sleep_ms=0.0,
             clips=0):
    """``clips=K``: items ``[K, T, F]`` (K noisy views of the sample, the multi-clip protocol)."""
    if split not in ("train", "test"):
        raise ValueError(f"tiny_seq: unknown split {split!r}")
    return TinySeq(split, n if split == "train" else max(n // 2, 1), T, features, classes, noise,
                   sleep_ms, clips)


class TinyStatic(torch.utils.data.Dataset):
    def __init__(self, n: int, split: str) -> None:
        g = torch.Generator().manual_seed(0 if split == "train" else 1)
        self.targets = np.arange(n) % 2
        self.images = torch.rand(n, 1, 4, 4, generator=g) * 0.3
        self.images[self.targets == 1, :, :2] += 0.6  # class 1: bright top half

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.images[i], int(self.targets[i])


def tiny_static(root=None, split="train", n=32):
    return TinyStatic(n, split)


class TinyMLP(nn.Module):
    def __init__(self, features=6, hidden=16, classes=3, bn=True, dropout=0.0, nan_after=None,
                 spiking=False):
        super().__init__()
        self.fc1 = SeqToBatch(nn.Linear(features, hidden))
        self.lif = LIF(tau=2.0) if spiking else None
        self.bn = SeqToBatch(nn.BatchNorm1d(hidden)) if bn else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.fc2 = SeqToBatch(nn.Linear(hidden, classes))
        self.nan_after = nan_after
        self.calls = 0

    def forward(self, x):
        x = x.flatten(2)
        h = self.fc1(x)
        h = self.lif(h) if self.lif is not None else torch.tanh(h)
        out = self.fc2(self.drop(self.bn(h)))
        if self.training and self.nan_after is not None:  # (a counter only when asked for: a
            self.calls += 1                                # changing int recompiles under compile)
            if self.calls > self.nan_after:
                out = out * float("nan")
        return out


def tiny_mlp(**kwargs):
    return TinyMLP(**kwargs)


if "tiny_seq" not in DATASETS:
    register_dataset("tiny_seq")(tiny_seq)
    register_dataset("tiny_static")(tiny_static)
if "tiny_mlp" not in MODELS:
    register_model(tiny_mlp)
