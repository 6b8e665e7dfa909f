"""Leaky integrate-and-fire neurons with SpikingJelly's semantics (multi-step).

    >>> import torch, spikeflow as sf
    >>> lif = sf.neurons.LIF(tau=2.0)
    >>> x = torch.full((4, 1, 1), 1.5)         # [T, B, N]: constant input 1.5
    >>> lif(x).flatten().tolist()               # H = 0.75, 1.125 -> spike, reset, 0.75, 1.125
    [0.0, 1.0, 0.0, 1.0]

Per step (``decay_input=True``)::

    H = V + (X - (V - v_reset)) / tau ;  S = H >= v_threshold ;  V = S ? v_reset : H

``decay_input=False`` charges ``H = V - (V - v_reset) / tau + X``; ``v_reset=None`` selects the
soft reset ``V = H - S * v_threshold`` (and ``v_reset`` counts as 0 in the charge);
``detach_reset`` stops the gradient through ``S`` in the reset; ``compare=">"`` requires
``H > v_threshold`` to spike. The dynamics live in :mod:`spikeflow.functional.lif`.
"""
from __future__ import annotations

from abc import abstractmethod
from typing import Any, NamedTuple, Optional

from torch import Tensor

from spikeflow import surrogate as sg
from spikeflow.functional.lif import lif
from spikeflow.neurons._options import check_backend, check_compare, check_input, check_number
from spikeflow.neurons.base import BaseNeuron

__all__ = ["LIF", "LIFState", "LIFFamily"]


class LIFState(NamedTuple):
    """Membrane potential after the last step's reset, shape ``[B, ...]``."""

    v: Tensor


class LIFFamily(BaseNeuron):
    """Options shared by :class:`LIF`, :class:`~spikeflow.neurons.PLIF` and
    :class:`~spikeflow.neurons.IF`; subclasses implement :meth:`_dynamics`."""

    binary_spikes = True  # spikes are exactly 0.0 / 1.0

    def __init__(self, v_threshold: float, v_reset: Optional[float], detach_reset: bool,
                 surrogate: Optional[sg.SurrogateLike], backend: str, compare: str,
                 persistent: bool) -> None:
        super().__init__(persistent=persistent)
        owner = type(self).__name__
        self.v_threshold = check_number(owner, "v_threshold", v_threshold)
        self.v_reset = None if v_reset is None else check_number(owner, "v_reset", v_reset)
        self.detach_reset = bool(detach_reset)
        self.surrogate = sg.build(sg.Sigmoid(alpha=4.0) if surrogate is None else surrogate)
        self.backend = check_backend(backend)
        self.compare = compare
        self.strict = check_compare(owner, compare)

    @abstractmethod
    def _dynamics(self, x: Tensor, v: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        """``(spikes, v_final)`` of this neuron's dynamics over ``x [T, ...]`` from ``v``."""

    def _common(self) -> dict[str, Any]:
        return dict(v_threshold=self.v_threshold, v_reset=self.v_reset,
                    detach_reset=self.detach_reset, surrogate=self.surrogate.spec(),
                    strict=self.strict, backend=self.backend)

    def run(self, x: Tensor, state: Optional[LIFState] = None) -> tuple[Tensor, LIFState]:
        """Spikes ``[T, B, ...]`` and the final :class:`LIFState` from ``state`` (``None`` = rest)."""
        check_input(type(self).__name__, x)
        spikes, v = self._dynamics(x, None if state is None else state.v)
        return spikes, LIFState(v)

    def config(self) -> dict[str, Any]:
        """Constructor arguments as plain values (the surrogate as its config dict)."""
        return dict(v_threshold=self.v_threshold, v_reset=self.v_reset,
                    detach_reset=self.detach_reset, surrogate=self.surrogate.config(),
                    backend=self.backend, compare=self.compare, persistent=self.persistent)

    def extra_repr(self) -> str:
        reset = "soft" if self.v_reset is None else f"v_reset={self.v_reset:g}"
        return (f"v_threshold={self.v_threshold:g}, {reset}, detach_reset={self.detach_reset}, "
                f"compare='{self.compare}', backend='{self.backend}'")


class LIF(LIFFamily):
    """Leaky integrate-and-fire neuron, ``[T, B, ...] -> [T, B, ...]`` spikes.

    Args:
        tau: membrane time constant in steps (>= 1).
        v_threshold: firing threshold.
        v_reset: hard-reset potential, or ``None`` for the soft (subtractive) reset.
        decay_input: whether the input is divided by ``tau`` too.
        detach_reset: no gradient through the spike in the reset.
        surrogate: a :class:`~spikeflow.surrogate.Surrogate`, a name or config dict
            (default ``Sigmoid(alpha=4.0)``).
        backend: ``"auto"`` (fused CPU kernel when possible), ``"fused"`` or ``"reference"``.
        compare: ``">="`` (SpikingJelly, PLIF) or ``">"`` (He2020, snn-iir).
        persistent: keep the detached final state between ``forward`` calls.
    """

    def __init__(self, tau: float = 2.0, v_threshold: float = 1.0, v_reset: Optional[float] = 0.0,
                 decay_input: bool = True, detach_reset: bool = False,
                 surrogate: Optional[sg.SurrogateLike] = None, backend: str = "auto",
                 compare: str = ">=", persistent: bool = False) -> None:
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, backend, compare, persistent)
        self.tau = check_number("LIF", "tau", tau, low=1.0)
        self.decay_input = bool(decay_input)

    def _dynamics(self, x: Tensor, v: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        return lif(x, v, tau=self.tau, decay_input=self.decay_input, **self._common())

    def config(self) -> dict[str, Any]:
        return dict(tau=self.tau, decay_input=self.decay_input, **super().config())

    def extra_repr(self) -> str:
        return f"tau={self.tau:g}, decay_input={self.decay_input}, " + super().extra_repr()
