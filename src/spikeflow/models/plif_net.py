"""PLIF neuromorphic conv nets (Fang et al., ICCV 2021; seeds_spec R2.2) for event frames.

Input frames ``[T, B, 2, H, W]`` (event counts per polarity); every step goes through::

    number_layer x [Conv3x3(c_in -> channels, no bias) + BN, SN, Pool]     (H -> H >> number_layer)
    Flatten, Drop(0.5), Linear(C*h*w -> C*h*w // 4, no bias), SN,
             Drop(0.5), Linear(C*h*w // 4 -> classes * 10, no bias), SN, Voting(10)

``SN`` = PLIF (learnable ``1/tau = sigmoid(w)``, one ``w`` per layer, ``tau0 = 2``) or LIF (fixed
``tau``), V_th 1, hard reset to 0, ATan(alpha=2) surrogate, ``detach_reset`` True as published.
``Pool`` = MaxPool2d(2) (or AvgPool2d). ``Drop`` keeps one mask over all steps (SpikingJelly's
``layer.Dropout``). Voting averages each class's 10 output neurons -> ``[T, B, classes]``; the PLIF
loss is ``MSE(mean_t out[t], one_hot)`` (``train.loss: mse_rate``).

Stateless layers run once per sequence on ``[T*B, ...]`` (:class:`~spikeflow.layers.SeqToBatch`).

BatchNorm statistics (``bn_stats``): the original calls ``self.conv(x[t])`` once per step, so in
training each BatchNorm normalises with the statistics of the ``B`` samples of one step and updates
its running statistics ``T`` times per batch: ``bn_stats="per_step"``, used by every PLIF paper
config. ``"all_steps"`` (spikeflow's default, one call on all ``T*B`` samples: faster, smoother
statistics) changes the firing rates (e.g. 0.037 vs 0.022 in one layer for the same weights and
input). Evaluation with running statistics is the same for both.

===================  ===============  ================  ====================================
registered name      input            channels x layers  head
===================  ===============  ================  ====================================
``plif_nmnist``      2 x 34 x 34      128 x 2            8192 -> 2048 -> 100 (N-MNIST, T=10)
``plif_cifar10dvs``  2 x 128 x 128    128 x 4            8192 -> 2048 -> 100 (CIFAR10-DVS, T=20)
``plif_dvs_gesture`` 2 x 128 x 128    128 x 5            2048 -> 512 -> 110 (DVS128 Gesture, T=20)
===================  ===============  ================  ====================================

    >>> import torch
    >>> net = PLIFNet(input_size=16, channels=8, number_layer=2, num_classes=10)
    >>> net(torch.rand(4, 3, 2, 16, 16)).shape
    torch.Size([4, 3, 10])
"""
from __future__ import annotations

from torch import Tensor, nn

from spikeflow.layers import SeqToBatch, TimeDropout, VotingLayer
from spikeflow.layers.seq_to_batch import BN_STATS
from spikeflow.models import register_model

__all__ = ["PLIFNet", "plif_nmnist", "plif_cifar10dvs", "plif_dvs_gesture", "BN_STATS"]

NEURONS = ("plif", "lif")
POOLS = ("max", "avg")


def make_neuron(kind: str, init_tau: float, detach_reset: bool, alpha: float) -> nn.Module:
    """PLIF (``tau0 = init_tau``) or LIF (``tau = init_tau``): V_th 1, hard reset 0, ATan(alpha)."""
    from spikeflow import neurons, surrogate  # noqa: PLC0415

    if kind not in NEURONS:
        raise ValueError(f"neuron must be one of {NEURONS}, got {kind!r}")
    common = dict(v_threshold=1.0, v_reset=0.0, detach_reset=detach_reset,
                  surrogate=surrogate.ATan(alpha=alpha))
    if kind == "plif":
        return neurons.PLIF(init_tau=init_tau, **common)
    return neurons.LIF(tau=init_tau, **common)


