"""Lossless packing of tensors saved for backward: exact round trips, rejections, identical grads."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeflow.layers import SeqToBatch
from spikeflow.neurons import LIF
from spikeflow.train.memory import (narrow_int64, pack_binary, packed_saved_tensors,
                                    unpack_binary)


@pytest.mark.parametrize("n", [8, 13, 8192 * 8 + 5, 100_003])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_round_trip_exact(n, dtype):
    g = torch.Generator().manual_seed(n)
    x = (torch.rand(n, generator=g) < 0.3).to(dtype) * 2.5  # spikes scaled by dropout
    p = pack_binary(x)
    assert p is not None and p.scale == 2.5 and p.bits.numel() == -(-n // 8)
    y = unpack_binary(p)
    assert y.dtype == dtype and torch.equal(x, y)
    zeros = torch.zeros(n, dtype=dtype)
    assert torch.equal(unpack_binary(pack_binary(zeros)), zeros)


def test_round_trip_keeps_channels_last_without_copying_the_layout():
    x = (torch.rand(6, 5, 7, 9) < 0.3).float().contiguous(memory_format=torch.channels_last)
    p = pack_binary(x)
    assert p.order == (0, 2, 3, 1)
    y = unpack_binary(p)
    assert torch.equal(x, y) and y.stride() == x.stride()
    t = torch.rand(8, 3).lt(0.5).double().t()                  # a transposed (dense) view
    assert torch.equal(unpack_binary(pack_binary(t)), t)


@pytest.mark.parametrize("bad", [-0.0, float("nan"), 0.5, float("inf")])
def test_rejects_anything_but_zero_and_one_constant(bad):
    x = (torch.rand(50_000) < 0.3).float()
    x[49_999] = bad
    assert pack_binary(x) is None


def test_rejects_two_constants_in_different_blocks():
    x = torch.zeros(200_000)
    x[10] = 1.0
    x[150_000] = 2.0  # another work block
    assert pack_binary(x) is None


def test_narrow_int64():
    idx = torch.randint(-5, 2**31 - 1, (30_000,))
    n = narrow_int64(idx)
    assert n.values.dtype == torch.int32 and torch.equal(n.values.long().view(n.shape), idx)
    idx[-1] = 2**31
    assert narrow_int64(idx) is None


def spiking_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        SeqToBatch(nn.Conv2d(2, 8, 3, padding=1), nn.BatchNorm2d(8)), LIF(),
        SeqToBatch(nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 8 * 8, 64)), LIF(),
        SeqToBatch(nn.Dropout(0.5), nn.Linear(64, 10)), LIF())


def test_gradients_are_bit_identical_and_memory_shrinks():
    x = (torch.rand(6, 4, 2, 16, 16) < 0.3).float() * 3
    grads = []
    for pack in (False, True):
        net = spiking_net()
        torch.manual_seed(1)  # same dropout mask
        with packed_saved_tensors(pack) as stats:
            loss = (net(x).mean(0) - 0.5).pow(2).sum()
        loss.backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads))
    assert stats.tensors >= 4 and stats.packed_bytes < 0.7 * stats.saved_bytes


def test_non_binary_tensors_and_parameters_stay(monkeypatch):
    lin = nn.Linear(4096, 4)
    h = torch.randn(8, 4096, requires_grad=True)
    with packed_saved_tensors() as stats:
        lin(torch.tanh(h)).sum().backward()
    assert stats.packed_bytes == stats.saved_bytes > 0  # tanh output checked, kept
