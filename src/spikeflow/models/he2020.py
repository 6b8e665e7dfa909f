"""He et al. 2020, "Comparing SNNs and RNNs on neuromorphic vision datasets" (seeds_spec R4).

The same stacks are built with spiking neurons, vanilla RNN, LSTM and GRU layers so that only the
neuron model differs:

* **FC stack** ``in -> 512 -> 512 -> K`` (``hidden`` sets the hidden sizes; the N-MNIST MLP uses
  ``hidden=(512,)``). SNN: ``Linear -> DecayLIF`` per layer, output spikes. RNN/LSTM/GRU: one
  recurrent layer per hidden size, then a ``Linear`` read-out.
* **Conv stack** ``Input-MP4-64C3-128C3-AP2-128C3-AP2-256FC-11`` (MP4 = the 128 -> 32 down-sampling,
  done by the data pipeline with ``ds=4``, or by the model with ``input_pool=4``). SNN: every conv/FC
  is followed by a DecayLIF layer and pooling is spiking (``AvgPool2d(2)`` of spikes into a DecayLIF
  layer); dropout 0.5 before conv2, conv3, FC1 and FC2. ConvRNN/ConvLSTM/ConvGRU replace the three
  ``conv -> neuron`` layers by conv-recurrent layers (pooling is a plain ``AvgPool2d``) and the FC
  layer by a 2-layer RNN/LSTM/GRU of 256 units (the authors' GRU script).

SNN neuron (R4.2): ``u[t] = 0.3 u[t-1] (1 - s[t-1]) + W x[t] + b``, ``s = u > 0.3`` (strict), rectangle
surrogate of half-width ``lens = 0.25`` (``width = 0.5``, height 2); reset not detached.

Read-outs of the recurrent models: ``readout="rate"`` (the paper's "rate-coding inspired" loss):
a ``Linear`` on every step, the loss averages over ``T``; ``readout="last"`` (mainstream): the
``Linear`` on the last step only, returned repeated over ``T`` so that any reduction over ``T``
gives the last-step read-out. Every model returns ``[T, B, K]``; SNNs return output spikes.

Deviations: the authors' dropout (``F.dropout``) is also active in evaluation; here dropout is
``nn.Dropout`` (training only). The paper's accuracy tables were not available (R4.4), so the model
cards carry no reported numbers.
"""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from spikeflow.layers import GRU, LSTM, RNN, ConvGRU, ConvLSTM, ConvRNN, SeqToBatch
from spikeflow.models import register_model
from spikeflow.models._common import LastStepReadout, ModelCard, check_input, register_cards
from spikeflow.models._neurons import decay_lif

__all__ = ["He2020MLP", "He2020CNN", "RECURRENT_KINDS"]

RECURRENT_KINDS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
CONV_RECURRENT_KINDS = {"rnn": ConvRNN, "lstm": ConvLSTM, "gru": ConvGRU}
READOUTS = ("rate", "last")


def _snn_neuron(decay: float, v_threshold: float, width: float) -> nn.Module:
    return decay_lif(decay=decay, v_threshold=v_threshold, width=width, strict=True)


def _readout(readout: str, features: int, num_classes: int) -> nn.Module:
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
    return nn.Linear(features, num_classes) if readout == "rate" else LastStepReadout(features, num_classes)


