"""The contract every multi-step spiking neuron module follows.

A neuron maps an input sequence ``x`` of shape ``[T, B, ...]`` to spikes of the same shape.

* ``forward(x)`` starts from rest on every call (there is no ``reset_net`` to forget), unless the
  module was built with ``persistent=True``: then the detached final state of one call is the initial
  state of the next (snn-iir's "states preserved between batches"); ``reset_state()`` forgets it.
* ``run(x, state) -> (spikes, state)`` exposes the state explicitly; ``state=None`` means rest.
  ``run`` on two halves of a sequence equals one ``run`` on the whole.

Metrics find spiking layers with ``isinstance(module, BaseNeuron)``; models are never edited for it.
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any, NamedTuple, Optional

import torch
from torch import Tensor, nn

from spikeflow.functional.saved_spikes import mark_spikes


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


class BaseNeuron(nn.Module, metaclass=ABCMeta):
    """Base class of multi-step neurons: subclasses implement :meth:`run`.

    Args:
        persistent: keep the detached final state between ``forward`` calls.

    Shape:
        input ``[T, B, ...]`` (any number of trailing dims), output spikes ``[T, B, ...]``.

    A subclass whose spikes are exactly 0/1 sets ``binary_spikes = True``: its outputs are marked
    so that a following ``SeqToBatch`` layer keeps them as uint8 for backward
    (:mod:`spikeflow.functional.saved_spikes`).
    """

    binary_spikes: bool = False

    def __init__(self, persistent: bool = False) -> None:
        super().__init__()
        self.persistent = bool(persistent)
        self._stored_state: Optional[NamedTuple] = None

    @abstractmethod
    def run(self, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
        """Simulate all ``T`` steps of ``x`` from ``state`` (``None`` = rest)."""

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2:
            raise ValueError(
                f"{type(self).__name__} expects input of shape [T, B, ...] (at least 2 dims), "
                f"got shape {tuple(x.shape)}"
            )
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
        spikes, final = self.run(x, state)
        if self.persistent:
            self._stored_state = detach_state(final)
        return mark_spikes(spikes) if self.binary_spikes else spikes

    def reset_state(self) -> None:
        """Forget the stored state (only meaningful with ``persistent=True``)."""
        self._stored_state = None
