"""ConvRNN / ConvLSTM / ConvGRU: one cell step vs hand-written formulas, unrolling, state, grads, dims."""
import pytest
import torch
import torch.nn.functional as F

from spikeflow.layers import (
    ConvGRU, ConvGRUCell, ConvLSTM, ConvLSTMCell, ConvRNN, ConvRNNCell, HiddenState, LSTMState,
    RecurrentBaseline,
)

DT = torch.float64
MODULES = [(ConvRNN, "rnn_tanh", 1), (ConvLSTM, "lstm", 4), (ConvGRU, "gru", 3)]


def conv_same(x, weight, bias=None):
    return F.conv2d(x, weight, bias, padding=(weight.shape[-2] // 2, weight.shape[-1] // 2))


def random_state(cell, B=2, H=5, W=6):
    fields = 2 if cell.mode == "lstm" else 1
    return tuple(torch.randn(B, cell.hidden_channels, H, W, dtype=DT) for _ in range(fields))


def test_conv_lstm_cell_step_matches_shi_et_al_formulas():
    cell = ConvLSTMCell(3, 4, kernel_size=3).double()
    x = torch.randn(2, 3, 5, 6, dtype=DT)
    h0, c0 = random_state(cell)
    # the standard formulation: one convolution over the concatenation [x, h]
    weight = torch.cat([cell.input_conv.weight, cell.hidden_conv.weight], dim=1)
    gates = conv_same(torch.cat([x, h0], dim=1), weight, cell.input_conv.bias)
    i, f, g, o = (gates[:, k * 4:(k + 1) * 4] for k in range(4))
    c1 = torch.sigmoid(f) * c0 + torch.sigmoid(i) * torch.tanh(g)
    h1 = torch.sigmoid(o) * torch.tanh(c1)
    h, (h_state, c_state) = cell(x, (h0, c0))
    torch.testing.assert_close(h, h1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(c_state, c1, rtol=1e-12, atol=1e-12)
    assert h_state is h


def test_conv_gru_cell_step_matches_ballas_et_al_formulas():
    cell = ConvGRUCell(3, 4, kernel_size=(3, 5)).double()
    x = torch.randn(2, 3, 5, 6, dtype=DT)
    (h0,) = random_state(cell)
    wx, bx = cell.input_conv.weight, cell.input_conv.bias
    wh = cell.hidden_conv.weight
    z = torch.sigmoid(conv_same(x, wx[:4], bx[:4]) + conv_same(h0, wh[:4]))
    r = torch.sigmoid(conv_same(x, wx[4:8], bx[4:8]) + conv_same(h0, wh[4:8]))
    n = torch.tanh(conv_same(x, wx[8:], bx[8:]) + conv_same(r * h0, cell.candidate_conv.weight))
    expected = (1 - z) * h0 + z * n
    h, (h_state,) = cell(x, (h0,))
    torch.testing.assert_close(h, expected, rtol=1e-12, atol=1e-12)
    # zero update gate keeps the state: z -> 0 when its bias is very negative
    with torch.no_grad():
        cell.input_conv.bias[:4] = -1e4
    torch.testing.assert_close(cell(x, (h0,))[0], h0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("nonlinearity,act", [("tanh", torch.tanh), ("relu", torch.relu)])
def test_conv_rnn_cell_step(nonlinearity, act):
    cell = ConvRNNCell(2, 3, kernel_size=1, nonlinearity=nonlinearity).double()
    x = torch.randn(2, 2, 5, 6, dtype=DT)
    (h0,) = random_state(cell)
    xg = conv_same(x, cell.input_conv.weight, cell.input_conv.bias)
    expected = act(xg + conv_same(h0, cell.hidden_conv.weight))
    torch.testing.assert_close(cell(x, (h0,))[0], expected, rtol=1e-12, atol=1e-12)
    zero_state = cell(x)[0]
    torch.testing.assert_close(zero_state, act(conv_same(x, cell.input_conv.weight, cell.input_conv.bias)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cls,mode,gates", MODULES)
def test_unrolled_equals_manual_loop_of_cells(cls, mode, gates, dtype):
    layer = cls(2, 3, kernel_size=3, num_layers=2).to(dtype).eval()
    x = torch.randn(6, 2, 2, 5, 5, dtype=dtype)
    out, state = layer.run(x)
    assert out.shape == (6, 2, 3, 5, 5) and out.dtype == dtype
    seq, finals = x, []
    for cell in layer.cells:
        s, hs = None, []
        for t in range(x.shape[0]):
            h, s = cell(seq[t], s)
            hs.append(h)
        seq = torch.stack(hs)
        finals.append(s)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(out, seq, **tol)
    assert isinstance(state, LSTMState if mode == "lstm" else HiddenState)
    for k, field in enumerate(state):
        assert field.shape == (2, 2, 3, 5, 5)
        torch.testing.assert_close(field, torch.stack([f[k] for f in finals]), **tol)
    assert torch.equal(layer(x), out)


@pytest.mark.parametrize("cls,mode,gates", MODULES)
def test_run_on_halves_equals_whole(cls, mode, gates):
    layer = cls(2, 3, num_layers=2).double()
    x = torch.randn(7, 2, 2, 4, 4, dtype=DT)
    whole, s_whole = layer.run(x)
    first, s1 = layer.run(x[:3])
    second, s2 = layer.run(x[3:], s1)
    torch.testing.assert_close(torch.cat([first, second]), whole, rtol=1e-12, atol=1e-12)
    for u, v in zip(s2, s_whole):
        torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls,mode,gates", MODULES)
def test_gradients_reach_input_and_every_parameter(cls, mode, gates):
    layer = cls(2, 3, num_layers=2, dropout=0.1)
    x = torch.randn(4, 2, 2, 4, 4, requires_grad=True)
    layer(x).square().sum().backward()
    assert x.grad.abs().sum() > 0
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("cls,mode,gates", MODULES)
def test_spec_describes_dims(cls, mode, gates):
    layer = cls(2, 16, kernel_size=(3, 5), num_layers=2, bias=False)
    assert isinstance(layer, RecurrentBaseline)
    assert layer.ops_spec() == {"mode": mode, "input_size": 2, "hidden_size": 16, "num_layers": 2,
                                "gates": gates, "bias": False, "conv": True, "kernel_size": (3, 5),
                                "padding": (1, 2), "bidirectional": False}
    hidden_out = sum(m.out_channels for n, m in layer.cells[0].named_modules()
                     if isinstance(m, torch.nn.Conv2d) and n != "input_conv")
    assert layer.cells[0].input_conv.out_channels == gates * 16 and hidden_out == gates * 16


def test_bad_arguments_raise():
    for k in (2, (3, 4), 0, (3,), True):
        with pytest.raises(ValueError, match="kernel_size"):
            ConvLSTM(2, 3, kernel_size=k)
    with pytest.raises(ValueError, match="input_channels"):
        ConvGRU(0, 3)
    with pytest.raises(ValueError, match="hidden_channels"):
        ConvRNN(2, 0)
    with pytest.raises(ValueError, match="num_layers"):
        ConvGRU(2, 3, num_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        ConvGRU(2, 3, dropout=-0.1)
    with pytest.raises(ValueError, match="nonlinearity"):
        ConvRNN(2, 3, nonlinearity="gelu")
    with pytest.raises(ValueError, match=r"\[T, B, 2, H, W\]"):
        ConvGRU(2, 3)(torch.zeros(3, 1, 4, 5, 5))
    with pytest.raises(ValueError, match=r"\[B, 2, H, W\]"):
        ConvGRUCell(2, 3)(torch.zeros(1, 3, 5, 5))
    with pytest.raises(ValueError, match="state must be 1 tensor"):
        ConvGRU(2, 3).run(torch.zeros(3, 1, 2, 5, 5), HiddenState(torch.zeros(1, 1, 3, 4, 4)))
