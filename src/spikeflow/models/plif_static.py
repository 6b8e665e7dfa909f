"""PLIF static-image nets (Fang et al., ICCV 2021; seeds_spec R2.2): MNIST, Fashion-MNIST, CIFAR-10.

Direct encoding: the first ``Conv3x3 + BN`` (the "static conv") sees the analog image and its output
is the input current of the first spiking layer at every step. All convs are 3x3, padding 1, no bias,
each followed by ``BatchNorm2d``; ``SN`` = PLIF (default) or LIF; ``Pool`` = ``MaxPool2d(2)`` or
``AvgPool2d(2)``; ``Linear`` layers have no bias; dropout uses one mask over all steps::

    MNIST / F-MNIST:  static Conv(1->128)+BN, SN, Pool, Conv(128->128)+BN, SN, Pool        (28->14->7)
                      Flatten, Drop(0.5), Linear(6272->2048), SN, Drop(0.5), Linear(2048->100), SN
    CIFAR-10:         static Conv(3->256)+BN, SN, [Conv(256->256)+BN, SN] x2, Pool,
                      [Conv(256->256)+BN, SN] x3, Pool                                     (32->16->8)
                      Flatten, Drop(0.5), Linear(16384->2048), SN, Linear(2048->100), SN   (no 2nd drop)

then voting (10 neurons per class, mean) -> ``[T, B, 10]``; the loss takes the mean over ``T``
(``out_spikes_counter / T`` of the original).

The static conv runs once when every step of the input is the same image (repeat / direct
encoding, detected by stride 0 or equality), exactly as the original, including BatchNorm statistics
over ``B`` images rather than ``T*B`` copies; a time-varying input (e.g. Poisson) is convolved per step.

The BatchNorms after the other convs (and the static conv's on a time-varying input) follow
``bn_stats``: ``"per_step"`` normalises each step with the statistics of its ``B`` samples, as the
original's per-step ``self.conv(x[t])`` (every PLIF paper config), ``"all_steps"`` (spikeflow's
default) with the statistics of all ``T*B`` samples (see :class:`~spikeflow.layers.SeqToBatch`).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from spikeflow.layers import SeqToBatch, TimeDropout, VotingLayer
from spikeflow.layers.seq_to_batch import BN_STATS
from spikeflow.models import register_model
from spikeflow.models._common import ModelCard, check_input, register_cards
from spikeflow.models.plif_net import POOLS, make_neuron

__all__ = ["PLIFStaticNet", "conv_bn", "make_pool"]


def conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    """``Conv2d(c_in, c_out, 3, padding=1, bias=False)`` + ``BatchNorm2d`` (one step, ``[N, C, H, W]``)."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out))


def make_pool(pool: str) -> nn.Module:
    if pool not in POOLS:
        raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
    return nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2)


def _repeats_over_time(x: Tensor) -> bool:
    """Whether every step of ``x`` is the same image: ``T == 1``, a stride-0 view (the ``repeat``
    encoding) or, in eager mode, equal values. A traced graph (torch.compile, torch.export) cannot
    branch on values, so there a dense input takes the per-step path (same outputs; in training,
    BatchNorm's running variance then counts ``T*B`` samples instead of ``B``)."""
    if x.shape[0] == 1 or x.stride(0) == 0:
        return True
    return not torch.compiler.is_compiling() and bool(torch.equal(x, x[:1].expand_as(x)))


