import pytest
import torch

from metrics_nets import Heaviside
from spikeflow.metrics import (
    LayerRecord, SpikeRecorder, activation_sparsity, activation_sparsity_by_layer, firing_rates,
    firing_rates_per_step, layer_summary, nasfr,
)


def _record(name, neurons, sums, samples, kind="spiking", nonzero=None):
    sums = torch.tensor(sums, dtype=torch.float64)
    return LayerRecord(
        name=name, kind=kind, neurons=neurons, sums=sums,
        nonzero=sums.clone() if nonzero is None else torch.tensor(nonzero, dtype=torch.float64),
        samples=torch.tensor(samples, dtype=torch.float64),
    )


def test_nasfr_on_constructed_recording_equals_formula():
    T, M = 4, 10                                  # steps, samples
    layers = {
        "conv": _record("conv", 100, [50, 80, 20, 10], [M] * T),
        "fc": _record("fc", 20, [30, 0, 5, 25], [M] * T),
        "out": _record("out", 5, [1, 2, 3, 4], [M] * T),
    }
    fr = {n: sum(r.sums.tolist()) / (T * M * r.neurons) for n, r in layers.items()}
    expected = sum(fr[n] * r.neurons for n, r in layers.items()) / sum(r.neurons for r in layers.values())
    assert firing_rates(layers) == pytest.approx(fr, abs=0, rel=1e-15)
    assert nasfr(layers) == pytest.approx(expected, rel=1e-15)
    total_spikes = sum(sum(r.sums.tolist()) for r in layers.values())
    assert nasfr(layers) == pytest.approx(total_spikes / (125 * T * M), rel=1e-15)
    per_step = firing_rates_per_step(layers)
    assert per_step["conv"] == pytest.approx([0.05, 0.08, 0.02, 0.01])


def test_nasfr_ignores_recurrent_layers_and_requires_activity():
    layers = {
        "rnn": _record("rnn", 10, [10.0, 10.0], [1, 1], kind="recurrent", nonzero=[10, 5]),
        "lif": _record("lif", 10, [2, 3], [1, 1]),
    }
    assert nasfr(layers) == pytest.approx(5 / 20)
    assert firing_rates(layers, kind="recurrent") == {"rnn": pytest.approx(15 / 20)}
    assert activation_sparsity(layers) == pytest.approx(1 - 20 / 40)
    assert activation_sparsity_by_layer(layers) == pytest.approx({"rnn": 0.25, "lif": 0.75})
    with pytest.raises(ValueError, match="no spiking layer"):
        nasfr({"rnn": layers["rnn"]})
    with pytest.raises(TypeError):
        nasfr([1, 2])


def test_nasfr_from_recorded_network_matches_spike_tensors():
    torch.manual_seed(1)
    a, b = Heaviside(0.5), Heaviside(1.0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), a, torch.nn.Linear(8, 3), b)
    outs = {}
    a.register_forward_hook(lambda m, i, o: outs.setdefault("a", []).append(o))
    b.register_forward_hook(lambda m, i, o: outs.setdefault("b", []).append(o))
    with SpikeRecorder(net) as rec:
        for _ in range(3):
            net(torch.randn(5, 4, 6))
    sa, sb = torch.cat(outs["a"], 1), torch.cat(outs["b"], 1)
    assert nasfr(rec) == pytest.approx(float(sa.sum() + sb.sum()) / ((8 + 3) * 5 * 12), rel=1e-12)
    rows = layer_summary(rec)
    assert [r["name"] for r in rows] == ["1", "3"]
    assert rows[0]["firing_rate_per_step"] == pytest.approx(sa.mean(dim=(1, 2)).tolist())
    assert rows[0]["samples"] == 12 and rows[0]["spikes"] == float(sa.sum())
