"""The explicit-state contract of multi-step modules, and the base of every spiking neuron.

:class:`StatefulModule` is the one stateful base: spiking neurons (:class:`BaseNeuron`) and the
non-spiking temporal filters (:class:`spikeflow.layers.StatefulFilter`: synapses, read-outs)
both derive from it. A module maps an input sequence ``x`` of shape ``[T, B, ...]`` to an output
of the same time-first layout.

* ``forward(x)`` starts from rest on every call (there is no ``reset_net`` to forget), unless the
  module was built with ``persistent=True``: then the detached final state of one call is the initial
  state of the next (snn-iir's "states preserved between batches"); ``reset_state()`` forgets it.
* ``run(x, state) -> (out, state)`` exposes the state explicitly; ``state=None`` means rest.
  ``run`` on two halves of a sequence equals one ``run`` on the whole.

Metrics find spiking layers with ``isinstance(module, BaseNeuron)``; models are never edited for it,
and filters (``StatefulModule`` but not ``BaseNeuron``) are not counted as spiking layers.
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any, Optional

import torch
from torch import Tensor, nn

from spikeflow.functional.saved_spikes import mark_spikes

__all__ = ["StatefulModule", "BaseNeuron", "detach_state"]


def detach_state(state: Any) -> Any:
    """Detach every tensor of a (possibly nested) NamedTuple/tuple state."""
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, tuple):
        items = [detach_state(s) for s in state]
        return type(state)(*items) if hasattr(state, "_fields") else tuple(items)
    return state


def _batch_shapes(state: Any) -> list[torch.Size]:
    if isinstance(state, Tensor):
        return [state.shape]
    if isinstance(state, tuple):
        return [s for item in state for s in _batch_shapes(item)]
    return []


class StatefulModule(nn.Module, metaclass=ABCMeta):
    """Base of multi-step modules with explicit state: subclasses implement :meth:`run`.

    Args:
        persistent: keep the detached final state between ``forward`` calls.

    Shape: input ``[T, B, ...]`` (see :meth:`check_input`), output ``[T, B, ...]``; every tensor
    of a state has the shape of one step, ``[B, ...]``.
    """

    def __init__(self, persistent: bool = False) -> None:
        super().__init__()
        self.persistent = bool(persistent)
        self._stored_state: Optional[Any] = None

    @abstractmethod
    def run(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Process all ``T`` steps of ``x`` from ``state`` (``None`` = rest)."""

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is a ``[T, B, ...]`` tensor (at least 2 dims)."""
        if not isinstance(x, Tensor) or x.dim() < 2:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"{type(self).__name__} expects input of shape [T, B, ...] (at least 2 dims), "
                f"got shape {shape}"
            )

    def forward(self, x: Tensor) -> Tensor:
        self.check_input(x)
        state = self._stored_state if self.persistent else None
        if state is not None:
            expected = x.shape[1:]
            for shape in _batch_shapes(state):
                if shape != expected:
                    raise ValueError(
                        f"{type(self).__name__}(persistent=True) holds a state of shape "
                        f"{tuple(shape)} but got steps of shape {tuple(expected)}; use a constant "
                        "batch size (drop_last=True) or call reset_state()"
                    )
        out, final = self.run(x, state)
        if self.persistent:
            self._stored_state = detach_state(final)
        return out

    def reset_state(self) -> None:
        """Forget the stored state (only meaningful with ``persistent=True``)."""
        self._stored_state = None


class BaseNeuron(StatefulModule):
    """Base class of multi-step spiking neurons: subclasses implement :meth:`run`.

    Args:
        persistent: keep the detached final state between ``forward`` calls.

    Shape:
        input ``[T, B, ...]`` (any number of trailing dims), output spikes ``[T, B, ...]``.

    A subclass whose spikes are exactly 0/1 sets ``binary_spikes = True``: its outputs are marked
    so that a following ``SeqToBatch`` layer keeps them as uint8 for backward
    (:mod:`spikeflow.functional.saved_spikes`).
    """

    binary_spikes: bool = False

    @abstractmethod
    def run(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Simulate all ``T`` steps of ``x`` from ``state`` (``None`` = rest)."""

    def forward(self, x: Tensor) -> Tensor:
        spikes = super().forward(x)
        return mark_spikes(spikes) if self.binary_spikes else spikes
