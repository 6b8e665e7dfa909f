"""RNN / LSTM / GRU baselines: torch parity, explicit state round trips, gradients, dims."""
import pytest
import torch
from torch import nn

from spikeflow.layers import GRU, LSTM, RNN, HiddenState, LSTMState, RecurrentBaseline

DT = torch.float64
CASES = [(RNN, nn.RNN, "rnn_tanh", 1), (GRU, nn.GRU, "gru", 3), (LSTM, nn.LSTM, "lstm", 4)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("cls,torch_cls,mode,gates", CASES)
def test_shapes_flattening_and_torch_parity(cls, torch_cls, mode, gates, dtype):
    layer = cls(2 * 3 * 3, 5, num_layers=2).to(dtype)
    x = torch.randn(7, 4, 2, 3, 3, dtype=dtype)  # frames [T, B, C, H, W] are flattened per step
    out, state = layer.run(x)
    assert out.shape == (7, 4, 5) and out.dtype == dtype
    assert isinstance(layer.rnn, torch_cls) and not layer.rnn.batch_first
    expected, final = layer.rnn(x.flatten(2))
    assert torch.equal(out, expected)
    if mode == "lstm":
        assert isinstance(state, LSTMState)
        assert torch.equal(state.h, final[0]) and torch.equal(state.c, final[1])
    else:
        assert isinstance(state, HiddenState) and torch.equal(state.h, final)
    assert state.h.shape == (2, 4, 5)
    assert torch.equal(layer(x), out)


@pytest.mark.parametrize("cls,torch_cls,mode,gates", CASES)
def test_run_on_halves_equals_whole(cls, torch_cls, mode, gates):
    layer = cls(6, 4, num_layers=2).double()
    x = torch.randn(9, 3, 6, dtype=DT)
    whole, s_whole = layer.run(x)
    first, s1 = layer.run(x[:4])
    second, s2 = layer.run(x[4:], s1)
    torch.testing.assert_close(torch.cat([first, second]), whole, rtol=1e-12, atol=1e-12)
    for u, v in zip(s2, s_whole):
        torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-12)


def test_rnn_one_step_known_formula():
    layer = RNN(3, 2, nonlinearity="relu").double()
    x = torch.randn(1, 4, 3, dtype=DT)
    h0 = torch.randn(1, 4, 2, dtype=DT)
    out, _ = layer.run(x, HiddenState(h0))
    r = layer.rnn
    expected = torch.relu(x[0] @ r.weight_ih_l0.T + r.bias_ih_l0 + h0[0] @ r.weight_hh_l0.T + r.bias_hh_l0)
    torch.testing.assert_close(out[0], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls,torch_cls,mode,gates", CASES)
def test_gradients_reach_input_and_every_parameter(cls, torch_cls, mode, gates):
    layer = cls(4, 3, num_layers=2, dropout=0.2)
    x = torch.randn(5, 2, 4, requires_grad=True)
    layer(x).square().sum().backward()
    assert x.grad.abs().sum() > 0
    for name, p in layer.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("cls,torch_cls,mode,gates", CASES)
def test_spec_describes_dims(cls, torch_cls, mode, gates):
    layer = cls(10, 7, num_layers=3, bias=False)
    assert isinstance(layer, RecurrentBaseline)
    spec = layer.ops_spec()
    assert spec == {"mode": mode, "input_size": 10, "hidden_size": 7, "num_layers": 3, "gates": gates,
                    "bias": False, "conv": False, "kernel_size": None, "padding": None,
                    "bidirectional": False}
    assert layer.spec.gates == gates


def test_dropout_between_layers_only_in_training():
    layer = GRU(4, 8, num_layers=2, dropout=0.5)
    x = torch.randn(5, 3, 4)
    layer.eval()
    assert torch.equal(layer(x), layer(x))
    layer.train()
    torch.manual_seed(0)
    a = layer(x)
    torch.manual_seed(1)
    assert not torch.equal(a, layer(x))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="input_size"):
        LSTM(0, 4)
    with pytest.raises(ValueError, match="hidden_size"):
        GRU(3, -1)
    with pytest.raises(ValueError, match="num_layers"):
        RNN(3, 4, num_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        LSTM(3, 4, dropout=1.0)
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="6 features per step"):
        GRU(6, 4)(torch.zeros(3, 2, 5))
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        GRU(6, 4)(torch.zeros(3, 6))
    with pytest.raises(ValueError, match=r"state must be 2 tensor\(s\) of shape \(1, 2, 4\)"):
        LSTM(6, 4).run(torch.zeros(3, 2, 6), LSTMState(torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)))
