"""PLIF neuromorphic nets (seeds_spec R2.2): layer sizes, output shape, neuron options."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeflow.models import create_model
from spikeflow.models.plif_net import PLIFNet
from spikeflow.neurons import LIF, PLIF


def linears(net: nn.Module) -> list[tuple[int, int]]:
    return [(m.in_features, m.out_features) for m in net.modules() if isinstance(m, nn.Linear)]


@pytest.mark.parametrize("name, convs, head", [
    ("plif_nmnist", 2, [(8192, 2048), (2048, 100)]),
    ("plif_cifar10dvs", 4, [(8192, 2048), (2048, 100)]),
    ("plif_dvs_gesture", 5, [(2048, 512), (512, 110)]),
])
def test_published_layer_sizes(name, convs, head):
    net = create_model(name)
    conv = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(conv) == convs and all(c.bias is None and c.kernel_size == (3, 3) for c in conv)
    assert conv[0].in_channels == 2 and {c.out_channels for c in conv} == {128}
    assert linears(net) == head
    assert all(m.bias is None for m in net.modules() if isinstance(m, nn.Linear))
    assert sum(isinstance(m, PLIF) for m in net.modules()) == convs + 2


def test_forward_shape_voting_and_gradients():
    net = PLIFNet(input_size=16, channels=8, number_layer=2, num_classes=4, dropout=0.0)
    x = (torch.rand(6, 3, 2, 16, 16) < 0.3).float()
    out = net(x)
    assert out.shape == (6, 3, 4)
    # voting: each class score is the mean of 10 spikes -> multiples of 0.1 in [0, 1]
    assert torch.allclose(out * 10, (out * 10).round(), atol=1e-5) and out.max() <= 1
    out.mean().backward()
    taus = [m.w.grad for m in net.modules() if isinstance(m, PLIF)]
    assert all(g is not None for g in taus)


def test_options_and_errors():
    net = PLIFNet(input_size=16, channels=8, number_layer=2, neuron="lif", init_tau=16.0, pool="avg")
    lifs = [m for m in net.modules() if isinstance(m, LIF)]
    assert len(lifs) == 4 and all(m.tau == 16.0 for m in lifs)
    assert any(isinstance(m, nn.AvgPool2d) for m in net.modules())
    with pytest.raises(ValueError, match="neuron must be one of"):
        PLIFNet(neuron="relu")
    with pytest.raises(ValueError, match="pool must be one of"):
        PLIFNet(pool="min")
    with pytest.raises(ValueError, match="do not fit"):
        PLIFNet(input_size=8, number_layer=4)
    with pytest.raises(ValueError, match=r"expects frames \[T, B, 2, 16, 16\]"):
        net(torch.zeros(2, 1, 2, 8, 8))
