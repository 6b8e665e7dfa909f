"""``spikeflow::lif``: the LIF family (LIF, PLIF, IF) over ``x [T, N]``.

Per step (``vr`` = v_reset, 0 in the charge when the reset is soft)::

    H = V + (X - (V - vr)) / tau        LIF, decay_input      (mode 1)
    H = V - (V - vr) / tau + X          LIF, not decay_input
    H = V + (X - (V - vr)) * k          PLIF (mode 2, k = 1/tau a 0-dim tensor); likewise without decay_input
    H = V + X                           IF (mode 0)
    S = H >= thr  (H > thr when strict)
    V = vr if S else H  (hard reset)   |   H - thr if S else H  (soft reset)

Backward (reverse time, ``gV`` the gradient reaching ``V[t]``, ``sg`` the surrogate derivative)::

    gS = dL/dS[t] + gV * dV/dS        dV/dS = vr - H (hard), -thr (soft); 0 if detach_reset
    gH = gS * sg(H - thr) + gV * dV/dH|S     dV/dH|S = 1 - S (hard), 1 (soft)
    dL/dX[t] = gH dH/dX ;  gV <- gH dH/dV ;  dL/dalpha += gS dF/dalpha
    dL/dk += gH (X - (V[t-1] - vr)) = gH (H - V[t-1]) / k  (decay_input)   or   gH (vr - V[t-1])

``params = [tau, v_threshold, v_reset]``, ``flags = [mode, decay_input, hard, strict,
detach_reset, surrogate]``, ``states = [v0]``, ``tparams = [k, alpha]``. The reference below is the
oracle of the fused kernels (``_cpu/lif.py``, ``_triton/lif.py``) and what export decomposes to.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from spikeflow.ops._neuron_op import Family, param_tensor, register, run, state_dtype
from spikeflow.ops.surrogate_math import derivative, derivative_param

__all__ = ["lif", "IF_MODE", "LIF_MODE", "PLIF_MODE", "FAMILY"]

IF_MODE, LIF_MODE, PLIF_MODE = 0, 1, 2


def _charge(v: Tensor, xt: Tensor, mode: int, decay: bool, tau_or_k, vr: float) -> Tensor:
    if mode == IF_MODE:
        return v + xt
    if mode == LIF_MODE:
        return v + (xt - (v - vr)) / tau_or_k if decay else v - (v - vr) / tau_or_k + xt
    return v + (xt - (v - vr)) * tau_or_k if decay else v - (v - vr) * tau_or_k + xt


def _fire(h: Tensor, thr: float, vr: float, hard: bool, strict: bool) -> tuple[Tensor, Tensor]:
    """``(S as bool, V after the reset)``."""
    s = h > thr if strict else h >= thr
    v = torch.where(s, torch.full_like(h, vr), h) if hard else torch.where(s, h - thr, h)
    return s, v


def reference_forward(x: Tensor, states: Sequence[Tensor], tparams: Sequence[Tensor],
                      params: Sequence[float], flags: Sequence[int], keep: bool) -> list[Tensor]:
    """Plain-torch forward: ``[spikes, v_final, H or [0, N]]`` (state arithmetic in
    :func:`~spikeflow.ops._neuron_op.state_dtype`)."""
    tau, thr, vr = params
    mode, decay, hard, strict = flags[0], bool(flags[1]), bool(flags[2]), bool(flags[3])
    sd = state_dtype(x.dtype)
    v = states[0].to(sd)
    # a 0-dim tensor tau: CUDA divides a tensor by a Python float as a multiply by its float32
    # reciprocal, by a tensor exactly (IEEE division, as the CPU and the fused kernels do)
    tau_or_k = tparams[0].detach().to(sd) if mode == PLIF_MODE else \
        torch.full((), tau, dtype=sd, device=x.device)  # a graph op when traced (torch.tensor is not)
    spikes, hs = [], []
    for xt in x.unbind(0):
        h = _charge(v, xt.to(sd), mode, decay, tau_or_k, vr)
        s, v = _fire(h, thr, vr, hard, strict)
        spikes.append(s.to(x.dtype))
        if keep:
            hs.append(h)
    saved = torch.stack(hs) if keep else x.new_empty((0, x.shape[1]), dtype=sd)
    return [torch.stack(spikes), v.to(x.dtype), saved]


def reference_backward(saved: Tensor, gs: Tensor, gstates: Sequence[Tensor],
                       states: Sequence[Tensor], tparams: Sequence[Tensor], params: Sequence[float],
                       flags: Sequence[int], needs: Sequence[bool]) -> list[Tensor]:
    """Plain-torch backward from the saved ``H``: ``[dL/dx, dL/dv0, dL/dk, dL/dalpha]``."""
    tau, thr, vr = params
    mode, decay, hard, strict, detach, code = (int(f) for f in flags)
    sd = saved.dtype
    a = tparams[1].detach().to(sd)
    k = tparams[0].detach().to(sd)
    if mode == IF_MODE:
        cx, cv = 1.0, 1.0
    elif mode == LIF_MODE:
        cx, cv = (1.0 / tau if decay else 1.0), 1.0 - 1.0 / tau
    else:
        cx, cv = (k if decay else 1.0), 1.0 - k
    gv = gstates[0].to(sd)
    gk = torch.zeros((), dtype=torch.float64, device=saved.device)
    ga = torch.zeros((), dtype=torch.float64, device=saved.device)
    T = saved.shape[0]
    gx = torch.empty_like(saved)
    for t in range(T - 1, -1, -1):
        h = saved[t]
        s, _ = _fire(h, thr, vr, bool(hard), bool(strict))
        z = h - thr
        gtot = gs[t].to(sd)
        if not detach:
            gtot = gtot + gv * ((vr - h) if hard else -thr)
        gh = gtot * derivative(z, code, a) + (gv * (~s) if hard else gv)
        if needs[1]:
            ga = ga + (gtot * derivative_param(z, code, a)).sum(dtype=torch.float64)
        if mode == PLIF_MODE and needs[0]:
            vprev = _fire(saved[t - 1], thr, vr, bool(hard), bool(strict))[1] if t > 0 \
                else states[0].to(sd)
            dk = (h - vprev) / k if decay else (vr - vprev)
            gk = gk + (gh * dk).sum(dtype=torch.float64)
        gx[t] = gh * cx
        gv = gh * cv
    return [gx, gv, gk, ga]


def _cuda_forward(x, states, tparams, params, flags, keep):
    from spikeflow.ops._triton.lif import lif_forward

    k, alpha = tparams  # 0-dim float32/float64: the kernels read them through their pointer
    return list(lif_forward(x, states[0], k, alpha, list(params), list(flags), keep))


def _cuda_backward(saved, gs, gstates, states, tparams, params, flags, needs):
    from spikeflow.ops._triton.lif import lif_backward

    k, alpha = tparams
    return list(lif_backward(saved, gs, gstates[0], states[0], k, alpha, list(params), list(flags),
                             bool(needs[0]), bool(needs[1])))


FAMILY = Family("lif", 1, 2, reference_forward, reference_backward, "spikeflow.ops._cpu.lif",
                _cuda_forward, _cuda_backward,
                backward_reads_states=lambda flags: flags[0] == PLIF_MODE)  # PLIF's dL/dk at t=0
register(FAMILY)


def lif(x: Tensor, v0: Tensor, *, mode: int, tau: float = 2.0, k: Tensor | None = None,
        v_threshold: float = 1.0, v_reset: float | None = 0.0, decay_input: bool = True,
        detach_reset: bool = False, strict: bool = False, surrogate: int = 0,
        alpha: Tensor | float = 4.0) -> tuple[Tensor, Tensor]:
    """LIF/PLIF/IF over ``x [T, N]`` from ``v0 [N]``: ``(spikes [T, N], v_final [N])``.

    ``mode``: :data:`IF_MODE`, :data:`LIF_MODE` (``tau``, steps) or :data:`PLIF_MODE` (``k`` =
    1/tau, a 0-dim tensor, learnable). ``v_reset=None``: soft reset. ``surrogate``: a code of
    :mod:`spikeflow.ops.codes`; ``alpha`` its parameter (a tensor when learnable).
    """
    hard = v_reset is not None
    if mode == PLIF_MODE and k is None:
        raise ValueError("lif: mode=PLIF_MODE needs k (1/tau as a 0-dim tensor)")
    kt = k.reshape(()) if k is not None else param_tensor(1.0, x)  # IF/LIF: an unread stand-in
    at = param_tensor(alpha, x)
    params = [float(tau), float(v_threshold), float(v_reset) if hard else 0.0]
    flags = [int(mode), int(bool(decay_input)), int(hard), int(bool(strict)),
             int(bool(detach_reset)), int(surrogate)]
    s, v = run(FAMILY, x, [v0], [kt, at], params, flags)
    return s, v
