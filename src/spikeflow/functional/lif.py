"""Multi-step LIF, PLIF and IF dynamics (SpikingJelly semantics): reference loop and dispatch.

For an input ``x [T, ...]`` and membrane ``v [...]`` (rest = 0), each step::

    H = V + (X - (V - v_reset)) / tau        LIF, decay_input=True
    H = V - (V - v_reset) / tau + X          LIF, decay_input=False
    H = V + (X - (V - v_reset)) * k          PLIF (k = 1/tau = sigmoid(w)); likewise without decay_input
    H = V + X                                IF
    S = H >= v_threshold                     (H > v_threshold when strict)
    V = S * v_reset + (1 - S) * H            hard reset (v_reset a float)
    V = H - S * v_threshold                  soft reset (v_reset=None; v_reset counts as 0 above)

``detach_reset`` uses ``S.detach()`` in the reset. The spike uses the surrogate gradient of
``surrogate`` (:class:`~spikeflow.functional.surrogate.SurrogateSpec`). Fang et al., "Incorporating
learnable membrane time constant to enhance learning of spiking neural networks", ICCV 2021.

``backend="auto"``/``"fused"`` run the op ``spikeflow::lif`` (:mod:`spikeflow.ops.lif`: numba on
CPU, Triton on CUDA); ``"reference"`` runs the loop below with autograd (the oracle).
"""
from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor

from spikeflow import ops
from spikeflow.functional._common import StepLayout, initial_state
from spikeflow.functional.surrogate import SIGMOID, SurrogateSpec, spike

__all__ = ["lif", "plif", "integrate_fire", "lif_reference", "IF_MODE", "LIF_MODE", "PLIF_MODE"]

IF_MODE, LIF_MODE, PLIF_MODE = ops.IF_MODE, ops.LIF_MODE, ops.PLIF_MODE
_DEFAULT_SURROGATE = SurrogateSpec(SIGMOID, 4.0)


def lif_reference(x: Tensor, v: Tensor, *, mode: int, tau_or_k: Union[float, Tensor],
                  v_threshold: float, v_reset: Optional[float], decay_input: bool,
                  detach_reset: bool, surrogate: SurrogateSpec, strict: bool) -> tuple[Tensor, Tensor]:
    """The plain loop (one torch op per step, autograd does the backward): the oracle.

    ``mode``: ``IF_MODE`` (``tau_or_k`` unused), ``LIF_MODE`` (``tau_or_k`` = tau, divides) or
    ``PLIF_MODE`` (``tau_or_k`` = k = 1/tau, multiplies): the one mode-dependent leak operand,
    named for both its meanings. Returns ``(spikes [T, ...], v_final [...])``.
    """
    vr = 0.0 if v_reset is None else v_reset
    spikes = []
    for xt in x:
        if mode == IF_MODE:
            h = v + xt
        elif mode == LIF_MODE:
            h = v + (xt - (v - vr)) / tau_or_k if decay_input else v - (v - vr) / tau_or_k + xt
        else:
            h = v + (xt - (v - vr)) * tau_or_k if decay_input else v - (v - vr) * tau_or_k + xt
        s = spike(h - v_threshold, surrogate, strict)
        sr = s.detach() if detach_reset else s
        v = h - sr * v_threshold if v_reset is None else sr * v_reset + (1.0 - sr) * h
        spikes.append(s)
    return torch.stack(spikes), v


def _run(x: Tensor, v: Optional[Tensor], mode: int, tau_or_k: Union[float, Tensor],
         v_threshold: float, v_reset: Optional[float], decay_input: bool, detach_reset: bool,
         surrogate: SurrogateSpec, strict: bool, backend: str, what: str) -> tuple[Tensor, Tensor]:
    v = initial_state(x, v, "v")
    if x.shape[0] == 0:
        return torch.zeros_like(x), v
    if not ops.use_fused(backend, x, what):
        return lif_reference(x, v, mode=mode, tau_or_k=tau_or_k, v_threshold=v_threshold,
                             v_reset=v_reset, decay_input=decay_input, detach_reset=detach_reset,
                             surrogate=surrogate, strict=strict)
    lay = StepLayout(x)
    s, v_final = ops.lif(lay.flat(x), lay.flat_state(v), mode=mode,
                         tau=float(tau_or_k) if mode == LIF_MODE else 1.0,
                         k=tau_or_k if mode == PLIF_MODE else None, v_threshold=v_threshold,
                         v_reset=v_reset, decay_input=decay_input, detach_reset=detach_reset,
                         strict=strict, surrogate=int(surrogate.code), alpha=surrogate.param)
    return lay.unflat(s), lay.unflat_state(v_final)


def lif(x: Tensor, v: Optional[Tensor] = None, *, tau: float = 2.0, v_threshold: float = 1.0,
        v_reset: Optional[float] = 0.0, decay_input: bool = True, detach_reset: bool = False,
        surrogate: SurrogateSpec = _DEFAULT_SURROGATE, strict: bool = False,
        backend: str = "auto") -> tuple[Tensor, Tensor]:
    """LIF over ``x [T, ...]`` from ``v`` (``None`` = rest): ``(spikes [T, ...], v_final [...])``."""
    return _run(x, v, LIF_MODE, tau, v_threshold, v_reset, decay_input, detach_reset, surrogate,
                strict, backend, "LIF")


def plif(x: Tensor, v: Optional[Tensor] = None, *, w: Tensor, v_threshold: float = 1.0,
         v_reset: Optional[float] = 0.0, decay_input: bool = True, detach_reset: bool = False,
         surrogate: SurrogateSpec = _DEFAULT_SURROGATE, strict: bool = False,
         backend: str = "auto") -> tuple[Tensor, Tensor]:
    """PLIF: LIF with ``1/tau = sigmoid(w)``, ``w`` a (learnable) scalar tensor."""
    k = torch.sigmoid(w)
    return _run(x, v, PLIF_MODE, k, v_threshold, v_reset, decay_input, detach_reset, surrogate,
                strict, backend, "PLIF")


def integrate_fire(x: Tensor, v: Optional[Tensor] = None, *, v_threshold: float = 1.0,
                   v_reset: Optional[float] = 0.0, detach_reset: bool = False,
                   surrogate: SurrogateSpec = _DEFAULT_SURROGATE, strict: bool = False,
                   backend: str = "auto") -> tuple[Tensor, Tensor]:
    """Integrate-and-fire (no leak): ``H = V + X``."""
    return _run(x, v, IF_MODE, 1.0, v_threshold, v_reset, True, detach_reset, surrogate, strict,
                backend, "IF")
