"""Frame normalisations, applied to integer-valued frames ``[..., T, P, H, W]`` (float32 out).

SpikingJelly's options (per frame AND polarity, ``eps = 1e-5``):

* ``"frequency"``: ``F / duration_us`` of the frame (events per µs),
* ``"max"``: ``F / max(max F, eps)``,
* ``"norm"``: ``(F - mean F) / sqrt(max(var F, eps))``,
* ``"sum"``: ``F / max(sum F, eps)``.

snn-iir's Gesture variants (per frame, over all polarities and pixels):

* ``"frame_max"`` ("MAX"): ``F / max F`` (an empty frame stays 0),
* ``"frame_sum"`` ("avg"): ``F / sum F`` (an empty frame stays 0).
"""
from __future__ import annotations

import numpy as np

NORMALIZATIONS = (None, "frequency", "max", "norm", "sum", "frame_max", "frame_sum")
EPS = 1e-5


def normalize_frames(frames: np.ndarray, durations_us: np.ndarray | None = None,
                     normalization: str | None = None) -> np.ndarray:
    """Return a normalised float32 copy of ``frames`` (``durations_us`` shaped ``[..., T]``)."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    f = np.array(frames, dtype=np.float32, copy=True)
    if normalization is None:
        return f
    if f.ndim < 4:
        raise ValueError(f"frames must be [..., T, P, H, W], got shape {f.shape}")
    if normalization == "frequency":
        if durations_us is None:
            raise ValueError("normalization='frequency' needs the frame durations")
        d = np.maximum(np.asarray(durations_us, dtype=np.float64), 1.0)
        f /= d.reshape(*d.shape, 1, 1, 1).astype(np.float32)
        return f
    lead = f.shape[:-2]
    flat = f.reshape(*lead, -1)  # per (frame, polarity)
    if normalization in ("frame_max", "frame_sum"):
        flat = f.reshape(*f.shape[:-3], -1)  # per frame, all polarities
        ref = flat.max(-1, keepdims=True) if normalization == "frame_max" else flat.sum(
            -1, keepdims=True)
        flat /= np.where(ref > 0, ref, 1.0)
        return f
    if normalization == "max":
        flat /= np.maximum(flat.max(-1, keepdims=True), EPS)
    elif normalization == "sum":
        flat /= np.maximum(flat.sum(-1, keepdims=True), EPS)
    else:  # norm
        mean = flat.mean(-1, keepdims=True)
        std = np.sqrt(np.maximum(flat.var(-1, keepdims=True), EPS))
        flat -= mean
        flat /= std
    return f
