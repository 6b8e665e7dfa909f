"""``spikeflow::decay_lif``: the STBP decay LIF (Wu et al. 2018; He et al. 2020; ASA arch A).

With ``v`` the membrane after the previous step's reset (rest = 0), per step::

    U = decay * v + I ;  S = U >= thr (U > thr when strict) ;  v <- U * (1 - S)

Backward, ``gv`` the gradient reaching ``v``::

    gS = dL/dS - gv * U  (0 reset term if detach_reset) ;  gU = gS * sg(U - thr) + gv * (1 - S)
    dL/dI = gU ;  gv <- decay * gU ;  dL/dalpha += gS * dF/dalpha

``params = [decay, v_threshold]``, ``flags = [strict, detach_reset, surrogate]``,
``states = [v0]``, ``tparams = [alpha]``; ``U`` is saved. Fused: ``_cpu/decay_lif.py`` (numba),
``_triton/decay_lif.py``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from spikeflow.ops._neuron_op import Family, param_tensor, register, run, state_dtype
from spikeflow.ops.surrogate_math import derivative, derivative_param

__all__ = ["decay_lif", "FAMILY"]


def reference_forward(x: Tensor, states: Sequence[Tensor], tparams: Sequence[Tensor],
                      params: Sequence[float], flags: Sequence[int], keep: bool) -> list[Tensor]:
    """Plain-torch forward: ``[spikes, v_final, U or [0, N]]``."""
    decay, thr = params
    strict = bool(flags[0])
    sd = state_dtype(x.dtype)
    v = states[0].to(sd)
    spikes, us = [], []
    for xt in x.unbind(0):
        u = decay * v + xt.to(sd)
        s = u > thr if strict else u >= thr
        v = torch.where(s, torch.zeros_like(u), u)
        spikes.append(s.to(x.dtype))
        if keep:
            us.append(u)
    saved = torch.stack(us) if keep else x.new_empty((0, x.shape[1]), dtype=sd)
    return [torch.stack(spikes), v.to(x.dtype), saved]


def reference_backward(saved: Tensor, gs: Tensor, gstates: Sequence[Tensor],
                       states: Sequence[Tensor], tparams: Sequence[Tensor], params: Sequence[float],
                       flags: Sequence[int], needs: Sequence[bool]) -> list[Tensor]:
    """Plain-torch backward from the saved ``U``: ``[dL/dx, dL/dv0, dL/dalpha]``."""
    decay, thr = params
    strict, detach, code = (int(f) for f in flags)
    a = tparams[0].detach().to(saved.dtype)
    gv = gstates[0].to(saved.dtype)
    ga = torch.zeros((), dtype=torch.float64, device=saved.device)
    gx = torch.empty_like(saved)
    for t in range(saved.shape[0] - 1, -1, -1):
        u = saved[t]
        s = u > thr if strict else u >= thr
        gtot = gs[t].to(saved.dtype)
        if not detach:
            gtot = gtot - gv * u
        z = u - thr
        gu = gtot * derivative(z, code, a) + gv * (~s)
        if needs[0]:
            ga = ga + (gtot * derivative_param(z, code, a)).sum(dtype=torch.float64)
        gx[t] = gu
        gv = decay * gu
    return [gx, gv, ga]


def _cuda_forward(x, states, tparams, params, flags, keep):
    from spikeflow.ops._triton.decay_lif import decay_lif_forward

    return list(decay_lif_forward(x, states[0], tparams[0], list(params), list(flags), keep))


def _cuda_backward(saved, gs, gstates, states, tparams, params, flags, needs):
    from spikeflow.ops._triton.decay_lif import decay_lif_backward

    return list(decay_lif_backward(saved, gs, gstates[0], tparams[0], list(params),
                                   list(flags), bool(needs[0])))


FAMILY = Family("decay_lif", 1, 1, reference_forward, reference_backward,
                "spikeflow.ops._cpu.decay_lif", _cuda_forward, _cuda_backward)
register(FAMILY)


def decay_lif(x: Tensor, v0: Tensor, *, decay: float = 0.3, v_threshold: float = 0.3,
              detach_reset: bool = False, strict: bool = True, surrogate: int = 2,
              alpha: Tensor | float = 0.5) -> tuple[Tensor, Tensor]:
    """Decay LIF over ``x [T, N]`` from ``v0 [N]``: ``(spikes [T, N], v_final [N])``."""
    params = [float(decay), float(v_threshold)]
    flags = [int(bool(strict)), int(bool(detach_reset)), int(surrogate)]
    s, v = run(FAMILY, x, [v0], [param_tensor(alpha, x)], params, flags)
    return s, v
