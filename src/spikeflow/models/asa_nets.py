"""ASA-SNN nets (Yao et al., ICCV 2023; seeds_spec R3.2-R3.3) with ``attention="asa"|"none"``.

**Arch A** (``asa_arch_a``, "three-layer" LIF-SNN of DVS Gesture / Gait-day; models/Net.py)::

    per conv layer i:  Drop(p_i) -> Conv3x3(bias) -> BN -> [AvgPool(k_i)] -> ASA | Identity -> DecayLIF
                       -> Drop_T(p_i)
    conv 2->64 (k 1), 64->128 (AvgPool 2), 128->128 (AvgPool 2)     32x32 -> 16 -> 8
    head: Drop(p) -> Linear(8192->256) -> DecayLIF -> Drop_T(p);  Drop(p) -> Linear(256->K) -> DecayLIF

``Drop`` is dropout on the input sequence with a new mask per step (``nn.Dropout``), ``Drop_T`` the
neuron's spike dropout with one mask over all steps (:class:`~spikeflow.layers.TimeDropout`);
``p_i`` from the ``-ps`` digits (``00111`` -> ``(0, 0, 0.1, 0.1, 0.1)``, published). DecayLIF:
``u = 0.3 u (1 - s) + I``, ``s = u >= 0.3``, rectangle surrogate width 0.5, reset not detached.
Arch D (Gait-night) is arch A with ``channels=(32, 32, 32)`` and ``p = 0.5``.

**Arch B** (``asa_arch_b``, "five-layer" PLIF net of DVS Gesture frames / DailyAction; models/Net2.py)::

    per layer: [MaxPool2d(2) for layers 2..5] -> Conv3x3(no bias) -> BN -> ASA | Identity -> PLIF
    channels 2->128, then 128->128 x4;  MaxPool2d(2) -> Flatten
    head: [Drop(0) -> Linear(bias) -> PLIF] x2: 2048 -> 512 -> 10 K -> voting (10 per class)

PLIF: tau0 2, V_th 1, hard reset to 0 not detached, ATan(2). ASA(T, C) there uses ``lam=0.5``,
``reduction=1`` (the script's ``-reduction`` flag is not applied in arch B).

ASA variant (``asa_variant``): ``"original"`` is the published ``Attn.py`` (``faithful=True`` of
:class:`~spikeflow.layers.ASA`: the important mask is the UNION of the batch's top-k channels / steps,
XOR-combined, and the TCA map ``fc``, ``alpha``, ``beta`` gets no gradient, so it stays at its
initial values); every ASA paper config (``configs/asa/*_asa.yaml``) uses it. ``"per_sample"``
(spikeflow's default) selects each sample's own top-k and trains the TCA map through a
straight-through gradient. ``faithful=True`` is the same as ``asa_variant="original"``.

``T`` is fixed at construction (ASA's time-mixing ``fc``); the input must have exactly ``T`` steps
when ``attention="asa"``. Both return ``[T, B, K]``; the loss is MSE of the mean over ``T`` vs one-hot.
"""
from __future__ import annotations

from typing import Sequence, Union

from torch import Tensor, nn

from spikeflow.layers import ASA, SeqToBatch, TimeDropout, VotingLayer
from spikeflow.models import register_model
from spikeflow.models._common import ModelCard, check_input, check_steps, out_hw, register_cards
from spikeflow.models._neurons import decay_lif
from spikeflow.models.plif_net import make_neuron

__all__ = ["ASAArchA", "ASAArchB", "ATTENTIONS", "ASA_VARIANTS"]

ATTENTIONS = ("asa", "none")
ASA_VARIANTS = ("per_sample", "original")
Size = Union[int, Sequence[int]]


def _hw(size: Size) -> tuple[int, int]:
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    return int(h), int(w)


def _faithful(asa_variant: str, faithful: bool) -> bool:
    """Whether the ASA layers run the original rule (``asa_variant="original"`` or ``faithful=True``)."""
    if asa_variant not in ASA_VARIANTS:
        raise ValueError(f"asa_variant must be one of {ASA_VARIANTS}, got {asa_variant!r}")
    return bool(faithful) or asa_variant == "original"


