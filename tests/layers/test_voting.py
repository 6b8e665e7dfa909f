"""VotingLayer: average of consecutive groups of neurons."""
import pytest
import torch

from spikeflow.layers import VotingLayer


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_known_answer(dtype):
    x = torch.arange(2 * 3 * 6, dtype=dtype).reshape(2, 3, 6)
    y = VotingLayer(3)(x)
    assert y.shape == (2, 3, 2) and y.dtype == dtype
    expected = torch.tensor([[1.0, 4.0], [7.0, 10.0], [13.0, 16.0]], dtype=dtype)
    assert torch.equal(y[0], expected)
    assert torch.equal(y[1], expected + 18)


def test_plif_group_of_ten_equals_avg_pool():
    x = torch.rand(4, 5, 110)
    y = VotingLayer(10)(x)
    ref = torch.nn.functional.avg_pool1d(x.flatten(0, 1).unsqueeze(1), 10, 10).squeeze(1).unflatten(0, (4, 5))
    assert y.shape == (4, 5, 11)
    torch.testing.assert_close(y, ref, rtol=1e-6, atol=1e-7)


def test_bad_arguments_raise():
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ValueError, match="group"):
            VotingLayer(bad)
    with pytest.raises(ValueError, match="divisible by 10"):
        VotingLayer(10)(torch.zeros(2, 3, 25))
