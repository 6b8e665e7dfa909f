"""Explicit-state base for non-spiking temporal filters (synapse filters, read-outs).

:class:`StatefulFilter` derives from :class:`spikeflow.neurons.base.StatefulModule`, the one
stateful base it shares with the neurons, but filters are *not* neurons (metrics find spiking layers
with ``isinstance(m, BaseNeuron)``, so filters must not match):

* ``forward(x)`` starts from rest on every call, unless ``persistent=True``: then the detached final
  state of one call is the initial state of the next (snn-iir "states preserved"); ``reset_state()``
  forgets it.
* ``run(x, state) -> (out, state)`` exposes the state; ``state=None`` means rest, and ``run`` on two
  halves of a sequence equals one ``run`` on the whole.
* ``backend`` (one of :data:`spikeflow.ops.BACKENDS`): ``"auto"`` runs the op ``spikeflow::iir2``
  (numba on CPU float32/float64, Triton on CUDA, its plain-torch reference elsewhere), ``"fused"``
  the same or :class:`spikeflow.ops.BackendError` where no fused kernel runs, ``"reference"`` the
  plain loop of ``functional/synapse.py`` with autograd (the oracle).
"""
from __future__ import annotations

from torch import Tensor

from spikeflow import ops
from spikeflow.neurons.base import StatefulModule
from spikeflow.ops import BACKENDS

__all__ = ["StatefulFilter", "BACKENDS"]


class StatefulFilter(StatefulModule):
    """Base of multi-step filters ``[T, B, ...] -> [T, B, ...]`` with explicit state.

    Args:
        persistent: keep the detached final state between ``forward`` calls.
        backend: ``"auto"``, ``"fused"`` or ``"reference"``.
    """

    def __init__(self, persistent: bool = False, backend: str = "auto") -> None:
        super().__init__(persistent)
        self.backend = ops.check_backend(backend)

    def use_fused(self, x: Tensor) -> bool:
        """Whether ``run`` takes the op (``"auto"``/``"fused"``) rather than the reference loop;
        ``backend="fused"`` where no fused kernel runs on ``x`` raises ``BackendError``."""
        return ops.use_fused(self.backend, x, type(self).__name__)

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is ``[T, B, ...]`` with ``T >= 1``."""
        if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] < 1:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"{type(self).__name__} expects x of shape [T, B, ...] with T >= 1, got {shape}"
            )

    def extra_repr(self) -> str:
        return f"persistent={self.persistent}, backend={self.backend!r}"
