"""Shared pieces of the model zoo: paper model cards, input checks, neuron factories, read-outs.

A :class:`ModelCard` sits next to every ``@register_model`` entry (timm's ``default_cfgs``): the paper,
the dataset and input the architecture was published for, and the reported numbers.
:func:`model_card` looks one up by registered name.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from torch import Tensor, nn

__all__ = ["ModelCard", "CARDS", "register_cards", "model_card", "check_input", "check_steps", "out_hw",
           "LastStepReadout", "PAPERS"]

PAPERS = {
    "snn_iir": "Fang et al., IJCAI 2020, 'Exploiting Neuron and Synapse Filter Dynamics in Spatial "
               "Temporal Learning of Deep Spiking Neural Network' (github.com/Snow-Crash/snn-iir)",
    "plif": "Fang et al., ICCV 2021, 'Incorporating Learnable Membrane Time Constant to Enhance "
            "Learning of Spiking Neural Networks' (arXiv:2007.05785)",
    "asa": "Yao et al., ICCV 2023, 'Inherent Redundancy in Spiking Neural Networks' (arXiv:2308.08227)",
    "he2020": "He et al., Neural Networks 132:108-120, 2020, 'Comparing SNNs and RNNs on neuromorphic "
              "vision datasets: Similarities and differences' (arXiv:2005.02183)",
}


@dataclass(frozen=True)
class ModelCard:
    """Paper metadata of a registered model.

    Attributes:
        paper: key of :data:`PAPERS` (``plif``, ``snn_iir``, ``he2020``, ``asa``).
        dataset: registered dataset name the architecture was published for.
        input: per-step input shape ``(C, H, W)`` or ``(F,)`` (without ``T, B``).
        classes: output size ``K``.
        T: steps used in the paper (``None`` when it varies).
        reported: published numbers, e.g. ``{"acc_A": 99.72}`` (percent) or ``{}`` when unknown.
        source: where the numbers and the architecture come from (table / file).
        notes: deviations and quirks.
    """

    paper: str
    dataset: str
    input: tuple[int, ...]
    classes: int
    T: Optional[int] = None
    reported: dict = field(default_factory=dict)
    source: str = ""
    notes: str = ""

    @property
    def citation(self) -> str:
        return PAPERS[self.paper]


CARDS: dict[str, ModelCard] = {}


def register_cards(cards: dict[str, ModelCard]) -> None:
    """Add ``name -> card`` entries (names must be unique)."""
    for name, card in cards.items():
        if name in CARDS and CARDS[name] != card:
            raise ValueError(f"model card {name!r} is already registered")
        CARDS[name] = card


def model_card(name: str) -> ModelCard:
    """The :class:`ModelCard` of the registered model ``name``."""
    from spikeflow.models import list_models  # noqa: PLC0415 (imports every model module)

    list_models()
    try:
        return CARDS[name]
    except KeyError:
        raise ValueError(f"no model card for {name!r}; models with cards: {', '.join(sorted(CARDS))}") from None


def check_input(x: Any, name: str, tail: Sequence[Optional[int]]) -> None:
    """Raise ``ValueError`` unless ``x`` is ``[T, B, *tail]`` (``None`` in ``tail`` = any size)."""
    ok = isinstance(x, Tensor) and x.dim() == 2 + len(tail) and x.shape[0] >= 1 and all(
        want is None or got == want for got, want in zip(x.shape[2:], tail))
    if not ok:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        want = ", ".join("*" if t is None else str(t) for t in tail)
        raise ValueError(f"{name} expects input of shape [T, B, {want}], got {shape}")


def check_steps(x: Tensor, T: int, name: str) -> None:
    """Raise ``ValueError`` unless ``x`` has exactly ``T`` steps in dim 0 (a model built for a fixed
    ``T``); when dim 1 is ``T`` the message says time and batch look swapped."""
    if x.shape[0] == T:
        return
    hint = ""
    if x.dim() > 1 and x.shape[1] == T:
        hint = (f"; dim 1 has {T}: time and batch look swapped (a batch-first [B, T, ...] input, e.g. "
                "from torch.utils.data.DataLoader); batch with spikeflow.data.DataLoader or "
                "x.transpose(0, 1)")
    raise ValueError(f"{name} needs exactly {T} steps in dim 0 of [T, B, ...], got shape "
                     f"{tuple(x.shape)}{hint}")


def out_hw(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a conv/pool along one axis: ``floor((size + 2p - k) / s) + 1``."""
    return math.floor((size + 2 * padding - kernel) / stride) + 1


class LastStepReadout(nn.Linear):
    """Mainstream "last" read-out: a ``Linear`` on the last step, repeated over ``T`` (a view).

    Every reduction over ``T`` (mean, sum/T, last) of the output equals the read-out of the last
    step, so the same losses serve "rate" and "last" read-outs; the linear map runs once. Same
    parameters (and state-dict keys) as ``nn.Linear``.

    Shape: ``[T, B, F] -> [T, B, K]``.
    """

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x[-1]).unsqueeze(0).expand(x.shape[0], *x.shape[1:-1], self.out_features)
