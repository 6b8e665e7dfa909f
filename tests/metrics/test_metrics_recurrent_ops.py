import pytest
import torch
from torch import nn

from spikeflow.metrics import conv_dense_macs, conv_rnn_macs_per_step, rnn_macs_per_step, synops
from spikeflow.metrics.synops import recurrent_call_macs


def _weight_macs(module: nn.RNNBase) -> int:
    """Matrix-product MACs per step: every weight element is used once per step and sample."""
    return sum(p.numel() for n, p in module.named_parameters() if n.startswith("weight"))


@pytest.mark.parametrize("cls,mode,e", [(nn.RNN, "rnn", 0), (nn.LSTM, "lstm", 3), (nn.GRU, "gru", 3)])
@pytest.mark.parametrize("layers,bidir", [(1, False), (2, False), (2, True)])
def test_rnn_closed_forms_match_weight_count(cls, mode, e, layers, bidir):
    m = cls(7, 5, num_layers=layers, bidirectional=bidir)
    dirs = 2 if bidir else 1
    expected = _weight_macs(m) + e * 5 * layers * dirs
    assert rnn_macs_per_step(7, 5, mode, layers, bidir) == expected
    assert rnn_macs_per_step(7, 5, mode, layers, bidir, elementwise=False) == _weight_macs(m)


def test_hand_computed_values():
    # LSTM 2312 -> 512: 4 * 512 * (2312 + 512) + 3 * 512
    assert rnn_macs_per_step(2312, 512, "lstm") == 4 * 512 * 2824 + 1536
    assert rnn_macs_per_step(2312, 512, "rnn", num_layers=2) == 512 * 2824 + 512 * 1024
    assert rnn_macs_per_step(10, 4, "gru") == 3 * 4 * 14 + 12


def test_lstm_projection():
    m = nn.LSTM(6, 8, num_layers=2, proj_size=3)
    assert rnn_macs_per_step(6, 8, "lstm", 2, proj_size=3) == _weight_macs(m) + 3 * 8 * 2


def test_counter_on_torch_recurrent_layers():
    T, B = 6, 3
    lstm = nn.LSTM(4, 5, num_layers=2)
    ops = synops(lstm, torch.randn(T, B, 4))
    assert ops == {"ac": 0.0, "mac": float(T * rnn_macs_per_step(4, 5, "lstm", 2))}
    gru = nn.GRU(4, 5, batch_first=True)
    assert recurrent_call_macs(gru, torch.randn(B, T, 4)) == B * T * rnn_macs_per_step(4, 5, "gru")
    cell = nn.LSTMCell(4, 5)
    assert recurrent_call_macs(cell, torch.randn(B, 4)) == B * rnn_macs_per_step(4, 5, "lstm")


def test_readout_after_rnn_counted_separately():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.RNN(4, 6)
            self.fc = nn.Linear(6, 2)

        def forward(self, x):
            return self.fc(self.rnn(x)[0])

    T = 5
    ops = synops(Net(), torch.randn(T, 2, 4))
    assert ops["mac"] == T * (6 * (4 + 6) + 6 * 2)


@pytest.mark.parametrize("mode,g,e", [("rnn", 1, 0), ("lstm", 4, 3), ("gru", 3, 3)])
def test_conv_recurrent_closed_form(mode, g, e):
    h, w, cin, ch, k = 8, 6, 2, 4, 3
    x_conv = nn.Conv2d(cin, g * ch, k, padding=1)
    h_conv = nn.Conv2d(ch, g * ch, k, padding=1)
    from spikeflow.metrics import conv_fanout_map
    expected = int(conv_fanout_map(x_conv, (cin, h, w)).sum() + conv_fanout_map(h_conv, (ch, h, w)).sum())
    expected += e * ch * h * w
    assert conv_rnn_macs_per_step(cin, ch, (h, w), k, mode) == expected
    two = conv_rnn_macs_per_step(cin, ch, (h, w), k, mode, num_layers=2)
    assert two == expected + conv_rnn_macs_per_step(ch, ch, (h, w), k, mode)


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        rnn_macs_per_step(3, 4, "transformer")
    with pytest.raises(ValueError, match="proj_size"):
        rnn_macs_per_step(3, 4, "gru", proj_size=2)
    with pytest.raises(ValueError, match="hidden state"):
        conv_rnn_macs_per_step(2, 4, (8, 8), 3, "lstm", padding=0)
    with pytest.raises(ValueError, match="groups"):
        conv_dense_macs(3, 4, (5, 5), 3, groups=2)


def _baselines():
    layers = pytest.importorskip("spikeflow.layers")
    if not hasattr(layers, "ConvLSTM"):
        pytest.skip("spikeflow.layers has no recurrent baselines yet")
    return layers


@pytest.mark.parametrize("name,mode", [("RNN", "rnn"), ("LSTM", "lstm"), ("GRU", "gru")])
def test_spikeflow_recurrent_baselines(name, mode):
    layers = _baselines()
    m = getattr(layers, name)(2 * 3 * 3, 7, num_layers=2)
    T, B = 4, 3
    ops = synops(m, torch.randn(T, B, 2, 3, 3))
    assert ops == {"ac": 0.0, "mac": float(T * rnn_macs_per_step(18, 7, mode, 2))}


@pytest.mark.parametrize("name,mode,hidden_convs", [
    ("ConvRNN", "rnn", ("hidden_conv",)), ("ConvLSTM", "lstm", ("hidden_conv",)),
    ("ConvGRU", "gru", ("hidden_conv", "candidate_conv")),
])
def test_spikeflow_conv_recurrent_baselines(name, mode, hidden_convs):
    from spikeflow.metrics import conv_fanout_map

    layers = _baselines()
    m = getattr(layers, name)(2, 4, kernel_size=3, num_layers=2)
    T, B, H, W = 3, 2, 6, 5
    ops = synops(m, torch.randn(T, B, 2, H, W))
    # independent count: dense fan-out sums of every convolution the cells run per step
    per_step = 0
    for cell in m.cells:
        c_in = cell.input_conv.in_channels
        per_step += int(conv_fanout_map(cell.input_conv, (c_in, H, W)).sum())
        for conv_name in hidden_convs:
            conv = getattr(cell, conv_name)
            per_step += int(conv_fanout_map(conv, (4, H, W)).sum())
        per_step += {"rnn": 0, "lstm": 3, "gru": 3}[mode] * 4 * H * W
    assert ops["mac"] == T * per_step
    assert ops["mac"] == T * conv_rnn_macs_per_step(2, 4, (H, W), 3, mode, num_layers=2)


def test_recorder_names_outer_baseline():
    layers = _baselines()
    from spikeflow.metrics import SpikeRecorder

    net = nn.ModuleDict({"lstm": layers.LSTM(3, 5), "conv": layers.ConvGRU(2, 4)})
    with SpikeRecorder(net) as rec:
        net["lstm"](torch.randn(2, 1, 3))
        net["conv"](torch.randn(2, 1, 2, 4, 4))
    assert [(r.name, r.kind, r.neurons) for r in rec] == [("lstm", "recurrent", 5), ("conv", "recurrent", 64)]
