"""spikeflow.summary: parameter totals, shapes, operation counts and rates vs the metrics functions."""
from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import spikeflow as sf
from spikeflow.layers import LSTM, DualExpSynapse, SeqToBatch
from spikeflow.metrics import (SpikeRecorder, count_synops, energy_pj, firing_rates, nasfr,
                               synops)
from spikeflow.metrics.model_summary import ModelSummary, summary, summary_layers
from spikeflow.neurons import LIF, PLIF


def snn() -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(
        SeqToBatch(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4)),   # analog input: MACs
        PLIF(init_tau=3.0, v_threshold=0.2),
        SeqToBatch(nn.MaxPool2d(2)),
        SeqToBatch(nn.Flatten()),
        SeqToBatch(nn.Linear(64, 10)),                                  # spike input: ACs
        LIF(tau=2.0, v_threshold=0.5),
        DualExpSynapse((10,), tau_m=4.0, tau_s=1.0),
    )


def events(T: int = 6, B: int = 3) -> torch.Tensor:
    return (torch.rand(T, B, 2, 8, 8, generator=torch.Generator().manual_seed(0)) * 3).floor()


def test_parameters_exact_and_rows_partition_them():
    net = snn()
    net[4].module.weight.requires_grad_(False)
    s = summary(net, events())
    assert s.params == sum(p.numel() for p in net.parameters())
    assert s.trainable == sum(p.numel() for p in net.parameters() if p.requires_grad)
    assert sum(r.params for r in s.rows) == s.params
    assert sum(r.trainable for r in s.rows) == s.trainable
    assert s.params - s.trainable == 640
    assert [r.name for r in s.rows] == [str(i) for i in range(7)]
    assert s.rows[1].params == 1 and s.rows[1].neuron == "PLIF tau=3"
    assert s.rows[6].neuron == "DualExpSynapse tau_m=4 tau_s=1"
    assert s.rows[5].neuron == "LIF tau=2"


def test_shapes_match_a_forward_pass():
    net = snn().eval()
    x = events()
    s = summary(net, x)
    h = x
    with torch.no_grad():
        for row, module in zip(s.rows, net):
            h = module(h)
            assert row.shape == tuple(h.shape) and row.calls == 1
            assert row.act_bytes == h.numel() * h.element_size() / x.shape[1]
    assert s.input_shape == tuple(x.shape) and (s.T, s.batch) == (6, 3)
    assert s.act_bytes == sum(r.act_bytes for r in s.rows)


def test_operations_rates_and_energy_equal_the_metrics_functions():
    net = snn().eval()
    x = events()
    s = summary(net, x)
    ref = synops(net, x)
    assert (s.ac, s.mac) == (ref["ac"], ref["mac"])
    assert s.mac > 0 and s.ac > 0
    per = count_synops(net, x).per_layer()
    assert s.rows[0].mac == per["0.module.0"]["mac"] and s.rows[0].ac == 0
    assert s.rows[4].ac == per["4.module"]["ac"] and s.rows[4].mac == 0
    assert sum(r.ac for r in s.rows) == pytest.approx(s.ac, rel=1e-12)
    assert s.energy_pj == energy_pj(ref)
    with torch.no_grad(), SpikeRecorder(net) as rec:
        net(x)
    rates = firing_rates(rec)
    assert s.rows[1].rate == rates["1"] and s.rows[5].rate == rates["5"]
    assert s.rows[0].rate is None and s.nasfr == nasfr(rec)


def test_rnn_baseline_rows_count_dense_macs():
    torch.manual_seed(0)
    net = nn.Sequential(SeqToBatch(nn.Flatten()), LSTM(12, 8), nn.Linear(8, 3))
    x = torch.randn(5, 2, 3, 4)
    s = summary(net, x)
    assert s.params == sum(p.numel() for p in net.parameters())
    assert [r.type for r in s.rows] == ["SeqToBatch(Flatten)", "LSTM", "Linear"]
    assert s.rows[1].shape == (5, 2, 8) and s.rows[2].shape == (5, 2, 3)
    # LSTM: 4 gates * H * (I + H) + 3 H element-wise products per step
    assert s.rows[1].mac == 5 * (4 * 8 * (12 + 8) + 3 * 8)
    assert s.rows[2].mac == 5 * 8 * 3 == synops(net, x)["mac"] - s.rows[1].mac
    assert s.rows[1].rate_kind == "recurrent" and s.nasfr is None and s.spiking_layers == 0


def test_registered_models_snn_and_lstm():
    for name in ("he2020_snn_mlp", "he2020_lstm_mlp"):
        model = sf.models.create_model(name, in_features=20, hidden=(16,))
        s = sf.summary(model, (20,), T=4, batch_size=2, name=name)
        assert s.params == sum(p.numel() for p in model.parameters())
        assert s.rows[-1].shape == tuple(model(torch.rand(4, 2, 20)).shape) == (4, 2, 11)
        assert s.line().startswith(f"model {name}: ")


def test_shape_input_is_seeded_noise_and_batch_first_is_reported():
    net = snn()
    a, b = summary(net, (2, 8, 8), T=4, seed=3), summary(net, (2, 8, 8), T=4, seed=3)
    assert a.to_dict() == b.to_dict() and a.input_shape == (4, 1, 2, 8, 8)
    with pytest.raises(ValueError, match="batch-first"):
        summary(net, torch.zeros(3, 6, 2, 8, 8), T=6)
    with pytest.raises(ValueError, match="needs T"):
        summary(net, (2, 8, 8))


def test_model_mode_and_persistent_state_are_restored():
    net = nn.Sequential(SeqToBatch(nn.Linear(3, 4)), LIF(persistent=True))
    net.train()
    net(torch.ones(2, 1, 3))
    before = net[1]._stored_state.v.clone()
    summary(net, torch.full((5, 1, 3), 2.0))
    assert net.training and torch.equal(net[1]._stored_state.v, before)


def test_block_with_own_parameters_is_one_row_and_root_params_get_a_row():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))
            self.fc = nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(x) * self.scale

    class Root(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(3))
            self.block = Block()

        def forward(self, x):
            return self.block(x) + self.bias

    net = Root()
    assert [(n, a) for n, _, a in summary_layers(net)] == [("", False), ("block", True)]
    s = summary(net, (3,), T=2)
    assert [r.params for r in s.rows] == [3, 13] and s.params == 16


def test_text_markdown_and_json_round_trip():
    s = summary(snn(), events(), name="tiny")
    text = s.to_text()
    lines = text.splitlines()
    assert lines[0] == "tiny: input [6, 3, 2, 8, 8]"
    header = lines[2].split()
    assert header[:3] == ["layer", "type", "output"]
    row = next(line for line in lines if line.startswith("1 "))
    assert "PLIF" in row and "[6, 3, 4, 8, 8]" in row
    assert any(line.startswith("total") and f"{s.params:,}" in line for line in lines)
    md = s.to_markdown()
    table = [line for line in md.splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(s.rows) + 1
    assert table[1] == "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |"
    assert table[3].startswith("| 1 | PLIF | [6, 3, 4, 8, 8] | 1 | 1 | PLIF tau=3 | ")
    assert md.count("\n- ") == 3
    back = ModelSummary.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s and back.to_markdown() == md
    with pytest.raises(ValueError, match="model summary"):
        ModelSummary.from_dict({"rows": []})
