import json

import pytest
import torch
from torch import nn

from metrics_nets import Heaviside, conv_snn
from spikeflow.metrics import (
    evaluate_metrics, nasfr, read_metrics_json, SpikeRecorder, synops, write_metrics_json,
)


def _loader(n_batches=3, batch=4, T=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(T, batch, 1, 8, 8, generator=g), torch.randint(0, 3, (batch,), generator=g))
            for _ in range(n_batches)]


def test_evaluate_metrics_matches_individual_metrics(tmp_path):
    net = conv_snn()
    loader = _loader()
    result = evaluate_metrics(net, loader, "cpu", latency_repeats=1)
    with torch.no_grad(), SpikeRecorder(net) as rec:
        outs = [net(x) for x, _ in loader]
    correct = sum(int((o.mean(0).argmax(1) == y).sum()) for o, (_, y) in zip(outs, loader))
    assert result["accuracy"] == correct / 12 and result["samples"] == 12
    assert result["nasfr"] == pytest.approx(nasfr(rec), rel=1e-12)
    ops = [synops(net, x) for x, _ in loader]
    assert result["synops"]["ac"] == pytest.approx(sum(o["ac"] for o in ops) / 3)
    assert result["synops"]["mac"] == pytest.approx(sum(o["mac"] for o in ops) / 3)
    assert result["energy_pj"] == pytest.approx(0.9 * result["synops"]["ac"] + 4.6 * result["synops"]["mac"])
    assert [r["name"] for r in result["layers"]] == ["1", "3", "6"]
    assert result["params"] == sum(p.numel() for p in net.parameters())
    assert result["latency"]["sample"]["batch_size"] == 1
    assert result["latency"]["batch"]["batch_size"] == 4
    assert result["T"] == 3
    path = write_metrics_json(tmp_path / "m" / "metrics_test.json", result)
    assert read_metrics_json(path)["nasfr"] == pytest.approx(result["nasfr"])
    assert not list(path.parent.glob(".*"))             # no temp file left behind


def test_one_hot_labels_and_max_batches_and_training_mode_restored():
    net = conv_snn().train()
    loader = [(x, torch.nn.functional.one_hot(y, 3).float()) for x, y in _loader(4)]
    result = evaluate_metrics(net, loader, max_batches=2, latency_repeats=0)
    assert result["samples"] == 8 and "latency" not in result
    assert net.training


def test_neuron_tau_reported():
    class Tau(Heaviside):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.tensor(0.0))

        @property
        def tau(self):
            return 1 / torch.sigmoid(self.w)

    net = nn.Sequential(nn.Flatten(2), nn.Linear(64, 3), Tau())
    result = evaluate_metrics(net, _loader(1), latency_repeats=0)
    assert result["neuron_tau"] == {"2": pytest.approx(2.0)}


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="no batch"):
        evaluate_metrics(conv_snn(), [], latency_repeats=0)
    with pytest.raises(FileNotFoundError, match="spikeflow test"):
        read_metrics_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        read_metrics_json(bad)


def test_json_is_strict(tmp_path):
    path = write_metrics_json(tmp_path / "x.json", {"a": float("nan"), "t": torch.tensor([1, 2])})
    assert json.loads(path.read_text()) == {"a": None, "t": [1, 2]}


def test_accuracy_modes():
    net = nn.Sequential(nn.Flatten(2), nn.Linear(64, 3))
    loader = _loader(2)
    with torch.no_grad():
        outs = [net(x) for x, _ in loader]
    last = sum(int((o[-1].argmax(1) == y).sum()) for o, (_, y) in zip(outs, loader)) / 8
    assert evaluate_metrics(net, loader, accuracy="last", latency_repeats=0)["accuracy"] == last
    none = evaluate_metrics(net, loader, accuracy="none", latency_repeats=0)
    assert none["accuracy"] is None and none["samples"] == 8 and none["nasfr"] is None
    with pytest.raises(ValueError, match="accuracy"):
        evaluate_metrics(net, loader, accuracy="max")
