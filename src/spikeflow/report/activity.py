"""The activity of one input sample: its frames and the spikes of every layer (for figures)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor, nn

from spikeflow.metrics.recorder import SPIKING, SpikeRecorder


@dataclass
class SampleActivity:
    """One sample seen by a model.

    Attributes:
        frames: the model input ``[T, C, H, W]`` (``None`` for flat inputs).
        spikes: spiking layer name -> spikes ``[T, N]`` (neurons flattened).
        label: the true class, ``prediction`` the predicted one (when known).
    """

    frames: Optional[np.ndarray] = None
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    label: Optional[int] = None
    prediction: Optional[int] = None


@torch.no_grad()
def sample_activity(
    model: nn.Module,
    x: Tensor,
    label: Optional[int] = None,
    forward: Optional[Callable[[nn.Module, Tensor], Tensor]] = None,
) -> SampleActivity:
    """Run ``model`` on one sample ``x`` ``[T, 1, ...]`` and keep every spiking layer's spikes."""
    if x.dim() < 3 or x.shape[1] != 1:
        raise ValueError(f"sample_activity expects one sample of shape [T, 1, ...], got {tuple(x.shape)}")
    was_training = model.training
    model.eval()
    try:
        with SpikeRecorder(model, recurrent=False, keep_spikes=True) as rec:
            out = forward(model, x) if forward else model(x)
    finally:
        model.train(was_training)
    spikes = {
        r.name: r.stacked("spikes")[:, 0].reshape(r.T, -1).float().numpy()
        for r in rec if r.kind == SPIKING and r.spikes
    }
    frames = x[:, 0].detach().float().cpu().numpy()
    prediction = None
    if isinstance(out, Tensor) and out.dim() == 3:
        prediction = int(out.float().mean(dim=0)[0].argmax())
    return SampleActivity(
        frames=frames if frames.ndim in (3, 4) else None,
        spikes=spikes,
        label=None if label is None else int(label),
        prediction=prediction,
    )


__all__ = ["SampleActivity", "sample_activity"]
