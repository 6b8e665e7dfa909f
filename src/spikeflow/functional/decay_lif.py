"""Multi-step decay LIF of STBP (Wu et al. 2018) as used by He et al. 2020 and ASA-SNN arch A.

With ``v`` the membrane after the previous reset (rest = 0)::

    u[t] = decay * u[t-1] * (1 - s[t-1]) + I[t]   =   decay * v + I[t]
    s[t] = H(u[t] - v_threshold)     (u > thr when strict, the He2020 default; u >= thr otherwise)
    v    = u[t] * (1 - s[t])          (the reset path is differentiated unless detach_reset)

Defaults: decay 0.3, threshold 0.3, rectangle surrogate of width 0.5 (lens 0.25, height 2).
``backend="auto"``/``"fused"`` run the op ``spikeflow::decay_lif`` (:mod:`spikeflow.ops.decay_lif`:
numba on CPU, Triton on CUDA); ``"reference"`` runs :func:`decay_lif_reference`, the oracle.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from spikeflow import ops
from spikeflow.functional._common import StepLayout, initial_state
from spikeflow.functional.surrogate import RECTANGLE, SurrogateSpec, spike

__all__ = ["decay_lif", "decay_lif_reference"]

_DEFAULT_SURROGATE = SurrogateSpec(RECTANGLE, 0.5)


def decay_lif_reference(x: Tensor, v: Tensor, *, decay: float, v_threshold: float,
                        detach_reset: bool, surrogate: SurrogateSpec,
                        strict: bool) -> tuple[Tensor, Tensor]:
    """The plain loop (autograd backward): ``(spikes [T, ...], v_final [...])``."""
    spikes = []
    for xt in x:
        u = decay * v + xt
        s = spike(u - v_threshold, surrogate, strict)
        v = u * (1.0 - (s.detach() if detach_reset else s))
        spikes.append(s)
    return torch.stack(spikes), v


def decay_lif(x: Tensor, v: Optional[Tensor] = None, *, decay: float = 0.3, v_threshold: float = 0.3,
              detach_reset: bool = False, surrogate: SurrogateSpec = _DEFAULT_SURROGATE,
              strict: bool = True, backend: str = "auto") -> tuple[Tensor, Tensor]:
    """Decay LIF over ``x [T, ...]`` from ``v`` (``None`` = rest): ``(spikes, v_final)``."""
    v = initial_state(x, v, "v")
    if x.shape[0] == 0:
        return torch.zeros_like(x), v
    if not ops.use_fused(backend, x, "DecayLIF"):
        return decay_lif_reference(x, v, decay=decay, v_threshold=v_threshold,
                                   detach_reset=detach_reset, surrogate=surrogate, strict=strict)
    lay = StepLayout(x)
    s, v_final = ops.decay_lif(lay.flat(x), lay.flat_state(v), decay=decay, v_threshold=v_threshold,
                               detach_reset=detach_reset, strict=strict,
                               surrogate=int(surrogate.code), alpha=surrogate.param)
    return lay.unflat(s), lay.unflat_state(v_final)
