"""Closed-form dense operation counts: convolutions (exact at borders) and recurrent layers.

Counting rules (per sample, one time step; biases and activation functions are not counted, as
for the synaptic operations of Linear/Conv layers):

* Convolution: one MAC per (output position, kernel tap) pair that reads a real input element
  (taps reading the zero padding are free). Per spatial dim ``d`` the number of such pairs is

      taps_d = #{(o, k) : 0 <= o * stride_d - pad_d + k * dil_d < L_d},  o < L_out_d, k < K_d

  and ``MACs = C_out * (C_in / groups) * prod_d taps_d``. Without padding this is the usual
  ``C_out * C_in/groups * K^n * L_out^n``.
* RNN / LSTM / GRU with ``G`` = 1 / 4 / 3 gates, input size ``I``, hidden size ``H``:
  ``G H (I + H)`` MACs for the gate matrix products, plus ``E H`` element-wise products
  (``E`` = 0 / 3 / 3: LSTM ``f*c, i*g, o*tanh(c)``; GRU ``r*(W_hn h), (1-z)*n, z*h``).
  Layer ``l > 0`` reads ``H * directions`` inputs; an LSTM with ``proj_size P`` feeds back ``P``
  and adds ``H P`` projection MACs.
* ConvRNN / ConvLSTM / ConvGRU: the same with the matrix products replaced by convolutions of
  ``C_in -> G C_h`` (input) and ``C_h -> G C_h`` (hidden), plus ``E C_h H_h W_h`` products.
"""
from __future__ import annotations

from typing import Sequence, Union

GATES = {"rnn": 1, "rnn_tanh": 1, "rnn_relu": 1, "lstm": 4, "gru": 3}
ELEMENTWISE = {"rnn": 0, "rnn_tanh": 0, "rnn_relu": 0, "lstm": 3, "gru": 3}

IntOrSeq = Union[int, Sequence[int]]


def _mode(mode: str) -> str:
    key = mode.lower()
    if key not in GATES:
        raise ValueError(f"mode must be one of {sorted(GATES)}, got {mode!r}")
    return key


def _tuple(value: IntOrSeq, n: int, name: str) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    value = tuple(int(v) for v in value)
    if len(value) != n:
        raise ValueError(f"{name} must have {n} entries, got {value}")
    return value


def conv_out_size(length: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution along one dim (PyTorch's formula)."""
    return (length + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def conv_taps(length: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Number of (output position, tap) pairs reading a real input along one dim (closed form)."""
    out = conv_out_size(length, kernel, stride, padding, dilation)
    total = 0
    for k in range(kernel):
        # o * stride + k * dilation - padding in [0, length)  <=>  lo <= o <= hi
        shift = k * dilation - padding
        lo = max(0, -(shift // stride))
        hi = min(out - 1, (length - 1 - shift) // stride)
        total += max(0, hi - lo + 1)
    return total


def conv_dense_macs(
    in_channels: int,
    out_channels: int,
    input_size: Sequence[int],
    kernel_size: IntOrSeq,
    stride: IntOrSeq = 1,
    padding: IntOrSeq = 0,
    dilation: IntOrSeq = 1,
    groups: int = 1,
) -> int:
    """Dense MACs of one convolution call on one sample (taps on padding excluded)."""
    n = len(input_size)
    k, s, p, d = (_tuple(v, n, nm) for v, nm in
                  ((kernel_size, "kernel_size"), (stride, "stride"), (padding, "padding"), (dilation, "dilation")))
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"groups={groups} must divide in_channels={in_channels} and out_channels={out_channels}")
    taps = 1
    for i in range(n):
        taps *= conv_taps(int(input_size[i]), k[i], s[i], p[i], d[i])
    return out_channels * (in_channels // groups) * taps


def rnn_macs_per_step(
    input_size: int,
    hidden_size: int,
    mode: str = "lstm",
    num_layers: int = 1,
    bidirectional: bool = False,
    proj_size: int = 0,
    elementwise: bool = True,
) -> int:
    """Dense MACs of a stacked RNN/LSTM/GRU for one sample and one time step."""
    key = _mode(mode)
    if proj_size and key != "lstm":
        raise ValueError(f"proj_size is only defined for LSTM, got mode={mode!r}")
    g, e = GATES[key], ELEMENTWISE[key] if elementwise else 0
    dirs = 2 if bidirectional else 1
    fed_back = proj_size or hidden_size
    total = 0
    for layer in range(num_layers):
        i = input_size if layer == 0 else fed_back * dirs
        per_dir = g * hidden_size * (i + fed_back) + e * hidden_size
        if proj_size:
            per_dir += hidden_size * proj_size
        total += dirs * per_dir
    return total


def conv_rnn_macs_per_step(
    in_channels: int,
    hidden_channels: int,
    input_size: Sequence[int],
    kernel_size: IntOrSeq,
    mode: str = "lstm",
    num_layers: int = 1,
    padding: IntOrSeq | None = None,
    elementwise: bool = True,
) -> int:
    """Dense MACs of a stacked ConvRNN/ConvLSTM/ConvGRU for one sample and one time step.

    ``padding=None`` means "same" padding ``kernel // 2`` (stride 1), so the hidden state has the
    input's spatial size.
    """
    key = _mode(mode)
    n = len(input_size)
    k = _tuple(kernel_size, n, "kernel_size")
    p = tuple(kk // 2 for kk in k) if padding is None else _tuple(padding, n, "padding")
    g, e = GATES[key], ELEMENTWISE[key] if elementwise else 0
    hidden_size = [conv_out_size(int(input_size[i]), k[i], 1, p[i]) for i in range(n)]
    if any(h != int(L) for h, L in zip(hidden_size, input_size)):
        raise ValueError(
            f"conv recurrent layers need a hidden state of the input's size; kernel {k} with padding "
            f"{p} maps {tuple(input_size)} to {tuple(hidden_size)}"
        )
    positions = 1
    for h in hidden_size:
        positions *= h
    total = 0
    for layer in range(num_layers):
        c_in = in_channels if layer == 0 else hidden_channels
        total += conv_dense_macs(c_in, g * hidden_channels, input_size, k, 1, p)
        total += conv_dense_macs(hidden_channels, g * hidden_channels, hidden_size, k, 1, p)
        total += e * hidden_channels * positions
    return total


__all__ = [
    "GATES", "ELEMENTWISE", "conv_out_size", "conv_taps", "conv_dense_macs",
    "rnn_macs_per_step", "conv_rnn_macs_per_step",
]
