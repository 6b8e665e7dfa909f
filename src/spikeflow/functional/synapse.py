"""Synapse filters of snn-iir (Fang et al., IJCAI 2020): plain reference loops (the oracle).

All sequences are time-first ``[T, ...]``; a layer passes ``[T, B, *features]``. A state holds the
filter's memory for one step (shape ``x.shape[1:]``); ``state=None`` means rest (zeros). Coefficients
broadcast against one step ``x[t]``, so per-element coefficients have the feature shape.

* dual-exponential IIR synapse (second order)::

      psp[t] = a1 psp[t-1] + a2 psp[t-2] + b1 x[t]
      a1 = e^{-1/tau_m} + e^{-1/tau_s},  a2 = -e^{-1/tau_m} e^{-1/tau_s},  b1 = e^{-1/tau_m} - e^{-1/tau_s}

  (the difference of two first-order filters advanced by one step: an impulse gives psp[0] = b1);
* first-order low pass: ``psp[t] = a psp[t-1] + x[t]``, ``a = e^{-1/tau}``;
* normalised dual-exponential read-out (associative-memory output filter, not trainable)::

      m[t] = e^{-1/tau_m} m[t-1] + x[t];  s[t] = e^{-1/tau_s} s[t-1] + x[t];  out[t] = v0 (m[t] - s[t])
      v0 = eta^{eta/(eta-1)} / (eta - 1),  eta = tau_m / tau_s

  so that the continuous-time peak response to one spike is exactly 1.

Time constants are in steps. The fused CPU kernels in ``ops/_cpu/synapse.py`` compute the same
functions and are tested against these loops.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Union

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DualExpState", "LowPassState", "ReadoutState",
    "check_state", "check_time_constants", "dual_exp_coefficients", "low_pass_coefficient",
    "readout_gain",
    "dual_exp_iir", "low_pass", "dual_exp_readout", "readout_filter",
]


class DualExpState(NamedTuple):
    """Memory of the dual-exponential IIR filter: ``psp1 = psp[t-1]``, ``psp2 = psp[t-2]``."""

    psp1: Tensor
    psp2: Tensor


class LowPassState(NamedTuple):
    """Memory of the first-order low pass: ``psp = psp[t-1]``."""

    psp: Tensor


class ReadoutState(NamedTuple):
    """Memory of the read-out filter: the two first-order traces ``m`` (slow) and ``s`` (fast)."""

    m: Tensor
    s: Tensor


def check_time_constants(tau_m: float, tau_s: float) -> None:
    """Raise ``ValueError`` unless ``tau_m > tau_s > 0`` (both in steps)."""
    if not (isinstance(tau_s, (int, float)) and math.isfinite(tau_s) and tau_s > 0):
        raise ValueError(f"tau_s must be a finite number > 0 (steps), got {tau_s!r}")
    if not (isinstance(tau_m, (int, float)) and math.isfinite(tau_m) and tau_m > tau_s):
        raise ValueError(f"tau_m must be a finite number > tau_s = {tau_s!r} (steps), got {tau_m!r}")


def dual_exp_coefficients(tau_m: float = 4.0, tau_s: float = 1.0) -> tuple[float, float, float]:
    """``(a1, a2, b1)`` of the dual-exponential IIR synapse for time constants in steps."""
    check_time_constants(tau_m, tau_s)
    dm, ds = math.exp(-1.0 / tau_m), math.exp(-1.0 / tau_s)
    return dm + ds, -dm * ds, dm - ds


def low_pass_coefficient(tau: float) -> float:
    """Decay ``a = e^{-1/tau}`` of the first-order low pass (``tau`` in steps, > 0)."""
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0):
        raise ValueError(f"tau must be a finite number > 0 (steps), got {tau!r}")
    return math.exp(-1.0 / tau)


def readout_gain(tau_m: float = 8.0, tau_s: float = 2.0) -> float:
    """``v0 = eta^{eta/(eta-1)} / (eta-1)``, ``eta = tau_m/tau_s``.

    With it the continuous-time peak of ``v0 (e^{-t/tau_m} - e^{-t/tau_s})`` is exactly 1.
    """
    check_time_constants(tau_m, tau_s)
    eta = tau_m / tau_s
    return eta ** (eta / (eta - 1.0)) / (eta - 1.0)


def _check_sequence(x: Tensor, name: str = "x") -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"{name} must have shape [T, ...] with T >= 1, got {tuple(x.shape)}")


def check_state(state: tuple, x: Tensor, size: int) -> None:
    """Raise ``ValueError`` unless ``state`` is ``size`` tensors, each shaped like one step ``x[0]``."""
    if not isinstance(state, tuple) or len(state) != size:
        raise ValueError(
            f"state must be a tuple of {size} tensors (or None for rest), got {type(state).__name__}"
            + (f" of length {len(state)}" if isinstance(state, tuple) else "")
        )
    for name, value in zip(getattr(state, "_fields", [str(i) for i in range(len(state))]), state):
        if not isinstance(value, Tensor) or value.shape != x.shape[1:]:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(
                f"state.{name} must be a tensor of shape {tuple(x.shape[1:])} (one step of x), got {got}"
            )


def dual_exp_iir(
    x: Tensor, a1: Tensor, a2: Tensor, b1: Tensor, state: Optional[DualExpState] = None
) -> tuple[Tensor, DualExpState]:
    """Reference loop of ``psp[t] = a1 psp[t-1] + a2 psp[t-2] + b1 x[t]``.

    Shape: ``x`` ``[T, ...]``; ``a1, a2, b1`` broadcast against ``x[t]``; returns ``psp`` like ``x`` and
    the state after the last step.
    """
    _check_sequence(x)
    if state is None:
        zeros = torch.zeros_like(x[0])
        state = DualExpState(zeros, zeros)
    check_state(state, x, 2)
    p1, p2 = state
    out = []
    for xt in x.unbind(0):
        p = a1 * p1 + a2 * p2 + b1 * xt
        out.append(p)
        p1, p2 = p, p1
    return torch.stack(out), DualExpState(p1, p2)


def low_pass(x: Tensor, a: Tensor, state: Optional[LowPassState] = None) -> tuple[Tensor, LowPassState]:
    """Reference loop of ``psp[t] = a psp[t-1] + x[t]``; ``a`` broadcasts against ``x[t]``."""
    _check_sequence(x)
    if state is None:
        state = LowPassState(torch.zeros_like(x[0]))
    check_state(state, x, 1)
    (p,) = state
    out = []
    for xt in x.unbind(0):
        p = a * p + xt
        out.append(p)
    return torch.stack(out), LowPassState(p)


def dual_exp_readout(
    x: Tensor, tau_m: float = 8.0, tau_s: float = 2.0, state: Optional[ReadoutState] = None
) -> tuple[Tensor, ReadoutState]:
    """Reference loop of the normalised dual-exponential read-out ``out = v0 (m - s)`` (see module doc)."""
    v0 = readout_gain(tau_m, tau_s)
    _check_sequence(x)
    if state is None:
        zeros = torch.zeros_like(x[0])
        state = ReadoutState(zeros, zeros)
    check_state(state, x, 2)
    dm, ds = math.exp(-1.0 / tau_m), math.exp(-1.0 / tau_s)
    m, s = state
    out = []
    for xt in x.unbind(0):
        m = dm * m + xt
        s = ds * s + xt
        out.append((m - s) * v0)
    return torch.stack(out), ReadoutState(m, s)


def readout_filter(
    x: Union[Tensor, np.ndarray], tau_m: float = 8.0, tau_s: float = 2.0
) -> Union[Tensor, np.ndarray]:
    """Filter a time-first sequence ``[T, ...]`` from rest with the read-out filter.

    Accepts a torch tensor or a numpy array and returns the same kind (numpy input is computed in its
    float dtype, integer/bool input as float32). Used to build associative-memory targets.

    >>> import numpy as np
    >>> y = readout_filter(np.eye(6, 1), tau_m=8.0, tau_s=2.0)   # one spike at t=0
    >>> float(y[0, 0]), round(float(y.max()), 4)
    (0.0, 0.9973)
    """
    if isinstance(x, np.ndarray):
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float32
        out, _ = dual_exp_readout(torch.from_numpy(np.ascontiguousarray(x, dtype=dtype)), tau_m, tau_s)
        return out.numpy()
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a numpy array or torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        x = x.float()
    out, _ = dual_exp_readout(x, tau_m, tau_s)
    return out
