"""Tiny hand-built networks shared by the metrics tests."""
from __future__ import annotations

from torch import Tensor, nn

from spikeflow.neurons.base import BaseNeuron


class Heaviside(BaseNeuron):
    """Stateless test neuron: spike wherever the input reaches ``threshold``."""

    def __init__(self, threshold: float = 1.0) -> None:
        super().__init__()
        self.threshold = threshold

    def run(self, x: Tensor, state=None):
        return (x >= self.threshold).to(x.dtype), state


class Fold(nn.Module):
    """[T, B, ...] -> module on [T*B, ...] -> [T, B, ...] (stand-in for SeqToBatch)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        T, B = x.shape[:2]
        y = self.module(x.reshape(T * B, *x.shape[2:]))
        return y.reshape(T, B, *y.shape[1:])


def seq_to_batch(module: nn.Module) -> nn.Module:
    """spikeflow.layers.SeqToBatch when it exists, else the local stand-in."""
    try:
        from spikeflow.layers import SeqToBatch  # type: ignore[attr-defined]
    except ImportError:
        return Fold(module)
    return SeqToBatch(module)


def conv_snn(channels: int = 4, classes: int = 3) -> nn.Sequential:
    """Direct-encoding conv (analog input) -> neuron -> conv on spikes -> neuron -> linear."""
    return nn.Sequential(
        seq_to_batch(nn.Conv2d(1, channels, 3, padding=1)),
        Heaviside(0.2),
        seq_to_batch(nn.Conv2d(channels, channels, 3, stride=2, padding=1)),
        Heaviside(0.5),
        seq_to_batch(nn.Flatten()),
        seq_to_batch(nn.Linear(channels * 4 * 4, classes)),
        Heaviside(0.0),
    )
