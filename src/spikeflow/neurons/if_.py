"""Integrate-and-fire neuron (no leak): ``H = V + X``, then fire and reset like
:class:`~spikeflow.neurons.LIF` (SpikingJelly's ``IFNode``).

    >>> import torch, spikeflow as sf
    >>> sf.neurons.IF()(torch.full((4, 1), 0.4)).flatten().tolist()   # 0.4, 0.8, 1.2 -> spike, 0.4
    [0.0, 0.0, 1.0, 0.0]
"""
from __future__ import annotations

from typing import Optional

from torch import Tensor

from spikeflow import surrogate as sg
from spikeflow.functional.lif import integrate_fire
from spikeflow.neurons.lif import LIFFamily

__all__ = ["IF"]


class IF(LIFFamily):
    """Integrate-and-fire neuron; options as :class:`~spikeflow.neurons.LIF` without ``tau``."""

    def __init__(self, v_threshold: float = 1.0, v_reset: Optional[float] = 0.0,
                 detach_reset: bool = False, surrogate: Optional[sg.SurrogateLike] = None,
                 backend: str = "auto", compare: str = ">=", persistent: bool = False) -> None:
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, backend, compare, persistent)

    def _dynamics(self, x: Tensor, v: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        return integrate_fire(x, v, **self._common())
