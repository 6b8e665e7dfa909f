"""SparseLinear: the event-driven path equals nn.Linear (values and all gradients) to rounding."""
import importlib

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import spikeflow.layers.sparse_linear as sl
from spikeflow.layers import SparseLinear
from spikeflow.metrics import SpikeRecorder, count_synops
from spikeflow.neurons import LIF

# the module (spikeflow.ops.sparse_linear, the attribute, is the function)
sl_op = importlib.import_module("spikeflow.ops.sparse_linear")

TOL = {torch.float64: dict(rtol=1e-12, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-5)}


def pair(k, o, bias=True, dtype=torch.float64, **kw):
    """A SparseLinear that always takes the sparse path below density 1, and an equal nn.Linear."""
    kw = {"threshold": 1.01, "min_rows": 0, "min_out": 0, **kw}
    sparse = SparseLinear(k, o, bias=bias, dtype=dtype, **kw)
    dense = nn.Linear(k, o, bias=bias, dtype=dtype)
    dense.load_state_dict(sparse.state_dict())
    return sparse, dense


def spikes(shape, density, dtype=torch.float64, values=False):
    x = (torch.rand(shape) < density).to(dtype)
    if values:
        x = x * torch.randn(shape, dtype=dtype)
    return x


def scale(t):
    return max(1.0, float(t.detach().abs().max())) if t.numel() else 1.0


def compare(sparse, dense, x, x_grad=True):
    tol = TOL[x.dtype]
    xs = x.clone().requires_grad_(x_grad)
    xd = x.clone().requires_grad_(x_grad)
    ys, yd = sparse(xs), dense(xd)
    assert ys.shape == yd.shape
    torch.testing.assert_close(ys, yd, rtol=tol["rtol"], atol=tol["atol"] * scale(yd))
    g = torch.randn_like(yd)
    (ys * g).sum().backward()
    (yd * g).sum().backward()
    pairs = [(sparse.weight.grad, dense.weight.grad)]
    if dense.bias is not None:
        pairs.append((sparse.bias.grad, dense.bias.grad))
    if x_grad:
        pairs.append((xs.grad, xd.grad))
    for a, b in pairs:
        torch.testing.assert_close(a, b, rtol=tol["rtol"], atol=tol["atol"] * scale(b))


@pytest.mark.parametrize("density", [0.0, 0.05, 0.2, 1.0])
@pytest.mark.parametrize("values", [False, True])
def test_matches_linear_float64(density, values):
    sparse, dense = pair(37, 45)
    compare(sparse, dense, spikes((50, 37), density, values=values))


def test_float32_and_3d_input():
    sparse, dense = pair(64, 130, dtype=torch.float32)
    compare(sparse, dense, spikes((6, 9, 64), 0.2, torch.float32))
    compare(sparse, dense, spikes((6, 9, 64), 0.1, torch.float32, values=True))


def test_no_bias_and_weight_only_gradient():
    sparse, dense = pair(20, 9, bias=False)
    compare(sparse, dense, spikes((30, 20), 0.2), x_grad=False)
    assert sparse.bias is None and "bias" not in sparse.state_dict()


def test_edge_cases_empty_rows_zero_rows_non_contiguous():
    sparse, dense = pair(10, 6)
    x = spikes((12, 10), 0.3)
    x[::3] = 0                                   # empty rows
    compare(sparse, dense, x)
    compare(sparse, dense, spikes((10, 12), 0.2).t())  # non-contiguous input
    compare(sparse, dense, torch.zeros(0, 10, dtype=torch.float64))
    compare(sparse, dense, torch.zeros(4, 0, 10, dtype=torch.float64))
    sparse.zero_grad()
    with torch.no_grad():                         # inference: nothing saved, same values
        x = spikes((5, 10), 0.2)
        torch.testing.assert_close(sparse(x), dense(x), rtol=1e-12, atol=1e-12)


