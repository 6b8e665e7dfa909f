"""Convolutional recurrent baselines ConvRNN / ConvLSTM / ConvGRU unrolled over time (He et al. 2020).

Each layer's recurrence replaces the matrix products of RNN/LSTM/GRU by 2-D convolutions with odd
``kernel_size`` and "same" padding (stride 1), so the hidden state keeps the input's spatial size::

    ConvRNN  (Elman):              h = act(W * x + U * h + b)
    ConvLSTM (Shi et al. 2015, without peephole terms):
        i, f, g, o = split(W * x + U * h + b)
        c = sigmoid(f) c + sigmoid(i) tanh(g);  h = sigmoid(o) tanh(c)
    ConvGRU  (Ballas et al. 2016):
        z, r = sigmoid(split(W_zr * x + U_zr * h + b_zr))
        n = tanh(W_n * x + U_n * (r h) + b_n);  h = (1 - z) h + z n

``*`` is a convolution. The input convolutions ``W * x`` (with the bias) do not depend on the state,
so they run once on the whole sequence folded into the batch (``[T*B, C, H, W]``); only ``U * h``
runs per step. Input ``[T, B, C, H, W]`` -> per-step hidden outputs ``[T, B, hidden, H, W]`` of the
last layer; state :class:`HiddenState`/:class:`LSTMState` with tensors ``[num_layers, B, hidden, H, W]``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from spikeflow.layers.recurrent import (
    GATES, HiddenState, LSTMState, RecurrentBaseline, RecurrentSpec, check_dropout, check_positive_int,
    describe_state,
)

__all__ = ["ConvRNNCell", "ConvLSTMCell", "ConvGRUCell", "ConvRNN", "ConvLSTM", "ConvGRU"]

KernelSize = Union[int, Sequence[int]]


def _odd_pair(kernel_size: KernelSize) -> tuple[int, int]:
    k = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
    if len(k) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 and v % 2 for v in k):
        raise ValueError(f"kernel_size must be an odd int >= 1 or a pair of them ('same' padding), got "
                         f"{kernel_size!r}")
    return k  # type: ignore[return-value]


class _ConvCell(nn.Module, ABC):
    """One layer: ``input_conv`` (``C_in -> G C_h``, with bias), ``hidden_conv`` (``C_h -> G' C_h``)."""

    hidden_gates: int  # output channels of hidden_conv in units of C_h

    def __init__(self, mode: str, input_channels: int, hidden_channels: int, kernel_size: KernelSize,
                 bias: bool) -> None:
        super().__init__()
        self.mode = mode
        check_positive_int(input_channels, "input_channels")
        check_positive_int(hidden_channels, "hidden_channels")
        self.kernel_size = _odd_pair(kernel_size)
        self.padding = (self.kernel_size[0] // 2, self.kernel_size[1] // 2)
        self.input_channels, self.hidden_channels = input_channels, hidden_channels
        gates = GATES[self.mode]
        self.input_conv = nn.Conv2d(input_channels, gates * hidden_channels, self.kernel_size,
                                    padding=self.padding, bias=bias)
        self.hidden_conv = nn.Conv2d(hidden_channels, self.hidden_gates * hidden_channels, self.kernel_size,
                                     padding=self.padding, bias=False)

    def initial_state(self, x: Tensor) -> tuple[Tensor, ...]:
        """Zeros for a step ``x`` of shape ``[B, C, H, W]``."""
        zeros = x.new_zeros((x.shape[0], self.hidden_channels, *x.shape[-2:]))
        return (zeros,) * (2 if self.mode == "lstm" else 1)

    @abstractmethod
    def step(self, xg: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One step from the input-convolution output ``xg = input_conv(x[t])``: ``(h, state)``."""

    def forward(self, x: Tensor, state: Optional[tuple[Tensor, ...]] = None
                ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One step: ``x [B, C_in, H, W]`` -> ``(h [B, C_h, H, W], state)``; ``state=None`` = zeros."""
        if x.dim() != 4 or x.shape[1] != self.input_channels:
            raise ValueError(f"{type(self).__name__} expects x of shape [B, {self.input_channels}, H, W], "
                             f"got {tuple(x.shape)}")
        return self.step(self.input_conv(x), self.initial_state(x) if state is None else state)


class ConvRNNCell(_ConvCell):
    """``h = act(W * x + U * h + b)`` with ``act`` = ``tanh`` or ``relu``."""

    hidden_gates = 1

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: KernelSize = 3,
                 bias: bool = True, nonlinearity: str = "tanh") -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(f"rnn_{nonlinearity}", input_channels, hidden_channels, kernel_size, bias)

    def step(self, xg: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        pre = xg + self.hidden_conv(state[0])
        h = torch.tanh(pre) if self.mode == "rnn_tanh" else torch.relu(pre)
        return h, (h,)


class ConvLSTMCell(_ConvCell):
    """ConvLSTM step (Shi et al. 2015, no peepholes); gate order ``i, f, g, o`` like ``torch.nn.LSTM``."""

    hidden_gates = 4

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: KernelSize = 3,
                 bias: bool = True) -> None:
        super().__init__("lstm", input_channels, hidden_channels, kernel_size, bias)

    def step(self, xg: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        h, c = state
        i, f, g, o = (xg + self.hidden_conv(h)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, (h, c)


class ConvGRUCell(_ConvCell):
    """ConvGRU step (Ballas et al. 2016): update ``z``, reset ``r``, candidate on ``r h``."""

    hidden_gates = 2

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: KernelSize = 3,
                 bias: bool = True) -> None:
        super().__init__("gru", input_channels, hidden_channels, kernel_size, bias)
        self.candidate_conv = nn.Conv2d(hidden_channels, hidden_channels, self.kernel_size,
                                        padding=self.padding, bias=False)

    def step(self, xg: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, tuple[Tensor, ...]]:
        (h,) = state
        xz, xr, xn = xg.chunk(3, dim=1)
        hz, hr = self.hidden_conv(h).chunk(2, dim=1)
        z = torch.sigmoid(xz + hz)
        r = torch.sigmoid(xr + hr)
        n = torch.tanh(xn + self.candidate_conv(r * h))
        h = (1 - z) * h + z * n
        return h, (h,)


class _ConvRecurrent(RecurrentBaseline):
    """Stack of conv cells unrolled over ``T``; dropout on the outputs of all but the last layer."""

    def __init__(self, cell: type, input_channels: int, hidden_channels: int, kernel_size: KernelSize,
                 num_layers: int, bias: bool, dropout: float, **cell_kwargs: Any) -> None:
        super().__init__()
        check_positive_int(num_layers, "num_layers")
        self.dropout = check_dropout(dropout)
        self.cells = nn.ModuleList(
            cell(input_channels if layer == 0 else hidden_channels, hidden_channels, kernel_size, bias,
                 **cell_kwargs)
            for layer in range(num_layers)
        )
        self.bias = bias

    @property
    def spec(self) -> RecurrentSpec:
        first = self.cells[0]
        return RecurrentSpec(first.mode, first.input_channels, first.hidden_channels, len(self.cells),
                             GATES[first.mode], self.bias, conv=True, kernel_size=first.kernel_size,
                             padding=first.padding)

    def _check(self, x: Tensor, state: Any) -> None:
        channels = self.cells[0].input_channels
        if not isinstance(x, Tensor) or x.dim() != 5 or x.shape[0] < 1 or x.shape[2] != channels:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{type(self).__name__}(input_channels={channels}) expects x of shape "
                             f"[T, B, {channels}, H, W] with T >= 1, got {shape}")
        if state is None:
            return
        fields = 2 if self.cells[0].mode == "lstm" else 1
        expected = (len(self.cells), x.shape[1], self.cells[0].hidden_channels, *x.shape[-2:])
        if not isinstance(state, tuple) or len(state) != fields or any(
            not isinstance(s, Tensor) or tuple(s.shape) != expected for s in state
        ):
            raise ValueError(f"{type(self).__name__} state must be {fields} tensor(s) of shape {expected} "
                             f"[num_layers, B, hidden, H, W], got {describe_state(state)}")

    def run(self, x: Tensor, state: Optional[Union[HiddenState, LSTMState]] = None
            ) -> tuple[Tensor, Union[HiddenState, LSTMState]]:
        self._check(x, state)
        T, B = x.shape[:2]
        seq = x
        finals = []
        for layer, cell in enumerate(self.cells):
            if layer > 0 and self.dropout > 0:
                seq = F.dropout(seq, self.dropout, self.training)
            xg = cell.input_conv(seq.flatten(0, 1)).unflatten(0, (T, B))
            s = cell.initial_state(xg[0]) if state is None else tuple(field[layer] for field in state)
            outputs = []
            for t in range(T):
                h, s = cell.step(xg[t], s)
                outputs.append(h)
            seq = torch.stack(outputs)
            finals.append(s)
        stacked = [torch.stack(field) for field in zip(*finals)]
        return seq, (LSTMState(*stacked) if len(stacked) == 2 else HiddenState(*stacked))


class ConvRNN(_ConvRecurrent):
    """Stacked convolutional Elman RNN: ``[T, B, C, H, W] -> [T, B, hidden_channels, H, W]``.

    Args:
        input_channels, hidden_channels: channels of the input and of every layer's hidden state.
        kernel_size: odd int or pair (padding "same").
        num_layers: stacked layers; bias: conv biases (input convolution only);
        dropout: on the outputs of every layer but the last (training only);
        nonlinearity: ``"tanh"`` or ``"relu"``.
    """

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: KernelSize = 3,
                 num_layers: int = 1, bias: bool = True, dropout: float = 0.0,
                 nonlinearity: str = "tanh") -> None:
        super().__init__(ConvRNNCell, input_channels, hidden_channels, kernel_size, num_layers, bias, dropout,
                         nonlinearity=nonlinearity)


class ConvLSTM(_ConvRecurrent):
    """Stacked ConvLSTM (Shi et al. 2015, without peepholes); arguments as :class:`ConvRNN`."""

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: KernelSize = 3,
                 num_layers: int = 1, bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__(ConvLSTMCell, input_channels, hidden_channels, kernel_size, num_layers, bias,
                         dropout)


class ConvGRU(_ConvRecurrent):
    """Stacked ConvGRU (Ballas et al. 2016); arguments as :class:`ConvRNN`."""

    def __init__(self, input_channels: int, hidden_channels: int, kernel_size: KernelSize = 3,
                 num_layers: int = 1, bias: bool = True, dropout: float = 0.0) -> None:
        super().__init__(ConvGRUCell, input_channels, hidden_channels, kernel_size, num_layers, bias,
                         dropout)
