"""Surrogate-gradient derivatives as Triton device functions (shared by the neuron kernels).

:func:`surrogate` returns ``(sg, dp)`` at ``z = H - v_threshold`` for surrogate ``CODE``
(:mod:`spikeflow.ops.codes`) with shape parameter ``a`` (alpha, width or sigma)::

    code  name       sg = dS/dz                                  dp = dF/da
    0     sigmoid    a e / (1 + e)^2,  e = exp(-|a z|)           z e / (1 + e)^2
    1     atan       (a / 2) / (1 + (pi/2 a z)^2)                (z / 2) / (1 + (pi/2 a z)^2)
    2     rectangle  1/a if |z| < a/2 else 0                     -z / a^2 inside, else 0
    3     gaussian   exp(-z^2 / (2 a^2)) / (sqrt(2 pi) a)        -(z / a) sg
    4     triangle   max(0, a - |z|) / a^2                       -(z / a) sg

(the formulas of ``functional/surrogate.py`` and ``ops/_cpu/_blocks.py: surrogate``; ``F`` is the
smooth primitive whose derivative replaces the Heaviside's, ``dF/da`` feeds a learnable surrogate
parameter). ``CODE`` is a ``tl.constexpr``: each kernel variant compiles one formula, straight-line.
Arithmetic is float32 (``z`` and ``a`` are float32); ``tl.exp`` is the GPU's fast exponential
(about 2 ulp), which only touches gradients, never spikes.
"""
from __future__ import annotations

import triton
import triton.language as tl

__all__ = ["surrogate"]


@triton.jit
def surrogate(z, a, CODE: tl.constexpr):
    """``(dS/dz, dF/da)`` of surrogate ``CODE`` with parameter ``a`` at ``z`` (float32)."""
    if CODE == 0:  # sigmoid, in the overflow-free form of sig(u)(1 - sig(u)) with u = |a z|
        e = tl.exp(-tl.abs(a * z))
        q = 1.0 + e
        d = e / (q * q)
        sg = a * d
        dp = z * d
    elif CODE == 1:  # atan
        w = (1.5707963267948966 * a) * z
        den = 1.0 + w * w
        sg = (a * 0.5) / den
        dp = (z * 0.5) / den
    elif CODE == 2:  # rectangle (width a)
        inv = 1.0 / a
        inside = tl.abs(z) < a * 0.5
        sg = tl.where(inside, inv, 0.0)
        dp = tl.where(inside, -(z * inv) * inv, 0.0)
    elif CODE == 3:  # gaussian (sigma a)
        sg = tl.exp((z * z) * (-0.5 / (a * a))) * (0.3989422804014327 / a)
        dp = -(z / a) * sg
    else:  # triangle (half-width a)
        tl.static_assert(CODE == 4, "surrogate code must be 0..4 (spikeflow.ops.codes)")
        sg = tl.maximum(a - tl.abs(z), 0.0) * (1.0 / (a * a))
        dp = -(z / a) * sg
    return sg, dp
