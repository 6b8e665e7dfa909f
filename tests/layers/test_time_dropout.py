"""TimeDropout: one scaled mask per sample/feature shared by all steps; identity in eval.
StepDropout: F.dropout at every step (He2020), optionally active in eval."""
import pytest
import torch
import torch.nn.functional as F

from spikeflow.layers import StepDropout, TimeDropout, step_dropout_mask, time_dropout, time_dropout_mask


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


# ------------------------------------------------------------------------------ StepDropout (F.dropout per step)
def test_step_dropout_draws_a_new_scaled_mask_per_step_and_element():
    p = 0.5
    layer = StepDropout(p)
    layer.record_mask = True
    x = torch.ones(40, 8, 50)
    y = layer(x)
    assert set(y.unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(y, layer.last_mask)
    assert not torch.equal(y[0], y[1])                      # a new mask every step
    assert abs((y == 0).float().mean().item() - p) < 0.02   # 16000 draws
    # the same distribution as F.dropout: the same generator state gives the same mask
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(step_dropout_mask(x, p, g1), torch.empty_like(x).bernoulli_(1 - p, generator=g2) / (1 - p))
    torch.manual_seed(3)
    a = F.dropout(x, p)
    torch.manual_seed(3)
    assert torch.equal(a, x * step_dropout_mask(x, p))


def test_step_dropout_eval_active_like_the_authors_f_dropout():
    x = torch.ones(5, 4, 6)
    layer = StepDropout(0.5).eval()                        # eval_active=True (default): still drops
    assert not torch.equal(layer(x), x)
    assert StepDropout(0.5, eval_active=False).eval()(x) is x
    assert StepDropout(0.0)(x) is x
    layer.generator = torch.Generator().manual_seed(1)
    first = layer(x)
    layer.generator = torch.Generator().manual_seed(1)
    assert torch.equal(layer(x), first)                    # seeded masks are reproducible
    xg = torch.ones(5, 4, 6, requires_grad=True)
    out = StepDropout(0.5)(xg)
    out.sum().backward()
    assert torch.equal(xg.grad, out.detach())
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        layer(torch.ones(3))
    with pytest.raises(ValueError, match="p must be"):
        StepDropout(1.5)
