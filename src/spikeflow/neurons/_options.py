"""Argument checks shared by the neuron modules (clear ``ValueError`` naming the argument)."""
from __future__ import annotations

import math
from typing import Optional

from torch import Tensor

from spikeflow.ops import check_backend

__all__ = ["check_number", "check_compare", "check_backend", "check_input"]

COMPARES = (">=", ">")


def check_number(owner: str, name: str, value: object, *, low: Optional[float] = None,
                 low_open: bool = False, high: Optional[float] = None) -> float:
    """``value`` as a finite float within ``[low, high]`` (``(low, high]`` if ``low_open``)."""
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}") from None
    bad = not math.isfinite(out)
    if low is not None:
        bad = bad or (out <= low if low_open else out < low)
    if high is not None:
        bad = bad or out > high
    if bad:
        lo = "" if low is None else (f" > {low:g}" if low_open else f" >= {low:g}")
        hi = "" if high is None else f" <= {high:g}"
        joint = " and" if lo and hi else ""
        raise ValueError(f"{owner}: {name} must be a finite number{lo}{joint}{hi}, got {value!r}")
    return out


def check_compare(owner: str, compare: str) -> bool:
    """``compare`` (">=" or ">") -> ``strict`` flag: the one place the two names meet.

    Modules and configs say ``compare`` (``">="``: spike when ``v >= threshold``, SpikingJelly and
    PLIF; ``">"``: spike when ``v > threshold``, He2020 and snn-iir). Everything below the modules
    (``spikeflow.functional``, ``spikeflow.ops`` and its CPU/Triton kernels) takes
    ``strict: bool``, ``True`` meaning ``">"``.
    """
    if compare not in COMPARES:
        raise ValueError(f"{owner}: compare must be '>=' (spike when v >= threshold) or '>' "
                         f"(spike when v > threshold), got {compare!r}")
    return compare == ">"


def check_input(owner: str, x: Tensor) -> None:
    """Neurons take ``[T, B, ...]`` floating-point sequences."""
    if not isinstance(x, Tensor):
        raise ValueError(f"{owner}: x must be a torch.Tensor of shape [T, B, ...], got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"{owner}: x must have shape [T, B, ...] (at least 2 dims), "
                         f"got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{owner}: x must be a floating-point tensor, got {x.dtype}")