class He2020MLP(nn.Module):
    """FC stack ``in -> hidden... -> K`` with spiking or recurrent hidden layers.

    Args:
        kind: ``"snn"``, ``"rnn"``, ``"lstm"`` or ``"gru"``.
        in_features: features per step (``2*32*32`` for DVS Gesture at ``ds=4``, ``2*34*34`` N-MNIST).
        hidden: hidden layer sizes.
        num_classes: ``K``.
        readout: ``"rate"`` or ``"last"`` (recurrent kinds only).
        dropout: dropout on the hidden outputs (0 in the authors' FC scripts).
        decay, v_threshold, surrogate_width: SNN neuron parameters.

    Shape: ``[T, B, *]`` (trailing dims flattened to ``in_features``) ``-> [T, B, K]``.
    """

    def __init__(self, kind: str = "snn", in_features: int = 2048, hidden: Sequence[int] = (512, 512),
                 num_classes: int = 11, readout: str = "rate", dropout: float = 0.0, decay: float = 0.3,
                 v_threshold: float = 0.3, surrogate_width: float = 0.5) -> None:
        super().__init__()
        if kind != "snn" and kind not in RECURRENT_KINDS:
            raise ValueError(f"kind must be 'snn' or one of {tuple(RECURRENT_KINDS)}, got {kind!r}")
        if not hidden:
            raise ValueError("hidden must list at least one hidden layer size")
        self.kind, self.in_features = kind, in_features
        layers: list[nn.Module] = []
        prev = in_features
        for size in hidden:
            if kind == "snn":
                layers += [nn.Linear(prev, size), _snn_neuron(decay, v_threshold, surrogate_width)]
            else:
                layers.append(RECURRENT_KINDS[kind](prev, size))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            prev = size
        if kind == "snn":
            layers += [nn.Linear(prev, num_classes), _snn_neuron(decay, v_threshold, surrogate_width)]
        else:
            layers.append(_readout(readout, prev, num_classes))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() < 3 or x[0, 0].numel() != self.in_features:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"He2020MLP(in_features={self.in_features}) expects [T, B, ...] with "
                             f"{self.in_features} features per step, got {shape}")
        return self.layers(x.flatten(2))


