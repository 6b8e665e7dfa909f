import pytest
import torch
from torch import nn

from metrics_nets import Heaviside, conv_snn
from spikeflow.metrics import SpikeRecorder, find_layers, firing_rates, nasfr


def _hook_count(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_finds_neurons_in_order_and_leaves_model_untouched():
    net = conv_snn()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    names = [name for name, _, kind in find_layers(net)]
    assert names == ["1", "3", "6"]
    with SpikeRecorder(net) as rec:
        assert _hook_count(net) == 3
        net(torch.rand(4, 2, 1, 8, 8))
    assert _hook_count(net) == 0
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert [r.neurons for r in rec] == [4 * 8 * 8, 4 * 4 * 4, 3]
    assert all(r.T == 4 for r in rec)


def test_hooks_removed_on_error():
    net = nn.Sequential(nn.Linear(3, 2), Heaviside())
    with pytest.raises(RuntimeError):
        with SpikeRecorder(net):
            net(torch.ones(2, 1, 5))  # wrong feature size
    assert _hook_count(net) == 0


def test_known_counts_and_accumulation_across_batches():
    neuron = Heaviside(1.0)
    x1 = torch.tensor([[[1.0, 0.0, 2.0]], [[0.0, 0.0, 0.0]]])          # T=2, B=1, N=3
    x2 = torch.tensor([[[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]],
                       [[0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]])              # T=2, B=2
    with SpikeRecorder(neuron) as rec:
        neuron(x1)
        neuron(x2)
    r = rec.layers[""]
    assert r.sums.tolist() == [2 + 4, 0 + 1]
    assert r.nonzero.tolist() == [6, 1]
    assert r.samples.tolist() == [3, 3]
    assert r.neurons == 3
    assert firing_rates(rec)[""] == pytest.approx(7 / (2 * 3 * 3))
    assert nasfr(rec) == pytest.approx(7 / 18)


def test_variable_T_pads_per_step_counts():
    neuron = Heaviside()
    with SpikeRecorder(neuron) as rec:
        neuron(torch.ones(2, 1, 4))
        neuron(torch.ones(3, 2, 4))
    r = rec.layers[""]
    assert r.samples.tolist() == [3, 3, 2]
    assert r.sums.tolist() == [12, 12, 8]
    assert firing_rates(rec)[""] == 1.0


def test_keep_spikes_and_inputs():
    net = nn.Sequential(nn.Linear(3, 4), Heaviside(0.0))
    xs = [torch.randn(3, 2, 3), torch.randn(3, 5, 3)]
    with SpikeRecorder(net, keep_spikes=True, keep_inputs=True) as rec:
        outs = [net(x) for x in xs]
    r = rec.layers["1"]
    assert torch.equal(r.stacked("spikes"), torch.cat(outs, dim=1))
    assert torch.allclose(r.stacked("inputs"), torch.cat([net[0](x) for x in xs], dim=1))


def test_keep_respects_max_bytes():
    neuron = Heaviside()
    with pytest.warns(UserWarning, match="max_bytes"):
        with SpikeRecorder(neuron, keep_spikes=True, max_bytes=2 * (2 * 4 * 10 * 4)) as rec:
            for _ in range(3):
                neuron(torch.ones(2, 4, 10))
    r = rec.layers[""]
    assert len(r.spikes) == 2 and rec.truncated
    assert r.samples.tolist() == [12, 12]          # counts stay complete


def test_stacked_without_keep_raises_clear_error():
    neuron = Heaviside()
    with SpikeRecorder(neuron) as rec:
        neuron(torch.ones(2, 1, 3))
    with pytest.raises(ValueError, match="keep_spikes=True"):
        rec.layers[""].stacked()


def test_reset_and_bad_arguments():
    neuron = Heaviside()
    with SpikeRecorder(neuron) as rec:
        neuron(torch.ones(2, 1, 3))
        rec.reset()
        neuron(torch.ones(1, 1, 3))
    assert rec.layers[""].samples.tolist() == [1]
    with pytest.raises(TypeError, match="nn.Module"):
        SpikeRecorder("model")
    with pytest.raises(ValueError, match="max_bytes"):
        SpikeRecorder(neuron, max_bytes=-1)


def test_recurrent_hidden_activations_recorded_not_in_nasfr():
    lstm = nn.LSTM(3, 5, num_layers=2)
    net = nn.ModuleDict({"rnn": lstm, "spk": Heaviside()})
    x = torch.randn(4, 2, 3)
    with SpikeRecorder(net) as rec:
        h, _ = net["rnn"](x)
        net["spk"](x)
    assert rec.layers["rnn"].kind == "recurrent"
    assert rec.layers["rnn"].neurons == 5
    assert rec.layers["rnn"].nonzero.sum() == int((h != 0).sum())
    assert nasfr(rec) == pytest.approx(float((x >= 1).float().mean()))
    assert set(firing_rates(rec, kind="recurrent")) == {"rnn"}


def test_batch_first_rnn_recorded_time_first():
    gru = nn.GRU(3, 4, batch_first=True)
    with SpikeRecorder(gru) as rec:
        gru(torch.randn(2, 7, 3))                # B=2, T=7
    assert rec.layers[""].T == 7
    assert rec.layers[""].samples.tolist() == [2] * 7
