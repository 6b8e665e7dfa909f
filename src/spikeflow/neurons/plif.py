"""Parametric LIF (Fang et al., "Incorporating learnable membrane time constant to enhance learning
of spiking neural networks", ICCV 2021): an LIF whose ``1/tau = sigmoid(w)`` is learned, one ``w``
per layer, ``w0 = -ln(init_tau - 1)``.

    >>> import torch, spikeflow as sf
    >>> plif = sf.neurons.PLIF(init_tau=2.0, surrogate="atan")
    >>> round(plif.tau, 6), plif.w.item()
    (2.0, 0.0)
    >>> plif(torch.full((4, 1, 1), 1.5)).flatten().tolist()
    [0.0, 1.0, 0.0, 1.0]
"""
from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import Tensor, nn

from spikeflow import surrogate as sg
from spikeflow.functional.lif import plif
from spikeflow.neurons._options import check_number
from spikeflow.neurons.lif import LIFFamily

__all__ = ["PLIF"]


class PLIF(LIFFamily):
    """LIF with a learnable membrane time constant; same options as :class:`~spikeflow.neurons.LIF`.

    Args:
        init_tau: initial ``tau`` (> 1); ``w`` starts at ``-ln(init_tau - 1)``.

    Attributes:
        w: the learnable scalar ``nn.Parameter``; :attr:`tau` = ``1 / sigmoid(w)`` (for logging).
    """

    def __init__(self, init_tau: float = 2.0, v_threshold: float = 1.0,
                 v_reset: Optional[float] = 0.0, decay_input: bool = True,
                 detach_reset: bool = False, surrogate: Optional[sg.SurrogateLike] = None,
                 backend: str = "auto", compare: str = ">=", persistent: bool = False) -> None:
        super().__init__(v_threshold, v_reset, detach_reset, surrogate, backend, compare, persistent)
        self.init_tau = check_number("PLIF", "init_tau", init_tau, low=1.0, low_open=True)
        self.decay_input = bool(decay_input)
        self.w = nn.Parameter(torch.tensor(0.0 - math.log(self.init_tau - 1.0)))

    @property
    def tau(self) -> float:
        """The current membrane time constant ``1 / sigmoid(w)`` in steps."""
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def _dynamics(self, x: Tensor, v: Optional[Tensor]) -> tuple[Tensor, Tensor]:
        return plif(x, v, w=self.w, decay_input=self.decay_input, **self._common())

    def config(self) -> dict[str, Any]:
        return dict(init_tau=self.init_tau, decay_input=self.decay_input, **super().config())

    def extra_repr(self) -> str:
        return (f"init_tau={self.init_tau:g}, tau={self.tau:.4g}, decay_input={self.decay_input}, "
                + super().extra_repr())
