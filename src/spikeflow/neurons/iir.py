"""The snn-iir neuron (Fang et al., IJCAI 2020) with a decaying inhibitory reset trace.

    >>> import torch, spikeflow as sf
    >>> n = sf.neurons.IIRNeuron(tau_m=4.0)     # no membrane filter (as in every snn-iir config)
    >>> n(torch.full((5, 1), 1.5)).flatten().tolist()  # v = 1.5 -> spike, r = 1; v = 0.5, 0.72, ...
    [1.0, 0.0, 0.0, 0.0, 1.0]

``v[t] = m v[t-1] + I[t] - r[t-1]`` with ``m = exp(-1/tau_m)`` when ``membrane_filter`` else 0;
``s = v > v_threshold``; ``r[t] = exp(-1/tau_m) r[t-1] + reset_v s[t]``. The reset trace is
differentiated unless ``detach_reset``. Default surrogate: Gaussian pdf, sigma 0.4. The dynamics
live in :mod:`spikeflow.functional.iir_neuron`.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

from torch import Tensor

from spikeflow import surrogate as sg
from spikeflow.functional.iir_neuron import iir_neuron
from spikeflow.neurons._options import check_backend, check_compare, check_input, check_number
from spikeflow.neurons.base import BaseNeuron

__all__ = ["IIRNeuron", "IIRState"]


class IIRState(NamedTuple):
    """Membrane ``v`` and reset trace ``r``, each ``[B, ...]``."""

    v: Tensor
    r: Tensor


class IIRNeuron(BaseNeuron):
    """snn-iir spiking neuron, ``[T, B, ...] -> [T, B, ...]`` spikes.

    Args:
        tau_m: time constant of the reset trace (and membrane filter) in steps, > 0.
        membrane_filter: leak the membrane with ``exp(-1/tau_m)`` (snn-iir configs: off).
        v_threshold: firing threshold (1.0).
        reset_v: size of the reset trace increment per spike (1.0).
        detach_reset: no gradient through the spike into the reset trace.
        surrogate: default ``Gaussian(sigma=0.4)``.
        backend: ``"auto"``, ``"fused"`` or ``"reference"``.
        compare: ``">"`` (snn-iir, default) or ``">="``.
        persistent: keep the detached final state between calls (snn-iir "states preserved").
    """

    binary_spikes = True  # spikes are exactly 0.0 / 1.0

    def __init__(self, tau_m: float = 4.0, membrane_filter: bool = False, v_threshold: float = 1.0,
                 reset_v: float = 1.0, detach_reset: bool = False,
                 surrogate: Optional[sg.SurrogateLike] = None, backend: str = "auto",
                 compare: str = ">", persistent: bool = False) -> None:
        super().__init__(persistent=persistent)
        self.tau_m = check_number("IIRNeuron", "tau_m", tau_m, low=0.0, low_open=True)
        self.membrane_filter = bool(membrane_filter)
        self.v_threshold = check_number("IIRNeuron", "v_threshold", v_threshold)
        self.reset_v = check_number("IIRNeuron", "reset_v", reset_v)
        self.detach_reset = bool(detach_reset)
        self.surrogate = sg.build(sg.Gaussian(sigma=0.4) if surrogate is None else surrogate)
        self.backend = check_backend(backend)
        self.compare = compare
        self.strict = check_compare("IIRNeuron", compare)

    def run(self, x: Tensor, state: Optional[IIRState] = None) -> tuple[Tensor, IIRState]:
        """Spikes ``[T, B, ...]`` and the final :class:`IIRState` (``None`` = rest)."""
        check_input("IIRNeuron", x)
        v, r = (None, None) if state is None else (state.v, state.r)
        spikes, v, r = iir_neuron(x, v, r, tau_m=self.tau_m, membrane_filter=self.membrane_filter,
                                  v_threshold=self.v_threshold, reset_v=self.reset_v,
                                  detach_reset=self.detach_reset, surrogate=self.surrogate.spec(),
                                  strict=self.strict, backend=self.backend)
        return spikes, IIRState(v, r)

    def config(self) -> dict[str, Any]:
        """Constructor arguments as plain values."""
        return dict(tau_m=self.tau_m, membrane_filter=self.membrane_filter,
                    v_threshold=self.v_threshold, reset_v=self.reset_v,
                    detach_reset=self.detach_reset, surrogate=self.surrogate.config(),
                    backend=self.backend, compare=self.compare, persistent=self.persistent)

    def extra_repr(self) -> str:
        return (f"tau_m={self.tau_m:g}, membrane_filter={self.membrane_filter}, "
                f"v_threshold={self.v_threshold:g}, reset_v={self.reset_v:g}, "
                f"detach_reset={self.detach_reset}, compare='{self.compare}', backend='{self.backend}'")
