"""Losses over [T, B, K] against hand-written formulas; accuracy read-outs."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spikeflow.train.losses import build_loss, count_correct, predict


@pytest.fixture
def out_y():
    g = torch.Generator().manual_seed(0)
    return torch.rand(5, 4, 3, generator=g), torch.tensor([0, 2, 1, 2])


def test_mse_rate_is_mse_of_mean_vs_one_hot(out_y):
    out, y = out_y
    expect = ((out.mean(0) - F.one_hot(y, 3).float()) ** 2).mean()
    assert torch.allclose(build_loss("mse_rate")(out, y), expect)
    assert torch.allclose(build_loss("mse_rate")(out, F.one_hot(y, 3).float()), expect)


def test_cross_entropies(out_y):
    out, y = out_y
    def ce(logits, target):
        return -torch.log_softmax(logits, -1)[torch.arange(len(target)), target].mean()
    assert torch.allclose(build_loss("ce_count")(out, y), ce(out.sum(0), y))
    assert torch.allclose(build_loss("ce_mean")(out, y), ce(out.mean(0), y))
    per_step = sum(ce(out[t], y) for t in range(out.shape[0])) / out.shape[0]
    assert torch.allclose(build_loss("ce_per_step")(out, y), per_step)
    smooth = build_loss("ce_mean", {"label_smoothing": 0.1})(out, y)
    assert torch.allclose(smooth, F.cross_entropy(out.mean(0), y, label_smoothing=0.1))


def test_mse_sequence_raw_and_filtered():
    g = torch.Generator().manual_seed(1)
    out = (torch.rand(12, 2, 3, generator=g) > 0.7).float()
    target = torch.rand(2, 12, 3, generator=g)  # batch-first target sequence
    raw = build_loss("mse_sequence")(out, target)
    assert torch.allclose(raw, ((out - target.transpose(0, 1)) ** 2).mean())
    # dual-exp read-out (snn-iir filter_layer): (m - s) * v0 with m, s first-order traces
    tm, ts = 8.0, 2.0
    eta = tm / ts
    v0 = eta ** (eta / (eta - 1)) / (eta - 1)
    m = torch.zeros(2, 3)
    s = torch.zeros(2, 3)
    filt = []
    for t in range(12):
        m = math.exp(-1 / tm) * m + out[t]
        s = math.exp(-1 / ts) * s + out[t]
        filt.append((m - s) * v0)
    expect = ((torch.stack(filt) - target.transpose(0, 1)) ** 2).mean()
    got = build_loss("mse_sequence", {"filter_tau_m": tm, "filter_tau_s": ts})(out, target)
    assert torch.allclose(got, expect, atol=1e-6)
    with pytest.raises(ValueError, match="differ"):
        build_loss("mse_sequence")(out, target[:, :5])


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"\[T, B, K\]"):
        build_loss("ce_mean")(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="unknown loss"):
        build_loss("hinge")
    with pytest.raises(ValueError, match="train.loss_options.alpha"):
        build_loss("mse_rate", {"alpha": 1})


def test_predictions_mean_equals_sum_and_last():
    out = torch.tensor([[[1.0, 0.0]], [[0.0, 3.0]], [[2.0, 0.0]]])  # T=3, B=1, K=2
    assert predict(out, "mean").tolist() == [0]  # sums 3 vs 3: a tie goes to the lower index
    out[1, 0, 1] = 4.0
    assert predict(out, "mean").tolist() == [1]  # sums 3 vs 4
    out[1, 0, 1] = 2.0
    assert predict(out, "mean").tolist() == [0]   # sums 3 vs 2
    assert predict(out, "last").tolist() == [0]
    assert int(count_correct(out, torch.tensor([0]))) == 1
    assert int(count_correct(out, torch.tensor([[0.0, 1.0]]))) == 0  # one-hot targets
