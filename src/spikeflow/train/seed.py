"""Seeding and RNG state capture for reproducible (and exactly resumable) runs.

Every epoch re-seeds python, numpy and torch from ``(seed, epoch, rank)`` so that the data order,
dropout masks and loader-worker seeds of an epoch depend only on those three numbers: a run
killed mid-epoch and resumed from the checkpoint of the previous epoch replays the same epoch.
RNG states are captured as tensors and plain lists (loadable with ``torch.load(weights_only=True)``).
"""
from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch


def derive_seed(*parts: int) -> int:
    """A 32-bit seed mixed from integers (numpy SeedSequence), e.g. ``derive_seed(seed, epoch, rank)``."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    """Seed python ``random``, numpy's global RNG and torch (CPU and all CUDA devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: numpy/python seeds follow the worker's torch seed
    (which the loader derives from its generator, re-seeded every epoch)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def set_deterministic(enabled: bool) -> None:
    """Ask torch for deterministic algorithms (errors on ops that have none)."""
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=False)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = not enabled


def get_rng_state() -> dict[str, Any]:
    """Python, numpy and torch RNG states as tensors / plain lists."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": [py_version, list(py_state), py_gauss],
        "numpy": [np_name, torch.from_numpy(np_keys.astype(np.int64)), int(np_pos),
                  int(np_has_gauss), float(np_gauss)],
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` captured."""
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


__all__ = ["derive_seed", "seed_everything", "seed_worker", "set_deterministic",
           "get_rng_state", "set_rng_state"]
