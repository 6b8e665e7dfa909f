"""He et al. 2020, "Comparing SNNs and RNNs on neuromorphic vision datasets" (seeds_spec R4).

The same stacks are built with spiking neurons, vanilla RNN, LSTM and GRU layers so that only the
neuron model differs:

* **FC stack** ``in -> hidden... -> K`` (``hidden`` sets the hidden sizes). SNN: ``Linear -> DecayLIF``
  per layer, output spikes; ``he2020_snn_mlp`` is ``2048 -> 512 -> 11`` as ``snn_gesture.py``
  builds it (1,054,731 parameters; its ``cfg_fc = [512, 512, 11]`` names a second hidden layer that
  the model never creates); ``hidden=(512, 512)`` gives spikeflow's former 2-hidden-layer variant
  (1,317,387), the same stack as the recurrent MLPs. RNN/LSTM/GRU: one recurrent layer per hidden
  size (2 x 512), then a ``Linear`` read-out.
* **Conv stack** ``Input-MP4-64C3-128C3-AP2-128C3-AP2-256FC-11`` (MP4 = the 128 -> 32 down-sampling,
  done by the data pipeline with ``ds=4``, or by the model with ``input_pool=4``). SNN: every conv/FC
  is followed by a DecayLIF layer and pooling is spiking (``AvgPool2d(2)`` of spikes into a DecayLIF
  layer); dropout 0.5 before conv2, conv3, FC1 and FC2. ConvRNN/ConvLSTM/ConvGRU replace the three
  ``conv -> neuron`` layers by conv-recurrent layers (pooling is a plain ``AvgPool2d``). Two heads:

  - ``head="fc"`` (the public ``convLstm_gesture.py`` / ``convRNN_gesture.py``, used by the paper
    configs of ConvRNN and ConvLSTM): the last step's pooled map -> ``fc1`` Linear(8192, 256) ->
    ``fc2`` Linear(256, K), plain linear layers without activation or recurrence (with
    ``readout="last"``, as published; ``"rate"`` applies fc1/fc2 at every step). ConvLSTM:
    4,317,963 parameters. The public scripts have no dropout (``dropout=0`` in those configs).
  - ``head="recurrent"`` (spikeflow's default, from the authors' un-published "rate-coding inspired"
    GRU script, used by the ConvGRU configs): a 2-layer RNN/LSTM/GRU of 256 units + Linear read-out
    (ConvLSTM: 11,399,691 parameters).

SNN neuron (R4.2): ``u[t] = 0.3 u[t-1] (1 - s[t-1]) + W x[t] + b``, ``s = u > 0.3`` (strict), rectangle
surrogate of half-width ``lens`` (``surrogate_width = 2 lens``, height ``1 / (2 lens)``); reset not
detached. The public scripts disagree on ``lens``: 0.25 in the FC scripts (``snn_gesture.py``,
``nmnist_snn.py``; default ``surrogate_width=0.5``), 0.5 in ``scnn_gesture.py`` (the CNN; the
"full version" text says ``a = 0.5, lens = a/2 = 0.25``). The paper configs follow the script of
their row: ``surrogate_width`` 0.5 for the MLP rows, 1.0 for the SNN-CNN rows.

Choices the seeds do not settle (paper configs): frames of ``dt`` start at the first event of a
sample (test and training); the authors' DCLL loader starts each *training* window at random in
``[t_begin, t_end - 2 T dt)`` (data option ``random_start=True``) and each test window at the
label's start. The complexity comparison counts event-driven ACs for SNNs and dense MACs for the
recurrent models (docs/metrics.md); the paper's formulas are not available.

Read-outs of the recurrent models: ``readout="rate"`` (the paper's "rate-coding inspired" loss):
a ``Linear`` on every step, the loss averages over ``T``; ``readout="last"`` (mainstream): the
``Linear`` on the last step only, returned repeated over ``T`` so that any reduction over ``T``
gives the last-step read-out. Every model returns ``[T, B, K]``; SNNs return output spikes.

Dropout of the SNN-CNN (``dropout_mode``): ``"original"`` (``scnn_gesture.py``, used by the paper
configs) calls ``F.dropout(spike, 0.5)`` inside the step loop, so a new mask is drawn at every step,
it is **active in evaluation too**, and the dropped, rescaled spike ``d = m s`` (``m`` in
``{0, 1/(1-p)}``) replaces the neuron's own spike in its reset gate::

    u[t] = decay u[t-1] (1 - d[t-1]) + I[t],   s[t] = H(u[t] - V_th),   d[t] = m[t] s[t]

after conv1 and after the first spiking pool (:class:`DropoutResetDecayLIF`); the dropout on the
flattened last pool's spikes and the one after FC1 use the same per-step ``F.dropout``
(:class:`~spikeflow.layers.StepDropout`; the one after FC1 also gates FC1's reset).
``"standard"`` (spikeflow's default): ``nn.Dropout`` after the neuron, training only, the reset uses
the neuron's own spike. The recurrent kinds use the same per-step dropout layer in ``"original"``
mode (no reset coupling). The paper's accuracy tables were not available (R4.4), so the model cards
carry no reported numbers.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Sequence

import torch
from torch import Tensor, nn

from spikeflow import surrogate as sg
from spikeflow.layers import GRU, LSTM, RNN, ConvGRU, ConvLSTM, ConvRNN, SeqToBatch, StepDropout
from spikeflow.layers.dropout import step_dropout_mask
from spikeflow.models import register_model
from spikeflow.models._common import LastStepReadout, ModelCard, check_input, register_cards
from spikeflow.models._neurons import decay_lif
from spikeflow.neurons import BaseNeuron

__all__ = ["He2020MLP", "He2020CNN", "RECURRENT_KINDS", "DropoutResetDecayLIF", "DroppedSpikes",
           "FCHead", "DROPOUT_MODES", "HEADS"]

RECURRENT_KINDS = {"rnn": RNN, "lstm": LSTM, "gru": GRU}
CONV_RECURRENT_KINDS = {"rnn": ConvRNN, "lstm": ConvLSTM, "gru": ConvGRU}
READOUTS = ("rate", "last")
DROPOUT_MODES = ("standard", "original")
HEADS = ("recurrent", "fc")


class DropoutResetState(NamedTuple):
    """Membrane after the last step's (dropout-gated) reset, ``v = u (1 - d)``, shape ``[B, ...]``."""

    v: Tensor


