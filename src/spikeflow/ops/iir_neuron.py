"""``spikeflow::iir_neuron``: the snn-iir neuron (Fang et al., IJCAI 2020).

State ``(v, r)``, rest = 0; per step::

    v[t] = m v[t-1] + I[t] - r[t-1] ;  s[t] = v[t] >= thr (> when strict) ;  r[t] = a r[t-1] + reset_v s[t]

Backward (``gv``, ``gr`` the gradients reaching ``v[t]``, ``r[t]``)::

    gS = dL/ds[t] + reset_v gr (0 if detach_reset) ;  gV = gv + gS sg(v[t] - thr)
    dL/dI[t] = gV ;  gv <- m gV ;  gr <- a gr - gV ;  dL/dalpha += gS dF/dalpha

``params = [m, a, v_threshold, reset_v]``, ``flags = [strict, detach_reset, surrogate]``,
``states = [v0, r0]``, ``tparams = [alpha]``; ``V`` is saved. Fused: ``_cpu/iir_neuron.py``
(numba), ``_triton/iir_neuron.py``.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from spikeflow.ops._neuron_op import Family, param_tensor, register, run, state_dtype
from spikeflow.ops.surrogate_math import derivative, derivative_param

__all__ = ["iir_neuron", "FAMILY"]


def reference_forward(x: Tensor, states: Sequence[Tensor], tparams: Sequence[Tensor],
                      params: Sequence[float], flags: Sequence[int], keep: bool) -> list[Tensor]:
    """Plain-torch forward: ``[spikes, v_final, r_final, V or [0, N]]``."""
    m, a, thr, rv = params
    strict = bool(flags[0])
    sd = state_dtype(x.dtype)
    v, r = (s.to(sd) for s in states)
    spikes, vs = [], []
    for xt in x.unbind(0):
        v = m * v + xt.to(sd) - r
        s = (v > thr if strict else v >= thr).to(sd)
        r = a * r + rv * s
        spikes.append(s.to(x.dtype))
        if keep:
            vs.append(v)
    saved = torch.stack(vs) if keep else x.new_empty((0, x.shape[1]), dtype=sd)
    return [torch.stack(spikes), v.to(x.dtype), r.to(x.dtype), saved]


def reference_backward(saved: Tensor, gs: Tensor, gstates: Sequence[Tensor],
                       states: Sequence[Tensor], tparams: Sequence[Tensor], params: Sequence[float],
                       flags: Sequence[int], needs: Sequence[bool]) -> list[Tensor]:
    """Plain-torch backward from the saved ``V``: ``[dL/dx, dL/dv0, dL/dr0, dL/dalpha]``."""
    m, a, thr, rv = params
    strict, detach, code = (int(f) for f in flags)
    p = tparams[0].detach().to(saved.dtype)
    gv, gr = (g.to(saved.dtype) for g in gstates)
    ga = torch.zeros((), dtype=torch.float64, device=saved.device)
    gx = torch.empty_like(saved)
    for t in range(saved.shape[0] - 1, -1, -1):
        z = saved[t] - thr
        gtot = gs[t].to(saved.dtype)
        if not detach:
            gtot = gtot + gr * rv
        gvt = gv + gtot * derivative(z, code, p)
        if needs[0]:
            ga = ga + (gtot * derivative_param(z, code, p)).sum(dtype=torch.float64)
        gx[t] = gvt
        gv = m * gvt
        gr = a * gr - gvt
    return [gx, gv, gr, ga]


def _cuda_forward(x, states, tparams, params, flags, keep):
    from spikeflow.ops._triton.iir_neuron import iir_neuron_forward

    return list(iir_neuron_forward(x, states[0], states[1], tparams[0], list(params),
                                   list(flags), keep))


def _cuda_backward(saved, gs, gstates, states, tparams, params, flags, needs):
    from spikeflow.ops._triton.iir_neuron import iir_neuron_backward

    return list(iir_neuron_backward(saved, gs, gstates[0], gstates[1], tparams[0],
                                    list(params), list(flags), bool(needs[0])))


FAMILY = Family("iir_neuron", 2, 1, reference_forward, reference_backward,
                "spikeflow.ops._cpu.iir_neuron", _cuda_forward, _cuda_backward)
register(FAMILY)


def iir_neuron(x: Tensor, v0: Tensor, r0: Tensor, *, m: float, a: float, v_threshold: float = 1.0,
               reset_v: float = 1.0, detach_reset: bool = False, strict: bool = True,
               surrogate: int = 3, alpha: Tensor | float = 0.4) -> tuple[Tensor, Tensor, Tensor]:
    """snn-iir neuron over ``x [T, N]`` from ``(v0, r0) [N]``: ``(spikes, v_final, r_final)``;
    ``m`` the membrane decay (0 without the membrane filter), ``a`` the reset-trace decay."""
    params = [float(m), float(a), float(v_threshold), float(reset_v)]
    flags = [int(bool(strict)), int(bool(detach_reset)), int(surrogate)]
    s, v, r = run(FAMILY, x, [v0, r0], [param_tensor(alpha, x)], params, flags)
    return s, v, r
