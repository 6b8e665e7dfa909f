"""Surrogate-gradient derivatives in plain torch (the reference for every kernel).

``z = h - v_threshold``; ``p`` the shape parameter (float or 0-dim tensor). The table of formulas
is in :mod:`spikeflow.ops.codes` and ``functional/surrogate.py``.
"""
from __future__ import annotations

import math
from typing import Union

import torch
from torch import Tensor

from spikeflow.ops.codes import ATAN, NAMES, RECTANGLE, SIGMOID, GAUSSIAN

__all__ = ["check_code", "derivative", "derivative_param"]

Param = Union[float, Tensor]


def check_code(code: int) -> None:
    """Raise ``ValueError`` unless ``code`` is a surrogate code of :mod:`spikeflow.ops.codes`."""
    if code not in NAMES:
        raise ValueError(f"surrogate code must be one of {sorted(NAMES)} ({NAMES}), got {code!r}")


def derivative(z: Tensor, code: int, p: Param) -> Tensor:
    """Surrogate ``dS/dz`` at ``z`` (see the module table)."""
    check_code(code)
    if code == SIGMOID:
        s = torch.sigmoid(p * z)
        return p * s * (1 - s)
    if code == ATAN:
        w = (math.pi / 2) * p * z
        return (p / 2) / (1 + w * w)
    if code == RECTANGLE:
        inside = (z.abs() < p / 2).to(z.dtype)
        return inside / p
    if code == GAUSSIAN:
        return torch.exp(-(z * z) / (2 * p * p)) / (math.sqrt(2 * math.pi) * p)
    return torch.clamp(p - z.abs(), min=0) / (p * p)  # TRIANGLE


def derivative_param(z: Tensor, code: int, p: Param) -> Tensor:
    """``dF/dp``: derivative of the primitive with respect to the shape parameter, elementwise."""
    d = derivative(z, code, p)
    return (z / p) * d if code in (SIGMOID, ATAN) else -(z / p) * d