class DropoutResetDecayLIF(BaseNeuron):
    """He2020's SNN-CNN neuron followed by ``F.dropout`` inside the step loop (``scnn_gesture.py``)::

        u[t] = decay u[t-1] (1 - d[t-1]) + I[t]     s[t] = H(u[t] - V_th)     d[t] = m[t] s[t]
        m[t] = bernoulli(1 - p) / (1 - p), a new draw per step and element

    The dropped, rescaled spike ``d`` (0 or ``1/(1-p)``) gates the reset, as in the original where
    ``spike = F.dropout(spike)`` overwrites the neuron's spike; the reset is differentiated. The
    masks are drawn in training and, with ``eval_active`` (the original), in evaluation; otherwise
    the neuron is a plain DecayLIF. Returns the binary spikes ``s`` (so spike metrics count real
    spikes) and keeps the masks of the call in ``mask`` for :class:`DroppedSpikes`, which outputs
    ``d``.

    Args:
        p: drop probability; decay, v_threshold, surrogate, compare: as :class:`spikeflow.neurons.DecayLIF`.
        eval_active: also drop in evaluation mode (True: the original).

    Attributes:
        generator: optional ``torch.Generator`` for the masks (None: the global RNG).
    """

    binary_spikes = True

    def __init__(self, p: float = 0.5, decay: float = 0.3, v_threshold: float = 0.3,
                 surrogate: Optional[sg.SurrogateLike] = None, compare: str = ">", eval_active: bool = True) -> None:
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
            raise ValueError(f"DropoutResetDecayLIF: p must be a probability in [0, 1], got {p!r}")
        if compare not in (">", ">="):
            raise ValueError(f"DropoutResetDecayLIF: compare must be '>' or '>=', got {compare!r}")
        self.p, self.decay, self.v_threshold = float(p), float(decay), float(v_threshold)
        self.surrogate = sg.build(sg.Rectangle(width=0.5) if surrogate is None else surrogate)
        self.compare, self.strict, self.eval_active = compare, compare == ">", bool(eval_active)
        self.generator: Optional[torch.Generator] = None
        self.mask: Optional[Tensor] = None

    def run(self, x: Tensor, state: Optional[DropoutResetState] = None) -> tuple[Tensor, DropoutResetState]:
        """Spikes ``s [T, B, ...]`` and the final state; the masks of the call go to ``self.mask``."""
        self.check_input(x)
        if x.shape[0] == 0:
            return torch.zeros_like(x), DropoutResetState(torch.zeros_like(x[0:1].sum(0)) if state is None
                                                          else state.v)
        active = self.p > 0.0 and (self.training or self.eval_active)
        mask = step_dropout_mask(x, self.p, self.generator) if active else None
        v = torch.zeros_like(x[0]) if state is None else state.v
        spikes = []
        for t in range(x.shape[0]):
            u = self.decay * v + x[t]
            s = self.surrogate(u - self.v_threshold, strict=self.strict)
            v = u * (1.0 - (s * mask[t] if mask is not None else s))
            spikes.append(s)
        self.mask = mask
        return torch.stack(spikes), DropoutResetState(v)

    def extra_repr(self) -> str:
        return (f"p={self.p:g}, decay={self.decay:g}, v_threshold={self.v_threshold:g}, "
                f"compare='{self.compare}', eval_active={self.eval_active}")


