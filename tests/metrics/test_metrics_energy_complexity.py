import pytest
import torch
from torch import nn

from spikeflow.metrics import (
    PRESETS, EnergyModel, connection_sparsity, count_parameters, energy_pj, measure_latency,
    memory_footprint,
)


def test_energy_known_values():
    assert energy_pj({"ac": 1000, "mac": 10}) == pytest.approx(946.0)
    assert energy_pj({"ac": 1, "mac": 1}, e_ac=1.0, e_mac=2.0) == 3.0
    assert EnergyModel().energy_pj({"mac": 2}) == pytest.approx(9.2)
    assert PRESETS["fp16"].energy_pj({"ac": 10, "mac": 10}) == pytest.approx(19.0)
    with pytest.raises(ValueError, match="e_mac"):
        EnergyModel(0.9, -1.0)


def test_parameters_and_footprint():
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.Linear(4, 5))
    net[2].weight.requires_grad_(False)
    n = (2 * 3 * 9 + 3) + (3 + 3) + (4 * 5 + 5)
    assert count_parameters(net) == n
    assert count_parameters(net, trainable_only=True) == n - 20
    fp = memory_footprint(net)
    assert fp["params"] == 4 * n
    assert fp["buffers"] == 4 * 3 + 4 * 3 + 8          # running mean/var float32, num_batches int64
    assert fp["total"] == fp["params"] + fp["buffers"]


def test_connection_sparsity():
    lin = nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[0, 0] = 1.0
    assert connection_sparsity(lin) == 7 / 8
    assert connection_sparsity(nn.ReLU()) is None


def test_measure_latency_with_fake_clock():
    ticks = iter(range(100))
    result = measure_latency(lambda x: x, torch.zeros(4, 8, 3), warmup=1, repeats=3,
                             clock=lambda: float(next(ticks)))
    assert result["batch_size"] == 8
    assert result["latency_ms"] == 1000.0
    assert result["throughput_samples_per_s"] == 8.0
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(lambda x: x, torch.zeros(1, 1), repeats=0)
