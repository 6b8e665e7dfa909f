"""Explicit-state base for non-spiking temporal filters (synapse filters, read-outs).

Same contract as :class:`spikeflow.neurons.base.BaseNeuron`, but filters are *not* neurons (metrics
find spiking layers with ``isinstance(m, BaseNeuron)``, so filters must not match):

* ``forward(x)`` starts from rest on every call, unless ``persistent=True``: then the detached final
  state of one call is the initial state of the next (snn-iir "states preserved"); ``reset_state()``
  forgets it.
* ``run(x, state) -> (out, state)`` exposes the state; ``state=None`` means rest, and ``run`` on two
  halves of a sequence equals one ``run`` on the whole.
* ``backend``: ``"auto"`` (fused numba kernel on CPU float32/float64, reference loop otherwise),
  ``"fused"`` (error if unavailable) or ``"reference"`` (the plain loop of ``functional/synapse.py``).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Optional

from torch import Tensor, nn

from spikeflow.ops._cpu._numba_cache import ensure_numba_cache

ensure_numba_cache()  # ops/_cpu/synapse.py defines its kernels on import: cache folder first
from spikeflow.ops._cpu import synapse as _kernels  # noqa: E402

__all__ = ["StatefulFilter", "BACKENDS"]

BACKENDS = ("auto", "fused", "reference")


def _detach(state: Any) -> Any:
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple):
        items = [_detach(s) for s in state]
        return type(state)(*items) if hasattr(state, "_fields") else tuple(items)
    return state


class StatefulFilter(nn.Module, ABC):
    """Base of multi-step filters ``[T, B, ...] -> [T, B, ...]`` with explicit state.

    Args:
        persistent: keep the detached final state between ``forward`` calls.
        backend: ``"auto"``, ``"fused"`` or ``"reference"``.
    """

    def __init__(self, persistent: bool = False, backend: str = "auto") -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.persistent = bool(persistent)
        self.backend = backend
        self._stored_state: Optional[tuple] = None

    def use_fused(self, x: Tensor) -> bool:
        """Whether ``run`` takes the fused kernel for this input."""
        if self.backend == "reference":
            return False
        ok = _kernels.supports(x)
        if self.backend == "fused" and not ok:
            raise ValueError(
                f"{type(self).__name__}(backend='fused') needs numba and a float32/float64 CPU tensor, "
                f"got {x.dtype} on {x.device} (numba available: {_kernels.AVAILABLE}); "
                "use backend='auto' or 'reference'"
            )
        return ok

    def check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] < 1:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"{type(self).__name__} expects x of shape [T, B, ...] with T >= 1, got {shape}"
            )

    @abstractmethod
    def run(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Filter all ``T`` steps of ``x`` from ``state`` (``None`` = rest)."""

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        state = self._stored_state if self.persistent else None
        if state is not None and any(s.shape != x.shape[1:] for s in state):
            raise ValueError(
                f"{type(self).__name__}(persistent=True) holds a state of shape "
                f"{tuple(state[0].shape)} but got steps of shape {tuple(x.shape[1:])}; use a constant "
                "batch size (drop_last=True) or call reset_state()"
            )
        out, final = self.run(x, state)
        if self.persistent:
            self._stored_state = _detach(final)
        return out

    def reset_state(self) -> None:
        """Forget the stored state (only meaningful with ``persistent=True``)."""
        self._stored_state = None

    def extra_repr(self) -> str:
        return f"persistent={self.persistent}, backend={self.backend!r}"
