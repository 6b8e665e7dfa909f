"""TimeDropout: one scaled mask per sample/feature shared by all steps; identity in eval."""
import pytest
import torch

from spikeflow.layers import TimeDropout, time_dropout, time_dropout_mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mask_is_constant_over_time_and_scaled(dtype):
    p = 0.25
    x = torch.ones(6, 4, 3, 5, dtype=dtype)
    y = TimeDropout(p).train()(x)
    assert y.dtype == dtype
    for t in range(1, 6):
        assert torch.equal(y[t], y[0])
    values = y.unique()
    assert torch.equal(values, torch.tensor([0.0, 1.0 / (1.0 - p)], dtype=dtype))


def test_exact_mask_with_seeded_generator():
    p = 0.4
    x = torch.randn(5, 3, 7, dtype=torch.float64)
    y = time_dropout(x, p, generator=torch.Generator().manual_seed(123))
    keep = torch.bernoulli(torch.full((3, 7), 1 - p, dtype=torch.float64),
                           generator=torch.Generator().manual_seed(123))
    assert torch.equal(y, x * (keep / (1 - p)))
    mask = time_dropout_mask(x, p, generator=torch.Generator().manual_seed(123))
    assert torch.equal(mask, keep / (1 - p))


def test_expectation_is_preserved_and_drop_rate_is_p():
    p, n = 0.3, 200_000
    x = torch.full((2, n, 1), 2.0, dtype=torch.float64)
    y = time_dropout(x, p, generator=torch.Generator().manual_seed(0))
    sigma = (p / (1 - p) / n) ** 0.5  # std of the mean of the scaled mask
    assert abs(y[0].mean().item() / 2.0 - 1.0) < 5 * sigma
    dropped = (y[0] == 0).double().mean().item()
    assert abs(dropped - p) < 5 * (p * (1 - p) / n) ** 0.5


def test_new_mask_each_call_and_gradient_is_the_mask():
    layer = TimeDropout(0.5).train()
    x = torch.ones(3, 64, 8, requires_grad=True)
    y1, y2 = layer(x), layer(x)
    assert not torch.equal(y1, y2)
    y1.sum().backward()
    assert torch.equal(x.grad, y1.detach())  # d(x*m)/dx = m and x = 1


def test_eval_p0_and_p1():
    x = torch.randn(3, 2, 4)
    assert TimeDropout(0.5).eval()(x) is x
    assert TimeDropout(0.0).train()(x) is x
    assert torch.equal(TimeDropout(1.0).train()(x), torch.zeros_like(x))


@pytest.mark.parametrize("p", [-0.1, 1.5, "0.5", True, float("nan")])
def test_bad_p_raises(p):
    with pytest.raises(ValueError, match="p must be"):
        TimeDropout(p)


def test_bad_input_raises():
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        TimeDropout(0.5).train()(torch.ones(4))
