"""Multi-step snn-iir neuron (Fang et al., "Exploiting neuron and synapse filter dynamics in
spatial temporal learning of deep spiking neural network", IJCAI 2020).

State ``(v, r)``, rest = 0; ``a = exp(-1/tau_m)``; ``m = a`` with ``membrane_filter`` else 0::

    v[t] = m * v[t-1] + I[t] - r[t-1]
    s[t] = H(v[t] - v_threshold)          (v > thr when strict, the snn-iir default)
    r[t] = a * r[t-1] + reset_v * s[t]    (a decaying inhibitory reset trace, differentiated)

Default surrogate: Gaussian pdf with sigma 0.4 centred on the threshold. ``backend="auto"``/``"fused"``
run the op ``spikeflow::iir_neuron`` (:mod:`spikeflow.ops.iir_neuron`: numba on CPU, Triton on
CUDA); ``"reference"`` runs :func:`iir_neuron_reference`, the oracle.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from spikeflow import ops
from spikeflow.functional._common import StepLayout, initial_state
from spikeflow.functional.surrogate import GAUSSIAN, SurrogateSpec, spike

__all__ = ["iir_neuron", "iir_neuron_reference", "iir_coefficients"]

_DEFAULT_SURROGATE = SurrogateSpec(GAUSSIAN, 0.4)


def iir_coefficients(tau_m: float, membrane_filter: bool) -> tuple[float, float]:
    """``(m, a)``: membrane decay (0 without the membrane filter) and reset-trace decay."""
    a = math.exp(-1.0 / tau_m)
    return (a if membrane_filter else 0.0), a


def iir_neuron_reference(x: Tensor, v: Tensor, r: Tensor, *, m: float, a: float,
                         v_threshold: float, reset_v: float, detach_reset: bool,
                         surrogate: SurrogateSpec, strict: bool) -> tuple[Tensor, Tensor, Tensor]:
    """The plain loop (autograd backward): ``(spikes [T, ...], v_final, r_final)``."""
    spikes = []
    for xt in x:
        v = m * v + xt - r
        s = spike(v - v_threshold, surrogate, strict)
        r = a * r + reset_v * (s.detach() if detach_reset else s)
        spikes.append(s)
    return torch.stack(spikes), v, r


def iir_neuron(x: Tensor, v: Optional[Tensor] = None, r: Optional[Tensor] = None, *,
               tau_m: float = 4.0, membrane_filter: bool = False, v_threshold: float = 1.0,
               reset_v: float = 1.0, detach_reset: bool = False,
               surrogate: SurrogateSpec = _DEFAULT_SURROGATE, strict: bool = True,
               backend: str = "auto") -> tuple[Tensor, Tensor, Tensor]:
    """snn-iir neuron over ``x [T, ...]`` from ``(v, r)`` (``None`` = rest): ``(spikes, v, r)``."""
    v = initial_state(x, v, "v")
    r = initial_state(x, r, "r")
    if x.shape[0] == 0:
        return torch.zeros_like(x), v, r
    m, a = iir_coefficients(tau_m, membrane_filter)
    if not ops.use_fused(backend, x, "IIRNeuron"):
        return iir_neuron_reference(x, v, r, m=m, a=a, v_threshold=v_threshold, reset_v=reset_v,
                                    detach_reset=detach_reset, surrogate=surrogate, strict=strict)
    lay = StepLayout(x)
    s, v_final, r_final = ops.iir_neuron(lay.flat(x), lay.flat_state(v), lay.flat_state(r), m=m,
                                         a=a, v_threshold=v_threshold, reset_v=reset_v,
                                         detach_reset=detach_reset, strict=strict,
                                         surrogate=int(surrogate.code), alpha=surrogate.param)
    return lay.unflat(s), lay.unflat_state(v_final), lay.unflat_state(r_final)
