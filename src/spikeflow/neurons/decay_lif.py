"""STBP decay LIF (Wu et al. 2018) as used by He et al. 2020 (SNN vs RNN) and ASA-SNN arch A.

    >>> import torch, spikeflow as sf
    >>> n = sf.neurons.DecayLIF()               # decay 0.3, threshold 0.3, rectangle width 0.5
    >>> n(torch.full((4, 1), 0.25)).flatten().tolist()   # u = 0.25, 0.325 -> spike, 0.25, 0.325
    [0.0, 1.0, 0.0, 1.0]

``u[t] = decay * u[t-1] * (1 - s[t-1]) + I[t]``, ``s = u > v_threshold`` (``compare=">="`` for
ASA-SNN's ``>=``); the reset path is differentiated unless ``detach_reset``. The dynamics live
in :mod:`spikeflow.functional.decay_lif`.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

from torch import Tensor

from spikeflow import surrogate as sg
from spikeflow.functional.decay_lif import decay_lif
from spikeflow.neurons._options import check_backend, check_compare, check_input, check_number
from spikeflow.neurons.base import BaseNeuron

__all__ = ["DecayLIF", "DecayLIFState"]


class DecayLIFState(NamedTuple):
    """Membrane after the last step's reset, ``v = u * (1 - s)``, shape ``[B, ...]``."""

    v: Tensor


class DecayLIF(BaseNeuron):
    """Decay LIF neuron, ``[T, B, ...] -> [T, B, ...]`` spikes.

    Args:
        decay: membrane decay per step, in ``[0, 1]``.
        v_threshold: firing threshold.
        detach_reset: no gradient through the spike in the reset gate ``(1 - s)``.
        surrogate: default ``Rectangle(width=0.5)`` (lens 0.25, height 2).
        backend: ``"auto"``, ``"fused"`` or ``"reference"``.
        compare: ``">"`` (He2020, default) or ``">="`` (ASA-SNN).
        persistent: keep the detached final state between ``forward`` calls.
    """

    binary_spikes = True  # spikes are exactly 0.0 / 1.0

    def __init__(self, decay: float = 0.3, v_threshold: float = 0.3, detach_reset: bool = False,
                 surrogate: Optional[sg.SurrogateLike] = None, backend: str = "auto",
                 compare: str = ">", persistent: bool = False) -> None:
        super().__init__(persistent=persistent)
        self.decay = check_number("DecayLIF", "decay", decay, low=0.0, high=1.0)
        self.v_threshold = check_number("DecayLIF", "v_threshold", v_threshold)
        self.detach_reset = bool(detach_reset)
        self.surrogate = sg.build(sg.Rectangle(width=0.5) if surrogate is None else surrogate)
        self.backend = check_backend(backend)
        self.compare = compare
        self.strict = check_compare("DecayLIF", compare)

    def run(self, x: Tensor, state: Optional[DecayLIFState] = None) -> tuple[Tensor, DecayLIFState]:
        """Spikes ``[T, B, ...]`` and the final state from ``state`` (``None`` = rest)."""
        check_input("DecayLIF", x)
        spikes, v = decay_lif(x, None if state is None else state.v, decay=self.decay,
                              v_threshold=self.v_threshold, detach_reset=self.detach_reset,
                              surrogate=self.surrogate.spec(), strict=self.strict,
                              backend=self.backend)
        return spikes, DecayLIFState(v)

    def config(self) -> dict[str, Any]:
        """Constructor arguments as plain values."""
        return dict(decay=self.decay, v_threshold=self.v_threshold, detach_reset=self.detach_reset,
                    surrogate=self.surrogate.config(), backend=self.backend, compare=self.compare,
                    persistent=self.persistent)

    def extra_repr(self) -> str:
        return (f"decay={self.decay:g}, v_threshold={self.v_threshold:g}, "
                f"detach_reset={self.detach_reset}, compare='{self.compare}', backend='{self.backend}'")
