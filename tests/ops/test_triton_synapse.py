"""Triton synapse kernels (ops/_triton/synapse.py) on the test device (``_device.py``: the Triton
interpreter on CPU tensors by default, the GPU with ``SPIKEFLOW_TEST_DEVICE=cuda``), against the
reference loops run on CPU.

The oracle is ``functional.synapse.dual_exp_iir`` / ``low_pass`` with autograd, run in float64 on the
very values the kernel reads (half-precision inputs are rounded first), so every difference is the
kernel's own rounding: float32 results agree within 1e-5 relative. A float16 or bfloat16 result is one
rounding of a float32 value: within half an ulp (2^-11 relative) for float16; within one ulp (2^-7
relative) for bfloat16, because triton 3.6's interpreter truncates float32 -> bfloat16 where a GPU
rounds to nearest. Coefficient gradients stay float32 and agree within 1e-5 whatever the storage.
"""
from _device import DEVICE, require_device  # isort: skip  (first: sets TRITON_INTERPRET on CPU)

import pytest  # noqa: E402
import torch  # noqa: E402

require_device()
pytest.importorskip("triton")

from spikeflow.functional.synapse import DualExpState, LowPassState, dual_exp_iir, low_pass  # noqa: E402
from spikeflow.ops._triton import synapse as ts  # noqa: E402



F32_RTOL = 1e-5
ROUNDING = {torch.float32: 0.0, torch.bfloat16: 2.0 ** -7, torch.float16: 2.0 ** -11}  # relative, see above


def _inputs(T, B, N, dtype=torch.float32, coef_dtype=torch.float32, low=False):
    """Random filter problem: stable per-feature dual-exp coefficients (or a low pass)."""
    tau_m = 2.0 + 6.0 * torch.rand(N, dtype=torch.float64)
    tau_s = tau_m * (0.1 + 0.6 * torch.rand(N, dtype=torch.float64))
    dm, ds = torch.exp(-1 / tau_m), torch.exp(-1 / tau_s)
    if low:
        a1, a2, b1 = dm, torch.zeros(N, dtype=torch.float64), torch.ones(N, dtype=torch.float64)
    else:
        a1, a2, b1 = dm + ds, -dm * ds, dm - ds
    x = torch.randn(T, B, N, dtype=torch.float64)
    p1, p2 = torch.randn(B, N, dtype=torch.float64), torch.randn(B, N, dtype=torch.float64)
    g = torch.randn(T, B, N, dtype=torch.float64)
    coefs = tuple(c.to(coef_dtype) for c in (a1, a2, b1))
    return x.to(dtype), *coefs, p1.to(dtype), p2.to(dtype), g.to(dtype)


def _reference(x, a1, a2, b1, p1, p2, g, low=False):
    """float64 psp and the six gradients of ``sum(psp * g)`` via the reference loop + autograd.

    For a low pass (``a2 = 0``, ``b1 = 1``) psp and the gradients of x, a1, p1 come from ``low_pass``;
    those of a2, b1, p2 (which ``low_pass`` lacks) from ``dual_exp_iir`` with those coefficients.
    """
    leaves = [t.detach().double().requires_grad_() for t in (x, a1, a2, b1, p1, p2)]
    psp, _ = dual_exp_iir(leaves[0], *leaves[1:4], DualExpState(*leaves[4:]))
    grads = list(torch.autograd.grad((psp * g.double()).sum(), leaves))
    if low:
        x64, a64, p64 = (t.detach().double().requires_grad_() for t in (x, a1, p1))
        psp, _ = low_pass(x64, a64, LowPassState(p64))
        grads[0], grads[1], grads[4] = torch.autograd.grad((psp * g.double()).sum(), (x64, a64, p64))
    return psp.detach(), grads


def _close(got, want, dtype, what):
    """``|got - want| <= (rounding(dtype) + 1e-5) |want| + 1e-5 max|want|`` elementwise."""
    got, want = got.cpu().double(), want.double()
    scale = want.abs().max().item() if want.numel() else 0.0
    bound = (ROUNDING[dtype] + F32_RTOL) * want.abs() + F32_RTOL * scale + 1e-30
    err = (got - want).abs()
    assert bool((err <= bound).all()), f"{what}: max error {err.max().item():.3g} ({dtype})"


