"""snn-iir synapse filters as modules (Fang et al., IJCAI 2020; seeds_spec R1.1).

* :class:`DualExpSynapse` ``psp[t] = a1 psp[t-1] + a2 psp[t-2] + b1 x[t]`` with one trainable
  ``(a1, a2, b1)`` per input element;
* :class:`LowPassSynapse` ``psp[t] = a psp[t-1] + x[t]`` with one trainable ``a`` per element;
* :class:`DualExpReadout` the fixed, normalised dual-exponential output filter of the associative-memory
  task (peak response of one spike = 1).

All map ``[T, B, *shape] -> [T, B, *shape]`` and follow :class:`~spikeflow.layers.stateful.StatefulFilter`
(explicit ``run(x, state)``, rest on every ``forward``, opt-in ``persistent``). Equations and the
reference loops are in :mod:`spikeflow.functional.synapse`; ``backend="auto"``/``"fused"`` run the
op ``spikeflow::iir2`` (:mod:`spikeflow.ops.synapse`: numba on CPU, Triton on CUDA).

>>> import torch
>>> syn = DualExpSynapse((3,), tau_m=4.0, tau_s=1.0)
>>> syn(torch.ones(5, 2, 3)).shape
torch.Size([5, 2, 3])
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
from torch import Tensor, nn

from spikeflow import ops
from spikeflow.functional import synapse as F
from spikeflow.layers.stateful import StatefulFilter

__all__ = ["DualExpSynapse", "LowPassSynapse", "DualExpReadout"]

ShapeLike = Union[int, Sequence[int]]


def _as_shape(shape: ShapeLike) -> torch.Size:
    if isinstance(shape, int):
        dims: tuple = (shape,)
    elif isinstance(shape, (tuple, list, torch.Size)):
        dims = tuple(shape)
    else:
        dims = (None,)
    if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in dims):
        raise ValueError(f"shape must be a positive int or a sequence of positive ints, got {shape!r}")
    return torch.Size(dims)


class _ElementwiseFilter(StatefulFilter):
    """Shared input check of filters whose coefficients have the per-step feature shape."""

    shape: torch.Size

    def check_features(self, x: Tensor) -> None:
        self.check_input(x)
        if x.shape[2:] != self.shape:
            raise ValueError(
                f"{type(self).__name__}(shape={tuple(self.shape)}) expects x of shape "
                f"[T, B, {', '.join(map(str, self.shape))}], got {tuple(x.shape)}"
            )


class DualExpSynapse(_ElementwiseFilter):
    """Dual-exponential IIR synapse, one trainable ``(a1, a2, b1)`` per input element.

    ``psp[t] = a1 psp[t-1] + a2 psp[t-2] + b1 x[t]`` initialised from ``tau_m``, ``tau_s`` (steps):
    ``a1 = e^{-1/tau_m} + e^{-1/tau_s}``, ``a2 = -e^{-1/tau_m} e^{-1/tau_s}``,
    ``b1 = e^{-1/tau_m} - e^{-1/tau_s}``.

    Args:
        shape: per-step feature shape (e.g. ``784`` or ``(32, 28, 28)``).
        tau_m, tau_s: time constants in steps, ``tau_m > tau_s > 0``.
        trainable: coefficients receive gradients (snn-iir ``train_coefficients``).
        persistent, backend: see :class:`StatefulFilter`.

    Shape: ``[T, B, *shape] -> [T, B, *shape]``; state :class:`~spikeflow.functional.synapse.DualExpState`
    ``(psp[t-1], psp[t-2])`` each ``[B, *shape]``.
    """

    def __init__(self, shape: ShapeLike, tau_m: float = 4.0, tau_s: float = 1.0, trainable: bool = True,
                 persistent: bool = False, backend: str = "auto") -> None:
        super().__init__(persistent, backend)
        self.shape = _as_shape(shape)
        self.tau_m, self.tau_s = float(tau_m), float(tau_s)
        a1, a2, b1 = F.dual_exp_coefficients(tau_m, tau_s)
        self.a1 = nn.Parameter(torch.full(self.shape, a1), requires_grad=trainable)
        self.a2 = nn.Parameter(torch.full(self.shape, a2), requires_grad=trainable)
        self.b1 = nn.Parameter(torch.full(self.shape, b1), requires_grad=trainable)

    def run(self, x: Tensor, state: Optional[F.DualExpState] = None) -> tuple[Tensor, F.DualExpState]:
        self.check_features(x)
        if not self.use_fused(x):
            return F.dual_exp_iir(x, self.a1, self.a2, self.b1, state)
        if state is not None:
            F.check_state(state, x, 2)
        p1, p2 = (None, None) if state is None else state
        psp = ops.iir2(x, self.a1, self.a2, self.b1, p1, p2)
        if x.shape[0] >= 2:
            previous = psp[-2]
        else:
            previous = p1 if p1 is not None else torch.zeros_like(psp[0])
        return psp, F.DualExpState(psp[-1], previous)

    def extra_repr(self) -> str:
        return (f"shape={tuple(self.shape)}, tau_m={self.tau_m}, tau_s={self.tau_s}, "
                f"trainable={self.a1.requires_grad}, {super().extra_repr()}")


class LowPassSynapse(_ElementwiseFilter):
    """First-order low-pass synapse ``psp[t] = a psp[t-1] + x[t]``, ``a = e^{-1/tau}`` per element.

    Args:
        shape: per-step feature shape.
        tau: time constant in steps (> 0); snn-iir's ``snn_mlp_2`` uses 4.
        trainable: ``a`` receives gradients.
        persistent, backend: see :class:`StatefulFilter`.

    Shape: ``[T, B, *shape] -> [T, B, *shape]``; state :class:`~spikeflow.functional.synapse.LowPassState`.
    """

    def __init__(self, shape: ShapeLike, tau: float = 4.0, trainable: bool = True,
                 persistent: bool = False, backend: str = "auto") -> None:
        super().__init__(persistent, backend)
        self.shape = _as_shape(shape)
        self.tau = float(tau)
        self.a = nn.Parameter(torch.full(self.shape, F.low_pass_coefficient(tau)), requires_grad=trainable)

    def run(self, x: Tensor, state: Optional[F.LowPassState] = None) -> tuple[Tensor, F.LowPassState]:
        self.check_features(x)
        if not self.use_fused(x):
            return F.low_pass(x, self.a, state)
        if state is not None:
            F.check_state(state, x, 1)
        psp = ops.low_pass(x, self.a, None if state is None else state.psp)
        return psp, F.LowPassState(psp[-1])

    def extra_repr(self) -> str:
        return (f"shape={tuple(self.shape)}, tau={self.tau}, trainable={self.a.requires_grad}, "
                f"{super().extra_repr()}")


class DualExpReadout(StatefulFilter):
    """Normalised dual-exponential read-out filter (snn-iir ``filter_layer``), no parameters.

    ``m[t] = e^{-1/tau_m} m[t-1] + x[t]``, ``s[t] = e^{-1/tau_s} s[t-1] + x[t]``, ``out = v0 (m - s)``,
    ``v0 = eta^{eta/(eta-1)}/(eta-1)``, ``eta = tau_m/tau_s``: one spike gives
    ``out[t] = v0 (e^{-t/tau_m} - e^{-t/tau_s})`` whose continuous-time peak is 1 (sampled peak
    0.9973 for the defaults 8 and 2).

    Shape: ``[T, B, ...] -> [T, B, ...]`` (any trailing shape); state
    :class:`~spikeflow.functional.synapse.ReadoutState` ``(m, s)``. The same filter is available as the pure
    function :func:`spikeflow.functional.synapse.readout_filter` (numpy or torch) for targets.
    """

    def __init__(self, tau_m: float = 8.0, tau_s: float = 2.0, persistent: bool = False,
                 backend: str = "auto") -> None:
        super().__init__(persistent, backend)
        self.v0 = F.readout_gain(tau_m, tau_s)
        self.tau_m, self.tau_s = float(tau_m), float(tau_s)

    @property
    def peak_time(self) -> float:
        """Continuous time (steps) of the peak response to a spike at t=0."""
        return math.log(self.tau_m / self.tau_s) * self.tau_m * self.tau_s / (self.tau_m - self.tau_s)

    def run(self, x: Tensor, state: Optional[F.ReadoutState] = None) -> tuple[Tensor, F.ReadoutState]:
        self.check_input(x)
        if not self.use_fused(x):
            return F.dual_exp_readout(x, self.tau_m, self.tau_s, state)
        if state is not None:
            F.check_state(state, x, 2)
        m, s = (None, None) if state is None else state
        out, m_seq, s_seq = ops.readout(x, math.exp(-1.0 / self.tau_m), math.exp(-1.0 / self.tau_s),
                                        self.v0, m, s)
        return out, F.ReadoutState(m_seq[-1], s_seq[-1])

    def extra_repr(self) -> str:
        return f"tau_m={self.tau_m}, tau_s={self.tau_s}, v0={self.v0:.6g}, {super().extra_repr()}"
