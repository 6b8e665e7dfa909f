"""Recurrent baselines RNN / LSTM / GRU with the time-first ``[T, B, ...]`` interface (He et al. 2020).

They wrap ``torch.nn.RNN/LSTM/GRU`` (``batch_first=False``), so cuDNN runs them on GPU. Trailing input
dims are flattened (``[T, B, C, H, W]`` frames -> ``[T, B, C*H*W]``). Every call returns the per-step
hidden outputs ``[T, B, H]`` of the last layer; a read-out (``Linear`` per step, mean over ``T``) is
the model's business.

* ``forward(x)`` starts from zeros; ``run(x, state) -> (out, state)`` exposes the state
  (:class:`HiddenState` ``h`` or :class:`LSTMState` ``(h, c)``, each ``[num_layers, B, H]``).
* All baselines subclass :class:`RecurrentBaseline`, whose :meth:`~RecurrentBaseline.ops_spec` describes
  the dims that ``spikeflow.metrics`` needs to count their dense MACs.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, Optional, Union

from torch import Tensor, nn

__all__ = ["RecurrentBaseline", "RecurrentSpec", "HiddenState", "LSTMState", "RNN", "LSTM", "GRU",
           "GATES", "check_positive_int", "check_dropout", "describe_state"]

GATES = {"rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}


class HiddenState(NamedTuple):
    """State of RNN/GRU layers: ``h`` ``[num_layers, B, hidden...]``."""

    h: Tensor


class LSTMState(NamedTuple):
    """State of LSTM layers: hidden ``h`` and cell ``c``, each ``[num_layers, B, hidden...]``."""

    h: Tensor
    c: Tensor


State = Union[HiddenState, LSTMState]


@dataclass(frozen=True)
class RecurrentSpec:
    """Dims of a recurrent baseline (per layer the same hidden size).

    ``mode`` is ``"rnn_tanh"``, ``"rnn_relu"``, ``"lstm"`` or ``"gru"``; ``gates`` 1 / 1 / 4 / 3;
    ``input_size``/``hidden_size`` are features (channels for conv variants); ``kernel_size`` and
    ``padding`` (``None`` = "same", ``kernel // 2``) only for ``conv=True``.
    """

    mode: str
    input_size: int
    hidden_size: int
    num_layers: int
    gates: int
    bias: bool
    conv: bool = False
    kernel_size: Optional[tuple[int, int]] = None
    padding: Optional[tuple[int, int]] = None
    bidirectional: bool = False


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` if it is an int >= 1, else raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


def check_dropout(p: Any, name: str = "dropout") -> float:
    """Return ``p`` as a float if it is in ``[0, 1)``, else raise ``ValueError`` naming ``name``."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"{name} must be a float in [0, 1), got {p!r}")
    return float(p)


def describe_state(state: Any) -> str:
    """Short text of a state's structure and tensor shapes, for error messages."""
    if isinstance(state, Tensor):
        return f"tensor{tuple(state.shape)}"
    if isinstance(state, tuple):
        return "(" + ", ".join(describe_state(s) for s in state) + ")"
    return type(state).__name__


class RecurrentBaseline(nn.Module, ABC):
    """Marker base of the recurrent baselines: ``[T, B, ...] -> [T, B, hidden...]`` with explicit state."""

    @property
    @abstractmethod
    def spec(self) -> RecurrentSpec:
        """The layer dims (see :class:`RecurrentSpec`)."""

    def ops_spec(self) -> dict[str, Any]:
        """:attr:`spec` as a plain dict (keys of :class:`RecurrentSpec`) for operation counting."""
        return asdict(self.spec)

    @abstractmethod
    def run(self, x: Tensor, state: Optional[State] = None) -> tuple[Tensor, State]:
        """All ``T`` steps of ``x`` from ``state`` (``None`` = zeros)."""

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.run(x, None)
        return out


class _TorchRecurrent(RecurrentBaseline):
    """Shared wrapper of ``torch.nn.RNN/LSTM/GRU``."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int, bias: bool,
                 dropout: float, **kwargs: Any) -> None:
        super().__init__()
        self.mode = mode
        check_positive_int(input_size, "input_size")
        check_positive_int(hidden_size, "hidden_size")
        check_positive_int(num_layers, "num_layers")
        dropout = check_dropout(dropout)
        cls = {"lstm": nn.LSTM, "gru": nn.GRU}.get(self.mode, nn.RNN)
        self.rnn = cls(input_size, hidden_size, num_layers=num_layers, bias=bias, dropout=dropout,
                       batch_first=False, **kwargs)

    @property
    def spec(self) -> RecurrentSpec:
        r = self.rnn
        return RecurrentSpec(self.mode, r.input_size, r.hidden_size, r.num_layers, GATES[self.mode], r.bias)

    def _flat_input(self, x: Tensor) -> Tensor:
        size = self.rnn.input_size
        if not isinstance(x, Tensor) or x.dim() < 3 or x.shape[0] < 1 or math.prod(x.shape[2:]) != size:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"{type(self).__name__}(input_size={size}) expects x of shape [T, B, ...] with "
                f"T >= 1 and {size} features per step, got {shape}"
            )
        return x.flatten(2)

    def _check_state(self, state: tuple, x: Tensor, fields: int) -> None:
        expected = (self.rnn.num_layers, x.shape[1], self.rnn.hidden_size)
        if not isinstance(state, tuple) or len(state) != fields or any(
            not isinstance(s, Tensor) or tuple(s.shape) != expected for s in state
        ):
            raise ValueError(
                f"{type(self).__name__} state must be {fields} tensor(s) of shape {expected} "
                f"[num_layers, B, hidden_size], got {describe_state(state)}"
            )


class RNN(_TorchRecurrent):
    """Elman RNN ``h[t] = act(W_ih x[t] + b_ih + W_hh h[t-1] + b_hh)`` stacked ``num_layers`` times.

    Args:
        input_size: features per step (product of the trailing input dims).
        hidden_size: hidden units ``H`` per layer.
        num_layers: stacked layers.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        bias: use biases.
        dropout: dropout probability on the outputs of every layer but the last (training only).

    Shape: ``[T, B, ...] -> [T, B, H]``; state :class:`HiddenState` ``[num_layers, B, H]``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, dropout: float = 0.0) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(f"rnn_{nonlinearity}", input_size, hidden_size, num_layers, bias, dropout,
                         nonlinearity=nonlinearity)

    def run(self, x: Tensor, state: Optional[HiddenState] = None) -> tuple[Tensor, HiddenState]:
        flat = self._flat_input(x)
        if state is not None:
            self._check_state(state, x, 1)
        out, h = self.rnn(flat, None if state is None else state.h)
        return out, HiddenState(h)