class DroppedSpikes(nn.Module):
    """``d = m s``: the spikes of a :class:`DropoutResetDecayLIF` times the masks its reset used."""

    def __init__(self, neuron: DropoutResetDecayLIF) -> None:
        super().__init__()
        self.neuron = neuron

    def forward(self, x: Tensor) -> Tensor:
        s = self.neuron(x)
        mask, self.neuron.mask = self.neuron.mask, None
        return s if mask is None else s * mask


class FCHead(nn.Module):
    """The public conv-recurrent scripts' head: ``fc2(fc1(x))``, plain Linear layers (no activation).

    ``last=True`` (published): only the last step is read, the result is returned repeated over
    ``T`` (a view, see :class:`~spikeflow.models._common.LastStepReadout`); ``last=False`` applies the
    head at every step. ``dropout`` (a module or None) sits between fc1 and fc2.

    Shape: ``[T, B, F] -> [T, B, K]``.
    """

    def __init__(self, features: int, hidden: int, num_classes: int, last: bool = True,
                 dropout: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.fc1, self.fc2, self.last = nn.Linear(features, hidden), nn.Linear(hidden, num_classes), bool(last)
        self.drop = dropout if dropout is not None else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        if not self.last:
            return self.fc2(self.drop(self.fc1(x)))
        y = self.fc2(self.drop(self.fc1(x[-1:])))
        return y.expand(x.shape[0], *y.shape[1:])


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


def _dropout_factory(mode: str, p: float, decay: float, v_threshold: float, width: float):
    """``(drop, neuron_drop)``: factories of a dropout layer and of ``[neuron, dropout]``."""
    if mode not in DROPOUT_MODES:
        raise ValueError(f"dropout_mode must be one of {DROPOUT_MODES}, got {mode!r}")

    def neuron() -> nn.Module:
        return _snn_neuron(decay, v_threshold, width)

    # "neuron + dropout" is always two entries, so that layer indices (state-dict keys) do not
    # depend on the mode or on p
    if p <= 0:
        return (lambda: nn.Identity()), (lambda: [neuron(), nn.Identity()])
    if mode == "standard":
        return (lambda: nn.Dropout(p)), (lambda: [neuron(), nn.Dropout(p)])

    def neuron_drop() -> list[nn.Module]:
        lif = DropoutResetDecayLIF(p, decay, v_threshold, sg.Rectangle(width=width), ">")
        return [DroppedSpikes(lif), nn.Identity()]

    return (lambda: StepDropout(p, eval_active=True)), neuron_drop


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
        dropout_mode: ``"standard"`` (``nn.Dropout``, training only; spikeflow) or ``"original"``
            (per-step ``F.dropout``, active in evaluation, dropped spikes gate the reset; the paper
            configs), see the module docstring.
        readout: ``"rate"`` or ``"last"`` (recurrent kinds only).
        head: recurrent kinds only: ``"recurrent"`` (2-layer recurrent FC + Linear; spikeflow's
            default) or ``"fc"`` (plain fc1/fc2 of the public scripts).
        decay, v_threshold, surrogate_width: SNN neuron parameters.

    Shape: ``[T, B, in_channels, H, W] -> [T, B, K]``.
    """

    def __init__(self, kind: str = "snn", in_channels: int = 2, input_size: int = 32, num_classes: int = 11,
                 input_pool: int = 1, channels: Sequence[int] = (64, 128, 128), fc: int = 256,
                 fc_layers: int = 2, dropout: float = 0.5, readout: str = "rate", decay: float = 0.3,
                 v_threshold: float = 0.3, surrogate_width: float = 0.5, dropout_mode: str = "standard",
                 head: str = "recurrent") -> None:
        super().__init__()
        if kind != "snn" and kind not in CONV_RECURRENT_KINDS:
            raise ValueError(f"kind must be 'snn' or one of {tuple(CONV_RECURRENT_KINDS)}, got {kind!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        if len(channels) != 3:
            raise ValueError(f"channels must give the 3 conv widths, got {channels!r}")
        if input_size % 4:
            raise ValueError(f"input_size must be divisible by 4 (two AvgPool2d(2)), got {input_size}")
        self.kind, self.in_channels = kind, in_channels
        self.dropout_mode, self.head = dropout_mode, head
        self.frame_size = input_size * input_pool
        c1, c2, c3 = channels
        flat = c3 * (input_size // 4) ** 2
        drop, neuron_drop = _dropout_factory(dropout_mode, dropout, decay, v_threshold, surrogate_width)
        if kind == "snn":
            def neuron() -> nn.Module:
                return _snn_neuron(decay, v_threshold, surrogate_width)

            layers: list[nn.Module] = [
                SeqToBatch(nn.Conv2d(in_channels, c1, 3, padding=1)), *neuron_drop(),
                SeqToBatch(nn.Conv2d(c1, c2, 3, padding=1)), neuron(),
                SeqToBatch(nn.AvgPool2d(2)), *neuron_drop(),
                SeqToBatch(nn.Conv2d(c2, c3, 3, padding=1)), neuron(),
                SeqToBatch(nn.AvgPool2d(2)), neuron(),
                SeqToBatch(nn.Flatten()), drop(), nn.Linear(flat, fc), *neuron_drop(),
                nn.Linear(fc, num_classes), neuron(),
            ]
        else:
            conv = CONV_RECURRENT_KINDS[kind]
            rec = RECURRENT_KINDS[kind]
            layers = [
                conv(in_channels, c1, 3), drop(), conv(c1, c2, 3), SeqToBatch(nn.AvgPool2d(2)), drop(),
                conv(c2, c3, 3), SeqToBatch(nn.AvgPool2d(2)), SeqToBatch(nn.Flatten()), drop(),
            ]
            if head == "recurrent":
                layers += [rec(flat, fc, num_layers=fc_layers), drop(), _readout(readout, fc, num_classes)]
            else:
                layers.append(FCHead(flat, fc, num_classes, last=readout == "last",
                                     dropout=drop() if dropout > 0 else None))
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
    """SNN MLP 2048-512-11 as ``snn_gesture.py`` (DecayLIF, strict threshold; 1,054,731 parameters);
    ``hidden=(512, 512)`` gives the 2048-512-512-11 variant."""
    return _mlp("snn", **{"hidden": (512,), **kw})


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
    """SNN CNN Input-MP4-64C3-128C3-AP2-128C3-AP2-256FC-11 with spiking pooling (2,322,891 params);
    ``dropout_mode="original"`` for the authors' per-step, always-on dropout."""
    return _cnn("snn", **kw)


@register_model
def he2020_convrnn_cnn(**kw) -> He2020CNN:
    """ConvRNN version of the CNN: ``head="recurrent"`` (2-layer RNN of 256 + Linear) or ``"fc"``
    (last step -> fc1 -> fc2, ``convRNN_gesture.py``)."""
    return _cnn("rnn", **kw)


@register_model
def he2020_convlstm_cnn(**kw) -> He2020CNN:
    """ConvLSTM version of the CNN: ``head="recurrent"`` (11,399,691 params) or ``"fc"`` (last step ->
    fc1 -> fc2, ``convLstm_gesture.py``, 4,317,963 params)."""
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
_NOTE = ("paper accuracy tables unavailable (seeds_spec R4.4): no reported numbers; frames start at the first event "
         "(DCLL's random training windows: data option random_start); ops = ACs (SNN) vs dense MACs (RNNs), "
         "spikeflow's rule")
_WIDTH = ("; surrogate lens: 0.25 in the FC scripts, 0.5 in scnn_gesture.py, 0.25 in the full-version text "
          "(surrogate_width = 2 lens; paper configs: {})")
_FC_HEAD = ("; paper configs: head='fc', readout='last', dropout 0 (the public script: last step -> fc1 -> fc2, "
            "{}); spikeflow's default head='recurrent' (2-layer recurrent 256 + Linear, {})")
register_cards({
    "he2020_snn_mlp": ModelCard(**_GESTURE_FC, notes=_NOTE + "; 2048-512-11 as snn_gesture.py (1,054,731 parameters; "
                                "paper's and default); hidden=(512, 512) is spikeflow's former 2-hidden-layer "
                                "variant (1,317,387)" + _WIDTH.format("0.5, snn_gesture.py")),
    "he2020_rnn_mlp": ModelCard(**_GESTURE_FC, notes=_NOTE),
    "he2020_lstm_mlp": ModelCard(**_GESTURE_FC, notes=_NOTE),
    "he2020_gru_mlp": ModelCard(**_GESTURE_FC, notes=_NOTE + "; GRU added for completeness"),
    "he2020_snn_cnn": ModelCard(**_GESTURE_CNN, notes=_NOTE + "; paper configs: dropout_mode='original' (per-step "
                                "F.dropout, active in evaluation, dropped spikes gate the reset; scnn_gesture.py); "
                                "spikeflow's default 'standard' (nn.Dropout, training only)"
                                + _WIDTH.format("1.0, scnn_gesture.py; the model default stays 0.5")),
    "he2020_convrnn_cnn": ModelCard(**_GESTURE_CNN, notes=_NOTE + _FC_HEAD.format(
        "convRNN_gesture.py, 2,654,667 parameters", "2,852,043")),
    "he2020_convlstm_cnn": ModelCard(**_GESTURE_CNN, notes=_NOTE + _FC_HEAD.format(
        "convLstm_gesture.py, 4,317,963 parameters", "11,399,691")),
    "he2020_convgru_cnn": ModelCard(**_GESTURE_CNN, notes=_NOTE + "; paper configs: head='recurrent' (the authors' "
                                    "'rate-coding inspired' GRU script: 2-layer GRU 256 + Linear at every step; no "
                                    "public ConvGRU script with the fc head exists); head='fc' is available"),
})
