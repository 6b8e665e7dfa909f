"""The metrics on spikeflow's own neurons and layers (skipped until those exist)."""
import pytest
import torch
from torch import nn

from spikeflow.metrics import SpikeRecorder, count_synops, evaluate_metrics, nasfr, neuron_taus

neurons = pytest.importorskip("spikeflow.neurons")
layers = pytest.importorskip("spikeflow.layers")
if not hasattr(neurons, "PLIF") or not hasattr(layers, "SeqToBatch"):
    pytest.skip("spikeflow neurons/layers not available yet", allow_module_level=True)


def _net():
    torch.manual_seed(0)
    return nn.Sequential(
        layers.SeqToBatch(nn.Conv2d(1, 4, 3, padding=1)), neurons.PLIF(init_tau=3.0),
        layers.SeqToBatch(nn.MaxPool2d(2)), layers.SeqToBatch(nn.Flatten()),
        layers.SeqToBatch(nn.Linear(4 * 4 * 4, 5)), neurons.LIF(),
    ).eval()


def test_recorder_and_ops_on_lif_plif():
    net = _net()
    x = torch.rand(6, 3, 1, 8, 8) * 2
    spikes = []
    hooks = [m.register_forward_hook(lambda m, i, o: spikes.append(o)) for m in (net[1], net[5])]
    with torch.no_grad(), SpikeRecorder(net) as rec:
        net(x)
    for h in hooks:
        h.remove()
    total = float(spikes[0].sum() + spikes[1].sum())
    assert nasfr(rec) == pytest.approx(total / ((4 * 8 * 8 + 5) * 6 * 3), rel=1e-12)
    ops = count_synops(net, x).per_layer()
    assert ops["0.module"]["mac"] > 0 and ops["0.module"]["ac"] == 0        # direct encoding
    pooled = (torch.nn.functional.max_pool2d(spikes[0].flatten(0, 1), 2) != 0).sum()
    assert ops["4.module"]["ac"] == float(pooled) * 5 / 3                    # spikes x fan-out
    assert neuron_taus(net) == pytest.approx({"1": 3.0, "5": 2.0})


def test_evaluate_metrics_reports_plif_tau():
    net = _net()
    loader = [(torch.rand(4, 2, 1, 8, 8), torch.tensor([0, 1]))]
    result = evaluate_metrics(net, loader, latency_repeats=0)
    assert result["neuron_tau"]["1"] == pytest.approx(3.0)
    assert [r["name"] for r in result["layers"]] == ["1", "5"]


def _zoo(name, **kw):
    models = pytest.importorskip("spikeflow.models")
    if name not in models.list_models():
        pytest.skip(f"model {name} not registered")
    return models.create_model(name, **kw).eval()


@pytest.mark.parametrize("kind,mode", [("rnn", "rnn"), ("lstm", "lstm"), ("gru", "gru")])
@pytest.mark.parametrize("readout", ["rate", "last"])
def test_he2020_recurrent_mlp_exact_macs(kind, mode, readout):
    from spikeflow.metrics import rnn_macs_per_step, synops

    net = _zoo(f"he2020_{kind}_mlp", in_features=2 * 6 * 6, hidden=(16, 12), readout=readout)
    T = 5
    ops = synops(net, torch.rand(T, 3, 2, 6, 6))
    per_step = rnn_macs_per_step(72, 16, mode) + rnn_macs_per_step(16, 12, mode)
    readout_macs = 12 * 11 * (T if readout == "rate" else 1)
    assert ops == {"ac": 0.0, "mac": float(T * per_step + readout_macs)}


def test_he2020_snn_vs_convlstm_cnn():
    from spikeflow.metrics import conv_rnn_macs_per_step, count_synops, rnn_macs_per_step

    T, x = 3, (torch.rand(3, 2, 2, 8, 8) > 0.7).float()
    lstm = _zoo("he2020_convlstm_cnn", input_size=8, channels=(4, 8, 8), fc=16, readout="last")
    expected = T * (conv_rnn_macs_per_step(2, 4, (8, 8), 3, "lstm")
                    + conv_rnn_macs_per_step(4, 8, (8, 8), 3, "lstm")
                    + conv_rnn_macs_per_step(8, 8, (4, 4), 3, "lstm")
                    + rnn_macs_per_step(8 * 2 * 2, 16, "lstm", num_layers=2)) + 16 * 11
    assert count_synops(lstm, x).totals()["mac"] == expected
    snn = _zoo("he2020_snn_cnn", input_size=8, channels=(4, 8, 8), fc=16)
    totals = count_synops(snn, x).totals()
    assert totals["mac"] == 0 and 0 < totals["ac"] <= totals["dense"]   # binary frames: all ACs
