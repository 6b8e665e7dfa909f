"""ASA's multi-clip test protocol: scoring ``K`` clip predictions per sample.

A dataset built with ``clips=K`` yields ``x`` of shape ``[K, T, P, H, W]``; a batch is
``[B, K, T, P, H, W]``. Fold the clips into the batch (``x.flatten(0, 1)`` then time-first),
predict ``[B * K]`` classes, reshape to ``[B, K]`` and score with :func:`clip_correct`:
a sample is correct iff MORE than half of its clips are predicted correctly (ASA's rule,
``correct_clips / K > 0.5``). :func:`majority_vote` gives one predicted class per sample instead.

    >>> import numpy as np
    >>> preds = np.array([[1, 1, 2], [0, 2, 2]])
    >>> clip_correct(preds, np.array([1, 0])).tolist(), majority_vote(preds).tolist()
    ([True, False], [1, 2])
"""
from __future__ import annotations

from typing import Any

import numpy as np


def _np(a: Any) -> np.ndarray:
    return a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)


def clip_correct(clip_preds: Any, labels: Any) -> np.ndarray:
    """Bool ``[B]``: ``(#clips with pred == label) / K > 0.5`` for ``clip_preds [B, K]``."""
    p, y = _np(clip_preds), _np(labels)
    if p.ndim != 2 or y.shape != (p.shape[0],):
        raise ValueError(f"clip_preds must be [B, K] and labels [B], got {p.shape} and {y.shape}")
    return (p == y[:, None]).mean(axis=1) > 0.5


def majority_vote(clip_preds: Any, n_classes: int | None = None) -> np.ndarray:
    """Most frequent class per sample of ``clip_preds [B, K]`` (ties -> the smallest class)."""
    p = _np(clip_preds).astype(np.int64)
    if p.ndim != 2:
        raise ValueError(f"clip_preds must be [B, K], got shape {p.shape}")
    k = int(n_classes) if n_classes is not None else int(p.max(initial=0)) + 1
    counts = np.zeros((p.shape[0], k), dtype=np.int64)
    np.add.at(counts, (np.repeat(np.arange(p.shape[0]), p.shape[1]), p.reshape(-1)), 1)
    return counts.argmax(axis=1)


def clip_accuracy(clip_preds: Any, labels: Any) -> float:
    """Percentage of samples counted correct by :func:`clip_correct`."""
    ok = clip_correct(clip_preds, labels)
    return 100.0 * float(ok.mean()) if ok.size else 0.0