def _check_all(T, B, N, dtype=torch.float32, coef_dtype=torch.float32, block=None, low=False):
    x, a1, a2, b1, p1, p2, g = _inputs(T, B, N, dtype, coef_dtype, low)
    psp_ref, grads_ref = _reference(x, a1, a2, b1, p1, p2, g, low)
    dev = [t.to(DEVICE) for t in (x, a1, a2, b1, p1, p2, g)]
    psp = ts.iir2_forward(*dev[:6], block=block)
    assert psp.dtype == dtype and psp.shape == (T, B, N) and psp.device == DEVICE
    _close(psp, psp_ref, dtype, "psp")
    grads = [t.cpu() for t in ts.iir2_backward(dev[6], *dev[:6], True, block=block)]
    names = ("gx", "ga1", "ga2", "gb1", "gp1", "gp2")
    dtypes = (dtype, torch.float32, torch.float32, torch.float32, dtype, dtype)
    for name, got, want, dt in zip(names, grads, grads_ref, dtypes):
        assert got.dtype == dt and got.shape == want.shape, (name, got.dtype, got.shape)
        _close(got, want, dt, name)
    return x, a1, a2, b1, p1, p2, g, grads


@pytest.mark.parametrize("T,B,N,block", [(8, 2, 300, 128), (5, 3, 50, None), (1, 2, 130, 64)])
def test_dual_exp_float32_matches_reference(T, B, N, block):
    _check_all(T, B, N, block=block)


def test_low_pass_float32_matches_reference():
    _check_all(7, 3, 200, block=64, low=True)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_storage_is_one_rounding_of_float32(dtype):
    # coefficients in float32 (the op layer's choice for parameters) and in the storage dtype
    _check_all(8, 2, 150, dtype=dtype, block=128)
    _check_all(4, 2, 70, dtype=dtype, coef_dtype=dtype)


def test_need_coef_false_skips_coefficients_and_reads_no_input():
    x, a1, a2, b1, p1, p2, g, grads = _check_all(6, 2, 100, block=64)
    dummy = torch.empty(0, device=DEVICE)
    g, a1, a2, b1 = (t.to(DEVICE) for t in (g, a1, a2, b1))
    gx, ga1, ga2, gb1, gp1, gp2 = (t.cpu() for t in ts.iir2_backward(g, dummy, a1, a2, b1, dummy,
                                                                     dummy, False, block=64))
    assert torch.equal(gx, grads[0]) and torch.equal(gp1, grads[4]) and torch.equal(gp2, grads[5])
    for c in (ga1, ga2, gb1):
        assert c.dtype == torch.float32 and torch.equal(c, torch.zeros(100))


def test_default_block_and_impulse_response():
    # an impulse from rest gives psp[0] = b1, psp[1] = a1 b1, psp[2] = (a1^2 + a2) b1
    a1, a2, b1 = (torch.full((3,), v, device=DEVICE) for v in (1.2, -0.35, 0.4))
    x = torch.zeros(4, 1, 3, device=DEVICE)
    x[0] = 1.0
    zeros = torch.zeros(1, 3, device=DEVICE)
    psp = ts.iir2_forward(x, a1, a2, b1, zeros, zeros).cpu()
    want = torch.tensor([0.4, 1.2 * 0.4, (1.2 ** 2 - 0.35) * 0.4, (1.2 ** 3 - 2 * 1.2 * 0.35) * 0.4])
    torch.testing.assert_close(psp[:, 0, 0], want, rtol=1e-6, atol=0)
    assert ts.block_size(16, 65536) == 256 and ts.block_size(2, 300) == 128


def test_empty_and_bad_inputs():
    def zeros(*shape):
        return torch.zeros(*shape, device=DEVICE)

    a = zeros(5)
    p = zeros(2, 5)
    assert ts.iir2_forward(zeros(0, 2, 5), a, a, a, p, p).shape == (0, 2, 5)
    gx, *_, gp1, gp2 = ts.iir2_backward(zeros(0, 2, 5), zeros(0, 2, 5), a, a, a, p, p, True)
    assert gx.shape == (0, 2, 5) and torch.equal(gp1, p) and torch.equal(gp2, p)
    with pytest.raises(ValueError, match=r"x must be a tensor of shape \[T, B, N\]"):
        ts.iir2_forward(zeros(2, 5), a, a, a, p, p)
    with pytest.raises(ValueError, match=r"a2 must have shape \(5,\)"):
        ts.iir2_forward(zeros(3, 2, 5), a, zeros(4), a, p, p)
    with pytest.raises(ValueError, match="p1 must be float32, bfloat16 or float16"):
        ts.iir2_forward(zeros(3, 2, 5), a, a, a, p.double(), p)
    with pytest.raises(ValueError, match="x must be contiguous"):
        ts.iir2_backward(zeros(3, 2, 5), zeros(5, 2, 3).transpose(0, 2), a, a, a, p, p, True)