def test_parallel_blocks_match(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(2)                      # run_blocks splits rows / columns over threads
    try:
        sparse, dense = pair(300, 257, dtype=torch.float32)
        compare(sparse, dense, spikes((700, 300), 0.1, torch.float32))
        compare(sparse, dense, spikes((700, 300), 0.1, torch.float32, values=True))
    finally:
        torch.set_num_threads(threads)


def test_gradcheck_sparse_function():
    x = spikes((7, 6), 0.4, values=True).requires_grad_()
    w = torch.randn(5, 6, dtype=torch.float64, requires_grad=True)
    b = torch.randn(5, dtype=torch.float64, requires_grad=True)

    def fn(x, w, b):
        counts, binary = sl_op._sparse_count(x.detach().contiguous(), 2.0)
        return sl_op._Eager.apply(x, w, b, counts, binary)

    assert torch.autograd.gradcheck(fn, (x, w, b))


def _path_spy(monkeypatch):
    calls = []
    apply = sl_op._Eager.apply
    monkeypatch.setattr(sl_op._Eager, "apply", lambda *a: calls.append("sparse") or apply(*a))
    return calls


def test_dense_fallback_above_threshold_and_size_gates(monkeypatch):
    calls = _path_spy(monkeypatch)
    layer = SparseLinear(50, 64, min_rows=0)
    assert layer.threshold is None  # auto: depends on the thread count
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert sl.auto_threshold() == sl.SINGLE_THREAD_THRESHOLD == 0.3
        torch.set_num_threads(2)
        assert sl.auto_threshold() == sl.DEFAULT_THRESHOLD == 0.25
    finally:
        torch.set_num_threads(threads)
    layer(spikes((20, 50), 0.0, torch.float32))
    assert calls == ["sparse"]
    layer(torch.ones(20, 50))                     # density 1 >= threshold: F.linear
    assert calls == ["sparse"]
    SparseLinear(50, 64)(torch.zeros(20, 50))    # fewer than MIN_ROWS rows
    SparseLinear(50, 8, min_rows=0)(torch.zeros(20, 50))  # fewer than MIN_OUT outputs
    assert calls == ["sparse"]


def test_dtype_mismatch_raises_like_linear():
    layer = SparseLinear(4, 3, min_rows=0, min_out=0)
    with pytest.raises(RuntimeError):
        layer(torch.zeros(2, 4, dtype=torch.float64))
    with pytest.raises(RuntimeError):
        layer(torch.zeros(2, 5))


def test_state_dict_round_trip_and_from_linear():
    lin = nn.Linear(8, 5)
    layer = SparseLinear(8, 5)
    layer.load_state_dict(lin.state_dict())
    assert isinstance(layer, nn.Linear)
    assert layer.state_dict().keys() == lin.state_dict().keys()
    back = nn.Linear(8, 5)
    back.load_state_dict(layer.state_dict())
    assert torch.equal(back.weight, lin.weight) and torch.equal(back.bias, lin.bias)
    shared = SparseLinear.from_linear(lin, min_rows=0, min_out=0)
    assert shared.weight is lin.weight and shared.bias is lin.bias
    x = spikes((9, 8), 0.1, torch.float32)
    torch.testing.assert_close(shared(x), lin(x), rtol=1e-5, atol=1e-5)
    assert SparseLinear.from_linear(nn.Linear(3, 2, bias=False)).bias is None
    assert "threshold=None" in repr(layer)


def test_metrics_count_it_as_linear():
    def net(cls):
        torch.manual_seed(1)
        return nn.Sequential(cls(16, 12), LIF(), cls(12, 4))

    kw = dict(threshold=1.01, min_rows=0, min_out=0)
    sparse = nn.Sequential(SparseLinear(16, 12, **kw), LIF(), SparseLinear(12, 4, **kw))
    dense = net(nn.Linear)
    sparse.load_state_dict(dense.state_dict())
    x = spikes((5, 3, 16), 0.2, torch.float32)
    ops_s, ops_d = count_synops(sparse, x), count_synops(dense, x)
    assert ops_s.per_layer() == ops_d.per_layer()
    assert ops_s.totals()["ac"] > 0
    with SpikeRecorder(sparse) as rec_s:
        sparse(x)
    with SpikeRecorder(dense) as rec_d:
        dense(x)
    assert [r.sums.tolist() for r in rec_s] == [r.sums.tolist() for r in rec_d]


def test_functional_matches_f_linear():
    x = spikes((300, 40), 0.05, torch.float32)
    w, b = torch.randn(70, 40), torch.randn(70)
    torch.testing.assert_close(sl.sparse_linear(x, w, b), F.linear(x, w, b), rtol=1e-5, atol=1e-5)
    assert torch.equal(sl.sparse_linear(x, w, b, threshold=0.0), F.linear(x, w, b))
