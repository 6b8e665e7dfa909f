"""Spikes saved for backward as uint8 (spikeflow.functional.saved_spikes) through SeqToBatch."""
from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from torch import nn

import spikeflow as sf
import spikeflow.functional.saved_spikes as ss
from spikeflow.functional.saved_spikes import compact_saved, is_marked, mark_spikes


@pytest.fixture
def packed(monkeypatch):
    """Record what the compacting pack hook returns."""
    seen: list = []
    make = ss._hooks

    def recording(x, outer=None):
        pack, unpack = make(x, outer)

        def pack_and_record(t):
            p = pack(t)
            seen.append(p)
            return p
        return pack_and_record, unpack

    monkeypatch.setattr(ss, "_hooks", recording)
    return seen


def _u8(seen):
    return [p.payload for p in seen if isinstance(p, ss._Compact)]


def _fc(dtype=torch.float64):
    torch.manual_seed(0)
    return nn.Sequential(sf.layers.SeqToBatch(nn.Linear(20, 32), compact_spikes=True), sf.neurons.LIF(),
                         sf.layers.SeqToBatch(nn.Linear(32, 5), compact_spikes=True), sf.neurons.LIF(tau=1.5)).to(dtype)


@contextmanager
def unmarked():
    """Built-in LIF-family neurons stop marking their spikes (the reference behaviour)."""
    family = sf.neurons.lif.LIFFamily
    family.binary_spikes = False
    try:
        yield
    finally:
        family.binary_spikes = True


def _grads(net, x):
    net.zero_grad()
    xr = x.clone().requires_grad_()
    net(xr).sum().backward()
    return [xr.grad] + [p.grad.clone() for p in net.parameters()]


def test_neuron_outputs_are_marked_until_modified_in_place():
    s = sf.neurons.LIF()(torch.rand(4, 2, 3) * 3)
    assert is_marked(s)
    s.mul_(1.0)
    assert not is_marked(s)
    assert not is_marked(torch.zeros(3))


def test_fc_gradients_identical_and_spikes_saved_as_uint8(packed):
    net, x = _fc(), torch.rand(6, 4, 20, dtype=torch.float64) * 2
    with_compaction = _grads(net, x)
    u8 = _u8(packed)
    assert len(u8) == 1 and u8[0].dtype == torch.uint8 and u8[0].shape == (24, 32)
    packed.clear()
    with unmarked():  # the same net without marks: nothing compacted
        plain = _grads(net, x)
    assert _u8(packed) == []
    for a, b in zip(with_compaction, plain):
        assert torch.equal(a, b)


def test_conv_and_max_pool_inputs_compacted_with_identical_gradients(packed):
    torch.manual_seed(1)
    net = nn.Sequential(sf.layers.SeqToBatch(nn.Conv2d(2, 4, 3, padding=1), compact_spikes=True), sf.neurons.PLIF(),
                        sf.layers.SeqToBatch(nn.MaxPool2d(2), nn.Conv2d(4, 4, 3), compact_spikes=True), sf.neurons.IF(),
                        sf.layers.SeqToBatch(nn.Flatten(), nn.Linear(4 * 2 * 2, 3), compact_spikes=True)).double()
    x = torch.rand(3, 2, 2, 8, 8, dtype=torch.float64) * 2
    got = _grads(net, x)
    # max-pool input and the flattened (view) input of the Linear
    assert [t.shape for t in _u8(packed)] == [(6, 4, 8, 8), (6, 16)]
    with unmarked():
        want = _grads(net, x)
    for a, b in zip(got, want):
        assert torch.equal(a, b)


def test_outer_hooks_are_chained_and_see_the_uint8_form(packed):
    net, x = _fc(), torch.rand(6, 4, 20, dtype=torch.float64) * 2
    want = _grads(net, x)
    outer_seen, unpacked = [], []

    def outer_pack(t):
        outer_seen.append(t.dtype)
        return ("outer", t)

    def outer_unpack(p):
        unpacked.append(p[1].dtype)
        return p[1]

    with torch.autograd.graph.saved_tensors_hooks(outer_pack, outer_unpack):
        got = _grads(net, x)
    assert torch.uint8 in outer_seen and torch.uint8 in unpacked
    for a, b in zip(got, want):
        assert torch.equal(a, b)


def test_pack_saved_keeps_control_and_no_grad_saves_nothing(packed):
    from spikeflow.train.memory import packed_saved_tensors

    net, x = _fc(), torch.rand(6, 4, 20, dtype=torch.float64) * 2
    with packed_saved_tensors():
        net(x).sum().backward()
    assert packed == []  # our hooks were never installed: pack_saved bit-packs the spikes itself
    with torch.no_grad():
        net(x)
    assert packed == []
    s = mark_spikes((torch.rand(5, 7) > 0.5).double())
    assert isinstance(compact_saved(s.clone()), type(compact_saved(torch.zeros(1))))


def test_float32_training_step_matches_without_marks():
    net, x = _fc(torch.float32), (torch.rand(10, 8, 20) < 0.3).float()
    got = _grads(net, x)
    with unmarked():
        want = _grads(net, x)
    for a, b in zip(got, want):
        assert torch.equal(a, b)


def test_off_by_default(packed):
    net = nn.Sequential(sf.neurons.LIF(), sf.layers.SeqToBatch(nn.Linear(20, 5))).double()
    net(torch.rand(4, 3, 20, dtype=torch.float64) * 3).sum().backward()
    assert packed == []