class GRU(_TorchRecurrent):
    """Gated recurrent unit (torch's formulation, Cho et al. 2014), stacked ``num_layers`` times.

    Same arguments as :class:`RNN` without ``nonlinearity``. Shape ``[T, B, ...] -> [T, B, H]``;
    state :class:`HiddenState`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0) -> None:
        super().__init__("gru", input_size, hidden_size, num_layers, bias, dropout)

    def run(self, x: Tensor, state: Optional[HiddenState] = None) -> tuple[Tensor, HiddenState]:
        flat = self._flat_input(x)
        if state is not None:
            self._check_state(state, x, 1)
        out, h = self.rnn(flat, None if state is None else state.h)
        return out, HiddenState(h)


class LSTM(_TorchRecurrent):
    """Long short-term memory (Hochreiter & Schmidhuber 1997; torch's gates i, f, g, o), stacked.

    Same arguments as :class:`GRU`. Shape ``[T, B, ...] -> [T, B, H]``; state :class:`LSTMState`.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0) -> None:
        super().__init__("lstm", input_size, hidden_size, num_layers, bias, dropout)

    def run(self, x: Tensor, state: Optional[LSTMState] = None) -> tuple[Tensor, LSTMState]:
        flat = self._flat_input(x)
        if state is not None:
            self._check_state(state, x, 2)
        out, (h, c) = self.rnn(flat, None if state is None else (state.h, state.c))
        return out, LSTMState(h, c)