class PLIFStaticNet(nn.Module):
    """PLIF conv net for static images with direct encoding.

    Args:
        in_channels, input_size: image ``[in_channels, input_size, input_size]``.
        channels: conv width (128 MNIST, 256 CIFAR-10).
        convs: convs per pooling stage (``(1, 1)`` MNIST, ``(3, 3)`` CIFAR-10); the first is the
            static conv.
        num_classes: classes (10 voting neurons each).
        hidden: FC width (2048).
        head_dropouts: dropout before FC1 and FC2 (``(0.5, 0.5)`` MNIST, ``(0.5, 0.0)`` CIFAR-10).
        neuron: ``"plif"`` or ``"lif"``; init_tau: tau0 of PLIF / tau of LIF.
        pool: ``"max"`` or ``"avg"``; detach_reset: detach the spike in the reset (True as published).
        alpha: ATan surrogate alpha (2).
        bn_stats: ``"per_step"`` (original) or ``"all_steps"`` (spikeflow's default).

    Shape: ``[T, B, in_channels, H, W] -> [T, B, num_classes]``.
    """

    def __init__(self, in_channels: int = 1, input_size: int = 28, channels: int = 128,
                 convs: Sequence[int] = (1, 1), num_classes: int = 10, hidden: int = 2048,
                 head_dropouts: Sequence[float] = (0.5, 0.5), neuron: str = "plif", init_tau: float = 2.0,
                 pool: str = "max", detach_reset: bool = True, alpha: float = 2.0, voting: int = 10,
                 bn_stats: str = "all_steps") -> None:
        super().__init__()
        if bn_stats not in BN_STATS:
            raise ValueError(f"bn_stats must be one of {BN_STATS}, got {bn_stats!r}")
        self.bn_stats = bn_stats
        if len(head_dropouts) != 2:
            raise ValueError(f"head_dropouts must give 2 probabilities (before FC1, FC2), got {head_dropouts!r}")
        if not convs or min(convs) < 1:
            raise ValueError(f"convs must list >= 1 conv per stage, got {convs!r}")
        self.in_channels, self.input_size = in_channels, input_size

        def sn() -> nn.Module:
            return make_neuron(neuron, init_tau, detach_reset, alpha)

        self.static_conv = conv_bn(in_channels, channels)
        body: list[nn.Module] = []
        for stage, n in enumerate(convs):
            for i in range(n):
                if stage or i:
                    body.append(SeqToBatch(conv_bn(channels, channels), bn_stats=bn_stats))
                body.append(sn())
            body.append(SeqToBatch(make_pool(pool)))
        self.conv = nn.Sequential(*body)
        side = input_size >> len(convs)
        d1, d2 = head_dropouts
        head: list[nn.Module] = [SeqToBatch(nn.Flatten())]
        head += [TimeDropout(d1)] if d1 > 0 else []
        head += [nn.Linear(channels * side * side, hidden, bias=False), sn()]
        head += [TimeDropout(d2)] if d2 > 0 else []
        head += [nn.Linear(hidden, num_classes * voting, bias=False), sn(), VotingLayer(voting)]
        self.fc = nn.Sequential(*head)

    def encode(self, x: Tensor) -> Tensor:
        """The static conv's output for every step ``[T, B, channels, H, W]`` (computed once when
        the input repeats over time)."""
        check_input(x, type(self).__name__, (self.in_channels, self.input_size, self.input_size))
        if _repeats_over_time(x):
            once = self.static_conv(x[0])
            return once.unsqueeze(0).expand(x.shape[0], *once.shape)
        return SeqToBatch(self.static_conv, bn_stats=self.bn_stats)(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.conv(self.encode(x)))


def _mnist_like(**kw) -> PLIFStaticNet:
    return PLIFStaticNet(**{**dict(in_channels=1, input_size=28, channels=128, convs=(1, 1),
                                   head_dropouts=(0.5, 0.5)), **kw})


@register_model
def plif_mnist(**kw) -> PLIFStaticNet:
    """PLIF MNIST net (R2.2 MNISTNet)."""
    return _mnist_like(**kw)


@register_model
def plif_fashion_mnist(**kw) -> PLIFStaticNet:
    """PLIF Fashion-MNIST net (identical to the MNIST net)."""
    return _mnist_like(**kw)


@register_model
def plif_cifar10(**kw) -> PLIFStaticNet:
    """PLIF CIFAR-10 net (R2.2 Cifar10Net)."""
    return PLIFStaticNet(**{**dict(in_channels=3, input_size=32, channels=256, convs=(3, 3),
                                   head_dropouts=(0.5, 0.0)), **kw})


_SRC = "seeds_spec R2.7 (README accuracy-A/B, PLIF tau0=2, max pool; verified against logs)"
_BN = ("paper's BatchNorm = bn_stats='per_step' (statistics of each step's B samples, set by the configs); "
       "spikeflow's default = 'all_steps' (T*B samples)")
register_cards({
    "plif_mnist": ModelCard("plif", "mnist", (1, 28, 28), 10, 8, {"acc_A": 99.72, "acc_B": 99.63}, _SRC, _BN),
    "plif_fashion_mnist": ModelCard("plif", "fashion_mnist", (1, 28, 28), 10, 8,
                                    {"acc_A": 94.38, "acc_B": 93.85}, _SRC, _BN),
    "plif_cifar10": ModelCard("plif", "cifar10", (3, 32, 32), 10, 8, {"acc_A": 93.50, "acc_B": 92.58}, _SRC, _BN),
    # cards of the neuromorphic nets registered in plif_net.py
    "plif_nmnist": ModelCard("plif", "nmnist", (2, 34, 34), 10, 10, {"acc_A": 99.61, "acc_B": 99.57}, _SRC,
                             "logs/B were run with T=20; " + _BN),
    "plif_cifar10dvs": ModelCard("plif", "cifar10_dvs", (2, 128, 128), 10, 20, {"acc_A": 74.80, "acc_B": 69.00},
                                 _SRC, _BN),
    "plif_dvs_gesture": ModelCard("plif", "dvs_gesture", (2, 128, 128), 11, 20, {"acc_A": 97.57, "acc_B": 96.53},
                                  _SRC, _BN),
})