def _attention(kind: str, T: int, C: int, lam: float, reduction: int, faithful: bool) -> nn.Module:
    if kind not in ATTENTIONS:
        raise ValueError(f"attention must be one of {ATTENTIONS}, got {kind!r}")
    return ASA(T, C, lam=lam, reduction=reduction, faithful=faithful) if kind == "asa" else nn.Identity()


def _drop(p: float) -> list[nn.Module]:
    return [nn.Dropout(p)] if p > 0 else []


def _drop_t(p: float) -> list[nn.Module]:
    return [TimeDropout(p)] if p > 0 else []


class ASAArchA(nn.Module):
    """Three conv layers of DecayLIF neurons with optional ASA, two FC layers (arch A / D).

    Args:
        T: steps (60 for DVS Gesture at dt 15 ms).
        in_channels, input_size: per-step input ``[in_channels, H, W]`` (2 x 32 x 32 at ``ds=4``).
        num_classes: ``K`` (11 gesture, 20 gait).
        channels: conv widths (64, 128, 128); pools: AvgPool sizes after the convs (1, 2, 2).
        hidden: FC width (256).
        dropout: five probabilities (conv1..3, fc1, fc2) or one for all.
        attention: ``"asa"`` or ``"none"``; lam, reduction, faithful: :class:`~spikeflow.layers.ASA`.
        asa_variant: ``"original"`` (published ``Attn.py``) or ``"per_sample"`` (spikeflow's default).
        decay, v_threshold, surrogate_width: DecayLIF parameters (0.3, 0.3, 0.5).
    """

    def __init__(self, T: int = 60, in_channels: int = 2, input_size: Size = 32, num_classes: int = 11,
                 channels: Sequence[int] = (64, 128, 128), pools: Sequence[int] = (1, 2, 2), hidden: int = 256,
                 dropout: Union[float, Sequence[float]] = (0.0, 0.0, 0.1, 0.1, 0.1), attention: str = "asa",
                 lam: float = 0.5, reduction: int = 4, faithful: bool = False, decay: float = 0.3,
                 v_threshold: float = 0.3, surrogate_width: float = 0.5, asa_variant: str = "per_sample") -> None:
        super().__init__()
        faithful = _faithful(asa_variant, faithful)
        if len(channels) != len(pools):
            raise ValueError(f"channels {channels!r} and pools {pools!r} must have the same length")
        ps = [float(dropout)] * (len(channels) + 2) if isinstance(dropout, (int, float)) else list(dropout)
        if len(ps) != len(channels) + 2:
            raise ValueError(f"dropout must give {len(channels) + 2} probabilities (convs, fc1, fc2), got {dropout!r}")
        self.T, self.in_channels, self.attention = T, in_channels, attention
        self.hw = _hw(input_size)
        h, w = self.hw

        def neuron() -> nn.Module:
            return decay_lif(decay=decay, v_threshold=v_threshold, width=surrogate_width, strict=False)

        layers: list[nn.Module] = []
        c_in = in_channels
        for c, k, p in zip(channels, pools, ps):
            block: list[nn.Module] = [nn.Conv2d(c_in, c, 3, padding=1), nn.BatchNorm2d(c)]
            if k > 1:
                block.append(nn.AvgPool2d(k))
                h, w = out_hw(h, k, k), out_hw(w, k, k)
            layers += _drop(p) + [SeqToBatch(*block), _attention(attention, T, c, lam, reduction, faithful),
                                  neuron()] + _drop_t(p)
            c_in = c
        p1, p2 = ps[-2:]
        layers += [SeqToBatch(nn.Flatten())] + _drop(p1) + [nn.Linear(c_in * h * w, hidden), neuron()] + _drop_t(p1)
        layers += _drop(p2) + [nn.Linear(hidden, num_classes), neuron()] + _drop_t(p2)
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, type(self).__name__, (self.in_channels, *self.hw))
        if self.attention == "asa":
            check_steps(x, self.T, f"{type(self).__name__}(T={self.T}, attention='asa')")
        return self.layers(x)


