"""``spikeflow::iir2`` (+ ``iir2_backward``): opcheck, CPU impl == reference impl == the reference
loops of ``functional/synapse.py``, gradients through the registered op and the eager path,
compile and export; the Triton adapters under the interpreter (or on a GPU with
``SPIKEFLOW_TEST_DEVICE=cuda``)."""
import importlib
import importlib.util
import math

import pytest
import torch
from _device import DEVICE, cuda_only, needs_device  # the op tests' device (tests/ops/_device.py)
from torch.library import opcheck

from spikeflow import ops
from spikeflow.functional import synapse as F
from spikeflow.layers import DualExpReadout, DualExpSynapse, LowPassSynapse

S = importlib.import_module("spikeflow.ops.synapse")
IIR2 = torch.ops.spikeflow.iir2.default
IIR2_BACKWARD = torch.ops.spikeflow.iir2_backward.default
needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                                 reason="numba not installed")
DT = torch.float64


def problem(T=7, B=3, N=5, dtype=DT, seed=0):
    """``x [T, B, N]``, coefficients ``[N]`` (stable filter), states ``[B, N]``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, N, generator=g, dtype=dtype)
    a1 = 1.0 + 0.2 * torch.rand(N, generator=g, dtype=dtype)
    a2 = -0.3 * torch.rand(N, generator=g, dtype=dtype)
    b1 = 0.2 + torch.rand(N, generator=g, dtype=dtype)
    p1 = torch.randn(B, N, generator=g, dtype=dtype)
    p2 = torch.randn(B, N, generator=g, dtype=dtype)
    return [x, a1, a2, b1, p1, p2]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("grads", [(), (0,), (1, 3), (0, 1, 2, 3, 4, 5)])
def test_opcheck_forward(dtype, grads):
    args = problem(dtype=dtype)
    for i in grads:
        args[i].requires_grad_()
    opcheck(IIR2, tuple(args))


@pytest.mark.parametrize("needs", [[False, False], [True, False], [False, True], [True, True]])
def test_opcheck_backward(needs):
    x, a1, a2, b1, p1, p2 = problem()
    g = torch.randn_like(x)
    opcheck(IIR2_BACKWARD, (g, x, a1, a2, b1, p1, p2, needs))


@needs_numba
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("T,N", [(1, 4), (2, 3), (9, 5), (3, 4100)])
def test_cpu_impl_equals_reference_impl_equals_old_loop(dtype, T, N):
    x, a1, a2, b1, p1, p2 = problem(T, 2, N, dtype)
    cpu = S.forward_impl(x, a1, a2, b1, p1, p2)
    ref = S.reference_forward(x, a1, a2, b1, p1, p2)
    loop, _ = F.dual_exp_iir(x, a1, a2, b1, F.DualExpState(p1, p2))
    assert torch.equal(cpu, ref) and torch.equal(ref, loop)  # same products and sums, same order
    g = torch.randn_like(x)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == DT else dict(rtol=1e-5, atol=1e-5)
    for needs in ([True, True], [False, True], [True, False], [False, False]):
        got = S.backward_impl(g, x, a1, a2, b1, p1, p2, needs)
        want = S.reference_backward(g, x, a1, a2, b1, p1, p2, needs)
        assert [t.dtype for t in got] == [t.dtype for t in want] == [dtype] * 6
        for u, v in zip(got, want):
            torch.testing.assert_close(u, v, **tol)
    # the reference backward against autograd through the old loop
    leaves = [t.double().requires_grad_() for t in (x, a1, a2, b1, p1, p2)]
    loop, _ = F.dual_exp_iir(leaves[0], *leaves[1:4], F.DualExpState(*leaves[4:]))
    auto = torch.autograd.grad(loop, leaves, g.double())
    want = S.reference_backward(g.double(), *(t.double() for t in (x, a1, a2, b1, p1, p2)),
                                [True, True])
    for u, v in zip(want, auto):
        torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-12)


def test_registered_op_gradcheck():
    args = [t.requires_grad_() for t in problem(5, 2, 3)]
    assert torch.autograd.gradcheck(IIR2, tuple(args))


@pytest.mark.parametrize("path", ["op", "eager"])
def test_public_function_gradients_match_old_loop(path, monkeypatch):
    if path == "op":  # what torch.compile/export see
        monkeypatch.setattr(S, "tracing", lambda x: True)
    x, a1, a2, b1, p1, p2 = (t.requires_grad_() for t in problem(6, 2, 12))
    feats = (3, 4)
    xs, ps = x.view(6, 2, *feats), [p.view(2, *feats) for p in (p1, p2)]
    out = ops.iir2(xs, a1.view(feats), a2.view(feats), b1.view(feats), *ps)
    ref, _ = F.dual_exp_iir(x, a1, a2, b1, F.DualExpState(p1, p2))
    assert torch.equal(out.reshape(ref.shape), ref)
    g = torch.randn_like(ref)
    leaves = (x, a1, a2, b1, p1, p2)
    for u, v in zip(torch.autograd.grad(out, leaves, g.view_as(out)),
                    torch.autograd.grad(ref, leaves, g)):
        torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-12)


def test_only_needed_tensors_are_kept_for_backward():
    x, a1, a2, b1, p1, p2 = problem(8, 3, 40)
    x.requires_grad_()
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.shape) or t,
                                                  lambda t: t):
        ops.iir2(x, a1, a2, b1, p1, p2)  # coefficients frozen: x and the states are not kept
    assert x.shape not in saved and (3, 40) not in saved


def test_low_pass_and_readout_match_old_loops():
    x, a = problem()[0].requires_grad_(), torch.rand(5, dtype=DT, requires_grad=True)
    p = torch.randn(3, 5, dtype=DT)
    out = ops.low_pass(x, a, p)
    ref, _ = F.low_pass(x, a, F.LowPassState(p))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-15)
    g = torch.randn_like(ref)
    for u, v in zip(torch.autograd.grad(out, (x, a), g), torch.autograd.grad(ref, (x, a), g)):
        torch.testing.assert_close(u, v, rtol=1e-12, atol=1e-12)
    m0, s0 = torch.rand(3, 5, dtype=DT), torch.rand(3, 5, dtype=DT)
    y, m_seq, s_seq = ops.readout(x, math.exp(-1 / 8), math.exp(-1 / 2), F.readout_gain(8.0, 2.0),
                                  m0, s0)
    ref, state = F.dual_exp_readout(x, 8.0, 2.0, F.ReadoutState(m0, s0))
    torch.testing.assert_close(y, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(m_seq[-1], state.m, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(s_seq[-1], state.s, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_run_in_float32_and_round_once(dtype):
    x, a1, a2, b1, p1, p2 = problem(dtype=torch.float32)
    xh = x.to(dtype)
    out = ops.iir2(xh, a1, a2, b1, p1, p2)  # CPU: the reference implementation
    assert out.dtype == dtype
    want, _ = F.dual_exp_iir(xh.float(), a1, a2, b1, F.DualExpState(p1, p2))
    assert torch.equal(out, want.to(dtype))


def test_compile_has_the_op_and_no_graph_break():
    torch.manual_seed(0)
    net = torch.nn.Sequential(DualExpSynapse(6), LowPassSynapse(6), DualExpReadout())
    x = torch.rand(5, 2, 6, requires_grad=True)
    explained = torch._dynamo.explain(net)(x)
    assert explained.graph_break_count == 0
    assert "spikeflow.iir2" in explained.graphs[0].code
    compiled = torch.compile(net, backend="aot_eager", fullgraph=True)
    y_c, y_e = compiled(x), net(x)
    torch.testing.assert_close(y_c, y_e, rtol=1e-6, atol=1e-6)
    g = torch.randn_like(y_e)
    for u, v in zip(torch.autograd.grad(y_c, [x, *net.parameters()], g),
                    torch.autograd.grad(y_e, [x, *net.parameters()], g)):
        torch.testing.assert_close(u, v, rtol=1e-5, atol=1e-6)


def test_export_decomposes_to_the_reference():
    torch.manual_seed(0)
    net = DualExpSynapse(4).eval()
    x = torch.rand(5, 2, 4)
    program = torch.export.export(net, (x,))
    assert "spikeflow.iir2" in program.graph_module.code
    plain = program.run_decompositions(S.DECOMPOSITIONS)
    assert "spikeflow" not in plain.graph_module.code
    torch.testing.assert_close(plain.module()(x), net(x), rtol=0, atol=0)


def test_backend_errors_come_from_the_ops_layer():
    with pytest.raises(ops.BackendError, match="backend must be one of"):
        LowPassSynapse(3, backend="numba")
    x = torch.rand(4, 2, 3, dtype=torch.bfloat16)
    with pytest.raises(ops.BackendError, match="LowPassSynapse: backend='fused' is unavailable"):
        LowPassSynapse(3, backend="fused")(x)


@cuda_only  # SPIKEFLOW_TEST_DEVICE=cuda on a GPU: the Triton kernels, compiled
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_impl_matches_reference(dtype):  # pragma: no cover - GPU only
    """The fused (Triton) path on ``DEVICE`` tensors against the reference implementation on CPU."""
    args = problem(9, 4, 300, dtype=torch.float32)
    args[0] = args[0].to(dtype)
    dev = [t.to(DEVICE) for t in args]
    fused = S.forward_impl(*dev)
    assert fused.device == DEVICE and fused.dtype == dtype
    ref = S.reference_forward(*args)
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(fused.cpu(), ref, **tol)
    g = torch.randn_like(ref)
    for u, v in zip(S.backward_impl(g.to(DEVICE), *dev, [True, True]),
                    S.reference_backward(g, *args, [True, True])):
        torch.testing.assert_close(u.cpu().float(), v.float(), rtol=1e-3, atol=1e-3)


@needs_device
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("needs", [[True, True], [False, True], [False, False]])
def test_triton_adapters_match_the_reference_implementation(dtype, needs):
    """``cuda_forward``/``cuda_backward`` (what the op runs on CUDA) on ``DEVICE`` tensors (under
    the Triton interpreter on CPU) against the reference implementation on CPU; float32
    coefficients and states, ``x`` in ``dtype``."""
    pytest.importorskip("triton")
    args = problem(9, 3, 40, dtype=torch.float32, seed=3)
    args[0] = args[0].to(dtype)
    g = torch.randn(9, 3, 40, generator=torch.Generator().manual_seed(4)).to(dtype)
    got = S.cuda_forward(*(t.to(DEVICE) for t in args))
    assert got.dtype == dtype and got.device == DEVICE
    tol = dict(rtol=1e-6, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(got.cpu(), S.reference_forward(*args), **tol)
    got_b = S.cuda_backward(g.to(DEVICE), *(t.to(DEVICE) for t in args), needs)
    want_b = S.reference_backward(g, *args, needs)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
    for u, v in zip(got_b, want_b):
        assert u.dtype == v.dtype and u.shape == v.shape
        torch.testing.assert_close(u.cpu().float(), v.float(), **tol)


@cuda_only
def test_filters_fused_on_cuda_equal_the_reference_on_cpu():  # pragma: no cover - GPU only
    torch.manual_seed(0)
    for make in (lambda b: DualExpSynapse(50, backend=b), lambda b: LowPassSynapse(50, backend=b),
                 lambda b: DualExpReadout(backend=b)):
        ref, fused = make("reference"), make("fused").to(DEVICE)
        fused.load_state_dict(ref.state_dict())
        x = torch.rand(12, 4, 50, requires_grad=True)
        xd = x.detach().to(DEVICE).requires_grad_()
        y_r, y_f = ref(x), fused(xd)
        torch.testing.assert_close(y_f.cpu(), y_r, rtol=1e-5, atol=1e-5)
        g = torch.randn_like(y_r)
        y_r.backward(g)
        y_f.backward(g.to(DEVICE))
        torch.testing.assert_close(xd.grad.cpu(), x.grad, rtol=1e-5, atol=1e-5)
        for p_r, p_f in zip(ref.parameters(), fused.parameters()):
            torch.testing.assert_close(p_f.grad.cpu(), p_r.grad, rtol=1e-4, atol=1e-4)
