import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from metrics_nets import Heaviside, conv_snn, seq_to_batch
from spikeflow.metrics import (
    SynOpCounter, conv_dense_macs, conv_fanout_map, conv_taps, count_synops, is_spike_tensor, synops,
)


def test_linear_known_spike_tensor_exact_acs():
    lin = nn.Linear(5, 7)
    x = torch.zeros(3, 2, 5)                    # T=3, B=2
    x[0, 0, [0, 2]] = 1
    x[1, 1, [1, 2, 3, 4]] = 1
    x[2, 0, 4] = 1                              # 7 spikes in total
    assert synops(lin, x) == {"ac": 7 * 7 / 2, "mac": 0.0}


def test_linear_inside_seq_to_batch_and_sequential():
    net = nn.Sequential(seq_to_batch(nn.Linear(4, 3)), Heaviside(), seq_to_batch(nn.Linear(3, 2)))
    x = (torch.rand(6, 5, 4) > 0.5).float()
    counter = count_synops(net, x)
    with torch.no_grad():
        hidden = (net[0](x) >= 1).float()
    per_layer = counter.per_layer()
    assert per_layer["0.module"]["ac"] == float((x != 0).sum()) * 3 / 5
    assert per_layer["2.module"]["ac"] == float((hidden != 0).sum()) * 2 / 5
    assert counter.totals()["dense"] == 6 * (4 * 3 + 3 * 2)


def test_analog_input_counts_macs():
    lin = nn.Linear(3, 4)
    x = torch.tensor([[[0.5, 0.0, 2.0]]])
    assert synops(lin, x) == {"ac": 0.0, "mac": 8.0}


def _brute_force_fanout(conv: nn.Conv2d, shape):
    """Count, for every input pixel, the (out channel, out position, tap) triples that read it."""
    c_in, h, w = shape
    index = torch.arange(1, c_in * h * w + 1, dtype=torch.float64).reshape(1, c_in, h, w)
    if conv.padding_mode != "zeros":
        pad = conv._reversed_padding_repeated_twice
        index = F.pad(index, pad, mode=conv.padding_mode)
        ph = pw = 0
    else:
        ph, pw = conv.padding
        index = F.pad(index, (pw, pw, ph, ph))      # 0 = padding, read nothing
    kh, kw = conv.kernel_size
    sh, sw = conv.stride
    dh, dw = conv.dilation
    out = conv(torch.zeros(1, c_in, h, w)).shape
    counts = torch.zeros(c_in * h * w + 1, dtype=torch.float64)
    per_group_in = c_in // conv.groups
    per_group_out = conv.out_channels // conv.groups
    for oc in range(conv.out_channels):
        g = oc // per_group_out
        for ci in range(g * per_group_in, (g + 1) * per_group_in):
            for oy, ox, ky, kx in itertools.product(range(out[2]), range(out[3]), range(kh), range(kw)):
                idx = int(index[0, ci, oy * sh + ky * dh, ox * sw + kx * dw])
                counts[idx] += 1
    return counts[1:].reshape(c_in, h, w)


@pytest.mark.parametrize("kwargs,shape", [
    (dict(kernel_size=3, padding=1), (2, 5, 6)),
    (dict(kernel_size=3, stride=2, padding=1), (2, 7, 6)),
    (dict(kernel_size=(3, 2), stride=(2, 1), padding=(2, 0), dilation=(1, 2)), (2, 6, 7)),
    (dict(kernel_size=3, padding=1, groups=2), (4, 5, 5)),
    (dict(kernel_size=3, padding=1, padding_mode="reflect"), (1, 5, 5)),
    (dict(kernel_size=5, padding=2), (1, 3, 3)),                 # kernel wider than the input
])
def test_conv_fanout_exact_at_borders(kwargs, shape):
    out_ch = 4 if kwargs.get("groups") else 3
    conv = nn.Conv2d(shape[0], out_ch, **kwargs)
    fan = conv_fanout_map(conv, shape)
    assert torch.equal(fan, _brute_force_fanout(conv, shape))


def test_conv_synops_match_binary_layer_reference():
    conv = nn.Conv2d(2, 5, 3, stride=2, padding=1)
    x = (torch.rand(3, 4, 2, 9, 8) > 0.7).float()              # [T, B, C, H, W]
    net = seq_to_batch(conv)
    ops = synops(net, x)
    # reference (NeuroBench style): ones-weight conv on the binary input counts every product
    ref = F.conv2d(x.reshape(12, 2, 9, 8), torch.ones_like(conv.weight), stride=2, padding=1).sum()
    assert ops["ac"] == float(ref) / 4
    assert ops["mac"] == 0.0


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_dense_closed_form_equals_fanout_sum(dims):
    conv_cls = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
    sizes = (7, 6, 5)[:dims]
    for k, s, p, d in [(3, 1, 1, 1), (3, 2, 1, 1), (2, 2, 0, 1), (3, 1, 2, 2), (5, 3, 4, 1)]:
        conv = conv_cls(2, 3, k, stride=s, padding=p, dilation=d)
        fan = conv_fanout_map(conv, (2, *sizes))
        assert conv_dense_macs(2, 3, sizes, k, s, p, d) == int(fan.sum()), (k, s, p, d)


