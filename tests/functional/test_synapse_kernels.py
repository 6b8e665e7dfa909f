"""The synapse op (``spikeflow::iir2`` through :mod:`spikeflow.ops.synapse`, numba on CPU) vs the
reference loops of ``functional/synapse.py``: outputs and every gradient, gradcheck."""
import importlib.util
import math

import pytest
import torch

from spikeflow.functional import synapse as F
from spikeflow.ops import synapse as K

pytestmark = pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                                reason="numba not installed")
DT = torch.float64


def coefficients(features, dtype=DT):
    a1 = (1.0 + 0.2 * torch.rand(features, dtype=dtype)).requires_grad_()
    a2 = (-0.3 * torch.rand(features, dtype=dtype)).requires_grad_()
    b1 = (0.2 + torch.rand(features, dtype=dtype)).requires_grad_()
    return a1, a2, b1


def grads(out, inputs, g):
    return torch.autograd.grad(out, inputs, g, allow_unused=True)


# N = 4100 > BLOCK (4096, ops/_cpu/synapse.py) and N = 2100 at T = 70 in the backward span
# several blocks with a remainder;
# T = 1 and 2 exercise the state edge cases
@pytest.mark.parametrize("T,features", [
    (9, (5,)), (1, (4,)), (2, (3, 2)), (6, (2, 3, 4)), (4, (700,)), (3, (4100,)), (70, (2100,)),
])
def test_iir2_matches_reference_outputs_and_all_grads(T, features):
    B = 3
    x = torch.randn(T, B, *features, dtype=DT, requires_grad=True)
    a1, a2, b1 = coefficients(features)
    p1 = torch.randn(B, *features, dtype=DT, requires_grad=True)
    p2 = torch.randn(B, *features, dtype=DT, requires_grad=True)
    fused = K.iir2(x, a1, a2, b1, p1, p2)
    ref, _ = F.dual_exp_iir(x, a1, a2, b1, F.DualExpState(p1, p2))
    torch.testing.assert_close(fused, ref, rtol=1e-10, atol=1e-10)
    g = torch.randn_like(ref)
    inputs = (x, a1, a2, b1, p1, p2)
    for gf, gr in zip(grads(fused, inputs, g), grads(ref, inputs, g)):
        torch.testing.assert_close(gf, gr, rtol=1e-10, atol=1e-10)


