"""``spikeflow::sparse_linear`` (+ ``sparse_linear_backward``): opcheck, CPU impl (CSR kernels) ==
reference impl == ``F.linear`` to rounding, gradients through the registered op and the eager
path, compile and export."""
import importlib

import pytest
import torch
import torch.nn.functional as F
from _device import DEVICE, cuda_only  # the op tests' device (tests/ops/_device.py)
from torch.library import opcheck

from spikeflow import ops
from spikeflow.layers import SparseLinear

SL = importlib.import_module("spikeflow.ops.sparse_linear")
OP = torch.ops.spikeflow.sparse_linear.default
OP_BACKWARD = torch.ops.spikeflow.sparse_linear_backward.default
TOL = {torch.float64: dict(rtol=1e-12, atol=1e-12), torch.float32: dict(rtol=1e-5, atol=1e-5)}


def problem(N=40, K=30, O=20, density=0.1, dtype=torch.float64, values=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(N, K, generator=g) < density).to(dtype)
    if values:
        x = x * torch.randn(N, K, generator=g, dtype=dtype)
    return x, torch.randn(O, K, generator=g, dtype=dtype), torch.randn(O, generator=g, dtype=dtype)


@pytest.mark.parametrize("threshold", [0.5, 0.01, None])  # CSR path, dense path, auto
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("grad", [False, True])
def test_opcheck_forward(threshold, bias, grad):
    x, w, b = problem()
    args = [x, w, b if bias else None]
    if grad:
        for t in args:
            if t is not None:
                t.requires_grad_()
    opcheck(OP, (*args, threshold))


@pytest.mark.parametrize("needs", [[True, True, True], [False, True, False], [True, False, True]])
def test_opcheck_backward(needs):
    x, w, _ = problem()
    opcheck(OP_BACKWARD, (torch.randn(40, 20, dtype=torch.float64), x, w, 0.5, needs))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("values", [False, True])
@pytest.mark.parametrize("density", [0.0, 0.05, 0.3])
def test_cpu_impl_equals_reference_impl_equals_linear(dtype, values, density):
    x, w, b = problem(300, 70, 90, density, dtype, values)
    tol = TOL[dtype]
    cpu = SL.forward_impl(x, w, b, 2.0)  # threshold > 1: always the CSR kernels
    ref = SL.reference_forward(x, w, b, 2.0)
    assert torch.equal(ref, F.linear(x, w, b))
    torch.testing.assert_close(cpu, ref, **tol)
    gy = torch.randn(300, 90, dtype=dtype)
    for needs in ([True, True, True], [False, True, False]):
        got = SL.backward_impl(gy, x, w, 2.0, needs)
        want = SL.reference_backward(gy, x, w, 2.0, needs)
        for u, v in zip(got, want):
            assert u.shape == v.shape and u.is_contiguous()
            torch.testing.assert_close(u, v, **tol)
    xr, wr, br = (t.clone().requires_grad_() for t in (x, w, b))
    auto = torch.autograd.grad(F.linear(xr, wr, br), (xr, wr, br), gy)
    for u, v in zip(SL.reference_backward(gy, x, w, 2.0, [True, True, True]), auto):
        torch.testing.assert_close(u, v, **tol)


def test_registered_op_gradcheck():
    x, w, b = problem(7, 6, 5, 0.4, values=True)
    for threshold in (2.0, 0.01):
        args = (x.clone().requires_grad_(), w.clone().requires_grad_(), b.clone().requires_grad_())
        assert torch.autograd.gradcheck(lambda *a: OP(*a, threshold), args)


@pytest.mark.parametrize("path", ["op", "eager"])
def test_public_function_gradients_match_linear(path, monkeypatch):
    if path == "op":  # what torch.compile/export see
        monkeypatch.setattr(SL, "tracing", lambda x: True)
    calls = []
    apply = SL._Eager.apply
    monkeypatch.setattr(SL._Eager, "apply", lambda *a: calls.append(1) or apply(*a))
    x, w, b = problem(6 * 50, 30, 70, 0.1)
    x = x.view(6, 50, 30)
    leaves = [t.clone().requires_grad_() for t in (x, w, b)]
    refs = [t.clone().requires_grad_() for t in (x, w, b)]
    y = ops.sparse_linear(*leaves, threshold=0.5, min_rows=0, min_out=0)
    ref = F.linear(*refs)
    assert y.shape == (6, 50, 70) and calls == ([1] if path == "eager" else [])
    torch.testing.assert_close(y, ref, **TOL[torch.float64])
    g = torch.randn_like(ref)
    for u, v in zip(torch.autograd.grad(y, leaves, g), torch.autograd.grad(ref, refs, g)):
        torch.testing.assert_close(u, v, **TOL[torch.float64])


def test_compile_has_the_op_and_export_decomposes_to_linear():
    torch.manual_seed(0)
    layer = SparseLinear(30, 20, min_rows=0, min_out=0)
    x = (torch.rand(300, 30) < 0.1).float().requires_grad_()
    explained = torch._dynamo.explain(layer)(x)
    assert explained.graph_break_count == 0
    assert "spikeflow.sparse_linear" in explained.graphs[0].code
    compiled = torch.compile(layer, backend="aot_eager", fullgraph=True)
    y_c, y_e = compiled(x), layer(x)
    torch.testing.assert_close(y_c, y_e, **TOL[torch.float32])
    g = torch.randn_like(y_e)
    for u, v in zip(torch.autograd.grad(y_c, [x, *layer.parameters()], g),
                    torch.autograd.grad(y_e, [x, *layer.parameters()], g)):
        torch.testing.assert_close(u, v, **TOL[torch.float32])
    program = torch.export.export(layer, (x.detach(),))
    plain = program.run_decompositions(SL.DECOMPOSITIONS)
    assert "spikeflow" not in plain.graph_module.code
    torch.testing.assert_close(plain.module()(x.detach()), layer(x.detach()), **TOL[torch.float32])


@cuda_only
def test_cuda_is_f_linear():  # pragma: no cover - GPU only
    x, w, b = (t.float().to(DEVICE) for t in problem())
    assert torch.equal(ops.sparse_linear(x, w, b, min_rows=0, min_out=0), F.linear(x, w, b))
    assert torch.equal(OP(x, w, b, 0.5), F.linear(x, w, b))