class ASAArchB(nn.Module):
    """Five conv layers of PLIF neurons with optional ASA, two FC PLIF layers and voting (arch B).

    Args:
        T: steps (20 for DVS Gesture frames).
        in_channels, input_size: per-step input (2 x 128 x 128; ``(H, W)`` for non-square sensors).
        num_classes: ``K`` (10 voting neurons each).
        channels: conv width (128); layers: conv layers (5).
        hidden: FC width (512); dropout: head dropout (0.0 as published).
        attention, lam, reduction, faithful: ASA options (``reduction=1`` as published).
        asa_variant: ``"original"`` (published ``Attn.py``) or ``"per_sample"`` (spikeflow's default).
        neuron: ``"plif"`` (published) or ``"lif"``; init_tau: 2; detach_reset: False (published).
    """

    def __init__(self, T: int = 20, in_channels: int = 2, input_size: Size = 128, num_classes: int = 11,
                 channels: int = 128, layers: int = 5, hidden: int = 512, dropout: float = 0.0,
                 attention: str = "asa", lam: float = 0.5, reduction: int = 1, faithful: bool = False,
                 neuron: str = "plif", init_tau: float = 2.0, detach_reset: bool = False, voting: int = 10,
                 asa_variant: str = "per_sample") -> None:
        super().__init__()
        faithful = _faithful(asa_variant, faithful)
        self.T, self.in_channels, self.attention = T, in_channels, attention
        self.hw = _hw(input_size)
        h, w = self.hw

        def sn() -> nn.Module:
            return make_neuron(neuron, init_tau, detach_reset, 2.0)

        body: list[nn.Module] = []
        c_in = in_channels
        for i in range(layers):
            block: list[nn.Module] = []
            if i > 0:
                block.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
            block += [nn.Conv2d(c_in, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)]
            body += [SeqToBatch(*block), _attention(attention, T, channels, lam, reduction, faithful), sn()]
            c_in = channels
        h, w = h // 2, w // 2
        if h < 1 or w < 1:
            raise ValueError(f"input_size {self.hw} is too small for {layers} conv layers + a final pool")
        head = [SeqToBatch(nn.MaxPool2d(2), nn.Flatten())]
        head += _drop_t(dropout) + [nn.Linear(channels * h * w, hidden), sn()]
        head += _drop_t(dropout) + [nn.Linear(hidden, num_classes * voting), sn(), VotingLayer(voting)]
        self.layers = nn.Sequential(*body, *head)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, type(self).__name__, (self.in_channels, *self.hw))
        if self.attention == "asa":
            check_steps(x, self.T, f"{type(self).__name__}(T={self.T}, attention='asa')")
        return self.layers(x)


@register_model
def asa_arch_a(**kw) -> ASAArchA:
    """ASA-SNN arch A: 3 conv DecayLIF layers (+ASA) and 2 FC layers (DVS Gesture, 2x32x32, T 60)."""
    return ASAArchA(**kw)


@register_model
def asa_arch_b(**kw) -> ASAArchB:
    """ASA-SNN arch B: 5 conv PLIF layers (+ASA), 2 FC PLIF layers, voting (DVS Gesture 2x128x128, T 20)."""
    return ASAArchB(**kw)


_SRC = "seeds_spec R3.9 (ASA-SNN README results; NASFR from firing_num.py)"
register_cards({
    "asa_arch_a": ModelCard("asa", "dvs_gesture", (2, 32, 32), 11, 60,
                            {"acc": 95.2, "nasfr": 0.038, "acc_no_attention": 91.3, "nasfr_no_attention": 0.176},
                            _SRC, "multi-clip test (10 clips, majority); RCS training crops; paper's ASA = "
                            "asa_variant='original' (batch-union top-k, untrained TCA map, set by the "
                            "configs), spikeflow's default = 'per_sample'"),
    "asa_arch_b": ModelCard("asa", "dvs_gesture", (2, 128, 128), 11, 20,
                            {"acc": 97.7, "nasfr": 0.018, "acc_no_attention": 95.5, "nasfr_no_attention": 0.023},
                            _SRC, "SpikingJelly frames (split by number), 1 clip; paper's ASA = "
                            "asa_variant='original' (set by the configs), spikeflow's default = 'per_sample'"),
})
