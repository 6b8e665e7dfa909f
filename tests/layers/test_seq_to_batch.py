"""SeqToBatch: one call on [T*B, ...] equals the per-step loop; views, not copies."""
import pytest
import torch
from torch import nn

from spikeflow.layers import SeqToBatch, fold_time, unfold_time


def per_step(module, x):
    return torch.stack([module(x[t]) for t in range(x.shape[0])])


#: ops whose outputs involve no rounding (selection and copies): any kernel, blocking or thread
#: count gives the same bits, so the batched call equals the per-step loop exactly
EXACT = [
    (lambda: nn.MaxPool2d(2), (5, 3, 2, 8, 8)),
    (lambda: nn.Flatten(), (5, 3, 2, 4, 4)),
]
#: ops that round sums/products: the batched call may pick another GEMM/convolution kernel or
#: blocking for the larger batch (batch-size dependent in MKL/oneDNN, thread count, CUDA), so
#: sums are rounded in another order; equal up to a few ulps of the sums (issue 17 item 19:
#: Linear float32 differed on a 16-core machine with torch 2.11)
ROUNDED = [
    (lambda: nn.Conv2d(2, 4, 3, padding=1), (5, 3, 2, 8, 8)),
    (lambda: nn.AvgPool2d(2), (5, 3, 2, 8, 8)),
    (lambda: nn.Linear(6, 7), (5, 3, 6)),
    (lambda: nn.BatchNorm2d(2).eval(), (5, 3, 2, 4, 4)),
    (lambda: nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 4)), (4, 2, 2, 4, 4)),
]
#: tolerance of ROUNDED: at most 18-term dot products of O(1) values; reordering such a sum
#: changes it by about K * eps * sum|terms| in the worst case, far less in practice
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float64: dict(rtol=1e-12, atol=1e-12)}


def _batched_and_loop(make, shape, dtype):
    module = make().to(dtype)
    with torch.no_grad():  # give BatchNorm non-trivial statistics
        for name, buf in module.named_buffers():
            if name.endswith("running_mean") or name.endswith("running_var"):
                buf.copy_(torch.rand_like(buf) + 0.5)
    x = torch.randn(shape, dtype=dtype)
    y = SeqToBatch(module)(x)
    assert y.dtype == dtype
    return y, per_step(module, x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("make,shape", EXACT)
def test_equals_per_step_loop_exactly(make, shape, dtype):
    y, loop = _batched_and_loop(make, shape, dtype)
    assert torch.equal(y, loop)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("make,shape", ROUNDED)
def test_equals_per_step_loop_up_to_rounding(make, shape, dtype):
    y, loop = _batched_and_loop(make, shape, dtype)
    torch.testing.assert_close(y, loop, **TOL[dtype])


def test_several_modules_are_chained():
    conv, bn = nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3)
    layer = SeqToBatch(conv, bn)
    assert isinstance(layer.module, nn.Sequential) and layer.module[0] is conv and layer.module[1] is bn
    x = torch.randn(4, 2, 2, 5, 5)
    assert torch.equal(layer(x), bn(conv(x.flatten(0, 1))).unflatten(0, (4, 2)))


def test_batchnorm_training_uses_statistics_of_all_steps():
    bn = nn.BatchNorm2d(2, momentum=1.0)
    x = torch.randn(6, 3, 2, 4, 4, dtype=torch.float64)
    bn.double()
    y = SeqToBatch(bn)(x)
    expected_mean = x.mean(dim=(0, 1, 3, 4))
    torch.testing.assert_close(bn.running_mean, expected_mean, rtol=1e-12, atol=1e-12)
    zeros = torch.zeros(2, dtype=torch.float64)
    torch.testing.assert_close(y.mean(dim=(0, 1, 3, 4)), zeros, atol=1e-12, rtol=0)
    assert int(bn.num_batches_tracked) == 1


def test_fold_and_unfold_are_views():
    x = torch.randn(4, 3, 2, 5, 5)
    assert SeqToBatch(nn.Identity())(x).data_ptr() == x.data_ptr()
    folded = fold_time(x)
    assert folded.data_ptr() == x.data_ptr() and folded.shape == (12, 2, 5, 5)
    assert unfold_time(folded, 4, 3)._base is not None


def test_channels_last_steps_stay_views_and_conv_matches():
    T, B, C, H, W = 3, 2, 4, 6, 6
    x = torch.randn(T, B, H, W, C).permute(0, 1, 4, 2, 3)  # channels-last storage of every step
    folded = fold_time(x)
    assert folded.data_ptr() == x.data_ptr()
    assert folded.is_contiguous(memory_format=torch.channels_last)
    conv = nn.Conv2d(C, 5, 3, padding=1).to(memory_format=torch.channels_last)
    y = SeqToBatch(conv)(x)
    assert y.shape == (T, B, 5, H, W)
    torch.testing.assert_close(y, per_step(conv, x.contiguous()), rtol=1e-5, atol=1e-6)


