"""Heaviside spike function with surrogate gradients (pure maths, no nn.Module).

Forward: ``S = H(z)`` with ``z = h - v_threshold``; ``H(z) = 1`` if ``z >= 0`` (``z > 0`` when ``strict``).
Backward: ``dS/dz`` is replaced by the derivative ``d(z)`` of a smooth *primitive* ``F(z; p)``
(a sigmoid-like function of one shape parameter ``p``). The gradient with respect to ``p``
(learnable ``alpha``/``width``/``sigma``) is ``dF/dp``, as in SpikingJelly's learnable-alpha
surrogates. All five families are scale families, ``F(z; p) = G(p z)`` or ``G(z / p)``, hence
``dF/dp = (z / p) d(z)`` (sharpness ``alpha``) or ``-(z / p) d(z)`` (widths).

===========  =====  ===================================================  ===========================
name         param  d(z)                                                 F(z)
===========  =====  ===================================================  ===========================
sigmoid      alpha  alpha * sig(alpha z) * (1 - sig(alpha z))            sig(alpha z)
atan         alpha  (alpha / 2) / (1 + (pi/2 alpha z)^2)                 1/2 + atan(pi/2 alpha z)/pi
rectangle    width  1/width if abs(z) < width/2 else 0                   clamp(z/width + 1/2, 0, 1)
gaussian     sigma  exp(-z^2 / (2 sigma^2)) / (sqrt(2 pi) sigma)         Phi(z / sigma)
triangle     width  max(0, width - abs(z)) / width^2                     piecewise quadratic
===========  =====  ===================================================  ===========================

``rectangle`` is the STBP/He2020/ASA box (lens = width/2, height 1/width); ``gaussian`` is snn-iir's
pdf centred on the threshold; ``atan`` and ``sigmoid`` are SpikingJelly's (PLIF: ATan alpha=2);
``triangle`` has support ``abs(z) < width`` and peak ``1/width`` (area 1).

The fused kernels (``ops/_cpu``) use the same integer codes and formulas.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Union

import torch
from torch import Tensor

from spikeflow.ops.codes import ATAN, CODES, GAUSSIAN, NAMES, RECTANGLE, SIGMOID, TRIANGLE
from spikeflow.ops.surrogate_math import check_code as _check_code
from spikeflow.ops.surrogate_math import derivative, derivative_param

__all__ = [
    "SIGMOID", "ATAN", "RECTANGLE", "GAUSSIAN", "TRIANGLE", "CODES", "NAMES",
    "SurrogateSpec", "heaviside", "derivative", "derivative_param", "primitive",
    "SpikeFunction", "spike",
]


Param = Union[float, Tensor]


class SurrogateSpec(NamedTuple):
    """What a dynamics function needs to know about a surrogate: its ``code`` and shape ``param``
    (a float, or a 0-dim tensor when the parameter is learnable)."""

    code: int
    param: Param


def heaviside(z: Tensor, strict: bool = False) -> Tensor:
    """``1`` where ``z >= 0`` (``z > 0`` if ``strict``), else ``0``, in the dtype of ``z``."""
    return (z > 0).to(z.dtype) if strict else (z >= 0).to(z.dtype)


def primitive(z: Tensor, code: int, p: Param) -> Tensor:
    """The smooth function ``F(z; p)`` whose derivatives the surrogate uses (for tests and plots)."""
    _check_code(code)
    if code == SIGMOID:
        return torch.sigmoid(p * z)
    if code == ATAN:
        return 0.5 + torch.atan((math.pi / 2) * p * z) / math.pi
    if code == RECTANGLE:
        return torch.clamp(z / p + 0.5, 0.0, 1.0)
    if code == GAUSSIAN:
        return 0.5 * (1 + torch.erf(z / (p * math.sqrt(2.0))))
    u = torch.clamp(z / p, -1.0, 1.0)  # TRIANGLE: integral of max(0, 1 - |u|)
    return torch.where(u < 0, 0.5 * (1 + u) ** 2, 1 - 0.5 * (1 - u) ** 2)


class SpikeFunction(torch.autograd.Function):
    """``S = H(z)`` forward, surrogate derivative backward; also differentiates the parameter.

    ``apply(z, p, code, strict)``: ``p`` is a float or a tensor (gets ``sum(g * dF/dp)``).
    """

    @staticmethod
    def forward(ctx, z: Tensor, p: Param, code: int, strict: bool) -> Tensor:  # type: ignore[override]
        _save(ctx, z, p, code)
        return heaviside(z, strict)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        z, p_t = ctx.saved_tensors
        p = p_t if ctx.p_is_tensor else ctx.p_float
        grad_z = grad * derivative(z, ctx.code, p) if ctx.needs_input_grad[0] else None
        grad_p = None
        if ctx.p_is_tensor and ctx.needs_input_grad[1]:
            grad_p = (grad * derivative_param(z, ctx.code, p)).sum().reshape(p_t.shape).to(p_t.dtype)
        return grad_z, grad_p, None, None


def _save(ctx, z: Tensor, p: Param, code: int) -> None:
    """Store what :meth:`SpikeFunction.backward` needs (shared with test subclasses)."""
    _check_code(code)
    ctx.code = code
    ctx.p_is_tensor = isinstance(p, Tensor)
    ctx.p_float = None if ctx.p_is_tensor else float(p)
    ctx.save_for_backward(z, p if ctx.p_is_tensor else None)


def spike(z: Tensor, spec: SurrogateSpec, strict: bool = False) -> Tensor:
    """Spikes ``H(z)`` with the surrogate gradient of ``spec`` (``z = h - v_threshold``)."""
    return SpikeFunction.apply(z, spec.param, spec.code, strict)
