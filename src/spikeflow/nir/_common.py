"""Shared pieces of spikeflow.nir: the error types, the modules a loaded graph uses for NIR's
stateless nodes, and float64 helpers of the exact parameter mapping."""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
from torch import Tensor, nn


class NIRExportError(ValueError):
    """A layer that NIR cannot express exactly (the message names the layer and the reason)."""


class NIRImportError(ValueError):
    """A NIR node or graph that spikeflow cannot load (the message names the node)."""


# ----------------------------------------------------------------------------------- loaded layers
class Threshold(nn.Module):
    """NIR ``Threshold``: ``y = 1 if x > threshold else 0`` (elementwise, per step, no state).

    Shape: ``[T, B, ...] -> [T, B, ...]``; ``threshold`` broadcasts against one step.
    """

    def __init__(self, threshold: Tensor) -> None:
        super().__init__()
        self.register_buffer("threshold", threshold)

    def forward(self, x: Tensor) -> Tensor:
        return (x > self.threshold).to(x.dtype)


class Scale(nn.Module):
    """NIR ``Scale``: ``y = x * scale`` (elementwise; ``scale`` broadcasts against one step)."""

    def __init__(self, scale: Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale


class SumPool2d(nn.AvgPool2d):
    """NIR ``SumPool2d``: the sum over each window (zero padding), ``[N, C, H, W]``."""

    def __init__(self, kernel_size: Sequence[int], stride: Sequence[int], padding: Sequence[int]) -> None:
        super().__init__(tuple(kernel_size), tuple(stride), tuple(padding), divisor_override=1)


# --------------------------------------------------------------------------------- float64 helpers
def _snap(estimate: float, forward: Callable[[float], float], target: float, steps: int = 64,
          exhaustive: bool = False) -> float:
    """A float64 near ``estimate`` (within ``steps`` ulps) that ``forward`` maps exactly to ``target``
    (``estimate`` itself when none does: then it is within float64 rounding).

    Several neighbours may map to the same ``target`` (the NIR number cannot tell them apart); with
    ``exhaustive`` the one with the shortest decimal form is taken (``0.3`` rather than
    ``0.30000000000000004``), else the nearest.
    """
    if not math.isfinite(estimate):
        return estimate

    def hits(x: float) -> bool:
        try:
            return forward(x) == target
        except (ZeroDivisionError, ValueError, OverflowError):
            return False

    if hits(estimate) and not exhaustive:
        return estimate
    found = [estimate] if hits(estimate) else []
    lo = hi = estimate
    for _ in range(steps):
        lo, hi = math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf)
        found += [x for x in (lo, hi) if hits(x)]
        if found and not exhaustive:
            break
    if not found:
        return estimate
    return min(found, key=lambda x: (len(repr(x)), abs(x - estimate)))


def _full(shape: Sequence[int], value: float) -> np.ndarray:
    return np.full(tuple(int(d) for d in shape), float(value), dtype=np.float64)


def _np(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _uniform(node_name: str, field: str, a: Any) -> float:
    """The one value of a NIR parameter array (spikeflow neurons have one value per layer)."""
    arr = np.asarray(a, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise NIRImportError(f"NIR node {node_name!r}: {field} is empty")
    if not np.all(arr == arr[0]):
        raise NIRImportError(
            f"NIR node {node_name!r}: {field} has {np.unique(arr).size} distinct values; spikeflow's "
            "neurons take one value per layer (per-neuron values are not supported)")
    return float(arr[0])


def _close(a: float, b: float, rel: float = 1e-6) -> bool:
    """Equal up to float32 rounding: peers compute NIR parameters in float32 (e.g. r = tau/dt)."""
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-30)


def _meta(node: Any) -> dict[str, Any]:
    meta = getattr(node, "metadata", None)
    if not isinstance(meta, dict):
        return {}
    return {k: (v.decode() if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v)
            for k, v in meta.items()}