def test_gradients_flow_through():
    conv = nn.Conv2d(1, 2, 3)
    x = torch.randn(3, 2, 1, 5, 5, requires_grad=True)
    SeqToBatch(conv)(x).sum().backward()
    assert x.grad is not None and conv.weight.grad is not None and x.grad.abs().sum() > 0


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="nn.Module"):
        SeqToBatch()
    with pytest.raises(ValueError, match="nn.Module"):
        SeqToBatch(lambda t: t)
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        SeqToBatch(nn.Identity())(torch.zeros(5))

    class SumBatch(nn.Module):
        def forward(self, x):
            return x.sum(0, keepdim=True)

    with pytest.raises(ValueError, match="T\\*B"):
        SeqToBatch(SumBatch())(torch.zeros(3, 2, 4))
    with pytest.raises(ValueError, match="one tensor"):
        SeqToBatch(nn.GRU(4, 3))(torch.zeros(3, 2, 4))


# ---------------------------------------------------------------- bn_stats="per_step" (PLIF's per-step BN)
def _bn_stack(C: int = 3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))


def _per_step_loop(conv: nn.Module, bn: nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """The original PLIF forward: ``self.conv(x[t])`` (Conv + BN) once per step, in step order."""
    return torch.stack([bn(conv(x[t])) for t in range(x.shape[0])])


@pytest.mark.parametrize("T,B", [(4, 3), (1, 5), (6, 2)])
def test_per_step_bn_equals_the_per_step_loop_in_training(T, B):
    import copy

    stack = _bn_stack()
    ref = copy.deepcopy(stack)
    layer = SeqToBatch(*stack, bn_stats="per_step").train()
    ref.train()
    x = torch.randn(T, B, 2, 5, 5) * 2 + 0.5
    for _ in range(2):  # two batches: running statistics accumulate identically
        y = layer(x)
        want = _per_step_loop(ref[0], ref[1], x)
        torch.testing.assert_close(y, want, rtol=0, atol=1e-6)
    bn, bn_ref = layer.module[1], ref[1]
    torch.testing.assert_close(bn.running_mean, bn_ref.running_mean, rtol=0, atol=1e-7)
    torch.testing.assert_close(bn.running_var, bn_ref.running_var, rtol=0, atol=1e-7)
    assert int(bn.num_batches_tracked) == int(bn_ref.num_batches_tracked) == 2 * T
    # each step is normalised by its own statistics: per-step mean 0 and (biased) variance 1 per channel
    mean = y.mean(dim=(1, 3, 4))
    torch.testing.assert_close(mean, torch.zeros_like(mean), rtol=0, atol=1e-5)
    # gradients equal the loop's too
    g = torch.randn_like(y)
    (layer(x) * g).sum().backward()
    (_per_step_loop(ref[0], ref[1], x) * g).sum().backward()
    torch.testing.assert_close(layer.module[0].weight.grad, ref[0].weight.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(layer.module[1].weight.grad, ref[1].weight.grad, rtol=1e-4, atol=1e-5)


def test_all_steps_bn_pools_t_times_b_and_differs_from_per_step():
    stack = _bn_stack()
    x = torch.randn(4, 3, 2, 5, 5)
    x[0] += 3.0  # steps with different statistics
    pooled = SeqToBatch(*stack).train()(x)
    folded = stack[1](stack[0](x.flatten(0, 1)))  # one BN call over T*B samples
    assert torch.equal(pooled, folded.unflatten(0, (4, 3)))
    assert not torch.allclose(SeqToBatch(*stack, bn_stats="per_step").train()(x), pooled, atol=1e-3)


def test_per_step_bn_in_eval_equals_all_steps_and_nested_sequentials():
    stack = _bn_stack()
    with torch.no_grad():
        stack[1].running_mean.uniform_(-1, 1)
        stack[1].running_var.uniform_(0.5, 2)
    x = torch.randn(3, 2, 2, 4, 4)
    per_step = SeqToBatch(nn.Sequential(stack), bn_stats="per_step").eval()  # nested Sequential
    assert torch.equal(per_step(x), SeqToBatch(stack).eval()(x))
    # without running statistics BN uses batch statistics in eval too: still per step
    free = nn.Sequential(nn.Identity(), nn.BatchNorm2d(2, track_running_stats=False)).eval()
    y = SeqToBatch(free, bn_stats="per_step")(x)
    torch.testing.assert_close(y, torch.stack([free(x[t]) for t in range(3)]), rtol=0, atol=1e-6)


def test_bad_bn_stats_raises():
    with pytest.raises(ValueError, match="bn_stats"):
        SeqToBatch(nn.BatchNorm2d(2), bn_stats="per_sample")
    assert "per_step" in repr(SeqToBatch(nn.BatchNorm2d(2), bn_stats="per_step"))
