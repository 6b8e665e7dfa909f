"""SEW-ResNet (Fang et al., NeurIPS 2021, "Deep Residual Learning in Spiking Neural Networks") with
optional ASA attention (the ASA-SNN paper's HAR-DVS row: SEW-Res-SNN-18 45.5 -> 47.1 with ASA;
seeds_spec R3.9).

Spike-element-wise (SEW) residual block: with ``S`` the block's input spikes (after the
down-sample path when the shape changes) and ``A = SN(BN(conv(SN(BN(conv(S))))))`` the residual
branch's output spikes, the block returns ``O = g(A, S)`` with the connect function ``g``::

    ADD:   O = A + S                 (integer-valued: 0, 1 or 2)
    AND:   O = A AND S     = A * S
    IAND:  O = (NOT A) AND S = (1 - A) * S

Down-sample path (stride 2 or a width change): ``SN(BN(Conv1x1(S, stride)))``, so the shortcut
carries spikes too. Network (ImageNet layout, as the SEW paper's SEW-ResNet-18/34)::

    stem:   Conv7x7(C_in -> 64, stride 2, pad 3, no bias) -> BN -> [ASA] -> SN -> MaxPool(3, 2, 1)
    layer1..4: blocks x SEW basic block, widths 64, 128, 256, 512 (stride 2 from layer2 on)
            block: Conv3x3(stride) -> BN -> [ASA] -> SN -> Conv3x3 -> BN -> [ASA] -> SN -> g(., S)
    head:   AdaptiveAvgPool(1) -> Flatten -> Linear(512 -> K)          per step -> [T, B, K]

SEW-ResNet-18: blocks (2, 2, 2, 2); SEW-ResNet-34: (3, 4, 6, 3). Without attention and with
parameter-free neurons these have exactly torchvision's ResNet-18/34 parameter counts
(11,689,512 / 21,797,672 for 3 x 224 x 224 input and 1000 classes). Conv/BN/pool/Linear run once per
sequence on ``[T*B, ...]`` (:class:`~spikeflow.layers.SeqToBatch`; BN statistics over ``T*B``, as
SpikingJelly's multi-step SEW-ResNet).

**ASA insertion points** (``attention="asa"``): an :class:`~spikeflow.layers.ASA` between BN and
the neuron -- the place ASA-SNN uses in its own nets -- at every residual-branch BN->SN site of the
stages listed in ``attention_stages`` (0 = stem, 1..4 = layer1..4; default all); down-sample
shortcuts get none. ASA-SNN's repository does not contain its SEW-ResNet (seeds_spec R3.5), so
where exactly the authors inserted ASA, the neuron model and the ASA ``reduction`` are not known:
the defaults here are choices (every site, IF neurons as the SEW paper's ImageNet nets,
``reduction=1`` as ASA's own arch B).

Neurons (``neuron``): ``"if"`` (default; SEW's ImageNet nets: IF, V_th 1, hard reset to 0,
ATan(2), reset detached), ``"lif"`` (tau ``init_tau``) or ``"plif"`` (SEW's DVS nets).
``stem="small"`` swaps the stem for Conv3x3(stride 1) -> BN -> SN without max-pool (small
inputs, mini runs).

    >>> import torch
    >>> net = SEWResNet(blocks=(1, 1), widths=(8, 16), num_classes=5, stem="small")
    >>> net(torch.rand(3, 2, 2, 16, 16)).shape
    torch.Size([3, 2, 5])
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

from torch import Tensor, nn

from spikeflow.layers import ASA, SeqToBatch
from spikeflow.models import register_model
from spikeflow.models._common import ModelCard, check_input, register_cards
from spikeflow.models.plif_net import make_neuron

__all__ = ["SEWResNet", "SEWBasicBlock", "sew_connect", "CONNECTS", "sew_resnet18", "sew_resnet34"]

CONNECTS = ("ADD", "AND", "IAND")
SEW_NEURONS = ("if", "lif", "plif")
ASA_VARIANTS = ("per_sample", "original")
STEMS = ("imagenet", "small")
Size = Union[int, Sequence[int]]


def sew_connect(a: Tensor, s: Tensor, kind: str) -> Tensor:
    """SEW connect function ``g(A, S)``: ``ADD`` ``A + S``, ``AND`` ``A * S``, ``IAND``
    ``(1 - A) * S`` (``A`` residual-branch spikes, ``S`` shortcut spikes; same shape)."""
    if kind == "ADD":
        return a + s
    if kind == "AND":
        return a * s
    if kind == "IAND":
        return (1.0 - a) * s
    raise ValueError(f"connect must be one of {CONNECTS}, got {kind!r}")


def _neuron(kind: str, init_tau: float, detach_reset: bool, alpha: float) -> nn.Module:
    if kind not in SEW_NEURONS:
        raise ValueError(f"neuron must be one of {SEW_NEURONS}, got {kind!r}")
    if kind == "if":
        from spikeflow import neurons, surrogate  # noqa: PLC0415

        return neurons.IF(v_threshold=1.0, v_reset=0.0, detach_reset=detach_reset,
                          surrogate=surrogate.ATan(alpha=alpha))
    return make_neuron(kind, init_tau, detach_reset, alpha)


class _Sites:
    """Builds the BN->SN site modules: ASA (or nothing) and the neuron."""

    def __init__(self, attention: str, T: int, lam: float, reduction: int, faithful: bool, neuron: str,
                 init_tau: float, detach_reset: bool, alpha: float) -> None:
        if attention not in ("asa", "none"):
            raise ValueError(f"attention must be 'asa' or 'none', got {attention!r}")
        self.attention, self.T, self.lam, self.reduction, self.faithful = attention, T, lam, reduction, faithful
        self.neuron, self.init_tau, self.detach_reset, self.alpha = neuron, init_tau, detach_reset, alpha

    def attn(self, channels: int, on: bool) -> nn.Module:
        if self.attention == "asa" and on:
            return ASA(self.T, channels, lam=self.lam, reduction=self.reduction, faithful=self.faithful)
        return nn.Identity()

    def sn(self) -> nn.Module:
        return _neuron(self.neuron, self.init_tau, self.detach_reset, self.alpha)


class SEWBasicBlock(nn.Module):
    """SEW basic block ``[T, B, C_in, H, W] -> [T, B, C_out, H/stride, W/stride]`` (module doc)."""

    def __init__(self, in_channels: int, channels: int, stride: int, connect: str, sites: _Sites,
                 attention: bool) -> None:
        super().__init__()
        if connect not in CONNECTS:
            raise ValueError(f"connect must be one of {CONNECTS}, got {connect!r}")
        self.connect = connect
        self.conv1 = SeqToBatch(nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False), nn.BatchNorm2d(channels))
        self.attn1, self.sn1 = sites.attn(channels, attention), sites.sn()
        self.conv2 = SeqToBatch(nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels))
        self.attn2, self.sn2 = sites.attn(channels, attention), sites.sn()
        self.downsample: Optional[nn.Module] = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                SeqToBatch(nn.Conv2d(in_channels, channels, 1, stride, bias=False), nn.BatchNorm2d(channels)),
                sites.sn())

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        a = self.sn2(self.attn2(self.conv2(self.sn1(self.attn1(self.conv1(x))))))
        return sew_connect(a, shortcut, self.connect)


class SEWResNet(nn.Module):
    """SEW-ResNet with basic blocks and optional ASA (see the module docstring).

    Args:
        blocks: blocks per stage ((2, 2, 2, 2) SEW-ResNet-18, (3, 4, 6, 3) SEW-ResNet-34).
        widths: stage widths (64, 128, 256, 512); stride 2 at the first block of stages 2+.
        in_channels: per-step input channels (2 polarities for event frames).
        num_classes: ``K`` (300 for HAR-DVS).
        connect: ``"ADD"``, ``"AND"`` or ``"IAND"`` (SEW connect function).
        neuron: ``"if"``, ``"lif"`` or ``"plif"``; init_tau (LIF/PLIF), detach_reset, alpha (ATan).
        stem: ``"imagenet"`` (7x7/2 conv + 3x3/2 max-pool) or ``"small"`` (3x3/1 conv, no pool).
        attention: ``"asa"`` or ``"none"``; T: steps (needed by ASA's time mixing);
        attention_stages: stages with ASA (0 stem, 1..4 layers); lam, reduction, faithful: ASA options;
        asa_variant: ``"original"`` (= ``faithful=True``: the published ``Attn.py`` rule, batch-union
            top-k and an untrained TCA map; the paper configs use it) or ``"per_sample"`` (spikeflow's).
        input_size: expected ``(H, W)`` (checked when given; any size otherwise).
    """

    def __init__(self, blocks: Sequence[int] = (2, 2, 2, 2), widths: Sequence[int] = (64, 128, 256, 512),
                 in_channels: int = 2, num_classes: int = 300, connect: str = "ADD", neuron: str = "if",
                 init_tau: float = 2.0, detach_reset: bool = True, alpha: float = 2.0, stem: str = "imagenet",
                 attention: str = "none", T: int = 8, attention_stages: Optional[Sequence[int]] = None,
                 lam: float = 0.5, reduction: int = 1, faithful: bool = False,
                 input_size: Optional[Size] = None, asa_variant: str = "per_sample") -> None:
        super().__init__()
        if asa_variant not in ASA_VARIANTS:
            raise ValueError(f"asa_variant must be one of {ASA_VARIANTS}, got {asa_variant!r}")
        faithful = bool(faithful) or asa_variant == "original"
        if len(blocks) != len(widths) or not blocks or any(int(b) < 1 for b in blocks):
            raise ValueError(f"blocks {tuple(blocks)!r} and widths {tuple(widths)!r} must be non-empty, "
                             "of equal length, with at least one block per stage")
        if stem not in STEMS:
            raise ValueError(f"stem must be one of {STEMS}, got {stem!r}")
        if connect not in CONNECTS:
            raise ValueError(f"connect must be one of {CONNECTS}, got {connect!r}")
        stages = set(range(len(blocks) + 1)) if attention_stages is None else {int(s) for s in attention_stages}
        bad = sorted(s for s in stages if not 0 <= s <= len(blocks))
        if bad:
            raise ValueError(f"attention_stages must lie in 0..{len(blocks)} (0 = stem), got {bad}")
        self.T, self.in_channels, self.attention = int(T), in_channels, attention
        self.attention_stages = tuple(sorted(stages))
        self.hw = None if input_size is None else (
            (int(input_size), int(input_size)) if isinstance(input_size, int) else tuple(int(v) for v in input_size))
        sites = _Sites(attention, int(T), lam, reduction, faithful, neuron, init_tau, detach_reset, alpha)
        c0 = int(widths[0])
        if stem == "imagenet":
            conv = nn.Conv2d(in_channels, c0, 7, 2, 3, bias=False)
        else:
            conv = nn.Conv2d(in_channels, c0, 3, 1, 1, bias=False)
        self.stem = SeqToBatch(conv, nn.BatchNorm2d(c0))
        self.stem_attn, self.stem_sn = sites.attn(c0, 0 in stages), sites.sn()
        self.pool = SeqToBatch(nn.MaxPool2d(3, 2, 1)) if stem == "imagenet" else nn.Identity()
        layers: list[nn.Module] = []
        c_in = c0
        for i, (n, c) in enumerate(zip(blocks, widths)):
            for j in range(int(n)):
                stride = 2 if (i > 0 and j == 0) else 1
                layers.append(SEWBasicBlock(c_in, int(c), stride, connect, sites, (i + 1) in stages))
                c_in = int(c)
        self.layers = nn.Sequential(*layers)
        self.head = SeqToBatch(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, type(self).__name__, (self.in_channels, *(self.hw or (None, None))))
        if self.attention == "asa" and x.shape[0] != self.T:
            raise ValueError(f"{type(self).__name__}(T={self.T}, attention='asa') needs exactly {self.T} steps, "
                             f"got {x.shape[0]}")
        x = self.pool(self.stem_sn(self.stem_attn(self.stem(x))))
        return self.fc(self.head(self.layers(x)))


@register_model
def sew_resnet18(**kw) -> SEWResNet:
    """SEW-ResNet-18 (blocks 2-2-2-2, ADD), 2-channel event frames, 300 HAR-DVS classes; ``attention="asa"``
    inserts ASA between BN and SN."""
    kw.setdefault("blocks", (2, 2, 2, 2))
    return SEWResNet(**kw)


@register_model
def sew_resnet34(**kw) -> SEWResNet:
    """SEW-ResNet-34 (blocks 3-4-6-3, ADD), same options as :func:`sew_resnet18`."""
    kw.setdefault("blocks", (3, 4, 6, 3))
    return SEWResNet(**kw)


_SRC = ("seeds_spec R3.9 (ASA-SNN README: HAR-DVS SEW-Res-SNN-18 45.5 / NASFR 0.206, + ASA 47.1 / 0.183); "
        "architecture: Fang et al., NeurIPS 2021, 'Deep Residual Learning in Spiking Neural Networks'")
_NOTES = ("ASA-SNN's repository has no HAR-DVS code (seeds_spec R3.5): the frame size, T, neuron, ASA sites and "
          "reduction of the published row are not known; spikeflow's choices: HARDVS events as 2 x 130 x 173 "
          "count frames (346x260, ds 2), T 8 split by number, IF neurons, ASA at every residual-branch BN->SN "
          "site with reduction 1 (paper configs: faithful ASA)")
register_cards({
    "sew_resnet18": ModelCard("asa", "har_dvs", (2, 130, 173), 300, 8,
                              {"acc": 47.1, "nasfr": 0.183, "acc_no_attention": 45.5, "nasfr_no_attention": 0.206},
                              _SRC, _NOTES),
    "sew_resnet34": ModelCard("asa", "har_dvs", (2, 130, 173), 300, 8, {}, _SRC,
                              "not in the ASA paper; the SEW paper's deeper variant, same options"),
})