def test_conv_taps_without_padding_is_textbook():
    assert conv_taps(10, 3) == 3 * 8
    assert conv_taps(10, 3, stride=2) == 3 * 4
    assert conv_dense_macs(3, 8, (32, 32), 3, padding=1) == 8 * 3 * (32 * 3 - 2) ** 2


def test_mixed_network_direct_encoding_first_layer_is_mac():
    net = conv_snn(channels=4, classes=3).eval()
    x = torch.rand(5, 2, 1, 8, 8)
    counter = count_synops(net, x)
    layers = counter.per_layer()
    first = conv_fanout_map(nn.Conv2d(1, 4, 3, padding=1), (1, 8, 8))
    assert layers["0.module"]["mac"] == pytest.approx(float((x != 0).sum(dim=(0, 1)).double().mul(first[0]).sum()) / 2)
    assert layers["0.module"]["ac"] == 0
    assert layers["2.module"]["mac"] == 0 and layers["5.module"]["mac"] == 0
    totals = counter.totals()
    assert totals["ac"] == layers["2.module"]["ac"] + layers["5.module"]["ac"]


def test_counter_hooks_removed_and_samples_counted():
    net = conv_snn()
    with SynOpCounter(net) as counter:
        net(torch.rand(2, 3, 1, 8, 8))
        net(torch.rand(2, 1, 1, 8, 8))
    assert counter.samples == 4
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in net.modules()) == 0
    with pytest.raises(ValueError, match="no forward"):
        SynOpCounter(net).totals()


def test_is_spike_tensor():
    assert is_spike_tensor(torch.tensor([0.0, 1.0, -1.0]))
    assert is_spike_tensor(torch.tensor([True, False]))
    assert not is_spike_tensor(torch.tensor([0.0, 0.5]))
    assert not is_spike_tensor(torch.tensor([2.0]))


class LastStep(nn.Linear):
    """Applies the Linear to the last step only (like a mainstream RNN read-out)."""

    def forward(self, x):
        return super().forward(x[-1]).expand(x.shape[0], *x.shape[1:-1], self.out_features)


def test_counts_the_calls_a_layer_really_makes():
    layer = LastStep(4, 3)
    x = torch.rand(5, 2, 4) + 0.1                               # analog, all non-zero
    assert synops(layer, x) == {"ac": 0.0, "mac": 4 * 3}       # once per sample, not T times


def test_nested_connection_modules_count_once():
    class Outer(nn.Linear):
        def __init__(self):
            super().__init__(3, 3)
            self.inner = nn.Linear(3, 2)

        def forward(self, x):
            return self.inner(super().forward(x))

    x = torch.ones(2, 1, 3)
    counter = count_synops(Outer(), x)
    assert counter.totals()["ac"] == 2 * 3 * 3                  # outer call on spikes
    assert counter.totals()["mac"] == 2 * 3 * 2                 # inner call on analog values
    assert list(counter.per_layer()) == [""]


def test_function_mode_released_after_errors():
    net = nn.Sequential(nn.Linear(3, 2))
    with pytest.raises(RuntimeError):
        count_synops(net, torch.ones(2, 1, 4))
    assert torch._C._len_torch_function_stack() == 0
    assert synops(net, torch.ones(2, 1, 3))["ac"] == 2 * 3 * 2


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
def test_functional_fanout_matches_module_and_same_padding():
    from spikeflow.metrics import fanout_map

    conv = nn.Conv2d(2, 3, 3, stride=2, padding=1, dilation=1)
    assert torch.equal(fanout_map(2, conv.weight.shape, (2, 7, 6), 2, 1, 1, 1),
                       conv_fanout_map(conv, (2, 7, 6)))
    same = nn.Conv1d(1, 2, 4, padding="same")
    assert torch.equal(fanout_map(1, same.weight.shape, (1, 9), 1, "same", 1, 1),
                       conv_fanout_map(same, (1, 9)))
    x = (torch.rand(3, 2, 1, 9) > 0.5).float()
    ref = F.conv1d(x.flatten(0, 1), torch.ones_like(same.weight), padding="same").sum() / 2
    assert synops(seq_to_batch(same), x)["ac"] == float(ref)