class PLIFNet(nn.Module):
    """The PLIF paper's conv SNN for neuromorphic frames (see the module docstring).

    Args:
        in_channels: input channels per step (2 polarities).
        input_size: frame height = width.
        channels: conv width (128 in the paper).
        number_layer: conv/pool stages (2 N-MNIST, 4 CIFAR10-DVS, 5 DVS128 Gesture).
        num_classes: classes; the last layer has ``num_classes * voting`` neurons.
        neuron: ``"plif"`` or ``"lif"``; init_tau: PLIF's tau0 / LIF's tau (> 1 for PLIF).
        pool: ``"max"`` or ``"avg"``; detach_reset: no gradient through the reset spike.
        dropout: probability of both head dropouts (mask fixed over time).
        alpha: ATan surrogate sharpness; voting: output neurons per class.
        bn_stats: ``"per_step"`` (the original's per-step BatchNorm statistics) or ``"all_steps"``
            (statistics over ``T*B``; spikeflow's default).

    Shape: ``[T, B, in_channels, input_size, input_size] -> [T, B, num_classes]``.
    """

    def __init__(self, in_channels: int = 2, input_size: int = 34, channels: int = 128,
                 number_layer: int = 2, num_classes: int = 10, neuron: str = "plif",
                 init_tau: float = 2.0, pool: str = "max", detach_reset: bool = True,
                 dropout: float = 0.5, alpha: float = 2.0, voting: int = 10, bn_stats: str = "all_steps") -> None:
        super().__init__()
        if bn_stats not in BN_STATS:
            raise ValueError(f"bn_stats must be one of {BN_STATS}, got {bn_stats!r}")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        if number_layer < 1 or input_size >> number_layer < 1:
            raise ValueError(f"number_layer={number_layer} pooling stages do not fit an input of "
                             f"{input_size}x{input_size}")
        self.in_channels, self.input_size = in_channels, input_size
        layers: list[nn.Module] = []
        c_in, size = in_channels, input_size
        for _ in range(number_layer):
            layers += [SeqToBatch(nn.Conv2d(c_in, channels, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(channels), bn_stats=bn_stats),
                       make_neuron(neuron, init_tau, detach_reset, alpha),
                       SeqToBatch(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))]
            c_in, size = channels, size // 2
        self.features = nn.Sequential(*layers)
        flat = channels * size * size
        self.head = nn.Sequential(
            SeqToBatch(nn.Flatten()),
            TimeDropout(dropout),
            SeqToBatch(nn.Linear(flat, flat // 4, bias=False)),
            make_neuron(neuron, init_tau, detach_reset, alpha),
            TimeDropout(dropout),
            SeqToBatch(nn.Linear(flat // 4, num_classes * voting, bias=False)),
            make_neuron(neuron, init_tau, detach_reset, alpha),
            VotingLayer(voting),
        )

    def forward(self, x: Tensor) -> Tensor:
        want = (self.in_channels, self.input_size, self.input_size)
        if x.dim() != 5 or tuple(x.shape[2:]) != want:
            raise ValueError(f"PLIFNet expects frames [T, B, {', '.join(map(str, want))}], got "
                             f"{tuple(x.shape)}")
        return self.head(self.features(x))


@register_model
def plif_nmnist(**kwargs) -> PLIFNet:
    """N-MNIST (34x34, T=10): 2 x 128-channel conv stages, 8192 -> 2048 -> 100 head."""
    return PLIFNet(**{"input_size": 34, "channels": 128, "number_layer": 2, **kwargs})


@register_model
def plif_cifar10dvs(**kwargs) -> PLIFNet:
    """CIFAR10-DVS (128x128, T=20): 4 x 128-channel conv stages, 8192 -> 2048 -> 100 head."""
    return PLIFNet(**{"input_size": 128, "channels": 128, "number_layer": 4, **kwargs})


@register_model
def plif_dvs_gesture(**kwargs) -> PLIFNet:
    """DVS128 Gesture (128x128, T=20, 11 classes): 5 x 128-channel stages, 2048 -> 512 -> 110."""
    return PLIFNet(**{"input_size": 128, "channels": 128, "number_layer": 5, "num_classes": 11,
                      **kwargs})