class He2020CNN(nn.Module):
    """``Input-MP4-64C3-128C3-AP2-128C3-AP2-256FC-K`` with spiking or conv-recurrent layers.

    Args:
        kind: ``"snn"``, ``"rnn"``, ``"lstm"`` or ``"gru"``.
        in_channels, input_size: per-step input ``[in_channels, input_size, input_size]`` (after
            ``input_pool``); 2 x 32 x 32 for DVS Gesture at ``ds=4``.
        num_classes: ``K``.
        input_pool: ``MaxPool2d(input_pool)`` on the input (the paper's MP4 when frames are 128x128).
        channels: conv channels (64, 128, 128); fc: FC width (256).
        fc_layers: recurrent FC layers of the recurrent kinds (2, as in the authors' GRU script).
        dropout: 0.5 before conv2, conv3, FC1 and the output layer.
        readout: ``"rate"`` or ``"last"`` (recurrent kinds only).
        decay, v_threshold, surrogate_width: SNN neuron parameters.

    Shape: ``[T, B, in_channels, H, W] -> [T, B, K]``.
    """

    def __init__(self, kind: str = "snn", in_channels: int = 2, input_size: int = 32, num_classes: int = 11,
                 input_pool: int = 1, channels: Sequence[int] = (64, 128, 128), fc: int = 256,
                 fc_layers: int = 2, dropout: float = 0.5, readout: str = "rate", decay: float = 0.3,
                 v_threshold: float = 0.3, surrogate_width: float = 0.5) -> None:
        super().__init__()
        if kind != "snn" and kind not in CONV_RECURRENT_KINDS:
            raise ValueError(f"kind must be 'snn' or one of {tuple(CONV_RECURRENT_KINDS)}, got {kind!r}")
        if len(channels) != 3:
            raise ValueError(f"channels must give the 3 conv widths, got {channels!r}")
        if input_size % 4:
            raise ValueError(f"input_size must be divisible by 4 (two AvgPool2d(2)), got {input_size}")
        self.kind, self.in_channels = kind, in_channels
        self.frame_size = input_size * input_pool
        c1, c2, c3 = channels
        flat = c3 * (input_size // 4) ** 2
        drop = (lambda: nn.Dropout(dropout)) if dropout > 0 else nn.Identity
        if kind == "snn":
            def neuron() -> nn.Module:
                return _snn_neuron(decay, v_threshold, surrogate_width)

            layers: list[nn.Module] = [
                SeqToBatch(nn.Conv2d(in_channels, c1, 3, padding=1)), neuron(), drop(),
                SeqToBatch(nn.Conv2d(c1, c2, 3, padding=1)), neuron(),
                SeqToBatch(nn.AvgPool2d(2)), neuron(), drop(),
                SeqToBatch(nn.Conv2d(c2, c3, 3, padding=1)), neuron(),
                SeqToBatch(nn.AvgPool2d(2)), neuron(),
                SeqToBatch(nn.Flatten()), drop(), nn.Linear(flat, fc), neuron(), drop(),
                nn.Linear(fc, num_classes), neuron(),
            ]
        else:
            conv = CONV_RECURRENT_KINDS[kind]
            rec = RECURRENT_KINDS[kind]
            layers = [
                conv(in_channels, c1, 3), drop(), conv(c1, c2, 3), SeqToBatch(nn.AvgPool2d(2)), drop(),
                conv(c2, c3, 3), SeqToBatch(nn.AvgPool2d(2)), SeqToBatch(nn.Flatten()), drop(),
                rec(flat, fc, num_layers=fc_layers), drop(), _readout(readout, fc, num_classes),
            ]
        if input_pool > 1:
            layers.insert(0, SeqToBatch(nn.MaxPool2d(input_pool)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, f"He2020CNN(kind={self.kind!r})", (self.in_channels, self.frame_size, self.frame_size))
        return self.layers(x)


def _mlp(kind: str, **kw) -> He2020MLP:
    return He2020MLP(kind, **kw)


def _cnn(kind: str, **kw) -> He2020CNN:
    return He2020CNN(kind, **kw)


@register_model
def he2020_snn_mlp(**kw) -> He2020MLP:
    """SNN MLP 2048-512-512-11 (DecayLIF, strict threshold)."""
    return _mlp("snn", **kw)


@register_model
def he2020_rnn_mlp(**kw) -> He2020MLP:
    """Vanilla RNN (tanh) MLP: 2 x 512 recurrent layers + Linear read-out."""
    return _mlp("rnn", **kw)


@register_model
def he2020_lstm_mlp(**kw) -> He2020MLP:
    """LSTM MLP: 2 x 512 + Linear read-out."""
    return _mlp("lstm", **kw)


@register_model
def he2020_gru_mlp(**kw) -> He2020MLP:
    """GRU MLP: 2 x 512 + Linear read-out."""
    return _mlp("gru", **kw)


@register_model
def he2020_snn_cnn(**kw) -> He2020CNN:
    """SNN CNN Input-MP4-64C3-128C3-AP2-128C3-AP2-256FC-11 with spiking pooling (2,322,891 params)."""
    return _cnn("snn", **kw)


@register_model
def he2020_convrnn_cnn(**kw) -> He2020CNN:
    """ConvRNN version of the CNN (conv-recurrent layers, 2-layer RNN of 256, Linear read-out)."""
    return _cnn("rnn", **kw)


@register_model
def he2020_convlstm_cnn(**kw) -> He2020CNN:
    """ConvLSTM version of the CNN."""
    return _cnn("lstm", **kw)


@register_model
def he2020_convgru_cnn(**kw) -> He2020CNN:
    """ConvGRU version of the CNN (the authors' "rate-coding inspired" GRU script)."""
    return _cnn("gru", **kw)


_GESTURE_FC = dict(paper="he2020", dataset="dvs_gesture", input=(2, 32, 32), classes=11, T=60,
                   source="seeds_spec R4.3 (snn_gesture.py / rnn_gesture.py / lstm_gesture.py)")
_GESTURE_CNN = dict(paper="he2020", dataset="dvs_gesture", input=(2, 32, 32), classes=11, T=60,
                    source="seeds_spec R4.3 (scnn_gesture.py, GRU 'rate-coding inspired' script); "
                           "2,322,891 parameters printed by the SNN script")
_NOTE = "paper accuracy tables unavailable (seeds_spec R4.4): no reported numbers"
register_cards({
    "he2020_snn_mlp": ModelCard(**_GESTURE_FC, notes=_NOTE),
    "he2020_rnn_mlp": ModelCard(**_GESTURE_FC, notes=_NOTE),
    "he2020_lstm_mlp": ModelCard(**_GESTURE_FC, notes=_NOTE),
    "he2020_gru_mlp": ModelCard(**_GESTURE_FC, notes=_NOTE + "; GRU added for completeness"),
    "he2020_snn_cnn": ModelCard(**_GESTURE_CNN, notes=_NOTE),
    "he2020_convrnn_cnn": ModelCard(**_GESTURE_CNN, notes=_NOTE),
    "he2020_convlstm_cnn": ModelCard(**_GESTURE_CNN, notes=_NOTE),
    "he2020_convgru_cnn": ModelCard(**_GESTURE_CNN, notes=_NOTE),
})