def test_iir2_from_rest_and_scalar_coefficients():
    x = torch.randn(7, 2, 3, dtype=DT, requires_grad=True)
    a1 = torch.tensor(1.1, dtype=DT, requires_grad=True)
    a2 = torch.tensor(-0.3, dtype=DT, requires_grad=True)
    b1 = torch.tensor(0.4, dtype=DT, requires_grad=True)
    fused = K.iir2(x, a1, a2, b1)
    ref, _ = F.dual_exp_iir(x, a1, a2, b1)
    torch.testing.assert_close(fused, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    for gf, gr in zip(grads(fused, (x, a1, a2, b1), g), grads(ref, (x, a1, a2, b1), g)):
        assert gf.shape == gr.shape
        torch.testing.assert_close(gf, gr, rtol=1e-10, atol=1e-10)


def test_low_pass_fused_matches_reference_without_saving_unneeded_tensors():
    x = torch.randn(10, 4, 6, dtype=DT, requires_grad=True)
    a = torch.rand(6, dtype=DT, requires_grad=True)
    p = torch.randn(4, 6, dtype=DT, requires_grad=True)
    fused = K.low_pass(x, a, p)
    ref, _ = F.low_pass(x, a, F.LowPassState(p))
    torch.testing.assert_close(fused, ref, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    for gf, gr in zip(grads(fused, (x, a, p), g), grads(ref, (x, a, p), g)):
        torch.testing.assert_close(gf, gr, rtol=1e-10, atol=1e-10)
    # only x needs a gradient: psp and x are not stored, the input gradient is still exact
    frozen = a.detach()
    fused = K.low_pass(x, frozen)
    ref, _ = F.low_pass(x, frozen)
    torch.testing.assert_close(grads(fused, (x,), g)[0], grads(ref, (x,), g)[0], rtol=1e-10, atol=1e-10)


def test_readout_fused_matches_reference():
    x = torch.rand(30, 2, 5, dtype=DT, requires_grad=True)
    m0, s0 = torch.rand(2, 5, dtype=DT), torch.rand(2, 5, dtype=DT)
    out, m_seq, s_seq = K.readout(x, math.exp(-1 / 8), math.exp(-1 / 2), F.readout_gain(8.0, 2.0),
                                  m0, s0)
    ref, state = F.dual_exp_readout(x, 8.0, 2.0, F.ReadoutState(m0, s0))
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(m_seq[-1], state.m, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(s_seq[-1], state.s, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(ref)
    torch.testing.assert_close(grads(out, (x,), g)[0], grads(ref, (x,), g)[0], rtol=1e-10, atol=1e-10)


def test_iir2_gradcheck():
    x = torch.randn(5, 2, 3, dtype=DT, requires_grad=True)
    a1, a2, b1 = coefficients((3,))
    p1 = torch.randn(2, 3, dtype=DT, requires_grad=True)
    p2 = torch.randn(2, 3, dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(K.iir2, (x, a1, a2, b1, p1, p2))


def test_iir2_float32_close_to_float64_reference():
    x = torch.randn(25, 4, 33)
    a1, a2, b1 = (c.detach() for c in coefficients((33,), torch.float32))
    fused = K.iir2(x, a1, a2, b1)
    assert fused.dtype == torch.float32
    ref, _ = F.dual_exp_iir(x.double(), a1.double(), a2.double(), b1.double())
    torch.testing.assert_close(fused.double(), ref, rtol=1e-5, atol=1e-5)


def test_iir2_does_not_modify_inputs_and_handles_strided_input():
    base = torch.randn(4, 6, 3, dtype=DT)
    x = base.transpose(1, 2)  # [T, B=3, N=6] non-contiguous
    keep = x.clone()
    a = torch.full((6,), 0.5, dtype=DT)
    fused = K.low_pass(x, a)
    ref, _ = F.low_pass(x, a)
    torch.testing.assert_close(fused, ref, rtol=0, atol=0)
    assert torch.equal(x, keep)


def test_unsupported_input_raises_clear_error():
    with pytest.raises(ValueError, match="floating-point"):
        K.iir2(torch.zeros(3, 2, 2, dtype=torch.int64), 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"\[T, B, \.\.\.\]"):
        K.iir2(torch.zeros(3, dtype=DT), 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match=r"p1 must have shape \(2, 2\)"):
        K.iir2(torch.zeros(3, 2, 2, dtype=DT), 1.0, 0.0, 1.0, torch.zeros(2, 3, dtype=DT))
    with pytest.raises(ValueError, match="does not broadcast"):
        K.iir2(torch.zeros(3, 2, 2, dtype=DT), torch.ones(3, dtype=DT), 0.0, 1.0)


def test_backward_keeps_no_sequence_sized_tensor_besides_the_input():
    T, B, N = 6, 3, 50
    x = torch.rand(T, B, N, dtype=DT, requires_grad=True)
    a1, a2, b1 = coefficients((N,))
    sizes = []

    def pack(t):
        if t.untyped_storage().data_ptr() != x.untyped_storage().data_ptr():
            sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = K.iir2(x, a1, a2, b1)
    assert sizes and max(sizes) < T * B * N  # coefficients and [B, N] states only
    ref, _ = F.dual_exp_iir(x, a1, a2, b1)  # recomputed psp gives the same gradients
    g = torch.randn_like(ref)
    for gf, gr in zip(grads(out, (x, a1, a2, b1), g), grads(ref, (x, a1, a2, b1), g)):
        torch.testing.assert_close(gf, gr, rtol=1e-12, atol=1e-12)
